import type { Command } from 'commander';
import { z } from 'zod';
import { describeRetry, runReconciliation, type RunRetry } from '../../temporal/run-client';
import { connectWorker } from '../../temporal/connection';
import { createWorker, poolSizeFor, resolveWorkerLimits } from '../../temporal/worker';
import { createPool } from '../../db/pool';
import { closePostgresClaimPools } from '../../sources/postgres-claims';
import { installRuntime } from '../../temporal/runtime';
import { refuseFutureAsOf } from '../../reconcile/runs';
import { freeLoopbackPort, serveHealth } from '../../temporal/health';
import { routeConsoleToJson, writeLog } from '../../observability/log';
import type { RunProgress } from '../../../workflows/messages';
import { temporalUnavailable, type CommandContext } from '../context';
import { formatRunProgress, formatSummary, terminalProgress, type ProgressLine } from '../format';
import { InstantOpt, TenantOpt, emit, parseOptions } from '../io';
import { onShutdownSignal } from '../signals';
import { CellNameOrDefault, cellUnavailable } from '../../domain/cells';
import { toReconError } from '../../domain/errors';

/** The run's progress on a terminal (see terminalProgress); none on a pipe or with --json. */
export function progressPrinter(line: ProgressLine | undefined): ((p: RunProgress) => void) | undefined {
  return line ? (p) => line.update(formatRunProgress(p)) : undefined;
}

/** A failing activity is news, not progress: its own line, even on a terminal. */
export function retryPrinter(): (r: RunRetry) => void {
  return (r) => process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[K' : ''}  ! ${describeRetry(r)}\n`);
}

export function registerRunCommands(program: Command, ctx: CommandContext): void {
  program
    .command('run')
    .description('reconcile one tenant as of a time on Temporal, show progress, print the summary')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--as-of <time>', 'business time of the run (ISO 8601); default now')
    .option('--timeout <seconds>', 'give up waiting after this long', '1800')
    .action(async (o: unknown, cmd: Command) => {
      const args = parseOptions(
        z.object({ tenant: TenantOpt, asOf: InstantOpt.optional(), timeout: z.coerce.number().int().min(5) }),
        o,
      );
      refuseFutureAsOf(args.asOf ?? new Date(), new Date());
      const client = await ctx.temporal();
      const progress = cmd.optsWithGlobals().json ? undefined : terminalProgress();
      const summary = await runReconciliation(client, {
        tenant: args.tenant,
        asOf: args.asOf ?? new Date(),
        taskQueue: ctx.settings().taskQueue,
        timeoutMs: args.timeout * 1000,
        onProgress: progressPrinter(progress),
        onRetry: cmd.optsWithGlobals().json ? undefined : retryPrinter(),
      }).finally(() => progress?.done());
      emit(cmd.optsWithGlobals(), summary, () => formatSummary(summary));
    });

  program
    .command('worker')
    .description('the production worker: runs reconciliation workflows and activities from the task queue')
    .option('--chunk-size <n>', 'outcomes per set-based chunk', '2000')
    .option(
      '--cell <name>',
      "serve this cell: its database and task queue, from the directory in DATABASE_URL's database (env RECON_CELL; default: the default cell)",
    )
    .option(
      '--health-port <port>',
      'serve GET /healthz (200 while polling and Postgres answers) and GET /metrics (Prometheus) on PORT',
    )
    .option('--health-host <address>', 'the address the health port listens on', '127.0.0.1')
    .option('--max-concurrent-activities <n>', 'activities at once (env RECON_MAX_CONCURRENT_ACTIVITIES; default 4)')
    .option(
      '--max-concurrent-workflow-tasks <n>',
      'workflow tasks at once (env RECON_MAX_CONCURRENT_WORKFLOW_TASKS; default 10)',
    )
    .option(
      '--max-task-queue-activities-per-second <r>',
      'activities started per second on the whole task queue, all workers (env RECON_MAX_TASK_QUEUE_ACTIVITIES_PER_SECOND; default unlimited)',
    )
    .option(
      '--max-activities-per-second <r>',
      'activities started per second by this worker (env RECON_MAX_ACTIVITIES_PER_SECOND; default unlimited)',
    )
    .action(async (o: Record<string, string | undefined>) => {
      const limits = resolveWorkerLimits({
        maxConcurrentActivities: o.maxConcurrentActivities,
        maxConcurrentWorkflowTasks: o.maxConcurrentWorkflowTasks,
        maxTaskQueueActivitiesPerSecond: o.maxTaskQueueActivitiesPerSecond,
        maxActivitiesPerSecond: o.maxActivitiesPerSecond,
      });
      const args = parseOptions(
        z.object({
          chunkSize: z.coerce.number().int().min(1).max(100_000),
          healthPort: z.coerce.number().int().min(1).max(65_535).optional(),
          healthHost: z.string().min(1),
        }),
        o,
      );
      routeConsoleToJson();
      // The SDK's exporter must be configured before the runtime starts, so on its own loopback
      // port; /metrics on the health port serves its text with the product's.
      const sdkMetricsAddress = args.healthPort ? `127.0.0.1:${await freeLoopbackPort()}` : undefined;
      installRuntime(undefined, { sdkMetricsAddress });
      // A cell's worker reads where its cell is from the directory, once at start; it then needs
      // only its own database, so another cell's outage never reaches it.
      const cellName = o.cell ?? (process.env.RECON_CELL || undefined);
      const cell = cellName ? await ctx.cells().cellNamed(parseOptions(CellNameOrDefault, cellName)) : undefined;
      if (cell) ctx.routeToCell(cell);
      const s = ctx.settings();
      const databaseUrl = cell?.databaseUrl ?? s.databaseUrl;
      await ctx.cells().close();
      const connection = await connectWorker(s.temporalAddress).catch((err: unknown) => {
        throw temporalUnavailable(s, err);
      });
      // The pool is sized from the admitted activities, so that no night opens more connections
      // than activities × connections each (+1): see poolSizeFor.
      const pool = createPool(databaseUrl, poolSizeFor(limits));
      await pool.query('select 1').catch((err: unknown) => {
        throw cell && toReconError(err).code === 'database_unavailable' ? cellUnavailable(cell, err) : err;
      });
      const worker = await createWorker({
        connection,
        namespace: s.namespace,
        taskQueue: s.taskQueue,
        deps: { pool, chunkSize: args.chunkSize },
        limits,
      });
      onShutdownSignal(() => worker.shutdown());
      const health = args.healthPort
        ? serveHealth(args.healthPort, worker, pool, {
            host: args.healthHost,
            sdkMetricsUrl: `http://${sdkMetricsAddress}/metrics`,
          })
        : null;
      writeLog(
        'INFO',
        `recon worker: ${cell ? `cell ${cell.name}, ` : ''}polling task queue "${s.taskQueue}" on ${s.temporalAddress} (namespace ${s.namespace}); settings from ${s.from}; ` +
          `${limits.maxConcurrentActivities} activities and ${limits.maxConcurrentWorkflowTasks} workflow tasks at once, ${poolSizeFor(limits)} database connections at most`,
        { taskQueue: s.taskQueue, namespace: s.namespace, ...(cell && { cell: cell.name }) },
      );
      try {
        await worker.run();
      } finally {
        health?.close();
        await closePostgresClaimPools();
        await connection.close();
        await pool.end().catch(() => undefined);
      }
    });
}
