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
export async function attachClaimsToOutcomes(pool: Pool, tenant: string, runId: number, limit: number): Promise<AttachResult> {
  return inTransaction(pool, async (db) => {
    const { rows } = await db.query<{ outcomes_created: number; attached: number }>(
      `with batch as (
         select claim_id, outcome_type, subject_key, subject_ref, occurred_at from claims
          where tenant_id = $1 and outcome_id is null order by claim_id limit $2 for update skip locked),
       created as (
         insert into outcomes (tenant_id, outcome_type, subject_key, subject_ref, created_run_id)
         select distinct on (outcome_type, subject_key) $1, outcome_type, subject_key, subject_ref, $3::bigint
           from batch order by outcome_type, subject_key, occurred_at, claim_id
         on conflict (tenant_id, outcome_type, subject_key) do nothing
         returning outcome_id, outcome_type, subject_key),
       targets as (
         select b.claim_id, coalesce(c.outcome_id, o.outcome_id) as outcome_id from batch b
           left join created c on c.outcome_type = b.outcome_type and c.subject_key = b.subject_key
           left join outcomes o on o.tenant_id = $1 and o.outcome_type = b.outcome_type and o.subject_key = b.subject_key),
       updated as (
         update claims c set outcome_id = t.outcome_id from targets t
          where c.tenant_id = $1 and c.claim_id = t.claim_id returning 1)
       select (select count(*) from created)::int as outcomes_created, (select count(*) from updated)::int as attached`,
      [tenant, limit, runId],
    );
    const r = rows[0];
    return { attached: r.attached, outcomesCreated: r.outcomes_created, done: r.attached < limit };
  });
}
