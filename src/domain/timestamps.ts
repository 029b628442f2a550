import { TZDate } from '@date-fns/tz';
import { isValidTimeZone } from './durations';
import { ReconError } from './errors';

// Date, then optionally a time ('T', 't' or a space), then optionally an offset. The offset group
// sits inside the time group: '2026-03-01Z' is not a timestamp. Years of five or more digits are
// matched only so that they can be reported as out of range rather than as unreadable.
const TIMESTAMP_PATTERN =
  /^(\d{4,})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?)?$/;

const MIN_YEAR = 1970;
const MAX_YEAR = 9999;
const MAX_QUOTED_LENGTH = 80;

function quoted(text: string): string {
  // A whole garbled CSV line must not end up in every error message and log line, and a line
  // break or escape sequence from a file must not break the one-line reason support reads.
  const cut = text.length > MAX_QUOTED_LENGTH ? `${text.slice(0, MAX_QUOTED_LENGTH)}…` : text;
  return cut.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function unreadable(text: string, reason: string): ReconError {
  return new ReconError(
    'bad_timestamp',
    `unreadable timestamp "${quoted(text)}" (expected ISO 8601, e.g. 2026-03-01T10:00:00Z)`,
    { text: quoted(text), reason },
  );
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function daysInMonth(year: number, month: number): number {
  const days = [31, isLeapYear(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return days[month - 1];
}

function millisecondsOf(fraction: string | undefined): number {
  // Truncated, not rounded, to Date's millisecond resolution: rounding '59.9995' up would
  // carry into the next minute and change what the customer wrote.
  return fraction === undefined ? 0 : Number(fraction.slice(0, 3).padEnd(3, '0'));
}

/**
 * Reads a timestamp from a customer's file.
 *
 * - With 'Z' or an offset (+02:00, +0200, +02): that exact instant.
 * - Without an offset (date-time or bare date): the wall time in `defaultTimeZone`; a bare date
 *   is local midnight. A wall time that does not exist (spring-forward gap) moves forward by
 *   the gap, e.g. 02:30 on 2026-03-08 in New York is 03:30 EDT; a wall time that occurs twice
 *   (fall-back overlap) is the earlier instant, e.g. 01:30 on 2026-11-01 is 01:30 EDT.
 *   Both are what TZDate gives; customers' files carry no information to do better.
 * - Fractional seconds beyond milliseconds are truncated.
 *
 * Rejects anything else, including impossible calendar dates (2026-02-30), hour 24 and leap
 * seconds, with 'bad_timestamp'; written years outside 1970-9999 with 'timestamp_out_of_range'.
 */
export function parseCustomerTimestamp(text: string, defaultTimeZone: string): Date {
  if (!isValidTimeZone(defaultTimeZone)) {
    // Checked even for rows with an offset so that a bad configuration fails on the first row.
    throw new ReconError('invalid_time_zone', `unknown time zone "${defaultTimeZone}"`, { timeZone: defaultTimeZone });
  }
  if (typeof text !== 'string') throw unreadable(String(text), 'not a string');
  const trimmed = text.trim();
  const match = TIMESTAMP_PATTERN.exec(trimmed);
  if (!match) throw unreadable(trimmed, 'not ISO 8601');

  const [, yearText, monthText, dayText, hourText, minuteText, secondText, fraction, zulu, sign, offHours, offMinutes] =
    match;
  const year = Number(yearText);
  const month = Number(monthText);
  const day = Number(dayText);
  const hour = hourText === undefined ? 0 : Number(hourText);
  const minute = minuteText === undefined ? 0 : Number(minuteText);
  const second = secondText === undefined ? 0 : Number(secondText);
  const millisecond = millisecondsOf(fraction);

  if (month < 1 || month > 12) throw unreadable(trimmed, 'no such month');
  if (day < 1 || day > daysInMonth(year, month)) throw unreadable(trimmed, 'no such day');
  if (hour > 23 || minute > 59 || second > 59) throw unreadable(trimmed, 'no such time of day');
  if (year < MIN_YEAR || year > MAX_YEAR) {
    throw new ReconError(
      'timestamp_out_of_range',
      `timestamp "${quoted(trimmed)}" is outside the supported years ${MIN_YEAR}-${MAX_YEAR}`,
      { text: quoted(trimmed) },
    );
  }

  if (zulu !== undefined || sign !== undefined) {
    const offsetHours = sign === undefined ? 0 : Number(offHours);
    const offsetMinutes = offMinutes === undefined ? 0 : Number(offMinutes);
    if (offsetHours > 23 || offsetMinutes > 59) throw unreadable(trimmed, 'no such offset');
    const offsetMs = (sign === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
    const wallAsUtc = Date.UTC(year, month - 1, day, hour, minute, second, millisecond);
    return withinRange(trimmed, new Date(wallAsUtc - offsetMs));
  }

  const local = new TZDate(year, month - 1, day, hour, minute, second, millisecond, defaultTimeZone);
  return withinRange(trimmed, new Date(local.getTime()));
}

// The written year may be in range while the instant is not: 9999-12-31T23:30-05:00 is in the
// year 10000 in UTC, which PostgreSQL cannot read back from an ISO string.
const MAX_INSTANT = Date.UTC(MAX_YEAR + 1, 0, 1);

function withinRange(text: string, instant: Date): Date {
  if (instant.getTime() >= MAX_INSTANT) {
    throw new ReconError(
      'timestamp_out_of_range',
      `timestamp "${quoted(text)}" is after the end of year ${MAX_YEAR} in UTC`,
      { text: quoted(text) },
    );
  }
  return instant;
}

export function formatUtc(d: Date): string {
  return d.toISOString();
}
