import type { Pool, PoolClient } from '../db/pool';
import type { RunRow } from '../db/rows';
import type { LedgerLine } from '../ledger';
import { inTransaction } from '../db/pool';
import { formatMinorUnits } from '../domain/money';
import { billingPeriodOf } from '../domain/periods';
import { ReconError } from '../domain/errors';
import { sinkTotals, type SinkStateTotal } from '../sinks/status';

/** What one run wrote into one period in one currency. Amounts are never summed across currencies. */
export interface RunLedgerGroup {
  /** The period the lines landed in (a closed period's lines land in the next open one). */
  period: string;
  currency: string;
  /** Periods these lines correct: their own period was closed, so they landed here. */
  corrects: string[];
  lines: number;
  amountMinor: number;
  amount: string;
  /** Every outcome charge line, included and capped ones (amount 0) among them. */
  charges: { count: number; amountMinor: number; included: number; capped: number };
  baseFees: { count: number; amountMinor: number };
  trueUps: { count: number; amountMinor: number };
  credits: { count: number; amountMinor: number };
  /** What this execution added (the rest an earlier execution of the same asOf wrote). */
  newLines: number;
  newAmountMinor: number;
}

export interface RunSummary {
  runId: number;
  tenant: string;
  asOf: string;
  /** The run's own period (the month of asOf); ledger.byPeriod says where its lines landed. */
  period: string;
  claims: {
    received: number;
    accepted: number;
    redelivered: number;
    quarantined: number;
    duplicates: number;
    retracted: number;
  };
  records: { received: number; accepted: number; redelivered: number; quarantined: number };
  outcomes: {
    created: number;
    transitions: Record<string, number>;
    rejected: Record<string, number>;
    /** Outcomes waiting on an ambiguous match, counted at openCountedAt (not as of asOf). */
    ambiguous: number;
    /**
     * The tenant's open outcomes by state (awaiting evidence, in grace, confirmed; on hold
     * included) when the run reported, at openCountedAt: the backlog now, not as of asOf.
     */
    byState: Record<string, number>;
    openCountedAt: string;
  };
  alerts: Array<{ outcomeType: string; threshold: number; basis: string; delivered: boolean }>;
  /**
   * Every line this run (this tenant and asOf, all its executions) wrote. charges … creditsMinor
   * are kept for older readers and count only lines in `currency` (the contract's); byPeriod has
   * every line by period landed in and currency. new*: what this execution added (0 on a rerun).
   */
  ledger: {
    charges: number;
    amountMinor: number;
    amount: string;
    newCharges: number;
    newAmountMinor: number;
    credits: number;
    creditsMinor: number;
    currency: string;
    lines: number;
    newLines: number;
    byPeriod: RunLedgerGroup[];
    /**
     * Lines no run wrote (support's dispute credits) posted since the tenant's previous run started
     * and before this one did: not this run's work, but each movement of the ledger shows in the
     * nightly report that follows it, so the nights' reports add up to the statement.
     */
    outsideRuns?: {
      since: string | null;
      byPeriod: Array<{ period: string; currency: string; lines: number; amountMinor: number; amount: string }>;
    };
  };
  /** Set when the tenant has billing sinks: every line it owes them, by sink and state, after the night's delivery. */
  sinks?: SinkStateTotal[];
  /** Set when a later asOf of this tenant had already completed: what this run could and could not change. */
  backdated?: { latestCompletedAsOf: string; canChange: string[]; cannotChange: string[] };
}

/** Clocks differ a little between machines; more than this ahead is a mistake. */
export const AS_OF_SKEW_MS = 5 * 60_000;

/**
 * A run as of the future would bill grace that has not ended and settle outcomes for good (the
 * ledger cannot be edited), so it is refused outright.
 */
export function refuseFutureAsOf(asOf: Date, now: Date): void {
  if (asOf.getTime() > now.getTime() + AS_OF_SKEW_MS) {
    throw new ReconError(
      'as_of_in_future',
      `asOf ${asOf.toISOString()} is in the future (now ${now.toISOString()}); a run can only reconcile what has happened`,
    );
  }
}

/** A lease not refreshed for this long belongs to a run that crashed or was terminated: it is taken over. */
export const RUN_LEASE_STALE_MS = 10 * 60_000;

interface LeaseRow {
  run_id: number;
  workflow_id: string;
  as_of: Date;
  taken_at: Date;
  heartbeat_at: Date;
  released_at: Date | null;
  run_status: string | null;
  silent_ms: number;
}

/**
 * Opens (or reopens, on a rerun of the same asOf) the run row, takes the tenant's run lease and
 * claims the imports since the last run, in one transaction. One run at a time per tenant: two
 * runs of different asOfs would claim each other's imports and post into each other's summaries.
 * A lease held by another workflow is refused (run_in_progress, naming that run) unless it is
 * released, its run has ended, or it has been silent for RUN_LEASE_STALE_MS (a crashed or
 * terminated run must not block the tenant forever). The same workflow (an activity retry, a
 * continue-as-new) keeps its lease.
 */
export async function startRun(
  pool: Pool,
  args: { tenant: string; asOf: Date; workflowId: string; staleMs?: number },
): Promise<number> {
  const staleMs = args.staleMs ?? RUN_LEASE_STALE_MS;
  return inTransaction(pool, async (db) => {
    // A released placeholder first, so that there is always a row to lock.
    await db.query(
      `insert into run_leases (tenant_id, run_id, workflow_id, as_of, released_at) values ($1, 0, '', $2, now()) on conflict do nothing`,
      [args.tenant, args.asOf],
    );
    const {
      rows: [lease],
    } = await db.query<LeaseRow>(
      `select l.run_id, l.workflow_id, l.as_of, l.taken_at, l.heartbeat_at, l.released_at, r.status as run_status,
              (extract(epoch from now() - l.heartbeat_at) * 1000)::bigint as silent_ms
         from run_leases l left join runs r on r.run_id = l.run_id
        where l.tenant_id = $1 for update of l`,
      [args.tenant],
    );
    const held = lease.released_at === null && lease.workflow_id !== args.workflowId && lease.run_status === 'running';
    if (held && Number(lease.silent_ms) < staleMs) {
      throw new ReconError(
        'run_in_progress',
        `tenant ${args.tenant} is busy with run ${lease.run_id} (asOf ${lease.as_of.toISOString()}, workflow ${lease.workflow_id}) since ${lease.taken_at.toISOString()}; ` +
          `a tenant runs one run at a time: start this one when it has finished (a run silent for ${Math.round(staleMs / 60_000)} minutes is taken over)`,
        { runId: lease.run_id, workflowId: lease.workflow_id, asOf: lease.as_of.toISOString() },
      );
    }
    const { rows } = await db.query<Pick<RunRow, 'run_id'>>(
      `insert into runs (tenant_id, as_of, workflow_id, attempt_started_at) values ($1, $2, $3, now())
       on conflict (tenant_id, as_of) do update set attempts = runs.attempts + 1, status = 'running', workflow_id = excluded.workflow_id,
         failure_code = null, failure_message = null,
         attempt_started_at = case when runs.workflow_id = excluded.workflow_id and runs.status = 'running' then runs.attempt_started_at else now() end
       returning run_id`,
      [args.tenant, args.asOf, args.workflowId],
    );
    const runId = rows[0].run_id;
    await db.query(
      `update run_leases set run_id = $2, workflow_id = $3, as_of = $4,
              taken_at = case when workflow_id = $3 and released_at is null then taken_at else now() end,
              heartbeat_at = now(), released_at = null
        where tenant_id = $1`,
      [args.tenant, runId, args.workflowId, args.asOf],
    );
    await db.query('update imports set run_id = $2 where tenant_id = $1 and run_id is null', [args.tenant, runId]);
    return runId;
  });
}

/** A sign of life from the run holding the tenant's lease (its activities call this as they work). */
export async function touchRunLease(pool: Pool, workflowId: string): Promise<void> {
  await pool.query('update run_leases set heartbeat_at = now() where workflow_id = $1 and released_at is null', [
    workflowId,
  ]);
}

/**
 * Lets the tenant's next run start. Called when the run reports; a run that fails must call it
 * too (markRunFailed), or the next run waits until the lease is stale. Only the holder releases.
 */
export async function releaseRunLease(
  db: Pool | PoolClient,
  args: { tenant: string; workflowId: string },
): Promise<void> {
  await db.query(
    'update run_leases set released_at = now() where tenant_id = $1 and workflow_id = $2 and released_at is null',
    [args.tenant, args.workflowId],
  );
}

/**
 * What a run as of an earlier time than the tenant's last completed run can still do, and what
 * it cannot: the ledger is append-only and later runs have settled what they settled.
 */
export function backdatedNotes(args: { asOf: Date; latestCompletedAsOf: Date; closedPeriods: string[] }): {
  canChange: string[];
  cannotChange: string[];
} {
  const asOf = args.asOf.toISOString();
  return {
    canChange: [
      `claims and records imported since the previous run are matched, and outcomes still open are evaluated as of ${asOf}`,
      `outcomes still open (awaiting evidence, in grace, confirmed) may be confirmed and billed, or rejected, as of ${asOf}; their lines land in the period of ${asOf} (or the next open period)`,
    ],
    cannotChange: [
      `lines already posted by later runs (up to ${args.latestCompletedAsOf.toISOString()}) stay as they are: the ledger is append-only, and their prices and periods do not change`,
      'outcomes later runs billed, credited or rejected stay settled',
      ...(args.closedPeriods.length
        ? [
            `closed periods (${args.closedPeriods.join(', ')}) receive nothing; their lines land in the next open period`,
          ]
        : ['closed periods receive nothing; their lines land in the next open period']),
    ],
  };
}

export async function finishRun(
  pool: Pool,
  args: {
    runId: number;
    tenant: string;
    asOf: Date;
    timeZone: string;
    currency: string;
    posted: { count: number; amountMinor: number };
  },
): Promise<RunSummary> {
  const { runId, tenant } = args;
  // Pages pulled during this run were imported after startRun claimed the earlier imports.
  await pool.query('update imports set run_id = $2 where tenant_id = $1 and run_id is null', [tenant, runId]);
  const q = async <T>(sql: string, params: unknown[]) => (await pool.query(sql, params)).rows as T[];
  const imports = await q<{
    kind: string;
    received: number;
    accepted: number;
    redelivered: number;
    quarantined: number;
  }>(
    `select kind, sum(received)::int as received, sum(accepted)::int as accepted, sum(redelivered)::int as redelivered, sum(quarantined)::int as quarantined
       from imports where run_id = $1 group by kind`,
    [runId],
  );
  const counts = (kind: string) => {
    const r = imports.find((i) => i.kind === kind);
    return {
      received: r?.received ?? 0,
      accepted: r?.accepted ?? 0,
      redelivered: r?.redelivered ?? 0,
      quarantined: r?.quarantined ?? 0,
    };
  };
  // The night's claims by their imports' ids, each probing its outcome by key: as a join, the
  // planner read every claim and every outcome of the table (6.2 s on 5M settled outcomes).
  const importIds = await q<{ import_id: number }>('select import_id from imports where run_id = $1', [runId]);
  const [claimStats] = await q<{ duplicates: number; retracted: number }>(
    `select count(*) filter (where c.primary_claim_id is not null and c.primary_claim_id <> c.claim_id and c.retracted_at is null)::int as duplicates,
            count(*) filter (where c.retracted_at is not null)::int as retracted
       from (select c.claim_id, c.retracted_at,
                    (select o.primary_claim_id from outcomes o where o.outcome_id = c.outcome_id) as primary_claim_id
               from claims c where c.import_id = any($1::bigint[]) and c.outcome_id is not null) c`,
    [importIds.map((i) => i.import_id)],
  );
  // Transitions from the run's events alone; only a rejection needs its outcome, for the reason.
  const events = await q<{ kind: string; n: number }>(
    'select kind, count(*)::int as n from outcome_events where run_id = $1 group by kind',
    [runId],
  );
  const reasons = await q<{ reason: string | null; n: number }>(
    `select (select o.reject_reason from outcomes o where o.outcome_id = e.outcome_id) as reason, count(*)::int as n
       from outcome_events e where e.run_id = $1 and e.kind = 'rejected' group by 1`,
    [runId],
  );
  const transitions: Record<string, number> = {};
  const rejected: Record<string, number> = {};
  for (const e of events) transitions[e.kind] = (transitions[e.kind] ?? 0) + e.n;
  for (const r of reasons) if (r.reason) rejected[r.reason] = (rejected[r.reason] ?? 0) + r.n;
  // Open outcomes only, through the open-states index: counting settled history would read the
  // whole table every night, and the ledger already accounts for what is settled.
  const states = await q<{ state: string; n: number }>(
    `select state, count(*)::int as n from outcomes where tenant_id = $1 and state in ('awaiting_evidence', 'in_grace', 'confirmed') group by state`,
    [tenant],
  );
  const [created] = await q<{ n: number }>('select count(*)::int as n from outcomes where created_run_id = $1', [
    runId,
  ]);
  const [ambiguous] = await q<{ n: number }>(
    `select count(*)::int as n from outcomes where tenant_id = $1 and match_status = 'ambiguous' and state in ('awaiting_evidence', 'in_grace')`,
    [tenant],
  );
  const [run] = await q<Pick<RunRow, 'attempt_started_at' | 'started_at' | 'workflow_id'> & { counted_at: Date }>(
    'select attempt_started_at, started_at, workflow_id, now() as counted_at from runs where run_id = $1',
    [runId],
  );
  const groups = await q<LedgerGroupRow>(
    `select period, currency, kind, pricing_basis as basis, corrects_period as corrects, count(*)::int as n, sum(amount_minor)::bigint as amount,
            count(*) filter (where created_at >= $2)::int as new_n, coalesce(sum(amount_minor) filter (where created_at >= $2), 0)::bigint as new_amount
       from ledger_entries where run_id = $1 group by 1, 2, 3, 4, 5`,
    [runId, run.attempt_started_at ?? run.started_at],
  );
  const ledger = summariseLedger(groups, args.currency);
  const outside = await q<Pick<LedgerLine, 'period' | 'currency'> & { n: number; amount: number; since: Date | null }>(
    `with prev as (
       select max(coalesce(attempt_started_at, started_at)) as at from runs
        where tenant_id = $1 and run_id <> $2 and coalesce(attempt_started_at, started_at) < $3)
     select l.period, l.currency, count(*)::int as n, sum(l.amount_minor)::bigint as amount, (select at from prev) as since
       from ledger_entries l
      where l.tenant_id = $1 and l.run_id is null and l.created_at <= $3
        and l.created_at > coalesce((select at from prev), '-infinity'::timestamptz)
      group by 1, 2 order by 1, 2`,
    [tenant, runId, run.attempt_started_at ?? run.started_at],
  );
  if (outside.length) {
    ledger.outsideRuns = {
      since: outside[0].since?.toISOString() ?? null,
      byPeriod: outside.map((o) => ({
        period: o.period,
        currency: o.currency,
        lines: o.n,
        amountMinor: Number(o.amount),
        amount: formatMinorUnits(Number(o.amount), o.currency),
      })),
    };
  }
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
      openCountedAt: run.counted_at.toISOString(),
    },
    alerts: alerts.map((a) => ({
      outcomeType: a.outcome_type,
      threshold: Number(a.threshold),
      basis: a.basis,
      delivered: a.delivered_at !== null,
    })),
    ledger,
  };
  const sinks = await sinkTotals(pool, { tenant });
  if (sinks.length) summary.sinks = sinks;
  const [later] = await q<{ as_of: Date | null }>(
    `select max(as_of) as as_of from runs where tenant_id = $1 and status = 'completed' and as_of > $2`,
    [tenant, args.asOf],
  );
  if (later?.as_of) {
    const closed = await q<{ period: string }>(
      'select period from period_closes where tenant_id = $1 order by period',
      [tenant],
    );
    summary.backdated = {
      latestCompletedAsOf: later.as_of.toISOString(),
      ...backdatedNotes({
        asOf: args.asOf,
        latestCompletedAsOf: later.as_of,
        closedPeriods: closed.map((c) => c.period),
      }),
    };
  }
  await inTransaction(pool, async (db) => {
    await db.query(`update runs set status = 'completed', finished_at = now(), summary = $2 where run_id = $1`, [
      runId,
      JSON.stringify(summary),
    ]);
    await releaseRunLease(db, { tenant, workflowId: run.workflow_id });
  });
  return summary;
}

/** The run's ledger lines counted by (period, currency, kind, basis, corrects); new_*: this execution's. */
export interface LedgerGroupRow {
  period: string;
  currency: string;
  kind: string;
  basis: string;
  corrects: string | null;
  n: number;
  amount: number;
  new_n: number;
  new_amount: number;
}

/**
 * Folds the run's ledger lines, grouped by (period, currency, kind, basis, corrects), into one
 * entry per period landed in and currency. The older top-level counts are kept for their readers
 * and cover only `currency`, so that nothing is ever added across currencies.
 */
export function summariseLedger(groups: LedgerGroupRow[], currency: string): RunSummary['ledger'] {
  const byKey = new Map<string, RunLedgerGroup>();
  for (const g of groups) {
    const key = `${g.period}|${g.currency}`;
    let e = byKey.get(key);
    if (!e) {
      byKey.set(
        key,
        (e = {
          period: g.period,
          currency: g.currency,
          corrects: [],
          lines: 0,
          amountMinor: 0,
          amount: '',
          charges: { count: 0, amountMinor: 0, included: 0, capped: 0 },
          baseFees: { count: 0, amountMinor: 0 },
          trueUps: { count: 0, amountMinor: 0 },
          credits: { count: 0, amountMinor: 0 },
          newLines: 0,
          newAmountMinor: 0,
        }),
      );
    }
    const amount = Number(g.amount);
    e.lines += g.n;
    e.amountMinor += amount;
    e.newLines += g.new_n;
    e.newAmountMinor += Number(g.new_amount);
    if (g.corrects && g.corrects !== g.period && !e.corrects.includes(g.corrects)) e.corrects.push(g.corrects);
    const bucket =
      g.kind === 'charge'
        ? e.charges
        : g.kind === 'base_fee'
          ? e.baseFees
          : g.kind === 'true_up'
            ? e.trueUps
            : g.kind === 'credit'
              ? e.credits
              : null;
    if (!bucket) throw new ReconError('internal_error', `ledger line of unknown kind ${g.kind}`);
    bucket.count += g.n;
    bucket.amountMinor += amount;
    if (g.kind === 'charge' && g.basis === 'included') e.charges.included += g.n;
    if (g.kind === 'charge' && g.basis === 'capped') e.charges.capped += g.n;
  }
  const byPeriod = [...byKey.values()].sort(
    (a, b) => a.period.localeCompare(b.period) || a.currency.localeCompare(b.currency),
  );
  for (const e of byPeriod) {
    e.amount = formatMinorUnits(e.amountMinor, e.currency);
    e.corrects.sort();
  }
  const mine = byPeriod.filter((e) => e.currency === currency);
  const sum = (f: (e: RunLedgerGroup) => number) => mine.reduce((s, e) => s + f(e), 0);
  const newCharges = groups
    .filter((g) => g.currency === currency && g.kind === 'charge')
    .reduce((s, g) => s + g.new_n, 0);
  const newChargeAmount = groups
    .filter((g) => g.currency === currency && g.kind === 'charge')
    .reduce((s, g) => s + Number(g.new_amount), 0);
  return {
    charges: sum((e) => e.charges.count),
    amountMinor: sum((e) => e.charges.amountMinor),
    amount: formatMinorUnits(
      sum((e) => e.charges.amountMinor),
      currency,
    ),
    newCharges,
    newAmountMinor: newChargeAmount,
    credits: sum((e) => e.credits.count),
    creditsMinor: sum((e) => e.credits.amountMinor),
    currency,
    lines: byPeriod.reduce((s, e) => s + e.lines, 0),
    newLines: byPeriod.reduce((s, e) => s + e.newLines, 0),
    byPeriod,
  };
}

/** releaseRunLease for a run known by its id (for a run that failed: markRunFailed calls this). */
export async function releaseRunLeaseOfRun(db: Pool | PoolClient, runId: number): Promise<void> {
  await db.query('update run_leases set released_at = now() where run_id = $1 and released_at is null', [runId]);
}

/**
 * A night that failed for good: the row says so, with the error's catalogue code and message, so
 * that support sees the cause without the Temporal UI. A night that failed before its row was
 * opened (its contract unreadable at startRun) gets a failed row, if the tenant exists. A
 * completed run is never marked failed.
 */
export async function markRunFailed(
  pool: Pool,
  args: { runId: number; tenant: string; asOf: Date; workflowId: string; code: string; message: string },
): Promise<void> {
  if (args.runId > 0) {
    await pool.query(
      `update runs set status = 'failed', finished_at = now(), failure_code = $2, failure_message = $3
        where run_id = $1 and status <> 'completed'`,
      [args.runId, args.code, args.message],
    );
    // The tenant's next run must not wait out the lease of a night that has ended.
    await releaseRunLeaseOfRun(pool, args.runId);
    return;
  }
  await pool.query(
    `insert into runs (tenant_id, as_of, workflow_id, status, finished_at, failure_code, failure_message)
     select $1, $2, $3, 'failed', now(), $4, $5
      where exists (select 1 from tenants where tenant_id = $1) and $2::timestamptz <= now() + make_interval(secs => $6 / 1000.0)
     on conflict (tenant_id, as_of) do update
        set status = 'failed', finished_at = now(), failure_code = excluded.failure_code, failure_message = excluded.failure_message
      where runs.status <> 'completed'`,
    [args.tenant, args.asOf, args.workflowId, args.code, args.message, AS_OF_SKEW_MS],
  );
}
