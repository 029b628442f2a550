import { z } from 'zod';
import { PredicateSchema, validatePredicateFields, type Predicate } from './predicate';
import { IsoDurationSchema, isValidTimeZone } from './durations';
import { DecimalPriceSchema, minorUnitsOf } from './money';
import { PricingSchema, type Pricing } from './pricing';

const Identifier = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'expected a lowercase identifier (letters, digits, _ and -)');
const TimeZone = z.string().refine(isValidTimeZone, 'expected an IANA time zone such as Europe/Berlin');
const Currency = z.string().refine((c) => {
  try {
    minorUnitsOf(c);
    return true;
  } catch {
    return false;
  }
}, 'expected an ISO 4217 currency code such as USD');

const FieldSchema = z.object({
  column: z.string().min(1),
  type: z.enum(['string', 'number', 'timestamp', 'boolean']).default('string'),
});

const RecordSourceSchema = z.object({
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

const OutcomeTypeSchema = z.object({
  recordSource: z.string(),
  matchKey: z.object({
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
  disputes: DisputeTermsSchema.default({ window: 'P30D', sla: 'P2D', autoResolveAfter: 'P7D', defaultDecision: 'uphold' }),
  /** A reopen this long after billing still credits the charge; zero: billing is final for reopens. */
  clawbackWindow: IsoDurationSchema.default('PT0S'),
});

const HttpClaimSourceSchema = z.object({
  kind: z.literal('http'),
  url: z.string().url(),
  pageSize: z.number().int().min(1).max(10_000).default(500),
  /** Pages taken per activity call before the workflow checks in again. */
  pagesPerChunk: z.number().int().min(1).max(1000).default(20),
});

export const ContractSchema = z
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
      .object({ amount: DecimalPriceSchema, termStart: z.iso.datetime({ offset: true }), termEnd: z.iso.datetime({ offset: true }) })
      .strict()
      .refine((c) => Date.parse(c.termStart) < Date.parse(c.termEnd), { message: 'termEnd must be after termStart', path: ['termEnd'] })
      .optional(),
    /** Alerts are POSTed here as JSON, retried until delivered. */
    alertWebhook: z.string().url().optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const caseRuleBySource = new Map<string, boolean>();
    for (const [name, src] of Object.entries(c.recordSources)) {
      for (const f of [src.idField, src.updatedAtField].filter((x): x is string => !!x)) {
        if (!src.fields[f]) ctx.addIssue({ code: 'custom', path: ['recordSources', name, 'fields'], message: `field "${f}" is used but not mapped` });
      }
      if (src.updatedAtField && src.fields[src.updatedAtField]?.type !== 'timestamp') {
        ctx.addIssue({ code: 'custom', path: ['recordSources', name, 'updatedAtField'], message: 'must name a timestamp field' });
      }
    }
    for (const [name, ot] of Object.entries(c.outcomeTypes)) {
      const src = c.recordSources[ot.recordSource];
      const at = (...p: (string | number)[]) => ['outcomeTypes', name, ...p];
      if (!src) {
        ctx.addIssue({ code: 'custom', path: at('recordSource'), message: `unknown record source "${ot.recordSource}"` });
        continue;
      }
      if ((ot.unitPrice === undefined) === (ot.pricing === undefined)) {
        ctx.addIssue({ code: 'custom', path: at('unitPrice'), message: 'give exactly one of unitPrice (flat) or pricing (hybrid)' });
      }
      const known = new Set(Object.keys(src.fields));
      if (!known.has(ot.matchKey.field)) ctx.addIssue({ code: 'custom', path: at('matchKey', 'field'), message: `"${ot.matchKey.field}" is not a field of ${ot.recordSource}` });
      if (src.fields[ot.successTimeField]?.type !== 'timestamp') {
        ctx.addIssue({ code: 'custom', path: at('successTimeField'), message: `"${ot.successTimeField}" must be a timestamp field of ${ot.recordSource}` });
      }
      // An invalid rule was already reported where it is wrong; walking it for fields would trip
      // over the very operator that is unknown.
      const ruleFields = PredicateSchema.safeParse(ot.success).success ? validatePredicateFields(ot.success, known) : [];
      for (const f of ruleFields) {
        ctx.addIssue({ code: 'custom', path: at('success'), message: `unknown field "${f}" in the success rule` });
      }
      // Record versions carry one match key per source, so every type on a source must agree on it.
      const otherField = Object.entries(c.outcomeTypes).find(([n, o]) => n !== name && o.recordSource === ot.recordSource && o.matchKey.field !== ot.matchKey.field);
      if (otherField) {
        ctx.addIssue({ code: 'custom', path: at('matchKey', 'field'), message: `outcome types sharing record source ${ot.recordSource} must match on the same field (${otherField[0]} uses "${otherField[1].matchKey.field}")` });
      }
      const prior = caseRuleBySource.get(ot.recordSource);
      if (prior !== undefined && prior !== ot.matchKey.caseInsensitive) {
        ctx.addIssue({ code: 'custom', path: at('matchKey', 'caseInsensitive'), message: 'outcome types sharing a record source must use the same case rule' });
      }
      caseRuleBySource.set(ot.recordSource, ot.matchKey.caseInsensitive);
    }
  });

export type Contract = z.infer<typeof ContractSchema>;
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
  body: Contract;
}

/** The version in effect at `at`: the latest whose effectiveFrom is not after it. */
export function contractInEffectAt(versions: ContractVersion[], at: Date): ContractVersion | undefined {
  let found: ContractVersion | undefined;
  for (const v of versions) {
    if (v.effectiveFrom.getTime() <= at.getTime() && (!found || v.effectiveFrom > found.effectiveFrom)) found = v;
  }
  return found;
}

/** Match keys are trimmed, and lowercased when the contract says case does not matter. */
export function normaliseMatchKey(value: string, caseInsensitive: boolean): string {
  const trimmed = value.trim();
  return caseInsensitive ? trimmed.toLowerCase() : trimmed;
}

/** The case rule for a record source (validated to agree across outcome types). */
export function sourceIsCaseInsensitive(contract: Contract, source: string): boolean {
  const ot = Object.values(contract.outcomeTypes).find((t) => t.recordSource === source);
  return ot ? ot.matchKey.caseInsensitive : true;
}

export function formatZodIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}
