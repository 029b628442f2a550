import type { Pool } from '../db/pool';

/**
 * Whether the tenant's night has fewer than `limit` rows to work through: claims not yet given an
 * outcome plus outcomes still open (an upper bound of what attach, evaluate and post will touch).
 * Each side is counted only up to `limit` through its partial index, so a large tenant costs no
 * more to ask about than a small one.
 */
export async function nightFitsIn(pool: Pool, tenant: string, limit: number): Promise<boolean> {
  const {
    rows: [r],
  } = await pool.query<{ n: number }>(
    `select (select count(*) from (select 1 from claims where tenant_id = $1 and outcome_id is null limit $2) c)
          + (select count(*) from (select 1 from outcomes
                                    where tenant_id = $1 and state in ('awaiting_evidence', 'in_grace', 'confirmed')
                                    limit $2) o) as n`,
    [tenant, limit],
  );
  return Number(r.n) < limit;
}
