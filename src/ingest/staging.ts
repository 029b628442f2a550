import type { PoolClient } from '../db/pool';

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
  args: { tenant: string; kind: 'claims' | 'records'; source: string; origin: string; contentSha256: string },
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
