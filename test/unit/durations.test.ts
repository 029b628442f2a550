import { TZDate } from '@date-fns/tz';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addIsoDuration, IsoDurationSchema, isValidTimeZone, parseIsoDuration } from '../../src/domain/durations';
import { codeOf } from './helpers';
import { HOUR } from '../support/fixtures';

const NY = 'America/New_York';

/** Wall-clock reading of an instant in a zone, e.g. "2026-03-08 10:00". */
function wallTime(d: Date, tz: string): string {
  const local = new TZDate(d.getTime(), tz);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${local.getFullYear()}-${pad(local.getMonth() + 1)}-${pad(local.getDate())} ${pad(local.getHours())}:${pad(local.getMinutes())}`;
}

const zero = { years: 0, months: 0, weeks: 0, days: 0, hours: 0, minutes: 0, seconds: 0 };

describe('parseIsoDuration', () => {
  it.each([
    ['PT72H', { hours: 72 }],
    ['P14D', { days: 14 }],
    ['P2W', { weeks: 2 }],
    ['P1Y2M3W4DT5H6M7S', { years: 1, months: 2, weeks: 3, days: 4, hours: 5, minutes: 6, seconds: 7 }],
    ['PT1.5S', { seconds: 1.5 }],
    ['PT0S', {}],
    ['P0D', {}],
    ['P1M', { months: 1 }],
    ['PT1M', { minutes: 1 }],
    ['P1DT12H', { days: 1, hours: 12 }],
  ])('reads %s', (text, expected) => {
    expect(parseIsoDuration(text)).toEqual({ ...zero, ...expected });
  });

  it.each([
    '',
    'P',
    'PT',
    'P1DT',
    '1D',
    'P-1D',
    '-P1D',
    'P1.5D',
    'PT1.5H',
    'P1H',
    'pt72h',
    'P1D1Y',
    'PT72H ',
    ' P1D',
    'P1S',
    'P99999999999999999D',
    'PT1.S',
  ])('rejects %j with invalid_duration naming the text', (text) => {
    expect(codeOf(() => parseIsoDuration(text))).toBe('invalid_duration');
    expect(() => parseIsoDuration(text)).toThrowError(`"${text}"`);
  });

  it('IsoDurationSchema accepts valid durations and explains invalid ones', () => {
    expect(IsoDurationSchema.parse('PT72H')).toBe('PT72H');
    const result = IsoDurationSchema.safeParse('72h');
    expect(result.success).toBe(false);
    expect(result.error?.issues[0].message).toBe('expected an ISO 8601 duration such as PT72H or P14D');
    expect(IsoDurationSchema.safeParse(72).success).toBe(false);
  });
});

describe('addIsoDuration: exact units', () => {
  it('PT72H is 72 elapsed hours even across a DST change', () => {
    const start = new Date('2026-03-06T12:00:00Z');
    expect(addIsoDuration(start, 'PT72H', NY).getTime() - start.getTime()).toBe(72 * HOUR);
  });

  it('PT24H across the spring-forward is 24 hours and lands an hour later on the wall clock', () => {
    const start = new Date('2026-03-07T15:00:00Z'); // 10:00 EST
    const end = addIsoDuration(start, 'PT24H', NY);
    expect(end.toISOString()).toBe('2026-03-08T15:00:00.000Z');
    expect(wallTime(end, NY)).toBe('2026-03-08 11:00');
  });

  it('fractional seconds are milliseconds', () => {
    const start = new Date('2026-01-01T00:00:00Z');
    expect(addIsoDuration(start, 'PT1.5S', 'UTC').getTime() - start.getTime()).toBe(1500);
    expect(addIsoDuration(start, 'PT0.0004S', 'UTC').getTime()).toBe(start.getTime());
  });

  it('property: a duration with only hours, minutes and seconds is exact elapsed time in any zone', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2060-01-01T00:00:00Z'), noInvalidDate: true }),
        fc.nat({ max: 10_000 }),
        fc.nat({ max: 10_000 }),
        fc.nat({ max: 100_000 }),
        fc.constantFrom('UTC', NY, 'Europe/London', 'Australia/Lord_Howe', 'Asia/Kolkata'),
        (start, h, m, s, tz) => {
          const end = addIsoDuration(start, `PT${h}H${m}M${s}S`, tz);
          return end.getTime() - start.getTime() === h * HOUR + m * 60_000 + s * 1000;
        },
      ),
    );
  });
});

describe('addIsoDuration: calendar units in the tenant timezone', () => {
  it('P1D across the US spring-forward is 23 elapsed hours, same local time', () => {
    const start = new Date('2026-03-07T15:00:00Z'); // Sat 10:00 EST
    const end = addIsoDuration(start, 'P1D', NY);
    expect(end.getTime() - start.getTime()).toBe(23 * HOUR);
    expect(wallTime(end, NY)).toBe('2026-03-08 10:00');
  });

  it('P7D spanning the spring-forward is 167 hours; across the fall-back 169 hours', () => {
    const spring = new Date('2026-03-05T14:00:00Z'); // Thu 09:00 EST
    const springEnd = addIsoDuration(spring, 'P7D', NY);
    expect(springEnd.getTime() - spring.getTime()).toBe(167 * HOUR);
    expect(wallTime(springEnd, NY)).toBe('2026-03-12 09:00');

    const fall = new Date('2026-10-29T13:00:00Z'); // Thu 09:00 EDT
    const fallEnd = addIsoDuration(fall, 'P7D', NY);
    expect(fallEnd.getTime() - fall.getTime()).toBe(169 * HOUR);
    expect(wallTime(fallEnd, NY)).toBe('2026-11-05 09:00');
  });

  it('P1W equals P7D and P1DT1H across the spring-forward is 24 hours', () => {
    const start = new Date('2026-03-05T14:00:00Z');
    expect(addIsoDuration(start, 'P1W', NY)).toEqual(addIsoDuration(start, 'P7D', NY));
    const saturday = new Date('2026-03-07T15:00:00Z');
    expect(addIsoDuration(saturday, 'P1DT1H', NY).getTime() - saturday.getTime()).toBe(24 * HOUR);
  });

  it('the same P1D in UTC is always 24 hours', () => {
    const start = new Date('2026-03-07T15:00:00Z');
    expect(addIsoDuration(start, 'P1D', 'UTC').getTime() - start.getTime()).toBe(24 * HOUR);
  });

  it('landing in the spring-forward gap moves forward by the gap', () => {
    const start = new Date('2026-03-07T07:30:00Z'); // Sat 02:30 EST
    const end = addIsoDuration(start, 'P1D', NY);
    expect(wallTime(end, NY)).toBe('2026-03-08 03:30');
    expect(end.toISOString()).toBe('2026-03-08T07:30:00.000Z');
  });

  it('landing in the fall-back overlap takes the earlier instant', () => {
    const start = new Date('2026-10-31T05:30:00Z'); // Sat 01:30 EDT
    expect(addIsoDuration(start, 'P1D', NY).toISOString()).toBe('2026-11-01T05:30:00.000Z'); // 01:30 EDT
  });

  it('months clamp to the last day of the month', () => {
    const jan31 = new Date('2026-01-31T15:00:00Z'); // 10:00 EST
    expect(wallTime(addIsoDuration(jan31, 'P1M', NY), NY)).toBe('2026-02-28 10:00');
    const leap = new Date('2028-01-31T15:00:00Z');
    expect(wallTime(addIsoDuration(leap, 'P1M', NY), NY)).toBe('2028-02-29 10:00');
    expect(addIsoDuration(new Date('2026-03-31T12:00:00Z'), 'P1M', 'UTC').toISOString()).toBe(
      '2026-04-30T12:00:00.000Z',
    );
    expect(addIsoDuration(new Date('2028-02-29T12:00:00Z'), 'P1Y', 'UTC').toISOString()).toBe(
      '2029-02-28T12:00:00.000Z',
    );
    expect(addIsoDuration(new Date('2026-01-31T12:00:00Z'), 'P1M1D', 'UTC').toISOString()).toBe(
      '2026-03-01T12:00:00.000Z',
    );
  });

  it('the month end is the tenant’s, not UTC’s', () => {
    const start = new Date('2026-01-30T20:00:00Z'); // Jan 31 05:00 in Tokyo, Jan 30 in UTC
    expect(addIsoDuration(start, 'P1M', 'Asia/Tokyo').toISOString()).toBe('2026-02-27T20:00:00.000Z'); // Feb 28 05:00 JST
    expect(addIsoDuration(start, 'P1M', 'UTC').toISOString()).toBe('2026-02-28T20:00:00.000Z');
  });

  it('accepts a parsed duration object like its text', () => {
    const start = new Date('2026-03-05T14:00:00Z');
    expect(addIsoDuration(start, parseIsoDuration('P1DT2H30M'), NY)).toEqual(addIsoDuration(start, 'P1DT2H30M', NY));
  });

  it('property: P{n}D keeps the local wall time unless it lands in a gap', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2040-01-01T00:00:00Z'), noInvalidDate: true }),
        fc.integer({ min: 1, max: 400 }),
        (start, n) => {
          const end = addIsoDuration(start, `P${n}D`, NY);
          const startLocal = new TZDate(start.getTime(), NY);
          const endLocal = new TZDate(end.getTime(), NY);
          if (startLocal.getHours() !== 2) {
            expect(endLocal.getHours()).toBe(startLocal.getHours());
          }
          expect(endLocal.getMinutes()).toBe(startLocal.getMinutes());
          expect(endLocal.getSeconds()).toBe(startLocal.getSeconds());
          // A day is 23, 24 or 25 hours; n days are within an hour of n * 24 (at most one change
          // counted when it does not cross a whole DST season).
          const hours = (end.getTime() - start.getTime()) / HOUR;
          expect(Math.abs(hours - n * 24)).toBeLessThanOrEqual(1);
        },
      ),
    );
  });

  it('property: more days never ends earlier', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2040-01-01T00:00:00Z'), noInvalidDate: true }),
        fc.nat({ max: 500 }),
        fc.nat({ max: 500 }),
        fc.constantFrom('UTC', NY, 'Europe/Berlin', 'Pacific/Chatham'),
        (start, a, b, tz) => {
          const [lo, hi] = a <= b ? [a, b] : [b, a];
          return addIsoDuration(start, `P${lo}D`, tz).getTime() <= addIsoDuration(start, `P${hi}D`, tz).getTime();
        },
      ),
    );
  });
});

describe('addIsoDuration: errors', () => {
  it('rejects an unknown time zone, an invalid date and an invalid duration object', () => {
    const start = new Date('2026-01-01T00:00:00Z');
    expect(codeOf(() => addIsoDuration(start, 'P1D', 'Mars/Olympus'))).toBe('invalid_time_zone');
    expect(codeOf(() => addIsoDuration(new Date(Number.NaN), 'P1D', 'UTC'))).toBe('invalid_date');
    expect(codeOf(() => addIsoDuration(start, 'P1', 'UTC'))).toBe('invalid_duration');
    expect(codeOf(() => addIsoDuration(start, { ...zero, days: -1 }, 'UTC'))).toBe('invalid_duration');
    expect(codeOf(() => addIsoDuration(start, { ...zero, hours: 1.5 }, 'UTC'))).toBe('invalid_duration');
    expect(codeOf(() => addIsoDuration(start, 'P900000Y', 'UTC'))).toBe('duration_out_of_range');
  });
});

describe('isValidTimeZone', () => {
  it('knows IANA zones and UTC, and rejects the rest', () => {
    for (const tz of ['UTC', 'America/New_York', 'Asia/Tokyo', 'Europe/Berlin']) expect(isValidTimeZone(tz)).toBe(true);
    for (const tz of ['', 'Mars/Olympus', 'EST5EDT8', 'America/New York']) expect(isValidTimeZone(tz)).toBe(false);
  });
});
