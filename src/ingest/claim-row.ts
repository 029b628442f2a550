import { createHash } from 'node:crypto';
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
  .union([z.boolean(), z.enum(['true', 'false', 'TRUE', 'FALSE', '1', '0', 'yes', 'no', ''])], { error: 'expected true or false' })
  .transform((v) => (typeof v === 'boolean' ? v : TRUE_WORDS.includes(v)));

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
  const kind = value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'an object' : typeof value === 'string' ? 'text' : `the ${typeof value}`;
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

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export function sha256Of(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
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
      throw new ReconError('wrong_tenant', `field ${field}: the row is for tenant ${typeof v === 'string' ? JSON.stringify(v.trim()) : shown(v)}, this import is for ${tenant}`);
    }
  }
}

/**
 * Validates one claim row. A retraction may carry only the claim id; anything else needs the full
 * content, whose hash tells a redelivery (same hash) from a conflict (same id, other content).
 * `receivedAt` stands in for the retraction time when the AI side gives none.
 */
export function stageClaimRow(values: Record<string, unknown>, receivedAt: Date): StagedClaim {
  // An empty CSV cell means the field is absent, exactly as a missing JSONL key does.
  const present = Object.fromEntries(Object.entries(values).filter(([, v]) => !(typeof v === 'string' && v.trim() === '') && v !== null));
  // A blank claim id is as absent as a missing one: say so rather than "expected text".
  if (present.claim_id === undefined) throw new ReconError('missing_field', 'field claim_id: required');
  const parsed = ClaimInputSchema.safeParse(present);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    const field = String(i.path[0] ?? '(row)');
    throw new ReconError('invalid_field', `field ${field}: ${i.message}, got ${shown(present[field])}`);
  }
  const c = parsed.data;
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
      throw new ReconError('invalid_field', `field attributes: not valid JSON (${(err as Error).message.replace(/\s+/g, ' ').slice(0, 120)})`);
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ReconError('invalid_field', `field attributes: expected a JSON object, got ${shown(v)}`);
    attributes = v as Record<string, unknown>;
  } else if (c.attributes && typeof c.attributes === 'object') {
    attributes = c.attributes;
  }
  const occurredAt = c.occurred_at ? fieldTime('occurred_at', c.occurred_at) : null;
  const retractedAt = retract ? (c.retracted_at ? fieldTime('retracted_at', c.retracted_at) : receivedAt.toISOString()) : null;
  const content = hasContent || !retract ? { outcome_type: c.outcome_type, subject_ref: c.subject_ref, occurred_at: occurredAt, attributes } : null;
  return {
    claimId: c.claim_id,
    outcomeType: c.outcome_type ?? null,
    subjectRef: c.subject_ref ?? null,
    occurredAt,
    attributes,
    contentSha256: content ? sha256Of(content) : null,
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
