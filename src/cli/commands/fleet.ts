import type { Command } from 'commander';
import { z } from 'zod';
import { lastNight, nightWindow } from '../../domain/fleet';
import { fleetNight, fleetReport, formatFleetReport } from '../../reconcile/fleet';
import { listScheduleFacts } from '../../temporal/schedules';
import type { CommandContext } from '../context';
import { emit, parseOptions } from '../io';

export function registerFleetCommands(program: Command, ctx: CommandContext): void {
  const fleet = program.command('fleet').description('every tenant at once');
  fleet
    .command('status')
    .description("every tenant's run of one night: problems first, then a summary line")
    .option('--night <date>', "a calendar day YYYY-MM-DD, taken in each tenant's timezone; default: last night")
    .option('--late-after <minutes>', 'a night not finished this long after its scheduled time is late', '120')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(
        z.object({
          night: z
            .string()
            .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a calendar day YYYY-MM-DD')
            .optional(),
          lateAfter: z.coerce
            .number()
            .int()
            .min(1)
            .max(7 * 24 * 60),
        }),
        o,
      );
      const now = new Date();
      const night = a.night ?? lastNight(now);
      nightWindow(night, 'UTC'); // refuses 2026-02-30 before the database does, in our words
      const nights = await ctx.cells().eachCell((pool) => fleetNight(pool, night, now));
      const rows = nights.answered.flatMap((a) => a.value.map((r) => ({ ...r, cell: a.cell.name })));
      // The schedules say when each night was due and whether Temporal started it; without them
      // the runs alone still tell completed, failed and missing.
      const schedules = await ctx
        .temporal()
        .then((c) => listScheduleFacts(c))
        .catch(() => null);
      const report = fleetReport({
        night,
        rows,
        schedules,
        now,
        lateAfterMs: a.lateAfter * 60_000,
        down: nights.down,
      });
      emit(cmd.optsWithGlobals(), report, () => formatFleetReport(report));
    });
}
