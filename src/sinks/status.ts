import type { Pool, PoolClient } from '../db/pool';
import type { SinkConfig } from '../domain/sinks';
import { loadTenantSinks } from './batches';

/** What a tenant's sinks hold of its ledger, by sink, state and currency: lines, calls and amounts. */
export interface SinkStateTotal {
  sink: string;
  /** Batch states, plus `owed` for lines not yet grouped into a batch (the next pass does that). */
  state: 'owed' | 'pending' | 'delivered' | 'failed' | 'needs_attention' | 'skipped';
  currency: string;
  batches: number;
  lines: number;
  amountMinor: number;
}

/**
 * Totals per sink and state, over every line the tenant owes its sinks, or the lines booked in one
 * period. Batches carry their own line counts and amounts (a batch holds lines of one period and
 * currency), so only the lines not yet batched are read one by one, through their partial index:
 * every night's report runs this, and the delivered history is most of the rows.
 */
export async function sinkTotals(
  db: Pool | PoolClient,
  p: { tenant: string; period?: string },
): Promise<SinkStateTotal[]> {
  const { rows } = await db.query<SinkStateTotal>(
    `select sink, state, currency, sum(batches)::int as batches, sum(lines)::int as lines,
            sum(amount)::bigint as "amountMinor"
       from (
         select b.sink, b.state, b.currency, count(*) as batches, sum(b.line_count) as lines, sum(b.amount_minor) as amount
           from sink_batches b
          where b.tenant_id = $1 and ($2::text is null or b.period = $2)
          group by 1, 2, 3
         union all
         select d.sink, 'owed', l.currency, 0, count(*), coalesce(sum(l.amount_minor), 0)
           from sink_deliveries d join ledger_entries l on l.entry_id = d.entry_id
          where d.tenant_id = $1 and d.batch_id is null and ($2::text is null or l.period = $2)
          group by 1, 2, 3) t
      group by 1, 2, 3
      order by 1, 2, 3`,
    [p.tenant, p.period ?? null],
  );
  return rows;
}

/** A batch a person has to look at: the sink refused it, or it may or may not have landed. */
export interface AttentionBatch {
  sink: string;
  batchId: number;
  key: string;
  kind: string;
  state: 'failed' | 'needs_attention';
  period: string;
  lines: number;
  amountMinor: number;
  currency: string;
  attempts: number;
  lastError: string | null;
}

/** Failed and set-aside batches of a tenant (or of its lines booked in one period), oldest first. */
export async function attentionBatches(
  db: Pool | PoolClient,
  p: { tenant: string; period?: string },
): Promise<AttentionBatch[]> {
  const { rows } = await db.query<AttentionBatch>(
    `select sink, batch_id as "batchId", batch_key as key, kind, state, period, line_count as lines,
            amount_minor as "amountMinor", currency, attempts, last_error as "lastError"
       from sink_batches
      where tenant_id = $1 and state in ('failed', 'needs_attention') and ($2::text is null or period = $2)
      order by sink, batch_id`,
    [p.tenant, p.period ?? null],
  );
  return rows;
}

/** Per sink: when the earliest pending batch is tried next, and the latest reason one is waiting. */
export interface PendingOutlook {
  sink: string;
  nextAttemptAt: Date | null;
  lastError: string | null;
}

export async function pendingOutlook(
  db: Pool | PoolClient,
  p: { tenant: string; period?: string },
): Promise<PendingOutlook[]> {
  const { rows } = await db.query<PendingOutlook>(
    `select sink, min(next_attempt_at) as "nextAttemptAt",
            (array_agg(last_error order by last_attempt_at desc nulls last, batch_id desc)
               filter (where last_error is not null))[1] as "lastError"
       from sink_batches
      where tenant_id = $1 and state = 'pending' and ($2::text is null or period = $2)
      group by sink
      order by sink`,
    [p.tenant, p.period ?? null],
  );
  return rows;
}

/** One ledger line's delivery to one sink, for `outcome show`. */
export interface LineDelivery {
  entryId: number;
  sink: string;
  /** The batch's state, or `owed` while the line is not yet in a batch. */
  state: SinkStateTotal['state'];
  batchId: number | null;
  batchKey: string | null;
  deliveredAt: Date | null;
  lastError: string | null;
}

export async function deliveriesOfLines(db: Pool | PoolClient, entryIds: number[]): Promise<LineDelivery[]> {
  if (entryIds.length === 0) return [];
  const { rows } = await db.query<LineDelivery>(
    `select d.entry_id as "entryId", d.sink, coalesce(b.state, 'owed') as state, b.batch_id as "batchId",
            b.batch_key as "batchKey", b.delivered_at as "deliveredAt", b.last_error as "lastError"
       from sink_deliveries d left join sink_batches b on b.batch_id = d.batch_id
      where d.entry_id = any ($1::bigint[])
      order by d.entry_id, d.sink`,
    [entryIds],
  );
  return rows;
}

export const STATUS_STATES = ['delivered', 'pending', 'failed', 'needs_attention', 'skipped'] as const;
export type StatusState = (typeof STATUS_STATES)[number];

export interface StateCount {
  lines: number;
  batches: number;
  /** Lines owed to the sink and not yet grouped into a batch (counted in `lines` of pending). */
  unbatched?: number;
  /** One sum per currency: amounts in different currencies are never added. */
  amounts: Array<{ currency: string; amountMinor: number }>;
}

export interface SinkStatus {
  sink: string;
  kind: SinkConfig['kind'];
  states: Record<StatusState, StateCount>;
  nextAttemptAt: Date | null;
  /** Why the pending batches wait: the latest error one of them got. */
  waitingBecause: string | null;
}

export interface TenantSinkStatus {
  tenant: string;
  period: string | null;
  sinks: SinkStatus[];
  attention: AttentionBatch[];
}

/**
 * A tenant's deliveries per sink and state. Pending counts both the batches owed and the lines not
 * yet grouped into one: to the person asking, both are "not at the sink yet".
 */
export function summariseSinks(
  sinks: Array<{ name: string; kind: SinkConfig['kind'] }>,
  totals: SinkStateTotal[],
  outlook: PendingOutlook[],
): SinkStatus[] {
  return sinks.map((s) => {
    const states = Object.fromEntries(
      STATUS_STATES.map((st): [StatusState, StateCount] => [st, { lines: 0, batches: 0, amounts: [] }]),
    ) as Record<StatusState, StateCount>;
    states.pending.unbatched = 0;
    for (const t of totals.filter((x) => x.sink === s.name)) {
      const into = states[t.state === 'owed' ? 'pending' : t.state];
      into.lines += t.lines;
      into.batches += t.batches;
      if (t.state === 'owed') into.unbatched = (into.unbatched ?? 0) + t.lines;
      const sum = into.amounts.find((a) => a.currency === t.currency);
      if (sum) sum.amountMinor += Number(t.amountMinor);
      else into.amounts.push({ currency: t.currency, amountMinor: Number(t.amountMinor) });
    }
    for (const st of STATUS_STATES) states[st].amounts.sort((a, b) => a.currency.localeCompare(b.currency));
    const o = outlook.find((x) => x.sink === s.name);
    return {
      sink: s.name,
      kind: s.kind,
      states,
      nextAttemptAt: o?.nextAttemptAt ?? null,
      waitingBecause: o?.lastError ?? null,
    };
  });
}

export async function tenantSinkStatus(
  db: Pool | PoolClient,
  p: { tenant: string; period?: string },
): Promise<TenantSinkStatus> {
  const sinks = await loadTenantSinks(db, p.tenant);
  // One after another: a PoolClient takes one query at a time.
  const totals = await sinkTotals(db, p);
  const outlook = await pendingOutlook(db, p);
  const attention = await attentionBatches(db, p);
  return {
    tenant: p.tenant,
    period: p.period ?? null,
    sinks: summariseSinks(
      sinks.map((s) => ({ name: s.name, kind: s.config.kind })),
      totals,
      outlook,
    ),
    attention,
  };
}
