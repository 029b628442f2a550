import type { Pool } from '../db/pool';
import type { DisputeEventRow, DisputeRow, OutcomeRow } from '../db/rows';
import { ReconError } from '../domain/errors';

export interface DisputeDetail {
  disputeId: number;
  tenant: string;
  outcomeId: number;
  outcomeType: string;
  subjectRef: string;
  outcomeState: string;
  status: string;
  reason: string;
  channel: string;
  openedBy: string;
  openedAt: string;
  slaAt: string;
  autoResolveAt: string;
  escalatedAt: string | null;
  resolvedAt: string | null;
  resolvedBy: string | null;
  resolutionNote: string | null;
  autoResolved: boolean;
  workflowId: string;
  events: Array<{ kind: string; actor: string; note: string | null; at: string }>;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

const SELECT = `select d.dispute_id, d.tenant_id, d.outcome_id, d.workflow_id, d.status, d.reason, d.channel, d.opened_by, d.opened_at,
                       d.sla_at, d.auto_resolve_at, d.escalated_at, d.resolved_at, d.resolved_by, d.resolution_note, d.auto_resolved,
                       o.outcome_type, o.subject_ref, o.state as outcome_state
                  from disputes d join outcomes o using (outcome_id)`;

type DisputeViewRow = Pick<
  DisputeRow,
  | 'dispute_id'
  | 'tenant_id'
  | 'outcome_id'
  | 'workflow_id'
  | 'status'
  | 'reason'
  | 'channel'
  | 'opened_by'
  | 'opened_at'
  | 'sla_at'
  | 'auto_resolve_at'
  | 'escalated_at'
  | 'resolved_at'
  | 'resolved_by'
  | 'resolution_note'
  | 'auto_resolved'
> &
  Pick<OutcomeRow, 'outcome_type' | 'subject_ref'> & { outcome_state: OutcomeRow['state'] };
type DisputeViewEvent = Pick<DisputeEventRow, 'dispute_id' | 'kind' | 'actor' | 'note' | 'at'>;

function toDetail(d: DisputeViewRow, events: Array<Omit<DisputeViewEvent, 'dispute_id'>>): DisputeDetail {
  return {
    disputeId: d.dispute_id,
    tenant: d.tenant_id,
    outcomeId: d.outcome_id,
    outcomeType: d.outcome_type,
    subjectRef: d.subject_ref,
    outcomeState: d.outcome_state,
    status: d.status,
    reason: d.reason,
    channel: d.channel,
    openedBy: d.opened_by,
    openedAt: d.opened_at.toISOString(),
    slaAt: d.sla_at.toISOString(),
    autoResolveAt: d.auto_resolve_at.toISOString(),
    escalatedAt: iso(d.escalated_at),
    resolvedAt: iso(d.resolved_at),
    resolvedBy: d.resolved_by,
    resolutionNote: d.resolution_note,
    autoResolved: d.auto_resolved,
    workflowId: d.workflow_id,
    events: events.map((e) => ({ kind: e.kind, actor: e.actor, note: e.note, at: e.at.toISOString() })),
  };
}

export async function showDispute(pool: Pool, disputeId: number): Promise<DisputeDetail> {
  const {
    rows: [d],
  } = await pool.query<DisputeViewRow>(`${SELECT} where d.dispute_id = $1`, [disputeId]);
  if (!d) throw new ReconError('dispute_not_found', `no dispute ${disputeId}`);
  const { rows: events } = await pool.query<Omit<DisputeViewEvent, 'dispute_id'>>(
    'select kind, actor, note, at from dispute_events where dispute_id = $1 order by event_id',
    [disputeId],
  );
  return toDetail(d, events);
}

export async function disputesOfOutcome(pool: Pool, outcomeId: number): Promise<DisputeDetail[]> {
  const { rows } = await pool.query<DisputeViewRow>(`${SELECT} where d.outcome_id = $1 order by d.dispute_id`, [
    outcomeId,
  ]);
  const { rows: events } = await pool.query<DisputeViewEvent>(
    `select e.dispute_id, e.kind, e.actor, e.note, e.at from dispute_events e join disputes d using (dispute_id) where d.outcome_id = $1 order by e.event_id`,
    [outcomeId],
  );
  return rows.map((d) =>
    toDetail(
      d,
      events.filter((e) => e.dispute_id === d.dispute_id),
    ),
  );
}

export async function listDisputes(pool: Pool, args: { tenant: string; openOnly: boolean; limit: number }) {
  const { rows } = await pool.query<DisputeViewRow>(
    `${SELECT} where d.tenant_id = $1 and (not $2 or d.status = 'open') order by d.dispute_id desc limit $3`,
    [args.tenant, args.openOnly, args.limit],
  );
  return rows.map((d) => ({
    disputeId: d.dispute_id,
    subjectRef: d.subject_ref,
    outcomeType: d.outcome_type,
    outcomeState: d.outcome_state,
    status: d.status,
    openedBy: d.opened_by,
    openedAt: d.opened_at.toISOString(),
    escalated: d.escalated_at !== null,
    resolvedBy: d.resolved_by,
    reason: d.reason,
  }));
}
