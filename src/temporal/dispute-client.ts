import { randomUUID } from 'node:crypto';
import {
  WithStartWorkflowOperation,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { disputeWorkflow } from '../../workflows';
import {
  disputeWorkflowId,
  noteDisputeUpdate,
  openDisputeUpdate,
  resolveDisputeUpdate,
  type DisputeView,
} from '../../workflows/dispute-messages';
import { ReconError } from '../domain/errors';
import { TENANT_KEY } from './run-client';

export const DEFAULT_UPDATE_TIMEOUT_MS = 30_000;

/** A poller seen this recently is a live worker: its long poll is renewed about every minute. */
const POLLER_FRESH_MS = 90_000;
/** A worker that has just started may not have reached the server yet: look a few times. */
const POLLER_CHECKS = 4;

/**
 * A worker seen polling this recently is taken as still there, so that a bulk import (one update
 * per row) asks Temporal once, not once per row; an absent worker is never remembered.
 */
const POLLER_SEEN_REUSE_MS = 30_000;
const pollerSeen = new WeakMap<Client, Map<string, number>>();

/** Whether a worker is polling `taskQueue` for workflow tasks now. */
export async function workerPolls(client: Client, taskQueue: string): Promise<boolean> {
  const seen = pollerSeen.get(client) ?? new Map<string, number>();
  pollerSeen.set(client, seen);
  if (Date.now() - (seen.get(taskQueue) ?? 0) < POLLER_SEEN_REUSE_MS) return true;
  for (let i = 0; i < POLLER_CHECKS; i++) {
    const r = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name: taskQueue, kind: 1 },
      taskQueueType: 1,
    });
    const now = Date.now();
    if (
      (r.pollers ?? []).some(
        (p) => p.lastAccessTime?.seconds != null && now - Number(p.lastAccessTime.seconds) * 1000 < POLLER_FRESH_MS,
      )
    ) {
      seen.set(taskQueue, Date.now());
      return true;
    }
    if (i < POLLER_CHECKS - 1) await new Promise((res) => setTimeout(res, 750));
  }
  return false;
}

/**
 * The task queue a dispute's workflow runs on: the one it was started on, which is not
 * necessarily the one this machine's settings name (another worker, another TEMPORAL_TASK_QUEUE).
 */
async function workflowQueue(client: Client, workflowId: string, runningOnly = false): Promise<string | null> {
  try {
    const d = await client.workflow.getHandle(workflowId).describe();
    return runningOnly && d.status.name !== 'RUNNING' ? null : d.taskQueue;
  } catch {
    return null;
  }
}

/**
 * Updates need a worker. Without one polling the workflow's task queue, nothing is sent: the
 * dispute stays as it was and the person is told to start a worker and repeat the command. When
 * a worker polls but does not answer in time, the request has been handed to Temporal and waits
 * for that worker; the person is told so, not to repeat it (a second note would be a second note).
 */
async function withWorker<T>(
  client: Client,
  what: string,
  taskQueue: string,
  timeoutMs: number,
  send: () => Promise<T>,
): Promise<T> {
  if (!(await workerPolls(client, taskQueue))) {
    throw new ReconError(
      'no_worker',
      `${what}: no worker is polling task queue "${taskQueue}", so nothing was sent and the dispute is unchanged; start \`recon worker\` (or \`recon dev\`) for that queue and run the command again`,
    );
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ReconError(
            'no_worker',
            `${what}: the worker on task queue "${taskQueue}" did not answer within ${Math.round(timeoutMs / 1000)}s; the request is queued and applies when that worker takes it; do not repeat it, check with \`recon dispute show\``,
          ),
        ),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([send(), timeout]);
  } catch (err) {
    throw asReconError(err);
  } finally {
    clearTimeout(timer);
  }
}

/** Refusals (validator or handler) come back as ReconErrors with the workflow's own message. */
function asReconError(err: unknown): unknown {
  if (err instanceof ReconError) return err;
  if (err instanceof WorkflowUpdateFailedError) {
    const cause = err.cause;
    const code = cause instanceof ApplicationFailure && cause.type ? cause.type : 'refused';
    return new ReconError(code === 'Error' ? 'refused' : code, cause?.message ?? err.message);
  }
  const e = err as Error;
  if (e?.name === 'WorkflowNotFoundError')
    return new ReconError('dispute_closed', 'the dispute workflow has finished (the dispute is resolved)');
  return err;
}

export async function openDisputeViaTemporal(
  client: Client,
  args: {
    tenant: string;
    outcomeId: number;
    actor: string;
    reason: string;
    channel?: 'support' | 'customer_import';
    taskQueue: string;
    timeoutMs?: number;
  },
): Promise<DisputeView> {
  const startWorkflowOperation = new WithStartWorkflowOperation(disputeWorkflow, {
    workflowId: disputeWorkflowId(args.tenant, args.outcomeId),
    taskQueue: args.taskQueue,
    args: [{ tenant: args.tenant, outcomeId: args.outcomeId }],
    // A second open on the same outcome reaches the running workflow and attaches to its dispute.
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    typedSearchAttributes: [{ key: TENANT_KEY, value: args.tenant }],
  });
  // A dispute already open on this outcome lives on the queue it was started on.
  const taskQueue =
    (await workflowQueue(client, disputeWorkflowId(args.tenant, args.outcomeId), true)) ?? args.taskQueue;
  return withWorker(client, 'opening the dispute', taskQueue, args.timeoutMs ?? DEFAULT_UPDATE_TIMEOUT_MS, () =>
    client.workflow.executeUpdateWithStart(openDisputeUpdate, {
      args: [{ requestId: randomUUID(), actor: args.actor, reason: args.reason, channel: args.channel ?? 'support' }],
      startWorkflowOperation,
    }),
  );
}

export async function noteDisputeViaTemporal(
  client: Client,
  args: { workflowId: string; actor: string; text: string; taskQueue: string; timeoutMs?: number },
): Promise<DisputeView> {
  const requestId = randomUUID();
  const taskQueue = (await workflowQueue(client, args.workflowId)) ?? args.taskQueue;
  return withWorker(client, 'adding the note', taskQueue, args.timeoutMs ?? DEFAULT_UPDATE_TIMEOUT_MS, () =>
    client.workflow.getHandle(args.workflowId).executeUpdate(noteDisputeUpdate, {
      args: [{ requestId, actor: args.actor, text: args.text }],
      updateId: requestId,
    }),
  );
}

export async function resolveDisputeViaTemporal(
  client: Client,
  args: {
    workflowId: string;
    decision: 'uphold' | 'reject';
    actor: string;
    note: string;
    taskQueue: string;
    timeoutMs?: number;
  },
): Promise<DisputeView> {
  const requestId = randomUUID();
  const taskQueue = (await workflowQueue(client, args.workflowId)) ?? args.taskQueue;
  return withWorker(client, 'resolving the dispute', taskQueue, args.timeoutMs ?? DEFAULT_UPDATE_TIMEOUT_MS, () =>
    client.workflow.getHandle(args.workflowId).executeUpdate(resolveDisputeUpdate, {
      args: [{ requestId, decision: args.decision, actor: args.actor, note: args.note }],
      updateId: requestId,
    }),
  );
}
