import type { Command } from 'commander';
import { z } from 'zod';
import { ReconError } from '../../domain/errors';
import { listRuns, showRun, type RunRecord } from '../../reconcile/run-history';
import type { CommandContext } from '../context';
import { formatShown, formatSummary, formatTable, plural } from '../format';
import { InstantOpt, TenantOpt, emit, parseOptions } from '../io';

const STATUSES = ['running', 'completed', 'failed'] as const;

function took(r: RunRecord): string {
  if (!r.finishedAt) return '-';
  const s = Math.round((Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 1000);
  return s < 120 ? `${s}s` : `${Math.round(s / 60)}m`;
}

function formatRun(r: RunRecord): string {
  const head = `run ${r.runId} · tenant ${r.tenant} · as of ${r.asOf} · ${r.status.toUpperCase()} · ${plural(r.attempts, 'attempt')} · started ${r.startedAt}${r.finishedAt ? ` · finished ${r.finishedAt} (${took(r)})` : ''}`;
  if (!r.summary) return `${head}\n  no summary stored${r.status === 'running' ? ' yet: the run is still going' : ''}`;
  let body: string;
  try {
    body = formatSummary(r.summary);
  } catch {
    // A summary stored by an earlier version may lack fields today's format reads; show it as stored.
    body = `summary as stored:\n${JSON.stringify(r.summary, null, 2)}`;
  }
  return `${head}\n${body}`;
}

/**
 * `run list` and `run show` under the `run` verb, which itself still starts a run. Commander lets
 * `run` take the options it knows (`--tenant`, `--as-of`) before it dispatches to `list` or `show`,
 * so they are handed on to the subcommand here; one that the subcommand does not take is refused.
 */
export function registerRunViews(program: Command, ctx: CommandContext): void {
  const run = program.commands.find((c) => c.name() === 'run');
  if (!run) throw new Error('registerRunViews needs the run command registered first');
  run.hook('preSubcommand', (parent, sub) => {
    for (const opt of parent.options) {
      const key = opt.attributeName();
      if (parent.getOptionValueSource(key) !== 'cli') continue;
      if (!sub.options.some((x) => x.attributeName() === key))
        sub.error(`error: unknown option '${opt.long}'`, { code: 'commander.unknownOption' });
      sub.setOptionValueWithSource(key, parent.getOptionValue(key), 'cli');
    }
  });

  run
    .command('list')
    .description("a tenant's past runs, latest asOf first, with status and attempts")
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--status <status>', STATUSES.join('|'))
    .option('--limit <n>', 'rows to show', '30')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(
        z.object({
          tenant: TenantOpt,
          status: z.enum(STATUSES).optional(),
          limit: z.coerce.number().int().min(1).max(10_000),
        }),
        o,
      );
      const r = await listRuns(ctx.db(), a);
      emit(cmd.optsWithGlobals(), { matching: r.matching, shown: r.items.length, items: r.items }, () =>
        [
          ...(r.items.length
            ? [
                formatTable(
                  r.items.map((x) => ({
                    run: x.runId,
                    'as of': x.asOf,
                    status: x.status,
                    attempts: x.attempts,
                    started: x.startedAt,
                    took: took(x),
                  })),
                ),
              ]
            : []),
          formatShown(r.items.length, r.matching, 'run'),
        ].join('\n'),
      );
    });

  run
    .command('show [runId]')
    .description('one past run with its stored summary, by run id or by --as-of')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--as-of <time>', 'the business time of the run (ISO 8601), instead of a run id')
    .action(async (id: string | undefined, o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ tenant: TenantOpt, asOf: InstantOpt.optional() }), o);
      if (id !== undefined && a.asOf) throw new ReconError('bad_input', 'give a run id or --as-of, not both');
      if (id === undefined && !a.asOf)
        throw new ReconError(
          'bad_input',
          `give a run id or --as-of (\`recon run list --tenant ${a.tenant}\` shows the runs)`,
        );
      const runId = id === undefined ? undefined : parseOptions(z.coerce.number().int().positive(), id);
      const r = await showRun(ctx.db(), { tenant: a.tenant, runId, asOf: a.asOf });
      emit(cmd.optsWithGlobals(), r, () => formatRun(r));
    });
}
