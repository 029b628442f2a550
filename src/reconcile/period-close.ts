import type { Pool, PoolClient } from '../db/pool';
import { inTransaction } from '../db/pool';
import { loadContractHistory } from '../db/contracts';
import { tenantTimeZone } from '../domain/contract-history';
import { requireTenant } from './tenants';
import { formatMinorUnits } from '../domain/money';
import { assertPeriodEnded, PeriodSchema, periodBounds } from '../domain/periods';
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
  const { rows } = await db.query<{ period: string }>(
    'select period from period_closes where tenant_id = $1 and period >= $2',
    [tenant, period],
  );
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

/**
 * Closing is idempotent: closing again answers the first close (who and when). A period that has
 * not ended on the tenant's wall clock cannot be closed. Every close is kept in period_events.
 */
export async function closePeriod(
  pool: Pool,
  args: { tenant: string; period: string; actor: string; note?: string; now?: Date },
): Promise<PeriodClose> {
  PeriodSchema.parse(args.period);
  const timeZone = tenantTimeZone(await loadContractHistory(pool, args.tenant));
  assertPeriodEnded(args.period, timeZone, args.now ?? new Date());
  return inTransaction(pool, async (db) => {
    const { rows: inserted } = await db.query<{ closed_at: Date }>(
      `insert into period_closes (tenant_id, period, closed_by, note) values ($1, $2, $3, $4) on conflict do nothing returning closed_at`,
      [args.tenant, args.period, args.actor, args.note ?? null],
    );
    if (inserted.length) {
      await db.query(
        `insert into period_events (tenant_id, period, action, actor, note, at) values ($1, $2, 'close', $3, $4, $5)`,
        [args.tenant, args.period, args.actor, args.note ?? null, inserted[0].closed_at],
      );
    }
    const {
      rows: [c],
    } = await db.query<{ closed_by: string; closed_at: Date; note: string | null }>(
      'select closed_by, closed_at, note from period_closes where tenant_id = $1 and period = $2',
      [args.tenant, args.period],
    );
    return {
      tenant: args.tenant,
      period: args.period,
      closedBy: c.closed_by,
      closedAt: c.closed_at.toISOString(),
      note: c.note,
      alreadyClosed: inserted.length === 0,
    };
  });
}

export interface PeriodReopen {
  tenant: string;
  period: string;
  reopenedBy: string;
  reopenedAt: string;
  reason: string;
  wasClosedBy: string;
  wasClosedAt: string;
  /** Lines that landed in later periods as corrections of this one while it was closed: they stay there. */
  correctionsElsewhere: Array<{ period: string; currency: string; lines: number; amountMinor: number }>;
}

/**
 * Reopens a closed period: from now on runs whose own period it is post into it again. The ledger
 * is append-only, so lines that already landed in a later period as corrections of this one stay
 * where they are (their corrects_period names this period); nothing is moved or reposted.
 */
export async function reopenPeriod(
  pool: Pool,
  args: { tenant: string; period: string; actor: string; reason: string },
): Promise<PeriodReopen> {
  PeriodSchema.parse(args.period);
  await requireTenant(pool, args.tenant);
  return inTransaction(pool, async (db) => {
    // Locked so that a run posting meanwhile sees the period either closed or open, not both.
    const {
      rows: [c],
    } = await db.query<{ closed_by: string; closed_at: Date }>(
      'select closed_by, closed_at from period_closes where tenant_id = $1 and period = $2 for update',
      [args.tenant, args.period],
    );
    if (!c) {
      throw new ReconError(
        'period_not_closed',
        `period ${args.period} of tenant ${args.tenant} is not closed; see \`recon period list --tenant ${args.tenant}\``,
      );
    }
    await db.query('delete from period_closes where tenant_id = $1 and period = $2', [args.tenant, args.period]);
    const {
      rows: [e],
    } = await db.query<{ at: Date }>(
      `insert into period_events (tenant_id, period, action, actor, note) values ($1, $2, 'reopen', $3, $4) returning at`,
      [args.tenant, args.period, args.actor, args.reason],
    );
    const { rows: moved } = await db.query<{ period: string; currency: string; lines: number; amount: string }>(
      `select period, currency, count(*)::int as lines, sum(amount_minor)::bigint as amount from ledger_entries
        where tenant_id = $1 and corrects_period = $2 and period <> $2 group by period, currency order by period, currency`,
      [args.tenant, args.period],
    );
    return {
      tenant: args.tenant,
      period: args.period,
      reopenedBy: args.actor,
      reopenedAt: e.at.toISOString(),
      reason: args.reason,
      wasClosedBy: c.closed_by,
      wasClosedAt: c.closed_at.toISOString(),
      correctionsElsewhere: moved.map((m) => ({
        period: m.period,
        currency: m.currency,
        lines: m.lines,
        amountMinor: Number(m.amount),
      })),
    };
  });
}

export interface CurrencyTotal {
  currency: string;
  lines: number;
  amountMinor: number;
  amount: string;
}

export interface PeriodState {
  period: string;
  state: 'open' | 'closed';
  /** Whether the period has ended on the tenant's wall clock (only an ended period can be closed). */
  ended: boolean;
  closedBy: string | null;
  closedAt: string | null;
  note: string | null;
  /** The last reopen, if any. */
  reopenedBy: string | null;
  reopenedAt: string | null;
  reopenReason: string | null;
  /** The ledger lines in the period, one total per currency (never summed across currencies). */
  totals: CurrencyTotal[];
}

/** Every period that has ledger lines or a close/reopen record, oldest first. */
export async function listPeriods(pool: Pool, args: { tenant: string; now?: Date }): Promise<PeriodState[]> {
  const timeZone = tenantTimeZone(await loadContractHistory(pool, args.tenant));
  const now = args.now ?? new Date();
  const { rows: totals } = await pool.query<{ period: string; currency: string; lines: number; amount: string }>(
    `select period, currency, count(*)::int as lines, sum(amount_minor)::bigint as amount from ledger_entries
      where tenant_id = $1 group by period, currency order by period, currency`,
    [args.tenant],
  );
  const { rows: closes } = await pool.query<{
    period: string;
    closed_by: string;
    closed_at: Date;
    note: string | null;
  }>('select period, closed_by, closed_at, note from period_closes where tenant_id = $1', [args.tenant]);
  const { rows: reopens } = await pool.query<{ period: string; actor: string; note: string | null; at: Date }>(
    `select distinct on (period) period, actor, note, at from period_events where tenant_id = $1 and action = 'reopen' order by period, event_id desc`,
    [args.tenant],
  );
  const periods = [
    ...new Set([...totals.map((t) => t.period), ...closes.map((c) => c.period), ...reopens.map((r) => r.period)]),
  ].sort();
  return periods.map((period) => {
    const c = closes.find((x) => x.period === period);
    const r = reopens.find((x) => x.period === period);
    return {
      period,
      state: c ? 'closed' : 'open',
      ended: periodBounds(period, timeZone).end.getTime() <= now.getTime(),
      closedBy: c?.closed_by ?? null,
      closedAt: c?.closed_at.toISOString() ?? null,
      note: c?.note ?? null,
      reopenedBy: r?.actor ?? null,
      reopenedAt: r?.at.toISOString() ?? null,
      reopenReason: r?.note ?? null,
      totals: totals
        .filter((t) => t.period === period)
        .map((t) => ({
          currency: t.currency,
          lines: t.lines,
          amountMinor: Number(t.amount),
          amount: formatMinorUnits(Number(t.amount), t.currency),
        })),
    };
  });
}

export async function isClosed(db: Pool | PoolClient, tenant: string, period: string): Promise<boolean> {
  const { rows } = await db.query('select 1 from period_closes where tenant_id = $1 and period = $2', [tenant, period]);
  return rows.length > 0;
}
