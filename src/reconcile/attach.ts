import type { Pool } from '../db/pool';
import { inTransaction } from '../db/pool';

export interface AttachResult {
  attached: number;
  outcomesCreated: number;
  done: boolean;
}

/**
 * Gives every new claim its outcome: one per (tenant, outcome type, subject), created on first
 * sight. Works through at most `limit` claims per call so a huge night is taken in chunks.
 */
export async function attachClaimsToOutcomes(
  pool: Pool,
  tenant: string,
  runId: number,
  limit: number,
): Promise<AttachResult> {
  return inTransaction(pool, async (db) => {
    // Three statements joined through indexes, not one CTE chain: the planner cannot size a CTE's
    // RETURNING rows and would loop over them.
    const { rows: batch } = await db.query<{ claim_id: string }>(
      `select claim_id from claims where tenant_id = $1 and outcome_id is null order by claim_id limit $2 for update`,
      [tenant, limit],
    );
    if (batch.length === 0) return { attached: 0, outcomesCreated: 0, done: true };
    // A plain FOR UPDATE (not SKIP LOCKED): a retry waits for an attempt still running rather than
    // skipping its claims.
    const ids = batch.map((b) => b.claim_id);
    const created = await db.query(
      `insert into outcomes (tenant_id, outcome_type, subject_key, subject_ref, created_run_id)
       select distinct on (outcome_type, subject_key) $1, outcome_type, subject_key, subject_ref, $3::bigint
         from claims where tenant_id = $1 and claim_id = any($2::text[])
        order by outcome_type, subject_key, occurred_at, claim_id
       on conflict (tenant_id, outcome_type, subject_key) do nothing`,
      [tenant, ids, runId],
    );
    // Each claim finds its outcome by one probe of the unique subject key index. A join let the
    // planner hash every outcome of the tenant for each chunk: the cost of the table, not the chunk.
    // Every claim of the chunk has its outcome by now (inserted above, or waited for on conflict).
    const updated = await db.query(
      `update claims c set outcome_id = (select o.outcome_id from outcomes o
                                          where o.tenant_id = c.tenant_id and o.outcome_type = c.outcome_type and o.subject_key = c.subject_key)
        where c.tenant_id = $1 and c.claim_id = any($2::text[])`,
      [tenant, ids],
    );
    // Done only when no claim is left unattached: a retried attempt must not call it a night
    // while an earlier attempt still holds some claims.
    const {
      rows: [left],
    } = await db.query<{ more: boolean }>(
      'select exists (select 1 from claims where tenant_id = $1 and outcome_id is null and not (claim_id = any($2::text[]))) as more',
      [tenant, ids],
    );
    return { attached: updated.rowCount ?? 0, outcomesCreated: created.rowCount ?? 0, done: !left.more };
  });
}
