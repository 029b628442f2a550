import type { Pool, PoolClient } from '../db/pool';

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
 * period. Counted from the delivery rows, so a line is in exactly one state per sink.
 */
export async function sinkTotals(
  db: Pool | PoolClient,
  p: { tenant: string; period?: string },
): Promise<SinkStateTotal[]> {
  const { rows } = await db.query<SinkStateTotal>(
    `select d.sink, coalesce(b.state, 'owed') as state, l.currency,
            count(distinct d.batch_id)::int as batches, count(*)::int as lines, coalesce(sum(l.amount_minor), 0)::bigint as "amountMinor"
       from sink_deliveries d
       join ledger_entries l on l.entry_id = d.entry_id
       left join sink_batches b on b.batch_id = d.batch_id
      where d.tenant_id = $1 and ($2::text is null or l.period = $2)
      group by 1, 2, 3
      order by 1, 2, 3`,
    [p.tenant, p.period ?? null],
  );
  return rows;
}
