import os from 'node:os';
import type { Command } from 'commander';
import { z } from 'zod';
import { ReconError } from '../../domain/errors';
import { formatMoney } from '../../domain/money';
import { PeriodSchema } from '../../domain/periods';
import { loadTenantSinks } from '../../sinks/batches';
import { unknownSink, type SinkReconcileReport } from '../../sinks/reconcile';
import { retryBatches, type RetryMode, type RetryResult } from '../../sinks/retry';
import { STATUS_STATES, tenantSinkStatus, type StateCount, type TenantSinkStatus } from '../../sinks/status';
import { reconcileSinksViaTemporal, wakeDeliveryLoop, type LoopOutcome } from '../../temporal/sink-client';
import type { CommandContext } from '../context';
import { plural } from '../format';
import { TenantOpt, emit, parseOptions } from '../io';

const SinkName = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'expected a sink name as the contract writes it');
const Seconds = z.coerce.number().int().min(1).max(3600);

const STATE_LABEL: Record<(typeof STATUS_STATES)[number], string> = {
  delivered: 'delivered',
  pending: 'pending',
  failed: 'failed',
  needs_attention: 'needs attention',
  skipped: 'skipped',
};

function amounts(c: StateCount): string {
  return c.amounts.map((a) => formatMoney(a.amountMinor, a.currency)).join(' and ') || '-';
}

function noSinkMessage(tenant: string): string {
  return `tenant ${tenant}'s contract names no sink, so its ledger is delivered nowhere; to add one, put it under "sinks" in the contract (kind stripe, metronome or webhook) and apply it with \`recon contract apply FILE\``;
}

export function formatSinkStatus(s: TenantSinkStatus): string {
  if (s.sinks.length === 0) return noSinkMessage(s.tenant);
  const out: string[] = [
    `deliveries of tenant ${s.tenant} · ${s.period ? `lines booked in ${s.period}` : 'every period'}`,
  ];
  for (const k of s.sinks) {
    out.push(`${k.sink} (${k.kind})`);
    for (const st of STATUS_STATES) {
      const c = k.states[st];
      const unbatched = st === 'pending' && c.unbatched ? ` (${c.unbatched} not yet batched)` : '';
      out.push(
        `  ${STATE_LABEL[st].padEnd(16)} ${plural(c.lines, 'line').padStart(12)} ${plural(c.batches, 'batch', 'batches').padStart(12)}  ${amounts(c)}${unbatched}`,
      );
    }
    if (k.states.pending.lines > 0)
      out.push(
        `  next attempt ${k.nextAttemptAt ? k.nextAttemptAt.toISOString() : 'at the next pass'}${k.waitingBecause ? `; waiting because: ${k.waitingBecause}` : ''}`,
      );
  }
  if (s.attention.length) {
    out.push('batches a person must look at (recon sink retry):');
    for (const b of s.attention)
      out.push(
        `  ${b.sink} batch ${b.batchId} ${b.key} ${b.kind} ${plural(b.lines, 'line')} ${formatMoney(b.amountMinor, b.currency)} ${STATE_LABEL[b.state]}: ${b.lastError ?? 'no error recorded'}`,
      );
  }
  return out.join('\n');
}

function formatRetry(r: RetryResult, loop: LoopOutcome): string {
  const count = (a: string) => r.batches.filter((b) => b.action === a).length;
  const parts = [
    count('requeue') ? `${plural(count('requeue'), 'failed batch', 'failed batches')} back in line` : '',
    count('resend') ? `${plural(count('resend'), 'set-aside batch', 'set-aside batches')} to be sent again as new` : '',
    count('mark_delivered') ? `${plural(count('mark_delivered'), 'batch', 'batches')} marked delivered` : '',
    count('pull_forward') ? `${plural(count('pull_forward'), 'pending batch', 'pending batches')} due now` : '',
  ].filter(Boolean);
  const left = r.batches.filter((b) => b.action === 'leave');
  const lines = [`sink retry ${r.tenant}: ${parts.length ? parts.join(', ') : 'no failed or pending batch to retry'}`];
  if (left.length)
    lines.push(
      `  left as they are: ${plural(left.length, 'batch', 'batches')} needing attention (${left.map((b) => b.batchId).join(', ')}): they may already be at the sink; check, then run with --batch ID and --resend or --mark-delivered --note TEXT`,
    );
  const v = loop.view;
  const loopLine =
    loop.state === 'not_waited'
      ? 'delivery loop woken; not waiting for it (--no-wait)'
      : loop.state === 'finished'
        ? 'delivery loop: finished, nothing left to send'
        : loop.state === 'sleeping'
          ? `delivery loop: waiting until ${v?.sleepingUntil}${v?.heldUp.length ? `; held up by ${v.heldUp.join('; ')}` : ''}`
          : loop.state === 'no_worker'
            ? `delivery loop woken, but no worker polls task queue "${loop.taskQueue}": it delivers when one starts (\`recon worker\` or \`recon dev\`)`
            : `delivery loop: still working when the wait ran out (task queue "${loop.taskQueue}"); it goes on in the background: see \`recon sink status\``;
  lines.push(loopLine);
  return lines.join('\n');
}

export function formatReconcile(r: SinkReconcileReport): string {
  const out = [`sink reconcile ${r.tenant} ${r.period} (business time ${r.from} to ${r.to}, ${r.timeZone})`];
  if (r.sinks.length === 0) return noSinkMessage(r.tenant);
  for (const s of r.sinks)
    out.push(
      `  ${s.sink} (${s.kind}): ${plural(s.batches, 'batch', 'batches')} of ours${s.readApi ? `, ${plural(s.holdings, 'holding')} read from ${s.kind}` : ''}${s.note ? `; ${s.note}` : ''}`,
    );
  if (r.differences.length) {
    const rows = r.differences.map((d) => [...(r.sinks.length > 1 ? [d.sink] : []), d.kind, d.key, d.ours, d.theirs]);
    const head = [...(r.sinks.length > 1 ? ['sink'] : []), 'kind', 'key', 'ours', 'theirs'];
    // Every column but the last is padded; the last (theirs, often an error) runs to its end.
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
    const line = (cells: string[]) =>
      cells
        .map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i]) : c))
        .join('  ')
        .trimEnd();
    out.push(line(head));
    r.differences.forEach((d, i) => {
      out.push(line(rows[i]));
      if (d.detail) out.push(`    why: ${d.detail}`);
    });
  }
  out.push(plural(r.differences.length, 'difference'));
  return out.join('\n');
}

/** The tenant's sink names; a --sink it does not have is an error naming the ones it has. */
async function sinkNames(ctx: CommandContext, tenant: string, sink: string | undefined): Promise<string[]> {
  const names = (await loadTenantSinks(ctx.db(), tenant)).map((s) => s.name);
  if (sink && !names.includes(sink)) throw unknownSink(tenant, sink, names);
  return names;
}

export function registerSinkCommands(program: Command, ctx: CommandContext): void {
  const sink = program
    .command('sink')
    .description('billing sinks (Stripe, Metronome, webhooks): what reached them, retries, proof against the ledger');

  sink
    .command('status')
    .description('per sink: lines, batches and amounts delivered, pending, failed, needing attention, skipped')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--period <YYYY-MM>', 'only lines booked in this period')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ tenant: TenantOpt, period: PeriodSchema.optional() }), o);
      const s = await tenantSinkStatus(ctx.db(), a);
      emit(cmd.optsWithGlobals(), s.sinks.length ? s : { ...s, message: noSinkMessage(a.tenant) }, () =>
        formatSinkStatus(s),
      );
    });

  sink
    .command('retry')
    .description(
      'put failed batches back in line and pending ones due now, then wake the delivery loop; set-aside batches move only with --resend or --mark-delivered',
    )
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--sink <name>', 'only this sink')
    .option('--batch <id...>', 'only these batches (ids from `recon sink status`)')
    .option(
      '--resend',
      'also send set-aside (needs attention) batches again, as new: you checked the sink does not hold them',
    )
    .option('--mark-delivered', 'settle the named batches as delivered: you checked the sink holds them (needs --note)')
    .option('--note <text>', 'why: how you checked the sink')
    .option('--actor <name>', 'who is acting (default: your login name)')
    .option('--no-wait', 'do not wait for the delivery loop')
    .option('--timeout <seconds>', 'how long to wait for the delivery loop', '60')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(
        z
          .object({
            tenant: TenantOpt,
            sink: SinkName.optional(),
            batch: z.array(z.coerce.number().int().positive()).optional(),
            resend: z.boolean().default(false),
            markDelivered: z.boolean().default(false),
            note: z.string().trim().min(1).optional(),
            actor: z.string().trim().min(1).optional(),
            wait: z.boolean().default(true),
            timeout: Seconds,
          })
          .refine((x) => !(x.resend && x.markDelivered), {
            message: 'give --resend or --mark-delivered, not both',
            path: ['resend'],
          })
          .refine((x) => !x.markDelivered || x.note !== undefined, {
            message: 'needs --note TEXT saying how you know the sink holds the batch',
            path: ['markDelivered'],
          }),
        o,
      );
      if ((await sinkNames(ctx, a.tenant, a.sink)).length === 0) {
        emit(cmd.optsWithGlobals(), { tenant: a.tenant, batches: [], message: noSinkMessage(a.tenant) }, () =>
          noSinkMessage(a.tenant),
        );
        return;
      }
      const mode: RetryMode = a.markDelivered ? 'mark_delivered' : a.resend ? 'resend' : 'retry';
      const r = await retryBatches(ctx.db(), {
        tenant: a.tenant,
        sink: a.sink,
        batchIds: a.batch,
        mode,
        actor: a.actor ?? (process.env.USER || os.userInfo().username),
        note: a.note,
        now: new Date(),
      });
      const loop = await wakeDeliveryLoop(await ctx.temporal(), {
        tenant: a.tenant,
        taskQueue: ctx.settings().taskQueue,
        waitMs: a.wait ? a.timeout * 1000 : 0,
      });
      const status = await tenantSinkStatus(ctx.db(), { tenant: a.tenant });
      emit(cmd.optsWithGlobals(), { ...r, loop, status }, () =>
        [formatRetry(r, loop), formatSinkStatus(status)].join('\n'),
      );
    });

  sink
    .command('reconcile')
    .description(
      'compare the ledger with what each sink holds for a period and list every difference (exit 1, sink_differences, when there is one)',
    )
    .requiredOption('--tenant <tenant>', 'tenant id')
    .requiredOption('--period <YYYY-MM>', 'billing period')
    .option('--sink <name>', 'only this sink')
    .option('--timeout <seconds>', 'give up when no worker answers', '120')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(
        z.object({ tenant: TenantOpt, period: PeriodSchema, sink: SinkName.optional(), timeout: Seconds }),
        o,
      );
      if ((await sinkNames(ctx, a.tenant, a.sink)).length === 0) {
        emit(
          cmd.optsWithGlobals(),
          { tenant: a.tenant, period: a.period, sinks: [], differences: [], message: noSinkMessage(a.tenant) },
          () => noSinkMessage(a.tenant),
        );
        return;
      }
      const r = await reconcileSinksViaTemporal(await ctx.temporal(), {
        tenant: a.tenant,
        period: a.period,
        sink: a.sink,
        taskQueue: ctx.settings().taskQueue,
        timeoutMs: a.timeout * 1000,
      });
      emit(cmd.optsWithGlobals(), { ...r, count: r.differences.length }, () => formatReconcile(r));
      if (r.differences.length > 0)
        throw new ReconError(
          'sink_differences',
          `${plural(r.differences.length, 'difference')} between the ledger of ${a.tenant} for ${a.period} and its sinks; each is listed above: retry what is owed (recon sink retry) and settle the rest by hand`,
        );
    });
}
