import { createHash } from 'node:crypto';
import type { Pool, PoolClient } from '../db/pool';
import { loadContractHistory } from '../db/contracts';
import { versionMappingSource } from '../domain/contract-history';
import { ReconError } from '../domain/errors';
import { isPulledRecordSource, type PulledRecordSource } from '../domain/sources';
import { importRecordRows } from '../ingest/records-import';
import type { ImportSummary } from '../ingest/staging';
import type { RowResult } from './rows';
import type { PageItem, RecordSourceClient } from './api-types';

/**
 * Pulls a record source's next page from its API and imports it, the cursor saved in the same
 * transaction as the page's record versions. The API's rate limit is kept in the database (the
 * source's request window), so it holds across activity retries and workers; a wait longer than
 * a moment goes back to the workflow, which waits durably.
 */

export type ClientFor = (config: PulledRecordSource) => RecordSourceClient<PulledRecordSource>;

export interface CursorRow {
  tenant_id: string;
  source: string;
  kind: string;
  cursor: unknown;
  pages: number;
  rows_received: number;
  last_pull_at: Date | null;
  window_started_at: Date | null;
  window_requests: number;
  rate_limit_waits: number;
  rate_limit_wait_ms: number;
  last_error: string | null;
  last_error_at: Date | null;
}

export type RecordPullResult =
  | { status: 'page'; import: ImportSummary; caughtUp: boolean }
  /** The API's budget is spent (or it answered 429): ask again after this long. */
  | { status: 'wait'; waitMs: number };

export async function readSourceCursor(
  db: Pool | PoolClient,
  tenant: string,
  source: string,
): Promise<CursorRow | null> {
  const { rows } = await db.query<CursorRow>('select * from source_cursors where tenant_id = $1 and source = $2', [
    tenant,
    source,
  ]);
  return rows[0] ?? null;
}

/**
 * How long until the window has room for one more request, given the requests it has seen;
 * 0 when there is room now. Pure, so the rule is tested on its own.
 */
export function rateLimitWaitMs(
  window: { startedAt: Date | null; requests: number },
  limit: { requests: number; perMs: number },
  now: Date,
): number {
  if (!window.startedAt) return 0;
  const elapsed = now.getTime() - window.startedAt.getTime();
  if (elapsed >= limit.perMs || elapsed < 0) return 0;
  return window.requests < limit.requests ? 0 : limit.perMs - elapsed;
}

/** The pulled record source `source` of the tenant's contract, or a one-line error saying why not. */
export async function pulledSourceConfig(pool: Pool, tenant: string, source: string): Promise<PulledRecordSource> {
  const history = await loadContractHistory(pool, tenant);
  const config = versionMappingSource(history, source)?.body.recordSources[source];
  if (!config) throw new ReconError('unknown_source', `record source "${source}" is not in the contract of ${tenant}`);
  if (!isPulledRecordSource(config))
    throw new ReconError(
      'not_a_pulled_source',
      `record source "${source}" of ${tenant} is a file source: import its exports with recon records import`,
    );
  return config;
}

export async function pullRecordPage(
  pool: Pool,
  args: {
    tenant: string;
    source: string;
    clientFor: ClientFor;
    env: Record<string, string | undefined>;
    now: () => Date;
    timeoutMs?: number;
  },
): Promise<RecordPullResult> {
  const config = await pulledSourceConfig(pool, args.tenant, args.source);
  const client = args.clientFor(config);
  const limit = client.rateLimit(config);
  await pool.query(
    `insert into source_cursors (tenant_id, source, kind) values ($1, $2, $3) on conflict (tenant_id, source) do nothing`,
    [args.tenant, args.source, config.kind],
  );
  // The request is counted before it is made: a crash after sending still used the budget.
  const now = args.now();
  const taken = await takeRequest(pool, args.tenant, args.source, limit, now);
  if (taken.waitMs > 0) return { status: 'wait', waitMs: taken.waitMs };

  const outcome = await client.fetchPage(config, taken.cursor, {
    now,
    env: args.env,
    timeoutMs: args.timeoutMs ?? 30_000,
  });
  switch (outcome.status) {
    case 'rate_limited':
      // The window is full until Retry-After has passed (a window started that long less one
      // window ago), not for a whole window from now: Zendesk's is a minute, and a 429 saying
      // "retry in 1 s" must not cost the next request a minute.
      await pool.query(
        `update source_cursors set rate_limit_waits = rate_limit_waits + 1, rate_limit_wait_ms = rate_limit_wait_ms + $3,
                window_started_at = $4, window_requests = $5
          where tenant_id = $1 and source = $2`,
        [
          args.tenant,
          args.source,
          outcome.retryAfterMs,
          new Date(now.getTime() + Math.min(outcome.retryAfterMs, limit.perMs) - limit.perMs),
          limit.requests,
        ],
      );
      return { status: 'wait', waitMs: Math.max(1_000, outcome.retryAfterMs) };
    case 'retry':
      await noteError(pool, args.tenant, args.source, outcome.error);
      throw new ReconError('source_unavailable', `record source ${args.source} of ${args.tenant}: ${outcome.error}`);
    case 'auth':
      await noteError(pool, args.tenant, args.source, outcome.error);
      throw new ReconError('source_auth_failed', `record source ${args.source} of ${args.tenant}: ${outcome.error}`);
    case 'broken':
      await noteError(pool, args.tenant, args.source, outcome.error);
      throw new ReconError('source_bad_response', `record source ${args.source} of ${args.tenant}: ${outcome.error}`);
    case 'page':
      break;
  }
  const page = outcome.page;
  const cursorText = JSON.stringify(taken.cursor ?? null);
  const origin = `${args.source}@${cursorText.length > 80 ? `${cursorText.slice(0, 77)}…` : cursorText}`;
  const summary = await importRecordRows(pool, {
    tenant: args.tenant,
    source: args.source,
    origin,
    contentSha256: createHash('sha256')
      .update(`${cursorText}\n${page.items.map((i) => i.raw).join('\n')}`)
      .digest('hex'),
    rows: pageRows(page.items, origin),
    importedAt: now,
    beforeCommit: async (db) => {
      await db.query(
        `update source_cursors
            set cursor = $3::jsonb, pages = pages + 1, rows_received = rows_received + $4, last_pull_at = $5,
                last_error = null, updated_at = now()
          where tenant_id = $1 and source = $2`,
        [args.tenant, args.source, JSON.stringify(page.next ?? null), page.items.length, now],
      );
    },
  });
  return { status: 'page', import: summary, caughtUp: page.done };
}

/** Counts one request in the source's window, or says how long until the window has room. */
async function takeRequest(
  pool: Pool,
  tenant: string,
  source: string,
  limit: { requests: number; perMs: number },
  now: Date,
): Promise<{ waitMs: number; cursor: unknown }> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const row = await readSourceCursorForUpdate(client, tenant, source);
    const waitMs = rateLimitWaitMs({ startedAt: row.window_started_at, requests: row.window_requests }, limit, now);
    if (waitMs > 0) {
      await client.query(
        `update source_cursors set rate_limit_waits = rate_limit_waits + 1, rate_limit_wait_ms = rate_limit_wait_ms + $3
          where tenant_id = $1 and source = $2`,
        [tenant, source, waitMs],
      );
    } else {
      const fresh = !row.window_started_at || now.getTime() - row.window_started_at.getTime() >= limit.perMs;
      await client.query(
        `update source_cursors set window_started_at = $3, window_requests = $4 where tenant_id = $1 and source = $2`,
        [tenant, source, fresh ? now : row.window_started_at, fresh ? 1 : row.window_requests + 1],
      );
    }
    await client.query('commit');
    return { waitMs, cursor: row.cursor };
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

async function readSourceCursorForUpdate(db: PoolClient, tenant: string, source: string): Promise<CursorRow> {
  const { rows } = await db.query<CursorRow>(
    'select * from source_cursors where tenant_id = $1 and source = $2 for update',
    [tenant, source],
  );
  return rows[0];
}

async function noteError(pool: Pool, tenant: string, source: string, error: string): Promise<void> {
  await pool.query(
    'update source_cursors set last_error = $3, last_error_at = now() where tenant_id = $1 and source = $2',
    [tenant, source, error],
  );
}

// The importer takes rows as an async iterable (files stream theirs); this page is in memory already.
// eslint-disable-next-line @typescript-eslint/require-await
async function* pageRows(items: PageItem[], origin: string): AsyncGenerator<RowResult> {
  let row = 0;
  for (const item of items) {
    row++;
    const position = { line: row, row };
    if (item.ok) yield { ok: true, position, raw: item.raw, values: item.values };
    else
      yield {
        ok: false,
        position,
        raw: item.raw,
        code: item.code,
        reason: `${origin} item ${row}${item.id ? ` (id ${item.id})` : ''}: ${item.reason}`,
      };
  }
}
