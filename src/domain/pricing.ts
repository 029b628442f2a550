import { z } from 'zod';
import { ReconError } from './errors';
import { DecimalPriceSchema, minorUnitsOf, priceToMinorUnits } from './money';

/**
 * The pricing engine: pure functions from a contract's pricing block and what a billing period
 * already holds to priced lines. No I/O, no clock, no floating point in money.
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

const INDEX_SERIES_NAME = /^[a-z][a-z0-9_-]{0,62}$/;

const TierSchema = z
  .object({
    /** Cumulative OVERAGE count at which this tier ends (inclusive). Omitted on the last tier only. */
    upTo: z.number().int('upTo must be a whole number').positive('upTo must be a positive whole number').optional(),
    /** Price per outcome in the tier, decimal major units, before the index multiplier. */
    unitPrice: DecimalPriceSchema,
  })
  .strict();

const CapSchema = z
  .object({
    /** Hard cap on the period's usage lines in major units; the base fee does not count. */
    amount: DecimalPriceSchema.optional(),
    /** Hard cap on the number of outcomes charged in the period (included outcomes count). */
    count: z.number().int('cap.count must be a whole number').min(0, 'cap.count must not be negative').optional(),
  })
  .strict()
  .superRefine((cap, ctx) => {
    const written = (cap.amount !== undefined ? 1 : 0) + (cap.count !== undefined ? 1 : 0);
    if (written !== 1) {
      ctx.addIssue({ code: 'custom', path: [], message: 'a cap needs exactly one of "amount" or "count"' });
    }
  })
  .transform((cap): { amount: string } | { count: number } =>
    cap.amount !== undefined ? { amount: cap.amount } : { count: cap.count as number },
  );

export const PricingSchema = z
  .object({
    /** Fee per billing period in decimal major units, posted once per period as its own line. */
    baseFee: DecimalPriceSchema.optional(),
    /** Outcomes per period covered by the base fee: charged at zero, but counted. */
    included: z.number().int('included must be a whole number').min(0, 'included must not be negative').optional(),
    /** Graduated tiers for the overage; a single tier without upTo is a flat price. */
    tiers: z.array(TierSchema).min(1, 'at least one tier is required (a single { "unitPrice": ... } is a flat price)'),
    /** Hard cap per period, by amount (usage lines only, not the base fee) or by count. */
    cap: CapSchema.optional(),
    /** Alert thresholds: fractions of the cap or, without a cap, of the commitment. */
    alerts: z.array(z.number().gt(0, 'an alert threshold must be above 0').lte(1, 'an alert threshold must be at most 1 (100%)')).optional(),
    /** Name of a price index series whose multiplier scales the tier prices (not the base fee, not the cap). */
    indexSeries: z.string().regex(INDEX_SERIES_NAME, 'expected a lowercase series name (letters, digits, _ and -)').optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const last = p.tiers.length - 1;
    let previous: number | undefined;
    p.tiers.forEach((tier, i) => {
      if (i < last && tier.upTo === undefined) {
        ctx.addIssue({ code: 'custom', path: ['tiers', i, 'upTo'], message: 'only the last tier may omit upTo: every other tier must say where it ends' });
      }
      if (i === last && tier.upTo !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['tiers', i, 'upTo'], message: 'the last tier must omit upTo: it covers every remaining outcome' });
      }
      if (tier.upTo !== undefined) {
        if (previous !== undefined && tier.upTo <= previous) {
          ctx.addIssue({ code: 'custom', path: ['tiers', i, 'upTo'], message: `upTo must be strictly increasing (${tier.upTo} does not exceed the previous tier's ${previous})` });
        }
        previous = tier.upTo;
      }
    });
    (p.alerts ?? []).forEach((f, i) => {
      const before = p.alerts![i - 1];
      if (i > 0 && !(f > before)) {
        ctx.addIssue({ code: 'custom', path: ['alerts', i], message: `alert thresholds must be ascending and unique (${f} after ${before})` });
      }
    });
  });

export type Pricing = z.infer<typeof PricingSchema>;

/** What a period already holds for one outcome type. */
export interface PeriodUsage {
  /** Outcomes charged in the period so far, including included and capped ones. */
  count: number;
  /** Sum of the period's usage line amounts in minor units (the base fee excluded). */
  usageMinor: number;
  /** How many of `count` were capped. */
  capped: number;
}

export interface PricedLine {
  /** 1-based position of the outcome in the period. */
  position: number;
  basis: 'included' | 'tier' | 'capped';
  /** 1-based tier index for basis 'tier', null otherwise. */
  tier: number | null;
  /** The decimal unit price applied (after the index multiplier), normalised; '0' when not 'tier'. */
  unitPrice: string;
  amountMinor: number;
}

// ---------------------------------------------------------------------------------------------
// Exact decimals
// ---------------------------------------------------------------------------------------------

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;
const MAX_PRICE_DECIMALS = 12; // what DecimalPriceSchema and priceToMinorUnits accept

function parseDecimal(text: string, what: string): { units: bigint; scale: number } {
  const match = typeof text === 'string' ? DECIMAL.exec(text) : null;
  if (!match) {
    throw new ReconError('invalid_decimal', `invalid ${what} "${String(text)}" (expected a decimal such as "1.10")`, { [what]: text });
  }
  const [, sign, whole, fraction = ''] = match;
  const units = BigInt(whole + fraction);
  return { units: sign ? -units : units, scale: fraction.length };
}

function formatDecimal(units: bigint, scale: number): string {
  const negative = units < 0n;
  let digits = (negative ? -units : units).toString().padStart(scale + 1, '0');
  let whole = digits.slice(0, digits.length - scale);
  let fraction = digits.slice(digits.length - scale).replace(/0+$/, '');
  whole = whole.replace(/^0+(?=\d)/, '');
  digits = fraction === '' ? whole : `${whole}.${fraction}`;
  return negative && digits !== '0' ? `-${digits}` : digits;
}

/**
 * The exact product of two decimal strings, normalised: no trailing fractional zeros, no
 * leading zeros but the one of "0.x", no "-0". "0.99" × "1.10" = "1.089".
 */
export function multiplyDecimal(a: string, b: string): string {
  const x = parseDecimal(a, 'decimal');
  const y = parseDecimal(b, 'decimal');
  return formatDecimal(x.units * y.units, x.scale + y.scale);
}

function normaliseDecimal(text: string): string {
  const { units, scale } = parseDecimal(text, 'decimal');
  return formatDecimal(units, scale);
}

// ---------------------------------------------------------------------------------------------
// Resolving a pricing block for one currency and multiplier
// ---------------------------------------------------------------------------------------------

type Cap = { kind: 'amount'; minor: number } | { kind: 'count'; count: number } | null;

interface ResolvedTier {
  /** Last overage position of the tier, Infinity for the last tier. */
  end: number;
  unitPrice: string;
  amountMinor: number;
}

interface Resolved {
  included: number;
  tiers: ResolvedTier[];
  cap: Cap;
}

function resolveCap(pricing: Pricing, currency: string): Cap {
  const cap = pricing.cap as { amount?: string; count?: number } | undefined;
  if (!cap) return null;
  if (cap.amount !== undefined) // The same rule as every amount (money.ts): a cap written with more decimals than the
  // currency has is rounded half away from zero, like the callers that show the limit do.
  if (cap.amount !== undefined) return { kind: 'amount', minor: priceToMinorUnits(cap.amount, currency) };
  if (cap.count !== undefined) return { kind: 'count', count: cap.count };
  return null;
}

function resolve(pricing: Pricing, currency: string, multiplier: string | undefined): Resolved {
  minorUnitsOf(currency); // unknown_currency, even when nothing gets priced
  if (multiplier !== undefined) {
    if (!pricing.indexSeries) {
      throw new ReconError('unexpected_multiplier', 'a price index multiplier was given but the pricing names no indexSeries', { multiplier });
    }
    if (typeof multiplier !== 'string' || !/^\d+(?:\.\d+)?$/.test(multiplier)) {
      throw new ReconError('invalid_multiplier', `invalid price index multiplier "${String(multiplier)}" (expected a non-negative decimal such as "1.10")`, { multiplier });
    }
  }
  const tiers = pricing.tiers.map((tier, i): ResolvedTier => {
    const unitPrice = multiplier === undefined ? normaliseDecimal(tier.unitPrice) : multiplyDecimal(tier.unitPrice, multiplier);
    const decimals = unitPrice.split('.')[1]?.length ?? 0;
    if (decimals > MAX_PRICE_DECIMALS) {
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

interface Run {
  from: number; // first position
  n: number;
  basis: PricedLine['basis'];
  tier: number | null;
  unitPrice: string;
  amountMinor: number;
}

function checkUsage(usage: PeriodUsage, name: string): void {
  const ok =
    usage !== null &&
    typeof usage === 'object' &&
    [usage.count, usage.usageMinor, usage.capped].every((v) => Number.isSafeInteger(v) && v >= 0) &&
    usage.capped <= usage.count;
  if (!ok) {
    throw new ReconError('invalid_usage', `${name} must hold non-negative whole numbers with capped <= count`, { [name]: usage });
  }
}

function checkCount(count: number, name: string): void {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new ReconError('invalid_count', `${name} must be a non-negative whole number, got ${String(count)}`, { [name]: count });
  }
}

function safeAdd(a: number, b: number): number {
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

function priceRuns(p: Resolved, before: PeriodUsage, count: number): { runs: Run[]; after: PeriodUsage } {
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
      push({ from: position, n, basis: 'tier', tier: index + 1, unitPrice: tier.unitPrice, amountMinor: tier.amountMinor });
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
      lines.push({ position: run.from + k, basis: run.basis, tier: run.tier, unitPrice: run.unitPrice, amountMinor: run.amountMinor });
    }
  }
  return { lines, after };
}

/** The base fee in minor units (money.ts's rounding rule; never scaled by the index), 0 without one. */
export function baseFeeMinor(pricing: Pricing, currency: string): number {
  minorUnitsOf(currency);
  return pricing.baseFee === undefined ? 0 : priceToMinorUnits(pricing.baseFee, currency);
}

// ---------------------------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------------------------

/** A threshold as an exact fraction num/den, from the number's shortest decimal spelling. */
function asFraction(f: number): { num: bigint; den: bigint } {
  const match = /^(\d+)(?:\.(\d+))?(?:e-(\d+))?$/.exec(String(f));
  if (!match) throw new ReconError('invalid_alert', `invalid alert threshold ${f}`, { threshold: f });
  const [, whole, fraction = '', exponent = '0'] = match;
  return { num: BigInt(whole + fraction), den: 10n ** BigInt(fraction.length + Number(exponent)) };
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
export function alertsCrossed(pricing: Pricing, currency: string, before: PeriodUsage, after: PeriodUsage, commitmentMinor?: number): number[] {
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
      throw new ReconError('invalid_amount', `commitmentMinor must be a non-negative whole number of minor units, got ${commitmentMinor}`, { commitmentMinor });
    }
    if (commitmentMinor === 0) return [];
    test = (f, u) => reached(f, u.usageMinor, commitmentMinor);
  } else {
    return [];
  }
  return thresholds.filter((f) => test(f, after) && !test(f, before));
}

// ---------------------------------------------------------------------------------------------
// Forecast
// ---------------------------------------------------------------------------------------------

/**
 * round(count × days / elapsed), half up: the projected count after `days` days. Exact (BigInt)
 * when the days are whole numbers; with fractional days (elapsed time measured in ms) it is
 * the same formula in floating point, which is deterministic and far from the money.
 */
function countAfterDays(count: number, days: number, elapsed: number): number {
  if (Number.isInteger(days) && Number.isInteger(elapsed)) {
    return Number((2n * BigInt(count) * BigInt(days) + BigInt(elapsed)) / (2n * BigInt(elapsed)));
  }
  return Math.floor((2 * count * days + elapsed) / (2 * elapsed));
}

/** The first whole day d >= 1 with countAfterDays(count, d, elapsed) >= position, i.e. d >= elapsed(2·position - 1) / (2·count). */
function dayReaching(position: number, count: number, elapsed: number): number {
  if (Number.isInteger(elapsed)) {
    const numerator = BigInt(elapsed) * BigInt(2 * position - 1);
    const denominator = 2n * BigInt(count);
    return Math.max(1, Number((numerator + denominator - 1n) / denominator));
  }
  let day = Math.max(1, Math.ceil((elapsed * (2 * position - 1)) / (2 * count)));
  // Settle floating point doubt with the very formula the projection uses.
  while (day > 1 && countAfterDays(count, day - 1, elapsed) >= position) day--;
  while (countAfterDays(count, day, elapsed) < position) day++;
  return day;
}

function capReachedIn(p: Resolved, u: PeriodUsage): boolean {
  if (!p.cap) return false;
  if (u.capped > 0) return true;
  if (p.cap.kind === 'count') return p.cap.count > 0 && u.count >= p.cap.count;
  return p.cap.minor > 0 && u.usageMinor >= p.cap.minor;
}

/**
 * The position at which the cap is reached (count or usage at the cap, or the first capped
 * outcome) when pricing `count` outcomes from `from`, or null when it is not reached.
 */
function capReachPosition(p: Resolved, from: PeriodUsage, count: number): number | null {
  if (!p.cap) return null;
  if (p.cap.kind === 'count') {
    const position = Math.max(p.cap.count, 1);
    return position <= from.count + count ? position : null;
  }
  let usage: PeriodUsage = { ...from };
  for (const run of priceRuns(p, from, count).runs) {
    if (run.basis === 'capped') return run.from;
    if (run.basis === 'tier' && run.amountMinor > 0 && p.cap.minor > 0) {
      const room = p.cap.minor - usage.usageMinor;
      const needed = room > 0 ? Number((BigInt(room) + BigInt(run.amountMinor) - 1n) / BigInt(run.amountMinor)) : 0;
      if (needed >= 1 && needed <= run.n) return run.from + needed - 1;
    }
    usage = { count: usage.count + run.n, usageMinor: usage.usageMinor + run.n * run.amountMinor, capped: usage.capped };
  }
  return null;
}

/**
 * Run-rate forecast for one outcome type in one period. The daily rate is
 * usageSoFar.count / daysElapsed; the projected count at day d is round(rate × d) (half up;
 * exact for whole days, floating point when the caller measures days fractionally, e.g. elapsed
 * milliseconds / 86 400 000 or a 30.96-day DST month), so the period-end count is
 * round(rate × daysInPeriod). The outcomes still to come are
 * priced with the same engine, from usageSoFar. capReachedOnDay is the first day d (1-based) on
 * which the projected count reaches the cap position (for a count cap the cap count, for an
 * amount cap the outcome that brings usage to the cap or is the first one capped); null
 * without a cap or when it is not reached by the end of the period (the last day is
 * ceil(daysInPeriod)). It is consistent with projectedCount: the cap is reached on some day
 * exactly when the projection reaches it. When usageSoFar already
 * reached the cap it is the run-rate estimate of that day (<= daysElapsed); for an amount cap
 * the position is then estimated by repricing the period from empty with this pricing and
 * multiplier. `multiplier` is the price index multiplier to project with (see priceNextOutcomes).
 * daysElapsed 0: no projection beyond usage so far (and a cap already reached gives day 1).
 * projectedTotalMinor adds the base fee when `baseFee` is true.
 */
export function projectPeriod(
  pricing: Pricing,
  currency: string,
  args: { usageSoFar: PeriodUsage; daysElapsed: number; daysInPeriod: number; baseFee: boolean; multiplier?: string },
): { projectedCount: number; projectedUsageMinor: number; projectedTotalMinor: number; capReachedOnDay: number | null } {
  const { usageSoFar, daysElapsed, daysInPeriod } = args;
  checkUsage(usageSoFar, 'usageSoFar');
  if (typeof daysInPeriod !== 'number' || !Number.isFinite(daysInPeriod) || daysInPeriod <= 0) {
    throw new ReconError('invalid_days', `daysInPeriod must be a positive number of days, got ${daysInPeriod}`, { daysInPeriod });
  }
  if (typeof daysElapsed !== 'number' || !Number.isFinite(daysElapsed) || daysElapsed < 0 || daysElapsed > daysInPeriod) {
    throw new ReconError('invalid_days', `daysElapsed must be from 0 to daysInPeriod (${daysInPeriod}), got ${daysElapsed}`, {
      daysElapsed,
      daysInPeriod,
    });
  }
  const p = resolve(pricing, currency, args.multiplier);
  const fee = args.baseFee ? baseFeeMinor(pricing, currency) : 0;
  const c = usageSoFar.count;

  const projectedCount = daysElapsed === 0 ? c : Math.max(c, countAfterDays(c, daysInPeriod, daysElapsed));
  const { after } = priceRuns(p, usageSoFar, projectedCount - c);

  let capReachedOnDay: number | null = null;
  if (p.cap) {
    let position: number | null;
    if (capReachedIn(p, usageSoFar)) {
      position = p.cap.kind === 'count' ? Math.max(1, Math.min(p.cap.count, c)) : capReachPosition(p, { count: 0, usageMinor: 0, capped: 0 }, c) ?? c;
      position = Math.max(1, Math.min(position, c));
    } else {
      position = capReachPosition(p, usageSoFar, projectedCount - c);
    }
    if (position !== null && c > 0) {
      if (daysElapsed === 0) {
        capReachedOnDay = position <= c ? 1 : null;
      } else {
        const day = dayReaching(position, c, daysElapsed);
        capReachedOnDay = day <= Math.ceil(daysInPeriod) ? day : null;
      }
    }
  }

  return {
    projectedCount,
    projectedUsageMinor: after.usageMinor,
    projectedTotalMinor: safeAdd(after.usageMinor, fee),
    capReachedOnDay,
  };
}
