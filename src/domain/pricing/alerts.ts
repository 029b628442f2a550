import { decimalOfNumber } from '../decimal';
import { ReconError } from '../errors';
import { checkUsage, type PeriodUsage, type Pricing } from './schema';
import { resolveCap } from './tiers';

/**
 * Usage alerts: which thresholds (fractions of the cap or, without a cap, of the commitment) a
 * step in a period's usage crosses, and what is recorded for each. The recording itself, in the
 * posting transaction, is src/reconcile/alerts.ts.
 */

/** A threshold as an exact fraction num/den, from the number's shortest decimal spelling. */
function asFraction(f: number): { num: bigint; den: bigint } {
  const decimal = decimalOfNumber(f);
  if (!decimal) throw new ReconError('invalid_alert', `invalid alert threshold ${f}`, { threshold: f });
  return { num: decimal.units, den: 10n ** BigInt(decimal.scale) };
}

/**
 * Whether `value` has reached `f` of the measure, exactly: value / measure >= f. Nothing else
 * counts: an outcome capped because its full line would not fit does not make an amount cap
 * "reached" (usage may stop short of the cap, e.g. 40.00 of 45.00 at 10.00 a line), and the
 * alert says what the usage is, never what the next line would have made it.
 */
function reached(f: number, value: number, measure: number): boolean {
  if (measure <= 0) return false;
  const { num, den } = asFraction(f);
  return BigInt(value) * den >= num * BigInt(measure);
}

/**
 * The alert thresholds crossed going from `before` to `after` (reached after, not before),
 * ascending. Measured against the cap (amount cap: usageMinor / cap; count cap: count / cap) or,
 * without a cap, against `commitmentMinor` (usageMinor / commitment). [] when the pricing has
 * no alerts, or neither a cap nor a positive commitment exists. A threshold reached once is
 * never reported again as long as usage only grows, which is what "each recorded once per
 * period" needs; the caller still records fired alerts idempotently.
 */
export function alertsCrossed(
  pricing: Pricing,
  currency: string,
  before: PeriodUsage,
  after: PeriodUsage,
  commitmentMinor?: number,
): number[] {
  checkUsage(before, 'before');
  checkUsage(after, 'after');
  const thresholds = [...(pricing.alerts ?? [])].sort((a, b) => a - b);
  if (thresholds.length === 0) return [];
  const cap = resolveCap(pricing, currency);
  let test: (f: number, u: PeriodUsage) => boolean;
  if (cap?.kind === 'amount') {
    test = (f, u) => reached(f, u.usageMinor, cap.minor);
  } else if (cap?.kind === 'count') {
    test = (f, u) => reached(f, u.count, cap.count);
  } else if (commitmentMinor !== undefined) {
    if (!Number.isSafeInteger(commitmentMinor) || commitmentMinor < 0) {
      throw new ReconError(
        'invalid_amount',
        `commitmentMinor must be a non-negative whole number of minor units, got ${commitmentMinor}`,
        { commitmentMinor },
      );
    }
    if (commitmentMinor === 0) return [];
    test = (f, u) => reached(f, u.usageMinor, commitmentMinor);
  } else {
    return [];
  }
  return thresholds.filter((f) => test(f, after) && !test(f, before));
}

/** One crossed threshold as the alerts table records it. */
export interface AlertToRecord {
  threshold: number;
  /** What the threshold is a fraction of. */
  basis: 'cap' | 'commitment';
  /** The usage that crossed it: the outcome count under a count cap, minor units otherwise. */
  usageMinor: number;
  /** The cap (a count under a count cap, minor units under an amount cap) or the commitment. */
  limitMinor: number;
}

/** alertsCrossed, with the measure each crossed threshold was taken against. */
export function alertsToRecord(
  pricing: Pricing,
  currency: string,
  before: PeriodUsage,
  after: PeriodUsage,
  commitmentMinor?: number,
): AlertToRecord[] {
  const crossed = alertsCrossed(pricing, currency, before, after, commitmentMinor);
  const cap = resolveCap(pricing, currency);
  return crossed.map((threshold) => ({
    threshold,
    basis: cap ? 'cap' : 'commitment',
    usageMinor: cap?.kind === 'count' ? after.count : after.usageMinor,
    limitMinor: cap?.kind === 'amount' ? cap.minor : cap?.kind === 'count' ? cap.count : (commitmentMinor ?? 0),
  }));
}
