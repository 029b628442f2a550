import type { Pool, PoolClient } from '../db/pool';
import { inTransaction } from '../db/pool';
import { pricingOf, type ContractVersion } from '../domain/contract';
import { contractHistory, versionForPricing, versionForRun, type ContractHistory } from '../domain/contract-history';
import { billingPeriodOf } from '../domain/periods';
import type { PeriodUsage, PricedLine, Pricing } from '../domain/pricing/schema';
import { priceNextOutcomes } from '../domain/pricing/tiers';
import { recordAlerts } from './alerts';
import { loadPriceIndex, multiplierAt, type IndexPoint } from './price-index';
import { chargeKeySql, type LedgerLine } from '../ledger';
import { openPeriodFor } from './period-close';

export interface PostResult {
  posted: number;
  amountMinor: number;
  lastOutcomeId: number;
  done: boolean;
}

/** A charge the chunk's statement inserted (not one an earlier attempt already wrote). */
type ChargedLine = Pick<LedgerLine, 'entry_id' | 'amount_minor'> & { outcome_id: number };

interface ConfirmedRow {
  outcome_id: number;
  outcome_type: string;
  subject_ref: string;
  primary_claim_id: string;
  success_at: Date;
  evidence_version_id: number | null;
  source: string | null;
  external_id: string | null;
  effective_at: Date | null;
}

/** What the period already holds for each outcome type (credits do not give capacity back): one row per type, kept by a trigger on the ledger. */
async function usageByType(db: PoolClient, tenant: string, period: string): Promise<Map<string, PeriodUsage>> {
  const { rows } = await db.query<{ outcome_type: string; charges: number; usage_minor: number; capped: number }>(
    'select outcome_type, charges, usage_minor, capped from period_usage where tenant_id = $1 and period = $2',
    [tenant, period],
  );
  return new Map(
    rows.map((r) => [r.outcome_type, { count: r.charges, usageMinor: Number(r.usage_minor), capped: r.capped }]),
  );
}

/**
 * Prices the rows in their order, threading each type's usage through. A run of consecutive rows
 * under the same terms (type, contract version, index multiplier) is priced in one call: pricing n
 * outcomes at once gives the same lines as pricing them one by one (the pricing property tests hold
 * it to that), without resolving the terms again for every outcome.
 */
function priceInOrder(
  rows: ConfirmedRow[],
  history: ContractHistory,
  index: IndexPoint[],
  usage: Map<string, PeriodUsage>,
) {
  const pricings = new Map<ContractVersion, Map<string, Pricing>>();
  const termsOf = (r: ConfirmedRow) => {
    const version = versionForPricing(history, r.outcome_type, r.success_at);
    let byType = pricings.get(version);
    if (!byType) pricings.set(version, (byType = new Map<string, Pricing>()));
    let pricing = byType.get(r.outcome_type);
    if (!pricing) byType.set(r.outcome_type, (pricing = pricingOf(version.body.outcomeTypes[r.outcome_type])));
    const multiplier = pricing.indexSeries ? multiplierAt(index, pricing.indexSeries, r.success_at) : undefined;
    return { version, pricing, multiplier };
  };
  const out: Array<{ r: ConfirmedRow; line: PricedLine; version: ContractVersion; currency: string }> = [];
  let i = 0;
  while (i < rows.length) {
    const first = rows[i];
    const { version, pricing, multiplier } = termsOf(first);
    let j = i + 1;
    while (j < rows.length && rows[j].outcome_type === first.outcome_type) {
      const next = termsOf(rows[j]);
      if (next.version !== version || next.multiplier !== multiplier) break;
      j++;
    }
    const currency = version.body.currency;
    const before = usage.get(first.outcome_type) ?? { count: 0, usageMinor: 0, capped: 0 };
    const { lines, after } = priceNextOutcomes(pricing, currency, before, j - i, multiplier);
    usage.set(first.outcome_type, after);
    for (let k = 0; k < lines.length; k++) out.push({ r: rows[i + k], line: lines[k], version, currency });
    i = j;
  }
  return out;
}

/**
 * Posts charges for the next chunk of outcomes this run confirmed and marks them billed, in one
 * transaction. Outcomes are taken in (success_at, outcome id) order within the run, so tiers and
 * caps fall on the same outcomes however often the run is retried; `charge:<outcome>` makes a
 * repeat post nothing, whatever the code does.
 */
export async function postChunk(
  pool: Pool,
  args: { tenant: string; runId: number; asOf: Date; versions: ContractVersion[]; timeZone: string; limit: number },
): Promise<PostResult> {
  const index = await loadPriceIndex(pool, args.tenant);
  const history = contractHistory(args.tenant, args.versions);
  const current = versionForRun(history, args.asOf);

  const picked = await inTransaction(pool, async (db) => {
    // Chosen and locked inside the transaction: a dispute opened meanwhile (it locks the same
    // row) either lands first and keeps the outcome out, or waits until it is billed.
    const { rows } = await db.query<ConfirmedRow>(
      `select o.outcome_id, o.outcome_type, o.subject_ref, o.primary_claim_id, o.success_at, o.evidence_version_id,
              r.source, r.external_id, v.effective_at
         from outcomes o
         left join record_versions v on v.version_id = o.evidence_version_id
         left join records r on r.record_id = o.record_id
        where o.tenant_id = $1 and o.state = 'confirmed' and not o.on_hold and o.confirmed_as_of = $2
        order by o.success_at, o.outcome_id limit $3
        for update of o`,
      [args.tenant, args.asOf, args.limit],
    );
    if (rows.length === 0) return { rows, inserted: [] as ChargedLine[] };
    const period = await openPeriodFor(db, args.tenant, billingPeriodOf(args.asOf, args.timeZone));
    // One poster per tenant and period at a time: positions in the period must not interleave.
    await db.query('select pg_advisory_xact_lock(hashtext($1))', [`pricing:${args.tenant}:${period}`]);
    const usage = await usageByType(db, args.tenant, period);
    const startUsage = new Map([...usage].map(([k, v]) => [k, { ...v }]));
    const lines = priceInOrder(rows, history, index, usage);
    // The three writes in one statement: one round trip, and the chunk's lines are read once. The
    // update marks every picked outcome billed (a charge already posted by an earlier attempt
    // included); an event is written only for a charge this statement inserted.
    const { rows: inserted } = await db.query<ChargedLine>(
      `with l as (
         select outcome_id, outcome_type, subject_ref, unit_price, amount_minor, contract_version, primary_claim_id, source, external_id,
                version_id, effective_at, success_at, basis, tier, position, currency
           from unnest($6::bigint[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::int[], $12::text[],
                              $13::text[], $14::text[], $15::bigint[], $16::text[],
                              $17::timestamptz[], $18::text[], $19::int[], $20::int[], $21::text[])
              as l(outcome_id, outcome_type, subject_ref, unit_price, amount_minor, contract_version, primary_claim_id,
                   source, external_id, version_id, effective_at,
                   success_at, basis, tier, position, currency)
       ), charged as (
         insert into ledger_entries (tenant_id, idempotency_key, kind, outcome_id, outcome_type, subject_ref, period, currency,
                                     unit_price, amount_minor, contract_version, run_id, as_of, primary_claim_id, evidence, success_at,
                                     pricing_basis, tier, period_position, corrects_period)
         select $1, ${chargeKeySql('l.outcome_id')}, 'charge', l.outcome_id, l.outcome_type, l.subject_ref, $2, l.currency, l.unit_price,
                l.amount_minor, l.contract_version, $3, $4, l.primary_claim_id,
                jsonb_build_object('source', l.source, 'externalId', l.external_id, 'versionId', l.version_id, 'effectiveAt', l.effective_at),
                l.success_at, l.basis, l.tier, l.position, nullif($5, $2)
           from l
         on conflict (idempotency_key) do nothing
         returning entry_id, outcome_id, amount_minor, pricing_basis
       ), billed as (
         update outcomes set state = 'billed', updated_at = now()
          where outcome_id = any($6::bigint[]) and state = 'confirmed'
       ), events as (
         insert into outcome_events (outcome_id, run_id, as_of, kind, from_state, to_state, reason, details)
         select c.outcome_id, $3, $4, 'billed', 'confirmed', 'billed',
                'charged ' || c.amount_minor || ' minor units in ' || $2 || ' (' || c.pricing_basis || ')',
                jsonb_build_object('entryId', c.entry_id, 'period', $2::text, 'basis', c.pricing_basis)
           from charged c
         on conflict do nothing
       )
       select entry_id, outcome_id, amount_minor from charged`,
      [
        args.tenant,
        period,
        args.runId,
        args.asOf,
        billingPeriodOf(args.asOf, args.timeZone),
        lines.map((l) => l.r.outcome_id),
        lines.map((l) => l.r.outcome_type),
        lines.map((l) => l.r.subject_ref),
        lines.map((l) => l.line.unitPrice),
        lines.map((l) => l.line.amountMinor),
        lines.map((l) => l.version.version),
        lines.map((l) => l.r.primary_claim_id),
        lines.map((l) => l.r.source),
        lines.map((l) => l.r.external_id),
        lines.map((l) => l.r.evidence_version_id),
        lines.map((l) => l.r.effective_at?.toISOString() ?? null),
        lines.map((l) => l.r.success_at),
        lines.map((l) => l.line.basis),
        lines.map((l) => l.line.tier),
        lines.map((l) => l.line.position),
        lines.map((l) => l.currency),
      ],
    );
    await recordAlerts(db, {
      tenant: args.tenant,
      runId: args.runId,
      period,
      at: args.asOf,
      current,
      before: startUsage,
      after: usage,
    });
    return { rows, inserted };
  });
  const { rows, inserted } = picked;
  if (rows.length === 0) return { posted: 0, amountMinor: 0, lastOutcomeId: 0, done: true };
  return {
    posted: inserted.length,
    amountMinor: inserted.reduce((s, p) => s + p.amount_minor, 0),
    lastOutcomeId: rows[rows.length - 1].outcome_id,
    done: rows.length < args.limit,
  };
}

export type { PricedLine };
