import type { Pool } from '../db/pool';
import { inTransaction } from '../db/pool';
import { pricingOf, type ContractVersion } from '../domain/contract';
import { priceToMinorUnits } from '../domain/money';
import { billingPeriodOf } from '../domain/periods';
import { baseFeeMinor } from '../domain/pricing/tiers';
import { openPeriodFor } from './period-close';

export interface PeriodLinesResult {
  baseFees: number;
  trueUpMinor: number | null;
}

/**
 * The lines that belong to a period rather than to an outcome: each outcome type's base fee, once
 * per period, and the commitment's true-up once its term has ended. Keys make repeats nothing.
 */
export async function postPeriodLines(pool: Pool, args: { tenant: string; runId: number; asOf: Date; contract: ContractVersion }): Promise<PeriodLinesResult> {
  const c = args.contract.body;
  const own = billingPeriodOf(args.asOf, c.timezone);
  return inTransaction(pool, async (db) => {
    const period = await openPeriodFor(db, args.tenant, own);
    let baseFees = 0;
    for (const [type, terms] of Object.entries(c.outcomeTypes)) {
      const pricing = pricingOf(terms);
      const fee = baseFeeMinor(pricing, c.currency);
      if (fee <= 0) continue;
      const { rowCount } = await db.query(
        `insert into ledger_entries (tenant_id, idempotency_key, kind, outcome_type, period, currency, unit_price, amount_minor,
                                     contract_version, run_id, as_of, evidence, pricing_basis, reason, corrects_period)
         values ($1, $2, 'base_fee', $3, $4, $5, $6, $7, $8, $9, $10, '{}', 'base_fee', $11, nullif($12, $4))
         on conflict (idempotency_key) do nothing`,
        [args.tenant, `base:${args.tenant}:${type}:${own}`, type, period, c.currency, pricing.baseFee, fee, args.contract.version, args.runId, args.asOf,
          `base fee for ${type} in ${own}${pricing.included ? ` (includes ${pricing.included} outcomes)` : ''}`, own],
      );
      baseFees += rowCount ?? 0;
    }
    let trueUpMinor: number | null = null;
    if (c.commitment && args.asOf.getTime() >= Date.parse(c.commitment.termEnd)) {
      const commitment = priceToMinorUnits(c.commitment.amount, c.currency);
      const { rows: [d] } = await db.query<{ drawn: number }>(
        `select coalesce(sum(amount_minor), 0)::bigint as drawn from ledger_entries
          where tenant_id = $1 and kind in ('charge', 'credit') and as_of >= $2 and as_of < $3 and currency = $4`,
        [args.tenant, c.commitment.termStart, c.commitment.termEnd, c.currency],
      );
      const shortfall = Math.max(0, commitment - Number(d.drawn));
      const { rowCount } = await db.query(
        `insert into ledger_entries (tenant_id, idempotency_key, kind, period, currency, unit_price, amount_minor, contract_version,
                                     run_id, as_of, evidence, pricing_basis, reason)
         values ($1, $2, 'true_up', $3, $4, $5, $6, $7, $8, $9, $10, 'true_up', $11)
         on conflict (idempotency_key) do nothing`,
        [args.tenant, `trueup:${args.tenant}:${c.commitment.termStart}`, period, c.currency, c.commitment.amount, shortfall, args.contract.version, args.runId, args.asOf,
          JSON.stringify({ commitmentMinor: commitment, drawnMinor: Number(d.drawn), termStart: c.commitment.termStart, termEnd: c.commitment.termEnd }),
          `commitment true-up for ${c.commitment.termStart} – ${c.commitment.termEnd}: committed ${commitment}, used ${Number(d.drawn)}`],
      );
      if (rowCount) trueUpMinor = shortfall;
    }
    return { baseFees, trueUpMinor };
  });
}
