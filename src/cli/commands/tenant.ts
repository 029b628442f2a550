import type { Command } from 'commander';
import { listTenants } from '../../reconcile/tenants';
import type { CommandContext } from '../context';
import { formatTable, plural } from '../format';
import { emit } from '../io';

export function registerTenantCommands(program: Command, ctx: CommandContext): void {
  program
    .command('tenant')
    .description('tenants known to this database')
    .command('list')
    .description('every tenant with its contract version in effect, currency, timezone and last run')
    .action(async (_o: unknown, cmd: Command) => {
      const rows = await listTenants(ctx.db(), new Date());
      emit(cmd.optsWithGlobals(), rows, () =>
        rows.length === 0
          ? 'no tenants yet: `recon contract apply FILE` creates one'
          : [
              formatTable(
                rows.map((t) => ({
                  tenant: t.tenant,
                  contract: t.contractVersion === null ? '-' : `v${t.contractVersion} of ${t.versions}`,
                  currency: t.currency,
                  timezone: t.timezone,
                  'last run (as of)': t.lastRun?.asOf ?? 'never',
                  status: t.lastRun?.status ?? '-',
                  finished: t.lastRun?.finishedAt ?? '-',
                })),
              ),
              plural(rows.length, 'tenant'),
            ].join('\n'),
      );
    });
}
