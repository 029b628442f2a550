import type { Pool, PoolClient } from '../db/pool';
import { inTransaction } from '../db/pool';
import type { ContractVersion } from '../domain/contract';
import {
  decideOutcome,
  type ClaimView,
  type LifecycleEvent,
  type OutcomeDecision,
  type OutcomeSnapshot,
  type OutcomeState,
  type VersionView,
} from '../domain/lifecycle';

export interface ChunkResult {
  processed: number;
  changed: number;
  lastOutcomeId: number;
  done: boolean;
}

interface OutcomeRow {
  outcome_id: number;
  outcome_type: string;
  subject_key: string;
  state: OutcomeState;
  on_hold: boolean;
  record_id: number | null;
  success_at: Date | null;
}

/**
 * Evaluates one chunk of open outcomes (by id range) as of `asOf`: three set-based reads, a pure
 * decision per outcome, and one set-based write of the changes with their events.
 */
export async function evaluateChunk(
  pool: Pool,
  args: {
    tenant: string;
    runId: number;
    asOf: Date;
    contract: ContractVersion;
    afterOutcomeId: number;
    limit: number;
    slices?: number;
  },
): Promise<ChunkResult> {
  const { tenant, asOf, contract } = args;
  const types = Object.keys(contract.body.outcomeTypes);
  // Outcomes this attempt's attach created already evaluated (attach_evaluated_attempt, see
  // attach.ts) are skipped: nothing has changed for them since. Attach clears the mark of one that
  // gains a claim later in the run; a rerun is another attempt and evaluates them as it does all.
  const { rows: outcomes } = await pool.query<OutcomeRow>(
    `select outcome_id, outcome_type, subject_key, state, on_hold, record_id, success_at from outcomes
      where tenant_id = $1 and outcome_id > $2 and state in ('awaiting_evidence', 'in_grace', 'confirmed')
        and outcome_type = any($4::text[])
        and (evaluated_as_of is null or evaluated_as_of <= $5)
        and (attach_evaluated_attempt is null or created_run_id is distinct from $6
             or attach_evaluated_attempt <> (select attempts from runs where run_id = $6))
      order by outcome_id limit $3`,
    [tenant, args.afterOutcomeId, args.limit, types, asOf, args.runId],
  );
  if (outcomes.length === 0) return { processed: 0, changed: 0, lastOutcomeId: args.afterOutcomeId, done: true };
  // Slices are disjoint and each is written in its own transaction, so they run side by side: the
  // database works on as many cores as there are slices while Node decides the next one.
  const slices = Math.max(1, Math.min(args.slices ?? 1, outcomes.length));
  const size = Math.ceil(outcomes.length / slices);
  const parts = Array.from({ length: slices }, (_, i) => outcomes.slice(i * size, (i + 1) * size)).filter(
    (p) => p.length > 0,
  );
  const changed = (await Promise.all(parts.map((part) => evaluateSlice(pool, { ...args, outcomes: part })))).reduce(
    (s, n) => s + n,
    0,
  );
  const lastOutcomeId = outcomes[outcomes.length - 1].outcome_id;
  return { processed: outcomes.length, changed, lastOutcomeId, done: outcomes.length < args.limit };
}

/** Reads, decides and writes one slice of a chunk; returns how many outcomes changed state. */
async function evaluateSlice(
  pool: Pool,
  args: { tenant: string; runId: number; asOf: Date; contract: ContractVersion; outcomes: OutcomeRow[] },
): Promise<number> {
  const { tenant, asOf, contract, outcomes } = args;
  const ids = outcomes.map((o) => o.outcome_id);
  const { rows: claimRows } = await pool.query<{
    outcome_id: number;
    claim_id: string;
    occurred_at: Date;
    retracted_at: Date | null;
  }>(
    'select outcome_id, claim_id, occurred_at, retracted_at from claims where outcome_id = any($1::bigint[]) and occurred_at <= $2',
    [ids, asOf],
  );
  const versionsBy = await candidateVersions(pool, {
    tenant,
    asOf,
    outcomes,
    sourceOf: (type) => contract.body.outcomeTypes[type].recordSource,
  });
  const claimsBy = groupBy(
    claimRows,
    (r) => r.outcome_id,
    (r): ClaimView => ({ claimId: r.claim_id, occurredAt: r.occurred_at, retractedAt: r.retracted_at }),
  );

  const changes: Array<{ id: number; d: OutcomeDecision }> = [];
  for (const o of outcomes) {
    const d = decideOpenOutcome({
      contract,
      asOf,
      outcomeType: o.outcome_type,
      subjectKey: o.subject_key,
      snapshot: { state: o.state, onHold: o.on_hold, recordId: o.record_id, successAt: o.success_at },
      claims: claimsBy.get(o.outcome_id) ?? [],
      versions: versionsBy.get(o.outcome_id) ?? [],
    });
    // Unchanged outcomes are written too, so derived fields (duplicates, due dates) stay current.
    if (d) changes.push({ id: o.outcome_id, d });
  }
  await writeDecisions(pool, args.runId, asOf, changes);
  return changes.filter((c) => c.d.events.length > 0).length;
}

/**
 * The decision of one open outcome under the run's contract version: the one place that turns the
 * contract's terms into the lifecycle's rules, so attach (for outcomes it creates) and evaluate
 * decide from the same inputs alike. `claims` are the outcome's claims with occurred_at <= asOf.
 */
export function decideOpenOutcome(input: {
  contract: ContractVersion;
  asOf: Date;
  outcomeType: string;
  subjectKey: string;
  snapshot: OutcomeSnapshot;
  claims: ClaimView[];
  versions: VersionView[];
}): OutcomeDecision | null {
  const terms = input.contract.body.outcomeTypes[input.outcomeType];
  return decideOutcome({
    snapshot: input.snapshot,
    claims: input.claims,
    versions: input.versions,
    subjectKey: input.subjectKey,
    rules: {
      success: terms.success,
      successTimeField: terms.successTimeField,
      graceWindow: terms.graceWindow,
      evidenceDeadline: terms.evidenceDeadline,
      timeZone: input.contract.body.timezone,
    },
    asOf: input.asOf,
  });
}

/**
 * Every version (as of `asOf`) of every record that could match an outcome of the chunk: a record
 * of the outcome type's source with some version keyed by the outcome's subject. Looked up by the
 * chunk's keys through the match-key index, so the cost is the chunk's, not the table's. The keyed
 * record ids go in as an array so records are fetched by primary key: as a semi-join the planner
 * hashed them against a scan of every record of the tenant, once per slice.
 */
export async function candidateVersions(
  db: Pool | PoolClient,
  args: {
    tenant: string;
    asOf: Date;
    outcomes: Array<Pick<OutcomeRow, 'outcome_id' | 'outcome_type' | 'subject_key'>>;
    sourceOf: (outcomeType: string) => string;
  },
): Promise<Map<number, VersionView[]>> {
  const keys = [...new Set(args.outcomes.map((o) => o.subject_key))];
  const { rows } = await db.query<{
    version_id: number;
    record_id: number;
    effective_at: Date;
    match_key: string;
    data: Record<string, unknown>;
    source: string;
  }>(
    `select v.version_id, v.record_id, v.effective_at, v.match_key, v.data, r.source
       from records r join record_versions v on v.record_id = r.record_id and v.effective_at <= $3
      where r.tenant_id = $2
        and r.record_id = any (array(select k.record_id from record_versions k where k.match_key = any($1::text[]) and k.effective_at <= $3))
      order by v.record_id, v.version_id`,
    [keys, args.tenant, args.asOf],
  );
  const versionsOf = groupBy(
    rows,
    (r) => r.record_id,
    (r) => r,
  );
  // A record is a candidate for an outcome when one of its versions carries the outcome's key.
  const recordsOf = new Map<string, number[]>();
  for (const [recordId, versions] of versionsOf) {
    const source = versions[0].source;
    for (const key of new Set(versions.map((v) => v.match_key))) {
      const k = `${source}\u0000${key}`;
      const list = recordsOf.get(k) ?? [];
      list.push(recordId);
      recordsOf.set(k, list);
    }
  }
  const byOutcome = new Map<number, VersionView[]>();
  for (const o of args.outcomes) {
    const recordIds = recordsOf.get(`${args.sourceOf(o.outcome_type)}\u0000${o.subject_key}`);
    if (!recordIds) continue;
    byOutcome.set(
      o.outcome_id,
      recordIds.flatMap((id) =>
        versionsOf.get(id)!.map((v): VersionView => ({
          versionId: v.version_id,
          recordId: v.record_id,
          effectiveAt: v.effective_at,
          matchKey: v.match_key,
          data: v.data,
        })),
      ),
    );
  }
  return byOutcome;
}

function groupBy<R, V>(rows: R[], key: (r: R) => number, map: (r: R) => V): Map<number, V[]> {
  const m = new Map<number, V[]>();
  for (const r of rows) {
    const list = m.get(key(r)) ?? [];
    list.push(map(r));
    m.set(key(r), list);
  }
  return m;
}

async function writeDecisions(
  pool: Pool,
  runId: number,
  asOf: Date,
  changes: Array<{ id: number; d: OutcomeDecision }>,
): Promise<void> {
  if (changes.length === 0) return;
  const events = changes.flatMap(({ id, d }) => d.events.map((e) => ({ id, ...e })));
  await inTransaction(pool, async (db) => {
    // The state guard makes a retried chunk harmless: only outcomes still open are touched. The
    // `= any` lets the planner fetch the chunk's rows by key instead of hashing the whole table.
    await db.query(
      `update outcomes o set state = u.state, reject_reason = u.reject_reason, primary_claim_id = u.primary_claim_id,
              claim_count = u.claim_count, record_id = coalesce(u.record_id, o.record_id), evidence_version_id = u.evidence_version_id,
              success_at = u.success_at, grace_ends_at = u.grace_ends_at, evidence_due_at = u.evidence_due_at,
              last_reopened_at = u.last_reopened_at, match_status = u.match_status,
              confirmed_as_of = case when u.state = 'confirmed' then $1::timestamptz else o.confirmed_as_of end,
              evaluated_as_of = $1, updated_at = now()
         from unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[], $8::bigint[],
                     $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[], $13::text[])
              as u(outcome_id, state, reject_reason, primary_claim_id, claim_count, record_id, evidence_version_id,
                   success_at, grace_ends_at, evidence_due_at, last_reopened_at, match_status)
        where o.outcome_id = u.outcome_id and o.outcome_id = any($2::bigint[]) and o.state in ('awaiting_evidence', 'in_grace', 'confirmed')
          and (o.evaluated_as_of is null or o.evaluated_as_of <= $1)`,
      [
        asOf,
        changes.map((c) => c.id),
        changes.map((c) => c.d.state),
        changes.map((c) => c.d.rejectReason),
        changes.map((c) => c.d.primaryClaimId),
        changes.map((c) => c.d.claimCount),
        changes.map((c) => c.d.recordId),
        changes.map((c) => c.d.evidenceVersionId),
        changes.map((c) => c.d.successAt),
        changes.map((c) => c.d.graceEndsAt),
        changes.map((c) => c.d.evidenceDueAt),
        changes.map((c) => c.d.lastReopenedAt),
        changes.map((c) => c.d.match),
      ],
    );
    await insertDecisionEvents(db, runId, asOf, events);
  });
}

/** The events of decided outcomes; the run's unique key makes a retried chunk write none twice. */
export async function insertDecisionEvents(
  db: PoolClient,
  runId: number,
  asOf: Date,
  events: Array<LifecycleEvent & { id: number }>,
): Promise<void> {
  if (events.length === 0) return;
  await db.query(
    `insert into outcome_events (outcome_id, run_id, as_of, kind, from_state, to_state, reason, details)
     select e.outcome_id, $1, $2, e.kind, e.from_state, e.to_state, e.reason, e.details
       from unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[])
            as e(outcome_id, kind, from_state, to_state, reason, details)
     on conflict do nothing`,
    [
      runId,
      asOf,
      events.map((e) => e.id),
      events.map((e) => e.kind),
      events.map((e) => e.fromState),
      events.map((e) => e.toState),
      events.map((e) => e.reason),
      events.map((e) => JSON.stringify(e.details)),
    ],
  );
}
