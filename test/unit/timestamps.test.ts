import { TZDate } from '@date-fns/tz';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatUtc, parseCustomerTimestamp } from '../../src/domain/timestamps';
import { errorOf } from './helpers';

const NY = 'America/New_York';

const utc = (text: string, tz = NY) => formatUtc(parseCustomerTimestamp(text, tz));

describe('parseCustomerTimestamp: with an offset', () => {
  it.each([
    ['2026-03-01T10:00:00Z', '2026-03-01T10:00:00.000Z'],
    ['2026-03-01T10:00:00.123+02:00', '2026-03-01T08:00:00.123Z'],
    ['2026-03-01 10:00:00Z', '2026-03-01T10:00:00.000Z'],
    ['2026-03-01T10:00Z', '2026-03-01T10:00:00.000Z'],
    ['2026-03-01T10:00:00-05:30', '2026-03-01T15:30:00.000Z'],
    ['2026-03-01T10:00:00+0200', '2026-03-01T08:00:00.000Z'],
    ['2026-03-01T10:00:00+02', '2026-03-01T08:00:00.000Z'],
    ['2026-03-01T10:00:00-00:00', '2026-03-01T10:00:00.000Z'],
    ['2026-03-01t10:00:00z', '2026-03-01T10:00:00.000Z'],
    ['2026-03-01T00:30:00+01:00', '2026-02-28T23:30:00.000Z'],
    ['2026-03-01T10:00:00,5Z', '2026-03-01T10:00:00.500Z'],
    ['  2026-03-01T10:00:00Z\n', '2026-03-01T10:00:00.000Z'],
  ])('%j is %s whatever the default zone', (text, expected) => {
    expect(utc(text, NY)).toBe(expected);
    expect(utc(text, 'Asia/Tokyo')).toBe(expected);
  });

  it('truncates fractions beyond milliseconds', () => {
    expect(utc('2026-03-01T10:00:59.9999999Z')).toBe('2026-03-01T10:00:59.999Z');
    expect(utc('2026-03-01T10:00:00.1Z')).toBe('2026-03-01T10:00:00.100Z');
  });
});

describe('parseCustomerTimestamp: local times in the default zone', () => {
  it.each([
    ['2026-03-01T10:00', NY, '2026-03-01T15:00:00.000Z'],
    ['2026-03-01 10:00:00', NY, '2026-03-01T15:00:00.000Z'],
    ['2026-07-01 10:00:00.250', NY, '2026-07-01T14:00:00.250Z'],
    ['2026-03-01T10:00', 'Asia/Tokyo', '2026-03-01T01:00:00.000Z'],
    ['2026-03-01T10:00', 'UTC', '2026-03-01T10:00:00.000Z'],
    ['2026-03-01', NY, '2026-03-01T05:00:00.000Z'],
    ['2026-03-01', 'Asia/Tokyo', '2026-02-28T15:00:00.000Z'],
    [' 2026-03-01 ', 'UTC', '2026-03-01T00:00:00.000Z'],
    ['2024-02-29', 'UTC', '2024-02-29T00:00:00.000Z'],
  ])('%j in %s is %s', (text, tz, expected) => {
    expect(utc(text, tz)).toBe(expected);
  });

  it('a wall time in the spring-forward gap moves forward by the gap', () => {
    expect(utc('2026-03-08T02:30', NY)).toBe('2026-03-08T07:30:00.000Z'); // 03:30 EDT
  });

  it('a wall time in the fall-back overlap is the earlier instant', () => {
    expect(utc('2026-11-01T01:30', NY)).toBe('2026-11-01T05:30:00.000Z'); // 01:30 EDT, not EST
  });

  it('rejects an unknown default zone, even for a timestamp with an offset', () => {
    expect(errorOf(() => parseCustomerTimestamp('2026-03-01T10:00', 'Nowhere/City')).code).toBe('invalid_time_zone');
    expect(errorOf(() => parseCustomerTimestamp('2026-03-01T10:00Z', 'Nowhere/City')).code).toBe('invalid_time_zone');
  });
});

describe('parseCustomerTimestamp: rejections', () => {
  it.each([
    '03/04/2026',
    '2026-13-01',
    '2026-00-10',
    '2026-02-30',
    '2025-02-29',
    '2026-04-31',
    '2026-03-01T24:00',
    '2026-03-01T10:60',
    '2026-03-01T10:00:60Z',
    '2026-03-01T10:00:00+25:00',
    '2026-03-01T10Z',
    '2026-03-01Z',
    '2026-3-1',
    '20260301',
    '2026-03-01T10:00:00.Z',
    '2026-03-01T10:00:00 Z',
    '1772359200',
    'yesterday',
    '',
    '   ',
  ])('%j is bad_timestamp with a readable message', (text) => {
    const error = errorOf(() => parseCustomerTimestamp(text, NY));
    expect(error.code).toBe('bad_timestamp');
    expect(error.message).toBe(`unreadable timestamp "${text.trim()}" (expected ISO 8601, e.g. 2026-03-01T10:00:00Z)`);
  });

  it('shortens a very long input in the message', () => {
    const error = errorOf(() => parseCustomerTimestamp('x'.repeat(500), NY));
    expect(error.message.length).toBeLessThan(200);
  });

  it.each(['1969-12-31T23:59:59Z', '1900-01-01', '0000-01-01', '10000-01-01', '12026-03-01T10:00:00Z'])(
    '%j is timestamp_out_of_range',
    (text) => {
      expect(errorOf(() => parseCustomerTimestamp(text, 'UTC')).code).toBe('timestamp_out_of_range');
    },
  );

  it('escapes control characters in the quoted text, so the reason stays one line', () => {
    expect(errorOf(() => parseCustomerTimestamp('2026-03-04\n10:00\u001b[2J', 'UTC')).message).toBe(
      'unreadable timestamp "2026-03-04\\u000a10:00\\u001b[2J" (expected ISO 8601, e.g. 2026-03-01T10:00:00Z)',
    );
  });

  it('checks the instant, not only the written year: 9999 with a negative offset is year 10000 in UTC', () => {
    const e = errorOf(() => parseCustomerTimestamp('9999-12-31T23:30:00-05:00', 'UTC'));
    expect(e.code).toBe('timestamp_out_of_range');
    expect(e.message).toBe('timestamp "9999-12-31T23:30:00-05:00" is after the end of year 9999 in UTC');
    expect(errorOf(() => parseCustomerTimestamp('9999-12-31 23:30', 'America/New_York')).code).toBe(
      'timestamp_out_of_range',
    );
    expect(utc('9999-12-31T23:30:00+05:00')).toBe('9999-12-31T18:30:00.000Z');
  });

  it('accepts the ends of the supported range', () => {
    expect(utc('1970-01-01T00:00:00Z')).toBe('1970-01-01T00:00:00.000Z');
    expect(utc('9999-12-31T23:59:59.999Z')).toBe('9999-12-31T23:59:59.999Z');
  });
});

describe('parseCustomerTimestamp: properties', () => {
  const instantArb = fc.date({
    min: new Date('1970-01-02T00:00:00Z'),
    max: new Date('9999-12-30T00:00:00Z'),
    noInvalidDate: true,
  });
  const zoneArb = fc.constantFrom('UTC', NY, 'Asia/Tokyo', 'Asia/Kolkata', 'Europe/Berlin');

  it('formatUtc output reads back as the same instant in any default zone', () => {
    fc.assert(
      fc.property(instantArb, zoneArb, (d, tz) => parseCustomerTimestamp(formatUtc(d), tz).getTime() === d.getTime()),
    );
  });

  it('an instant written with any whole-minute offset reads back as itself', () => {
    fc.assert(
      fc.property(instantArb, fc.integer({ min: -14 * 60, max: 14 * 60 }), (d, offsetMinutes) => {
        const shifted = new Date(d.getTime() + offsetMinutes * 60_000).toISOString().slice(0, 23);
        const sign = offsetMinutes < 0 ? '-' : '+';
        const abs = Math.abs(offsetMinutes);
        const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
        fc.pre(!shifted.startsWith('1969') && !shifted.startsWith('+'));
        return parseCustomerTimestamp(`${shifted}${offset}`, 'UTC').getTime() === d.getTime();
      }),
    );
  });

  it('a local wall time reads back as that wall time, except inside a spring-forward gap', () => {
    const wallArb = fc.record({
      year: fc.integer({ min: 1971, max: 2099 }),
      month: fc.integer({ min: 1, max: 12 }),
      day: fc.integer({ min: 1, max: 28 }),
      hour: fc.integer({ min: 0, max: 23 }),
      minute: fc.integer({ min: 0, max: 59 }),
    });
    fc.assert(
      fc.property(wallArb, zoneArb, ({ year, month, day, hour, minute }, tz) => {
        const pad = (n: number) => String(n).padStart(2, '0');
        const text = `${year}-${pad(month)}-${pad(day)} ${pad(hour)}:${pad(minute)}`;
        const local = new TZDate(parseCustomerTimestamp(text, tz).getTime(), tz);
        const sameDay = local.getFullYear() === year && local.getMonth() + 1 === month && local.getDate() === day;
        if (local.getHours() === hour) {
          expect(sameDay && local.getMinutes() === minute).toBe(true);
        } else {
          // Only a gap moves a wall time, and only forward by the gap (one hour in these zones).
          expect(tz === NY || tz === 'Europe/Berlin').toBe(true);
          expect(sameDay && local.getHours() === hour + 1 && local.getMinutes() === minute).toBe(true);
        }
      }),
    );
  });
});

describe('formatUtc', () => {
  it('is the ISO 8601 UTC form with milliseconds', () => {
    expect(formatUtc(new Date(Date.UTC(2026, 2, 1, 10, 0, 0, 5)))).toBe('2026-03-01T10:00:00.005Z');
  });
});
