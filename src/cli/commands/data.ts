import type { createWriteStream } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { migrateCells } from '../../cells/admin';
import { ReconError } from '../../domain/errors';
import { PeriodSchema } from '../../domain/periods';
import { importClaimsFile, importRecordsFile } from '../../ingest/files';
import { QUARANTINE_KINDS, listQuarantine } from '../../reconcile/explain';
import { describeTotals, ledgerTotals, sameTotals, writeExport } from '../../export/export';
import { loadTenantSinks } from '../../sinks/batches';
import type { CommandContext } from '../context';
import { formatImport, formatShown, formatTable, plural, terminalProgress, type ProgressLine } from '../format';
import { TenantOpt, emit, openOutputFile, parseOptions } from '../io';

function importProgress(line: ProgressLine | undefined, file: string): ((rowsRead: number) => void) | undefined {
  return line ? (n) => line.update(`${path.basename(file)}: ${plural(n, 'row')} staged so far`) : undefined;
}

export function registerDataCommands(program: Command, ctx: CommandContext): void {
  program
    .command('migrate')
    .description(
      'apply the numbered SQL migrations to every cell: DATABASE_URL (or the recon dev database) and the cells it lists',
    )
    .action(async (_o, cmd: Command) => {
      const cells = await migrateCells(ctx.cells());
      // The single-cell answer keeps its old shape for scripts that read it.
      const json = cells.length === 1 && cells[0].result ? cells[0].result : cells;
      emit(cmd.optsWithGlobals(), json, () =>
        cells
          .map((c) => {
            const what = c.result
              ? c.result.applied.length
                ? `applied ${c.result.applied.join(', ')}`
                : `schema up to date (${plural(c.result.alreadyApplied, 'migration')})`
              : `NOT MIGRATED: ${c.problem}`;
            return cells.length === 1 ? what : `cell ${c.cell}: ${what}`;
          })
          .join('\n'),
      );
      const failed = cells.filter((c) => c.problem);
      if (failed.length)
        throw new ReconError(
          'cell_unavailable',
          `${plural(failed.length, 'cell')} not migrated (${failed.map((c) => c.cell).join(', ')}); run \`recon migrate\` again when ${failed.length === 1 ? 'it answers' : 'they answer'}`,
        );
    });

  const claims = program.command('claims').description('outcome claims from the AI side');
  claims
    .command('import <file>')
    .description('import claims from a .jsonl or .csv file; bad rows are quarantined, the rest land')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .action(async (file: string, o: unknown, cmd: Command) => {
      const { tenant } = parseOptions(z.object({ tenant: TenantOpt }), o);
      const progress = cmd.optsWithGlobals().json ? undefined : terminalProgress();
      const r = await importClaimsFile(ctx.db(), { tenant, file, onProgress: importProgress(progress, file) }).finally(
        () => progress?.done(),
      );
      emit(cmd.optsWithGlobals(), r, () => formatImport('claims', r));
    });

  const records = program.command('records').description("records from the customer's own systems");
  records
    .command('import <file>')
    .description('import an export of customer records (.csv or .jsonl) mapped by the contract')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .requiredOption('--source <source>', 'record source name in the contract, e.g. helpdesk')
    .action(async (file: string, o: unknown, cmd: Command) => {
      const { tenant, source } = parseOptions(z.object({ tenant: TenantOpt, source: z.string().min(1) }), o);
      const progress = cmd.optsWithGlobals().json ? undefined : terminalProgress();
      const r = await importRecordsFile(ctx.db(), {
        tenant,
        source,
        file,
        onProgress: importProgress(progress, file),
      }).finally(() => progress?.done());
      emit(cmd.optsWithGlobals(), r, () => formatImport('records', r));
    });

  program
    .command('quarantine')
    .description('rows that were refused on import, with the reason')
    .command('list')
    .description("a tenant's refused rows, newest first, filtered; says how many match in all")
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--file <name>', 'only rows of this file (its name as listed, without the directory)')
    .option('--code <code>', 'only rows refused with this reason code, e.g. bad_timestamp')
    .option('--kind <kind>', QUARANTINE_KINDS.join('|'))
    .option('--limit <n>', 'rows to show', '100')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(
        z.object({
          tenant: TenantOpt,
          file: z.string().trim().min(1).optional(),
          code: z.string().trim().min(1).optional(),
          kind: z.enum(QUARANTINE_KINDS).optional(),
          limit: z.coerce.number().int().min(1).max(10_000),
        }),
        o,
      );
      const r = await listQuarantine(ctx.db(), a);
      emit(cmd.optsWithGlobals(), { matching: r.matching, shown: r.items.length, items: r.items }, () =>
        [
          ...(r.items.length ? [formatTable(r.items.map(({ raw: _raw, ...x }) => x))] : []),
          formatShown(r.items.length, r.matching, 'quarantined row'),
        ].join('\n'),
      );
    });

  program
    .command('export')
    .description('finance export of every ledger entry of a period (deterministic bytes)')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .requiredOption('--period <YYYY-MM>', 'billing period')
    .option('--format <format>', 'csv or jsonl', 'csv')
    .option('--out <file>', 'write to a file instead of stdout')
    .option(
      '--with-delivery',
      "add one column per billing sink, delivery_<sink>, with the line's delivery state there now (a snapshot)",
    )
    .action(async (o: unknown, cmd: Command) => {
      const args = parseOptions(
        z.object({
          tenant: TenantOpt,
          period: PeriodSchema,
          format: z.enum(['csv', 'jsonl']),
          out: z.string().optional(),
          withDelivery: z.boolean().default(false),
        }),
        o,
      );
      // Every sink the tenant's contracts have named, sorted, so the columns do not move between exports.
      const deliverySinks = args.withDelivery
        ? (await loadTenantSinks(ctx.db(), args.tenant)).map((s) => s.name).sort()
        : [];
      const out = args.out ? await openOutputFile(args.out) : process.stdout;
      const totals = await writeExport(ctx.db(), {
        tenant: args.tenant,
        period: args.period,
        format: args.format,
        out,
        deliverySinks,
      });
      if (args.out)
        await new Promise<void>((resolve, reject) =>
          (out as ReturnType<typeof createWriteStream>).end((err?: Error | null) => (err ? reject(err) : resolve())),
        );
      const ledger = await ledgerTotals(ctx.db(), args.tenant, args.period);
      // Currency by currency: a sum over several currencies means nothing and is never made.
      if (!sameTotals(totals, ledger)) {
        throw new ReconError(
          'export_mismatch',
          `export totals ${describeTotals(totals.byCurrency)} over ${totals.lines} lines differ from the ledger's ${describeTotals(ledger.byCurrency)} over ${ledger.lines}`,
        );
      }
      const report = {
        ...totals,
        file: args.out ?? null,
        ledgerAmountMinor: totals.amountMinor,
        ledgerByCurrency: ledger.byCurrency,
      };
      // With no --out the export itself is on stdout, so the totals go to stderr.
      const line = `export ${args.tenant} ${args.period}: ${plural(totals.lines, 'line')} (${plural(totals.charges, 'charge')}, ${plural(totals.credits, 'credit')}), total ${describeTotals(totals.byCurrency)}, equal to the ledger${totals.byCurrency.length > 1 ? ' currency by currency' : ''}`;
      if (args.out) emit(cmd.optsWithGlobals(), report, () => `${line} → ${args.out}`);
      else process.stderr.write(line + '\n');
    });
}
