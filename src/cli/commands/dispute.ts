import type { Command } from 'commander';
import { z } from 'zod';
import { ReconError } from '../../domain/errors';
import { importDisputesFile } from '../../disputes/import';
import { listDisputes, showDispute, type DisputeDetail } from '../../disputes/views';
import { findOutcomeId } from '../../reconcile/explain';
import {
  noteDisputeViaTemporal,
  openDisputeViaTemporal,
  resolveDisputeViaTemporal,
} from '../../temporal/dispute-client';
import type { CommandContext } from '../context';
import { formatImport, formatTable } from '../format';
import { TenantOpt, emit, parseOptions } from '../io';

const Id = z.coerce.number().int().positive();
const Text = z.string().trim().min(1);
const Timeout = z.coerce.number().int().min(1).max(3600);

export function formatDispute(d: DisputeDetail): string {
  return [
    `dispute ${d.disputeId} · ${d.status.toUpperCase()} · ${d.outcomeType} ${d.subjectRef} (outcome ${d.outcomeId}, now ${d.outcomeState})`,
    `  opened by ${d.openedBy} at ${d.openedAt} (${d.channel}): ${d.reason}`,
    `  SLA ${d.slaAt}${d.escalatedAt ? ` · escalated ${d.escalatedAt}` : ''} · auto-resolution ${d.autoResolveAt}`,
    ...(d.resolvedAt
      ? [
          `  resolved ${d.status} by ${d.resolvedBy} at ${d.resolvedAt}${d.autoResolved ? ' (automatic)' : ''}: ${d.resolutionNote}`,
        ]
      : []),
    '  history:',
    ...d.events.map((e) => `    ${e.at}  ${e.kind.padEnd(9)} ${e.actor}${e.note ? `: ${e.note}` : ''}`),
  ].join('\n');
}

export function registerDisputeCommands(program: Command, ctx: CommandContext): void {
  /** Dispute ids are numbered per cell: with --tenant the id is looked up in that tenant's cell. */
  const disputeOfTenant = async (disputeId: number, tenant: string | undefined) => {
    await ctx.requireTenantForId(tenant, 'dispute');
    const d = await showDispute(ctx.db(), disputeId);
    if (tenant && d.tenant !== tenant)
      throw new ReconError('dispute_not_found', `no dispute ${disputeId} of tenant ${tenant}`);
    return d;
  };
  const dispute = program.command('dispute').description('disputes: put an outcome on hold, gather notes, decide');

  dispute
    .command('open')
    .description('open a dispute on an outcome (or attach to the one already open); the outcome goes on hold')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .requiredOption('--subject <ref>', "the customer's id of the ticket or lead")
    .option('--type <type>', 'outcome type, when the subject has several')
    .requiredOption('--reason <text>', 'why the customer disputes it')
    .requiredOption('--actor <name>', 'who is acting')
    .option('--timeout <seconds>', 'give up when no worker answers', '30')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(
        z.object({
          tenant: TenantOpt,
          subject: Text,
          type: z.string().optional(),
          reason: Text,
          actor: Text,
          timeout: Timeout,
        }),
        o,
      );
      const outcomeId = await findOutcomeId(ctx.db(), { tenant: a.tenant, subject: a.subject, type: a.type });
      const view = await openDisputeViaTemporal(await ctx.temporal(), {
        tenant: a.tenant,
        outcomeId,
        actor: a.actor,
        reason: a.reason,
        taskQueue: ctx.settings().taskQueue,
        timeoutMs: a.timeout * 1000,
      });
      emit(
        cmd.optsWithGlobals(),
        view,
        () =>
          `${view.attached ? 'attached to' : 'opened'} dispute ${view.disputeId} on ${a.subject} (outcome ${outcomeId}); on hold until resolved · SLA ${view.slaAt} · auto-${view.defaultDecision} at ${view.autoResolveAt}`,
      );
    });

  dispute
    .command('note <id>')
    .description('add a note to an open dispute')
    .option('--tenant <tenant>', 'the tenant of the dispute (needed once there is more than one cell)')
    .requiredOption('--actor <name>', 'who is writing')
    .requiredOption('--text <text>', 'the note')
    .option('--timeout <seconds>', 'give up when no worker answers', '30')
    .action(async (id: string, o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ actor: Text, text: Text, timeout: Timeout, tenant: TenantOpt.optional() }), o);
      const d = await disputeOfTenant(parseOptions(Id, id), a.tenant);
      if (d.status !== 'open')
        throw new ReconError('dispute_closed', `dispute ${d.disputeId} is ${d.status}; notes are closed`);
      const view = await noteDisputeViaTemporal(await ctx.temporal(), {
        workflowId: d.workflowId,
        actor: a.actor,
        text: a.text,
        taskQueue: ctx.settings().taskQueue,
        timeoutMs: a.timeout * 1000,
      });
      emit(cmd.optsWithGlobals(), view, () => `note added to dispute ${d.disputeId}`);
    });

  dispute
    .command('resolve <id>')
    .description('decide: uphold (the customer is right) or reject (the bill stands)')
    .option('--tenant <tenant>', 'the tenant of the dispute (needed once there is more than one cell)')
    .requiredOption('--decision <decision>', 'uphold|reject')
    .requiredOption('--actor <name>', 'who decides')
    .requiredOption('--note <text>', 'why')
    .option('--timeout <seconds>', 'give up when no worker answers', '30')
    .action(async (id: string, o: unknown, cmd: Command) => {
      const a = parseOptions(
        z.object({
          decision: z.enum(['uphold', 'reject']),
          actor: Text,
          note: Text,
          timeout: Timeout,
          tenant: TenantOpt.optional(),
        }),
        o,
      );
      const d = await disputeOfTenant(parseOptions(Id, id), a.tenant);
      if (d.status !== 'open')
        throw new ReconError(
          'already_resolved',
          `dispute ${d.disputeId} was already resolved: ${d.status} by ${d.resolvedBy} at ${d.resolvedAt}`,
        );
      const view = await resolveDisputeViaTemporal(await ctx.temporal(), {
        workflowId: d.workflowId,
        decision: a.decision,
        actor: a.actor,
        note: a.note,
        taskQueue: ctx.settings().taskQueue,
        timeoutMs: a.timeout * 1000,
      });
      const r = view.resolution!;
      const effect =
        r.effect === 'credit_charge'
          ? `charge credited (entry ${r.creditEntryId})`
          : r.effect === 'reject_outcome'
            ? 'outcome rejected (dispute_upheld)'
            : 'hold lifted; billing proceeds when grace allows';
      emit(cmd.optsWithGlobals(), view, () => `dispute ${d.disputeId} ${view.status}: ${effect}`);
    });

  dispute
    .command('show <id>')
    .description('one dispute with its history')
    .option('--tenant <tenant>', 'the tenant of the dispute (needed once there is more than one cell)')
    .action(async (id: string, o: unknown, cmd: Command) => {
      const { tenant } = parseOptions(z.object({ tenant: TenantOpt.optional() }), o);
      const d = await disputeOfTenant(parseOptions(Id, id), tenant);
      emit(cmd.optsWithGlobals(), d, () => formatDispute(d));
    });

  dispute
    .command('list')
    .description("a tenant's disputes, newest first")
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--open', 'only open disputes')
    .option('--limit <n>', 'rows', '100')
    .action(async (o: unknown, cmd: Command) => {
      const a = parseOptions(
        z.object({
          tenant: TenantOpt,
          open: z.boolean().default(false),
          limit: z.coerce.number().int().min(1).max(10_000),
        }),
        o,
      );
      const rows = await listDisputes(ctx.db(), { tenant: a.tenant, openOnly: a.open, limit: a.limit });
      emit(cmd.optsWithGlobals(), rows, () => formatTable(rows));
    });

  dispute
    .command('import <file>')
    .description('customer-side disputes in bulk: CSV with subject, reason, actor (and optional outcome_type)')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .action(async (file: string, o: unknown, cmd: Command) => {
      const a = parseOptions(z.object({ tenant: TenantOpt }), o);
      const r = await importDisputesFile(ctx.db(), await ctx.temporal(), {
        tenant: a.tenant,
        file,
        taskQueue: ctx.settings().taskQueue,
      });
      emit(cmd.optsWithGlobals(), r, () =>
        formatImport('disputes', r).replace('accepted', 'opened').replace('redelivered', 'attached'),
      );
    });
}
