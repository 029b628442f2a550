import type { Command } from 'commander';
import { z } from 'zod';
import { addCell, placeTenant, reportCells } from '../../cells/admin';
import { CellNameOrDefault, CellNameSchema, DatabaseNameSchema, UrlEnvSchema, databaseWhere } from '../../domain/cells';
import { workerPolls } from '../../temporal/dispute-client';
import type { CommandContext } from '../context';
import { formatTable, plural } from '../format';
import { TenantOpt, emit, parseOptions } from '../io';

export function registerCellCommands(program: Command, ctx: CommandContext): void {
  const cell = program
    .command('cell')
    .description('tenant cells: each an ordinary PostgreSQL database with its own task queue and workers');

  cell
    .command('list')
    .description('every cell with its database, task queue, tenants, schema version and whether a worker polls it')
    .action(async (_o: unknown, cmd: Command) => {
      const cells = await reportCells(ctx.cells());
      // Whether a worker polls each queue, when Temporal answers; the list stands without it.
      const client = await ctx.temporal().catch(() => null);
      const rows = await Promise.all(
        cells.map(async (c) => ({
          ...c,
          workerPolling: client ? await workerPolls(client, c.taskQueue).catch(() => null) : null,
        })),
      );
      emit(cmd.optsWithGlobals(), rows, () =>
        [
          formatTable(
            rows.map((c) => ({
              cell: c.cell,
              'task queue': c.taskQueue,
              database: `${c.reachable ? '' : 'DOWN '}${databaseWhere(c.database)}`,
              tenants: c.tenants ?? '?',
              schema: c.schemaVersion ?? '?',
              worker: c.workerPolling === null ? '?' : c.workerPolling ? 'polling' : 'none',
            })),
          ),
          ...rows.filter((c) => c.problem).map((c) => `cell ${c.cell}: ${c.problem}`),
          `${plural(rows.length, 'cell')}, ${rows.filter((c) => !c.reachable).length} unreachable`,
        ].join('\n'),
      );
    });

  cell
    .command('add <name>')
    .description('add a cell: migrate its database, then list it in the directory')
    .option('--database-url <url>', 'its PostgreSQL URL (a password only for a server on this machine)')
    .option('--database-url-env <name>', 'the environment variable that holds its URL, in every recon process')
    .option('--database <name>', "another database on the default cell's server, reached with the same login")
    .option('--create-database', 'with --database: create it first when it does not exist')
    .option('--task-queue <queue>', 'the queue its workers poll; default the default queue with the cell name after it')
    .action(async (name: string, o: unknown, cmd: Command) => {
      const cellName = parseOptions(CellNameSchema, name);
      const a = parseOptions(
        z.object({
          databaseUrl: z.string().min(1).optional(),
          databaseUrlEnv: UrlEnvSchema.optional(),
          database: DatabaseNameSchema.optional(),
          createDatabase: z.boolean().optional(),
          taskQueue: z.string().min(1).max(200).optional(),
        }),
        o,
      );
      const r = await addCell(ctx.cells(), { name: cellName, ...a });
      emit(cmd.optsWithGlobals(), r, () =>
        [
          `cell ${r.cell} added: task queue "${r.taskQueue}", database from ${r.database}, ${
            r.migrations.applied.length
              ? `applied ${plural(r.migrations.applied.length, 'migration')}`
              : 'schema up to date'
          }`,
          `next: start its workers with \`recon worker --cell ${r.cell}\` (or restart recon dev), place tenants with \`recon cell place TENANT ${r.cell}\``,
        ].join('\n'),
      );
    });

  cell
    .command('place <tenant> <cell>')
    .description('put a new tenant in a cell before its first contract (a placed tenant stays)')
    .action(async (tenant: string, cellName: string, _o: unknown, cmd: Command) => {
      const t = parseOptions(TenantOpt, tenant);
      const c = parseOptions(CellNameOrDefault, cellName);
      const r = await placeTenant(ctx.cells(), t, c);
      emit(cmd.optsWithGlobals(), r, () =>
        r.changed
          ? `tenant ${r.tenant} placed in cell ${r.cell}: its contract, data, runs and schedule live there`
          : `tenant ${r.tenant} is in cell ${r.cell} already; nothing changed`,
      );
    });
}
