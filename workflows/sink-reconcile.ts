import { proxyActivities } from '@temporalio/workflow';
import type { ReconActivities } from '../activities';
import type { SinkReconcileReport } from '../src/sinks/reconcile';

// A sink's read API that fails is reported in the result, not retried for; only the database can
// fail the activity, and a few attempts are enough for a command a person waits on.
const { reconcileSink } = proxyActivities<ReconActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumAttempts: 3 },
});

export interface ReconcileSinkInput {
  tenant: string;
  period: string;
  sink?: string;
}

/**
 * `recon sink reconcile`: the comparison runs in the worker, which holds the sinks' secrets; the
 * command only starts this and prints the answer.
 */
export async function reconcileSinkWorkflow(input: ReconcileSinkInput): Promise<SinkReconcileReport> {
  return reconcileSink(input);
}

/** Each reconcile is its own execution: two people may ask at once. */
export const SINK_RECONCILE_PREFIX = 'sink-reconcile';
