import { ReconError } from '../errors';
import { decimalPlaces, isNonNegativeDecimal, multiplyDecimal, normaliseDecimal } from '../decimal';
import { MAX_PRICE_DECIMALS, minorUnitsOf, priceToMinorUnits } from '../money';
import { checkUsage, type PeriodUsage, type PricedLine, type Pricing } from './schema';

/**
 * The pricing engine: pure functions from a contract's pricing block and what a billing period
 * already holds to priced lines (tiers, included outcomes, caps, the base fee). No I/O, no clock,
 * no floating point in money: every decimal goes through ../decimal.ts.
 *
 * Model (per outcome type, per billing period):
 *
 *   position 1 .. included            basis 'included', amount 0 (covered by the base fee)
 *   position included+1 ..            basis 'tier', graduated: the overage position
 *                                     (position - included) picks the tier
 *   past the cap                      basis 'capped', amount 0 (still confirmed and recorded)
 *
 * - Every line is one outcome. Its amount is priceToMinorUnits(effective unit price): the one
 *   rounding rule of money.ts (half away from zero), applied once per line, never to sums.
 * - The effective unit price is the tier price times the price index multiplier, computed
 *   exactly in decimal (BigInt) and only rounded when converted to minor units.
 * - A count cap counts every outcome (included ones too). An amount cap bounds the sum of the
 *   usage lines only: the base fee is NOT part of it (it is a separate line, posted once per
 *   period whatever the usage). Included outcomes are zero lines, so they never use an amount
 *   cap. There are no partial lines: an outcome whose full line would take the period's usage
 *   above the cap is capped, and so is every later outcome of the period (even one whose
 *   cheaper line would still fit), so the cap is never exceeded and capping is monotonic.
 * - Everything depends only on (pricing, currency, multiplier, what the period holds, count),
 *   so pricing a run of outcomes in one call or in consecutive chunks gives identical lines.
 *   The period's state (PeriodUsage) is shared by contract versions: after a mid-period price
 *   change the new version continues at the next position, with the usage and capped count
 *   so far. Under an amount cap "capped > 0" keeps the period capped (a raised cap does not
 *   reopen it); a count cap is positional (a raised count cap admits positions up to it).
 */

// ---------------------------------------------------------------------------------------------
// Resolving a pricing block for one currency and multiplier
// ---------------------------------------------------------------------------------------------

export type Cap = { kind: 'amount'; minor: number } | { kind: 'count'; count: number } | null;

interface ResolvedTier {
  /** Last overage position of the tier, Infinity for the last tier. */
  end: number;
  unitPrice: string;
  amountMinor: number;
}

export interface Resolved {
  included: number;
  tiers: ResolvedTier[];
  cap: Cap;
}

export function resolveCap(pricing: Pricing, currency: string): Cap {
  const cap = pricing.cap as { amount?: string; count?: number } | undefined;
  if (!cap) return null;
  // The same rule as every amount (money.ts): a cap written with more decimals than the
  // currency has is rounded half away from zero, like the callers that show the limit do.
  if (cap.amount !== undefined) return { kind: 'amount', minor: priceToMinorUnits(cap.amount, currency) };
  if (cap.count !== undefined) return { kind: 'count', count: cap.count };
  return null;
}

export function resolve(pricing: Pricing, currency: string, multiplier: string | undefined): Resolved {
  minorUnitsOf(currency); // unknown_currency, even when nothing gets priced
  if (multiplier !== undefined) {
    if (!pricing.indexSeries) {
      throw new ReconError(
        'unexpected_multiplier',
        'a price index multiplier was given but the pricing names no indexSeries',
        { multiplier },
      );
    }
    if (!isNonNegativeDecimal(multiplier)) {
      throw new ReconError(
        'invalid_multiplier',
        `invalid price index multiplier "${String(multiplier)}" (expected a non-negative decimal such as "1.10")`,
        { multiplier },
      );
    }
  }
  const tiers = pricing.tiers.map((tier, i): ResolvedTier => {
    const unitPrice =
      multiplier === undefined ? normaliseDecimal(tier.unitPrice) : multiplyDecimal(tier.unitPrice, multiplier);
    if (decimalPlaces(unitPrice) > MAX_PRICE_DECIMALS) {
      throw new ReconError(
        'price_too_precise',
        `tier ${i + 1}: ${tier.unitPrice} × ${multiplier} = ${unitPrice} has more than ${MAX_PRICE_DECIMALS} decimals; use a multiplier with fewer decimals`,
        { tier: i + 1, unitPrice: tier.unitPrice, multiplier, effective: unitPrice },
      );
    }
    return { end: tier.upTo ?? Infinity, unitPrice, amountMinor: priceToMinorUnits(unitPrice, currency) };
  });
  return { included: pricing.included ?? 0, tiers, cap: resolveCap(pricing, currency) };
}

// ---------------------------------------------------------------------------------------------
// Pricing in runs (runs of identical lines), so that forecasts need not build one object per outcome
// ---------------------------------------------------------------------------------------------

export interface Run {
  from: number; // first position
  n: number;
  basis: PricedLine['basis'];
  tier: number | null;
  unitPrice: string;
  amountMinor: number;
}

function checkCount(count: number, name: string): void {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new ReconError('invalid_count', `${name} must be a non-negative whole number, got ${String(count)}`, {
      [name]: count,
    });
  }
}

export function safeAdd(a: number, b: number): number {
  const sum = a + b;
  if (!Number.isSafeInteger(sum)) {
    throw new ReconError('amount_too_large', 'the period usage exceeds the largest supported amount', { a, b });
  }
  return sum;
}

/** floor(a / b) for non-negative safe integers a and positive b, exactly. */
function floorDiv(a: number, b: number): number {
  return Number(BigInt(a) / BigInt(b));
}

export function priceRuns(p: Resolved, before: PeriodUsage, count: number): { runs: Run[]; after: PeriodUsage } {
  const runs: Run[] = [];
  let position = before.count + 1;
  let remaining = count;
  let usage = before.usageMinor;
  let capped = before.capped;
  // Under an amount cap, once anything is capped, everything later in the period is.
  let amountCapHit = p.cap?.kind === 'amount' && before.capped > 0;
  const push = (run: Run) => {
    runs.push(run);
    position += run.n;
    remaining -= run.n;
  };
  const capRest = () => {
    capped += remaining;
    push({ from: position, n: remaining, basis: 'capped', tier: null, unitPrice: '0', amountMinor: 0 });
  };

  while (remaining > 0) {
    if (amountCapHit || (p.cap?.kind === 'count' && position > p.cap.count)) {
      capRest();
      break;
    }
    let limit = remaining;
    if (p.cap?.kind === 'count') limit = Math.min(limit, p.cap.count - position + 1);

    if (position <= p.included) {
      const n = Math.min(limit, p.included - position + 1);
      push({ from: position, n, basis: 'included', tier: null, unitPrice: '0', amountMinor: 0 });
      continue;
    }

    const overage = position - p.included;
    const index = p.tiers.findIndex((t) => overage <= t.end);
    const tier = p.tiers[index];
    let n = Math.min(limit, tier.end - overage + 1);
    if (p.cap?.kind === 'amount' && tier.amountMinor > 0) {
      const room = p.cap.minor - usage;
      const fit = room > 0 ? floorDiv(room, tier.amountMinor) : 0;
      if (fit < n) {
        n = fit;
        amountCapHit = true;
      }
    }
    if (n > 0) {
      usage = safeAdd(usage, n * tier.amountMinor);
      push({
        from: position,
        n,
        basis: 'tier',
        tier: index + 1,
        unitPrice: tier.unitPrice,
        amountMinor: tier.amountMinor,
      });
    }
  }
  return { runs, after: { count: before.count + count, usageMinor: usage, capped } };
}

/**
 * Prices the next `count` outcomes of a period, in order, given what the period already holds.
 * Pass the price index multiplier (a decimal such as "1.10") when the pricing names an
 * indexSeries; without one the tier prices apply as written. A multiplier for pricing without
 * an indexSeries is refused (unexpected_multiplier): the contract did not ask for indexing.
 */
export function priceNextOutcomes(
  pricing: Pricing,
  currency: string,
  before: PeriodUsage,
  count: number,
  multiplier?: string,
): { lines: PricedLine[]; after: PeriodUsage } {
  checkUsage(before, 'before');
  checkCount(count, 'count');
  const { runs, after } = priceRuns(resolve(pricing, currency, multiplier), before, count);
  const lines: PricedLine[] = [];
  for (const run of runs) {
    for (let k = 0; k < run.n; k++) {
      lines.push({
        position: run.from + k,
        basis: run.basis,
        tier: run.tier,
        unitPrice: run.unitPrice,
        amountMinor: run.amountMinor,
      });
    }
  }
  return { lines, after };
}

/** The base fee in minor units (money.ts's rounding rule; never scaled by the index), 0 without one. */
export function baseFeeMinor(pricing: Pricing, currency: string): number {
  minorUnitsOf(currency);
  return pricing.baseFee === undefined ? 0 : priceToMinorUnits(pricing.baseFee, currency);
}
