import { rmSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { STATE_FILE, DEFAULT_TASK_QUEUE, readDevState, type DevState } from '../../config';
import { ReconError } from '../../domain/errors';
import { createPool } from '../../db/pool';
import { CellRouter } from '../../cells/router';
import { migrateCells } from '../../cells/admin';
import { startLocalStack } from '../../stack/local-stack';
import { connectWorker } from '../../temporal/connection';
import { DEFAULT_WORKER_LIMITS, createWorker, poolSizeFor } from '../../temporal/worker';
import { closePostgresClaimPools } from '../../sources/postgres-claims';
import { installRuntime } from '../../temporal/runtime';
import { runDemo } from '../../demo/run-demo';
import type { CommandContext } from '../context';
import { onShutdownSignal } from '../signals';

const log = (m: string) => process.stderr.write(m + '\n');

export function registerStackCommands(program: Command, _ctx: CommandContext): void {
  program
    .command('dev')
    .description('local stack (embedded PostgreSQL, Temporal dev server) and a worker in the foreground')
    .action(async () => {
      const running = readDevState();
      if (running)
        throw new ReconError(
          'dev_running',
          `recon dev is already running here (pid ${running.pid}, Temporal ${running.temporalAddress}); stop it first`,
        );
      installRuntime();
      const dir = path.join(process.cwd(), '.recon');
      const stack = await startLocalStack({ dir, persistent: true, ui: true, log });
      const connection = await connectWorker(stack.temporalAddress);
      const taskQueue = process.env.TEMPORAL_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
      // One worker per cell the directory lists (cells added later need a restart of recon dev).
      const router = new CellRouter({ databaseUrl: stack.databaseUrl, taskQueue, urlFrom: 'recon dev' });
      const cells = [router.defaultCell()];
      for (const m of (await migrateCells(router)).slice(1)) {
        if (m.problem) log(`recon dev: cell ${m.cell} skipped: ${m.problem}`);
        else cells.push(await router.cellNamed(m.cell));
      }
      await router.close();
      const pools = cells.map((c) => createPool(c.databaseUrl, poolSizeFor(DEFAULT_WORKER_LIMITS)));
      const workers = await Promise.all(
        cells.map((c, i) =>
          createWorker({ connection, namespace: 'default', taskQueue: c.taskQueue, deps: { pool: pools[i] } }),
        ),
      );
      const state: DevState = {
        databaseUrl: stack.databaseUrl,
        temporalAddress: stack.temporalAddress,
        namespace: 'default',
        taskQueue,
        uiUrl: stack.uiUrl,
        pid: process.pid,
      };
      await mkdir(path.dirname(STATE_FILE), { recursive: true });
      await writeFile(STATE_FILE, JSON.stringify(state, null, 2));
      // A second Ctrl-C exits at once (signals.ts): the state file must go anyway.
      process.on('exit', () => rmSync(STATE_FILE, { force: true }));
      console.log(
        [
          'recon dev is up:',
          ...stack.describe.map((d) => `  ${d}`),
          ...cells.map(
            (c) => `  worker polling task queue "${c.taskQueue}"${cells.length > 1 ? ` (cell ${c.name})` : ''}`,
          ),
          `  other terminals find this stack through ${STATE_FILE}`,
          'Ctrl-C stops everything.',
        ].join('\n'),
      );
      onShutdownSignal(() => workers.forEach((w) => w.shutdown()));
      try {
        await Promise.all(workers.map((w) => w.run()));
      } finally {
        await rm(STATE_FILE, { force: true });
        await closePostgresClaimPools();
        await connection.close().catch(() => undefined);
        await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
        await stack.stop();
        log('recon dev: stopped');
      }
    });

  program
    .command('demo')
    .description('seeded end-to-end story on the local stack; stops what it started')
    .option('--out <dir>', 'where the finance export goes', 'out')
    .action(async (o: { out: string }) => {
      await runDemo({ outDir: o.out, log });
    });
}
