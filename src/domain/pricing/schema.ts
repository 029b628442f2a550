import { z } from 'zod';
import { ReconError } from '../errors';
import { DecimalPriceSchema } from '../money';

/**
 * The shape of a contract's pricing block and of what a billing period already holds: the
 * input every other pricing concern (tiers.ts, alerts.ts, forecast.ts) starts from.
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
    alerts: z
      .array(
        z.number().gt(0, 'an alert threshold must be above 0').lte(1, 'an alert threshold must be at most 1 (100%)'),
      )
      .optional(),
    /** Name of a price index series whose multiplier scales the tier prices (not the base fee, not the cap). */
    indexSeries: z
      .string()
      .regex(INDEX_SERIES_NAME, 'expected a lowercase series name (letters, digits, _ and -)')
      .optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const last = p.tiers.length - 1;
    let previous: number | undefined;
    p.tiers.forEach((tier, i) => {
      if (i < last && tier.upTo === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['tiers', i, 'upTo'],
          message: 'only the last tier may omit upTo: every other tier must say where it ends',
        });
      }
      if (i === last && tier.upTo !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['tiers', i, 'upTo'],
          message: 'the last tier must omit upTo: it covers every remaining outcome',
        });
      }
      if (tier.upTo !== undefined) {
        if (previous !== undefined && tier.upTo <= previous) {
          ctx.addIssue({
            code: 'custom',
            path: ['tiers', i, 'upTo'],
            message: `upTo must be strictly increasing (${tier.upTo} does not exceed the previous tier's ${previous})`,
          });
        }
        previous = tier.upTo;
      }
    });
    (p.alerts ?? []).forEach((f, i) => {
      const before = p.alerts![i - 1];
      if (i > 0 && !(f > before)) {
        ctx.addIssue({
          code: 'custom',
          path: ['alerts', i],
          message: `alert thresholds must be ascending and unique (${f} after ${before})`,
        });
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

/** Refuses a PeriodUsage that no ledger could hold; `name` says which argument it was. */
export function checkUsage(usage: PeriodUsage, name: string): void {
  const ok =
    usage !== null &&
    typeof usage === 'object' &&
    [usage.count, usage.usageMinor, usage.capped].every((v) => Number.isSafeInteger(v) && v >= 0) &&
    usage.capped <= usage.count;
  if (!ok) {
    throw new ReconError('invalid_usage', `${name} must hold non-negative whole numbers with capped <= count`, {
      [name]: usage,
    });
  }
}
