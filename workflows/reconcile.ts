import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import {
  ActivityFailure,
  ApplicationFailure,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  ParentClosePolicy,
  patched,
  proxyActivities,
  sleep,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { ReconActivities } from '../activities';
import { SEARCH_ATTRIBUTES, progressQuery, type ReconcileInput, type ResumeState, type RunProgress } from './messages';
import { sinkWorkflowId, wakeSignal } from './sink-messages';
import { deliverSinks } from './sinks';

const {
  startRun,
  pullClaims,
  pullRecords,
  attachClaims,
  evaluateOutcomes,
  reverseCharges,
  postPeriodLines,
  postCharges,
  settleSmallNight,
  reportRun,
} = proxyActivities<ReconActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20 },
});

const { deliverAlerts: deliverAlertsBestEffort } = proxyActivities<ReconActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumAttempts: 3 },
});

// A sink's faults are answered inside the pass; only the database can fail it, and a night does
// not wait long for that: the delivery loop the night leaves behind tries again.
const { deliverToSinks } = proxyActivities<ReconActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumAttempts: 3 },
});

/** Passes the night makes itself; a backlog larger than that is the delivery loop's to finish. */
const NIGHT_DELIVERY_PASSES = 30;

const { failRun } = proxyActivities<ReconActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 5 },
});

const SCHEDULED_START = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);
const TENANT = defineSearchAttributeKey(SEARCH_ATTRIBUTES.tenant, SearchAttributeType.KEYWORD);

/** The business time of the run: given, or the schedule's nominal time, never the wall clock. */
function resolveAsOf(input: ReconcileInput): string {
  if (input.asOf) return new Date(input.asOf).toISOString();
  const scheduled = workflowInfo().typedSearchAttributes.get(SCHEDULED_START);
  if (scheduled) return scheduled.toISOString();
  return new Date(workflowInfo().startTime).toISOString();
}

/**
 * One nightly reconciliation of one tenant as of `asOf`: pull claims, attach them to outcomes,
 * evaluate open outcomes in chunks, post the confirmed ones, report. A small night (nothing to
 * pull, less than a chunk of work) runs attach to post in one activity instead. Every step is idempotent in
 * Postgres, so a retry, a rerun or a continue-as-new changes nothing already done.
 */
export async function reconcileTenant(
  input: ReconcileInput,
): Promise<Awaited<ReturnType<ReconActivities['reportRun']>>> {
  const asOf = resolveAsOf(input);
  const state: ResumeState = input.resume ?? { phase: 'start', runId: 0, cursor: 0, chunksDone: 0 };
  try {
    return await reconcileSteps(input, asOf, state);
  } catch (err) {
    // Cancellation and continue-as-new are not failures; histories before this step replay as they were.
    if (isCancellation(err) || !(err instanceof ActivityFailure) || !patched('run-failure')) throw err;
    const cause = failureCause(err);
    await failRun({
      tenant: input.tenant,
      runId: state.runId,
      asOf,
      workflowId: workflowInfo().workflowId,
      code: cause.code,
      message: cause.message,
    }).catch(() => undefined);
    throw ApplicationFailure.create({ type: cause.code, message: cause.message, nonRetryable: true, cause: err });
  }
}

/** The code and message a failed activity carries (its ApplicationFailure), or a generic one. */
function failureCause(err: ActivityFailure): { code: string; message: string } {
  const cause = err.cause;
  if (cause instanceof ApplicationFailure && cause.type && /^[a-z][a-z0-9_]*$/.test(cause.type))
    return { code: cause.type, message: cause.message };
  return { code: 'run_failed', message: `${err.activityType} failed: ${cause?.message ?? err.message}` };
}

async function reconcileSteps(
  input: ReconcileInput,
  asOf: string,
  state: ResumeState,
): Promise<Awaited<ReturnType<ReconActivities['reportRun']>>> {
  const tenant = input.tenant;
  const progress: RunProgress = {
    tenant,
    asOf,
    phase: state.phase,
    runId: state.runId,
    chunksDone: state.chunksDone,
    outcomesEvaluated: 0,
    chargesPosted: 0,
    claimPagesPulled: 0,
  };
  setHandler(progressQuery, () => ({
    ...progress,
    phase: state.phase,
    runId: state.runId,
    chunksDone: state.chunksDone,
  }));

  const checkpoint = async () => {
    if (workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof reconcileTenant>({ tenant, asOf, resume: state });
    }
  };
  const enter = (phase: ResumeState['phase']) => {
    state.phase = phase;
    state.cursor = 0;
  };

  if (state.phase === 'start') {
    const started = await startRun({ tenant, asOf, workflowId: workflowInfo().workflowId });
    state.runId = started.runId;
    state.sources = started.claimSources;
    state.recordSources = started.recordSources ?? [];
    // A small tenant's night costs the server and the worker more in tasks and events than in rows:
    // it settles in one activity and skips the deliveries it has no sink or webhook for.
    if (started.smallNight && patched('small-night'))
      state.small = { sinks: started.hasSinks ?? true, alertWebhook: started.hasAlertWebhook ?? true };
    enter('pull');
  }
  const runId = state.runId;

  if (state.phase === 'pull') {
    // The cursor here is the index of the claim source being pulled.
    const sources = state.sources ?? [];
    while (state.cursor < sources.length) {
      const source = sources[state.cursor];
      const r = await pullClaims({
        tenant,
        source: source.name,
        kind: source.kind,
        url: source.url,
        pageSize: source.pageSize,
        pagesPerChunk: source.pagesPerChunk,
      });
      progress.claimPagesPulled += r.pages;
      state.chunksDone++;
      if (r.caughtUp) state.cursor++;
      await checkpoint();
    }
    // Then the record sources the night pulls itself; recordCursor indexes them.
    const recordSources = state.recordSources ?? [];
    while ((state.recordCursor ?? 0) < recordSources.length) {
      const r = await pullRecords({ tenant, source: recordSources[state.recordCursor ?? 0] });
      progress.recordPagesPulled = (progress.recordPagesPulled ?? 0) + r.pages;
      state.chunksDone++;
      if (r.caughtUp) state.recordCursor = (state.recordCursor ?? 0) + 1;
      // The API's budget is spent: a durable wait, holding no worker slot and no other tenant's night.
      else if (r.waitMs > 0) await sleep(r.waitMs);
      await checkpoint();
    }
    enter('attach');
  }

  if (state.phase === 'attach' && state.small) {
    const r = await settleSmallNight({ tenant, runId, asOf });
    state.chunksDone += r.chunks;
    progress.outcomesEvaluated += r.outcomesEvaluated;
    progress.chargesPosted += r.posted;
    state.posted = {
      count: (state.posted?.count ?? 0) + r.posted,
      amountMinor: (state.posted?.amountMinor ?? 0) + r.amountMinor,
    };
    enter('report');
  }

  if (state.phase === 'attach') {
    // New outcomes are created already evaluated (attach needs asOf for that); histories recorded
    // before attach their claims to bare outcomes, for evaluate to decide.
    const fused = patched('fused-attach');
    for (;;) {
      const r = await attachClaims(fused ? { tenant, runId, asOf } : { tenant, runId });
      state.chunksDone += r.chunks;
      progress.outcomesEvaluated += r.outcomesEvaluated ?? 0;
      if (r.done) break;
      await checkpoint();
    }
    enter('evaluate');
  }

  if (state.phase === 'evaluate') {
    for (;;) {
      const r = await evaluateOutcomes({ tenant, runId, asOf, cursor: state.cursor });
      state.cursor = r.cursor;
      state.chunksDone += r.chunks;
      progress.outcomesEvaluated += r.processed;
      if (r.done) break;
      await checkpoint();
    }
    // Histories recorded before credits existed replay without this step.
    if (patched('credit-reversals')) await reverseCharges({ tenant, runId, asOf });
    if (patched('period-lines')) await postPeriodLines({ tenant, runId, asOf });
    enter('post');
  }

  if (state.phase === 'post') {
    for (;;) {
      const r = await postCharges({ tenant, runId, asOf, cursor: state.cursor });
      state.cursor = r.cursor;
      state.chunksDone += r.chunks;
      progress.chargesPosted += r.posted;
      state.posted = {
        count: (state.posted?.count ?? 0) + r.posted,
        amountMinor: (state.posted?.amountMinor ?? 0) + r.amountMinor,
      };
      if (r.done) break;
      await checkpoint();
    }
    enter('report');
  }

  if ((!state.small || state.small.sinks) && patched('sink-delivery')) await deliverNight(tenant);

  if ((!state.small || state.small.alertWebhook) && patched('alert-delivery')) {
    // Alerts are told, not awaited: a webhook that is down must not fail the night.
    await deliverAlertsBestEffort({ tenant, asOf }).catch(() => undefined);
  }

  const summary = await reportRun({ tenant, runId, asOf, posted: state.posted ?? { count: 0, amountMinor: 0 } });
  enter('done');
  return summary;
}

/**
 * Delivers the night's lines (and anything still owed) to the tenant's billing sinks, after
 * posting. Whatever is left (a sink down, a Retry-After, a backlog beyond the night's passes)
 * goes to the tenant's delivery loop, started here or woken if it is already waiting. Never fails
 * the night: the ledger is already written, and the run report shows what is pending.
 */
async function deliverNight(tenant: string): Promise<void> {
  try {
    let pass = await deliverToSinks({ tenant });
    for (let n = 1; !pass.done && n < NIGHT_DELIVERY_PASSES; n++) pass = await deliverToSinks({ tenant });
    if (pass.pending === 0) return;
  } catch (err) {
    if (isCancellation(err)) throw err;
  }
  try {
    await startChild(deliverSinks, {
      workflowId: sinkWorkflowId(tenant),
      args: [{ tenant }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: [{ key: TENANT, value: tenant }],
    });
  } catch (err) {
    if (isCancellation(err)) throw err;
    // Already running: it may be waiting out a backoff that the night's new lines should not wait for.
    await getExternalWorkflowHandle(sinkWorkflowId(tenant))
      .signal(wakeSignal)
      .catch(() => undefined);
  }
}
