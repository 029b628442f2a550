import { TZDate } from '@date-fns/tz';
import { add } from 'date-fns';
import { z } from 'zod';
import { ReconError } from './errors';

/**
 * An ISO 8601 duration split into its written components. Years, months, weeks and days are
 * calendar units (they follow the tenant's wall clock); hours, minutes and seconds are elapsed
 * time. Keeping them apart is what lets `P1D` and `PT24H` differ across a DST change.
 */
export interface IsoDuration {
  years: number;
  months: number;
  weeks: number;
  days: number;
  hours: number;
  minutes: number;
  seconds: number;
}

// Weeks may be combined with other units (ISO 8601-2 allows it and contracts read better with
// it). Only '.' is accepted as the decimal mark so that contract files keep one spelling.
const DURATION_PATTERN =
  /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

function invalidDuration(text: string, why: string): ReconError {
  return new ReconError(
    'invalid_duration',
    `invalid duration "${text}": ${why} (expected ISO 8601 such as PT72H or P14D)`,
    { text },
  );
}

function wholeNumber(text: string, digits: string | undefined): number {
  if (digits === undefined) return 0;
  const value = Number(digits);
  if (!Number.isSafeInteger(value)) throw invalidDuration(text, `${digits} is too large`);
  return value;
}

export function parseIsoDuration(text: string): IsoDuration {
  if (typeof text !== 'string') throw invalidDuration(String(text), 'not a string');
  const match = DURATION_PATTERN.exec(text);
  if (!match) throw invalidDuration(text, 'not of the form PnYnMnWnDTnHnMnS with whole non-negative numbers');
  const [, y, mo, w, d, h, mi, s] = match;
  const timePartWritten = text.includes('T');
  if (timePartWritten && h === undefined && mi === undefined && s === undefined) {
    throw invalidDuration(text, "'T' must be followed by at least one of H, M, S");
  }
  if ([y, mo, w, d, h, mi, s].every((part) => part === undefined)) {
    throw invalidDuration(text, 'no components');
  }
  const seconds = s === undefined ? 0 : Number(s);
  if (!Number.isFinite(seconds) || seconds > Number.MAX_SAFE_INTEGER) {
    throw invalidDuration(text, `${s} seconds is too large`);
  }
  return {
    years: wholeNumber(text, y),
    months: wholeNumber(text, mo),
    weeks: wholeNumber(text, w),
    days: wholeNumber(text, d),
    hours: wholeNumber(text, h),
    minutes: wholeNumber(text, mi),
    seconds,
  };
}

export const IsoDurationSchema = z.string().refine(
  (text) => {
    try {
      parseIsoDuration(text);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'expected an ISO 8601 duration such as PT72H or P14D' },
);

/** The longest duration a contract may give (grace, deadlines, dispute terms, clawback). */
export const MAX_CONTRACT_DURATION = 'P10Y';

// Measured from a fixed instant in UTC, so "at most ten years" means the same for every tenant
// and P3652D (ten years and two leap days) is just over it.
const BOUND_FROM = Date.UTC(2000, 0, 1);
const BOUND_TO = Date.UTC(2010, 0, 1);

/** Whether the duration is at most MAX_CONTRACT_DURATION; false for one that is not a duration. */
export function isWithinContractBound(text: string): boolean {
  try {
    return addIsoDuration(new Date(BOUND_FROM), text, 'UTC').getTime() <= BOUND_TO;
  } catch {
    return false;
  }
}

// Constructing an Intl.DateTimeFormat costs tens of microseconds; windows are computed for many
// outcomes with a handful of zones, so remember the answer.
const timeZoneValidity = new Map<string, boolean>();

export function isValidTimeZone(tz: string): boolean {
  if (typeof tz !== 'string' || tz === '') return false;
  const known = timeZoneValidity.get(tz);
  if (known !== undefined) return known;
  let valid: boolean;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    valid = true;
  } catch {
    valid = false;
  }
  timeZoneValidity.set(tz, valid);
  return valid;
}

function checkedDuration(duration: IsoDuration): IsoDuration {
  const parts = [duration.years, duration.months, duration.weeks, duration.days, duration.hours, duration.minutes];
  const wholeParts = parts.every((part) => Number.isSafeInteger(part) && part >= 0);
  const secondsOk = Number.isFinite(duration.seconds) && duration.seconds >= 0;
  if (!wholeParts || !secondsOk) {
    throw new ReconError(
      'invalid_duration',
      'invalid duration: components must be non-negative whole numbers (seconds may be fractional)',
      {
        duration,
      },
    );
  }
  return duration;
}

/**
 * `instant + duration`, with the calendar part (Y, M, W, D) applied on the wall clock of
 * `timeZone` and the exact part (H, M, S) added afterwards as elapsed milliseconds.
 *
 * - Month arithmetic clamps to the month's last day like date-fns addMonths
 *   (Jan 31 + P1M = Feb 28, or Feb 29 in a leap year).
 * - If the calendar step lands on a wall time that does not exist (spring-forward gap) the
 *   result moves forward by the gap length; on a repeated wall time (fall-back overlap) the
 *   earlier of the two instants is used. Both are TZDate's behaviour.
 * - Fractional seconds are rounded to the nearest millisecond, the resolution of Date.
 */
export function addIsoDuration(instant: Date, duration: string | IsoDuration, timeZone: string): Date {
  if (!(instant instanceof Date) || Number.isNaN(instant.getTime())) {
    throw new ReconError('invalid_date', 'addIsoDuration needs a valid Date', { instant });
  }
  if (!isValidTimeZone(timeZone)) {
    throw new ReconError('invalid_time_zone', `unknown time zone "${timeZone}"`, { timeZone });
  }
  const d = typeof duration === 'string' ? parseIsoDuration(duration) : checkedDuration(duration);

  const hasCalendarPart = d.years + d.months + d.weeks + d.days > 0;
  const afterCalendar = hasCalendarPart
    ? add(new TZDate(instant.getTime(), timeZone), {
        years: d.years,
        months: d.months,
        weeks: d.weeks,
        days: d.days,
      }).getTime()
    : instant.getTime();

  const exactMs = d.hours * 3_600_000 + d.minutes * 60_000 + Math.round(d.seconds * 1000);
  const result = new Date(afterCalendar + exactMs);
  if (Number.isNaN(result.getTime())) {
    throw new ReconError('duration_out_of_range', 'the duration takes the date outside the representable range', {
      instant: instant.toISOString(),
      duration,
    });
  }
  return result;
}
