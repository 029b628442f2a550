import { TZDate } from '@date-fns/tz';
import { z } from 'zod';
import { isValidTimeZone } from './durations';
import { ReconError } from './errors';

const PERIOD_PATTERN = /^\d{4}-(0[1-9]|1[0-2])$/;

export const PeriodSchema = z.string().regex(PERIOD_PATTERN, 'expected a billing period YYYY-MM, e.g. 2026-03');

function assertTimeZone(timeZone: string): void {
  if (!isValidTimeZone(timeZone)) {
    throw new ReconError('invalid_time_zone', `unknown time zone "${timeZone}"`, { timeZone });
  }
}

/** The calendar month, on the tenant's wall clock, that contains `asOf` (DESIGN 5). */
export function billingPeriodOf(asOf: Date, timeZone: string): string {
  if (!(asOf instanceof Date) || Number.isNaN(asOf.getTime())) {
    throw new ReconError('invalid_date', 'billingPeriodOf needs a valid Date', { asOf });
  }
  assertTimeZone(timeZone);
  const local = new TZDate(asOf.getTime(), timeZone);
  const year = String(local.getFullYear()).padStart(4, '0');
  const month = String(local.getMonth() + 1).padStart(2, '0');
  return `${year}-${month}`;
}

/**
 * [start, end) of a billing period: local midnight of the 1st of the month and of the next
 * month in `timeZone`. Where midnight is skipped by a DST change the period starts at the first
 * instant of the 1st (TZDate moves a missing wall time forward), so periods still tile time.
 */
export function periodBounds(period: string, timeZone: string): { start: Date; end: Date } {
  if (typeof period !== 'string' || !PERIOD_PATTERN.test(period)) {
    throw new ReconError('invalid_period', `invalid billing period "${String(period)}" (expected YYYY-MM)`, { period });
  }
  assertTimeZone(timeZone);
  const year = Number(period.slice(0, 4));
  const month = Number(period.slice(5, 7));
  // Date-style constructors read years 0-99 as 1900-1999; no period predates 1970 anyway.
  if (year < 1970) {
    throw new ReconError('invalid_period', `billing period "${period}" is before 1970`, { period });
  }
  const start = new TZDate(year, month - 1, 1, 0, 0, 0, 0, timeZone);
  const end =
    month === 12 ? new TZDate(year + 1, 0, 1, 0, 0, 0, 0, timeZone) : new TZDate(year, month, 1, 0, 0, 0, 0, timeZone);
  return { start: new Date(start.getTime()), end: new Date(end.getTime()) };
}

/** An instant on the tenant's wall clock, e.g. "2026-12-01 00:00 America/New_York". */
export function localTime(at: Date, timeZone: string): string {
  assertTimeZone(timeZone);
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(at);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')} ${timeZone}`;
}

/**
 * A period may be closed only once it has ended on the tenant's wall clock: closing a period that
 * is still running (or in the future) would send the rest of its lines to the next period, and
 * the summary of every later run would name a period other than its own.
 */
export function assertPeriodEnded(period: string, timeZone: string, now: Date): void {
  const { end } = periodBounds(period, timeZone);
  if (now.getTime() < end.getTime()) {
    throw new ReconError(
      'period_not_ended',
      `period ${period} has not ended: it ends ${localTime(end, timeZone)} (${end.toISOString()}); close it after that`,
      { period, end: end.toISOString(), timeZone },
    );
  }
}
