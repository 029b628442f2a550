/**
 * When a delivery is tried again, and when a sink can no longer be trusted to recognise a resend.
 * Pure, so the rules are tested on their own.
 */

const FIRST_RETRY_MS = 30_000;
const LONGEST_RETRY_MS = 60 * 60_000;

/** Backoff after the n-th attempt (n >= 1): 30 s, 1 min, 2 min, … at most an hour; a sink down for days is tried hourly. */
export function nextAttemptDelayMs(attempt: number): number {
  const n = Math.max(1, Math.floor(attempt));
  return Math.min(LONGEST_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.min(n - 1, 20));
}

/**
 * A margin inside the sink's memory: a resend must arrive while the sink still remembers the first
 * send, and the clocks of the worker and the sink differ a little.
 */
export const DEDUP_WINDOW_MARGIN_MS = 10 * 60_000;

/** Whether a send first made at `firstAttemptAt` may no longer be recognised by the sink if sent again now. */
export function isPastDedupWindow(firstAttemptAt: Date, now: Date, windowMs: number): boolean {
  return now.getTime() - firstAttemptAt.getTime() > windowMs - DEDUP_WINDOW_MARGIN_MS;
}
