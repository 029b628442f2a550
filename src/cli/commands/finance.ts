import type { Command } from 'commander';
import { z } from 'zod';
import { PeriodSchema } from '../../domain/periods';
import { ReconError } from '../../domain/errors';
import { parseCustomerTimestamp } from '../../domain/timestamps';
import { listAlerts } from '../../reconcile/alerts';
import { closePeriod } from '../../reconcile/period-close';
import { seriesUsedBy, upsertIndexPoints, type IndexPoint } from '../../reconcile/price-index';
import { loadContractVersions } from '../../db/contracts';
import { stat } from 'node:fs/promises';
import { buildStatement, formatStatement } from '../../reconcile/statement';
import { readRows } from '../../sources/rows';
import type { CommandContext } from '../context';
import { formatTable } from '../format';
import { TenantOpt, emit, parseOptions } from '../io';

const IndexRowSchema = z.object({
  series: z.string().trim().regex(/^[a-z][a-z0-9_-]*$/, 'expected a series name such as gpu-cost'),
  effective_from: z.string().trim().min(1),
  multiplier: z.string().trim(),
});

/**
 * A multiplier scales unit prices: a positive decimal with at most 6 places. Negative (a price
 * that pays the customer) and zero (billing for nothing, silently) are refused.
 */
function checkMultiplier(text: string, where: string): string {
  if (/^-/.test(text)) throw new ReconError('invalid_multiplier', `${where}: multiplier ${text} is negative; an index multiplier must be greater than 0, such as 1.05`);
  if (!/^\d+(\.\d{1,6})?$/.test(text)) throw new ReconError('invalid_multiplier', `${where}: multiplier "${text}" is not a decimal with at most 6 places, such as 1.05`);
  if (!/[1-9]/.test(text)) throw new ReconError('invalid_multiplier', `${where}: multiplier ${text} is zero; an index multiplier must be greater than 0`);
  return text;
}

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
      emit(cmd.optsWithGlobals(), rows, () => formatTable(rows.map((r) => ({ ...r, threshold: `${Math.round(r.threshold * 100)}%` }))));
    });

  program
    .command('index')
    .description('price index series (effective-dated multipliers on unit prices)')
    .command('import <file>')
    .description('CSV with series, effective_from, multiplier')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .action(async (file: string, o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ tenant: TenantOpt }), o);
      if (!(await stat(file).then((s) => s.isFile(), () => false))) throw new ReconError('file_not_found', `${file}: no such file`);
      const used = seriesUsedBy(await loadContractVersions(ctx.db(), a.tenant));
      // The file is refused whole on its first bad row: a half-imported series would price a
      // period with some months indexed and others not.
      const points: IndexPoint[] = [];
      for await (const r of readRows(file, 'csv', { requiredColumns: ['series', 'effective_from', 'multiplier'] })) {
        const where = `${file} line ${r.position.line}`;
        if (!r.ok) throw new ReconError(r.code, `${where}: ${r.reason}`);
        const p = IndexRowSchema.safeParse(r.values);
        if (!p.success) throw new ReconError('invalid_field', `${where}: field ${p.error.issues[0].path.join('.')}: ${p.error.issues[0].message}`);
        if (!used.has(p.data.series)) {
          const known = used.size ? `its contract prices by ${[...used].map((x) => `"${x}"`).join(', ')}` : 'its contract names no indexSeries';
          throw new ReconError('unknown_series', `${where}: tenant ${a.tenant} does not use series "${p.data.series}" (${known}); nothing was imported`);
        }
        const multiplier = checkMultiplier(p.data.multiplier, where);
        points.push({ series: p.data.series, effectiveFrom: parseCustomerTimestamp(p.data.effective_from, 'UTC'), multiplier });
      }
      const changed = await upsertIndexPoints(ctx.db(), a.tenant, points);
      emit(cmd.optsWithGlobals(), { points: points.length, changed }, () => `price index: ${points.length} points read, ${changed} new or changed`);
    });
}
