import type { Pool, PoolClient } from '../db/pool';
import { loadContractVersions, latestContract } from '../db/contracts';
import { sourceIsCaseInsensitive } from '../domain/contract';
import { ReconError } from '../domain/errors';
import type { RowResult } from '../sources/rows';
import { mapRecordRow, type MappedRecord } from './record-row';
import { insertQuarantine, quarantinedCount, stageRows, withImport, type ImportSummary } from './staging';

export interface RecordImportArgs {
  tenant: string;
  source: string;
  origin: string;
  contentSha256: string;
  rows: AsyncIterable<RowResult>;
  importedAt: Date;
}

type StageRow = MappedRecord & { row: number; line: number };

async function stageBatch(db: PoolClient, batch: StageRow[]): Promise<void> {
  const col = <K extends keyof StageRow>(k: K) => batch.map((r) => r[k]);
  await db.query(
    `insert into stage_records (row_number, line, external_id, match_key, updated_at, data, row_sha256)
     select * from unnest($1::int[], $2::int[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[], $7::text[])`,
    [col('row'), col('line'), col('externalId'), col('matchKey'), col('updatedAt'), batch.map((r) => JSON.stringify(r.data)), col('rowSha256')],
  );
}

/**
 * Takes in one export of the customer's records as new record versions, in one transaction.
 * A row identical to the version already in effect at its time adds nothing (redelivered).
 */
export async function importRecordRows(pool: Pool, args: RecordImportArgs): Promise<ImportSummary> {
  const contract = latestContract(await loadContractVersions(pool, args.tenant)).body;
  const source = contract.recordSources[args.source];
  if (!source) {
    throw new ReconError('unknown_source', `record source "${args.source}" is not in the contract of ${args.tenant} (known: ${Object.keys(contract.recordSources).join(', ')})`);
  }
  const matchField = Object.values(contract.outcomeTypes).find((t) => t.recordSource === args.source)?.matchKey.field ?? source.idField;
  const opts = { timeZone: contract.timezone, matchField, caseInsensitive: sourceIsCaseInsensitive(contract, args.source) };
  const target = { tenant: args.tenant, kind: 'records' as const, source: args.source, origin: args.origin, contentSha256: args.contentSha256 };
  return withImport(pool, target, async (db, importId) => {
    await db.query(`create temp table stage_records (
      row_number int primary key, line int, external_id text, match_key text, updated_at timestamptz,
      data jsonb, row_sha256 text, record_id bigint, effective_at timestamptz, accepted bool not null default false) on commit drop`);
    const received = await stageRows(
      args.rows,
      (r): StageRow => ({ ...mapRecordRow(r.values, source, opts), row: r.position.row, line: r.position.line }),
      { stage: (b) => stageBatch(db, b), quarantine: (bad) => insertQuarantine(db, importId, args.tenant, args.source, args.origin, bad) },
    );
    await mergeStagedRecords(db, { tenant: args.tenant, source: args.source, importId, importedAt: args.importedAt });
    const { rows } = await db.query<{ accepted: number; redelivered: number; dup: number }>(
      `select count(*) filter (where accepted)::int as accepted, count(*) filter (where not accepted)::int as redelivered,
              (count(*) filter (where accepted) - count(distinct (record_id, effective_at, row_sha256)) filter (where accepted))::int as dup
         from stage_records`,
    );
    // Two identical rows in one file both match the version inserted; only one of them is new.
    const { accepted, redelivered, dup } = rows[0];
    return { received, accepted: accepted - dup, redelivered: redelivered + dup, quarantined: await quarantinedCount(db, importId) };
  });
}

async function mergeStagedRecords(db: PoolClient, args: { tenant: string; source: string; importId: number; importedAt: Date }): Promise<void> {
  // A temp table has no statistics until analysed; without them the planner guesses tiny.
  await db.query('analyze stage_records');
  await db.query(
    `insert into records (tenant_id, source, external_id)
     select distinct $1, $2, external_id from stage_records on conflict do nothing`,
    [args.tenant, args.source],
  );
  await db.query(
    `update stage_records s set record_id = r.record_id, effective_at = coalesce(s.updated_at, $3)
       from records r where r.tenant_id = $1 and r.source = $2 and r.external_id = s.external_id`,
    [args.tenant, args.source, args.importedAt],
  );
  // A row identical to the version before it adds nothing: before it means the previous row of
  // the same record in this file, or for its first row the version in effect in the database.
  await db.query(
    `with ordered as (
       select s.row_number, s.row_sha256,
              lag(s.row_sha256) over (partition by s.record_id order by s.effective_at, s.row_number) as prev_in_file
         from stage_records s),
     candidates as (
       select s.* from stage_records s join ordered o using (row_number)
        where o.row_sha256 is distinct from coalesce(o.prev_in_file, (
                select v.row_sha256 from record_versions v
                 where v.record_id = s.record_id and v.effective_at <= s.effective_at
                 order by v.effective_at desc, v.version_id desc limit 1))),
     inserted as (
       insert into record_versions (record_id, effective_at, match_key, data, row_sha256, import_id, line)
       select record_id, effective_at, match_key, data, row_sha256, $1, line from candidates order by row_number
       on conflict (record_id, effective_at, row_sha256) do nothing
       returning record_id, effective_at, row_sha256)
     update stage_records s set accepted = true from inserted i
      where s.record_id = i.record_id and s.effective_at = i.effective_at and s.row_sha256 = i.row_sha256`,
    [args.importId],
  );
}
