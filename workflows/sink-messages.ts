// Messages of the sink delivery loop, shared by the workflows and the client. Deterministic only.
import { defineQuery, defineSignal } from '@temporalio/workflow';

export interface DeliverSinksInput {
  tenant: string;
  /** Passes made before a continue-as-new (set only by continue-as-new). */
  passes?: number;
}

export interface SinkLoopView {
  tenant: string;
  passes: number;
  pending: number;
  /** When the loop next tries, if it is waiting. */
  sleepingUntil: string | null;
  /** The last pass's hold-ups, one line per sink that held it up. */
  heldUp: string[];
}

/** Wakes a waiting loop now: `recon sink retry` sends it after putting batches back in line. */
export const wakeSignal = defineSignal('wake');
export const sinkLoopQuery = defineQuery<SinkLoopView>('sinkLoop');

export const SINK_WORKFLOW_PREFIX = 'sinks';

/** One delivery loop per tenant: the id is how the night and the CLI find it. */
export function sinkWorkflowId(tenant: string): string {
  return `${SINK_WORKFLOW_PREFIX}-${tenant}`;
}
