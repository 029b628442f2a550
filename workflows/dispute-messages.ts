// Dispute messages, defined once and shared by the workflow and the client. Deterministic only.
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';

const Actor = z.string().trim().min(1, 'actor is required').max(200);

export const OpenDisputeArgsSchema = z.object({
  requestId: z.string().min(1),
  actor: Actor,
  reason: z.string().trim().min(1, 'reason is required').max(2000),
  channel: z.enum(['support', 'customer_import']).default('support'),
});
export type OpenDisputeArgs = z.input<typeof OpenDisputeArgsSchema>;

export const NoteArgsSchema = z.object({
  requestId: z.string().min(1),
  actor: Actor,
  text: z.string().trim().min(1, 'note text is required').max(5000),
});
export type NoteArgs = z.input<typeof NoteArgsSchema>;

export const ResolveArgsSchema = z.object({
  requestId: z.string().min(1),
  decision: z.enum(['uphold', 'reject'], { message: 'decision must be uphold or reject' }),
  actor: Actor,
  note: z.string().trim().min(1, 'a note saying why is required').max(5000),
});
export type ResolveArgs = z.input<typeof ResolveArgsSchema>;

export interface DisputeView {
  tenant: string;
  outcomeId: number;
  disputeId: number | null;
  status: 'opening' | 'open' | 'upheld' | 'rejected' | 'refused';
  attached?: boolean;
  /** What happens at the auto-resolution deadline if nobody decides. */
  defaultDecision: 'uphold' | 'reject' | null;
  slaAt: string | null;
  autoResolveAt: string | null;
  escalated: boolean;
  notes: number;
  resolution: {
    decision: 'uphold' | 'reject';
    by: string;
    at: string;
    effect: string;
    creditEntryId: number | null;
    auto: boolean;
  } | null;
}

export const openDisputeUpdate = defineUpdate<DisputeView, [OpenDisputeArgs]>('openDispute');
export const noteDisputeUpdate = defineUpdate<DisputeView, [NoteArgs]>('noteDispute');
export const resolveDisputeUpdate = defineUpdate<DisputeView, [ResolveArgs]>('resolveDispute');
export const disputeStateQuery = defineQuery<DisputeView>('disputeState');

/** One workflow per outcome's dispute; tenant slug and outcome id only, no personal data. */
export function disputeWorkflowId(tenant: string, outcomeId: number): string {
  return `dispute-${tenant}-${outcomeId}`;
}

export function firstIssue(error: z.ZodError): string {
  const i = error.issues[0];
  return `${i.path.join('.') || 'arguments'}: ${i.message}`;
}
