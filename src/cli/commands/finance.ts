import type { Command } from 'commander';
import { z } from 'zod';
import { PeriodSchema } from '../../domain/periods';
import { ReconError } from '../../domain/errors';
import { parseCustomerTimestamp } from '../../domain/timestamps';
import { listAlerts, type AlertRow } from '../../reconcile/alerts';
import { loadContractHistory } from '../../db/contracts';
import { latestVersion } from '../../domain/contract-history';
import { checkFile } from '../../ingest/files';
import { pricingOf } from '../../domain/contract';
import {
  closePeriod,
  listPeriods,
  reopenPeriod,
  type PeriodReopen,
  type PeriodState,
} from '../../reconcile/period-close';
import { seriesUsedBy, upsertIndexPoints, type IndexPoint } from '../../reconcile/price-index';
import { buildStatement, formatStatement } from '../../reconcile/statement';
import { readRows } from '../../sources/rows';
import type { CommandContext } from '../context';
import { formatMoney } from '../../domain/money';
import { formatTable, plural } from '../format';
import { TenantOpt, emit, parseOptions } from '../io';

const IndexRowSchema = z.object({
  series: z
    .string()
    .trim()
    .regex(/^[a-z][a-z0-9_-]*$/, 'expected a series name such as gpu-cost'),
  effective_from: z.string().trim().min(1),
  multiplier: z.string().trim(),
});

/**
 * A multiplier scales unit prices: a positive decimal with at most 6 places. Negative (a price
 * that pays the customer) and zero (billing for nothing, silently) are refused.
 */
function checkMultiplier(text: string, where: string): string {
  if (/^-/.test(text))
    throw new ReconError(
      'invalid_multiplier',
      `${where}: multiplier ${text} is negative; an index multiplier must be greater than 0, such as 1.05`,
    );
  if (!/^\d+(\.\d{1,6})?$/.test(text))
    throw new ReconError(
      'invalid_multiplier',
      `${where}: multiplier "${text}" is not a decimal with at most 6 places, such as 1.05`,
    );
  if (!/[1-9]/.test(text))
    throw new ReconError(
      'invalid_multiplier',
      `${where}: multiplier ${text} is zero; an index multiplier must be greater than 0`,
    );
  return text;
}

export function registerFinanceCommands(program: Command, ctx: CommandContext): void {
  program
    .command('statement')
    .description(
      'what to invoice for a period: base fee, included, tiers, capped, credits, commitment, alerts, forecast, total',
    )
    .requiredOption('--tenant <tenant>', 'tenant id')
    .requiredOption('--period <YYYY-MM>', 'billing period')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ tenant: TenantOpt, period: PeriodSchema }), o);
      const s = await buildStatement(ctx.db(), a);
      emit(cmd.optsWithGlobals(), s, () => formatStatement(s));
    });

  const period = program.command('period').description('billing periods: list, close, reopen');
  period
    .command('list')
    .description(
      'each period with ledger lines or a close record: open or closed (by whom, when), last reopen, totals per currency',
    )
    .requiredOption('--tenant <tenant>', 'tenant id')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ tenant: TenantOpt }), o);
      const rows = await listPeriods(ctx.db(), a);
      emit(cmd.optsWithGlobals(), rows, () => formatPeriods(rows));
    });

  period
    .command('close')
    .description(
      "close a period that has ended in the tenant's timezone: nothing new lands in it; late lines go to the next open period",
    )
    .requiredOption('--tenant <tenant>', 'tenant id')
    .requiredOption('--period <YYYY-MM>', 'billing period')
    .requiredOption('--actor <name>', 'who closes it')
    .option('--note <text>', 'why')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(
        z.object({
          tenant: TenantOpt,
          period: PeriodSchema,
          actor: z.string().trim().min(1),
          note: z.string().optional(),
        }),
        o,
      );
      const r = await closePeriod(ctx.db(), a);
      emit(cmd.optsWithGlobals(), r, () =>
        r.alreadyClosed
          ? `${r.period} was already closed by ${r.closedBy} at ${r.closedAt}`
          : `${r.period} closed by ${r.closedBy} at ${r.closedAt}`,
      );
    });

  period
    .command('reopen')
    .description(
      'reopen a closed period (audited): runs of that period post into it again; corrections already posted to later periods stay there',
    )
    .requiredOption('--tenant <tenant>', 'tenant id')
    .requiredOption('--period <YYYY-MM>', 'billing period')
    .requiredOption('--actor <name>', 'who reopens it')
    .requiredOption('--reason <text>', 'why')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(
        z.object({
          tenant: TenantOpt,
          period: PeriodSchema,
          actor: z.string().trim().min(1),
          reason: z.string().trim().min(1),
        }),
        o,
      );
      const r = await reopenPeriod(ctx.db(), a);
      emit(cmd.optsWithGlobals(), r, () => formatReopen(r));
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
      // People read amounts as decimals with their currency; a count cap's usage is a count of outcomes.
      const latest = latestVersion(await loadContractHistory(ctx.db(), a.tenant)).body;
      const measure = (r: AlertRow, v: number) => {
        const terms = latest.outcomeTypes[r.outcomeType];
        const cap = terms ? pricingOf(terms).cap : undefined;
        return r.basis === 'cap' && cap && 'count' in cap ? `${v} outcomes` : formatMoney(v, latest.currency);
      };
      emit(cmd.optsWithGlobals(), rows, () =>
        formatTable(
          rows.map((r) => ({
            period: r.period,
            outcomeType: r.outcomeType,
            threshold: `${Math.round(r.threshold * 100)}%`,
            basis: r.basis,
            usage: measure(r, r.usageMinor),
            limit: measure(r, r.limitMinor),
            crossedAt: r.crossedAt,
            deliveredAt: r.deliveredAt,
            attempts: r.attempts,
            lastError: r.lastError,
          })),
        ),
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
      await checkFile(file, 'csv');
      const used = seriesUsedBy((await loadContractHistory(ctx.db(), a.tenant)).versions);
      // The file is refused whole on its first bad row: a half-imported series would price a
      // period with some months indexed and others not.
      const points: IndexPoint[] = [];
      for await (const r of readRows(file, 'csv', { requiredColumns: ['series', 'effective_from', 'multiplier'] })) {
        const where = `${file} line ${r.position.line}`;
        if (!r.ok) throw new ReconError(r.code, `${where}: ${r.reason}`);
        const p = IndexRowSchema.safeParse(r.values);
        if (!p.success)
          throw new ReconError(
            'invalid_field',
            `${where}: field ${p.error.issues[0].path.join('.')}: ${p.error.issues[0].message}`,
          );
        if (!used.has(p.data.series)) {
          const known = used.size
            ? `its contract prices by ${[...used].map((x) => `"${x}"`).join(', ')}`
            : 'its contract names no indexSeries';
          throw new ReconError(
            'unknown_series',
            `${where}: tenant ${a.tenant} does not use series "${p.data.series}" (${known}); nothing was imported`,
          );
        }
        const multiplier = checkMultiplier(p.data.multiplier, where);
        points.push({
          series: p.data.series,
          effectiveFrom: parseCustomerTimestamp(p.data.effective_from, 'UTC'),
          multiplier,
        });
      }
      const changed = await upsertIndexPoints(ctx.db(), a.tenant, points);
      emit(
        cmd.optsWithGlobals(),
        { points: points.length, changed },
        () => `price index: ${plural(points.length, 'point')} read, ${changed} new or changed`,
      );
    });
}

function formatPeriods(rows: PeriodState[]): string {
  if (rows.length === 0) return '(no periods with ledger lines or closes)';
  return rows
    .map((p) => {
      const state =
        p.state === 'closed'
          ? `closed by ${p.closedBy} at ${p.closedAt}${p.note ? ` (${p.note})` : ''}`
          : p.ended
            ? 'open (ended)'
            : 'open (running)';
      const reopened = p.reopenedBy ? `; reopened by ${p.reopenedBy} at ${p.reopenedAt}: ${p.reopenReason}` : '';
      const totals = p.totals.length
        ? p.totals.map((t) => `${formatMoney(t.amountMinor, t.currency)} over ${plural(t.lines, 'line')}`).join(', ')
        : 'no lines';
      return `${p.period}  ${state}${reopened}\n         ${totals}`;
    })
    .join('\n');
}

function formatReopen(r: PeriodReopen): string {
  const head = `${r.period} reopened by ${r.reopenedBy} at ${r.reopenedAt} (closed by ${r.wasClosedBy} at ${r.wasClosedAt}): ${r.reason}`;
  if (r.correctionsElsewhere.length === 0) return `${head}\n  runs of ${r.period} post into it again`;
  return [
    head,
    `  runs of ${r.period} post into it again; lines already posted to later periods as corrections of ${r.period} stay there:`,
    ...r.correctionsElsewhere.map(
      (c) => `    ${c.period}: ${plural(c.lines, 'line')}, ${formatMoney(c.amountMinor, c.currency)}`,
    ),
  ].join('\n');
}
