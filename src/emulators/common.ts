/**
 * What every local emulator of a billing sink offers, so that tests, the fault suite, the demo and
 * `recon emulate` drive them alike. Each emulator listens on 127.0.0.1 only, keeps the state its
 * vendor documents (what was accepted, what it remembers for deduplication) and can be told to
 * fail the way the vendor's API fails.
 *
 * Control endpoints, on the emulator's own port (never part of the vendor's API):
 *   GET  /_emulator/state            the emulator's state as JSON
 *   POST /_emulator/fault            body: Fault, replaces the current fault
 *   POST /_emulator/clock            body: { offsetMs: number }: the emulator's clock runs this far ahead
 */

export type FaultMode =
  /** Behave as documented. */
  | 'none'
  /** Drop every connection without an answer (the sink is down). */
  | 'down'
  /** Answer 500 without doing anything. */
  | 'error500'
  /** Answer 429 with Retry-After: retryAfterSeconds, without doing anything. */
  | 'rate_limit'
  /** Do the request (state changes), then drop the connection without an answer: the ambiguous case. */
  | 'accept_then_drop'
  /**
   * Do the request (state changes), then hold the answer for holdMs before sending it: a client
   * that dies or gives up meanwhile never hears it (the fault suite kills the worker then).
   */
  | 'hold';

export interface Fault {
  mode: FaultMode;
  /** How many requests the fault applies to before the emulator behaves again (default: all). */
  times?: number;
  retryAfterSeconds?: number;
  /** For 'hold': how long the answer is held (default 10 s). */
  holdMs?: number;
}

export interface EmulatorOptions {
  /** 0 or absent: any free port. The host is always 127.0.0.1. */
  port?: number;
  /** When set, the state is read from this file at start and written to it after every change. */
  stateFile?: string;
  /** The credential the emulator accepts (API key, bearer token, or webhook secret); a wrong one gets 401. */
  secret: string;
  /** Logs one line per request when given. */
  log?: (line: string) => void;
}

export interface EmulatorHandle {
  /** http://127.0.0.1:<port>, to use as the sink's apiBase (or the webhook URL's origin). */
  url: string;
  port: number;
  setFault(fault: Fault): void;
  /** Moves the emulator's clock (its dedup windows, timestamp checks) this far ahead of the wall clock. */
  setClockOffset(ms: number): void;
  close(): Promise<void>;
}
