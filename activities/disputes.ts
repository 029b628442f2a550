import type { Pool } from '../src/db/pool';
import {
  addDisputeNote,
  escalateDispute,
  openDispute,
  resolveDispute,
  type OpenedDispute,
  type ResolvedDispute,
} from '../src/disputes/store';
import type { Decision } from '../src/domain/disputes';

/** Dispute activities: each one transaction in Postgres, idempotent by the request id. */
export function createDisputeActivities(pool: Pool, permanentAware: <T>(fn: () => Promise<T>) => Promise<T>) {
  return {
    openDisputeRecord(input: {
      tenant: string;
      outcomeId: number;
      workflowId: string;
      actor: string;
      reason: string;
      channel: 'support' | 'customer_import';
      requestId: string;
      at: string;
    }): Promise<OpenedDispute> {
      return permanentAware(() => openDispute(pool, { ...input, at: new Date(input.at) }));
    },
    noteDisputeRecord(input: {
      disputeId: number;
      actor: string;
      text: string;
      requestId: string;
      at: string;
    }): Promise<void> {
      return permanentAware(() => addDisputeNote(pool, { ...input, at: new Date(input.at) }));
    },
    escalateDisputeRecord(input: { disputeId: number; at: string }): Promise<boolean> {
      return permanentAware(() => escalateDispute(pool, { disputeId: input.disputeId, at: new Date(input.at) }));
    },
    resolveDisputeRecord(input: {
      disputeId: number;
      decision: Decision;
      actor: string;
      note: string;
      requestId: string;
      at: string;
      auto: boolean;
    }): Promise<ResolvedDispute> {
      return permanentAware(() => resolveDispute(pool, { ...input, at: new Date(input.at) }));
    },
  };
}
