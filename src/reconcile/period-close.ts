import type { Pool, PoolClient } from '../db/pool';
import { PeriodSchema } from '../domain/periods';
import { ReconError } from '../domain/errors';

export function nextPeriod(period: string): string {
  const [y, m] = period.split('-').map(Number);
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
}

/**
 * Closed periods receive nothing new: a line for a closed period lands in the first open period
 * after it, and says which period it corrects.
 */
export async function openPeriodFor(db: Pool | PoolClient, tenant: string, period: string): Promise<string> {
  const { rows } = await db.query<{ period: string }>('select period from period_closes where tenant_id = $1 and period >= $2', [tenant, period]);
  const closed = new Set(rows.map((r) => r.period));
  let p = period;
  while (closed.has(p)) p = nextPeriod(p);
  return p;
}

export interface PeriodClose {
  tenant: string;
  period: string;
  closedBy: string;
  closedAt: string;
  note: string | null;
  alreadyClosed: boolean;
}

/** Closing is idempotent: closing again answers the first close (who and when). */
export async function closePeriod(pool: Pool, args: { tenant: string; period: string; actor: string; note?: string }): Promise<PeriodClose> {
  PeriodSchema.parse(args.period);
  const { rows: [t] } = await pool.query('select 1 from tenants where tenant_id = $1', [args.tenant]);
  if (!t) throw new ReconError('unknown_tenant', `no tenant ${args.tenant}`);
  const { rows: inserted } = await pool.query(
    `insert into period_closes (tenant_id, period, closed_by, note) values ($1, $2, $3, $4) on conflict do nothing returning closed_at`,
    [args.tenant, args.period, args.actor, args.note ?? null],
  );
  const { rows: [c] } = await pool.query('select * from period_closes where tenant_id = $1 and period = $2', [args.tenant, args.period]);
  return { tenant: args.tenant, period: args.period, closedBy: c.closed_by, closedAt: c.closed_at.toISOString(), note: c.note, alreadyClosed: inserted.length === 0 };
}

export async function isClosed(db: Pool | PoolClient, tenant: string, period: string): Promise<boolean> {
  const { rows } = await db.query('select 1 from period_closes where tenant_id = $1 and period = $2', [tenant, period]);
  return rows.length > 0;
}
