import type { Command } from 'commander';
import { z } from 'zod';
import { explainOutcome, findOutcomeId, listOutcomes } from '../../reconcile/explain';
import { ReconError } from '../../domain/errors';
import type { CommandContext } from '../context';
import { formatStory, formatTable } from '../format';
import { TenantOpt, emit, parseOptions } from '../io';

const STATES = ['awaiting_evidence', 'in_grace', 'confirmed', 'billed', 'credited', 'rejected'] as const;

export function registerOutcomeCommands(program: Command, ctx: CommandContext): void {
  const outcome = program.command('outcome').description('outcomes and the evidence behind them');
  outcome
    .command('show [id]')
    .description('the whole story of one outcome: claims, record versions, grace, history, ledger')
    .option('--tenant <tenant>', 'tenant id (with --subject)')
    .option('--subject <ref>', "the customer's id of the ticket or lead")
    .option('--type <type>', 'outcome type, when a subject has several')
    .action(async (id: string | undefined, o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ tenant: TenantOpt.optional(), subject: z.string().optional(), type: z.string().optional() }), o);
      let outcomeId: number;
      if (id) {
        outcomeId = parseOptions(z.coerce.number().int().positive(), id);
      } else if (a.tenant && a.subject) {
        outcomeId = await findOutcomeId(ctx.db(), { tenant: a.tenant, subject: a.subject, type: a.type });
      } else {
        throw new ReconError('bad_input', 'give an outcome id, or --tenant and --subject');
      }
      const story = await explainOutcome(ctx.db(), outcomeId);
      emit(cmd.optsWithGlobals(), story, () => formatStory(story));
    });

  outcome
    .command('list')
    .description("a tenant's outcomes, optionally in one state")
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--state <state>', STATES.join('|'))
    .option('--limit <n>', 'rows to show', '100')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ tenant: TenantOpt, state: z.enum(STATES).optional(), limit: z.coerce.number().int().min(1).max(100_000) }), o);
      const rows = await listOutcomes(ctx.db(), a);
      emit(cmd.optsWithGlobals(), rows, () => formatTable(rows));
    });
}
