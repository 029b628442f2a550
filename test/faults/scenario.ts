import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type Client, type WorkflowHandle } from '@temporalio/client';
import { createPool, type Pool } from '../../src/db/pool';
import { applyContract } from '../../src/db/contracts';
import { ContractSchema } from '../../src/domain/contract';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { writeExport } from '../../src/export/export';
import { findOutcomeId } from '../../src/reconcile/explain';
import { startClaimsServer, type ClaimsServer } from '../../src/sources/claims-server';
import { TENANT_KEY, AS_OF_KEY } from '../../src/temporal/run-client';
import { openDisputeViaTemporal, resolveDisputeViaTemporal } from '../../src/temporal/dispute-client';
import { reconcileTenant } from '../../workflows';
import { runWorkflowId } from '../../workflows/messages';
import { disputeWorkflowId } from '../../workflows/dispute-messages';
import { NIGHTS, type Story } from './data';
import { WorkerProcess, type ScenarioStack } from './stack';
import { checkSink, settleSink, startSink, type SinkCheck, type SinkUnderTest } from './sink';
import { HELPDESK_HEADER } from '../support/fixtures';
import { pullCounts, startPulledTenant, type PulledTenant, type PullCounts } from './pulled';

const EXAMPLE = new URL('../../examples/contract.acme.json', import.meta.url);
export const CHUNK_SIZE = 15;

/** What a fault does to one run; every hook is optional. */
export interface FaultHooks {
  /** Before night `night`'s workflows start (its story already applied): arms a fault of the pulled sources. */
  beforeNight?(ctx: RunContext, night: number): Promise<void>;
  /** While the pulled tenant's night `night` runs (before the file tenant's). */
  duringPulledNight?(ctx: RunContext, night: number, handle: WorkflowHandle): Promise<void>;
  /** While night `night`'s workflow runs; resolves when the fault has been injected and repaired. */
  duringNight?(ctx: RunContext, night: number, handle: WorkflowHandle): Promise<void>;
  /** Resolves a dispute; the default calls the update with the worker up. */
  resolveDispute?(ctx: RunContext, resolve: () => Promise<unknown>): Promise<unknown>;
  /** Called once the claims server is up and before night 0 (to queue HTTP faults). */
  prepare?(ctx: RunContext): Promise<void>;
  /** After the last night, before the sink's fault is cleared and its debts settled. */
  finish?(ctx: RunContext): void | Promise<void>;
}

export interface RunContext {
  name: string;
  tenant: string;
  taskQueue: string;
  pool: Pool;
  client: Client;
  worker: WorkerProcess;
  claims: ClaimsServer;
  stack: ScenarioStack;
  /** The tenant's billing sink (a Stripe emulator of this run's own). */
  sink: SinkUnderTest;
  /** The second tenant, pulled from Zendesk and the AI side's PostgreSQL; `handle` is its current night. */
  pulled: PulledTenant & { handle: WorkflowHandle | null };
  log: (m: string) => void;
}

export interface RunResult {
  csv: Buffer;
  seconds: number;
  workerStarts: number;
  /** Charges not cancelled by a credit beyond one per outcome, plus repeated ledger keys. */
  duplicates: number;
  /** The sink compared with the ledger once every debt is settled. */
  sink: SinkCheck;
  /** The pulled tenant's export, duplicates and what its pulls left behind. */
  pulled: { csv: Buffer; duplicates: number; counts: PullCounts };
}

function workflowIdOf(tenant: string, night: number): string {
  return runWorkflowId(tenant, NIGHTS[night].toISOString());
}

/**
 * Runs the whole story on a fresh database and tenant with its own worker process and claims
 * server, applying `hooks` on the way; returns the ledger export (every period, in order).
 */
export async function runScenario(
  stack: ScenarioStack,
  client: Client,
  story: Story,
  name: string,
  hooks: FaultHooks,
  dir: string,
  log: (m: string) => void,
  nights = NIGHTS.length,
): Promise<RunResult> {
  const t0 = Date.now();
  const url = await stack.freshDatabase(`f_${name.replace(/-/g, '_')}`);
  const pool = createPool(url);
  const claims = await startClaimsServer({ hangMs: 35_000 });
  const sink = await startSink();
  const tenant = `t-${name}`;
  const pulledTenant = await startPulledTenant({
    tenant: `z-${name}`,
    story: story.pulled,
    adminUrl: stack.adminUrl,
    aiDatabase: `f_${name.replace(/-/g, '_')}_ai`,
  });
  const pulled = Object.assign(pulledTenant, { handle: null as WorkflowHandle | null });
  const taskQueue = `faults-${name}`;
  const worker = new WorkerProcess(
    {
      ...process.env,
      ...(stack.workflowBundle ? { RECON_WORKFLOW_BUNDLE: stack.workflowBundle } : {}),
      DATABASE_URL: url,
      TEMPORAL_ADDRESS: stack.temporalAddress,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: taskQueue,
      // The worker reads sink and source secrets from its environment (process.env), as in production.
      ...sink.env,
      ...pulled.env,
    },
    CHUNK_SIZE,
  );
  const ctx: RunContext = {
    name,
    tenant,
    taskQueue,
    pool,
    client,
    worker,
    claims,
    stack,
    sink,
    pulled,
    log: (m) => log(`[${name}] ${m}`),
  };
  const runDir = path.join(dir, name);
  await mkdir(runDir, { recursive: true });
  try {
    const example = JSON.parse(await readFile(EXAMPLE, 'utf8')) as {
      outcomeTypes: { resolved_ticket: Record<string, unknown> };
    };
    const terms = example.outcomeTypes.resolved_ticket;
    delete terms.unitPrice;
    await applyContract(
      pool,
      ContractSchema.parse({
        ...example,
        tenant,
        claimSources: { vendor: { kind: 'http', url: claims.url, pageSize: 7, pagesPerChunk: 3 } },
        alertWebhook: claims.alertsUrl,
        sinks: sink.contract,
        outcomeTypes: {
          resolved_ticket: {
            ...terms,
            clawbackWindow: 'P10D',
            pricing: {
              baseFee: '25.00',
              included: 5,
              tiers: [{ upTo: 20, unitPrice: '1.20' }, { unitPrice: '0.80' }],
              cap: { amount: '60.00' },
              alerts: [0.5, 0.9],
            },
          },
        },
      }),
    );
    await applyContract(pool, pulled.contract);
    await worker.start();
    await hooks.prepare?.(ctx);
    for (let night = 0; night < nights; night++) {
      const asOf = NIGHTS[night];
      const fileClaims = story.claims
        .filter((c) => c.night === night && c.via === 'file')
        .map((c) => JSON.stringify(c.item));
      if (fileClaims.length) {
        const file = path.join(runDir, `claims-${night}.jsonl`);
        await writeFile(file, fileClaims.join('\n') + '\n');
        await importClaimsFile(pool, { tenant, file, now: asOf });
      }
      const rows = story.records
        .filter((r) => r.night === night)
        .map(({ item: v }) => `${v.ticket},${v.status},${v.solvedAt},${v.updatedAt},${v.csat}`);
      if (rows.length) {
        const file = path.join(runDir, `records-${night}.csv`);
        await writeFile(file, [HELPDESK_HEADER, ...rows].join('\n') + '\n');
        await importRecordsFile(pool, { tenant, source: 'helpdesk', file, now: asOf });
      }
      claims.publish(story.claims.filter((c) => c.night === night && c.via === 'http').map((c) => c.item));
      // The pulled tenant's night first, then the file tenant's, on the same worker: one at a
      // time, so that database-assigned ids do not depend on how the two interleave.
      await pulled.seedNight(night);
      await hooks.beforeNight?.(ctx, night);
      const pulledHandle = await startNight(client, pulled.tenant, taskQueue, night);
      pulled.handle = pulledHandle;
      const pulledFault = hooks.duringPulledNight?.(ctx, night, pulledHandle);
      await nightResult(ctx, pulledHandle, night);
      await pulledFault;
      await worker.start();

      const handle = await startNight(client, tenant, taskQueue, night);
      const fault = hooks.duringNight?.(ctx, night, handle);
      await nightResult(ctx, handle, night);
      await fault;
      // A fault that struck after the run ended must still leave a worker for the next night.
      await worker.start();

      for (const d of story.disputes.filter((x) => x.night === night)) {
        const outcomeId = await findOutcomeId(pool, { tenant, subject: d.ticket });
        await openDisputeViaTemporal(client, {
          tenant,
          outcomeId,
          actor: 'sam',
          reason: `customer says ${d.ticket} is not resolved`,
          taskQueue,
          timeoutMs: 120_000,
        });
      }
      for (const d of story.disputes.filter((x) => x.night === night - 1)) {
        const outcomeId = await findOutcomeId(pool, { tenant, subject: d.ticket });
        const resolve = () =>
          resolveDisputeViaTemporal(client, {
            workflowId: disputeWorkflowId(tenant, outcomeId),
            decision: d.decision,
            actor: 'lee',
            note: `${d.decision} ${d.ticket}`,
            taskQueue,
            timeoutMs: 300_000,
          });
        await (hooks.resolveDispute ? hooks.resolveDispute(ctx, resolve) : resolve());
        await worker.start();
      }
    }
    const csv = await exportAll(pool, tenant);
    const duplicates = await countDuplicates(pool, tenant);
    const pulledResult = {
      csv: await exportAll(pool, pulled.tenant),
      duplicates: await countDuplicates(pool, pulled.tenant),
      counts: await pullCounts(pool, pulled.tenant),
    };
    await hooks.finish?.(ctx);
    // A fault that struck after the last night must still leave a worker for the delivery loop.
    await worker.start();
    const settledBy = await settleSink(pool, client, sink, tenant, ctx.log);
    const sinkCheck = await checkSink(pool, sink, tenant, settledBy);
    ctx.log(
      `sink: ${sinkCheck.items} invoice items for ${sinkCheck.batches} batches, settled by ${settledBy}; ${sinkCheck.duplicates} duplicates, ${sinkCheck.lost} lines lost${sinkCheck.problems.length ? `; ${sinkCheck.problems.slice(0, 3).join(' | ')}` : ''}`,
    );
    const injected = Object.entries(claims.injected).filter(([k, n]) => k !== 'ok' && n > 0);
    if (injected.length) ctx.log(`claims source faults served: ${injected.map(([k, n]) => `${n}× ${k}`).join(', ')}`);
    return {
      csv,
      seconds: (Date.now() - t0) / 1000,
      workerStarts: worker.starts,
      duplicates,
      sink: sinkCheck,
      pulled: pulledResult,
    };
  } catch (err) {
    ctx.log(`failed; worker log tail:\n${worker.log.slice(-1500)}`);
    throw err;
  } finally {
    await worker.stop().catch(() => undefined);
    await claims.close();
    await sink.close();
    await pulled.close();
    await pool.end();
  }
}

function startNight(client: Client, tenant: string, taskQueue: string, night: number): Promise<WorkflowHandle> {
  const asOf = NIGHTS[night];
  return client.workflow.start(reconcileTenant, {
    taskQueue,
    workflowId: workflowIdOf(tenant, night),
    args: [{ tenant, asOf: asOf.toISOString() }],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    typedSearchAttributes: [
      { key: TENANT_KEY, value: tenant },
      { key: AS_OF_KEY, value: asOf },
    ],
  });
}

/** The night's result; the client's own calls are retried while Temporal restarts. Stuck nights are explained. */
async function nightResult(ctx: RunContext, handle: WorkflowHandle, night: number): Promise<void> {
  const started = Date.now();
  let done = false;
  let failed: unknown = null;
  const result = (async () => {
    for (;;) {
      try {
        await handle.result();
        return;
      } catch (err) {
        // A workflow failure is final; a lost connection to a restarting server is not.
        if ((err as Error).name === 'WorkflowFailedError' || Date.now() - started > STUCK_MS) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  })().then(
    () => (done = true),
    (err) => ((failed = err), (done = true)),
  );
  while (!done) {
    await Promise.race([result, new Promise((r) => setTimeout(r, 60_000))]);
    if (done) break;
    const d = await ctx.client.workflowService
      .describeWorkflowExecution({ namespace: 'default', execution: { workflowId: handle.workflowId } })
      .catch(() => null);
    const pending = (d?.pendingActivities ?? []).map(
      (a) => `${a.activityType?.name} attempt ${a.attempt}: ${a.lastFailure?.message ?? 'no failure yet'}`,
    );
    ctx.log(
      `night ${night} still running after ${Math.round((Date.now() - started) / 1000)} s; pending: ${pending.join(' | ') || '(none)'}; worker ${ctx.worker.running ? 'up' : 'down'}`,
    );
    if (Date.now() - started > STUCK_MS) {
      ctx.log(`worker log tail:\n${ctx.worker.log.slice(-3000)}`);
      throw new Error(
        `night ${night} did not finish within ${STUCK_MS / 1000} s; pending: ${pending.join(' | ') || '(none)'}`,
      );
    }
  }
  // The night's own rejection reason, rethrown as it came (an Error from the SDK or an assertion).
  // eslint-disable-next-line @typescript-eslint/only-throw-error
  if (failed) throw failed;
}

/** A night that has not finished after this long is stuck (a killed activity costs its 2-minute heartbeat timeout). */
const STUCK_MS = 8 * 60_000;

async function exportAll(pool: Pool, tenant: string): Promise<Buffer> {
  const { rows } = await pool.query<{ period: string }>(
    'select distinct period from ledger_entries where tenant_id = $1 order by period',
    [tenant],
  );
  const chunks: Buffer[] = [];
  for (const { period } of rows) {
    const out = new Writable({
      write(c: Buffer, _e, cb) {
        chunks.push(Buffer.from(c));
        cb();
      },
    });
    await writeExport(pool, { tenant, period, format: 'csv', out });
  }
  return Buffer.concat(chunks);
}

async function countDuplicates(pool: Pool, tenant: string): Promise<number> {
  const {
    rows: [d],
  } = await pool.query<{ doubled: number; keys: number }>(
    `select
       (select coalesce(sum(live - 1), 0)::int from (
          select c.outcome_id, count(*) filter (where not exists (select 1 from ledger_entries r where r.reverses_entry_id = c.entry_id)) as live
            from ledger_entries c where c.tenant_id = $1 and c.kind = 'charge' and c.outcome_id is not null group by c.outcome_id) x where live > 1) as doubled,
       (select count(*) - count(distinct idempotency_key) from ledger_entries where tenant_id = $1)::int as keys`,
    [tenant],
  );
  return d.doubled + d.keys;
}
