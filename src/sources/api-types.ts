/**
 * What the generic pull (src/sources/record-pull.ts) and an API record source's client
 * (zendesk.ts, hubspot.ts) say to each other. The pull owns the database: the cursor, the rate
 * limit's window, the import of each page with its cursor in one transaction. A client owns the
 * wire: one request for the page after a cursor, and what the answer means. Clients never touch
 * the database, and never put a secret into an error.
 */

/** One object of a page: flat values keyed by column (dotted paths: `metric_set.solved_at`), or why it is unusable. */
export type PageItem =
  | { ok: true; values: Record<string, unknown>; raw: string }
  /** A malformed object: quarantined with its id (when it has one) and the reason. */
  | { ok: false; id: string | null; raw: string; code: string; reason: string };

export interface SourcePage {
  items: PageItem[];
  /** The cursor to save with this page: JSON-serialisable, handed back on the next call. */
  next: unknown;
  /** Nothing more to read now (Zendesk's end_of_stream; HubSpot's last page of the last window). */
  done: boolean;
}

export type FetchOutcome =
  | { status: 'page'; page: SourcePage }
  /** 429: wait this long before the next request (Retry-After, or the documented window). */
  | { status: 'rate_limited'; retryAfterMs: number }
  /** 5xx, a timeout, a dropped connection: the activity is retried. */
  | { status: 'retry'; error: string }
  /** 401/403: the credentials are wrong; the error names the environment variable(s), never the secret. */
  | { status: 'auth'; error: string }
  /** The answer is not the documented shape: fail loudly rather than import nothing. */
  | { status: 'broken'; error: string };

export interface SourceContext {
  /** The wall clock (API windows are real time). */
  now: Date;
  /** Where the secrets named in the contract are read from (the worker's environment). */
  env: Record<string, string | undefined>;
  timeoutMs: number;
}

export interface RecordSourceClient<C> {
  kind: 'zendesk' | 'hubspot';
  /** The API's documented request budget, kept by the pull across activities and workers. */
  rateLimit(config: C): { requests: number; perMs: number };
  /** The page after `cursor` (null: the first pull, from the config's startTime). Never throws. */
  fetchPage(config: C, cursor: unknown, ctx: SourceContext): Promise<FetchOutcome>;
}
