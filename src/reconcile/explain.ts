import path from 'node:path';
import type { Pool } from '../db/pool';
import { loadContractVersions, latestContract } from '../db/contracts';
import { normaliseMatchKey } from '../domain/contract';
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

export async function findOutcomeId(pool: Pool, args: { tenant: string; subject: string; type?: string }): Promise<number> {
  const contract = latestContract(await loadContractVersions(pool, args.tenant)).body;
  const types = args.type ? [args.type] : Object.keys(contract.outcomeTypes);
  const keys = types.map((t) => normaliseMatchKey(args.subject, contract.outcomeTypes[t]?.matchKey.caseInsensitive ?? true));
  const { rows } = await pool.query<{ outcome_id: number; outcome_type: string }>(
    `select outcome_id, outcome_type from outcomes o join unnest($2::text[], $3::text[]) as k(t, key) on o.outcome_type = k.t and o.subject_key = k.key
      where o.tenant_id = $1`,
    [args.tenant, types, keys],
  );
  if (rows.length === 0) throw new ReconError('outcome_not_found', `no outcome for subject "${args.subject}" of tenant ${args.tenant}`);
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

export interface OutcomeFilter {
  tenant: string;
  state?: string;
  type?: string;
  /** The customer's id as typed; a trailing `*` makes it a prefix. */
  subject?: string;
  onHold?: boolean;
  /** Created or changed by recon (wall clock) at or after this time. */
  since?: Date;
  limit: number;
}

export interface Listing<T> {
  /** Rows that match the filters; `items` holds the first `limit` of them. */
  matching: number;
  items: T[];
}

/**
 * A tenant's outcomes by id, filtered, with how many match in all. Subjects are compared by their
 * match key, both ways it may have been normalised (the case rule is per outcome type), so `t-1`
 * finds `T-1` where the contract ignores case, as `outcome show` does.
 */
export async function listOutcomes(pool: Pool, args: OutcomeFilter) {
  const subject = args.subject?.endsWith('*') ? { prefix: args.subject.slice(0, -1) } : args.subject !== undefined ? { exact: args.subject } : {};
  const keys = (v: string | undefined) => (v === undefined ? null : [...new Set([normaliseMatchKey(v, true), normaliseMatchKey(v, false)])]);
  const { rows } = await pool.query(
    `select outcome_id, outcome_type, subject_ref, state, reject_reason, on_hold, success_at, grace_ends_at, evidence_due_at, claim_count,
            created_at, updated_at, count(*) over ()::int as matching
       from outcomes
      where tenant_id = $1
        and ($2::text is null or state = $2)
        and ($3::text is null or outcome_type = $3)
        and ($4::text[] is null or subject_key = any($4))
        and ($5::text[] is null or starts_with(subject_key, $5[1]) or starts_with(subject_key, $5[2]))
        and ($6::boolean is null or on_hold = $6)
        and ($7::timestamptz is null or updated_at >= $7)
      order by outcome_id limit $8`,
    [args.tenant, args.state ?? null, args.type ?? null, keys(subject.exact), keys(subject.prefix), args.onHold ?? null, args.since ?? null, args.limit],
  );
  return {
    // The limit is at least 1, so no rows means none match.
    matching: rows[0]?.matching ?? 0,
    items: rows.map((r) => ({
      outcomeId: Number(r.outcome_id), outcomeType: r.outcome_type, subjectRef: r.subject_ref, state: r.state, rejectReason: r.reject_reason,
      onHold: r.on_hold, successAt: iso(r.success_at), graceEndsAt: iso(r.grace_ends_at), evidenceDueAt: iso(r.evidence_due_at), claims: r.claim_count,
      createdAt: iso(r.created_at), changedAt: iso(r.updated_at),
    })),
  };
}

export const QUARANTINE_KINDS = ['claims', 'records', 'disputes'] as const;

export interface QuarantineFilter {
  tenant: string;
  /** The file (or page) the rows came in, as `quarantine list` shows it; a path finds its file name too. */
  file?: string;
  code?: string;
  kind?: (typeof QUARANTINE_KINDS)[number];
  limit: number;
}

/**
 * Refused rows of a tenant, newest first, filtered, with how many match in all. Quarantine has no
 * index by tenant; its rows are reached through the tenant's imports (the imports' unique key
 * starts with tenant and kind) and quarantine's own (import_id, row_number) key.
 */
export async function listQuarantine(pool: Pool, args: QuarantineFilter) {
  const { rows } = await pool.query(
    `select q.quarantine_id, q.source, q.origin, q.line, q.row_number, q.code, q.reason, q.raw, q.created_at, i.kind,
            count(*) over ()::int as matching
       from quarantine q join imports i using (import_id)
      where i.tenant_id = $1 and q.tenant_id = $1
        and ($2::text[] is null or q.origin = any($2))
        and ($3::text is null or q.code = $3)
        and ($4::text is null or i.kind = $4)
      order by q.quarantine_id desc limit $5`,
    [args.tenant, args.file === undefined ? null : [args.file, path.basename(args.file)], args.code ?? null, args.kind ?? null, args.limit],
  );
  return {
    matching: rows[0]?.matching ?? 0,
    items: rows.map((r) => ({
      id: Number(r.quarantine_id), kind: r.kind, source: r.source, file: r.origin, line: r.line, row: r.row_number, code: r.code, reason: r.reason,
      raw: r.raw.length > 200 ? `${r.raw.slice(0, 200)}…` : r.raw, at: r.created_at.toISOString(),
    })),
  };
}
