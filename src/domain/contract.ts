import { z } from 'zod';
import {
  PredicateSchema,
  validatePredicateFields,
  validatePredicateTypes,
  type FieldType,
  type Predicate,
} from './predicate';
import { IsoDurationSchema, MAX_CONTRACT_DURATION, isValidTimeZone, isWithinContractBound } from './durations';
import {
  DecimalPriceSchema,
  MAX_LEDGER_MINOR,
  MAX_OUTCOMES_PER_PERIOD,
  formatMinorUnits,
  minorUnitsOf,
  priceToMinorUnits,
} from './money';
import { PricingSchema, type Pricing } from './pricing/schema';
import { SinkSchema } from './sinks';

const Identifier = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,62}$/, 'expected a lowercase identifier (letters, digits, _ and -)');
const TimeZone = z.string().refine(isValidTimeZone, 'expected an IANA time zone such as Europe/Berlin');
const Currency = z.string().refine((c) => {
  try {
    minorUnitsOf(c);
    return true;
  } catch {
    return false;
  }
}, 'expected an ISO 4217 currency code such as USD');

const FieldSchema = z
  .object({
    column: z.string().min(1),
    type: z.enum(['string', 'number', 'timestamp', 'boolean']).default('string'),
  })
  .strict();

/** Contract instants (effectiveFrom, a commitment's term) lie in these years; 9999 is a typo, not a plan. */
export const CONTRACT_YEARS = { from: 2000, to: 2100 } as const;

const RecordSourceSchema = z.strictObject({
  format: z.enum(['csv', 'jsonl']),
  /** Timestamps without an offset are read in this zone (default: the tenant's). */
  timezone: TimeZone.optional(),
  idField: z.string().min(1),
  /** The record's own update time; without it a version takes effect at import time. */
  updatedAtField: z.string().min(1).optional(),
  fields: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), FieldSchema),
});

const DisputeTermsSchema = z
  .object({
    /** How long after billing a dispute is still accepted. */
    window: IsoDurationSchema.default('P30D'),
    /** Unresolved this long after opening: escalation. */
    sla: IsoDurationSchema.default('P2D'),
    /** Unresolved this long after opening: resolved by `defaultDecision`. */
    autoResolveAfter: IsoDurationSchema.default('P7D'),
    /** We only bill on success we can defend: by default an unanswered dispute is upheld. */
    defaultDecision: z.enum(['uphold', 'reject']).default('uphold'),
  })
  .strict();

const OutcomeTypeSchema = z.strictObject({
  recordSource: z.string(),
  matchKey: z.strictObject({
    field: z.string(),
    caseInsensitive: z.boolean().default(true),
  }),
  success: PredicateSchema,
  successTimeField: z.string(),
  graceWindow: IsoDurationSchema,
  evidenceDeadline: IsoDurationSchema,
  /** A flat price per outcome; shorthand for `pricing: { tiers: [{ unitPrice }] }`. */
  unitPrice: DecimalPriceSchema.optional(),
  /** Hybrid pricing: base fee, included outcomes, graduated tiers, cap, alerts, price index. */
  pricing: PricingSchema.optional(),
  disputes: DisputeTermsSchema.default({
    window: 'P30D',
    sla: 'P2D',
    autoResolveAfter: 'P7D',
    defaultDecision: 'uphold',
  }),
  /** A reopen this long after billing still credits the charge; zero: billing is final for reopens. */
  clawbackWindow: IsoDurationSchema.default('PT0S'),
});

const HttpClaimSourceSchema = z.strictObject({
  kind: z.literal('http'),
  url: z.string().url(),
  pageSize: z.number().int().min(1).max(10_000).default(500),
  /** Pages taken per activity call before the workflow checks in again. */
  pagesPerChunk: z.number().int().min(1).max(1000).default(20),
});

/**
 * A contract as stored: every key known at every depth, and the rules that make it usable (fields
 * mapped, sources named). Stored versions are read back with this schema; applying a version also
 * checks ContractSchema's bounds, which a version stored before they existed may not meet.
 */
export const StoredContractSchema = z
  .object({
    tenant: Identifier,
    effectiveFrom: z.iso.datetime({ offset: true }),
    timezone: TimeZone,
    currency: Currency,
    claimSources: z.record(Identifier, HttpClaimSourceSchema).default({}),
    recordSources: z.record(Identifier, RecordSourceSchema),
    outcomeTypes: z.record(Identifier, OutcomeTypeSchema),
    /** A prepaid commitment for a contract term, drawn down by usage; a true-up line at term end. */
    commitment: z
      .object({
        amount: DecimalPriceSchema,
        termStart: z.iso.datetime({ offset: true }),
        termEnd: z.iso.datetime({ offset: true }),
      })
      .strict()
      .refine((c) => Date.parse(c.termStart) < Date.parse(c.termEnd), {
        message: 'termEnd must be after termStart',
        path: ['termEnd'],
      })
      .optional(),
    /** Alerts are POSTed here as JSON, retried until delivered. */
    alertWebhook: z.string().url().optional(),
    /** Billing systems the ledger's lines are delivered to after each night (src/sinks). Absent, not {}, so that a contract applied before sinks existed keeps its stored body. */
    sinks: z.record(Identifier, SinkSchema).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    for (const [name, sink] of Object.entries(c.sinks ?? {})) {
      for (const [i, t] of (sink.outcomeTypes ?? []).entries())
        if (!c.outcomeTypes[t])
          ctx.addIssue({
            code: 'custom',
            path: ['sinks', name, 'outcomeTypes', i],
            message: `unknown outcome type "${t}"`,
          });
    }
    const caseRuleBySource = new Map<string, boolean>();
    for (const [name, src] of Object.entries(c.recordSources)) {
      for (const f of [src.idField, src.updatedAtField].filter((x): x is string => !!x)) {
        if (!src.fields[f])
          ctx.addIssue({
            code: 'custom',
            path: ['recordSources', name, 'fields'],
            message: `field "${f}" is used but not mapped`,
          });
      }
      if (src.updatedAtField && src.fields[src.updatedAtField]?.type !== 'timestamp') {
        ctx.addIssue({
          code: 'custom',
          path: ['recordSources', name, 'updatedAtField'],
          message: 'must name a timestamp field',
        });
      }
    }
    for (const [name, ot] of Object.entries(c.outcomeTypes)) {
      const src = c.recordSources[ot.recordSource];
      const at = (...p: (string | number)[]) => ['outcomeTypes', name, ...p];
      if (!src) {
        ctx.addIssue({
          code: 'custom',
          path: at('recordSource'),
          message: `unknown record source "${ot.recordSource}"`,
        });
        continue;
      }
      if ((ot.unitPrice === undefined) === (ot.pricing === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: at('unitPrice'),
          message: 'give exactly one of unitPrice (flat) or pricing (hybrid)',
        });
      }
      const known = new Set(Object.keys(src.fields));
      if (!known.has(ot.matchKey.field))
        ctx.addIssue({
          code: 'custom',
          path: at('matchKey', 'field'),
          message: `"${ot.matchKey.field}" is not a field of ${ot.recordSource}`,
        });
      if (src.fields[ot.successTimeField]?.type !== 'timestamp') {
        ctx.addIssue({
          code: 'custom',
          path: at('successTimeField'),
          message: `"${ot.successTimeField}" must be a timestamp field of ${ot.recordSource}`,
        });
      }
      // An invalid rule was already reported where it is wrong; walking it for fields would trip
      // over the very operator that is unknown.
      const ruleFields = PredicateSchema.safeParse(ot.success).success
        ? validatePredicateFields(ot.success, known)
        : [];
      for (const f of ruleFields) {
        ctx.addIssue({ code: 'custom', path: at('success'), message: `unknown field "${f}" in the success rule` });
      }
      // Record versions carry one match key per source, so every type on a source must agree on it.
      const otherField = Object.entries(c.outcomeTypes).find(
        ([n, o]) => n !== name && o.recordSource === ot.recordSource && o.matchKey.field !== ot.matchKey.field,
      );
      if (otherField) {
        ctx.addIssue({
          code: 'custom',
          path: at('matchKey', 'field'),
          message: `outcome types sharing record source ${ot.recordSource} must match on the same field (${otherField[0]} uses "${otherField[1].matchKey.field}")`,
        });
      }
      const prior = caseRuleBySource.get(ot.recordSource);
      if (prior !== undefined && prior !== ot.matchKey.caseInsensitive) {
        ctx.addIssue({
          code: 'custom',
          path: at('matchKey', 'caseInsensitive'),
          message: 'outcome types sharing a record source must use the same case rule',
        });
      }
      caseRuleBySource.set(ot.recordSource, ot.matchKey.caseInsensitive);
    }
  });

type Issue = { path: (string | number)[]; message: string };

function isZeroPrice(text: string): boolean {
  return /^0+(?:\.0+)?$/.test(text);
}

/**
 * An amount written in the contract, in minor units, or the reason it does not fit: the ledger
 * holds whole minor units as safe integers, and a price (unit price, tier price, base fee) that
 * rounds to nothing is a typo unless it is written as zero. A cap or a commitment is a limit,
 * not a price: only the ledger bound applies to it.
 */
function contractAmount(
  text: string,
  currency: string,
  at: (string | number)[],
  issues: Issue[],
  isPrice = true,
): number | undefined {
  let minor: number;
  try {
    minor = priceToMinorUnits(text, currency);
  } catch {
    issues.push({
      path: at,
      message: `${text} ${currency} is more than the ledger can hold (at most ${formatMinorUnits(MAX_LEDGER_MINOR, currency)} ${currency})`,
    });
    return undefined;
  }
  if (isPrice && minor === 0 && !isZeroPrice(text)) {
    issues.push({
      path: at,
      message: `${text} ${currency} rounds to 0 in minor units (the smallest amount is ${formatMinorUnits(1, currency)}); write "0" to mean free`,
    });
  }
  return minor;
}

const MAX_UNIT_PRICE_MINOR = Math.floor(MAX_LEDGER_MINOR / MAX_OUTCOMES_PER_PERIOD);

/**
 * The ledger bound: every amount is a whole number of minor units within
 * Number.MAX_SAFE_INTEGER (the column is bigint, but sums are JavaScript numbers), and a period
 * must stay within it even at its largest. A period is taken to hold at most
 * MAX_OUTCOMES_PER_PERIOD outcomes of each type, so a unit price is at most
 * floor(MAX_LEDGER_MINOR / MAX_OUTCOMES_PER_PERIOD) = 90 071 992 minor units (900 719.92 USD,
 * 90 071 992 JPY), and the largest period of the whole contract (every type's base fee plus
 * its usage at the dearest tier, bounded by its cap, plus a commitment true-up) must fit as well.
 * A price index multiplier is applied later; a product beyond the bound is refused when priced.
 */
function ledgerBoundIssues(c: Contract): Issue[] {
  const issues: Issue[] = [];
  const currency = c.currency;
  try {
    minorUnitsOf(currency);
  } catch {
    return issues; // reported on the currency itself
  }
  let periodMax = 0n;
  for (const [name, ot] of Object.entries(c.outcomeTypes)) {
    const at = (...p: (string | number)[]) => ['outcomeTypes', name, ...p];
    const tiers: Array<{ price: string; path: (string | number)[] }> = ot.pricing
      ? ot.pricing.tiers.map((t, i) => ({ price: t.unitPrice, path: at('pricing', 'tiers', i, 'unitPrice') }))
      : ot.unitPrice !== undefined
        ? [{ price: ot.unitPrice, path: at('unitPrice') }]
        : [];
    let dearest = 0;
    for (const t of tiers) {
      const minor = contractAmount(t.price, currency, t.path, issues);
      if (minor === undefined) continue;
      if (minor > MAX_UNIT_PRICE_MINOR) {
        issues.push({
          path: t.path,
          message: `${t.price} ${currency} per outcome is beyond the ledger's bound of ${formatMinorUnits(MAX_UNIT_PRICE_MINOR, currency)} ${currency} per outcome (a period may hold ${MAX_OUTCOMES_PER_PERIOD.toLocaleString('en-US')} outcomes of a type)`,
        });
      }
      dearest = Math.max(dearest, minor);
    }
    let usage = BigInt(dearest) * BigInt(MAX_OUTCOMES_PER_PERIOD);
    const p = ot.pricing;
    if (p?.baseFee !== undefined)
      periodMax += BigInt(contractAmount(p.baseFee, currency, at('pricing', 'baseFee'), issues) ?? 0);
    if (p?.cap && 'amount' in p.cap) {
      const cap = contractAmount(p.cap.amount, currency, at('pricing', 'cap', 'amount'), issues, false);
      if (cap !== undefined && BigInt(cap) < usage) usage = BigInt(cap);
    } else if (p?.cap && 'count' in p.cap) {
      usage = BigInt(dearest) * BigInt(Math.min(p.cap.count, MAX_OUTCOMES_PER_PERIOD));
    }
    periodMax += usage;
  }
  if (c.commitment)
    periodMax += BigInt(contractAmount(c.commitment.amount, currency, ['commitment', 'amount'], issues, false) ?? 0);
  if (issues.length === 0 && periodMax > BigInt(MAX_LEDGER_MINOR)) {
    issues.push({
      path: ['outcomeTypes'],
      message: `the largest period this contract allows (${MAX_OUTCOMES_PER_PERIOD.toLocaleString('en-US')} outcomes of each type at its dearest tier, with base fees, caps and commitment) totals more than the ledger can hold (${formatMinorUnits(MAX_LEDGER_MINOR, currency)} ${currency}); lower the prices or add a cap`,
    });
  }
  return issues;
}

/** Success rules checked against the mapped fields' types (predicate.ts validatePredicateTypes). */
function ruleTypeIssues(c: Contract): Issue[] {
  const issues: Issue[] = [];
  for (const [name, ot] of Object.entries(c.outcomeTypes)) {
    const src = c.recordSources[ot.recordSource];
    if (!src) continue;
    const types = new Map<string, FieldType>(Object.entries(src.fields).map(([f, def]) => [f, def.type]));
    for (const i of validatePredicateTypes(ot.success, types))
      issues.push({ path: ['outcomeTypes', name, 'success', ...i.path], message: i.message });
  }
  return issues;
}

/**
 * Sane bounds: something to bill (record sources, outcome types, fields), durations of at most
 * ten years, contract instants in the years 2000 to 2100.
 */
function boundIssues(c: Contract): Issue[] {
  const issues: Issue[] = [];
  if (Object.keys(c.recordSources).length === 0)
    issues.push({ path: ['recordSources'], message: 'name at least one record source' });
  if (Object.keys(c.outcomeTypes).length === 0)
    issues.push({ path: ['outcomeTypes'], message: 'name at least one outcome type' });
  for (const [name, src] of Object.entries(c.recordSources)) {
    if (Object.keys(src.fields).length === 0)
      issues.push({ path: ['recordSources', name, 'fields'], message: 'map at least one field' });
  }
  const instant = (text: string, path: (string | number)[]) => {
    const year = new Date(text).getUTCFullYear();
    if (!(year >= CONTRACT_YEARS.from && year <= CONTRACT_YEARS.to))
      issues.push({ path, message: `must lie in the years ${CONTRACT_YEARS.from} to ${CONTRACT_YEARS.to}` });
  };
  instant(c.effectiveFrom, ['effectiveFrom']);
  if (c.commitment) {
    instant(c.commitment.termStart, ['commitment', 'termStart']);
    instant(c.commitment.termEnd, ['commitment', 'termEnd']);
  }
  for (const [name, ot] of Object.entries(c.outcomeTypes)) {
    const durations: Array<[string, (string | number)[]]> = [
      [ot.graceWindow, ['graceWindow']],
      [ot.evidenceDeadline, ['evidenceDeadline']],
      [ot.disputes.window, ['disputes', 'window']],
      [ot.disputes.sla, ['disputes', 'sla']],
      [ot.disputes.autoResolveAfter, ['disputes', 'autoResolveAfter']],
      [ot.clawbackWindow, ['clawbackWindow']],
    ];
    for (const [text, path] of durations) {
      if (!isWithinContractBound(text))
        issues.push({
          path: ['outcomeTypes', name, ...path],
          message: `must be at most ten years (${MAX_CONTRACT_DURATION})`,
        });
    }
  }
  return issues;
}

/**
 * A contract as it may be applied: StoredContractSchema plus the rules a new version must meet
 * (bounds, rules that fit the fields' types, amounts that fit the ledger). They are kept out of
 * StoredContractSchema so that a version stored before a rule existed still loads.
 */
export const ContractSchema = StoredContractSchema.superRefine((c, ctx) => {
  // Refinements run on a value that already failed elsewhere; these checks walk the whole
  // contract, so they wait until the shape is right rather than trip over what is wrong.
  if (!StoredContractSchema.safeParse(c).success) return;
  for (const i of [...boundIssues(c), ...ruleTypeIssues(c), ...ledgerBoundIssues(c)])
    ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
});

export type Contract = z.infer<typeof StoredContractSchema>;
export type OutcomeTypeTerms = Contract['outcomeTypes'][string];
export type RecordSource = Contract['recordSources'][string];
export type DisputeTerms = OutcomeTypeTerms['disputes'];
export type { Predicate };

/** The pricing of an outcome type; a flat unitPrice is one tier with no end. */
export function pricingOf(terms: OutcomeTypeTerms): Pricing {
  return terms.pricing ?? PricingSchema.parse({ tiers: [{ unitPrice: terms.unitPrice }] });
}

/** A stored contract version: the parsed body plus its version number. */
export interface ContractVersion {
  version: number;
  effectiveFrom: Date;
  /** When it was applied (stored versions only). */
  appliedAt?: Date;
  body: Contract;
}

const NOT_ASCII = /[^\u0000-\u007f]/;

/**
 * Match keys are Unicode NFC, trimmed, and lowercased when the contract says case does not
 * matter: "Ticket-Å" typed with a combining ring (NFD, as macOS file names and some exports
 * write it) and with the precomposed letter (NFC) are one key. Every key is made here: claims,
 * records and lookups (outcome show, disputes) all call it, so they cannot disagree.
 */
export function normaliseMatchKey(value: string, caseInsensitive: boolean): string {
  // Most keys are ASCII, for which NFC is the identity: skip the ICU call on the import hot path.
  const trimmed = NOT_ASCII.test(value) ? value.normalize('NFC').trim() : value.trim();
  if (!caseInsensitive) return trimmed;
  const lower = trimmed.toLowerCase();
  // Lowercasing can leave a combining mark next to a letter it composes with ("İ" → "i̇").
  return lower === trimmed || !NOT_ASCII.test(lower) ? lower : lower.normalize('NFC');
}

/** The case rule for a record source (validated to agree across outcome types). */
export function sourceIsCaseInsensitive(contract: Contract, source: string): boolean {
  const ot = Object.values(contract.outcomeTypes).find((t) => t.recordSource === source);
  return ot ? ot.matchKey.caseInsensitive : true;
}

/** One line naming each problem by its JSON path; an unknown key is named by its own path. */
export function formatZodIssues(error: z.ZodError): string {
  const where = (path: PropertyKey[]) => (path.length ? path.map(String).join('.') : '(root)');
  return error.issues
    .flatMap((i) =>
      i.code === 'unrecognized_keys'
        ? i.keys.map((k) => `${where([...i.path, k])}: unknown key`)
        : [`${where(i.path)}: ${i.message}`],
    )
    .join('; ');
}
