import type { Command } from 'commander';
import { listTenants } from '../../reconcile/tenants';
import type { CommandContext } from '../context';
import { formatTable, plural } from '../format';
import { emit } from '../io';
import { ReconError } from '../../domain/errors';

export function registerTenantCommands(program: Command, ctx: CommandContext): void {
  program
    .command('tenant')
    .description('tenants, in every cell')
    .command('list')
    .description('every tenant with its contract version in effect, currency, timezone and last run')
    .action(async (_o: unknown, cmd: Command) => {
      const now = new Date();
      const listed = await ctx.cells().eachCell((pool) => listTenants(pool, now));
      const rows = listed.answered
        .flatMap((a) => a.value.map((t) => ({ ...t, cell: a.cell.name })))
        .sort((a, b) => a.tenant.localeCompare(b.tenant));
      const cells = listed.answered.length + listed.down.length > 1;
      emit(cmd.optsWithGlobals(), rows, () =>
        [
          rows.length === 0 && listed.down.length === 0
            ? 'no tenants yet: `recon contract apply FILE` creates one'
            : formatTable(
                rows.map((t) => ({
                  tenant: t.tenant,
                  ...(cells && { cell: t.cell }),
                  contract: t.contractVersion === null ? '-' : `v${t.contractVersion} of ${t.versions}`,
                  currency: t.currency,
                  timezone: t.timezone,
                  'last run (as of)': t.lastRun?.asOf ?? 'never',
                  status: t.lastRun?.status ?? '-',
                  finished: t.lastRun?.finishedAt ?? '-',
                })),
              ),
          ...listed.down.map(
            (d) =>
              `cell ${d.cell} did not answer; not listed: ${d.tenants.join(', ') || 'no placed tenants'} (${d.why})`,
          ),
          plural(rows.length, 'tenant'),
        ].join('\n'),
      );
      if (listed.down.length)
        throw new ReconError(
          'cell_unavailable',
          `${plural(listed.down.length, 'cell')} did not answer (${listed.down.map((d) => d.cell).join(', ')}); the list above is missing their tenants`,
        );
    });
}
