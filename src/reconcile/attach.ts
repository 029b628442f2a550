import type { Pool, PoolClient } from '../db/pool';
import { inTransaction } from '../db/pool';
import type { ContractVersion } from '../domain/contract';
import type { ClaimView, LifecycleEvent, OutcomeDecision } from '../domain/lifecycle';
import { candidateVersions, decideOpenOutcome, insertDecisionEvents } from './evaluate';

export interface AttachResult {
  attached: number;
  outcomesCreated: number;
  /** Outcomes created already evaluated (fused attach only): evaluate of this attempt skips them. */
  outcomesEvaluated: number;
  done: boolean;
}

/**
 * What a fused attach needs to create outcomes already evaluated: the run's asOf and the contract
 * version evaluate uses for the run (versionForRun of the tenant's history at asOf).
 */
export interface FuseWith {
  asOf: Date;
  contract: ContractVersion;
}

interface ClaimRow {
  claim_id: string;
  outcome_type: string;
  subject_key: string;
  subject_ref: string;
  occurred_at: Date;
  retracted_at: Date | null;
}

/**
 * Gives every new claim its outcome: one per (tenant, outcome type, subject), created on first
 * sight. Works through at most `limit` claims per call so a huge night is taken in chunks.
 *
 * With `fuse`, claims are taken in subject order and a chunk is extended to the last claim of its
 * last subject, so a chunk holds every unattached claim of each subject it touches. An outcome the
 * chunk creates is then decided at once, from exactly what evaluate would read for it (no earlier
 * claims, a snapshot of a bare outcome), and inserted once with its decision and events. It carries
 * the run attempt in `attach_evaluated_attempt`, which tells evaluate of the same attempt to skip it.
 */
export async function attachClaimsToOutcomes(
  pool: Pool,
  tenant: string,
  runId: number,
  limit: number,
  fuse?: FuseWith,
): Promise<AttachResult> {
  if (fuse) return attachFused(pool, tenant, runId, limit, fuse);
  return inTransaction(pool, async (db) => {
    // Three statements joined through indexes, not one CTE chain: the planner cannot size a CTE's
    // RETURNING rows and would loop over them.
    const { rows: batch } = await db.query<{ claim_id: string }>(
      `select claim_id from claims where tenant_id = $1 and outcome_id is null order by claim_id limit $2 for update`,
      [tenant, limit],
    );
    if (batch.length === 0) return { attached: 0, outcomesCreated: 0, outcomesEvaluated: 0, done: true };
    // A plain FOR UPDATE (not SKIP LOCKED): a retry waits for an attempt still running rather than
    // skipping its claims.
    const ids = batch.map((b) => b.claim_id);
    const created = await db.query(
      `insert into outcomes (tenant_id, outcome_type, subject_key, subject_ref, created_run_id)
       select distinct on (outcome_type, subject_key) $1, outcome_type, subject_key, subject_ref, $3::bigint
         from claims where tenant_id = $1 and claim_id = any($2::text[])
        order by outcome_type, subject_key, occurred_at, claim_id
       on conflict (tenant_id, outcome_type, subject_key) do nothing`,
      [tenant, ids, runId],
    );
    const attached = await attachToOutcomes(db, tenant, ids);
    return {
      attached: attached.length,
      outcomesCreated: created.rowCount ?? 0,
      outcomesEvaluated: 0,
      done: !(await anyLeft(db, tenant, ids)),
    };
  });
}

/**
 * Each claim finds its outcome by one probe of the unique subject key index. A join let the planner
 * hash every outcome of the tenant for each chunk: the cost of the table, not the chunk. Every claim
 * of the chunk has its outcome by now (inserted before, or waited for on conflict).
 */
async function attachToOutcomes(db: PoolClient, tenant: string, ids: string[]): Promise<number[]> {
  const { rows } = await db.query<{ outcome_id: number }>(
    `update claims c set outcome_id = (select o.outcome_id from outcomes o
                                        where o.tenant_id = c.tenant_id and o.outcome_type = c.outcome_type and o.subject_key = c.subject_key)
      where c.tenant_id = $1 and c.claim_id = any($2::text[])
      returning c.outcome_id`,
    [tenant, ids],
  );
  return rows.map((r) => Number(r.outcome_id));
}

/**
 * Done only when no claim is left unattached: a retried attempt must not call it a night while an
 * earlier attempt still holds some claims.
 */
async function anyLeft(db: PoolClient, tenant: string, ids: string[]): Promise<boolean> {
  const {
    rows: [left],
  } = await db.query<{ more: boolean }>(
    'select exists (select 1 from claims where tenant_id = $1 and outcome_id is null and not (claim_id = any($2::text[]))) as more',
    [tenant, ids],
  );
  return left.more;
}

const CLAIM_COLUMNS = 'claim_id, outcome_type, subject_key, subject_ref, occurred_at, retracted_at';

/** A subject (outcome type, subject key): where the second half of a chunk starts. */
type Bound = [outcomeType: string, subjectKey: string];

/**
 * A chunk in two halves, each one transaction, written side by side: the database works on two
 * cores. Outcome ids still follow subject order whatever the timing: each half draws its ids before
 * it writes, the second after the first, and the second commits only after the first has committed
 * (a failed first half rolls the second back). So what is committed is always a prefix in subject
 * order, a retry draws higher ids for the rest, and post, which breaks ties in success_at by outcome
 * id (tier and period positions), gives a ledger that does not depend on timing. The halves never
 * wait on each other's rows: they hold disjoint claims and create disjoint subjects.
 */
async function attachFused(
  pool: Pool,
  tenant: string,
  runId: number,
  limit: number,
  fuse: FuseWith,
): Promise<AttachResult> {
  const half = Math.max(1, Math.ceil(limit / 2));
  let firstRead!: (last: Bound | null) => void;
  const secondFrom = new Promise<Bound | null>((resolve) => (firstRead = resolve));
  let firstDrew!: () => void;
  const firstIds = new Promise<void>((resolve) => (firstDrew = resolve));
  const first = attachFusedPart(pool, {
    tenant,
    runId,
    limit: half,
    fuse,
    after: null,
    idsAfter: null,
    drew: firstDrew,
    commitAfter: null,
    read: firstRead,
  });
  const second = (async (): Promise<AttachResult> => {
    const after = await secondFrom;
    if (!after) return { attached: 0, outcomesCreated: 0, outcomesEvaluated: 0, done: true };
    return attachFusedPart(pool, {
      tenant,
      runId,
      limit: half,
      fuse,
      after,
      idsAfter: firstIds,
      drew: () => undefined,
      commitAfter: first,
      read: () => undefined,
    });
  })();
  // A first half that fails lets the second go on (it then rolls back, or finds nothing to do).
  first.catch(() => {
    firstRead(null);
    firstDrew();
  });
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
  // Asked after both halves committed. Claims another attempt still holds count as left: a retried
  // attempt must not call it a night while an earlier one is still at work.
  const {
    rows: [left],
  } = await pool.query<{ more: boolean }>(
    'select exists (select 1 from claims where tenant_id = $1 and outcome_id is null) as more',
    [tenant],
  );
  return {
    attached: a.value.attached + b.value.attached,
    outcomesCreated: a.value.outcomesCreated + b.value.outcomesCreated,
    outcomesEvaluated: a.value.outcomesEvaluated + b.value.outcomesEvaluated,
    done: !left.more,
  };
}

/**
 * One half of a chunk in one transaction: up to `limit` unattached claims of subjects after
 * `after`, and the rest of its last subject. `read` hears the last subject once the claims are
 * locked (null when there are no more). Its outcome ids are drawn after `idsAfter` (the half before
 * has drawn its own), `drew` says they are; it commits only once `commitAfter` has committed.
 */
async function attachFusedPart(
  pool: Pool,
  args: {
    tenant: string;
    runId: number;
    limit: number;
    fuse: FuseWith;
    after: Bound | null;
    idsAfter: Promise<void> | null;
    drew: () => void;
    commitAfter: Promise<unknown> | null;
    read: (last: Bound | null) => void;
  },
): Promise<AttachResult> {
  const { tenant, runId, limit, after } = args;
  const { asOf, contract } = args.fuse;
  return inTransaction(pool, async (db): Promise<AttachResult> => {
    // Straight off claims_unattached_idx in its order, from `after` on. A plain FOR UPDATE (not
    // SKIP LOCKED): a retry waits for an attempt still running rather than skipping its claims.
    const { rows: batch } = await db.query<ClaimRow>(
      `select ${CLAIM_COLUMNS} from claims where tenant_id = $1 and outcome_id is null
         ${after ? 'and (outcome_type, subject_key) > ($3, $4)' : ''}
        order by outcome_type, subject_key, claim_id limit $2 for update`,
      after ? [tenant, limit, after[0], after[1]] : [tenant, limit],
    );
    if (batch.length === limit) {
      const last = batch[batch.length - 1];
      const { rows: rest } = await db.query<ClaimRow>(
        `select ${CLAIM_COLUMNS} from claims
          where tenant_id = $1 and outcome_id is null and outcome_type = $2 and subject_key = $3 and claim_id > $4
          order by claim_id for update`,
        [tenant, last.outcome_type, last.subject_key, last.claim_id],
      );
      batch.push(...rest);
      args.read([last.outcome_type, last.subject_key]);
    } else {
      args.read(null);
    }
    if (batch.length === 0) {
      args.drew();
      return { attached: 0, outcomesCreated: 0, outcomesEvaluated: 0, done: true };
    }
    const ids = batch.map((b) => b.claim_id);

    const subjects = new Map<string, ClaimRow[]>();
    for (const c of batch) {
      const k = `${c.outcome_type}\u0000${c.subject_key}`;
      const list = subjects.get(k);
      if (list) list.push(c);
      else subjects.set(k, [c]);
    }
    const { rows: existing } = await db.query<{ outcome_type: string; subject_key: string }>(
      `select o.outcome_type, o.subject_key from unnest($2::text[], $3::text[]) as s(outcome_type, subject_key)
         join outcomes o on o.tenant_id = $1 and o.outcome_type = s.outcome_type and o.subject_key = s.subject_key`,
      [
        tenant,
        [...subjects.values()].map((l) => l[0].outcome_type),
        [...subjects.values()].map((l) => l[0].subject_key),
      ],
    );
    for (const e of existing) subjects.delete(`${e.outcome_type}\u0000${e.subject_key}`);

    const fresh = [...subjects.values()].map((claims, i) => ({ key: i, claims, ...claims[0] }));
    const decisions = await decideNewOutcomes(db, { tenant, asOf, contract, fresh });
    // Ids in subject order: after the half before has drawn its own.
    if (args.idsAfter) await args.idsAfter;
    let outcomeIds: number[];
    try {
      outcomeIds = await drawOutcomeIds(db, fresh.length);
    } finally {
      args.drew();
    }
    const created = await insertOutcomes(db, { tenant, runId, asOf, fresh, decisions, outcomeIds });

    const events: Array<LifecycleEvent & { id: number }> = [];
    let evaluated = 0;
    for (const f of fresh) {
      const id = created.get(`${f.outcome_type}\u0000${f.subject_key}`);
      const d = decisions.get(f.key);
      if (id === undefined || !d) continue;
      evaluated++;
      for (const e of d.events) events.push({ id, ...e });
    }
    await insertDecisionEvents(db, runId, asOf, events);

    const attachedTo = await attachToOutcomes(db, tenant, ids);
    // An outcome this attempt's attach created already evaluated and that gains a claim now (one
    // imported mid-night, or taken by a concurrent attempt of this chunk) loses its mark, so that
    // evaluate decides it again with every claim.
    const createdIds = new Set(created.values());
    const gained = [...new Set(attachedTo.filter((id) => !createdIds.has(id)))];
    if (gained.length > 0) {
      await db.query(
        `update outcomes set attach_evaluated_attempt = null
          where outcome_id = any($1::bigint[]) and created_run_id = $2 and attach_evaluated_attempt is not null`,
        [gained, runId],
      );
    }
    // The half before commits first, or fails, and then so does this one: a committed prefix.
    if (args.commitAfter) await args.commitAfter;
    // `done` is decided by attachFused once both halves have committed.
    return { attached: attachedTo.length, outcomesCreated: created.size, outcomesEvaluated: evaluated, done: false };
  });
}

/**
 * Ids for a half's new outcomes, drawn in one statement before it writes: drawn by the insert, two
 * halves writing side by side would interleave them. A rolled-back half burns its ids, as a
 * rolled-back insert burns the values it drew.
 */
async function drawOutcomeIds(db: PoolClient, n: number): Promise<number[]> {
  if (n === 0) return [];
  const { rows } = await db.query<{ id: string }>(
    `select nextval('outcomes_outcome_id_seq')::text as id from generate_series(1, $1)`,
    [n],
  );
  return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

/**
 * What evaluate would decide for each new subject's outcome: its claims with occurred_at <= asOf,
 * the candidate record versions, and the snapshot of a bare outcome (no hold, no record, no
 * success). A type the contract does not name, or no claim visible yet, gives no decision: evaluate
 * would not take or would not change that outcome either.
 */
async function decideNewOutcomes(
  db: PoolClient,
  args: {
    tenant: string;
    asOf: Date;
    contract: ContractVersion;
    fresh: Array<{ key: number; outcome_type: string; subject_key: string; claims: ClaimRow[] }>;
  },
): Promise<Map<number, OutcomeDecision>> {
  const { asOf, contract } = args;
  const types = contract.body.outcomeTypes;
  const known = args.fresh.filter((f) => Object.hasOwn(types, f.outcome_type));
  const out = new Map<number, OutcomeDecision>();
  if (known.length === 0) return out;
  const versionsBy = await candidateVersions(db, {
    tenant: args.tenant,
    asOf,
    outcomes: known.map((f) => ({ outcome_id: f.key, outcome_type: f.outcome_type, subject_key: f.subject_key })),
    sourceOf: (type) => types[type].recordSource,
  });
  for (const f of known) {
    const claims = f.claims
      .filter((c) => c.occurred_at.getTime() <= asOf.getTime())
      .map((c): ClaimView => ({ claimId: c.claim_id, occurredAt: c.occurred_at, retractedAt: c.retracted_at }));
    const d = decideOpenOutcome({
      contract,
      asOf,
      outcomeType: f.outcome_type,
      subjectKey: f.subject_key,
      snapshot: { state: 'awaiting_evidence', onHold: false, recordId: null, successAt: null },
      claims,
      versions: versionsBy.get(f.key) ?? [],
    });
    if (d) out.set(f.key, d);
  }
  return out;
}

/**
 * Inserts the chunk's new outcomes in subject order, each with its decision (the columns
 * evaluate's update would write) or bare when there is none. Returns the ids of those this
 * statement created, by subject; a subject a concurrent attempt created first is not among them.
 */
async function insertOutcomes(
  db: PoolClient,
  args: {
    tenant: string;
    runId: number;
    asOf: Date;
    fresh: Array<{ key: number; outcome_type: string; subject_key: string; claims: ClaimRow[] }>;
    decisions: Map<number, OutcomeDecision>;
    /** One per subject, ascending, given in `fresh`'s (subject) order. */
    outcomeIds: number[];
  },
): Promise<Map<string, number>> {
  const created = new Map<string, number>();
  if (args.fresh.length === 0) return created;
  const { fresh, decisions } = args;
  const col = <T>(f: (d: OutcomeDecision) => T): Array<T | null> =>
    fresh.map((x) => {
      const d = decisions.get(x.key);
      return d ? f(d) : null;
    });
  // The subject's reference is its earliest claim's (occurred_at, then claim_id), as the floor's.
  const refOf = (claims: ClaimRow[]) =>
    claims.reduce((a, b) =>
      b.occurred_at.getTime() < a.occurred_at.getTime() ||
      (b.occurred_at.getTime() === a.occurred_at.getTime() && b.claim_id < a.claim_id)
        ? b
        : a,
    ).subject_ref;
  const { rows } = await db.query<{ outcome_id: number; outcome_type: string; subject_key: string }>(
    `insert into outcomes (outcome_id, tenant_id, outcome_type, subject_key, subject_ref, created_run_id, state, reject_reason,
                           primary_claim_id, claim_count, record_id, evidence_version_id, success_at, grace_ends_at,
                           evidence_due_at, last_reopened_at, match_status, confirmed_as_of, evaluated_as_of,
                           attach_evaluated_attempt)
     select u.outcome_id, $1, u.outcome_type, u.subject_key, u.subject_ref, $2::bigint, coalesce(u.state, 'awaiting_evidence'), u.reject_reason,
            u.primary_claim_id, coalesce(u.claim_count, 0), u.record_id, u.evidence_version_id, u.success_at, u.grace_ends_at,
            u.evidence_due_at, u.last_reopened_at, u.match_status,
            case when u.state = 'confirmed' then $3::timestamptz end,
            case when u.state is not null then $3::timestamptz end,
            case when u.state is not null then (select attempts from runs where run_id = $2) end
       from unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int[], $11::bigint[],
                   $12::bigint[], $13::timestamptz[], $14::timestamptz[], $15::timestamptz[], $16::timestamptz[], $17::text[],
                   $18::bigint[])
            as u(outcome_type, subject_key, subject_ref, state, reject_reason, primary_claim_id, claim_count, record_id,
                 evidence_version_id, success_at, grace_ends_at, evidence_due_at, last_reopened_at, match_status, outcome_id)
      order by u.outcome_id
     on conflict (tenant_id, outcome_type, subject_key) do nothing
     returning outcome_id, outcome_type, subject_key`,
    [
      args.tenant,
      args.runId,
      args.asOf,
      fresh.map((f) => f.outcome_type),
      fresh.map((f) => f.subject_key),
      fresh.map((f) => refOf(f.claims)),
      col((d) => d.state),
      col((d) => d.rejectReason),
      col((d) => d.primaryClaimId),
      col((d) => d.claimCount),
      col((d) => d.recordId),
      col((d) => d.evidenceVersionId),
      col((d) => d.successAt),
      col((d) => d.graceEndsAt),
      col((d) => d.evidenceDueAt),
      col((d) => d.lastReopenedAt),
      col((d) => d.match),
      args.outcomeIds,
    ],
  );
  for (const r of rows) created.set(`${r.outcome_type}\u0000${r.subject_key}`, Number(r.outcome_id));
  return created;
}
