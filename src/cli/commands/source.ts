import type { Command } from 'commander';
import { z } from 'zod';
import { clientFor } from '../../sources/record-clients';
import { sourceStatus, testSource, type SourceStatus, type SourceTestResult } from '../../sources/source-status';
import type { CommandContext } from '../context';
import { plural } from '../format';
import { TenantOpt, emit, parseOptions, verbatim } from '../io';

const SourceOpt = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected a source name from the contract, such as zendesk');

/** A cursor is the API's or the database's own value: --json prints it as stored, keys unrenamed. */
function asStored<T extends { cursor: unknown }>(r: T): T {
  return r.cursor !== null && typeof r.cursor === 'object' ? { ...r, cursor: verbatim(r.cursor) } : r;
}

function cursorText(cursor: unknown): string {
  if (cursor === null || cursor === undefined) return '(start)';
  return typeof cursor === 'string' ? cursor : JSON.stringify(cursor);
}

function seconds(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : `${(ms / 60_000).toFixed(1)}m`;
}

function formatTest(r: SourceTestResult): string {
  const at = (p: SourceTestResult['first']) =>
    p ? `id ${p.id ?? '?'}${p.updatedAt ? ` updated ${p.updatedAt}` : ''}` : '-';
  return [
    `${r.role === 'claims' ? 'claim' : 'record'} source ${r.source} (${r.kind}) of ${r.tenant}: connected; ${r.cursor === null ? 'the first page' : `the page after cursor ${cursorText(r.cursor)}`} holds ${plural(r.count, r.role === 'claims' ? 'row' : 'item')}`,
    ...(r.count > 0 ? [`  first: ${at(r.first)}`, `  last:  ${at(r.last)}`] : []),
    ...(r.unusable > 0 ? [`  ${r.unusable} would be quarantined; first: ${r.firstProblem ?? '-'}`] : []),
    `  ${r.caughtUp ? 'caught up: no page follows it yet' : 'more pages follow'}`,
    'nothing was written',
  ].join('\n');
}

export function formatSourceStatus(tenant: string, rows: SourceStatus[]): string {
  if (rows.length === 0)
    return `${tenant} has no pulled sources: its records and claims come from files (recon records import, recon claims import)`;
  // A block per source rather than a table: cursors and errors are only useful whole.
  return rows
    .map((s) =>
      [
        `${s.source} (${s.role}, ${s.kind})${s.inContract ? '' : ' (no longer in the contract)'}`,
        `  cursor:     ${cursorText(s.cursor)}`,
        `  last pull:  ${s.lastPullAt ?? 'never'} · ${plural(s.pages, 'page')} · ${plural(s.rows, 'row')}`,
        ...(s.role === 'records'
          ? [`  rate limit: ${plural(s.rateLimitWaits, 'wait')}, ${seconds(s.rateLimitWaitMs)} in all`]
          : []),
        `  last error: ${s.lastError ? `${s.lastErrorAt ?? '?'}: ${s.lastError}` : '-'}`,
      ].join('\n'),
    )
    .join('\n');
}

export function registerSourceCommands(program: Command, ctx: CommandContext): void {
  const source = program
    .command('source')
    .description('sources the night pulls itself: Zendesk, HubSpot, claim feeds and databases');

  source
    .command('test')
    .description("checks a source's credentials and reads its next page; writes nothing")
    .requiredOption('--tenant <tenant>', 'tenant id')
    .requiredOption('--source <source>', 'the source name in the contract')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ tenant: TenantOpt, source: SourceOpt }), o);
      const r = await testSource(ctx.db(), { ...a, env: process.env, now: new Date(), clientFor });
      emit(cmd.optsWithGlobals(), asStored(r), () => formatTest(r));
    });

  source
    .command('status')
    .description('per pulled source: cursor, last pull, pages, rows, rate-limit waits and the last error')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ tenant: TenantOpt }), o);
      const rows = await sourceStatus(ctx.db(), a.tenant);
      emit(cmd.optsWithGlobals(), { tenant: a.tenant, sources: rows.map(asStored) }, () =>
        formatSourceStatus(a.tenant, rows),
      );
    });
}
