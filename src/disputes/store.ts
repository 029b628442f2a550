import type { Pool, PoolClient } from '../db/pool';
import { inTransaction } from '../db/pool';
import { loadContractHistory } from '../db/contracts';
import { termsForDispute } from '../domain/contract-history';
import {
  decideDisputeAcceptance,
  disputeDeadlines,
  disputeEffect,
  type Decision,
  type DisputeEffect,
} from '../domain/disputes';
import { ReconError } from '../domain/errors';
import type { DisputeRow, OutcomeRow } from '../db/rows';
import { chargeOfOutcome, creditOfDispute } from '../ledger';
import { creditCharge } from '../reconcile/credits';

export interface OpenedDispute {
  disputeId: number;
  attached: boolean;
  outcomeId: number;
  outcomeState: string;
  slaAt: string;
  autoResolveAt: string;
  defaultDecision: Decision;
}

export interface ResolvedDispute {
  disputeId: number;
  decision: Decision;
  effect: DisputeEffect;
  resolvedBy: string;
  resolvedAt: string;
  creditEntryId: number | null;
}

type DisputedOutcome = Pick<OutcomeRow, 'outcome_id' | 'tenant_id' | 'outcome_type' | 'subject_ref' | 'state'>;

/** The columns of a dispute that deciding and answering a resolution read. */
const DISPUTE_COLUMNS = 'dispute_id, outcome_id, status, resolved_by, resolved_at, effect';
type DisputeState = Pick<DisputeRow, 'dispute_id' | 'outcome_id' | 'status' | 'resolved_by' | 'resolved_at' | 'effect'>;

/** The dispute terms for an outcome that exists: contract-history.ts decides which version's. */
async function termsFor(pool: Pool, tenant: string, outcomeType: string, at: Date) {
  const { terms, timeZone } = termsForDispute(await loadContractHistory(pool, tenant), outcomeType, at);
  return { terms, timeZone };
}

async function recordEvent(
  db: PoolClient,
  e: { disputeId: number; kind: string; actor: string; note: string | null; at: Date; requestId: string },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `insert into dispute_events (dispute_id, kind, actor, note, at, request_id) values ($1, $2, $3, $4, $5, $6)
     on conflict (dispute_id, request_id) do nothing`,
    [e.disputeId, e.kind, e.actor, e.note, e.at, e.requestId],
  );
  return (rowCount ?? 0) > 0;
}

async function outcomeEvent(
  db: PoolClient,
  e: {
    outcomeId: number;
    kind: string;
    from: string;
    to: string;
    actor: string;
    at: Date;
    reason: string;
    details: Record<string, unknown>;
  },
): Promise<void> {
  await db.query(
    `insert into outcome_events (outcome_id, actor, as_of, kind, from_state, to_state, reason, details) values ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [e.outcomeId, e.actor, e.at, e.kind, e.from, e.to, e.reason, JSON.stringify(e.details)],
  );
}

/**
 * Opens a dispute and puts the outcome on hold, or attaches to the dispute already open on it.
 * Idempotent per request id, so a retried activity answers the same.
 */
export async function openDispute(
  pool: Pool,
  args: {
    tenant: string;
    outcomeId: number;
    workflowId: string;
    actor: string;
    reason: string;
    channel: 'support' | 'customer_import';
    requestId: string;
    at: Date;
  },
): Promise<OpenedDispute> {
  const {
    rows: [peek],
  } = await pool.query<DisputedOutcome>(
    'select outcome_id, tenant_id, outcome_type, subject_ref, state from outcomes where outcome_id = $1 and tenant_id = $2',
    [args.outcomeId, args.tenant],
  );
  if (!peek) throw new ReconError('outcome_not_found', `no outcome ${args.outcomeId} for tenant ${args.tenant}`);
  const { terms, timeZone } = await termsFor(pool, args.tenant, peek.outcome_type, args.at);
  return inTransaction(pool, async (db) => {
    // The row lock serialises two opens racing on one outcome.
    const {
      rows: [o],
    } = await db.query<DisputedOutcome>(
      'select outcome_id, tenant_id, outcome_type, subject_ref, state from outcomes where outcome_id = $1 for update',
      [args.outcomeId],
    );
    const {
      rows: [open],
    } = await db.query<
      Pick<DisputeRow, 'dispute_id' | 'sla_at' | 'auto_resolve_at' | 'outcome_state_at_open'> & { mine: boolean }
    >(
      `select d.dispute_id, d.sla_at, d.auto_resolve_at, d.outcome_state_at_open,
              exists (select 1 from dispute_events e where e.dispute_id = d.dispute_id and e.request_id = $2 and e.kind = 'opened') as mine
         from disputes d where d.outcome_id = $1 and d.status = 'open'`,
      [args.outcomeId, args.requestId],
    );
    if (open) {
      if (!open.mine)
        await recordEvent(db, {
          disputeId: open.dispute_id,
          kind: 'attached',
          actor: args.actor,
          note: args.reason,
          at: args.at,
          requestId: args.requestId,
        });
      return {
        disputeId: open.dispute_id,
        attached: !open.mine,
        outcomeId: o.outcome_id,
        outcomeState: open.outcome_state_at_open,
        slaAt: open.sla_at.toISOString(),
        autoResolveAt: open.auto_resolve_at.toISOString(),
        defaultDecision: terms.defaultDecision,
      };
    }
    const charge = await chargeOfOutcome(db, o.outcome_id);
    const verdict = decideDisputeAcceptance({
      state: o.state,
      billedAt: charge?.as_of ?? null,
      now: args.at,
      terms,
      timeZone,
    });
    if (!verdict.ok)
      throw new ReconError(verdict.code, `cannot dispute ${o.outcome_type} ${o.subject_ref}: ${verdict.message}`);
    const { slaAt, autoResolveAt } = disputeDeadlines(args.at, terms, timeZone);
    const {
      rows: [d],
    } = await db.query<Pick<DisputeRow, 'dispute_id'>>(
      `insert into disputes (tenant_id, outcome_id, workflow_id, reason, channel, opened_by, opened_at, outcome_state_at_open, sla_at, auto_resolve_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning dispute_id`,
      [
        args.tenant,
        o.outcome_id,
        args.workflowId,
        args.reason,
        args.channel,
        args.actor,
        args.at,
        o.state,
        slaAt,
        autoResolveAt,
      ],
    );
    await recordEvent(db, {
      disputeId: d.dispute_id,
      kind: 'opened',
      actor: args.actor,
      note: args.reason,
      at: args.at,
      requestId: args.requestId,
    });
    await db.query('update outcomes set on_hold = true, updated_at = now() where outcome_id = $1', [o.outcome_id]);
    await outcomeEvent(db, {
      outcomeId: o.outcome_id,
      kind: 'dispute_opened',
      from: o.state,
      to: o.state,
      actor: args.actor,
      at: args.at,
      reason: `dispute ${d.dispute_id} opened: ${args.reason}; on hold`,
      details: { disputeId: d.dispute_id, channel: args.channel },
    });
    return {
      disputeId: d.dispute_id,
      attached: false,
      outcomeId: o.outcome_id,
      outcomeState: o.state,
      slaAt: slaAt.toISOString(),
      autoResolveAt: autoResolveAt.toISOString(),
      defaultDecision: terms.defaultDecision,
    };
  });
}

export async function addDisputeNote(
  pool: Pool,
  args: { disputeId: number; actor: string; text: string; requestId: string; at: Date },
): Promise<void> {
  await inTransaction(pool, async (db) => {
    const {
      rows: [d],
    } = await db.query<Pick<DisputeRow, 'status'>>('select status from disputes where dispute_id = $1', [
      args.disputeId,
    ]);
    if (!d) throw new ReconError('dispute_not_found', `no dispute ${args.disputeId}`);
    await recordEvent(db, {
      disputeId: args.disputeId,
      kind: 'note',
      actor: args.actor,
      note: args.text,
      at: args.at,
      requestId: args.requestId,
    });
  });
}

export async function escalateDispute(pool: Pool, args: { disputeId: number; at: Date }): Promise<boolean> {
  return inTransaction(pool, async (db) => {
    const {
      rows: [d],
    } = await db.query<Pick<DisputeRow, 'outcome_id' | 'sla_at'>>(
      `update disputes set escalated_at = $2 where dispute_id = $1 and status = 'open' and escalated_at is null returning outcome_id, sla_at`,
      [args.disputeId, args.at],
    );
    if (!d) return false;
    await recordEvent(db, {
      disputeId: args.disputeId,
      kind: 'escalated',
      actor: 'system:sla',
      note: `unresolved past its SLA (${d.sla_at.toISOString()})`,
      at: args.at,
      requestId: 'sla-escalation',
    });
    const {
      rows: [o],
    } = await db.query<Pick<OutcomeRow, 'state'>>('select state from outcomes where outcome_id = $1', [d.outcome_id]);
    await outcomeEvent(db, {
      outcomeId: d.outcome_id,
      kind: 'dispute_escalated',
      from: o.state,
      to: o.state,
      actor: 'system:sla',
      at: args.at,
      reason: `dispute ${args.disputeId} unresolved past its SLA`,
      details: { disputeId: args.disputeId },
    });
    return true;
  });
}

/**
 * Resolves a dispute and applies its effect in the same transaction. The status guard makes the
 * first resolution win; a retry of that same request answers its result again.
 */
export async function resolveDispute(
  pool: Pool,
  args: {
    disputeId: number;
    decision: Decision;
    actor: string;
    note: string;
    requestId: string;
    at: Date;
    auto: boolean;
  },
): Promise<ResolvedDispute> {
  const {
    rows: [peek],
  } = await pool.query<Pick<DisputeRow, 'tenant_id'> & Pick<OutcomeRow, 'outcome_type'>>(
    `select d.tenant_id, o.outcome_type from disputes d join outcomes o using (outcome_id) where d.dispute_id = $1`,
    [args.disputeId],
  );
  if (!peek) throw new ReconError('dispute_not_found', `no dispute ${args.disputeId}`);
  const { timeZone } = await termsFor(pool, peek.tenant_id, peek.outcome_type, args.at);
  return inTransaction(pool, async (db) => {
    const {
      rows: [d],
    } = await db.query<DisputeState>(`select ${DISPUTE_COLUMNS} from disputes where dispute_id = $1 for update`, [
      args.disputeId,
    ]);
    if (d.status !== 'open') {
      const {
        rows: [mine],
      } = await db.query<Record<string, unknown>>(
        `select 1 from dispute_events where dispute_id = $1 and request_id = $2 and kind = 'resolved'`,
        [args.disputeId, args.requestId],
      );
      if (mine) return previousResolution(db, args.disputeId);
      const decided = d.status === 'upheld' ? 'upheld' : 'rejected';
      throw new ReconError(
        'already_resolved',
        `dispute ${args.disputeId} was already resolved: ${decided} by ${d.resolved_by} at ${d.resolved_at!.toISOString()}`,
      );
    }
    const {
      rows: [o],
    } = await db.query<DisputedOutcome>(
      'select outcome_id, tenant_id, outcome_type, subject_ref, state from outcomes where outcome_id = $1 for update',
      [d.outcome_id],
    );
    const effect = disputeEffect(args.decision, o.state);
    await db.query(
      `update disputes set status = $2, resolved_at = $3, resolved_by = $4, resolution_note = $5, auto_resolved = $6, effect = $7 where dispute_id = $1`,
      [
        args.disputeId,
        args.decision === 'uphold' ? 'upheld' : 'rejected',
        args.at,
        args.actor,
        args.note,
        args.auto,
        effect,
      ],
    );
    await recordEvent(db, {
      disputeId: args.disputeId,
      kind: 'resolved',
      actor: args.actor,
      note: `${args.decision}: ${args.note}`,
      at: args.at,
      requestId: args.requestId,
    });
    let creditEntryId: number | null = null;
    const why = `dispute ${args.disputeId} ${args.decision === 'uphold' ? 'upheld' : 'rejected'} by ${args.actor}: ${args.note}`;
    if (effect === 'reject_outcome') {
      await db.query(
        `update outcomes set state = 'rejected', reject_reason = 'dispute_upheld', on_hold = false, updated_at = now() where outcome_id = $1`,
        [o.outcome_id],
      );
      await outcomeEvent(db, {
        outcomeId: o.outcome_id,
        kind: 'rejected',
        from: o.state,
        to: 'rejected',
        actor: args.actor,
        at: args.at,
        reason: `dispute_upheld: ${why}`,
        details: { disputeId: args.disputeId },
      });
    } else if (effect === 'credit_charge') {
      // credit_charge is only decided for a billed outcome, and a billed outcome has its charge.
      const charge = (await chargeOfOutcome(db, o.outcome_id))!;
      creditEntryId = await creditCharge(db, {
        chargeEntryId: charge.entry_id,
        reason: why,
        at: args.at,
        timeZone,
        actor: args.actor,
        disputeId: args.disputeId,
      });
    } else if (effect === 'none') {
      await db.query('update outcomes set on_hold = false, updated_at = now() where outcome_id = $1', [o.outcome_id]);
      await outcomeEvent(db, {
        outcomeId: o.outcome_id,
        kind: 'dispute_closed',
        from: o.state,
        to: o.state,
        actor: args.actor,
        at: args.at,
        reason: `${why}; the outcome was already ${o.state}, nothing more to do`,
        details: { disputeId: args.disputeId },
      });
    } else {
      await db.query('update outcomes set on_hold = false, updated_at = now() where outcome_id = $1', [o.outcome_id]);
      await outcomeEvent(db, {
        outcomeId: o.outcome_id,
        kind: 'dispute_rejected',
        from: o.state,
        to: o.state,
        actor: args.actor,
        at: args.at,
        reason: `${why}; hold lifted, billing proceeds when grace allows`,
        details: { disputeId: args.disputeId },
      });
    }
    return {
      disputeId: args.disputeId,
      decision: args.decision,
      effect,
      resolvedBy: args.actor,
      resolvedAt: args.at.toISOString(),
      creditEntryId,
    };
  });
}

async function previousResolution(db: PoolClient, disputeId: number): Promise<ResolvedDispute> {
  const {
    rows: [d],
  } = await db.query<DisputeState>(`select ${DISPUTE_COLUMNS} from disputes where dispute_id = $1`, [disputeId]);
  const credit = await creditOfDispute(db, { outcomeId: d.outcome_id, disputeId });
  const decision: Decision = d.status === 'upheld' ? 'uphold' : 'reject';
  // Only called for a resolved dispute: every resolution sets these.
  const effect = d.effect!;
  return {
    disputeId,
    decision,
    effect,
    resolvedBy: d.resolved_by!,
    resolvedAt: d.resolved_at!.toISOString(),
    creditEntryId: credit?.entry_id ?? null,
  };
}
