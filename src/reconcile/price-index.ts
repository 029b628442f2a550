import type { Pool, PoolClient } from '../db/pool';

export interface IndexPoint {
  series: string;
  effectiveFrom: Date;
  multiplier: string;
}

export async function loadPriceIndex(db: Pool | PoolClient, tenant: string): Promise<IndexPoint[]> {
  const { rows } = await db.query<{ series: string; effective_from: Date; multiplier: string }>(
    'select series, effective_from, multiplier from price_index where tenant_id = $1 order by effective_from',
    [tenant],
  );
  return rows.map((r) => ({ series: r.series, effectiveFrom: r.effective_from, multiplier: r.multiplier }));
}

/** The multiplier in effect at `at` (1 before the series starts: prices as written). */
export function multiplierAt(points: IndexPoint[], series: string, at: Date): string {
  let m = '1';
  for (const p of points) if (p.series === series && p.effectiveFrom.getTime() <= at.getTime()) m = p.multiplier;
  return m;
}

/** Adds or replaces points of a series; an identical point again changes nothing. */
export async function upsertIndexPoints(pool: Pool, tenant: string, points: IndexPoint[]): Promise<number> {
  if (points.length === 0) return 0;
  const { rowCount } = await pool.query(
    `insert into price_index (tenant_id, series, effective_from, multiplier)
     select $1, * from unnest($2::text[], $3::timestamptz[], $4::text[])
     on conflict (tenant_id, series, effective_from) do update set multiplier = excluded.multiplier
       where price_index.multiplier <> excluded.multiplier`,
    [tenant, points.map((p) => p.series), points.map((p) => p.effectiveFrom), points.map((p) => p.multiplier)],
  );
  return rowCount ?? 0;
}

/** The index series a tenant's contracts price by, in any version: the only series worth importing. */
export function seriesUsedBy(
  contracts: Array<{ body: { outcomeTypes: Record<string, { pricing?: { indexSeries?: string } }> } }>,
): Set<string> {
  const used = new Set<string>();
  for (const c of contracts)
    for (const t of Object.values(c.body.outcomeTypes)) if (t.pricing?.indexSeries) used.add(t.pricing.indexSeries);
  return used;
}
