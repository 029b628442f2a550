import type { Pool } from '../db/pool';
import { inTransaction } from '../db/pool';
import { formatMinorUnits } from '../domain/money';
import { billingPeriodOf } from '../domain/periods';
import { ReconError } from '../domain/errors';

export interface RunSummary {
  runId: number;
  tenant: string;
  asOf: string;
  period: string;
  claims: { received: number; accepted: number; redelivered: number; quarantined: number; duplicates: number; retracted: number };
  records: { received: number; accepted: number; redelivered: number; quarantined: number };
  outcomes: {
    created: number;
    transitions: Record<string, number>;
    rejected: Record<string, number>;
    ambiguous: number;
    /** The tenant's open outcomes by state after the run (awaiting evidence, in grace, confirmed and held): the backlog. */
    byState: Record<string, number>;
  };
  /** charges: all charges of this run's asOf; new*: what this execution added (0 on a rerun). */
  alerts: Array<{ outcomeType: string; threshold: number; basis: string; delivered: boolean }>;
  ledger: { charges: number; amountMinor: number; amount: string; newCharges: number; newAmountMinor: number; credits: number; creditsMinor: number; currency: string };
}

/** Clocks differ a little between machines; more than this ahead is a mistake. */
export const AS_OF_SKEW_MS = 5 * 60_000;

/**
 * A run as of the future would bill grace that has not ended and settle outcomes for good (the
 * ledger cannot be edited), so it is refused outright.
 */
export function refuseFutureAsOf(asOf: Date, now: Date): void {
  if (asOf.getTime() > now.getTime() + AS_OF_SKEW_MS) {
    throw new ReconError('as_of_in_future', `asOf ${asOf.toISOString()} is in the future (now ${now.toISOString()}); a run can only reconcile what has happened`);
  }
}

/** Opens (or reopens, on a rerun of the same asOf) the run row and claims the imports since the last run. */
export async function startRun(pool: Pool, args: { tenant: string; asOf: Date; workflowId: string }): Promise<number> {
  return inTransaction(pool, async (db) => {
    const { rows } = await db.query<{ run_id: number }>(
      `insert into runs (tenant_id, as_of, workflow_id) values ($1, $2, $3)
       on conflict (tenant_id, as_of) do update set attempts = runs.attempts + 1, status = 'running', workflow_id = excluded.workflow_id
       returning run_id`,
      [args.tenant, args.asOf, args.workflowId],
    );
    const runId = rows[0].run_id;
    await db.query('update imports set run_id = $2 where tenant_id = $1 and run_id is null', [args.tenant, runId]);
    return runId;
  });
}

export async function finishRun(pool: Pool, args: { runId: number; tenant: string; asOf: Date; timeZone: string; currency: string; posted: { count: number; amountMinor: number } }): Promise<RunSummary> {
  const { runId, tenant } = args;
  // Pages pulled during this run were imported after startRun claimed the earlier imports.
  await pool.query('update imports set run_id = $2 where tenant_id = $1 and run_id is null', [tenant, runId]);
  const q = async <T>(sql: string, params: unknown[]) => (await pool.query(sql, params)).rows as T[];
  const imports = await q<{ kind: string; received: number; accepted: number; redelivered: number; quarantined: number }>(
    `select kind, sum(received)::int as received, sum(accepted)::int as accepted, sum(redelivered)::int as redelivered, sum(quarantined)::int as quarantined
       from imports where run_id = $1 group by kind`,
    [runId],
  );
  const counts = (kind: string) => {
    const r = imports.find((i) => i.kind === kind);
    return { received: r?.received ?? 0, accepted: r?.accepted ?? 0, redelivered: r?.redelivered ?? 0, quarantined: r?.quarantined ?? 0 };
  };
  const [claimStats] = await q<{ duplicates: number; retracted: number }>(
    `select count(*) filter (where o.primary_claim_id is not null and o.primary_claim_id <> c.claim_id and c.retracted_at is null)::int as duplicates,
            count(*) filter (where c.retracted_at is not null)::int as retracted
       from claims c join imports i on i.import_id = c.import_id and i.run_id = $1
       join outcomes o on o.outcome_id = c.outcome_id`,
    [runId],
  );
  const events = await q<{ kind: string; reason: string | null; n: number }>(
    `select e.kind, o.reject_reason as reason, count(*)::int as n from outcome_events e join outcomes o using (outcome_id)
      where e.run_id = $1 group by e.kind, o.reject_reason`,
    [runId],
  );
  const transitions: Record<string, number> = {};
  const rejected: Record<string, number> = {};
  for (const e of events) {
    transitions[e.kind] = (transitions[e.kind] ?? 0) + e.n;
    if (e.kind === 'rejected' && e.reason) rejected[e.reason] = (rejected[e.reason] ?? 0) + e.n;
  }
  // Open outcomes only, through the open-states index: counting settled history would read the
  // whole table every night, and the ledger already accounts for what is settled.
  const states = await q<{ state: string; n: number }>(
    `select state, count(*)::int as n from outcomes where tenant_id = $1 and state in ('awaiting_evidence', 'in_grace', 'confirmed') group by state`,
    [tenant],
  );
  const [created] = await q<{ n: number }>('select count(*)::int as n from outcomes where created_run_id = $1', [runId]);
  const [ambiguous] = await q<{ n: number }>(
    `select count(*)::int as n from outcomes where tenant_id = $1 and match_status = 'ambiguous' and state in ('awaiting_evidence', 'in_grace')`,
    [tenant],
  );
  const [ledger] = await q<{ charges: number; amount: number; credits: number; credit_amount: number }>(
    `select count(*) filter (where kind = 'charge')::int as charges, coalesce(sum(amount_minor) filter (where kind = 'charge'), 0)::bigint as amount,
            count(*) filter (where kind = 'credit')::int as credits, coalesce(sum(amount_minor) filter (where kind = 'credit'), 0)::bigint as credit_amount
       from ledger_entries where run_id = $1`,
    [runId],
  );
  const alerts = await q<{ outcome_type: string; threshold: string; basis: string; delivered_at: Date | null }>(
    'select outcome_type, threshold, basis, delivered_at from alerts where run_id = $1 order by outcome_type, threshold',
    [runId],
  );
  const summary: RunSummary = {
    runId,
    tenant,
    asOf: args.asOf.toISOString(),
    period: billingPeriodOf(args.asOf, args.timeZone),
    claims: { ...counts('claims'), duplicates: claimStats?.duplicates ?? 0, retracted: claimStats?.retracted ?? 0 },
    records: counts('records'),
    outcomes: {
      created: created?.n ?? 0,
      transitions,
      rejected,
      ambiguous: ambiguous?.n ?? 0,
      byState: Object.fromEntries(states.map((s) => [s.state, s.n])),
    },
    alerts: alerts.map((a) => ({ outcomeType: a.outcome_type, threshold: Number(a.threshold), basis: a.basis, delivered: a.delivered_at !== null })),
    ledger: { charges: ledger.charges, amountMinor: Number(ledger.amount), amount: formatMinorUnits(Number(ledger.amount), args.currency), newCharges: args.posted.count, newAmountMinor: args.posted.amountMinor, credits: ledger.credits, creditsMinor: Number(ledger.credit_amount), currency: args.currency },
  };
  await pool.query(`update runs set status = 'completed', finished_at = now(), summary = $2 where run_id = $1`, [runId, JSON.stringify(summary)]);
  return summary;
}

/**
 * A night that failed for good: the row says so, with the error's catalogue code and message, so
 * that support sees the cause without the Temporal UI. A night that failed before its row was
 * opened (its contract unreadable at startRun) gets a failed row, if the tenant exists. A
 * completed run is never marked failed.
 */
export async function markRunFailed(pool: Pool, args: { runId: number; tenant: string; asOf: Date; workflowId: string; code: string; message: string }): Promise<void> {
  if (args.runId > 0) {
    await pool.query(
      `update runs set status = 'failed', finished_at = now(), failure_code = $2, failure_message = $3
        where run_id = $1 and status <> 'completed'`,
      [args.runId, args.code, args.message],
    );
    return;
  }
  await pool.query(
    `insert into runs (tenant_id, as_of, workflow_id, status, finished_at, failure_code, failure_message)
     select $1, $2, $3, 'failed', now(), $4, $5
      where exists (select 1 from tenants where tenant_id = $1) and $2::timestamptz <= now() + interval '5 minutes'
     on conflict (tenant_id, as_of) do update
        set status = 'failed', finished_at = now(), failure_code = excluded.failure_code, failure_message = excluded.failure_message
      where runs.status <> 'completed'`,
    [args.tenant, args.asOf, args.workflowId, args.code, args.message],
  );
}
