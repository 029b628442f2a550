import type { Command } from 'commander';
import { z } from 'zod';
import { explainOutcome, findOutcomeId, listOutcomes } from '../../reconcile/explain';
import { ReconError } from '../../domain/errors';
import type { CommandContext } from '../context';
import { formatShown, formatStory, formatTable } from '../format';
import { InstantOpt, TenantOpt, emit, parseOptions } from '../io';

const STATES = ['awaiting_evidence', 'in_grace', 'confirmed', 'billed', 'credited', 'rejected'] as const;

export function registerOutcomeCommands(program: Command, ctx: CommandContext): void {
  const outcome = program.command('outcome').description('outcomes and the evidence behind them');
  outcome
    .command('show [id]')
    .description('the whole story of one outcome: claims, record versions, grace, history, ledger')
    .option('--tenant <tenant>', 'tenant id (with --subject; with an id once there is more than one cell)')
    .option('--subject <ref>', "the customer's id of the ticket or lead")
    .option('--type <type>', 'outcome type, when a subject has several')
    .action(async (id: string | undefined, o: unknown, cmd: Command) => {
      const a = parseOptions(
        z.object({ tenant: TenantOpt.optional(), subject: z.string().optional(), type: z.string().optional() }),
        o,
      );
      let outcomeId: number;
      if (id) {
        outcomeId = parseOptions(z.coerce.number().int().positive(), id);
        await ctx.requireTenantForId(a.tenant, 'outcome');
      } else if (a.tenant && a.subject) {
        outcomeId = await findOutcomeId(ctx.db(), { tenant: a.tenant, subject: a.subject, type: a.type });
      } else {
        throw new ReconError('bad_input', 'give an outcome id, or --tenant and --subject');
      }
      const story = await explainOutcome(ctx.db(), outcomeId);
      if (a.tenant && story.outcome.tenant !== a.tenant)
        throw new ReconError('outcome_not_found', `no outcome ${outcomeId} of tenant ${a.tenant}`);
      emit(cmd.optsWithGlobals(), story, () => formatStory(story));
    });

  outcome
    .command('list')
    .description("a tenant's outcomes by id, filtered; says how many match in all")
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--state <state>', STATES.join('|'))
    .option('--type <type>', 'outcome type')
    .option('--subject <ref>', "the customer's id of the ticket or lead; end it with * for a prefix (T-1*)")
    .option('--on-hold', 'only outcomes on hold (an open dispute)')
    .option('--since <time>', 'only outcomes created or changed at or after this time (ISO 8601)')
    .option('--limit <n>', 'rows to show', '100')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(
        z.object({
          tenant: TenantOpt,
          state: z.enum(STATES).optional(),
          type: z.string().trim().min(1).optional(),
          subject: z.string().trim().min(1).optional(),
          onHold: z.literal(true).optional(),
          since: InstantOpt.optional(),
          limit: z.coerce.number().int().min(1).max(100_000),
        }),
        o,
      );
      const r = await listOutcomes(ctx.db(), a);
      emit(cmd.optsWithGlobals(), { matching: r.matching, shown: r.items.length, items: r.items }, () =>
        [
          ...(r.items.length ? [formatTable(r.items.map(({ createdAt: _c, changedAt: _ch, ...x }) => x))] : []),
          formatShown(r.items.length, r.matching, 'outcome'),
        ].join('\n'),
      );
    });
}
