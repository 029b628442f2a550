import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeOf } from './helpers';
import { assertPeriodEnded, billingPeriodOf, localTime, PeriodSchema, periodBounds } from '../../src/domain/periods';

const at = (iso: string) => new Date(iso);

describe('billingPeriodOf', () => {
  it.each([
    // New York: the UTC month has turned, the tenant's has not.
    ['2026-03-01T03:00:00Z', 'America/New_York', '2026-02'],
    ['2026-03-01T04:59:59.999Z', 'America/New_York', '2026-02'],
    ['2026-03-01T05:00:00Z', 'America/New_York', '2026-03'],
    // Tokyo (UTC+9, no DST): the tenant's month turns nine hours before UTC's.
    ['2026-02-28T14:59:59.999Z', 'Asia/Tokyo', '2026-02'],
    ['2026-02-28T15:00:00Z', 'Asia/Tokyo', '2026-03'],
    ['2026-12-31T15:00:00Z', 'Asia/Tokyo', '2027-01'],
    // Los Angeles in daylight time (UTC-7).
    ['2026-04-01T06:59:59.999Z', 'America/Los_Angeles', '2026-03'],
    ['2026-04-01T07:00:00Z', 'America/Los_Angeles', '2026-04'],
    ['2027-01-01T07:59:59.999Z', 'America/Los_Angeles', '2026-12'],
    ['2027-01-01T08:00:00Z', 'America/Los_Angeles', '2027-01'],
    ['2026-12-31T23:59:59.999Z', 'UTC', '2026-12'],
    ['2027-01-01T00:00:00Z', 'UTC', '2027-01'],
  ])('%s in %s is %s', (iso, tz, period) => {
    expect(billingPeriodOf(at(iso), tz)).toBe(period);
  });

  it('rejects an invalid date or time zone', () => {
    expect(codeOf(() => billingPeriodOf(new Date(Number.NaN), 'UTC'))).toBe('invalid_date');
    expect(codeOf(() => billingPeriodOf(at('2026-01-01T00:00:00Z'), 'Nowhere/City'))).toBe('invalid_time_zone');
  });
});

describe('periodBounds', () => {
  it('is local midnight of the 1st to local midnight of the next 1st', () => {
    expect(periodBounds('2026-02', 'Asia/Tokyo')).toEqual({
      start: at('2026-01-31T15:00:00Z'),
      end: at('2026-02-28T15:00:00Z'),
    });
    expect(periodBounds('2026-12', 'UTC')).toEqual({
      start: at('2026-12-01T00:00:00Z'),
      end: at('2027-01-01T00:00:00Z'),
    });
    expect(periodBounds('2026-12', 'America/Los_Angeles')).toEqual({
      start: at('2026-12-01T08:00:00Z'),
      end: at('2027-01-01T08:00:00Z'),
    });
  });

  it('follows the offset of each end when the month contains a DST change', () => {
    const { start, end } = periodBounds('2026-03', 'America/New_York');
    expect(start).toEqual(at('2026-03-01T05:00:00Z')); // EST
    expect(end).toEqual(at('2026-04-01T04:00:00Z')); // EDT
    expect((end.getTime() - start.getTime()) / 3_600_000).toBe(31 * 24 - 1);
  });

  it('returns plain Dates', () => {
    const { start, end } = periodBounds('2026-03', 'UTC');
    expect(Object.getPrototypeOf(start)).toBe(Date.prototype);
    expect(Object.getPrototypeOf(end)).toBe(Date.prototype);
  });

  it('rejects malformed periods and unknown zones', () => {
    for (const period of ['2026-13', '2026-00', '2026-1', '26-01', '2026-01-01', '']) {
      expect(codeOf(() => periodBounds(period, 'UTC'))).toBe('invalid_period');
    }
    expect(codeOf(() => periodBounds('1969-12', 'UTC'))).toBe('invalid_period');
    expect(codeOf(() => periodBounds('2026-01', 'Nowhere/City'))).toBe('invalid_time_zone');
  });

  const zoneArb = fc.constantFrom(
    'UTC',
    'America/New_York',
    'America/Los_Angeles',
    'Asia/Tokyo',
    'Asia/Kolkata',
    'Australia/Lord_Howe',
    'America/Santiago',
  );
  const instantArb = fc.date({ min: at('1990-01-01T00:00:00Z'), max: at('2060-01-01T00:00:00Z'), noInvalidDate: true });

  it('property: the period of an instant contains it', () => {
    fc.assert(
      fc.property(instantArb, zoneArb, (instant, tz) => {
        const { start, end } = periodBounds(billingPeriodOf(instant, tz), tz);
        return start.getTime() <= instant.getTime() && instant.getTime() < end.getTime();
      }),
    );
  });

  it('property: consecutive periods tile time with no gap or overlap', () => {
    fc.assert(
      fc.property(instantArb, zoneArb, (instant, tz) => {
        const { end } = periodBounds(billingPeriodOf(instant, tz), tz);
        const next = billingPeriodOf(end, tz);
        expect(periodBounds(next, tz).start).toEqual(end);
        expect(billingPeriodOf(new Date(end.getTime() - 1), tz)).toBe(billingPeriodOf(instant, tz));
      }),
    );
  });
});

describe('PeriodSchema', () => {
  it('accepts YYYY-MM and rejects the rest', () => {
    expect(PeriodSchema.parse('2026-03')).toBe('2026-03');
    for (const bad of ['2026-13', '2026-00', '2026-3', '2026/03', '2026-03-01', 202603]) {
      expect(PeriodSchema.safeParse(bad).success).toBe(false);
    }
  });
});

describe('assertPeriodEnded', () => {
  it("refuses a period until its last instant has passed on the tenant's wall clock", () => {
    // November 2026 in New York ends 2026-12-01 00:00 EST = 05:00Z.
    expect(codeOf(() => assertPeriodEnded('2026-11', 'America/New_York', at('2026-12-01T04:59:59.999Z')))).toBe(
      'period_not_ended',
    );
    expect(() => assertPeriodEnded('2026-11', 'America/New_York', at('2026-12-01T05:00:00Z'))).not.toThrow();
    // UTC's month has turned, Los Angeles' has not.
    expect(codeOf(() => assertPeriodEnded('2026-11', 'America/Los_Angeles', at('2026-12-01T03:00:00Z')))).toBe(
      'period_not_ended',
    );
    // Tokyo's month ends nine hours before UTC's.
    expect(() => assertPeriodEnded('2026-11', 'Asia/Tokyo', at('2026-11-30T15:00:00Z'))).not.toThrow();
  });

  it('refuses a future period and names its local end time in the message', () => {
    try {
      assertPeriodEnded('2030-01', 'America/New_York', at('2026-11-29T08:00:00Z'));
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toBe(
        'period 2030-01 has not ended: it ends 2030-02-01 00:00 America/New_York (2030-02-01T05:00:00.000Z); close it after that',
      );
    }
  });

  it('refuses an invalid period or time zone with their own codes', () => {
    expect(codeOf(() => assertPeriodEnded('2026-13', 'UTC', at('2027-06-01T00:00:00Z')))).toBe('invalid_period');
    expect(codeOf(() => assertPeriodEnded('2026-01', 'Mars/Base', at('2027-06-01T00:00:00Z')))).toBe(
      'invalid_time_zone',
    );
  });
});

describe('localTime', () => {
  it("shows the tenant's wall clock, DST included", () => {
    expect(localTime(at('2026-07-01T04:00:00Z'), 'America/New_York')).toBe('2026-07-01 00:00 America/New_York');
    expect(localTime(at('2026-12-31T15:00:00Z'), 'Asia/Tokyo')).toBe('2027-01-01 00:00 Asia/Tokyo');
  });
});
