import type { Pool } from '../db/pool';
import { inTransaction } from '../db/pool';
import { pricingOf, type ContractVersion } from '../domain/contract';
import { priceToMinorUnits } from '../domain/money';
import { billingPeriodOf } from '../domain/periods';
import { baseFeeMinor } from '../domain/pricing/tiers';
import { commitmentDrawnMinor, insertBaseFee, insertTrueUp } from '../ledger';
import { openPeriodFor } from './period-close';

export interface PeriodLinesResult {
  baseFees: number;
  trueUpMinor: number | null;
}

/**
 * The lines that belong to a period rather than to an outcome: each outcome type's base fee, once
 * per period, and the commitment's true-up once its term has ended. Keys make repeats nothing.
 */
export async function postPeriodLines(
  pool: Pool,
  args: { tenant: string; runId: number; asOf: Date; contract: ContractVersion },
): Promise<PeriodLinesResult> {
  const c = args.contract.body;
  const own = billingPeriodOf(args.asOf, c.timezone);
  return inTransaction(pool, async (db) => {
    const period = await openPeriodFor(db, args.tenant, own);
    let baseFees = 0;
    for (const [type, terms] of Object.entries(c.outcomeTypes)) {
      const pricing = pricingOf(terms);
      const fee = baseFeeMinor(pricing, c.currency);
      if (fee <= 0 || pricing.baseFee === undefined) continue;
      const written = await insertBaseFee(db, {
        tenant: args.tenant,
        outcomeType: type,
        ownPeriod: own,
        period,
        currency: c.currency,
        unitPrice: pricing.baseFee,
        amountMinor: fee,
        contractVersion: args.contract.version,
        runId: args.runId,
        asOf: args.asOf,
        reason: `base fee for ${type} in ${own}${pricing.included ? ` (includes ${pricing.included} outcomes)` : ''}`,
      });
      if (written) baseFees++;
    }
    let trueUpMinor: number | null = null;
    if (c.commitment && args.asOf.getTime() >= Date.parse(c.commitment.termEnd)) {
      const commitment = priceToMinorUnits(c.commitment.amount, c.currency);
      const drawn = await commitmentDrawnMinor(db, {
        tenant: args.tenant,
        currency: c.currency,
        from: c.commitment.termStart,
        until: c.commitment.termEnd,
      });
      const shortfall = Math.max(0, commitment - drawn);
      const written = await insertTrueUp(db, {
        tenant: args.tenant,
        period,
        currency: c.currency,
        unitPrice: c.commitment.amount,
        amountMinor: shortfall,
        contractVersion: args.contract.version,
        runId: args.runId,
        asOf: args.asOf,
        termStart: c.commitment.termStart,
        evidence: {
          commitmentMinor: commitment,
          drawnMinor: drawn,
          termStart: c.commitment.termStart,
          termEnd: c.commitment.termEnd,
        },
        reason: `commitment true-up for ${c.commitment.termStart} – ${c.commitment.termEnd}: committed ${commitment}, used ${drawn}`,
      });
      if (written) trueUpMinor = shortfall;
    }
    return { baseFees, trueUpMinor };
  });
}
