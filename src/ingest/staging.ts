import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import type { Pool, PoolClient } from '../db/pool';
import { ReconError } from '../domain/errors';
import type { RowResult } from '../sources/rows';

export interface Quarantined {
  line: number;
  row: number;
  raw: string;
  code: string;
  reason: string;
}

export async function insertQuarantine(
  db: PoolClient,
  importId: number,
  tenant: string,
  source: string,
  origin: string,
  rows: Quarantined[],
): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `insert into quarantine (tenant_id, import_id, source, origin, line, row_number, raw, code, reason)
     select $1, $2, $3, $4, q.line, q.row_number, q.raw, q.code, q.reason
       from unnest($5::int[], $6::int[], $7::text[], $8::text[], $9::text[]) as q(line, row_number, raw, code, reason)
     on conflict (import_id, row_number) do nothing`,
    [
      tenant,
      importId,
      source,
      origin,
      rows.map((r) => r.line),
      rows.map((r) => r.row),
      rows.map((r) => sanitiseText(r.raw)),
      rows.map((r) => r.code),
      rows.map((r) => sanitiseText(r.reason)),
    ],
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
  args: {
    tenant: string;
    kind: 'claims' | 'records' | 'disputes';
    source: string;
    origin: string;
    contentSha256: string;
  },
): Promise<number | null> {
  const { rows } = await db.query<{ import_id: number }>(
    `insert into imports (tenant_id, kind, source, origin, content_sha256) values ($1, $2, $3, $4, $5)
     on conflict (tenant_id, kind, source, content_sha256) do nothing returning import_id`,
    [args.tenant, args.kind, args.source, args.origin, args.contentSha256],
  );
  return rows[0]?.import_id ?? null;
}

/** The earlier import of identical content: this delivery counts for nothing new. */
export async function replayedImport(
  db: PoolClient,
  args: { tenant: string; kind: string; source: string; contentSha256: string; origin: string },
): Promise<ImportSummary> {
  const { rows } = await db.query<{
    import_id: number;
    origin: string;
    received: number;
    accepted: number;
    redelivered: number;
    quarantined: number;
  }>(
    `select import_id, origin, received, accepted, redelivered, quarantined from imports
      where tenant_id = $1 and kind = $2 and source = $3 and content_sha256 = $4`,
    [args.tenant, args.kind, args.source, args.contentSha256],
  );
  const r = rows[0];
  return {
    importId: r.import_id,
    origin: args.origin,
    sameAs: r.origin,
    replayed: true,
    received: r.received,
    accepted: r.accepted,
    redelivered: r.redelivered,
    quarantined: r.quarantined,
    problems: [],
  };
}

export async function closeImport(db: PoolClient, importId: number, c: ImportCounts): Promise<void> {
  if (c.received !== c.accepted + c.redelivered + c.quarantined) {
    throw new Error(
      `import ${importId} does not add up: received ${c.received} != ${c.accepted} + ${c.redelivered} + ${c.quarantined}`,
    );
  }
  await db.query(
    'update imports set received = $2, accepted = $3, redelivered = $4, quarantined = $5 where import_id = $1',
    [importId, c.received, c.accepted, c.redelivered, c.quarantined],
  );
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
export async function withImport(
  pool: Pool,
  target: ImportTarget,
  body: (db: PoolClient, importId: number) => Promise<ImportCounts>,
): Promise<ImportSummary> {
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
    const { rows: problems } = await db.query<ImportSummary['problems'][number]>(
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

export type CopyValue = string | number | boolean | null | undefined;

const COPY_SPECIAL = /[\\\n\r\t]/;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** One value in COPY's text format: \N is null; backslash, tab and line ends are escaped. */
export function copyValue(v: CopyValue): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (typeof v === 'number') return String(v);
  const s = sanitiseText(v);
  return COPY_SPECIAL.test(s) ? s.replace(/[\\\n\r\t]/g, (c) => COPY_ESCAPES[c]) : s;
}

/** A good row mapped for staging, or the reason it goes to quarantine (a mapping error quarantines just that row). */
export function mapRow<S>(
  r: RowResult,
  map: (row: GoodRow) => S,
): { ok: true; value: S } | { ok: false; bad: Quarantined } {
  if (!r.ok)
    return {
      ok: false,
      bad: { line: r.position.line, row: r.position.row, raw: r.raw, code: r.code, reason: r.reason },
    };
  try {
    return { ok: true, value: map(r) };
  } catch (err) {
    return {
      ok: false,
      bad: {
        line: r.position.line,
        row: r.position.row,
        raw: r.raw,
        code: err instanceof ReconError ? err.code : 'invalid_row',
        reason: (err as Error).message,
      },
    };
  }
}

// Rows go to the server in chunks of about this many characters.
const COPY_CHUNK_CHARS = 256 * 1024;

/**
 * Streams every row into a staging table with one COPY (`copySql` ... from stdin), the fastest way
 * into PostgreSQL: no per-row or per-batch statement, and the file is read only as fast as the
 * server takes it, so memory stays flat whatever the file's size. `encode` gives each row's
 * cells, good or quarantined. Returns the rows received.
 */
export async function stageRows(
  db: PoolClient,
  copySql: string,
  rows: AsyncIterable<RowResult>,
  encode: (r: RowResult) => CopyValue[],
): Promise<number> {
  let received = 0;
  async function* chunks(): AsyncGenerator<string> {
    let chunk = '';
    for await (const r of rows) {
      received++;
      const cells = encode(r);
      let line = copyValue(cells[0]);
      for (let i = 1; i < cells.length; i++) line += `\t${copyValue(cells[i])}`;
      chunk += `${line}\n`;
      if (chunk.length >= COPY_CHUNK_CHARS) {
        yield chunk;
        chunk = '';
      }
    }
    if (chunk) yield chunk;
  }
  // A failure on either side ends both: a bad file aborts the COPY (CopyFail), a refused COPY stops the reading.
  await pipeline(Readable.from(chunks(), { objectMode: false }), db.query(copyFrom(copySql)));
  return received;
}

/**
 * Moves the staged rows that carry a quarantine code into the quarantine table. `stage` is the
 * import's own temp table (a name from the code, never from input).
 */
export async function quarantineStaged(
  db: PoolClient,
  stage: string,
  importId: number,
  tenant: string,
  source: string,
  origin: string,
): Promise<number> {
  const { rowCount } = await db.query(
    `insert into quarantine (tenant_id, import_id, source, origin, line, row_number, raw, code, reason)
     select $1, $2, $3, $4, line, row_number, raw, code, reason from ${stage} where code is not null
     on conflict (import_id, row_number) do nothing`,
    [tenant, importId, source, origin],
  );
  return rowCount ?? 0;
}

export async function quarantinedCount(db: PoolClient, importId: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>('select count(*)::int as n from quarantine where import_id = $1', [
    importId,
  ]);
  return rows[0].n;
}
