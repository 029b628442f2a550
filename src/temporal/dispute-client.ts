import { randomUUID } from 'node:crypto';
import { WithStartWorkflowOperation, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { disputeWorkflow } from '../../workflows';
import { disputeWorkflowId, noteDisputeUpdate, openDisputeUpdate, resolveDisputeUpdate, type DisputeView } from '../../workflows/dispute-messages';
import { ReconError } from '../domain/errors';
import { TENANT_KEY } from './run-client';

export const DEFAULT_UPDATE_TIMEOUT_MS = 30_000;

/** Updates wait for a worker; without one the support person gets a reason, not a hang. */
async function withinTimeout<T>(what: string, taskQueue: string, timeoutMs: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ReconError('no_worker', `${what}: no worker answered within ${Math.round(timeoutMs / 1000)}s on task queue "${taskQueue}"; is \`recon worker\` or \`recon dev\` running?`)), timeoutMs);
  });
  try {
    return await Promise.race([p, timeout]);
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
    const cause = err.cause as Error | undefined;
    const code = cause instanceof ApplicationFailure && cause.type ? cause.type : 'refused';
    return new ReconError(code === 'Error' ? 'refused' : code, cause?.message ?? err.message);
  }
  const e = err as Error;
  if (e?.name === 'WorkflowNotFoundError') return new ReconError('dispute_closed', 'the dispute workflow has finished (the dispute is resolved)');
  return err;
}

export async function openDisputeViaTemporal(
  client: Client,
  args: { tenant: string; outcomeId: number; actor: string; reason: string; channel?: 'support' | 'customer_import'; taskQueue: string; timeoutMs?: number },
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
  return withinTimeout(
    'opening the dispute',
    args.taskQueue,
    args.timeoutMs ?? DEFAULT_UPDATE_TIMEOUT_MS,
    client.workflow.executeUpdateWithStart(openDisputeUpdate, {
      args: [{ requestId: randomUUID(), actor: args.actor, reason: args.reason, channel: args.channel ?? 'support' }],
      startWorkflowOperation,
    }),
  );
}

export async function noteDisputeViaTemporal(client: Client, args: { workflowId: string; actor: string; text: string; taskQueue: string; timeoutMs?: number }): Promise<DisputeView> {
  const requestId = randomUUID();
  return withinTimeout('adding the note', args.taskQueue, args.timeoutMs ?? DEFAULT_UPDATE_TIMEOUT_MS,
    client.workflow.getHandle(args.workflowId).executeUpdate(noteDisputeUpdate, { args: [{ requestId, actor: args.actor, text: args.text }], updateId: requestId }));
}

export async function resolveDisputeViaTemporal(
  client: Client,
  args: { workflowId: string; decision: 'uphold' | 'reject'; actor: string; note: string; taskQueue: string; timeoutMs?: number },
): Promise<DisputeView> {
  const requestId = randomUUID();
  return withinTimeout('resolving the dispute', args.taskQueue, args.timeoutMs ?? DEFAULT_UPDATE_TIMEOUT_MS,
    client.workflow.getHandle(args.workflowId).executeUpdate(resolveDisputeUpdate, { args: [{ requestId, decision: args.decision, actor: args.actor, note: args.note }], updateId: requestId }));
}
