import { inTransaction, type Pool } from '../src/db/pool';
import { chargeKeySql } from '../src/ledger/keys';

/**
 * `--existing M`: M outcomes settled in an earlier month (billed, with their claim, record version,
 * event and ledger charge), written straight in SQL before the clock starts. Loading five million
 * through the pipeline would take longer than the benchmark; what matters for an incremental night
 * is that the tables and their indexes are that big.
 */
export async function seedExistingHistory(pool: Pool, tenant: string, m: number): Promise<void> {
  if (m <= 0) return;
  const tables = ['records', 'record_versions', 'outcomes', 'claims', 'outcome_events', 'ledger_entries'];
  await inTransaction(pool, async (db) => {
    await db.query(`set local maintenance_work_mem = '256MB'`);
    await db.query('set local synchronous_commit = off');
    // Nor row by row foreign-key checks: the seed's keys are consistent by construction. This turns
    // off every trigger, so the ledger's period usage is added by hand below.
    await db.query(`set local session_replication_role = replica`);
    // Bulk load as a restore would: plain indexes are dropped and built once at the end (unique
    // ones stay, they guard the rows). The database ends up with exactly the same indexes.
    const { rows: plain } = await db.query<{ name: string; def: string }>(
      `select i.indexname as name, i.indexdef as def from pg_indexes i
        where i.schemaname = current_schema() and i.tablename = any($1::text[])
          and not exists (select 1 from pg_constraint c where c.conname = i.indexname)
          and i.indexdef not like 'CREATE UNIQUE%'`,
      [tables],
    );
    for (const ix of plain) await db.query(`drop index ${ix.name}`);
    const asOf = '2026-10-01T00:00:00Z';
    const {
      rows: [run],
    } = await db.query<{ run_id: number }>(
      `insert into runs (tenant_id, as_of, workflow_id, status, finished_at) values ($1, $2, 'bench-history', 'completed', now()) returning run_id`,
      [tenant, asOf],
    );
    const imp = async (kind: string) =>
      (
        await db.query<{ import_id: number }>(
          `insert into imports (tenant_id, kind, source, origin, content_sha256, run_id, received, accepted)
       values ($1, $2, $3, 'history', 'bench-history-' || $2, $4, $5, $5) returning import_id`,
          [tenant, kind, kind === 'claims' ? 'file' : 'helpdesk', run.run_id, m],
        )
      ).rows[0].import_id;
    const claimsImport = await imp('claims');
    const recordsImport = await imp('records');
    const key = `lpad(i::text, 9, '0')`;
    await db.query(
      `insert into records (tenant_id, source, external_id) select $1, 'helpdesk', 'H-' || ${key} from generate_series(1, $2::int) i`,
      [tenant, m],
    );
    await db.query(
      `insert into record_versions (record_id, effective_at, match_key, data, row_sha256, import_id, line)
       select r.record_id, timestamptz '2026-09-01' + (r.record_id % 2000000) * interval '1 second', lower(r.external_id),
              jsonb_build_object('ticket_id', r.external_id, 'status', 'solved', 'solved_at', '2026-09-01T00:00:00.000Z', 'updated_at', '2026-09-01T00:00:00.000Z', 'csat', null),
              md5(r.external_id), $2, r.record_id
         from records r where r.tenant_id = $1 and r.external_id like 'H-%'`,
      [tenant, recordsImport],
    );
    await db.query(
      `insert into outcomes (tenant_id, outcome_type, subject_key, subject_ref, state, primary_claim_id, claim_count, match_status,
                             record_id, evidence_version_id, created_run_id, success_at, grace_ends_at, confirmed_as_of, evaluated_as_of)
       select $1, 'resolved_ticket', v.match_key, r.external_id, 'billed', 'h-' || v.match_key, 1, 'matched', r.record_id, v.version_id, $2,
              v.effective_at, v.effective_at + interval '72 hours', $3, $3
         from records r join record_versions v using (record_id) where r.tenant_id = $1 and r.external_id like 'H-%'`,
      [tenant, run.run_id, asOf],
    );
    await db.query(
      `insert into claims (tenant_id, claim_id, outcome_type, subject_ref, subject_key, occurred_at, content_sha256, outcome_id, import_id)
       select $1, primary_claim_id, outcome_type, subject_ref, subject_key, success_at, md5(primary_claim_id), outcome_id, $2
         from outcomes where tenant_id = $1 and subject_key like 'h-%'`,
      [tenant, claimsImport],
    );
    await db.query(
      `insert into outcome_events (outcome_id, run_id, as_of, kind, from_state, to_state, reason)
       select outcome_id, $2, $3, 'billed', 'confirmed', 'billed', 'history seeded by the benchmark'
         from outcomes where tenant_id = $1 and subject_key like 'h-%'`,
      [tenant, run.run_id, asOf],
    );
    await db.query(
      `insert into ledger_entries (tenant_id, idempotency_key, kind, outcome_id, outcome_type, subject_ref, period, currency, unit_price,
                                   amount_minor, contract_version, run_id, as_of, primary_claim_id, evidence, success_at, pricing_basis, tier, period_position)
       select $1, ${chargeKeySql('outcome_id')}, 'charge', outcome_id, outcome_type, subject_ref, '2026-09', 'USD', '0.99', 99, 1, $2, $3,
              primary_claim_id, '{}', success_at, 'tier', 1, row_number() over (order by outcome_id)
         from outcomes where tenant_id = $1 and subject_key like 'h-%'`,
      [tenant, run.run_id, asOf],
    );
    await db.query(
      `insert into period_usage (tenant_id, period, outcome_type, charges, usage_minor, capped)
       select tenant_id, period, outcome_type, count(*), sum(amount_minor), 0 from ledger_entries
        where tenant_id = $1 and run_id = $2 and kind = 'charge' group by tenant_id, period, outcome_type`,
      [tenant, run.run_id],
    );
    for (const ix of plain) await db.query(ix.def);
  });
  // As a production database holds an earlier month: vacuumed (autovacuum does it minutes after
  // the inserts) and analyzed, and checkpointed, so the night does not pay the seeding's hint
  // bits and full-page writes (ANALYZE of a just-seeded 5M table wrote 170 MB of WAL per table).
  await pool.query('vacuum analyze');
  await pool.query('checkpoint');
}
