import type { Pool, PoolClient } from '../db/pool';
import { loadContractHistory } from '../db/contracts';
import { sourceIsCaseInsensitive } from '../domain/contract';
import { latestVersion, versionMappingSource, type ContractHistory } from '../domain/contract-history';
import { ReconError } from '../domain/errors';
import type { RowResult } from '../sources/rows';
import { mapRecordRow } from './record-row';
import { mapRow, quarantineStaged, quarantinedCount, stageRows, withImport, type ImportSummary } from './staging';

export interface RecordImportArgs {
  tenant: string;
  source: string;
  origin: string;
  contentSha256: string;
  rows: AsyncIterable<RowResult>;
  importedAt: Date;
  /** The tenant's contract history when the caller has already read it (the file import does). */
  history?: ContractHistory;
  /** Runs inside the import's transaction: an API pull saves its cursor with the page it covers. */
  beforeCommit?: (db: PoolClient) => Promise<void>;
}

/**
 * Takes in one export of the customer's records as new record versions, in one transaction.
 * A row identical to the version already in effect at its time adds nothing (redelivered).
 */
export async function importRecordRows(pool: Pool, args: RecordImportArgs): Promise<ImportSummary> {
  const history = args.history ?? (await loadContractHistory(pool, args.tenant));
  const mapping = versionMappingSource(history, args.source);
  if (!mapping) {
    const known = Object.keys(latestVersion(history).body.recordSources).join(', ');
    throw new ReconError(
      'unknown_source',
      `record source "${args.source}" is not in the contract of ${args.tenant} (known: ${known})`,
    );
  }
  const contract = mapping.body;
  const source = contract.recordSources[args.source];
  const matchField =
    Object.values(contract.outcomeTypes).find((t) => t.recordSource === args.source)?.matchKey.field ?? source.idField;
  const opts = {
    timeZone: contract.timezone,
    matchField,
    caseInsensitive: sourceIsCaseInsensitive(contract, args.source),
  };
  const target = {
    tenant: args.tenant,
    kind: 'records' as const,
    source: args.source,
    origin: args.origin,
    contentSha256: args.contentSha256,
    beforeCommit: args.beforeCommit,
  };
  return withImport(pool, target, async (db, importId) => {
    // One import of a tenant's source at a time: the new records are decided against the records
    // as they stand, and a concurrent import must not add them between that and the insert.
    await db.query('select pg_advisory_xact_lock(hashtext($1))', [`records-import:${args.tenant}:${args.source}`]);
    // Bad rows are staged too (code and reason set), so one COPY carries the whole file.
    await db.query(`create temp table stage_records (
      row_number int not null, line int not null, external_id text, match_key text, updated_at timestamptz,
      data jsonb, row_sha256 text, raw text, code text, reason text) on commit drop`);
    const received = await stageRows(
      db,
      'copy stage_records (row_number, line, external_id, match_key, updated_at, data, row_sha256, raw, code, reason) from stdin',
      args.rows,
      (r) => {
        const m = mapRow(r, (g) => mapRecordRow(g.values, source, opts));
        if (!m.ok) return [m.bad.row, m.bad.line, null, null, null, null, null, m.bad.raw, m.bad.code, m.bad.reason];
        const v = m.value;
        return [
          r.position.row,
          r.position.line,
          v.externalId,
          v.matchKey,
          v.updatedAt,
          JSON.stringify(v.data),
          v.rowSha256,
          null,
          null,
          null,
        ];
      },
    );
    await quarantineStaged(db, 'stage_records', importId, args.tenant, args.source, args.origin);
    const accepted = await mergeStagedRecords(db, {
      tenant: args.tenant,
      source: args.source,
      importId,
      importedAt: args.importedAt,
    });
    const quarantined = await quarantinedCount(db, importId);
    // Every other row is identical to the version before it (in the file or in the database).
    return { received, accepted, redelivered: received - accepted - quarantined, quarantined };
  });
}

/** Adds the staged rows as record versions; returns how many versions are new. */
async function mergeStagedRecords(
  db: PoolClient,
  args: { tenant: string; source: string; importId: number; importedAt: Date },
): Promise<number> {
  // A temp table has no statistics until analysed; without them the planner guesses tiny. The
  // join column is all it needs (sampling the JSON too would cost more than it tells).
  await db.query('analyze stage_records (external_id, code)');
  // The sorts below hold the whole file (the versions' sort carries each row's data): in the
  // default 4 MB they spill to disk in runs. Local to this import's transaction.
  await db.query(`set local work_mem = '256MB'`);
  // New records in order of first appearance in the file, so ids do not depend on the plan. No ON
  // CONFLICT: under the lock above nothing else adds records of this source, so a duplicate key is
  // a race to report, not a row to skip (and the speculative insertion costs on every row).
  // The first new id: under the lock, a record of this source with an id from it on was created
  // just now and has no version in the database yet. Records of the file that existed before are
  // counted too: without any, no version of the file can meet one in the database.
  let firstNew: number | null;
  let knownBefore: number;
  let added: number;
  try {
    const { rows } = await db.query<{ first_new: number | null; known_before: number; added: number }>(
      `with ids as (
         select s.external_id, min(s.row_number) as first_row from stage_records s where s.code is null group by s.external_id),
       added as (
         insert into records (tenant_id, source, external_id)
         select $1, $2, i.external_id from ids i
          where not exists (select 1 from records r where r.tenant_id = $1 and r.source = $2 and r.external_id = i.external_id)
          order by i.first_row
         returning record_id)
       select (select min(record_id) from added) as first_new, (select count(*) from added)::int as added,
              ((select count(*) from ids) - (select count(*) from added))::int as known_before`,
      [args.tenant, args.source],
    );
    firstNew = rows[0].first_new;
    knownBefore = rows[0].known_before;
    added = rows[0].added;
  } catch (err) {
    if ((err as { code?: string }).code === '23505')
      throw new ReconError(
        'import_raced',
        `records import ${args.importId}: another import added some of the same records meanwhile; retry the import`,
      );
    throw err;
  }
  // A row identical to the version before it adds nothing: before it means the previous row of
  // the same record in this file, or for its first row the version in effect in the database.
  // Versions are inserted in the window's own order (no second sort), so within a record and time
  // a later row still gets the higher version id, which breaks ties between versions of the same
  // time. Records that existed before come first (their ids are lower), then the new ones: the
  // two statements below number the versions exactly as one statement over the file would.
  // Each statement reads the whole staging table: a file of mostly known records with a few new
  // ones goes through the first statement alone, as every file did before.
  const split = firstNew !== null && added >= knownBefore;
  let inserted = 0;
  if (knownBefore > 0) {
    // Records that existed before: their first row in the file looks up the version in effect,
    // one index probe each. A row can equal an older version of the same time that is no longer
    // the one in effect; the unique key skips it (ON CONFLICT), as it skips a repeat in the file.
    const { rowCount } = await db.query(
      `with ordered as (
         select s.row_number, s.line, r.record_id, coalesce(s.updated_at, $4) as effective_at, s.match_key, s.data, s.row_sha256,
                lag(s.row_sha256) over w as prev_in_file
           from stage_records s join records r on r.tenant_id = $1 and r.source = $2 and r.external_id = s.external_id
          where s.code is null and ($6::bigint is null or r.record_id < $6)
         window w as (partition by r.record_id order by coalesce(s.updated_at, $4), s.row_number))
       insert into record_versions (record_id, effective_at, match_key, data, row_sha256, import_id, line)
       select o.record_id, o.effective_at, o.match_key, o.data, o.row_sha256, $3, o.line from ordered o
        where o.row_sha256 is distinct from coalesce(o.prev_in_file, case when $5::bigint is null or o.record_id < $5 then (
                select v.row_sha256 from record_versions v
                 where v.record_id = o.record_id and v.effective_at <= o.effective_at
                 order by v.effective_at desc, v.version_id desc limit 1) end)
        order by o.record_id, o.effective_at, o.row_number
       on conflict (record_id, effective_at, row_sha256) do nothing`,
      [args.tenant, args.source, args.importId, args.importedAt, firstNew, split ? firstNew : null],
    );
    inserted += rowCount ?? 0;
  }
  if (firstNew !== null && (split || knownBefore === 0)) {
    // Records new in this import have no version in the database, so the unique key can only meet
    // a repeat within the file: a row of the same record and time whose content an earlier row of
    // that time was already inserted with (h1, h2, h1). That is decided here, on the rows already
    // in order, so the insert needs no ON CONFLICT (whose speculative insertion costs on every
    // row). Each row that passes the comparison takes its id first, as under ON CONFLICT, where a
    // skipped row had drawn one too: the ids come out the same (OFFSET 0 keeps the filter above
    // nextval, where the planner would otherwise push it below). A plain insert still meets the
    // unique key, which stays the guard.
    const { rowCount } = await db.query(
      `insert into record_versions (version_id, record_id, effective_at, match_key, data, row_sha256, import_id, line)
       select n.version_id, n.record_id, n.effective_at, n.match_key, n.data, n.row_sha256, $3, n.line
         from (select nextval('record_versions_version_id_seq') as version_id, p.*
                 from (select o.*, array_agg(o.row_sha256) over same_time as earlier
                         from (select s.row_number, s.line, r.record_id, coalesce(s.updated_at, $2) as effective_at, s.match_key,
                                      s.data, s.row_sha256, lag(s.row_sha256) over w as prev_in_file
                                 from stage_records s join records r
                                   on r.tenant_id = $4 and r.source = $5 and r.external_id = s.external_id and r.record_id >= $1
                                where s.code is null
                               window w as (partition by r.record_id order by coalesce(s.updated_at, $2), s.row_number)) o
                        where o.row_sha256 is distinct from o.prev_in_file
                       window same_time as (partition by o.record_id, o.effective_at order by o.row_number
                                            rows between unbounded preceding and 1 preceding)) p
                order by p.record_id, p.effective_at, p.row_number
               offset 0) n
        where n.earlier is null or n.row_sha256 <> all (n.earlier)`,
      [firstNew, args.importedAt, args.importId, args.tenant, args.source],
    );
    inserted += rowCount ?? 0;
  }
  return inserted;
}
