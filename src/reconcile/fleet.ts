import type { Pool } from '../db/pool';
import {
  FLEET_STATUSES,
  classifyNight,
  dueAt,
  fleetOrder,
  type FleetStatus,
  type WantedSchedule,
} from '../domain/fleet';
import type { ScheduleFacts } from '../temporal/schedules';
import { DEFAULT_CELL } from '../domain/cells';

/**
 * Every tenant of one cell with the timezone of its contract in effect at `now` (null when no
 * version has started yet: such a tenant gets no schedule until one has), and the cell's queue.
 */
export async function wantedSchedules(pool: Pool, now: Date, taskQueue: string): Promise<WantedSchedule[]> {
  const { rows } = await pool.query<{ tenant_id: string; timezone: string | null }>(
    `select t.tenant_id,
            (select c.body->>'timezone' from contracts c where c.tenant_id = t.tenant_id and c.effective_from <= $1
              order by c.effective_from desc limit 1) as timezone
       from tenants t order by t.tenant_id`,
    [now],
  );
  return rows.map((r) => ({ tenant: r.tenant_id, timezone: r.timezone, taskQueue }));
}

/** One tenant's night as the database knows it. */
export interface FleetNightRow {
  tenant: string;
  /** The cell whose database answered (set by the caller that asked every cell). */
  cell?: string;
  timezone: string;
  nightStart: Date;
  nightEnd: Date;
  /** The run of the night with the latest asOf (a rerun or a manual run of the same day included). */
  run: {
    runId: number;
    asOf: Date;
    status: string;
    startedAt: Date;
    finishedAt: Date | null;
    failureCode: string | null;
    failureMessage: string | null;
    charges: number | null;
    amountMinor: number | null;
    amount: string | null;
    currency: string | null;
  } | null;
  runsInNight: number;
  /** Ledger lines owed to a sink and not yet delivered (no batch yet, or a pending one). */
  pendingDeliveries: number;
  /** Lines in failed or set-aside batches: a person must look. */
  deliveriesNeedingAttention: number;
  /** Open disputes whose SLA has passed at `now`. */
  disputesPastSla: number;
}

interface Row {
  tenant_id: string;
  timezone: string;
  night_start: Date;
  night_end: Date;
  run_id: number | null;
  as_of: Date | null;
  status: string | null;
  started_at: Date | null;
  finished_at: Date | null;
  failure_code: string | null;
  failure_message: string | null;
  charges: number | null;
  amount_minor: number | null;
  amount: string | null;
  currency: string | null;
  runs_in_night: number;
  pending: number;
  attention: number;
  past_sla: number;
}

/**
 * Every tenant with a contract in effect at `now`, and its night `night` (a calendar day in the
 * tenant's timezone): one statement for the whole fleet. The run is found through the runs'
 * unique (tenant_id, as_of) index per tenant; deliveries and disputes are counted once over their
 * open rows and joined by tenant.
 */
export async function fleetNight(pool: Pool, night: string, now: Date): Promise<FleetNightRow[]> {
  const { rows } = await pool.query<Row>(
    `with fleet as (
       select t.tenant_id, c.timezone,
              ($1::date)::timestamp at time zone c.timezone as night_start,
              ($1::date + 1)::timestamp at time zone c.timezone as night_end
         from tenants t
         join lateral (
           select x.body->>'timezone' as timezone from contracts x
            where x.tenant_id = t.tenant_id and x.effective_from <= $2
            order by x.effective_from desc limit 1) c on true),
     owed as (
       -- Unbatched lines through their partial index, batches by their line counts: the delivered
       -- history (almost every row) is never read.
       select tenant_id, sum(pending)::int as pending, sum(attention)::int as attention from (
         select tenant_id, count(*) as pending, 0 as attention from sink_deliveries where batch_id is null group by tenant_id
         union all
         select tenant_id, coalesce(sum(line_count) filter (where state = 'pending'), 0),
                coalesce(sum(line_count) filter (where state in ('failed', 'needs_attention')), 0)
           from sink_batches where state in ('pending', 'failed', 'needs_attention') group by tenant_id) x
        group by tenant_id),
     late_disputes as (
       select tenant_id, count(*)::int as past_sla from disputes
        where status = 'open' and sla_at < $2 group by tenant_id)
     select f.tenant_id, f.timezone, f.night_start, f.night_end,
            r.run_id, r.as_of, r.status, r.started_at, r.finished_at, r.failure_code, r.failure_message,
            (r.summary->'ledger'->>'charges')::int as charges, (r.summary->'ledger'->>'amountMinor')::bigint as amount_minor,
            r.summary->'ledger'->>'amount' as amount, r.summary->'ledger'->>'currency' as currency,
            coalesce(n.runs, 0) as runs_in_night,
            coalesce(o.pending, 0) as pending, coalesce(o.attention, 0) as attention, coalesce(ld.past_sla, 0) as past_sla
       from fleet f
       left join lateral (
         select run_id, as_of, status, started_at, finished_at, failure_code, failure_message, summary from runs
          where tenant_id = f.tenant_id and as_of >= f.night_start and as_of < f.night_end
          order by as_of desc limit 1) r on true
       left join lateral (
         select count(*)::int as runs from runs
          where tenant_id = f.tenant_id and as_of >= f.night_start and as_of < f.night_end) n on true
       left join owed o on o.tenant_id = f.tenant_id
       left join late_disputes ld on ld.tenant_id = f.tenant_id
      order by f.tenant_id`,
    [night, now],
  );
  return rows.map((r) => ({
    tenant: r.tenant_id,
    timezone: r.timezone,
    nightStart: r.night_start,
    nightEnd: r.night_end,
    run:
      r.run_id === null
        ? null
        : {
            runId: Number(r.run_id),
            asOf: r.as_of!,
            status: r.status!,
            startedAt: r.started_at!,
            finishedAt: r.finished_at,
            failureCode: r.failure_code,
            failureMessage: r.failure_message,
            charges: r.charges,
            amountMinor: r.amount_minor === null ? null : Number(r.amount_minor),
            amount: r.amount,
            currency: r.currency,
          },
    runsInNight: r.runs_in_night,
    pendingDeliveries: r.pending,
    deliveriesNeedingAttention: r.attention,
    disputesPastSla: r.past_sla,
  }));
}

export interface FleetLine {
  tenant: string;
  cell: string;
  status: FleetStatus;
  timezone: string;
  /** Why the status, in one phrase; for failed: the run's failure code and message. */
  why: string | null;
  run: FleetNightRow['run'];
  runsInNight: number;
  dueAt: string | null;
  pendingDeliveries: number;
  deliveriesNeedingAttention: number;
  disputesPastSla: number;
}

export interface FleetReport {
  night: string;
  now: string;
  lateAfterMinutes: number;
  /** False when Temporal could not be asked: due times and fires are then unknown. */
  schedulesKnown: boolean;
  tenants: FleetLine[];
  totals: Record<FleetStatus, number>;
}

/** Joins the database's nights with the schedules Temporal knows, classifies, sorts problems first. */
export function fleetReport(args: {
  night: string;
  rows: FleetNightRow[];
  schedules: Map<string, ScheduleFacts> | null;
  now: Date;
  lateAfterMs: number;
  /** Cells that did not answer, with the tenants the directory places there. */
  down?: Array<{ cell: string; tenants: string[]; why: string }>;
}): FleetReport {
  const unreachable = (args.down ?? []).flatMap((d) =>
    d.tenants.map((tenant): FleetLine => ({
      tenant,
      cell: d.cell,
      status: 'unreachable',
      timezone: '',
      why: d.why,
      run: null,
      runsInNight: 0,
      dueAt: null,
      pendingDeliveries: 0,
      deliveriesNeedingAttention: 0,
      disputesPastSla: 0,
    })),
  );
  const tenants = args.rows.map((r): FleetLine => {
    const s = args.schedules?.get(r.tenant);
    const due = s ? dueAt(args.night, r.timezone, s.cron) : null;
    const fired =
      s?.recentFires.filter((t) => t >= r.nightStart && t < r.nightEnd).sort((a, b) => b.getTime() - a.getTime())[0] ??
      null;
    const c = classifyNight({
      run: r.run && { status: r.run.status, startedAt: r.run.startedAt },
      dueAt: due,
      firedAt: fired,
      // Without Temporal's answer a schedule is assumed: a missing run is then still reported.
      hasSchedule: args.schedules ? s !== undefined : true,
      nightEnd: r.nightEnd,
      now: args.now,
      lateAfterMs: args.lateAfterMs,
    });
    const why =
      c.status === 'failed'
        ? `${r.run?.failureCode ?? 'unknown'}: ${r.run?.failureMessage ?? 'no message recorded'}`
        : s?.paused && c.status !== 'completed'
          ? [c.why, 'schedule paused'].filter(Boolean).join('; ')
          : c.why;
    return {
      tenant: r.tenant,
      cell: r.cell ?? DEFAULT_CELL,
      status: c.status,
      timezone: r.timezone,
      why,
      run: r.run,
      runsInNight: r.runsInNight,
      dueAt: due?.toISOString() ?? null,
      pendingDeliveries: r.pendingDeliveries,
      deliveriesNeedingAttention: r.deliveriesNeedingAttention,
      disputesPastSla: r.disputesPastSla,
    };
  });
  tenants.push(...unreachable);
  tenants.sort(fleetOrder);
  const totals = Object.fromEntries(FLEET_STATUSES.map((s) => [s, 0])) as Record<FleetStatus, number>;
  for (const t of tenants) totals[t.status] += 1;
  return {
    night: args.night,
    now: args.now.toISOString(),
    lateAfterMinutes: Math.round(args.lateAfterMs / 60_000),
    schedulesKnown: args.schedules !== null,
    tenants,
    totals,
  };
}

/** One line per tenant and the summary, for a terminal. */
export function formatFleetReport(r: FleetReport): string {
  const cells = new Set(r.tenants.map((t) => t.cell)).size > 1;
  const lines = r.tenants.map((t) => {
    const parts = [`${t.status.padEnd(9)} ${t.tenant}${cells ? ` (cell ${t.cell})` : ''}`];
    if (t.status === 'completed' && t.run)
      parts.push(`${t.run.charges ?? 0} charges, ${t.run.amount ?? '?'} ${t.run.currency ?? ''}`.trimEnd());
    if (t.why) parts.push(t.why);
    if (t.runsInNight > 1) parts.push(`${t.runsInNight} runs this night, latest shown`);
    if (t.pendingDeliveries) parts.push(`${t.pendingDeliveries} lines not yet delivered`);
    if (t.deliveriesNeedingAttention) parts.push(`${t.deliveriesNeedingAttention} lines in failed batches`);
    if (t.disputesPastSla) parts.push(`${t.disputesPastSla} disputes past SLA`);
    return parts.join(' · ');
  });
  const summary = FLEET_STATUSES.filter((s) => r.totals[s] > 0 || ['completed', 'failed', 'missing'].includes(s))
    .map((s) => `${r.totals[s]} ${s}`)
    .join(', ');
  return [
    `night ${r.night} (each tenant's own calendar day) · ${r.tenants.length === 1 ? '1 tenant' : `${r.tenants.length} tenants`} · late after ${r.lateAfterMinutes} min${r.schedulesKnown ? '' : ' · Temporal not reachable: schedules unknown'}`,
    ...lines,
    summary,
  ].join('\n');
}
