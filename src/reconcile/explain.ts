import path from 'node:path';
import type { Pool } from '../db/pool';
import { loadContractHistory } from '../db/contracts';
import { normaliseMatchKey } from '../domain/contract';
import { caseRuleOf } from '../domain/contract-history';
import { ReconError } from '../domain/errors';
import type { OutcomeEventRow, OutcomeRow } from '../db/rows';
import { disputesOfOutcome, type DisputeDetail } from '../disputes/views';
import { linesOfOutcome } from '../ledger';
import { deliveriesOfLines } from '../sinks/status';

export interface OutcomeStory {
  outcome: {
    outcomeId: number;
    tenant: string;
    outcomeType: string;
    subjectRef: string;
    subjectKey: string;
    state: string;
    rejectReason: string | null;
    onHold: boolean;
    match: string | null;
    successAt: string | null;
    graceEndsAt: string | null;
    evidenceDueAt: string | null;
    lastReopenedAt: string | null;
  };
  claims: Array<{
    claimId: string;
    role: 'primary' | 'duplicate' | 'retracted';
    occurredAt: string;
    retractedAt: string | null;
    receivedAt: string;
    origin: string;
  }>;
  record: {
    source: string;
    externalId: string;
    versions: Array<{ versionId: number; effectiveAt: string; usedAsEvidence: boolean; data: Record<string, unknown> }>;
  } | null;
  events: Array<{
    at: string;
    asOf: string | null;
    kind: string;
    from: string | null;
    to: string | null;
    reason: string | null;
    runId: number | null;
    actor: string | null;
  }>;
  ledger: Array<{
    entryId: number;
    kind: string;
    period: string;
    amountMinor: number;
    unitPrice: string;
    currency: string;
    runId: number | null;
    reason: string | null;
    /** The line's delivery to each billing sink it is owed to (none when the contract names no sink). */
    deliveries: Array<{
      sink: string;
      state: string;
      batchId: number | null;
      batchKey: string | null;
      deliveredAt: string | null;
      lastError: string | null;
    }>;
  }>;
  disputes: DisputeDetail[];
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

type StoryOutcome = Pick<
  OutcomeRow,
  | 'outcome_id'
  | 'tenant_id'
  | 'outcome_type'
  | 'subject_ref'
  | 'subject_key'
  | 'state'
  | 'reject_reason'
  | 'on_hold'
  | 'match_status'
  | 'primary_claim_id'
  | 'record_id'
  | 'evidence_version_id'
  | 'success_at'
  | 'grace_ends_at'
  | 'evidence_due_at'
  | 'last_reopened_at'
>;
type StoryEvent = Pick<
  OutcomeEventRow,
  'created_at' | 'as_of' | 'kind' | 'from_state' | 'to_state' | 'reason' | 'run_id' | 'actor'
>;

/**
 * The outcome of a subject, among the outcomes that exist: never limited to the types of one
 * contract version. The subject is keyed both ways (as written and lowercased, after NFC and
 * trimming) and each found outcome is kept only when its type's case rule gives its key.
 */
export async function findOutcomeId(
  pool: Pool,
  args: { tenant: string; subject: string; type?: string },
): Promise<number> {
  const history = await loadContractHistory(pool, args.tenant);
  const candidates = [...new Set([normaliseMatchKey(args.subject, false), normaliseMatchKey(args.subject, true)])];
  const { rows: found } = await pool.query<{ outcome_id: number; outcome_type: string; subject_key: string }>(
    `select outcome_id, outcome_type, subject_key from outcomes
      where tenant_id = $1 and subject_key = any($2::text[]) and ($3::text is null or outcome_type = $3)
      order by outcome_type, outcome_id`,
    [args.tenant, candidates, args.type ?? null],
  );
  const rows = found.filter(
    (r) => r.subject_key === normaliseMatchKey(args.subject, caseRuleOf(history, r.outcome_type)),
  );
  if (rows.length === 0)
    throw new ReconError(
      'outcome_not_found',
      `no outcome for subject "${args.subject}"${args.type ? ` of type ${args.type}` : ''} of tenant ${args.tenant}; check the subject with \`recon outcome list --tenant ${args.tenant}\``,
    );
  if (rows.length > 1)
    throw new ReconError(
      'outcome_ambiguous',
      `subject "${args.subject}" has outcomes of several types (${rows.map((r) => r.outcome_type).join(', ')}); pass --type`,
    );
  return rows[0].outcome_id;
}

/** Everything that answers "why was this billed (or not)?" for one outcome. */
export async function explainOutcome(pool: Pool, outcomeId: number): Promise<OutcomeStory> {
  const {
    rows: [o],
  } = await pool.query<StoryOutcome>(
    `select outcome_id, tenant_id, outcome_type, subject_ref, subject_key, state, reject_reason, on_hold, match_status, primary_claim_id,
            record_id, evidence_version_id, success_at, grace_ends_at, evidence_due_at, last_reopened_at
       from outcomes where outcome_id = $1`,
    [outcomeId],
  );
  if (!o) throw new ReconError('outcome_not_found', `no outcome with id ${outcomeId}`);
  const { rows: claims } = await pool.query<{
    claim_id: string;
    occurred_at: Date;
    retracted_at: Date | null;
    received_at: Date;
    origin: string;
  }>(
    `select c.claim_id, c.occurred_at, c.retracted_at, c.received_at, i.origin from claims c join imports i using (import_id)
      where c.outcome_id = $1 order by c.occurred_at, c.claim_id`,
    [outcomeId],
  );
  let record: OutcomeStory['record'] = null;
  if (o.record_id) {
    const {
      rows: [r],
    } = await pool.query<{ source: string; external_id: string }>(
      'select source, external_id from records where record_id = $1',
      [o.record_id],
    );
    const { rows: versions } = await pool.query<{
      version_id: number;
      effective_at: Date;
      data: Record<string, unknown>;
    }>(
      'select version_id, effective_at, data from record_versions where record_id = $1 order by effective_at, version_id',
      [o.record_id],
    );
    record = {
      source: r.source,
      externalId: r.external_id,
      versions: versions.map((v) => ({
        versionId: v.version_id,
        effectiveAt: v.effective_at.toISOString(),
        usedAsEvidence: v.version_id === o.evidence_version_id,
        data: v.data,
      })),
    };
  }
  const { rows: events } = await pool.query<StoryEvent>(
    'select created_at, as_of, kind, from_state, to_state, reason, run_id, actor from outcome_events where outcome_id = $1 order by event_id',
    [outcomeId],
  );
  const ledger = await linesOfOutcome(pool, outcomeId);
  const deliveries = await deliveriesOfLines(
    pool,
    ledger.map((l) => l.entry_id),
  );
  return {
    outcome: {
      outcomeId: o.outcome_id,
      tenant: o.tenant_id,
      outcomeType: o.outcome_type,
      subjectRef: o.subject_ref,
      subjectKey: o.subject_key,
      state: o.state,
      rejectReason: o.reject_reason,
      onHold: o.on_hold,
      match: o.match_status,
      successAt: iso(o.success_at),
      graceEndsAt: iso(o.grace_ends_at),
      evidenceDueAt: iso(o.evidence_due_at),
      lastReopenedAt: iso(o.last_reopened_at),
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
    events: events.map((e) => ({
      at: e.created_at.toISOString(),
      asOf: iso(e.as_of),
      kind: e.kind,
      from: e.from_state,
      to: e.to_state,
      reason: e.reason,
      runId: e.run_id,
      actor: e.actor,
    })),
    ledger: ledger.map((l) => ({
      entryId: l.entry_id,
      kind: l.kind,
      period: l.period,
      amountMinor: l.amount_minor,
      unitPrice: l.unit_price,
      currency: l.currency,
      runId: l.run_id,
      reason: l.reason,
      deliveries: deliveries
        .filter((d) => d.entryId === l.entry_id)
        .map((d) => ({
          sink: d.sink,
          state: d.state,
          batchId: d.batchId,
          batchKey: d.batchKey,
          deliveredAt: iso(d.deliveredAt),
          lastError: d.lastError,
        })),
    })),
    disputes: await disputesOfOutcome(pool, outcomeId),
  };
}

/** One filter of a listing: its SQL condition, given the placeholder of its value, and the value. */
export type SqlFilter = [condition: (placeholder: string) => string, value: unknown];

/**
 * The WHERE of a listing from only the filters it was given. No "$n is null or ..." for filters left
 * out: the planner then sees plain predicates it can match to indexes (a state filter to the open
 * outcomes' partial index), and the count does not pay for filters nobody asked for.
 */
export function sqlFilters(parts: Array<SqlFilter | false | undefined>): { where: string; params: unknown[] } {
  const params: unknown[] = [];
  const conditions: string[] = [];
  for (const part of parts) {
    if (!part) continue;
    params.push(part[1]);
    conditions.push(part[0](`$${params.length}`));
  }
  return { where: conditions.join(' and ') || 'true', params };
}

/**
 * A page of a listing and how many rows match in all, side by side: the page stops after `limit`
 * rows in its index order; only the count reads every match, and it reads no more than it counts.
 */
export async function pageAndCount<R>(
  pool: Pool,
  page: { sql: (where: string, limit: string) => string; count: (where: string) => string },
  filters: ReturnType<typeof sqlFilters>,
  limit: number,
) {
  const [rows, count] = await Promise.all([
    pool.query(page.sql(filters.where, `$${filters.params.length + 1}`), [...filters.params, limit]),
    pool.query<{ n: number }>(page.count(filters.where), filters.params),
  ]);
  return { matching: count.rows[0].n, rows: rows.rows as R[] };
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

/**
 * A tenant's outcomes by id, filtered, with how many match in all. Subjects are compared by their
 * match key, both ways it may have been normalised (the case rule is per outcome type), so `t-1`
 * finds `T-1` where the contract ignores case, as `outcome show` does. `--since` reads updated_at,
 * which every change of an outcome sets (and which starts at its creation).
 */
export async function listOutcomes(pool: Pool, args: OutcomeFilter) {
  const prefix = args.subject?.endsWith('*') ? args.subject.slice(0, -1) : undefined;
  const keys = (v: string) => [...new Set([normaliseMatchKey(v, true), normaliseMatchKey(v, false)])];
  const f = sqlFilters([
    [(p) => `tenant_id = ${p}`, args.tenant],
    args.state !== undefined && [(p) => `state = ${p}`, args.state],
    args.type !== undefined && [(p) => `outcome_type = ${p}`, args.type],
    args.subject !== undefined &&
      prefix === undefined && [(p) => `subject_key = any(${p}::text[])`, keys(args.subject)],
    prefix !== undefined && [
      (p) => `subject_key like any(${p}::text[])`,
      keys(prefix).map((k) => `${k.replace(/[\\%_]/g, '\\$&')}%`),
    ],
    args.onHold !== undefined && [(p) => `on_hold = ${p}`, args.onHold],
    args.since !== undefined && [(p) => `updated_at >= ${p}`, args.since],
  ]);
  const r = await pageAndCount<
    Pick<
      OutcomeRow,
      | 'outcome_id'
      | 'outcome_type'
      | 'subject_ref'
      | 'state'
      | 'reject_reason'
      | 'on_hold'
      | 'success_at'
      | 'grace_ends_at'
      | 'evidence_due_at'
      | 'claim_count'
      | 'created_at'
      | 'updated_at'
    >
  >(
    pool,
    {
      sql: (where, limit) =>
        `select outcome_id, outcome_type, subject_ref, state, reject_reason, on_hold, success_at, grace_ends_at, evidence_due_at, claim_count, created_at, updated_at
           from outcomes where ${where} order by outcome_id limit ${limit}`,
      count: (where) => `select count(*)::int as n from outcomes where ${where}`,
    },
    f,
    args.limit,
  );
  return {
    matching: r.matching,
    items: r.rows.map((o) => ({
      outcomeId: Number(o.outcome_id),
      outcomeType: o.outcome_type,
      subjectRef: o.subject_ref,
      state: o.state,
      rejectReason: o.reject_reason,
      onHold: o.on_hold,
      successAt: iso(o.success_at),
      graceEndsAt: iso(o.grace_ends_at),
      evidenceDueAt: iso(o.evidence_due_at),
      claims: o.claim_count,
      createdAt: iso(o.created_at),
      changedAt: iso(o.updated_at),
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
  const f = sqlFilters([
    [(p) => `i.tenant_id = ${p} and q.tenant_id = ${p}`, args.tenant],
    args.file !== undefined && [(p) => `q.origin = any(${p}::text[])`, [args.file, path.basename(args.file)]],
    args.code !== undefined && [(p) => `q.code = ${p}`, args.code],
    args.kind !== undefined && [(p) => `i.kind = ${p}`, args.kind],
  ]);
  const r = await pageAndCount<{
    quarantine_id: number;
    source: string;
    origin: string;
    line: number;
    row_number: number;
    code: string;
    reason: string;
    raw: string;
    created_at: Date;
    kind: (typeof QUARANTINE_KINDS)[number];
  }>(
    pool,
    {
      sql: (where, limit) =>
        `select q.quarantine_id, q.source, q.origin, q.line, q.row_number, q.code, q.reason, q.raw, q.created_at, i.kind
           from quarantine q join imports i using (import_id) where ${where} order by q.quarantine_id desc limit ${limit}`,
      count: (where) => `select count(*)::int as n from quarantine q join imports i using (import_id) where ${where}`,
    },
    f,
    args.limit,
  );
  return {
    matching: r.matching,
    items: r.rows.map((q) => ({
      id: Number(q.quarantine_id),
      kind: q.kind,
      source: q.source,
      file: q.origin,
      line: q.line,
      row: q.row_number,
      code: q.code,
      reason: q.reason,
      raw: q.raw.length > 200 ? `${q.raw.slice(0, 200)}…` : q.raw,
      at: q.created_at.toISOString(),
    })),
  };
}
