import { createHash } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import type { Pool, PoolClient } from '../db/pool';
import { loadContractHistory } from '../db/contracts';
import { ReconError, oneLine } from '../domain/errors';
import type { PostgresClaimSourceConfig } from '../domain/sources';
import { importClaimRows } from '../ingest/claims-import';
import type { ImportSummary } from '../ingest/staging';
import { readSourceCursor } from './record-pull';
import { nulCharacterReason, type RowResult } from './rows';

/**
 * Claims read straight from the AI side's own PostgreSQL: a table or view, paged by keyset on
 * (update time, id) in a read-only transaction. The keyset is kept as the server's own text of
 * both values and handed back untyped, so PostgreSQL reads it as the columns' own types: a
 * timestamptz keeps its microseconds (a JS Date would round them to milliseconds, and rows whose
 * update times differ by less than that would be skipped or read twice at a page boundary). The
 * cursor is saved in `source_cursors` in the transaction that imports the page it covers.
 */

/** The claim columns we read; the first four are required (an update time and an id besides). */
const REQUIRED_COLUMNS = ['claim_id', 'outcome_type', 'subject_ref', 'occurred_at'] as const;
const OPTIONAL_COLUMNS = ['attributes', 'retracted', 'retracted_at'] as const;
const TIME_COLUMNS = new Set(['occurred_at', 'retracted_at']);

export const KeysetSchema = z.object({ updatedAt: z.string(), id: z.string() });
export type Keyset = z.infer<typeof KeysetSchema>;

/** One page as the AI side's database holds it: rows as read, and the keyset after the last one. */
export interface ClaimPage {
  rows: Array<{ values: Record<string, unknown>; raw: string; keyset: Keyset }>;
  /** The keyset after this page (the one given when the page is empty). */
  next: Keyset | null;
  caughtUp: boolean;
}

// json, jsonb and bool are read as values; everything else as the server's text. Ids and update
// times stay exact (no JS Date, no bigint rounded to a double), whatever their types.
const KEEP_PARSED = new Set([16, 114, 3802]);
const RAW_TEXT = {
  getTypeParser: (oid: number, format?: string) =>
    KEEP_PARSED.has(oid) ? (pg.types.getTypeParser(oid, format as 'text') as (v: string) => unknown) : (v: string) => v,
};

// ---------------------------------------------------------------------------------------------
// Connections: one small pool per URL, kept for the worker's life, so a night does not connect
// once per page. Idle connections close after a minute and never keep a process alive.

const MAX_POOLS = 16;
const pools = new Map<string, pg.Pool>();

function poolFor(url: string): pg.Pool {
  let p = pools.get(url);
  if (p) return p;
  if (pools.size >= MAX_POOLS) {
    // A URL that changed (a rotated password) leaves its old pool behind: drop the oldest.
    const [oldUrl, old] = pools.entries().next().value as [string, pg.Pool];
    pools.delete(oldUrl);
    void old.end().catch(() => undefined);
  }
  p = new pg.Pool({
    connectionString: url,
    max: 2,
    idleTimeoutMillis: 60_000,
    connectionTimeoutMillis: 10_000,
    allowExitOnIdle: true,
    application_name: 'outcome-recon claims',
  });
  // An idle connection's network error must not crash the worker; the next page reconnects.
  p.on('error', () => undefined);
  pools.set(url, p);
  return p;
}

/** Closes every connection to the AI side's databases (the worker calls this when it stops). */
export async function closePostgresClaimPools(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((p) => p.end().catch(() => undefined)));
}

// ---------------------------------------------------------------------------------------------
// The contract's source and its errors

/** The claim source `source` of the tenant's newest contract version that names it, if it is a postgres one. */
export async function postgresClaimSourceConfig(
  pool: Pool,
  tenant: string,
  source: string,
): Promise<PostgresClaimSourceConfig> {
  const history = await loadContractHistory(pool, tenant);
  for (let k = history.versions.length - 1; k >= 0; k--) {
    const config = history.versions[k].body.claimSources[source];
    if (!config) continue;
    if (config.kind !== 'postgres')
      throw new ReconError(
        'unknown_source',
        `claim source "${source}" of ${tenant} is an ${config.kind} source, not a postgres one`,
      );
    return config;
  }
  throw new ReconError('unknown_source', `claim source "${source}" is not in the contract of ${tenant}`);
}

interface Where {
  tenant: string;
  source: string;
  config: PostgresClaimSourceConfig;
  /** host:port of the URL, for messages (never the URL: it holds the password). */
  host: string;
  relation: string;
}

function hostOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || 'localhost'}:${u.port || '5432'}`;
  } catch {
    return 'its host';
  }
}

function urlFrom(
  tenant: string,
  source: string,
  config: PostgresClaimSourceConfig,
  env: Record<string, string | undefined>,
) {
  const url = env[config.urlEnv]?.trim();
  if (!url)
    throw new ReconError(
      'claims_pg_env_missing',
      `claim source ${source} of ${tenant}: environment variable ${config.urlEnv} is not set; set it to the AI side's PostgreSQL URL (postgres://user:password@host:5432/db) where the worker runs, and where recon source test runs`,
    );
  let protocol = '';
  try {
    protocol = new URL(url).protocol;
  } catch {
    // not a URL at all: said below, without echoing it (it may hold the password)
  }
  if (protocol !== 'postgres:' && protocol !== 'postgresql:')
    throw new ReconError(
      'claims_pg_bad_url',
      `claim source ${source} of ${tenant}: environment variable ${config.urlEnv} does not hold a postgres:// URL; set it to postgres://user:password@host:5432/db`,
    );
  return url;
}

interface PgErrorLike {
  code?: unknown;
  message?: unknown;
  severity?: unknown;
}

/** A failure talking to the AI side's database as one line naming the variable, host or relation; never the password. */
function pgFailure(err: unknown, w: Where, password: string): ReconError {
  if (err instanceof ReconError) return err;
  const e = (err ?? {}) as PgErrorLike;
  const code = typeof e.code === 'string' ? e.code : '';
  let detail = oneLine(String(e.message ?? err));
  if (password) detail = detail.split(password).join('***');
  const head = `claim source ${w.source} of ${w.tenant}`;
  const env = w.config.urlEnv;
  const isServerError = typeof e.severity === 'string';
  let r: ReconError;
  if (code === '28P01' || code === '28000')
    r = new ReconError(
      'claims_pg_login_failed',
      `${head}: the AI side's PostgreSQL at ${w.host} refused the login (${detail}); check the user and password in ${env}`,
    );
  else if (code === '42P01' || code === '3F000')
    r = new ReconError(
      'claims_pg_relation_missing',
      `${head}: relation ${w.relation} does not exist in the AI side's database at ${w.host} (URL from ${env}); create it, or fix schema and relation in the contract`,
    );
  else if (code === '42703')
    r = new ReconError(
      'claims_pg_column_missing',
      `${head}: relation ${w.relation} at ${w.host} lacks a column the source reads (${detail}); the table changed, or fix updatedAtColumn/idColumn in the contract`,
    );
  else if (code === '42501' || code === '3D000')
    r = new ReconError(
      'claims_pg_refused',
      `${head}: the AI side's PostgreSQL at ${w.host} refused (${detail}); the login in ${env} needs its database and select on ${w.relation}`,
    );
  else if (
    (!isServerError && (/^E[A-Z]+$/.test(code) || /^(Connection terminated|timeout exceeded)/.test(detail))) ||
    code.startsWith('08') ||
    code.startsWith('57P')
  )
    // Not an answer from the server: refused, unknown host, timeout, connection lost.
    r = new ReconError(
      'claims_pg_unreachable',
      `${head}: cannot reach the AI side's PostgreSQL at ${w.host} (URL from ${env}): ${detail}; check that it is running and the URL in ${env}`,
    );
  else
    r = new ReconError(
      'claims_pg_query_failed',
      `${head}: the page query on ${w.relation} at ${w.host} failed: ${detail}`,
    );
  (r as Error & { cause?: unknown }).cause = err;
  return r;
}

function passwordOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------------------------
// Reading a page

/**
 * Runs `fn` in a READ ONLY transaction on the AI side's database: nothing we run there can
 * write, whatever the login may. Times come back in UTC and ISO style, so the keyset text is
 * always read back as the same instant.
 */
export async function withReadOnlySource<T>(
  url: string,
  fn: (client: pg.PoolClient) => Promise<T>,
  statementTimeoutMs = 60_000,
): Promise<T> {
  const client = await poolFor(url).connect();
  let broken = false;
  try {
    await client.query('begin transaction isolation level repeatable read read only');
    await client.query(`set local time zone 'UTC'`);
    await client.query(`set local datestyle = 'ISO, YMD'`);
    await client.query(`set local statement_timeout = ${Math.max(1, Math.floor(statementTimeoutMs))}`);
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch(() => {
      broken = true;
    });
    throw err;
  } finally {
    client.release(broken);
  }
}

/** The page after `cursor` (null: from the start), read-only. Throws one-line ReconErrors. */
export async function readPostgresClaimPage(
  args: { tenant: string; source: string; config: PostgresClaimSourceConfig; env: Record<string, string | undefined> },
  cursor: Keyset | null,
): Promise<ClaimPage> {
  const { tenant, source, config } = args;
  const url = urlFrom(tenant, source, config, args.env);
  const esc = pg.escapeIdentifier;
  const relation = `${esc(config.schema)}.${esc(config.relation)}`;
  const w: Where = { tenant, source, config, host: hostOf(url), relation };
  const u = esc(config.updatedAtColumn);
  const id = esc(config.idColumn);
  // The parameters stay untyped: PostgreSQL reads them as the columns' own types.
  const text = `select * from ${relation}${cursor ? ` where (${u}, ${id}) > ($1, $2)` : ''} order by ${u}, ${id} limit ${config.pageSize}`;
  let result: pg.QueryResult<Record<string, unknown>>;
  try {
    result = await withReadOnlySource(url, (client) =>
      client.query<Record<string, unknown>>({
        text,
        values: cursor ? [cursor.updatedAt, cursor.id] : [],
        types: RAW_TEXT,
      }),
    );
  } catch (err) {
    throw pgFailure(err, w, passwordOf(url));
  }
  const columns = new Set(result.fields.map((f) => f.name));
  const missing = [...REQUIRED_COLUMNS, config.updatedAtColumn, config.idColumn].filter((c) => !columns.has(c));
  if (missing.length > 0)
    throw new ReconError(
      'claims_pg_column_missing',
      `claim source ${source} of ${tenant}: relation ${relation} at ${w.host} lacks the ${missing.length === 1 ? 'column' : 'columns'} ${[...new Set(missing)].join(', ')}; a claim source needs claim_id, outcome_type, subject_ref, occurred_at and its update time`,
    );
  const rows = result.rows.map((row) => {
    const updatedAt = row[config.updatedAtColumn];
    const rowId = row[config.idColumn];
    if (updatedAt === null || rowId === null || updatedAt === undefined || rowId === undefined)
      // A null in the keyset would never be read again past the page it sits on: refuse it loudly.
      throw new ReconError(
        'claims_pg_bad_keyset',
        `claim source ${source} of ${tenant}: a row of ${relation} has no ${updatedAt === null || updatedAt === undefined ? config.updatedAtColumn : config.idColumn}; make the column not null`,
      );
    return {
      values: claimValues(row),
      raw: JSON.stringify(row),
      keyset: { updatedAt: keysetText(updatedAt), id: keysetText(rowId) },
    };
  });
  return {
    rows,
    next: rows.length > 0 ? rows[rows.length - 1].keyset : cursor,
    caughtUp: rows.length < config.pageSize,
  };
}

// Keyset columns come back as the server's text; a bool column (parsed) goes back as its text too.
const keysetText = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/** The claim fields of a row, times as ISO 8601 text. */
function claimValues(row: Record<string, unknown>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const c of [...REQUIRED_COLUMNS, ...OPTIONAL_COLUMNS]) {
    if (!(c in row)) continue;
    const v = row[c];
    values[c] = TIME_COLUMNS.has(c) && typeof v === 'string' ? isoTime(v) : v;
  }
  return values;
}

const PG_TIME = /^(\d{4,}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)(?:([+-])(\d{2})(?::?(\d{2}))?(?::\d{2})?)?$/;

/**
 * PostgreSQL's ISO output (`2026-03-02 10:00:00.123456+00`) as ISO 8601 (`…T10:00:00.123456Z`); a
 * text column already holding ISO 8601 is left as it is. A `timestamp` without a zone has no
 * offset, and the importer reads it as UTC, as it does any claim time without one.
 */
export function isoTime(text: string): string {
  const m = PG_TIME.exec(text);
  if (!m) return text;
  const [, date, time, sign, hh, mm] = m;
  if (!sign) return `${date}T${time}`;
  const offset = hh === '00' && (mm ?? '00') === '00' ? 'Z' : `${sign}${hh}:${mm ?? '00'}`;
  return `${date}T${time}${offset}`;
}

// ---------------------------------------------------------------------------------------------
// Pulling a page into the ledger

function savedKeyset(cursor: unknown, tenant: string, source: string): Keyset | null {
  if (cursor === null || cursor === undefined) return null;
  const parsed = KeysetSchema.safeParse(cursor);
  if (!parsed.success)
    // Another kind's cursor under this name (the source was renamed or changed kind).
    throw new ReconError(
      'claims_pg_bad_keyset',
      `claim source ${source} of ${tenant}: the saved cursor is not a keyset (${oneLine(JSON.stringify(cursor)).slice(0, 80)}); delete its row in source_cursors to read the relation from the start`,
    );
  return parsed.data;
}

// The importer takes rows as an async iterable (files stream theirs); this page is in memory already.
// eslint-disable-next-line @typescript-eslint/require-await
async function* pageRows(page: ClaimPage, origin: string): AsyncGenerator<RowResult> {
  let row = 0;
  for (const r of page.rows) {
    row++;
    const position = { line: row, row };
    const nul = nulCharacterReason(r.values);
    if (nul !== undefined)
      yield { ok: false, position, raw: r.raw, code: 'nul_character', reason: `${origin} row ${row}: ${nul}` };
    else yield { ok: true, position, raw: r.raw, values: r.values };
  }
}

async function saveKeyset(
  db: PoolClient,
  tenant: string,
  source: string,
  next: Keyset | null,
  rows: number,
  now: Date,
) {
  await db.query(
    `insert into source_cursors (tenant_id, source, kind, cursor, pages, rows_received, last_pull_at)
     values ($1, $2, 'postgres', $3::jsonb, 1, $4, $5)
     on conflict (tenant_id, source) do update
        set kind = 'postgres', cursor = excluded.cursor, pages = source_cursors.pages + 1,
            rows_received = source_cursors.rows_received + excluded.rows_received,
            last_pull_at = excluded.last_pull_at, last_error = null, updated_at = now()`,
    [tenant, source, JSON.stringify(next), rows, now],
  );
}

async function noteError(pool: Pool, tenant: string, source: string, error: string): Promise<void> {
  await pool
    .query(
      `insert into source_cursors (tenant_id, source, kind, last_error, last_error_at) values ($1, $2, 'postgres', $3, now())
       on conflict (tenant_id, source) do update set last_error = excluded.last_error, last_error_at = excluded.last_error_at`,
      [tenant, source, error],
    )
    .catch(() => undefined);
}

/**
 * Reads the page after the saved keyset and imports it; the new keyset commits with the claims it
 * covers, so a crash between the two can neither skip nor double a page.
 */
export async function pullPostgresClaimPage(
  pool: Pool,
  args: { tenant: string; source: string; env: Record<string, string | undefined>; now: Date },
): Promise<{ cursor: unknown; import: ImportSummary; caughtUp: boolean }> {
  const config = await postgresClaimSourceConfig(pool, args.tenant, args.source);
  const saved = await readSourceCursor(pool, args.tenant, args.source);
  const cursor = savedKeyset(saved?.cursor, args.tenant, args.source);
  let page: ClaimPage;
  try {
    page = await readPostgresClaimPage({ ...args, config }, cursor);
  } catch (err) {
    if (err instanceof ReconError) await noteError(pool, args.tenant, args.source, err.message);
    throw err;
  }
  const cursorText = cursor ? `${cursor.updatedAt}/${cursor.id}` : 'start';
  const origin = `${args.source}@${cursorText}`;
  const summary = await importClaimRows(pool, {
    tenant: args.tenant,
    source: args.source,
    origin,
    contentSha256: createHash('sha256')
      .update(`${JSON.stringify(cursor)}\n${page.rows.map((r) => r.raw).join('\n')}`)
      .digest('hex'),
    rows: pageRows(page, origin),
    receivedAt: args.now,
    beforeCommit: (db) => saveKeyset(db, args.tenant, args.source, page.next, page.rows.length, args.now),
  });
  return { cursor: page.next, import: summary, caughtUp: page.caughtUp };
}
