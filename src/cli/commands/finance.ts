import type { Command } from 'commander';
import { z } from 'zod';
import { PeriodSchema } from '../../domain/periods';
import { ReconError } from '../../domain/errors';
import { parseCustomerTimestamp } from '../../domain/timestamps';
import { listAlerts } from '../../reconcile/alerts';
import { closePeriod } from '../../reconcile/period-close';
import { upsertIndexPoints, type IndexPoint } from '../../reconcile/price-index';
import { buildStatement, formatStatement } from '../../reconcile/statement';
import { readRows } from '../../sources/rows';
import type { CommandContext } from '../context';
import { formatMoney, formatTable, plural } from '../format';
import { tenantCurrency } from '../../reconcile/tenants';
import { TenantOpt, emit, parseOptions } from '../io';

const IndexRowSchema = z.object({
  series: z.string().trim().regex(/^[a-z][a-z0-9_-]*$/, 'expected a series name such as gpu-cost'),
  effective_from: z.string().trim().min(1),
  multiplier: z.string().trim().regex(/^\d+(\.\d{1,6})?$/, 'expected a decimal multiplier with at most 6 decimals, such as 1.05'),
});

export function registerFinanceCommands(program: Command, ctx: CommandContext): void {
  program
    .command('statement')
    .description('what to invoice for a period: base fee, included, tiers, capped, credits, commitment, alerts, forecast, total')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .requiredOption('--period <YYYY-MM>', 'billing period')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ tenant: TenantOpt, period: PeriodSchema }), o);
      const s = await buildStatement(ctx.db(), a);
      emit(cmd.optsWithGlobals(), s, () => formatStatement(s));
    });

  program
    .command('period')
    .description('billing periods')
    .command('close')
    .description('close a period: nothing new lands in it; late lines go to the next open period')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .requiredOption('--period <YYYY-MM>', 'billing period')
    .requiredOption('--actor <name>', 'who closes it')
    .option('--note <text>', 'why')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ tenant: TenantOpt, period: PeriodSchema, actor: z.string().trim().min(1), note: z.string().optional() }), o);
      const r = await closePeriod(ctx.db(), a);
      emit(cmd.optsWithGlobals(), r, () => (r.alreadyClosed ? `${r.period} was already closed by ${r.closedBy} at ${r.closedAt}` : `${r.period} closed by ${r.closedBy} at ${r.closedAt}`));
    });

  program
    .command('alerts')
    .description('usage alerts (share of cap or commitment), once per threshold and period')
    .command('list')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--period <YYYY-MM>', 'only this period')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ tenant: TenantOpt, period: PeriodSchema.optional() }), o);
      const rows = await listAlerts(ctx.db(), a);
      const currency = await tenantCurrency(ctx.db(), a.tenant);
      emit(cmd.optsWithGlobals(), rows, () =>
        formatTable(rows.map(({ usageMinor, limitMinor, ...r }) => ({ ...r, threshold: `${Math.round(r.threshold * 100)}%`, usage: formatMoney(usageMinor, currency), limit: formatMoney(limitMinor, currency) }))),
      );
    });

  program
    .command('index')
    .description('price index series (effective-dated multipliers on unit prices)')
    .command('import <file>')
    .description('CSV with series, effective_from, multiplier')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .action(async (file: string, o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ tenant: TenantOpt }), o);
      const points: IndexPoint[] = [];
      for await (const r of readRows(file, 'csv', { requiredColumns: ['series', 'effective_from', 'multiplier'] })) {
        const where = `${file} line ${r.position.line}`;
        if (!r.ok) throw new ReconError(r.code, `${where}: ${r.reason}`);
        const p = IndexRowSchema.safeParse(r.values);
        if (!p.success) throw new ReconError('invalid_field', `${where}: field ${p.error.issues[0].path.join('.')}: ${p.error.issues[0].message}`);
        points.push({ series: p.data.series, effectiveFrom: parseCustomerTimestamp(p.data.effective_from, 'UTC'), multiplier: p.data.multiplier });
      }
      const changed = await upsertIndexPoints(ctx.db(), a.tenant, points);
      emit(cmd.optsWithGlobals(), { points: points.length, changed }, () => `price index: ${plural(points.length, 'point')} read, ${changed} new or changed`);
    });
}
