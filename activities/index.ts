import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Pool } from '../src/db/pool';
import { ContractCache } from '../src/db/contracts';
import { versionForRun } from '../src/domain/contract-history';
import { ReconError, isPermanentError, isRaceOrTimeout, toReconError } from '../src/domain/errors';
import { billingPeriodOf } from '../src/domain/periods';
import { refuseFutureAsOf } from '../src/reconcile/runs';
import { attachClaimsToOutcomes, type FuseWith } from '../src/reconcile/attach';
import { evaluateChunk } from '../src/reconcile/evaluate';
import { postChunk, postChunksOverlapped } from '../src/reconcile/post';
import { finishRun, markRunFailed, startRun, touchRunLease, type RunSummary } from '../src/reconcile/runs';
import { pullClaimPage } from '../src/sources/http-claims';
import { pullPostgresClaimPage } from '../src/sources/postgres-claims';
import { pullRecordPage, type ClientFor } from '../src/sources/record-pull';
import { clientFor as defaultClientFor } from '../src/sources/record-clients';
import { isPulledRecordSource } from '../src/domain/sources';
import { createDisputeActivities } from './disputes';
import { createSinkActivities } from './sinks';
import { adapterFor as defaultAdapterFor } from '../src/sinks/registry';
import type { AdapterFor } from '../src/sinks/deliver';
import { reverseSettledCharges, type ReversalResult } from '../src/reconcile/reversals';
import { postPeriodLines, type PeriodLinesResult } from '../src/reconcile/period-lines';
import { deliverAlerts } from '../src/reconcile/alerts';
import { refreshNightlyStatistics } from '../src/reconcile/statistics';
import { nightFitsIn } from '../src/reconcile/night-size';

export interface ActivityDeps {
  pool: Pool;
  /** Outcomes per set-based chunk. */
  chunkSize?: number;
  /** Chunks per activity call before handing back to the workflow. */
  chunksPerCall?: number;
  /** How long a run waits for the tenant's run in progress before it is refused (run_in_progress). */
  runLeaseWaitMs?: number;
  /** Billing-sink adapters by kind (tests may wrap them); the worker's environment holds their secrets. */
  adapterFor?: AdapterFor;
  sinkEnv?: Record<string, string | undefined>;
  /** Record-source API clients by kind (tests may wrap them); secrets of sources come from sourceEnv. */
  recordClientFor?: ClientFor;
  sourceEnv?: Record<string, string | undefined>;
  /**
   * A night with fewer unattached claims plus open outcomes than this (and nothing to pull) is
   * settled in one activity (settleSmallNight). Default: one chunk.
   */
  smallNightRows?: number;
}

/** A rate-limit wait up to this long is waited out inside the activity; longer ones durably in the workflow. */
const SHORT_WAIT_MS = 2_000;
const RECORD_PAGES_PER_CALL = 20;

/**
 * The error catalogue decides what a retry can fix. A permanent error (a bad contract, a price
 * the ledger cannot hold, an unknown tenant) fails the activity at once, non-retryable, carrying
 * its code; the workflow then marks the run failed with it. A database or service that may come
 * back (and any fault we cannot classify) is retried by Temporal as before.
 */
export async function permanentAware<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApplicationFailure || isRaceOrTimeout(err)) throw err;
    const e = toReconError(err);
    if (err === e || isPermanentError(e.code)) {
      throw ApplicationFailure.create({
        type: e.code,
        message: e.message,
        nonRetryable: isPermanentError(e.code),
        cause: err instanceof Error && err !== e ? err : undefined,
      });
    }
    throw err;
  }
}

export interface StartRunResult {
  runId: number;
  period: string;
  claimSources: Array<{
    name: string;
    kind?: 'http' | 'postgres';
    url: string;
    pageSize: number;
    pagesPerChunk: number;
  }>;
  /** Record sources the night pulls itself (Zendesk, HubSpot), in the contract's order. */
  recordSources?: string[];
  /** Nothing to pull and less than a chunk to work: attach to post fit in one settleSmallNight. */
  smallNight?: boolean;
  /** Whether any contract version names a sink (those deliverToSinks serves) and the run's version an alert webhook. */
  hasSinks?: boolean;
  hasAlertWebhook?: boolean;
}

export interface SmallNightResult {
  chunks: number;
  outcomesEvaluated: number;
  posted: number;
  amountMinor: number;
}

export interface ChunkLoopResult {
  chunks: number;
  processed: number;
  cursor: number;
  done: boolean;
}

export function createActivities(deps: ActivityDeps) {
  const { pool } = deps;
  const chunkSize = deps.chunkSize ?? 2000;
  const chunksPerCall = deps.chunksPerCall ?? 50;
  const runLeaseWaitMs = deps.runLeaseWaitMs ?? 60_000;
  const smallNightRows = deps.smallNightRows ?? chunkSize;

  /** Refreshes the tenant's run lease now and then while the run works (staleness is judged by it). */
  const lastTouch = new Map<string, number>();
  async function keepRunLease(): Promise<void> {
    const workflowId = Context.current().info.workflowExecution?.workflowId;
    if (!workflowId || Date.now() - (lastTouch.get(workflowId) ?? 0) < 30_000) return;
    if (lastTouch.size > 1000) lastTouch.clear();
    lastTouch.set(workflowId, Date.now());
    await touchRunLease(pool, workflowId);
  }

  // One parse of a tenant's versions per worker while no version is added; each activity call
  // asks the cache (one index probe) rather than reading and validating every version again.
  const contracts = new ContractCache(pool);
  const runVersion = async (tenant: string, asOf: Date) => versionForRun(await contracts.history(tenant), asOf);
  /**
   * Claims per attach chunk. A fused chunk holds its subjects' claims, record versions and
   * decisions, as an evaluate chunk (two slices of chunkSize) does: the same size keeps the worker's
   * memory where it was. A bare chunk holds claim ids only.
   */
  const attachLimit = (fuse: FuseWith | undefined) => (fuse ? chunkSize * 2 : chunkSize * 5);
  /** What a fused attach decides with: the asOf and the contract version evaluate uses for the run. */
  const fuseWith = async (tenant: string, asOf: Date): Promise<FuseWith> => ({
    asOf,
    contract: await runVersion(tenant, asOf),
  });

  /** Runs chunks from the cursor (or the last heartbeat, on a retry) until done or the call's budget. */
  async function chunkLoop(
    start: number,
    step: (cursor: number) => Promise<{ processed: number; cursor: number; done: boolean }>,
  ): Promise<ChunkLoopResult> {
    const resumed = Context.current().info.heartbeatDetails as number | undefined;
    let cursor = Math.max(start, resumed ?? 0);
    let chunks = 0;
    let processed = 0;
    for (;;) {
      const r = await step(cursor);
      chunks++;
      processed += r.processed;
      cursor = r.cursor;
      Context.current().heartbeat(cursor);
      await keepRunLease();
      if (r.done) return { chunks, processed, cursor, done: true };
      if (chunks >= chunksPerCall) return { chunks, processed, cursor, done: false };
    }
  }

  return {
    ...createDisputeActivities(pool, permanentAware),
    ...createSinkActivities(
      { pool, adapterFor: deps.adapterFor ?? defaultAdapterFor, env: deps.sinkEnv },
      permanentAware,
    ),

    async startRun(input: { tenant: string; asOf: string; workflowId: string }): Promise<StartRunResult> {
      return permanentAware(async () => {
        const asOf = new Date(input.asOf);
        refuseFutureAsOf(asOf, new Date());
        const history = await contracts.history(input.tenant);
        const contract = versionForRun(history, asOf).body;
        // One run at a time per tenant: wait a little for a run in progress, then refuse, naming it.
        const waitUntil = Date.now() + runLeaseWaitMs;
        let runId: number;
        for (;;) {
          try {
            runId = await startRun(pool, { tenant: input.tenant, asOf, workflowId: input.workflowId });
            break;
          } catch (err) {
            if (!(err instanceof ReconError && err.code === 'run_in_progress') || Date.now() >= waitUntil) throw err;
            Context.current().heartbeat();
            await Context.current().sleep(Math.min(2_000, Math.max(0, waitUntil - Date.now())));
          }
        }
        const claimSources = Object.entries(contract.claimSources).map(([name, s]) => ({
          name,
          kind: s.kind,
          url: s.kind === 'http' ? s.url : '',
          pageSize: s.pageSize,
          pagesPerChunk: s.pagesPerChunk,
        }));
        const recordSources = Object.entries(contract.recordSources)
          .filter(([, s]) => isPulledRecordSource(s))
          .map(([name]) => name);
        // Counted after the lease is taken: imports that land later are still attached, by the
        // same loops, only in one activity rather than several.
        const smallNight =
          claimSources.length === 0 &&
          recordSources.length === 0 &&
          (await nightFitsIn(pool, input.tenant, smallNightRows));
        return {
          runId,
          period: billingPeriodOf(asOf, contract.timezone),
          claimSources,
          recordSources,
          smallNight,
          // Every version counts, as deliverTenant's own list does: lines owed to a sink a later version dropped.
          hasSinks: history.versions.some((v) => Object.keys(v.body.sinks ?? {}).length > 0),
          hasAlertWebhook: !!contract.alertWebhook,
        };
      });
    },

    async pullClaims(input: {
      tenant: string;
      source: string;
      kind?: 'http' | 'postgres';
      url: string;
      pageSize: number;
      pagesPerChunk: number;
    }): Promise<{ pages: number; accepted: number; caughtUp: boolean }> {
      return permanentAware(async () => {
        let pages = 0;
        let accepted = 0;
        for (;;) {
          const r =
            input.kind === 'postgres'
              ? await pullPostgresClaimPage(pool, {
                  tenant: input.tenant,
                  source: input.source,
                  env: deps.sourceEnv ?? process.env,
                  now: new Date(),
                })
              : await pullClaimPage(pool, {
                  tenant: input.tenant,
                  source: input.source,
                  url: input.url,
                  pageSize: input.pageSize,
                  now: new Date(),
                });
          pages++;
          accepted += r.import.accepted;
          Context.current().heartbeat(r.cursor);
          await keepRunLease();
          if (r.caughtUp) return { pages, accepted, caughtUp: true };
          if (pages >= input.pagesPerChunk) return { pages, accepted, caughtUp: false };
        }
      });
    },

    /**
     * Pages of a record source's API until caught up or the call's share of pages; a rate-limit
     * wait of more than a moment goes back to the workflow, which waits durably.
     */
    async pullRecords(input: {
      tenant: string;
      source: string;
    }): Promise<{ pages: number; accepted: number; caughtUp: boolean; waitMs: number }> {
      return permanentAware(async () => {
        let pages = 0;
        let accepted = 0;
        for (;;) {
          const r = await pullRecordPage(pool, {
            tenant: input.tenant,
            source: input.source,
            clientFor: deps.recordClientFor ?? defaultClientFor,
            env: deps.sourceEnv ?? process.env,
            now: () => new Date(),
          });
          Context.current().heartbeat();
          await keepRunLease();
          if (r.status === 'wait') {
            if (r.waitMs > SHORT_WAIT_MS) return { pages, accepted, caughtUp: false, waitMs: r.waitMs };
            await Context.current().sleep(r.waitMs);
            continue;
          }
          pages++;
          accepted += r.import.accepted;
          if (r.caughtUp) return { pages, accepted, caughtUp: true, waitMs: 0 };
          if (pages >= RECORD_PAGES_PER_CALL) return { pages, accepted, caughtUp: false, waitMs: 0 };
        }
      });
    },

    /**
     * With asOf (workflows past patched('fused-attach')), the outcomes attach creates are created
     * already evaluated under the run's contract version, and evaluate skips them; without it
     * (histories recorded before), attach creates them bare as it did.
     */
    async attachClaims(input: {
      tenant: string;
      runId: number;
      asOf?: string;
    }): Promise<ChunkLoopResult & { outcomesEvaluated?: number }> {
      return permanentAware(async () => {
        // One chunk at a time (no slices side by side): outcome ids, and with them post's order
        // among equal success times, must not depend on timing (see attach.ts).
        const fuse = input.asOf ? await fuseWith(input.tenant, new Date(input.asOf)) : undefined;
        // The night's imports arrived since the last analyze: attach plans its joins on them.
        await refreshNightlyStatistics(pool);
        let outcomesEvaluated = 0;
        const r = await chunkLoop(0, async () => {
          const a = await attachClaimsToOutcomes(pool, input.tenant, input.runId, attachLimit(fuse), fuse);
          outcomesEvaluated += a.outcomesEvaluated;
          return { processed: a.attached, cursor: 0, done: a.done };
        });
        // Evaluate and post plan their statements on the night's new rows.
        if (r.done) await refreshNightlyStatistics(pool, ['outcomes']);
        return { ...r, outcomesEvaluated };
      });
    },

    async evaluateOutcomes(input: {
      tenant: string;
      runId: number;
      asOf: string;
      cursor: number;
    }): Promise<ChunkLoopResult> {
      return permanentAware(async () => {
        const asOf = new Date(input.asOf);
        const contract = await runVersion(input.tenant, asOf);
        return chunkLoop(input.cursor, async (cursor) => {
          // Two slices of a chunk at a time keep both of a small database server's cores busy.
          const r = await evaluateChunk(pool, {
            tenant: input.tenant,
            runId: input.runId,
            asOf,
            contract,
            afterOutcomeId: cursor,
            limit: chunkSize * 2,
            slices: 2,
          });
          return { processed: r.processed, cursor: r.lastOutcomeId, done: r.done };
        });
      });
    },

    async reverseCharges(input: { tenant: string; runId: number; asOf: string }): Promise<ReversalResult> {
      return permanentAware(async () => {
        const asOf = new Date(input.asOf);
        const contract = await runVersion(input.tenant, asOf);
        return reverseSettledCharges(pool, { tenant: input.tenant, runId: input.runId, asOf, contract });
      });
    },

    async postPeriodLines(input: { tenant: string; runId: number; asOf: string }): Promise<PeriodLinesResult> {
      return permanentAware(async () => {
        const asOf = new Date(input.asOf);
        const contract = await runVersion(input.tenant, asOf);
        return postPeriodLines(pool, { tenant: input.tenant, runId: input.runId, asOf, contract });
      });
    },

    /**
     * A small night's attach, evaluate, reversals, period lines and post in one call, in the order
     * and with the functions the chunked activities use, each to its end. Every step is idempotent
     * in Postgres, so a retry after a crash starts again from the first and changes nothing
     * already done (the heartbeat carries no cursor: each step finds its own work).
     */
    async settleSmallNight(input: { tenant: string; runId: number; asOf: string }): Promise<SmallNightResult> {
      return permanentAware(async () => {
        const asOf = new Date(input.asOf);
        const history = await contracts.history(input.tenant);
        const version = versionForRun(history, asOf);
        const alive = async () => {
          Context.current().heartbeat();
          await keepRunLease();
        };
        const out: SmallNightResult = { chunks: 0, outcomesEvaluated: 0, posted: 0, amountMinor: 0 };

        await refreshNightlyStatistics(pool);
        // Fused: attach and evaluate run in this one call with the same asOf and contract version.
        const fuse = { asOf, contract: version };
        for (let done = false; !done;) {
          const a = await attachClaimsToOutcomes(pool, input.tenant, input.runId, attachLimit(fuse), fuse);
          done = a.done;
          out.chunks++;
          out.outcomesEvaluated += a.outcomesEvaluated;
          await alive();
        }
        await refreshNightlyStatistics(pool, ['outcomes']);

        for (let cursor = 0, done = false; !done;) {
          const r = await evaluateChunk(pool, {
            tenant: input.tenant,
            runId: input.runId,
            asOf,
            contract: version,
            afterOutcomeId: cursor,
            limit: chunkSize * 2,
            // One slice: less than a chunk cannot keep two cores busy, and in a fleet night the
            // other tenants' nights already do; a second slice would only add its statements.
            slices: 1,
          });
          cursor = r.lastOutcomeId;
          done = r.done;
          out.chunks++;
          out.outcomesEvaluated += r.processed;
          await alive();
        }

        const run = { tenant: input.tenant, runId: input.runId, asOf, contract: version };
        await reverseSettledCharges(pool, run);
        await alive();
        await postPeriodLines(pool, run);
        await alive();

        for (let done = false; !done;) {
          const r = await postChunk(pool, {
            tenant: input.tenant,
            runId: input.runId,
            asOf,
            versions: history.versions,
            timeZone: version.body.timezone,
            limit: chunkSize,
          });
          done = r.done;
          out.chunks++;
          out.posted += r.posted;
          out.amountMinor += r.amountMinor;
          await alive();
        }
        return out;
      });
    },

    /** Best effort within the run; undelivered alerts stay queued for the next run. */
    async deliverAlerts(input: { tenant: string; asOf: string }): Promise<{ delivered: number; failed: number }> {
      return permanentAware(async () => {
        const contract = await runVersion(input.tenant, new Date(input.asOf));
        return deliverAlerts(pool, { tenant: input.tenant, webhook: contract.body.alertWebhook });
      });
    },

    async postCharges(input: {
      tenant: string;
      runId: number;
      asOf: string;
      cursor: number;
    }): Promise<ChunkLoopResult & { posted: number; amountMinor: number }> {
      return permanentAware(async () => {
        const asOf = new Date(input.asOf);
        const history = await contracts.history(input.tenant);
        const versions = history.versions;
        const current = versionForRun(history, asOf).body;
        // Two chunks at a time (postChunksOverlapped); the heartbeat carries the last outcome
        // posted, as chunkLoop's does, and a retry starts from what is committed.
        const r = await postChunksOverlapped(pool, {
          tenant: input.tenant,
          runId: input.runId,
          asOf,
          versions,
          timeZone: current.timezone,
          limit: chunkSize,
          maxChunks: chunksPerCall,
          afterChunk: async (c) => {
            Context.current().heartbeat(c.lastOutcomeId);
            await keepRunLease();
          },
        });
        const resumed = Context.current().info.heartbeatDetails as number | undefined;
        return {
          chunks: r.chunks,
          processed: r.posted,
          cursor: r.lastOutcomeId || Math.max(input.cursor, resumed ?? 0),
          done: r.done,
          posted: r.posted,
          amountMinor: r.amountMinor,
        };
      });
    },

    /** The run row says the night failed and why; a later run of the same asOf starts it again. */
    async failRun(input: {
      tenant: string;
      runId: number;
      asOf: string;
      workflowId: string;
      code: string;
      message: string;
    }): Promise<void> {
      await markRunFailed(pool, { ...input, asOf: new Date(input.asOf) });
    },

    async reportRun(input: {
      tenant: string;
      runId: number;
      asOf: string;
      posted: { count: number; amountMinor: number };
    }): Promise<RunSummary> {
      return permanentAware(async () => {
        const asOf = new Date(input.asOf);
        const contract = (await runVersion(input.tenant, asOf)).body;
        return finishRun(pool, {
          runId: input.runId,
          tenant: input.tenant,
          asOf,
          timeZone: contract.timezone,
          currency: contract.currency,
          posted: input.posted,
        });
      });
    },
  };
}

export type ReconActivities = ReturnType<typeof createActivities>;
