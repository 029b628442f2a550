import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { deliverSinks, reconcileSinkWorkflow } from '../../workflows';
import { sinkLoopQuery, sinkWorkflowId, wakeSignal, type SinkLoopView } from '../../workflows/sink-messages';
import { SINK_RECONCILE_PREFIX } from '../../workflows/sink-reconcile';
import { ReconError, oneLine } from '../domain/errors';
import type { SinkReconcileReport } from '../sinks/reconcile';
import { workerPolls } from './dispute-client';
import { TENANT_KEY } from './run-client';

/** How the delivery loop stood when the command stopped waiting for it. */
export interface LoopOutcome {
  /**
   * finished: nothing owed any more; sleeping: waiting out a backoff; busy: still at it when the wait
   * ran out; no_worker: nobody polls its task queue, so it runs when a worker starts.
   */
  state: 'finished' | 'sleeping' | 'busy' | 'not_waited' | 'no_worker';
  view: SinkLoopView | null;
  taskQueue: string;
}

const POLL_MS = 500;
const QUERY_WAIT_MS = 5_000;

async function currentView(
  client: Client,
  workflowId: string,
): Promise<{ running: boolean; view: SinkLoopView | null; taskQueue: string | null }> {
  const handle = client.workflow.getHandle(workflowId);
  const d = await handle.describe().catch(() => null);
  if (d?.status.name !== 'RUNNING') return { running: false, view: null, taskQueue: null };
  // A query waits for a worker to answer; the caller's deadline must not wait on it.
  let timer: NodeJS.Timeout | undefined;
  const view = await Promise.race([
    handle.query(sinkLoopQuery).catch(() => null),
    new Promise<null>((r) => (timer = setTimeout(() => r(null), QUERY_WAIT_MS))),
  ]).finally(() => clearTimeout(timer));
  return { running: true, view, taskQueue: d.taskQueue };
}

/**
 * Wakes the tenant's delivery loop, starting it if it is not running, and waits (at most waitMs)
 * until it has made a pass after the wake-up and then finished or gone back to sleep. The loop's
 * own task queue is used when it is running: it may not be the one this machine's settings name.
 */
export async function wakeDeliveryLoop(
  client: Client,
  p: { tenant: string; taskQueue: string; waitMs: number },
): Promise<LoopOutcome> {
  const workflowId = sinkWorkflowId(p.tenant);
  const before = await currentView(client, workflowId);
  const taskQueue = before.taskQueue ?? p.taskQueue;
  await client.workflow.signalWithStart(deliverSinks, {
    workflowId,
    taskQueue,
    args: [{ tenant: p.tenant }],
    signal: wakeSignal,
    signalArgs: [],
    typedSearchAttributes: [{ key: TENANT_KEY, value: p.tenant }],
  });
  if (p.waitMs <= 0) return { state: 'not_waited', view: null, taskQueue };
  if (!(await workerPolls(client, taskQueue))) return { state: 'no_worker', view: null, taskQueue };
  // A loop that was running counts its passes on; a new one starts from 0.
  const passesBefore = before.running ? (before.view?.passes ?? 0) : -1;
  const deadline = Date.now() + p.waitMs;
  let last: SinkLoopView | null = null;
  for (;;) {
    const now = await currentView(client, workflowId);
    if (!now.running) return { state: 'finished', view: null, taskQueue };
    if (now.view) {
      last = now.view;
      const passedSince = passesBefore < 0 ? now.view.passes >= 1 : now.view.passes > passesBefore;
      if (passedSince && now.view.sleepingUntil !== null) return { state: 'sleeping', view: now.view, taskQueue };
    }
    if (Date.now() >= deadline) return { state: 'busy', view: last, taskQueue };
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** The failed activity's code and message, as the worker raised it. */
function reconcileFailure(err: unknown): unknown {
  if (!(err instanceof WorkflowFailedError)) return err;
  let cause: unknown = err.cause;
  while (cause) {
    if (cause instanceof ApplicationFailure && cause.type && /^[a-z][a-z0-9_]*$/.test(cause.type))
      return new ReconError(cause.type, oneLine(cause.message));
    if (!(cause instanceof ActivityFailure) && !(cause instanceof ApplicationFailure)) break;
    cause = (cause as Error & { cause?: unknown }).cause;
  }
  return new ReconError(
    'internal_error',
    `sink reconcile failed in the worker: ${oneLine(err.cause?.message ?? 'no cause recorded')}`,
  );
}

/**
 * Runs the comparison in a worker (which holds the sinks' secrets) and returns its report. Without
 * a worker answering within timeoutMs the execution is ended, so nothing is left to run later.
 */
export async function reconcileSinksViaTemporal(
  client: Client,
  p: { tenant: string; period: string; sink?: string; taskQueue: string; timeoutMs: number },
): Promise<SinkReconcileReport> {
  if (!(await workerPolls(client, p.taskQueue)))
    throw new ReconError(
      'no_worker',
      `no worker is polling task queue "${p.taskQueue}", and the comparison runs in one (it holds the sinks' secrets); start \`recon worker\` (or \`recon dev\`) for that queue and run the command again`,
    );
  const workflowId = `${SINK_RECONCILE_PREFIX}-${p.tenant}-${p.period}-${randomUUID().slice(0, 8)}`;
  const handle = await client.workflow.start(reconcileSinkWorkflow, {
    workflowId,
    taskQueue: p.taskQueue,
    args: [{ tenant: p.tenant, period: p.period, ...(p.sink ? { sink: p.sink } : {}) }],
    typedSearchAttributes: [{ key: TENANT_KEY, value: p.tenant }],
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), p.timeoutMs);
  });
  try {
    return await Promise.race([handle.result(), timeout]);
  } catch (err) {
    if (err instanceof Error && err.message === 'timeout') {
      await handle.terminate('recon sink reconcile gave up waiting').catch(() => undefined);
      throw new ReconError(
        'no_worker',
        `no worker on task queue "${p.taskQueue}" finished the comparison within ${Math.round(p.timeoutMs / 1000)}s; start \`recon worker\` (or \`recon dev\`) for that queue, or raise --timeout, and run the command again`,
      );
    }
    throw reconcileFailure(err);
  } finally {
    clearTimeout(timer);
  }
}
