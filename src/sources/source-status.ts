import type { Pool } from '../db/pool';
import { loadContractHistory } from '../db/contracts';
import { ReconError, oneLine } from '../domain/errors';
import type { ContractHistory } from '../domain/contract-history';
import { isPulledRecordSource, type ClaimSourceConfig, type RecordSourceConfig } from '../domain/sources';
import { stageClaimRow } from '../ingest/claim-row';
import { ClaimPageSchema } from './http-claims';
import { KeysetSchema, readPostgresClaimPage, type Keyset } from './postgres-claims';
import { readSourceCursor, type ClientFor, type CursorRow } from './record-pull';

/**
 * What `recon source status` and `recon source test` show: where each pulled source stands, and
 * whether a source's credentials work and what its next page holds, without writing anything.
 */

export interface SourceStatus {
  source: string;
  /** records or claims */
  role: 'records' | 'claims';
  kind: string;
  /** Still named by the newest contract version (a source dropped from it keeps its cursor). */
  inContract: boolean;
  cursor: unknown;
  lastPullAt: string | null;
  pages: number;
  rows: number;
  rateLimitWaits: number;
  rateLimitWaitMs: number;
  lastError: string | null;
  lastErrorAt: string | null;
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

/** Every source the night pulls for the tenant (API record sources, claim sources), with its cursor and counters. */
export async function sourceStatus(pool: Pool, tenant: string): Promise<SourceStatus[]> {
  const history = await loadContractHistory(pool, tenant);
  const latest = history.versions[history.versions.length - 1]?.body;
  const out = new Map<string, SourceStatus>();
  const blank = (source: string, role: SourceStatus['role'], kind: string, inContract: boolean): SourceStatus => ({
    source,
    role,
    kind,
    inContract,
    cursor: null,
    lastPullAt: null,
    pages: 0,
    rows: 0,
    rateLimitWaits: 0,
    rateLimitWaitMs: 0,
    lastError: null,
    lastErrorAt: null,
  });
  for (const [name, s] of Object.entries(latest?.recordSources ?? {}))
    if (isPulledRecordSource(s)) out.set(`records:${name}`, blank(name, 'records', s.kind, true));
  for (const [name, s] of Object.entries(latest?.claimSources ?? {}))
    out.set(`claims:${name}`, blank(name, 'claims', s.kind, true));

  const { rows: pulled } = await pool.query<
    Pick<
      CursorRow,
      | 'source'
      | 'kind'
      | 'cursor'
      | 'pages'
      | 'rows_received'
      | 'last_pull_at'
      | 'rate_limit_waits'
      | 'rate_limit_wait_ms'
      | 'last_error'
      | 'last_error_at'
    >
  >(
    `select source, kind, cursor, pages, rows_received, last_pull_at, rate_limit_waits, rate_limit_wait_ms,
            last_error, last_error_at
       from source_cursors where tenant_id = $1 order by source`,
    [tenant],
  );
  for (const r of pulled) {
    const role = r.kind === 'postgres' ? 'claims' : 'records';
    const key = `${role}:${r.source}`;
    out.set(key, {
      ...(out.get(key) ?? blank(r.source, role, r.kind, false)),
      cursor: r.cursor,
      lastPullAt: iso(r.last_pull_at),
      pages: r.pages,
      rows: r.rows_received,
      rateLimitWaits: r.rate_limit_waits,
      rateLimitWaitMs: r.rate_limit_wait_ms,
      lastError: r.last_error,
      lastErrorAt: iso(r.last_error_at),
    });
  }
  // HTTP claim feeds keep their cursor in claim_cursors; their rows are what their imports received.
  const { rows: http } = await pool.query<{
    source: string;
    cursor: string | null;
    pages: number;
    updated_at: Date;
    rows: number;
  }>(
    `select c.source, c.cursor, c.pages, c.updated_at,
            coalesce((select sum(i.received) from imports i
                       where i.tenant_id = c.tenant_id and i.kind = 'claims' and i.source = c.source), 0)::bigint as rows
       from claim_cursors c where c.tenant_id = $1 order by c.source`,
    [tenant],
  );
  for (const r of http) {
    const key = `claims:${r.source}`;
    out.set(key, {
      ...(out.get(key) ?? blank(r.source, 'claims', 'http', false)),
      cursor: r.cursor,
      lastPullAt: iso(r.updated_at),
      pages: r.pages,
      rows: r.rows,
    });
  }
  return [...out.values()].sort((a, b) => a.role.localeCompare(b.role) || a.source.localeCompare(b.source));
}

export interface SourceTestResult {
  tenant: string;
  source: string;
  role: 'records' | 'claims';
  kind: string;
  /** The saved cursor the page was read after (null: from the start). */
  cursor: unknown;
  count: number;
  first: { id: string | null; updatedAt: string | null } | null;
  last: { id: string | null; updatedAt: string | null } | null;
  /** Items of the page the import would quarantine, and the first reason. */
  unusable: number;
  firstProblem: string | null;
  caughtUp: boolean;
}

function newestNaming(
  history: ContractHistory,
  source: string,
): { role: 'records'; config: RecordSourceConfig } | { role: 'claims'; config: ClaimSourceConfig } | null {
  for (let k = history.versions.length - 1; k >= 0; k--) {
    const body = history.versions[k].body;
    if (body.recordSources[source]) return { role: 'records', config: body.recordSources[source] };
    if (body.claimSources[source]) return { role: 'claims', config: body.claimSources[source] };
  }
  return null;
}

const text = (v: unknown): string | null =>
  v === null || v === undefined ? null : typeof v === 'string' ? v : JSON.stringify(v);

/**
 * Checks a source's credentials by reading its next page (after the saved cursor), and says what
 * the page holds. Writes nothing: no cursor, no request window, no import. (An API request made
 * here does count against the API's own rate limit.)
 */
export async function testSource(
  pool: Pool,
  args: {
    tenant: string;
    source: string;
    env: Record<string, string | undefined>;
    now: Date;
    clientFor: ClientFor;
    timeoutMs?: number;
  },
): Promise<SourceTestResult> {
  const { tenant, source } = args;
  const found = newestNaming(await loadContractHistory(pool, tenant), source);
  if (!found) throw new ReconError('unknown_source', `source "${source}" is not in the contract of ${tenant}`);
  const base = { tenant, source, role: found.role, kind: found.config.kind ?? 'file' };

  if (found.role === 'records') {
    const config = found.config;
    if (!isPulledRecordSource(config))
      throw new ReconError(
        'not_a_pulled_source',
        `record source "${source}" of ${tenant} is a file source: nothing to test; import its exports with recon records import`,
      );
    const cursor = (await readSourceCursor(pool, tenant, source))?.cursor ?? null;
    const outcome = await args.clientFor(config).fetchPage(config, cursor, {
      now: args.now,
      env: args.env,
      timeoutMs: args.timeoutMs ?? 30_000,
    });
    const head = `record source ${source} of ${tenant}`;
    switch (outcome.status) {
      case 'rate_limited':
        throw new ReconError(
          'source_rate_limited',
          `${head}: the API answered 429 (rate limited); try again in ${Math.ceil(outcome.retryAfterMs / 1000)} s`,
        );
      case 'auth':
        throw new ReconError('source_auth_failed', `${head}: ${outcome.error}`);
      case 'retry':
        throw new ReconError('source_unavailable', `${head}: ${outcome.error}`);
      case 'broken':
        throw new ReconError('source_bad_response', `${head}: ${outcome.error}`);
      case 'page':
        break;
    }
    const idColumn = config.fields[config.idField]?.column;
    const updatedColumn = config.updatedAtField ? config.fields[config.updatedAtField]?.column : undefined;
    const items = outcome.page.items;
    const point = (i: (typeof items)[number] | undefined) =>
      !i
        ? null
        : i.ok
          ? {
              id: text(idColumn ? i.values[idColumn] : null),
              updatedAt: text(updatedColumn ? i.values[updatedColumn] : null),
            }
          : { id: i.id, updatedAt: null };
    const bad = items.filter((i) => !i.ok);
    return {
      ...base,
      cursor,
      count: items.length,
      first: point(items[0]),
      last: point(items[items.length - 1]),
      unusable: bad.length,
      firstProblem: bad[0] && !bad[0].ok ? `${bad[0].id ? `id ${bad[0].id}: ` : ''}${bad[0].reason}` : null,
      caughtUp: outcome.page.done,
    };
  }

  const config = found.config;
  if (config.kind === 'postgres') {
    const saved = (await readSourceCursor(pool, tenant, source))?.cursor ?? null;
    const parsed = KeysetSchema.nullable().safeParse(saved);
    const cursor: Keyset | null = parsed.success ? parsed.data : null;
    const page = await readPostgresClaimPage({ tenant, source, config, env: args.env }, cursor);
    return {
      ...base,
      cursor,
      count: page.rows.length,
      first: page.rows[0] ? { id: page.rows[0].keyset.id, updatedAt: page.rows[0].keyset.updatedAt } : null,
      last: page.rows.length
        ? {
            id: page.rows[page.rows.length - 1].keyset.id,
            updatedAt: page.rows[page.rows.length - 1].keyset.updatedAt,
          }
        : null,
      ...claimProblems(
        page.rows.map((r) => r.values),
        args.now,
      ),
      caughtUp: page.caughtUp,
    };
  }

  // An HTTP claim feed: the page after its saved cursor, as the night would ask for it.
  const { rows } = await pool.query<{ cursor: string | null }>(
    'select cursor from claim_cursors where tenant_id = $1 and source = $2',
    [tenant, source],
  );
  const cursor = rows[0]?.cursor ?? null;
  const url = new URL(config.url);
  url.searchParams.set('limit', String(config.pageSize));
  if (cursor) url.searchParams.set('cursor', cursor);
  let body: unknown;
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(args.timeoutMs ?? 30_000),
      headers: { accept: 'application/json' },
    });
    const raw = await res.text();
    if (!res.ok)
      throw new ReconError('claims_http_status', `claims source ${source} answered ${res.status} for ${url.pathname}`);
    body = JSON.parse(raw);
  } catch (err) {
    if (err instanceof ReconError) throw err;
    throw new ReconError(
      err instanceof SyntaxError ? 'claims_http_bad_page' : 'claims_http_unreachable',
      `claims source ${source}: ${oneLine((err as Error).message)}`,
    );
  }
  const page = ClaimPageSchema.safeParse(body);
  if (!page.success)
    throw new ReconError(
      'claims_http_bad_page',
      `claims source ${source} sent a page that is not {claims, next_cursor}: ${oneLine(page.error.message)}`,
    );
  const claims = page.data.claims;
  const point = (c: unknown) =>
    c && typeof c === 'object' ? { id: text((c as Record<string, unknown>).claim_id), updatedAt: null } : null;
  return {
    ...base,
    cursor,
    count: claims.length,
    first: point(claims[0]),
    last: point(claims[claims.length - 1]),
    ...claimProblems(
      claims.map((c) => (c && typeof c === 'object' && !Array.isArray(c) ? (c as Record<string, unknown>) : null)),
      args.now,
    ),
    caughtUp: claims.length === 0 || page.data.next_cursor === null || page.data.next_cursor === cursor,
  };
}

/** How many claims of a page the import would quarantine on their own (outcome types aside). */
function claimProblems(
  values: Array<Record<string, unknown> | null>,
  now: Date,
): { unusable: number; firstProblem: string | null } {
  let unusable = 0;
  let firstProblem: string | null = null;
  values.forEach((v, i) => {
    let problem: string | null = null;
    if (!v) problem = 'expected a JSON object';
    else
      try {
        stageClaimRow(v, now);
      } catch (err) {
        problem = oneLine((err as Error).message);
      }
    if (problem === null) return;
    unusable++;
    firstProblem ??= `row ${i + 1}${v && typeof v.claim_id === 'string' ? ` (claim ${v.claim_id})` : ''}: ${problem}`;
  });
  return { unusable, firstProblem };
}
