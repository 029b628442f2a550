import type { Pool } from '../db/pool';
import { loadContractHistory } from '../db/contracts';
import { normaliseMatchKey } from '../domain/contract';
import { caseRuleOf } from '../domain/contract-history';
import { ReconError } from '../domain/errors';
import { disputesOfOutcome, type DisputeDetail } from '../disputes/views';

export interface OutcomeStory {
  outcome: {
    outcomeId: number; tenant: string; outcomeType: string; subjectRef: string; subjectKey: string; state: string;
    rejectReason: string | null; onHold: boolean; match: string | null; successAt: string | null; graceEndsAt: string | null;
    evidenceDueAt: string | null; lastReopenedAt: string | null;
  };
  claims: Array<{ claimId: string; role: 'primary' | 'duplicate' | 'retracted'; occurredAt: string; retractedAt: string | null; receivedAt: string; origin: string }>;
  record: { source: string; externalId: string; versions: Array<{ versionId: number; effectiveAt: string; usedAsEvidence: boolean; data: Record<string, unknown> }> } | null;
  events: Array<{ at: string; asOf: string | null; kind: string; from: string | null; to: string | null; reason: string | null; runId: number | null; actor: string | null }>;
  ledger: Array<{ entryId: number; kind: string; period: string; amountMinor: number; unitPrice: string; currency: string; runId: number | null; reason: string | null }>;
  disputes: DisputeDetail[];
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/**
 * The outcome of a subject, among the outcomes that exist: never limited to the types of one
 * contract version. The subject is keyed both ways (as written and lowercased, after NFC and
 * trimming) and each found outcome is kept only when its type's case rule gives its key.
 */
export async function findOutcomeId(pool: Pool, args: { tenant: string; subject: string; type?: string }): Promise<number> {
  const history = await loadContractHistory(pool, args.tenant);
  const candidates = [...new Set([normaliseMatchKey(args.subject, false), normaliseMatchKey(args.subject, true)])];
  const { rows: found } = await pool.query<{ outcome_id: number; outcome_type: string; subject_key: string }>(
    `select outcome_id, outcome_type, subject_key from outcomes
      where tenant_id = $1 and subject_key = any($2::text[]) and ($3::text is null or outcome_type = $3)
      order by outcome_type, outcome_id`,
    [args.tenant, candidates, args.type ?? null],
  );
  const rows = found.filter((r) => r.subject_key === normaliseMatchKey(args.subject, caseRuleOf(history, r.outcome_type)));
  if (rows.length === 0) throw new ReconError('outcome_not_found', `no outcome for subject "${args.subject}"${args.type ? ` of type ${args.type}` : ''} of tenant ${args.tenant}; check the subject with \`recon outcome list --tenant ${args.tenant}\``);
  if (rows.length > 1) throw new ReconError('outcome_ambiguous', `subject "${args.subject}" has outcomes of several types (${rows.map((r) => r.outcome_type).join(', ')}); pass --type`);
  return rows[0].outcome_id;
}

/** Everything that answers "why was this billed (or not)?" for one outcome. */
export async function explainOutcome(pool: Pool, outcomeId: number): Promise<OutcomeStory> {
  const { rows: [o] } = await pool.query('select * from outcomes where outcome_id = $1', [outcomeId]);
  if (!o) throw new ReconError('outcome_not_found', `no outcome with id ${outcomeId}`);
  const { rows: claims } = await pool.query(
    `select c.claim_id, c.occurred_at, c.retracted_at, c.received_at, i.origin from claims c join imports i using (import_id)
      where c.outcome_id = $1 order by c.occurred_at, c.claim_id`,
    [outcomeId],
  );
  let record: OutcomeStory['record'] = null;
  if (o.record_id) {
    const { rows: [r] } = await pool.query('select source, external_id from records where record_id = $1', [o.record_id]);
    const { rows: versions } = await pool.query('select version_id, effective_at, data from record_versions where record_id = $1 order by effective_at, version_id', [o.record_id]);
    record = {
      source: r.source,
      externalId: r.external_id,
      versions: versions.map((v) => ({ versionId: v.version_id, effectiveAt: v.effective_at.toISOString(), usedAsEvidence: v.version_id === o.evidence_version_id, data: v.data })),
    };
  }
  const { rows: events } = await pool.query('select * from outcome_events where outcome_id = $1 order by event_id', [outcomeId]);
  const { rows: ledger } = await pool.query('select * from ledger_entries where outcome_id = $1 order by entry_id', [outcomeId]);
  return {
    outcome: {
      outcomeId: o.outcome_id, tenant: o.tenant_id, outcomeType: o.outcome_type, subjectRef: o.subject_ref, subjectKey: o.subject_key,
      state: o.state, rejectReason: o.reject_reason, onHold: o.on_hold, match: o.match_status, successAt: iso(o.success_at),
      graceEndsAt: iso(o.grace_ends_at), evidenceDueAt: iso(o.evidence_due_at), lastReopenedAt: iso(o.last_reopened_at),
    },
    claims: claims.map((c) => ({
      claimId: c.claim_id,
      role: c.retracted_at ? 'retracted' : c.claim_id === o.primary_claim_id ? 'primary' : 'duplicate',
      occurredAt: c.occurred_at.toISOString(),
      retractedAt: iso(c.retracted_at),
      receivedAt: c.received_at.toISOString(),
      origin: c.origin,
    })),
    record,
    events: events.map((e) => ({ at: e.created_at.toISOString(), asOf: iso(e.as_of), kind: e.kind, from: e.from_state, to: e.to_state, reason: e.reason, runId: e.run_id, actor: e.actor })),
    ledger: ledger.map((l) => ({ entryId: l.entry_id, kind: l.kind, period: l.period, amountMinor: l.amount_minor, unitPrice: l.unit_price, currency: l.currency, runId: l.run_id, reason: l.reason })),
    disputes: await disputesOfOutcome(pool, outcomeId),
  };
}

export async function listOutcomes(pool: Pool, args: { tenant: string; state?: string; limit: number }) {
  const { rows } = await pool.query(
    `select outcome_id, outcome_type, subject_ref, state, reject_reason, on_hold, success_at, grace_ends_at, evidence_due_at, claim_count
       from outcomes where tenant_id = $1 and ($2::text is null or state = $2) order by outcome_id limit $3`,
    [args.tenant, args.state ?? null, args.limit],
  );
  return rows.map((r) => ({
    outcomeId: r.outcome_id, outcomeType: r.outcome_type, subjectRef: r.subject_ref, state: r.state, rejectReason: r.reject_reason,
    onHold: r.on_hold, successAt: iso(r.success_at), graceEndsAt: iso(r.grace_ends_at), evidenceDueAt: iso(r.evidence_due_at), claims: r.claim_count,
  }));
}

export async function listQuarantine(pool: Pool, args: { tenant: string; limit: number }) {
  const { rows } = await pool.query(
    `select q.quarantine_id, q.source, q.origin, q.line, q.row_number, q.code, q.reason, q.raw, q.created_at, i.kind
       from quarantine q join imports i using (import_id) where q.tenant_id = $1 order by q.quarantine_id desc limit $2`,
    [args.tenant, args.limit],
  );
  return rows.map((r) => ({
    id: r.quarantine_id, kind: r.kind, source: r.source, file: r.origin, line: r.line, row: r.row_number, code: r.code, reason: r.reason,
    raw: r.raw.length > 200 ? `${r.raw.slice(0, 200)}…` : r.raw, at: r.created_at.toISOString(),
  }));
}
