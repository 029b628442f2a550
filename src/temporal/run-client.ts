import {
  WorkflowFailedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { reconcileTenant } from '../../workflows';
import { SEARCH_ATTRIBUTES, progressQuery, runWorkflowId, type RunProgress } from '../../workflows/messages';
import type { RunSummary } from '../reconcile/runs';
import { ReconError, oneLine } from '../domain/errors';

export const TENANT_KEY = defineSearchAttributeKey(SEARCH_ATTRIBUTES.tenant, SearchAttributeType.KEYWORD);
export const AS_OF_KEY = defineSearchAttributeKey(SEARCH_ATTRIBUTES.asOf, SearchAttributeType.DATETIME);

/** An activity of the run that failed and is waiting for its next attempt. */
export interface RunRetry {
  activity: string;
  attempt: number;
  code: string | null;
  message: string;
  nextAttemptAt: string | null;
}

/** Why the run failed, as the workflow reports it: the failed activity's code and message. */
export function runFailureAsReconError(err: unknown, workflowId: string): unknown {
  if (!(err instanceof WorkflowFailedError)) return err;
  let cause: unknown = err.cause;
  // Newest first: the workflow's own ApplicationFailure carries the code; older histories end
  // with the ActivityFailure whose cause does.
  while (cause) {
    if (cause instanceof ApplicationFailure && cause.type && /^[a-z][a-z0-9_]*$/.test(cause.type)) {
      return new ReconError(cause.type, `run ${workflowId} failed: ${oneLine(cause.message)}`);
    }
    if (!(cause instanceof ActivityFailure) && !(cause instanceof ApplicationFailure)) break;
    cause = (cause as Error & { cause?: unknown }).cause;
  }
  const detail = err.cause?.message ? oneLine(err.cause.message) : 'no cause recorded';
  return new ReconError('run_failed', `run ${workflowId} failed: ${detail}; see the run in the Temporal UI`);
}

/** The first pending activity that has failed at least once: the run is retrying it. */
async function retrying(handle: WorkflowHandle): Promise<RunRetry | null> {
  const d = await handle.describe();
  for (const a of d.raw.pendingActivities ?? []) {
    const f = a.lastFailure;
    if (!f || (a.attempt ?? 1) < 2) continue;
    const next = a.nextAttemptScheduleTime?.seconds;
    return {
      activity: a.activityType?.name ?? 'an activity',
      attempt: a.attempt ?? 0,
      code:
        f.applicationFailureInfo?.type && /^[a-z][a-z0-9_]*$/.test(f.applicationFailureInfo.type)
          ? f.applicationFailureInfo.type
          : null,
      message: oneLine(f.message ?? ''),
      nextAttemptAt: next != null ? new Date(Number(next) * 1000).toISOString() : null,
    };
  }
  return null;
}

/** How a retrying activity reads on the terminal and in the give-up message. */
export function describeRetry(r: RunRetry): string {
  return `${r.activity} failed ${r.attempt - 1} ${r.attempt - 1 === 1 ? 'time' : 'times'} and is retrying${r.nextAttemptAt ? ` (next attempt ${r.nextAttemptAt})` : ''}: ${r.code ? `${r.code}: ` : ''}${r.message}`;
}

const DESCRIBE_EVERY_MS = 5_000;

/**
 * Starts (or joins, if it is already running) the run for tenant and asOf, reports progress from
 * the workflow's query while waiting, and an activity that keeps failing from the workflow's
 * description. A failed run is thrown as its cause; without a worker it gives up with a clear message.
 */
export async function runReconciliation(
  client: Client,
  opts: {
    tenant: string;
    asOf: Date;
    taskQueue: string;
    timeoutMs?: number;
    onProgress?: (p: RunProgress) => void;
    onRetry?: (r: RunRetry) => void;
  },
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
  let lastDescribeAt = 0;
  let lastRetry: RunRetry | null = null;
  const result = handle.result();
  let finished = false;
  result.then(
    () => (finished = true),
    () => (finished = true),
  );
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
        // A run this call joined may have been started on another queue than the settings name.
        const queue = (await handle.describe().catch(() => null))?.taskQueue ?? opts.taskQueue;
        throw new ReconError(
          'no_worker',
          `no worker is polling task queue "${queue}" (run \`npx recon worker\` or \`npx recon dev\` for it); the run ${handle.workflowId} stays queued and starts when a worker polls`,
        );
      }
    }
    if (Date.now() - lastDescribeAt > DESCRIBE_EVERY_MS) {
      lastDescribeAt = Date.now();
      const r = await retrying(handle).catch(() => null);
      if (r && (r.attempt !== lastRetry?.attempt || r.activity !== lastRetry?.activity)) opts.onRetry?.(r);
      lastRetry = r;
    }
    if (Date.now() - started > timeoutMs) {
      const why = lastRetry ? `; ${describeRetry(lastRetry)}` : '; follow it in the Temporal UI';
      throw new ReconError(
        'run_timeout',
        `run ${handle.workflowId} still going after ${Math.round(timeoutMs / 1000)}s${why}`,
      );
    }
  }
  try {
    return await result;
  } catch (err) {
    throw runFailureAsReconError(err, handle.workflowId);
  }
}
