import type { Command } from 'commander';
import { z } from 'zod';
import { loadContractVersions, latestContract } from '../../db/contracts';
import { isValidTimeZone } from '../../domain/durations';
import * as schedules from '../../temporal/schedules';
import type { CommandContext } from '../context';
import { TenantOpt, InstantOpt, emit, parseOptions } from '../io';
import { wantedSchedules } from '../../reconcile/fleet';
import { ReconError } from '../../domain/errors';

function human(i: schedules.ScheduleInfo): string {
  return [
    `schedule ${i.scheduleId} · ${i.paused ? 'PAUSED' : 'active'} · cron ${i.cron.join(' | ') || '?'} in ${i.timezone ?? 'UTC'} · overlap ${i.overlap} · catch-up ${Math.round(i.catchupWindowMs / 3600_000)}h`,
    `  next: ${i.nextRuns.join(', ') || '-'}`,
    ...(i.recentRuns.length ? ['  recent:', ...i.recentRuns.map((r) => `    ${r.scheduledAt} → ${r.workflowId}`)] : []),
    ...(i.note ? [`  note: ${i.note}`] : []),
  ].join('\n');
}

export function registerScheduleCommands(program: Command, ctx: CommandContext): void {
  const schedule = program.command('schedule').description('the nightly Temporal Schedule of a tenant');
  const tenantOnly = z.object({ tenant: TenantOpt });

  schedule
    .command('create')
    .description('nightly run in the tenant timezone, overlap SKIP, explicit catch-up window')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--cron <expr>', 'cron expression in the schedule timezone', schedules.DEFAULT_CRON)
    .option('--timezone <zone>', "IANA zone; default the contract's timezone")
    .option(
      '--catchup <duration>',
      'how far back missed nights are still run after an outage',
      schedules.DEFAULT_CATCHUP,
    )
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(
        z.object({
          tenant: TenantOpt,
          cron: z.string(),
          timezone: z.string().refine(isValidTimeZone, 'unknown time zone').optional(),
          catchup: z.string(),
        }),
        o,
      );
      // Checked before anything is looked up: a typo is the answer, not a missing contract.
      schedules.checkCron(a.cron);
      schedules.checkCatchupWindow(a.catchup);
      const timezone = a.timezone ?? latestContract(await loadContractVersions(ctx.db(), a.tenant)).body.timezone;
      const info = await schedules.createSchedule(await ctx.temporal(), {
        tenant: a.tenant,
        taskQueue: ctx.settings().taskQueue,
        cron: a.cron,
        timezone,
        catchupWindow: a.catchup,
      });
      emit(cmd.optsWithGlobals(), info, () => `created ${human(info)}`);
    });

  for (const [verb, description, fn] of [
    [
      'describe',
      'show the schedule, its next and recent runs',
      (t: string) => async () => schedules.describeSchedule(await ctx.temporal(), t),
    ],
    [
      'pause',
      'stop nightly runs until unpaused',
      (t: string, note?: string) => async () =>
        schedules.pauseSchedule(await ctx.temporal(), t, note ?? 'paused with recon'),
    ],
    [
      'unpause',
      'resume nightly runs',
      (t: string, note?: string) => async () =>
        schedules.unpauseSchedule(await ctx.temporal(), t, note ?? 'unpaused with recon'),
    ],
    [
      'trigger',
      'start a run now (as of now)',
      (t: string) => async () => schedules.triggerSchedule(await ctx.temporal(), t),
    ],
  ] as const) {
    schedule
      .command(verb)
      .description(description)
      .requiredOption('--tenant <tenant>', 'tenant id')
      .option('--note <text>', 'why (pause/unpause)')
      .action(async (o: { tenant: string; note?: string }, cmd: Command) => {
        const { tenant } = parseOptions(tenantOnly, { tenant: o.tenant });
        const info = await fn(tenant, o.note)();
        emit(cmd.optsWithGlobals(), info, () => human(info));
      });
  }

  schedule
    .command('delete')
    .description('delete the schedule (runs already done stay)')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .action(async (o: unknown, cmd: Command) => {
      const { tenant } = parseOptions(tenantOnly, o);
      const r = await schedules.deleteSchedule(await ctx.temporal(), tenant);
      emit(cmd.optsWithGlobals(), r, () => `deleted ${r.scheduleId}`);
    });

  schedule
    .command('sync')
    .description("make every tenant's schedule match its contract in effect: create, update timezone, remove")
    .option('--dry-run', 'say what would change, change nothing')
    .action(async (o: { dryRun?: boolean }, cmd: Command) => {
      const now = new Date();
      const cells = await ctx.cells().eachCell((pool, cell) => wantedSchedules(pool, now, cell.taskQueue));
      const r = await schedules.syncSchedules(await ctx.temporal(), {
        tenants: cells.answered.flatMap((a) => a.value),
        taskQueues: cells.answered.map((a) => a.cell.taskQueue),
        dryRun: o.dryRun === true,
      });
      emit(cmd.optsWithGlobals(), { ...r, cellsDown: cells.down }, () =>
        [
          ...r.lines.map(
            (l) => `${r.dryRun ? 'would be ' : ''}${l.result.padEnd(9)} ${l.tenant}${l.detail ? ` · ${l.detail}` : ''}`,
          ),
          ...cells.down.map((d) => `cell ${d.cell} did not answer: its schedules were left as they are (${d.why})`),
          `${r.dryRun ? 'dry run: ' : ''}${Object.entries(r.totals)
            .map(([k, n]) => `${n} ${k}`)
            .join(
              ', ',
            )} (task queue ${r.taskQueues.join(', ')}; contracts carry no time of day: times are kept, new schedules at "${r.newScheduleCron}")`,
        ].join('\n'),
      );
      if (cells.down.length)
        throw new ReconError(
          'cell_unavailable',
          `${cells.down.length === 1 ? 'a cell' : `${cells.down.length} cells`} did not answer (${cells.down.map((d) => d.cell).join(', ')}); run \`recon schedule sync\` again when it is back`,
        );
    });

  schedule
    .command('backfill')
    .description('run the missed nights between two times, one after another')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .requiredOption('--from <time>', 'start (ISO 8601)')
    .requiredOption('--to <time>', 'end (ISO 8601)')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ tenant: TenantOpt, from: InstantOpt, to: InstantOpt }), o);
      schedules.checkBackfillRange(a.from, a.to, new Date());
      const info = await schedules.backfillSchedule(await ctx.temporal(), a.tenant, a.from, a.to);
      emit(
        cmd.optsWithGlobals(),
        info,
        () => `backfill requested ${a.from.toISOString()} → ${a.to.toISOString()}\n${human(info)}`,
      );
    });
}
