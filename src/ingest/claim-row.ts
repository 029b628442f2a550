import { hash } from 'node:crypto';
import { z } from 'zod';
import { parseCustomerTimestamp } from '../domain/timestamps';
import { ReconError } from '../domain/errors';

// Ids end up in reasons, terminals and spreadsheets: a newline or an escape sequence in one is
// never meant, and would let a row forge lines in what support reads.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const Text = z
  .string({ error: 'expected text' })
  .trim()
  .min(1, 'required')
  .max(512, 'longer than 512 characters')
  .refine((t) => !CONTROL.test(t), 'contains a control character (a line break, tab or escape)');
const TRUE_WORDS = ['true', 'TRUE', '1', 'yes'];
const Bool = z
  .union([z.boolean(), z.enum(['true', 'false', 'TRUE', 'FALSE', '1', '0', 'yes', 'no', ''])], {
    error: 'expected true or false',
  })
  .transform((v) => (typeof v === 'boolean' ? v : TRUE_WORDS.includes(v)));

/**
 * How far after the import's clock (the file's import time, the HTTP page's fetch time) a claim's
 * occurred_at may lie: one day absorbs clock drift and a mislabelled zone, while a claim from next
 * week is a bug upstream. Such a claim is quarantined (occurred_in_future), not kept: an outcome
 * it opened would wait for a success that cannot come yet.
 */
export const FUTURE_TOLERANCE_MS = 86_400_000;

/** A claim as the AI side sends it (JSONL object, CSV row or HTTP page item). */
export const ClaimInputSchema = z.object({
  claim_id: Text,
  outcome_type: Text.optional(),
  subject_ref: Text.optional(),
  occurred_at: z.string({ error: 'expected an ISO 8601 time as text' }).optional(),
  attributes: z.union([z.record(z.string(), z.unknown()), z.string()], { error: 'expected a JSON object' }).optional(),
  retracted: Bool.optional(),
  retracted_at: z.string({ error: 'expected an ISO 8601 time as text' }).optional(),
});

/** What the row held, short, for a reason a support person reads. */
function shown(value: unknown): string {
  const kind =
    value === null
      ? 'null'
      : Array.isArray(value)
        ? 'a list'
        : typeof value === 'object'
          ? 'an object'
          : typeof value === 'string'
            ? 'text'
            : `the ${typeof value}`;
  const text = JSON.stringify(value) ?? String(value);
  return `${kind} ${text.length > 60 ? `${text.slice(0, 60)}…` : text}`;
}

export interface StagedClaim {
  claimId: string;
  outcomeType: string | null;
  subjectRef: string | null;
  occurredAt: string | null;
  attributes: Record<string, unknown>;
  contentSha256: string | null;
  retract: boolean;
  retractedAt: string | null;
}

// Keys in UTF-16 code unit order (Array#sort's default order for strings), nested values the same
// way, so one content always gives one text and one hash. Loops rather than entries/map/join: this
// runs for every row of every import.
export function canonicalJson(value: unknown): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value ?? null);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++)
    out += `${i === 0 ? '' : ','}${JSON.stringify(keys[i])}:${canonicalJson(obj[keys[i]])}`;
  return `${out}}`;
}

export function sha256Of(value: unknown): string {
  // One-shot hash: no Hash object per row.
  return hash('sha256', canonicalJson(value), 'hex');
}

/**
 * A claim row may name its tenant (`tenant` or `tenant_id`, as multi-tenant exports do). One that
 * names another tenant than the import's is refused: taking it in would bill the wrong customer.
 */
export function checkRowTenant(values: Record<string, unknown>, tenant: string): void {
  for (const field of ['tenant', 'tenant_id']) {
    const v = values[field];
    if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) continue;
    if (typeof v !== 'string' || v.trim() !== tenant) {
      throw new ReconError(
        'wrong_tenant',
        `field ${field}: the row is for tenant ${typeof v === 'string' ? JSON.stringify(v.trim()) : shown(v)}, this import is for ${tenant}`,
      );
    }
  }
}

type ClaimInput = z.output<typeof ClaimInputSchema>;

// An empty CSV cell means the field is absent, exactly as a missing JSONL key does.
function isAbsent(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === 'string' && v.trim() === '');
}

/** The schema's verdict, with its first problem as the reason. */
function parseClaimInput(values: Record<string, unknown>): ClaimInput {
  const present = Object.fromEntries(
    Object.entries(values).filter(([, v]) => !(typeof v === 'string' && v.trim() === '') && v !== null),
  );
  const parsed = ClaimInputSchema.safeParse(present);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    const field = String(i.path[0] ?? '(row)');
    throw new ReconError('invalid_field', `field ${field}: ${i.message}, got ${shown(present[field])}`);
  }
  return parsed.data;
}

function fastText(v: unknown): string | undefined | false {
  if (isAbsent(v)) return undefined;
  if (typeof v !== 'string') return false;
  const t = v.trim();
  return t.length <= 512 && !CONTROL.test(t) ? t : false;
}

function fastTime(v: unknown): string | undefined | false {
  if (isAbsent(v)) return undefined;
  return typeof v === 'string' ? v : false;
}

const BOOL_WORDS = new Map<unknown, boolean>([
  ['true', true],
  ['TRUE', true],
  ['1', true],
  ['yes', true],
  ['false', false],
  ['FALSE', false],
  ['0', false],
  ['no', false],
  [true, true],
  [false, false],
]);

/**
 * What ClaimInputSchema gives for a row that passes it, computed without it (the schema costs more
 * than the rest of the row). Anything it is not sure of (a problem, an odd attributes object) is
 * left to the schema: undefined.
 */
export function fastClaimInput(values: Record<string, unknown>): ClaimInput | undefined {
  const claimId = fastText(values.claim_id);
  const outcomeType = fastText(values.outcome_type);
  const subjectRef = fastText(values.subject_ref);
  const occurredAt = fastTime(values.occurred_at);
  const retractedAt = fastTime(values.retracted_at);
  if (
    claimId === undefined ||
    claimId === false ||
    outcomeType === false ||
    subjectRef === false ||
    occurredAt === false ||
    retractedAt === false
  )
    return undefined;
  let retracted: boolean | undefined;
  const r = values.retracted;
  if (!isAbsent(r)) {
    retracted = BOOL_WORDS.get(r);
    if (retracted === undefined) return undefined;
  }
  let attributes: ClaimInput['attributes'];
  const a = values.attributes;
  if (!isAbsent(a)) {
    if (typeof a === 'string') attributes = a;
    // The schema copies a plain object's own keys as they are; a "__proto__" key or another
    // prototype is its business.
    else if (
      typeof a === 'object' &&
      a !== null &&
      !Array.isArray(a) &&
      Object.getPrototypeOf(a) === Object.prototype &&
      !Object.hasOwn(a, '__proto__')
    )
      attributes = a as Record<string, unknown>;
    else return undefined;
  }
  return {
    claim_id: claimId,
    outcome_type: outcomeType,
    subject_ref: subjectRef,
    occurred_at: occurredAt,
    attributes,
    retracted,
    retracted_at: retractedAt,
  };
}

/**
 * Validates one claim row. A retraction may carry only the claim id; anything else needs the full
 * content, whose hash tells a redelivery (same hash) from a conflict (same id, other content).
 * `receivedAt` stands in for the retraction time when the AI side gives none.
 */
export function stageClaimRow(values: Record<string, unknown>, receivedAt: Date): StagedClaim {
  // A blank claim id is as absent as a missing one: say so rather than "expected text".
  if (isAbsent(values.claim_id)) throw new ReconError('missing_field', 'field claim_id: required');
  const c = fastClaimInput(values) ?? parseClaimInput(values);

  const retract = c.retracted === true;
  const hasContent = c.outcome_type !== undefined || c.subject_ref !== undefined || c.occurred_at !== undefined;
  if (!retract || hasContent) {
    for (const f of ['outcome_type', 'subject_ref', 'occurred_at'] as const) {
      if (!c[f]) throw new ReconError('missing_field', `field ${f}: required`);
    }
  }
  let attributes: Record<string, unknown> = {};
  if (typeof c.attributes === 'string' && c.attributes.trim() !== '') {
    let v: unknown;
    try {
      v = JSON.parse(c.attributes);
    } catch (err) {
      throw new ReconError(
        'invalid_field',
        `field attributes: not valid JSON (${(err as Error).message.replace(/\s+/g, ' ').slice(0, 120)})`,
      );
    }
    if (!v || typeof v !== 'object' || Array.isArray(v))
      throw new ReconError('invalid_field', `field attributes: expected a JSON object, got ${shown(v)}`);
    attributes = v as Record<string, unknown>;
  } else if (c.attributes && typeof c.attributes === 'object') {
    attributes = c.attributes;
  }
  const occurredAt = c.occurred_at ? fieldTime('occurred_at', c.occurred_at) : null;
  if (occurredAt !== null && Date.parse(occurredAt) > receivedAt.getTime() + FUTURE_TOLERANCE_MS) {
    throw new ReconError(
      'occurred_in_future',
      `field occurred_at: ${occurredAt} is more than a day after this import's time (${receivedAt.toISOString()}); fix the claim's time (and its zone) and send it again`,
    );
  }
  const retractedAt = retract
    ? c.retracted_at
      ? fieldTime('retracted_at', c.retracted_at)
      : receivedAt.toISOString()
    : null;
  // The content's canonical JSON written out: canonicalJson({ outcome_type, subject_ref,
  // occurred_at, attributes }) with its four keys already in order.
  const content =
    hasContent || !retract
      ? `{"attributes":${canonicalJson(attributes)},"occurred_at":${JSON.stringify(occurredAt)},"outcome_type":${JSON.stringify(c.outcome_type ?? null)},"subject_ref":${JSON.stringify(c.subject_ref ?? null)}}`
      : null;
  return {
    claimId: c.claim_id,
    outcomeType: c.outcome_type ?? null,
    subjectRef: c.subject_ref ?? null,
    occurredAt,
    attributes,
    contentSha256: content === null ? null : hash('sha256', content, 'hex'),
    retract,
    retractedAt,
  };
}

function fieldTime(field: string, text: string): string {
  try {
    // Claims come from a machine: an instant without an offset is read as UTC.
    return parseCustomerTimestamp(text, 'UTC').toISOString();
  } catch (err) {
    throw new ReconError((err as ReconError).code ?? 'bad_timestamp', `field ${field}: ${(err as Error).message}`);
  }
}
