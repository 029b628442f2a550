import { createHash } from 'node:crypto';
import type { Pool, PoolClient } from '../db/pool';
import { SinkSchema, type SinkConfig } from '../domain/sinks';
import { ReconError } from '../domain/errors';
import type { LedgerKind } from '../ledger/rows';
import type { ReversedBatch, SinkBatch } from './types';

/**
 * The outbox's SQL: which sinks a tenant has, grouping owed lines into batches, and reading a
 * batch back for its adapter. Deliveries themselves are written by the trigger of migration 015.
 */

export interface TenantSink {
  name: string;
  config: SinkConfig;
}

/**
 * Each sink the tenant's contracts have ever named, configured as its latest version says: a
 * corrected URL or key name applies to debts already owed, and a sink dropped from the contract
 * is still owed the lines written while it was in it.
 */
export async function loadTenantSinks(db: Pool | PoolClient, tenant: string): Promise<TenantSink[]> {
  const { rows } = await db.query<{ sink: string; config: unknown; version: number }>(
    `select distinct on (s.key) s.key as sink, s.value as config, c.version
       from contracts c cross join lateral jsonb_each(c.body -> 'sinks') s
      where c.tenant_id = $1
      order by s.key, c.version desc`,
    [tenant],
  );
  return rows.map((r) => {
    const parsed = SinkSchema.safeParse(r.config);
    if (!parsed.success)
      throw new ReconError(
        'invalid_contract',
        `tenant ${tenant}, contract version ${r.version}: sink ${r.sink} no longer reads as a sink (${parsed.error.issues[0]?.message}); apply a corrected version`,
      );
    return { name: r.sink, config: parsed.data };
  });
}

/** The suffix that makes a batch key unique across tenants and sinks sharing one billing account. */
export function batchKeySuffix(tenant: string, sink: string): string {
  return createHash('sha256').update(`${tenant}/${sink}`).digest('hex').slice(0, 10);
}

const KIND_TAG: Record<LedgerKind, string> = { charge: 'ch', credit: 'cr', base_fee: 'bf', true_up: 'tu' };

/** The idempotency value of a batch: the ledger lines it carries, named by entry id (see types.ts). */
export function batchKey(kind: LedgerKind, firstEntryId: number, lastEntryId: number, suffix: string): string {
  return `recon_${KIND_TAG[kind]}_${firstEntryId}_${lastEntryId}_${suffix}`;
}

export interface BatchLimits {
  maxLines: number;
  /** Largest absolute amount per batch, or null. */
  maxAmount: number | null;
  /** Kinds this sink does not take: their batches are written as skipped, so the debt is visibly settled. */
  skipKinds: LedgerKind[];
}

/**
 * Groups up to `limit` owed lines of one sink into batches, in one statement: lines of one kind,
 * run (a line outside any run is its own group), outcome type, period, currency, price and tier
 * go together, split where the sink's limits say. The key is built in SQL exactly as batchKey
 * builds it. Returns the lines grouped; fewer than `limit` means none are left.
 */
export async function formBatches(
  db: Pool | PoolClient,
  p: { tenant: string; sink: string; limits: BatchLimits; limit: number },
): Promise<{ lines: number; batches: number }> {
  const { rows } = await db.query<{ lines: number; batches: number }>(
    `with owed as (
       select d.entry_id, l.kind, l.run_id, l.outcome_type, l.period, l.currency, l.unit_price, l.tier, l.amount_minor,
              l.as_of, coalesce(l.run_id, -l.entry_id) as grp
         from sink_deliveries d join ledger_entries l on l.entry_id = d.entry_id
        where d.tenant_id = $1 and d.sink = $2 and d.batch_id is null
        order by d.entry_id
        limit $3
     ), numbered as (
       select o.*,
              row_number() over w as rn,
              max(abs(o.amount_minor)) over w2 as widest
         from owed o
       window w as (partition by kind, grp, outcome_type, period, currency, unit_price, tier order by entry_id),
              w2 as (partition by kind, grp, outcome_type, period, currency, unit_price, tier)
     ), bucketed as (
       select n.*,
              (n.rn - 1) / greatest(1, least($4::bigint,
                 coalesce($5::bigint / nullif(n.widest, 0), $4::bigint))) as bucket
         from numbered n
     ), placed as (
       select b.*, min(b.entry_id) over (partition by kind, grp, outcome_type, period, currency, unit_price, tier, bucket) as bucket_first
         from bucketed b
     ), groups as (
       select kind, grp, outcome_type, period, currency, unit_price, tier, bucket,
              min(run_id) as run_id, count(*)::int as line_count, sum(amount_minor)::bigint as amount_minor,
              min(as_of) as event_at, min(entry_id) as first_entry_id, max(entry_id) as last_entry_id
         from placed
        group by kind, grp, outcome_type, period, currency, unit_price, tier, bucket
     ), inserted as (
       insert into sink_batches (tenant_id, sink, batch_key, kind, run_id, outcome_type, period, currency, unit_price, tier,
                                 line_count, amount_minor, event_at, first_entry_id, last_entry_id, state)
       select $1, $2,
              'recon_' || case kind when 'charge' then 'ch' when 'credit' then 'cr' when 'base_fee' then 'bf' else 'tu' end
                || '_' || first_entry_id || '_' || last_entry_id || '_' || $6,
              kind, run_id, outcome_type, period, currency, unit_price, tier, line_count, amount_minor, event_at,
              first_entry_id, last_entry_id,
              case when kind = any ($7::text[]) then 'skipped' else 'pending' end
         from groups
       returning batch_id, first_entry_id
     ), assigned as (
       update sink_deliveries d set batch_id = i.batch_id
         from placed b
         join inserted i on i.first_entry_id = b.bucket_first
        where d.entry_id = b.entry_id and d.sink = $2
       returning 1
     )
     select (select count(*) from assigned)::int as lines, (select count(*) from inserted)::int as batches`,
    [
      p.tenant,
      p.sink,
      p.limit,
      p.limits.maxLines,
      p.limits.maxAmount,
      batchKeySuffix(p.tenant, p.sink),
      p.limits.skipKinds,
    ],
  );
  return rows[0];
}

/** A sink_batches row as the engine reads it. */
export interface BatchRow {
  batch_id: number;
  tenant_id: string;
  sink: string;
  batch_key: string;
  kind: LedgerKind;
  run_id: number | null;
  outcome_type: string | null;
  period: string;
  currency: string;
  unit_price: string;
  tier: number | null;
  line_count: number;
  amount_minor: number;
  event_at: Date;
  first_entry_id: number;
  last_entry_id: number;
  state: 'pending' | 'delivered' | 'failed' | 'needs_attention' | 'skipped';
  action: string | null;
  payload: Record<string, unknown> | null;
  attempts: number;
  first_attempt_at: Date | null;
  last_attempt_at: Date | null;
  next_attempt_at: Date;
  delivered_at: Date | null;
  sink_ref: string | null;
  last_error: string | null;
}

export function toSinkBatch(r: BatchRow, reverses: ReversedBatch[]): SinkBatch {
  return {
    batchId: r.batch_id,
    tenant: r.tenant_id,
    sink: r.sink,
    key: r.batch_key,
    kind: r.kind,
    runId: r.run_id,
    outcomeType: r.outcome_type,
    period: r.period,
    currency: r.currency,
    unitPrice: r.unit_price,
    tier: r.tier,
    lineCount: r.line_count,
    amountMinor: r.amount_minor,
    eventAt: r.event_at,
    firstEntryId: r.first_entry_id,
    lastEntryId: r.last_entry_id,
    reverses,
  };
}

export interface ReversedRow extends ReversedBatch {
  state: BatchRow['state'] | 'unbatched';
  batchId: number | null;
}

/**
 * The charge batches a credit batch's lines reverse on the same sink, with how many of each
 * batch's lines credits batched so far (this one included) reverse: a meter event can only be
 * cancelled whole.
 */
export async function reversedBatches(db: Pool | PoolClient, credit: BatchRow): Promise<ReversedRow[]> {
  const { rows } = await db.query<{
    batch_id: number | null;
    batch_key: string | null;
    line_count: number | null;
    delivered_at: Date | null;
    action: string | null;
    state: ReversedRow['state'] | null;
    credited: number;
  }>(
    `with charges as (
       select distinct cd.batch_id
         from sink_deliveries d
         join ledger_entries cr on cr.entry_id = d.entry_id
         join sink_deliveries cd on cd.entry_id = cr.reverses_entry_id and cd.sink = d.sink
        where d.batch_id = $1
     )
     select b.batch_id, b.batch_key, b.line_count, b.delivered_at, b.action, b.state,
            (select count(*)::int
               from sink_deliveries chd
               join ledger_entries cr on cr.reverses_entry_id = chd.entry_id
               join sink_deliveries crd on crd.entry_id = cr.entry_id and crd.sink = chd.sink
              where chd.batch_id = b.batch_id and crd.batch_id is not null and crd.batch_id <= $1) as credited
       from charges c left join sink_batches b on b.batch_id = c.batch_id`,
    [credit.batch_id],
  );
  return rows.map((r) => ({
    batchId: r.batch_id,
    key: r.batch_key ?? '',
    lineCount: r.line_count ?? 0,
    creditedCount: r.credited,
    deliveredAt: r.delivered_at,
    action: r.action,
    state: r.state ?? 'unbatched',
  }));
}
