import type { Context as ActivityContext } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { DeliveryPass } from '../sinks/deliver';
import type { RunSummary } from '../reconcile/runs';
import { RUN_WORKFLOW_PREFIX } from '../../workflows/messages';
import { Registry } from './metrics';

/**
 * The product's metrics, kept in the worker process and counted from facts the activities
 * already return (a run's summary, a delivery pass): no query runs for them. Labels are small,
 * closed sets; never the tenant (thousands of tenants would be thousands of series each).
 */
export const reconRegistry = new Registry();

export const reconMetrics = {
  runs: reconRegistry.counter(
    'recon_runs_total',
    'Reconciliation run executions by status: started, completed, failed.',
    ['status'],
  ),
  transitions: reconRegistry.counter(
    'recon_outcome_transitions_total',
    'Outcome state transitions recorded by completed runs, by transition kind.',
    ['kind'],
  ),
  ledgerLines: reconRegistry.counter(
    'recon_ledger_lines_total',
    'Ledger lines written by completed runs (this execution only), by kind and currency.',
    ['kind', 'currency'],
  ),
  ledgerAmount: reconRegistry.counter(
    'recon_ledger_amount_minor_total',
    'Amount of the ledger lines written by completed runs, in minor units of the currency; credits count as their absolute value.',
    ['kind', 'currency'],
  ),
  importRows: reconRegistry.counter(
    'recon_import_rows_total',
    'Import rows claimed by completed runs, by kind (claims, records) and result (accepted, redelivered, quarantined).',
    ['kind', 'result'],
  ),
  sinkBatches: reconRegistry.counter(
    'recon_sink_deliveries_total',
    'Billing-sink batches settled by delivery passes, by sink kind and result (delivered, deferred, failed, needs_attention).',
    ['sink_kind', 'result'],
  ),
  activitySeconds: reconRegistry.histogram(
    'recon_activity_duration_seconds',
    'Wall time of each activity execution (one attempt), by activity type and result (completed, failed).',
    ['activity', 'result'],
    [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  ),
};

const LEDGER_KINDS = [
  ['charge', 'charges'],
  ['base_fee', 'baseFees'],
  ['true_up', 'trueUps'],
  ['credit', 'credits'],
] as const;

/** A completed run's summary, counted once per execution that reports it. */
export function countRunSummary(s: RunSummary): void {
  const m = reconMetrics;
  m.runs.inc({ status: 'completed' });
  for (const [kind, n] of Object.entries(s.outcomes.transitions)) m.transitions.inc({ kind }, n);
  for (const g of s.ledger.byPeriod) {
    if (g.newLines === 0) continue;
    if (g.newLines === g.lines) {
      for (const [kind, field] of LEDGER_KINDS) {
        m.ledgerLines.inc({ kind, currency: g.currency }, g[field].count);
        m.ledgerAmount.inc({ kind, currency: g.currency }, Math.abs(g[field].amountMinor));
      }
    } else {
      // A rerun that completed a partly posted night: the summary has this execution's lines per
      // (period, currency), not per kind.
      m.ledgerLines.inc({ kind: 'unattributed', currency: g.currency }, g.newLines);
      m.ledgerAmount.inc({ kind: 'unattributed', currency: g.currency }, Math.abs(g.newAmountMinor));
    }
  }
  for (const kind of ['claims', 'records'] as const)
    for (const result of ['accepted', 'redelivered', 'quarantined'] as const)
      m.importRows.inc({ kind, result }, s[kind][result]);
}

export function countDeliveryPass(p: DeliveryPass): void {
  for (const s of p.sinks) {
    reconMetrics.sinkBatches.inc({ sink_kind: s.kind, result: 'delivered' }, s.delivered);
    reconMetrics.sinkBatches.inc({ sink_kind: s.kind, result: 'deferred' }, s.deferred);
    reconMetrics.sinkBatches.inc({ sink_kind: s.kind, result: 'failed' }, s.failed);
    reconMetrics.sinkBatches.inc({ sink_kind: s.kind, result: 'needs_attention' }, s.needsAttention);
  }
}

/** What an activity's input says about whose work it is: every activity takes the tenant, most the run. */
export function activityIds(input: unknown, workflowId?: string): { tenant?: string; runId?: number } {
  const i = (input ?? {}) as { tenant?: unknown; runId?: unknown };
  const out: { tenant?: string; runId?: number } = {};
  if (typeof i.tenant === 'string') out.tenant = i.tenant;
  else if (workflowId) {
    // <prefix>-<tenant>-<asOf> (runWorkflowId): the tenant sits before the ISO instant.
    const m = new RegExp(`^${RUN_WORKFLOW_PREFIX}-(.+)-\\d{4}-\\d{2}-\\d{2}T`).exec(workflowId);
    if (m) out.tenant = m[1];
  }
  if (typeof i.runId === 'number') out.runId = i.runId;
  return out;
}

/**
 * Times every activity, counts the facts its result carries, and puts the tenant and run id on
 * every line the activity logs (Context.current().log and the SDK's own activity lines).
 */
export const observeActivities: ActivityInterceptorsFactory = (ctx: ActivityContext) => {
  let ids: { tenant?: string; runId?: number } = {};
  return {
    inbound: {
      async execute(input, next) {
        const type = ctx.info.activityType;
        ids = activityIds(input.args[0], ctx.info.workflowExecution?.workflowId);
        const started = process.hrtime.bigint();
        const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
        let result: unknown;
        try {
          result = await next(input);
        } catch (err) {
          reconMetrics.activitySeconds.observe({ activity: type, result: 'failed' }, seconds());
          throw err;
        }
        reconMetrics.activitySeconds.observe({ activity: type, result: 'completed' }, seconds());
        if (type === 'startRun') {
          const r = result as { runId?: number };
          if (typeof r?.runId === 'number') ids = { ...ids, runId: r.runId };
          reconMetrics.runs.inc({ status: 'started' });
          ctx.log.info('run started');
        } else if (type === 'reportRun') {
          const s = result as RunSummary;
          countRunSummary(s);
          ctx.log.info('run completed', {
            ledgerNewLines: s.ledger.newLines,
            claimsAccepted: s.claims.accepted,
            claimsQuarantined: s.claims.quarantined,
          });
        } else if (type === 'failRun') {
          reconMetrics.runs.inc({ status: 'failed' });
          const i = input.args[0] as { code?: string; message?: string };
          ctx.log.warn('run failed', { code: i.code, reason: i.message });
        } else if (type === 'deliverToSinks') {
          countDeliveryPass(result as DeliveryPass);
        }
        return result;
      },
    },
    outbound: {
      getLogAttributes(attrs, next) {
        // The task token (some 200 characters, and enough to complete the activity) is no log's business.
        const out: Record<string, unknown> = { ...attrs, ...ids };
        delete out.taskToken;
        return next(out);
      },
    },
  };
};
