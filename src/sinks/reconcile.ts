import type { Pool } from '../db/pool';
import { loadContractHistory } from '../db/contracts';
import { tenantTimeZone } from '../domain/contract-history';
import { ReconError, oneLine } from '../domain/errors';
import { formatMoney } from '../domain/money';
import { periodBounds } from '../domain/periods';
import { sinkSecretEnv, type SinkConfig } from '../domain/sinks';
import type { LedgerKind } from '../ledger/rows';
import { batchKeySuffix, loadTenantSinks, type BatchRow } from './batches';
import type { AdapterFor } from './deliver';
import type { Holding } from './types';

/**
 * `recon sink reconcile`: our ledger against what a sink holds, for one period. Every batch we
 * delivered must be held with our quantity and amount, every key of ours the sink holds must be one
 * we delivered, and every line of the period not yet at the sink is a difference too: the proof is
 * "nothing owed, nothing extra, nothing different". The comparison is pure (compareSink); the rest
 * gathers its two sides.
 */

/** One of our batches as the comparison reads it. */
export interface OurBatch {
  batchId: number;
  key: string;
  kind: LedgerKind;
  state: BatchRow['state'];
  lineCount: number;
  amountMinor: number;
  currency: string;
  /** ISO time: the business time the sink files the batch under. */
  eventAt: string;
  action: string | null;
  /** For a meter-event cancel: the key of the charge batch whose event it cancelled. */
  cancels: string | null;
  lastError: string | null;
  /** What the batch's delivery rows add up to: it must be what the batch says it carries. */
  carriedLines: number;
  carriedAmountMinor: number;
}

/**
 * A holding that is one total over many batches (a Stripe meter's usage summary): batches whose
 * action is `adds` add their line count when their event time is in the range; a delivered batch
 * whose action is `cancels` takes out the batch it names.
 */
export interface AggregateRule {
  key: string;
  adds: string;
  cancels: string;
}

export const DIFFERENCE_KINDS = [
  /** We delivered it; the sink does not hold it. */
  'not_at_sink',
  /** The sink holds a key of ours that we have not recorded as delivered. */
  'held_not_recorded',
  /** The sink holds a key of ours that no batch of ours has. */
  'unknown_at_sink',
  'quantity_differs',
  'amount_differs',
  /** A total over many batches (a Stripe meter) differs from the sum of what we delivered. */
  'total_differs',
  /** Not yet at the sink: lines not yet batched, and batches pending, failed or set aside. */
  'owed',
  'pending',
  'failed',
  'needs_attention',
  /** Our own records disagree: a batch's delivery rows do not add up to the batch. */
  'batch_mismatch',
  /** The sink could not be read, so nothing it holds was checked. */
  'sink_unreadable',
] as const;
export type DifferenceKind = (typeof DIFFERENCE_KINDS)[number];

export interface Difference {
  sink: string;
  kind: DifferenceKind;
  /** The batch key (the idempotency value the sink knows), an aggregate's key, or '-'. */
  key: string;
  batchId: number | null;
  ours: string;
  theirs: string;
  /** Why a batch is not at the sink: its last error, when it has one. */
  detail: string | null;
}

export interface CompareInput {
  sink: string;
  ours: OurBatch[];
  /** Lines of the period owed to the sink and not yet in a batch, per currency. */
  owed: Array<{ currency: string; lines: number; amountMinor: number }>;
  /** What the sink holds; null when it has no read API (or could not be read). */
  holdings: Holding[] | null;
  /** The business-time range the holdings cover ([from, to), ISO). */
  range: { from: string; to: string };
  aggregate: AggregateRule | null;
  /** This sink's key suffix: a recon_ key without it belongs to another sink or tenant. */
  keySuffix: string;
}

const money = (b: { amountMinor: number; currency: string }) => formatMoney(b.amountMinor, b.currency);
const lines = (n: number) => `${n} ${n === 1 ? 'line' : 'lines'}`;
/** The usage quantity a sink holds for a batch: credits take usage back. */
const expectedQuantity = (b: OurBatch) => (b.kind === 'credit' ? -b.lineCount : b.lineCount);

function describeHolding(h: Holding): string {
  const parts = [
    h.quantity !== undefined ? `quantity ${h.quantity}` : '',
    h.amountMinor !== undefined ? `amount ${h.amountMinor} minor units` : '',
    h.ref ? `(${h.ref})` : '',
  ].filter(Boolean);
  return parts.length ? `held: ${parts.join(' ')}` : 'held';
}

/** Every difference between our records of one sink and what it holds. Pure. */
export function compareSink(input: CompareInput): Difference[] {
  const out: Difference[] = [];
  const diff = (
    kind: DifferenceKind,
    key: string,
    batchId: number | null,
    ours: string,
    theirs: string,
    detail: string | null = null,
  ) => out.push({ sink: input.sink, kind, key, batchId, ours, theirs, detail });

  const inAggregate = (b: OurBatch) =>
    input.aggregate !== null && (b.action === input.aggregate.adds || b.action === input.aggregate.cancels);
  const byKey = new Map<string, Holding>();
  for (const h of input.holdings ?? []) byKey.set(h.key, h);
  const ourKeys = new Map(input.ours.map((b) => [b.key, b]));

  for (const o of input.owed) {
    if (o.lines > 0) diff('owed', '-', null, `${lines(o.lines)} not yet batched, ${money(o)}`, 'not sent');
  }
  for (const b of input.ours) {
    if (b.carriedLines !== b.lineCount || b.carriedAmountMinor !== b.amountMinor)
      diff(
        'batch_mismatch',
        b.key,
        b.batchId,
        `batch says ${lines(b.lineCount)}, ${money(b)}`,
        `its delivery rows: ${lines(b.carriedLines)}, ${formatMoney(b.carriedAmountMinor, b.currency)}`,
      );
    if (b.state === 'pending' || b.state === 'failed' || b.state === 'needs_attention') {
      const h = byKey.get(b.key);
      const ours = `${b.state} ${b.kind} ${lines(b.lineCount)}, ${money(b)}`;
      if (h) diff('held_not_recorded', b.key, b.batchId, ours, describeHolding(h), b.lastError);
      else
        diff(
          b.state,
          b.key,
          b.batchId,
          ours,
          input.holdings === null
            ? 'not known'
            : inAggregate(b)
              ? `not known (inside ${input.aggregate!.key})`
              : 'absent',
          b.lastError,
        );
    }
  }
  if (input.holdings === null) return out;

  for (const b of input.ours) {
    if (b.state !== 'delivered' || inAggregate(b)) continue;
    const h = byKey.get(b.key);
    if (!h) {
      diff('not_at_sink', b.key, b.batchId, `delivered ${b.kind} ${lines(b.lineCount)}, ${money(b)}`, 'absent');
      continue;
    }
    if (h.quantity !== undefined && h.quantity !== expectedQuantity(b))
      diff('quantity_differs', b.key, b.batchId, String(expectedQuantity(b)), String(h.quantity));
    if (h.amountMinor !== undefined && h.amountMinor !== b.amountMinor)
      diff('amount_differs', b.key, b.batchId, money(b), formatMoney(h.amountMinor, b.currency));
  }

  for (const h of input.holdings) {
    if (!h.key.startsWith('recon_') || !h.key.endsWith(`_${input.keySuffix}`)) continue;
    const b = ourKeys.get(h.key);
    if (!b) diff('unknown_at_sink', h.key, null, 'no batch of ours has this key', describeHolding(h));
    else if (b.state === 'skipped')
      diff('held_not_recorded', h.key, b.batchId, `skipped ${b.kind}: not for this sink`, describeHolding(h));
  }

  if (input.aggregate) {
    const rule = input.aggregate;
    const from = Date.parse(input.range.from);
    const to = Date.parse(input.range.to);
    const cancelled = new Set(
      input.ours
        .filter((b) => b.state === 'delivered' && b.action === rule.cancels && b.cancels)
        .map((b) => b.cancels!),
    );
    const added = input.ours.filter((b) => {
      const at = Date.parse(b.eventAt);
      return b.state === 'delivered' && b.action === rule.adds && at >= from && at < to;
    });
    const kept = added.filter((b) => !cancelled.has(b.key));
    const expected = kept.reduce((s, b) => s + b.lineCount, 0);
    const h = byKey.get(rule.key);
    if (!h || h.quantity !== expected)
      diff(
        'total_differs',
        rule.key,
        null,
        `${expected} (${added.length} delivered events less ${added.length - kept.length} cancelled)`,
        h?.quantity === undefined ? 'absent' : String(h.quantity),
      );
  }
  return out;
}

/** The total a Stripe meter sink holds, and which of our calls add to it and take from it. */
export function aggregateRuleFor(config: SinkConfig): AggregateRule | null {
  if (config.kind === 'stripe' && config.mode === 'meter_events')
    return { key: `meter:${config.eventName}`, adds: 'meter_event', cancels: 'meter_event_cancel' };
  return null;
}

export interface SinkReconcileSide {
  sink: string;
  kind: SinkConfig['kind'];
  /** Whether what the sink holds was read and compared, or only our own records. */
  readApi: boolean;
  note: string | null;
  batches: number;
  holdings: number;
}

export interface SinkReconcileReport {
  tenant: string;
  period: string;
  timeZone: string;
  from: string;
  to: string;
  sinks: SinkReconcileSide[];
  differences: Difference[];
}

export interface ReconcileDeps {
  pool: Pool;
  adapterFor: AdapterFor;
  env: Record<string, string | undefined>;
  now: () => Date;
  timeoutMs?: number;
}

/** Our side of one sink: the batches of the period's lines (or filed in its range), and its unbatched lines. */
async function ourSide(
  pool: Pool,
  p: { tenant: string; sink: string; period: string; from: Date; to: Date },
): Promise<{ ours: OurBatch[]; owed: CompareInput['owed'] }> {
  const { rows } = await pool.query<OurBatch>(
    `with base as (
       select * from sink_batches
        where tenant_id = $1 and sink = $2 and (period = $3 or (event_at >= $4 and event_at < $5))
     ), scope as (
       select * from base
       union all
       -- A meter event of the range may be cancelled by a credit booked later: its cancel counts too.
       select b.* from sink_batches b
        where b.tenant_id = $1 and b.sink = $2 and b.action = 'meter_event_cancel'
          and b.payload -> 'params' ->> 'cancel[identifier]' in (select batch_key from base)
          and b.batch_id not in (select batch_id from base)
     ), carried as (
       select d.batch_id, count(*)::int as n, coalesce(sum(l.amount_minor), 0)::bigint as amount
         from sink_deliveries d join ledger_entries l on l.entry_id = d.entry_id
        where d.batch_id in (select batch_id from scope)
        group by d.batch_id
     )
     select s.batch_id as "batchId", s.batch_key as key, s.kind, s.state, s.line_count as "lineCount",
            s.amount_minor as "amountMinor", s.currency, to_json(s.event_at) #>> '{}' as "eventAt", s.action,
            -- Stripe's cancel request names the meter event it cancels (src/sinks/stripe.ts).
            case when s.action = 'meter_event_cancel' then s.payload -> 'params' ->> 'cancel[identifier]' end as cancels,
            s.last_error as "lastError", coalesce(c.n, 0) as "carriedLines", coalesce(c.amount, 0) as "carriedAmountMinor"
       from scope s left join carried c on c.batch_id = s.batch_id
      order by s.batch_id`,
    [p.tenant, p.sink, p.period, p.from, p.to],
  );
  const owed = await pool.query<{ currency: string; lines: number; amountMinor: number }>(
    `select l.currency, count(*)::int as lines, coalesce(sum(l.amount_minor), 0)::bigint as "amountMinor"
       from sink_deliveries d join ledger_entries l on l.entry_id = d.entry_id
      where d.tenant_id = $1 and d.sink = $2 and d.batch_id is null and l.period = $3
      group by l.currency order by l.currency`,
    [p.tenant, p.sink, p.period],
  );
  return {
    ours: rows.map((r) => ({ ...r, eventAt: new Date(r.eventAt).toISOString() })),
    owed: owed.rows,
  };
}

/**
 * Reads both sides of every sink of the tenant (or of `only`) and compares them. A sink that cannot
 * be read (no read API, no secret, its read refused) is compared on our own records and says why.
 */
export async function reconcileSinks(
  deps: ReconcileDeps,
  p: { tenant: string; period: string; only?: string },
): Promise<SinkReconcileReport> {
  const timeZone = tenantTimeZone(await loadContractHistory(deps.pool, p.tenant));
  const { start, end } = periodBounds(p.period, timeZone);
  const all = await loadTenantSinks(deps.pool, p.tenant);
  const sinks = p.only ? all.filter((s) => s.name === p.only) : all;
  if (p.only && sinks.length === 0)
    throw unknownSink(
      p.tenant,
      p.only,
      all.map((s) => s.name),
    );
  const report: SinkReconcileReport = {
    tenant: p.tenant,
    period: p.period,
    timeZone,
    from: start.toISOString(),
    to: end.toISOString(),
    sinks: [],
    differences: [],
  };
  for (const sink of sinks) {
    const { ours, owed } = await ourSide(deps.pool, {
      tenant: p.tenant,
      sink: sink.name,
      period: p.period,
      from: start,
      to: end,
    });
    const adapter = deps.adapterFor(sink.config);
    let holdings: Holding[] | null = null;
    let note: string | null = null;
    let unreadable: string | null = null;
    if (!adapter.holdings) {
      note = `${sink.config.kind} has no read API: only our own records were compared`;
    } else {
      const envName = sinkSecretEnv(sink.config);
      const secret = deps.env[envName];
      if (!secret) {
        unreadable = `${envName} is not set in the worker's environment`;
      } else {
        try {
          holdings = await adapter.holdings(
            {
              tenant: p.tenant,
              from: start,
              to: end,
              keys: ours.filter((b) => b.state !== 'skipped').map((b) => b.key),
            },
            sink.config,
            { now: deps.now(), secret, timeoutMs: deps.timeoutMs ?? 15_000 },
          );
        } catch (err) {
          unreadable = oneLine(err instanceof Error ? err.message : String(err));
        }
      }
    }
    const differences = compareSink({
      sink: sink.name,
      ours,
      owed,
      holdings,
      range: { from: report.from, to: report.to },
      aggregate: aggregateRuleFor(sink.config),
      keySuffix: batchKeySuffix(p.tenant, sink.name),
    });
    if (unreadable) {
      note = `could not read ${sink.config.kind}: only our own records were compared`;
      differences.push({
        sink: sink.name,
        kind: 'sink_unreadable',
        key: '-',
        batchId: null,
        ours: '-',
        theirs: 'not read',
        detail: unreadable,
      });
    }
    report.differences.push(...differences);
    report.sinks.push({
      sink: sink.name,
      kind: sink.config.kind,
      readApi: holdings !== null,
      note,
      batches: ours.length,
      holdings: holdings?.length ?? 0,
    });
  }
  return report;
}

export function unknownSink(tenant: string, sink: string, known: string[]): ReconError {
  return new ReconError(
    'unknown_sink',
    `tenant ${tenant} has no sink "${sink}"${known.length ? `; its contract names ${known.join(', ')}` : '; its contract names no sink'}`,
  );
}
