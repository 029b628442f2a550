import type { Pool, PoolClient } from '../db/pool';
import { ReconError } from '../domain/errors';
import type { RowResult } from '../sources/rows';

/** Rows are staged in batches with one multi-row statement each: set-based, never row by row. */
export const STAGE_BATCH = 2000;

export interface Quarantined {
  line: number;
  row: number;
  raw: string;
  code: string;
  reason: string;
}

export async function insertQuarantine(db: PoolClient, importId: number, tenant: string, source: string, origin: string, rows: Quarantined[]): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `insert into quarantine (tenant_id, import_id, source, origin, line, row_number, raw, code, reason)
     select $1, $2, $3, $4, q.line, q.row_number, q.raw, q.code, q.reason
       from unnest($5::int[], $6::int[], $7::text[], $8::text[], $9::text[]) as q(line, row_number, raw, code, reason)
     on conflict (import_id, row_number) do nothing`,
    [tenant, importId, source, origin, rows.map((r) => r.line), rows.map((r) => r.row), rows.map((r) => sanitiseText(r.raw)), rows.map((r) => r.code), rows.map((r) => sanitiseText(r.reason))],
  );
}

/** Postgres text cannot hold NUL; keep everything else of the raw row for the support person. */
export function sanitiseText(s: string): string {
  return s.includes('\u0000') ? s.replace(/\u0000/g, '\\0') : s;
}

export interface ImportCounts {
  received: number;
  accepted: number;
  redelivered: number;
  quarantined: number;
}

export interface ImportSummary extends ImportCounts {
  importId: number;
  replayed: boolean;
  origin: string;
  /** For a replayed import: the origin of the identical earlier one. */
  sameAs?: string;
  /** The first quarantined rows, for the person who ran the import. */
  problems: Array<{ line: number; row: number; code: string; reason: string }>;
}

/** Opens the import row; returns null when this exact content was already imported. */
export async function openImport(
  db: PoolClient,
  args: { tenant: string; kind: 'claims' | 'records' | 'disputes'; source: string; origin: string; contentSha256: string },
): Promise<number | null> {
  const { rows } = await db.query<{ import_id: number }>(
    `insert into imports (tenant_id, kind, source, origin, content_sha256) values ($1, $2, $3, $4, $5)
     on conflict (tenant_id, kind, source, content_sha256) do nothing returning import_id`,
    [args.tenant, args.kind, args.source, args.origin, args.contentSha256],
  );
  return rows[0]?.import_id ?? null;
}

/** The earlier import of identical content: this delivery counts for nothing new. */
export async function replayedImport(db: PoolClient, args: { tenant: string; kind: string; source: string; contentSha256: string; origin: string }): Promise<ImportSummary> {
  const { rows } = await db.query(
    `select import_id, origin, received, accepted, redelivered, quarantined from imports
      where tenant_id = $1 and kind = $2 and source = $3 and content_sha256 = $4`,
    [args.tenant, args.kind, args.source, args.contentSha256],
  );
  const r = rows[0];
  return { importId: r.import_id, origin: args.origin, sameAs: r.origin, replayed: true, received: r.received, accepted: r.accepted, redelivered: r.redelivered, quarantined: r.quarantined, problems: [] };
}

export async function closeImport(db: PoolClient, importId: number, c: ImportCounts): Promise<void> {
  if (c.received !== c.accepted + c.redelivered + c.quarantined) {
    throw new Error(`import ${importId} does not add up: received ${c.received} != ${c.accepted} + ${c.redelivered} + ${c.quarantined}`);
  }
  await db.query('update imports set received = $2, accepted = $3, redelivered = $4, quarantined = $5 where import_id = $1', [
    importId, c.received, c.accepted, c.redelivered, c.quarantined,
  ]);
}

export interface ImportTarget {
  tenant: string;
  kind: 'claims' | 'records' | 'disputes';
  source: string;
  origin: string;
  contentSha256: string;
  /** Runs inside the import's transaction, e.g. to save an HTTP cursor with the claims it covers. */
  beforeCommit?: (db: PoolClient) => Promise<void>;
}

/**
 * One import, one transaction: identical content seen before changes nothing; otherwise `body`
 * stages and merges the rows and returns the counts, which must add up before anything commits.
 */
export async function withImport(pool: Pool, target: ImportTarget, body: (db: PoolClient, importId: number) => Promise<ImportCounts>): Promise<ImportSummary> {
  const db = await pool.connect();
  try {
    await db.query('begin');
    const importId = await openImport(db, target);
    if (importId === null) {
      const replay = await replayedImport(db, target);
      await target.beforeCommit?.(db);
      await db.query('commit');
      return replay;
    }
    const counts = await body(db, importId);
    await closeImport(db, importId, counts);
    const { rows: problems } = await db.query(
      'select line, row_number as row, code, reason from quarantine where import_id = $1 order by row_number limit 20',
      [importId],
    );
    await target.beforeCommit?.(db);
    await db.query('commit');
    return { importId, replayed: false, origin: target.origin, problems, ...counts };
  } catch (err) {
    await db.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    db.release();
  }
}

type GoodRow = Extract<RowResult, { ok: true }>;

/**
 * Reads every row, maps the good ones (a mapping error quarantines just that row) and hands them
 * on in batches, so memory stays flat whatever the file's size. Returns the rows received.
 */
export async function stageRows<S>(
  rows: AsyncIterable<RowResult>,
  map: (row: GoodRow) => S,
  sinks: { stage: (batch: S[]) => Promise<void>; quarantine: (bad: Quarantined[]) => Promise<void> },
): Promise<number> {
  let batch: S[] = [];
  let bad: Quarantined[] = [];
  let received = 0;
  for await (const r of rows) {
    received++;
    if (!r.ok) {
      bad.push({ line: r.position.line, row: r.position.row, raw: r.raw, code: r.code, reason: r.reason });
    } else {
      try {
        batch.push(map(r));
      } catch (err) {
        bad.push({ line: r.position.line, row: r.position.row, raw: r.raw, code: err instanceof ReconError ? err.code : 'invalid_row', reason: (err as Error).message });
      }
    }
    if (batch.length >= STAGE_BATCH) {
      await sinks.stage(batch);
      batch = [];
    }
    if (bad.length >= STAGE_BATCH) {
      await sinks.quarantine(bad);
      bad = [];
    }
  }
  if (batch.length) await sinks.stage(batch);
  if (bad.length) await sinks.quarantine(bad);
  return received;
}

export async function quarantinedCount(db: PoolClient, importId: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>('select count(*)::int as n from quarantine where import_id = $1', [importId]);
  return rows[0].n;
}
