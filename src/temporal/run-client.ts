import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { reconcileTenant } from '../../workflows';
import { SEARCH_ATTRIBUTES, progressQuery, runWorkflowId, type RunProgress } from '../../workflows/messages';
import type { RunSummary } from '../reconcile/runs';
import { ReconError } from '../domain/errors';

export const TENANT_KEY = defineSearchAttributeKey(SEARCH_ATTRIBUTES.tenant, SearchAttributeType.KEYWORD);
export const AS_OF_KEY = defineSearchAttributeKey(SEARCH_ATTRIBUTES.asOf, SearchAttributeType.DATETIME);

/**
 * Starts (or joins, if it is already running) the run for tenant and asOf, reports progress from
 * the workflow's query while waiting, and gives up with a clear message when no worker answers.
 */
export async function runReconciliation(
  client: Client,
  opts: { tenant: string; asOf: Date; taskQueue: string; timeoutMs?: number; onProgress?: (p: RunProgress) => void },
): Promise<RunSummary> {
  const asOf = opts.asOf.toISOString();
  const handle = await client.workflow.start(reconcileTenant, {
    taskQueue: opts.taskQueue,
    workflowId: runWorkflowId(opts.tenant, asOf),
    args: [{ tenant: opts.tenant, asOf }],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    typedSearchAttributes: [
      { key: TENANT_KEY, value: opts.tenant },
      { key: AS_OF_KEY, value: opts.asOf },
    ],
  });
  const timeoutMs = opts.timeoutMs ?? 30 * 60_000;
  const started = Date.now();
  let lastProgressAt = Date.now();
  const result = handle.result() as Promise<RunSummary>;
  let finished = false;
  result.then(() => (finished = true), () => (finished = true));
  while (!finished) {
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
    if (finished) break;
    try {
      const p = await handle.query(progressQuery);
      lastProgressAt = Date.now();
      opts.onProgress?.(p);
    } catch {
      // A query needs a worker; without one the workflow never starts its first task.
      if (Date.now() - lastProgressAt > 30_000) {
        throw new ReconError('no_worker', `no worker is polling task queue "${opts.taskQueue}" (run \`npx recon worker\` or \`npx recon dev\`); the run ${handle.workflowId} stays queued`);
      }
    }
    if (Date.now() - started > timeoutMs) {
      throw new ReconError('run_timeout', `run ${handle.workflowId} still going after ${Math.round(timeoutMs / 1000)}s; follow it in the Temporal UI`);
    }
  }
  return result;
}
