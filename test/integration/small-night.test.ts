import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../../activities';
import { SinkSchema } from '../../src/domain/sinks';
import { startWebhookReceiver, type WebhookReceiverHandle } from '../../src/emulators/webhook-receiver';
import { importClaimsFile } from '../../src/ingest/files';
import { runReconciliation } from '../../src/temporal/run-client';
import type { RunSummary } from '../../src/reconcile/runs';
import { progressQuery, runWorkflowId } from '../../workflows/messages';
import { applyExample, seedSolvedTickets, startHarness, uniqueTenant, writeLines, type Harness } from './harness';

// A small tenant's night settles attach to post in one activity (settleSmallNight); a night of a
// chunk or more keeps the chunked activities. Both must write the same ledger from the same data.

const SECRET = 'whsec_' + Buffer.from('a-secret-of-thirty-two-bytes-ok!').toString('base64');
const NIGHT_1 = '2026-03-06T07:00:00.000Z';
const NIGHT_2 = '2026-03-09T07:00:00.000Z';

/** The same claims and records for every tenant: billed on night 1, in grace until night 2, never evidenced, rejected. */
async function seed(h: Harness, tenant: string): Promise<void> {
  await seedSolvedTickets(h, tenant, 'solved', [
    ['T-1', '2026-03-02T10:00:00Z'],
    ['T-2', '2026-03-02T11:00:00Z'],
    ['T-3', '2026-03-01T09:00:00Z'],
    ['T-4', '2026-03-05T12:00:00Z'],
    ['T-5', '2026-03-05T18:00:00Z'],
  ]);
  const extra = [
    { claim_id: 'T-2-again', outcome_type: 'resolved_ticket', subject_ref: 't-2', occurred_at: '2026-03-02T12:00:00Z' },
    { claim_id: 'T-9-c', outcome_type: 'resolved_ticket', subject_ref: 'T-9', occurred_at: '2026-03-02T12:00:00Z' },
  ];
  await importClaimsFile(h.pool, {
    tenant,
    file: await writeLines(
      h.dir,
      `${tenant}-extra.jsonl`,
      extra.map((c) => JSON.stringify(c)),
    ),
  });
}

async function activitiesOf(h: Harness, tenant: string, asOf: string): Promise<string[]> {
  const history = await h.client.workflow.getHandle(runWorkflowId(tenant, asOf)).fetchHistory();
  return (history.events ?? [])
    .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
    .filter((n): n is string => !!n);
}

interface LedgerRow {
  kind: string;
  subject_ref: string;
  as_of: Date;
  amount_minor: number;
  [column: string]: unknown;
}

/** The ledger without the ids and run numbers that differ between tenants. */
async function ledgerOf(h: Harness, tenant: string): Promise<LedgerRow[]> {
  const { rows } = await h.pool.query<LedgerRow>(
    `select kind, outcome_type, subject_ref, period, currency, unit_price, amount_minor, contract_version, as_of,
            primary_claim_id, success_at, pricing_basis, tier, period_position
       from ledger_entries where tenant_id = $1 order by period, period_position, subject_ref, kind`,
    [tenant],
  );
  return rows;
}

async function outcomesOf(h: Harness, tenant: string): Promise<Array<{ state: string; [column: string]: unknown }>> {
  const { rows } = await h.pool.query<{ state: string }>(
    `select subject_key, state, reject_reason, success_at, confirmed_as_of from outcomes where tenant_id = $1 order by subject_key`,
    [tenant],
  );
  return rows;
}

/** What a night's report says, without the fields that name the tenant, the run or the wall clock. */
function reportOf(s: RunSummary) {
  return {
    claims: s.claims,
    outcomes: { created: s.outcomes.created, transitions: s.outcomes.transitions, rejected: s.outcomes.rejected },
    ledger: { ...s.ledger, outsideRuns: undefined },
  };
}

describe('a small night in one activity', () => {
  let fused: Harness;
  let chunked: Harness;
  let receiver: WebhookReceiverHandle;
  const small = uniqueTenant('small');
  const large = uniqueTenant('large');
  const withSink = uniqueTenant('small-sink');
  const summaries = new Map<string, RunSummary>();
  const night = async (h: Harness, tenant: string, asOf: string) => {
    const s = await runReconciliation(h.client, { tenant, asOf: new Date(asOf), taskQueue: h.taskQueue });
    summaries.set(`${tenant}@${asOf}`, s);
    return s;
  };

  beforeAll(async () => {
    receiver = await startWebhookReceiver({ secret: SECRET, dedupWindowMs: 3600_000 });
    // Default chunks (2,000 outcomes): these tenants' nights are small.
    fused = await startHarness({ sinkEnv: { LEDGER_WEBHOOK_SECRET: SECRET } });
    // Chunks of 2: the same data is more than a chunk, so the night keeps the chunked path.
    chunked = await startHarness({ chunkSize: 2, chunksPerCall: 1 });
    await applyExample(fused.pool, small);
    await applyExample(chunked.pool, large);
    await applyExample(fused.pool, withSink, {
      sinks: {
        ledger: SinkSchema.parse({
          kind: 'webhook',
          url: `${receiver.url}/hooks/ledger`,
          secretEnv: 'LEDGER_WEBHOOK_SECRET',
          dedupWindowHours: 1,
        }),
      },
    });
    await seed(fused, small);
    await seed(chunked, large);
    await seed(fused, withSink);
    for (const asOf of [NIGHT_1, NIGHT_2]) {
      await night(fused, small, asOf);
      await night(chunked, large, asOf);
      await night(fused, withSink, asOf);
    }
  }, 180_000);
  afterAll(async () => {
    await fused?.stop();
    await chunked?.stop();
    await receiver?.close();
  });

  it('runs a small night as startRun, settleSmallNight and reportRun, with no sink or webhook to serve', async () => {
    for (const asOf of [NIGHT_1, NIGHT_2]) {
      expect(await activitiesOf(fused, small, asOf)).toEqual(['startRun', 'settleSmallNight', 'reportRun']);
    }
  });

  it('keeps the chunked activities for a night of a chunk or more', async () => {
    const steps = await activitiesOf(chunked, large, NIGHT_1);
    expect(steps).not.toContain('settleSmallNight');
    expect(steps.filter((s, i) => s !== steps[i - 1])).toEqual([
      'startRun',
      'attachClaims',
      'evaluateOutcomes',
      'reverseCharges',
      'postPeriodLines',
      'postCharges',
      'deliverToSinks',
      'deliverAlerts',
      'reportRun',
    ]);
    // 6 outcomes, 2 posted per chunk, one chunk per call: several calls of post. Attach creates
    // the night's new outcomes already evaluated, so evaluate finds nothing left in one call.
    expect(steps.filter((s) => s === 'evaluateOutcomes').length).toBe(1);
    expect(steps.filter((s) => s === 'postCharges').length).toBeGreaterThan(1);
  });

  it('writes the same ledger, outcomes and reports as the chunked path', async () => {
    const ledger = await ledgerOf(fused, small);
    expect(ledger.map((l) => [l.subject_ref, l.as_of.toISOString(), l.amount_minor])).toEqual([
      ['T-3', NIGHT_1, 99],
      ['T-1', NIGHT_1, 99],
      ['T-2', NIGHT_1, 99],
      ['T-4', NIGHT_2, 99],
      ['T-5', NIGHT_2, 99],
    ]);
    expect(await ledgerOf(chunked, large)).toEqual(ledger);
    expect(await ledgerOf(fused, withSink)).toEqual(ledger);
    const outcomes = await outcomesOf(fused, small);
    expect(outcomes.map((o) => o.state)).toEqual([
      'billed',
      'billed',
      'billed',
      'billed',
      'billed',
      'awaiting_evidence',
    ]);
    expect(await outcomesOf(chunked, large)).toEqual(outcomes);
    for (const asOf of [NIGHT_1, NIGHT_2]) {
      const report = reportOf(summaries.get(`${small}@${asOf}`)!);
      expect(reportOf(summaries.get(`${large}@${asOf}`)!)).toEqual(report);
    }
    expect(summaries.get(`${small}@${NIGHT_1}`)!.ledger).toMatchObject({ charges: 3, amountMinor: 297, newLines: 3 });
  });

  it('answers the progress query with the chunked path’s counts', async () => {
    const progress = async (h: Harness, tenant: string, asOf: string) =>
      h.client.workflow.getHandle(runWorkflowId(tenant, asOf)).query(progressQuery);
    const a = await progress(fused, small, NIGHT_1);
    const b = await progress(chunked, large, NIGHT_1);
    expect(a).toMatchObject({ phase: 'done', outcomesEvaluated: 6, chargesPosted: 3 });
    expect(b).toMatchObject({ phase: 'done', outcomesEvaluated: a.outcomesEvaluated, chargesPosted: a.chargesPosted });
    // One attach, one evaluate and one post chunk.
    expect(a.chunksDone).toBe(3);
  });

  it('still delivers to a small tenant’s sink', async () => {
    expect(await activitiesOf(fused, withSink, NIGHT_1)).toEqual([
      'startRun',
      'settleSmallNight',
      'deliverToSinks',
      'reportRun',
    ]);
    const summary = summaries.get(`${withSink}@${NIGHT_2}`)!;
    expect(summary.sinks?.every((s) => s.state === 'delivered')).toBe(true);
    expect(receiver.state().events.length).toBeGreaterThan(0);
  });

  it('replays its histories against the current workflow code', async () => {
    const bundle = { workflowBundle: { codePath: inject('workflowBundlePath') } };
    for (const [h, tenant] of [
      [fused, small],
      [fused, withSink],
    ] as const) {
      const history = await h.client.workflow.getHandle(runWorkflowId(tenant, NIGHT_1)).fetchHistory();
      await Worker.runReplayHistory(bundle, history);
      // test/replay replays this one from test/fixtures, so the small-night branch stays deterministic.
      if (process.env.RECORD_HISTORIES && tenant === small) {
        const out = fileURLToPath(new URL('../fixtures/histories/reconcile-small-night.json', import.meta.url));
        await writeFile(out, JSON.stringify(JSON.parse(historyToJSON(history)), null, 1));
      }
    }
  });

  it('a retry of settleSmallNight after it finished changes nothing', async () => {
    const { rows } = await fused.pool.query<{ run_id: number }>(
      'select run_id from runs where tenant_id = $1 and as_of = $2',
      [small, NIGHT_2],
    );
    const before = { ledger: await ledgerOf(fused, small), outcomes: await outcomesOf(fused, small) };
    const events = async () =>
      (
        await fused.pool.query<{ n: number }>(
          'select count(*)::int as n from outcome_events e join outcomes o using (outcome_id) where o.tenant_id = $1',
          [small],
        )
      ).rows[0].n;
    const eventsBefore = await events();
    const activities = createActivities({ pool: fused.pool });
    type Input = Parameters<typeof activities.settleSmallNight>[0];
    const again = await new MockActivityEnvironment().run((input: Input) => activities.settleSmallNight(input), {
      tenant: small,
      runId: rows[0].run_id,
      asOf: NIGHT_2,
    });
    expect(again).toMatchObject({ posted: 0, amountMinor: 0 });
    expect({ ledger: await ledgerOf(fused, small), outcomes: await outcomesOf(fused, small) }).toEqual(before);
    expect(await events()).toBe(eventsBefore);
  });

  it('a retry after a crash part-way (attach done, evaluate and post half done) ends with the same ledger', async () => {
    const crashed = uniqueTenant('small-crashed');
    await applyExample(fused.pool, crashed);
    await seed(fused, crashed);
    const env = new MockActivityEnvironment();
    const run = <A, R>(fn: (a: A) => Promise<R>, a: A): Promise<R> => env.run<[A], R, typeof fn>(fn, a);
    // The state a settleSmallNight killed mid-way leaves: its steps are these functions, run in chunks of 2.
    const part = createActivities({ pool: fused.pool, chunkSize: 2, chunksPerCall: 1 });
    const { runId } = await run((i: { tenant: string; asOf: string; workflowId: string }) => part.startRun(i), {
      tenant: crashed,
      asOf: NIGHT_1,
      workflowId: `crash-${crashed}`,
    });
    const attached = await run((i: { tenant: string; runId: number }) => part.attachClaims(i), {
      tenant: crashed,
      runId,
    });
    expect(attached.done).toBe(true);
    const evaluated = await run(
      (i: { tenant: string; runId: number; asOf: string; cursor: number }) => part.evaluateOutcomes(i),
      { tenant: crashed, runId, asOf: NIGHT_1, cursor: 0 },
    );
    expect(evaluated).toMatchObject({ done: false, processed: 4 });
    const posted = await run(
      (i: { tenant: string; runId: number; asOf: string; cursor: number }) => part.postCharges(i),
      { tenant: crashed, runId, asOf: NIGHT_1, cursor: 0 },
    );
    expect(posted.posted).toBeGreaterThan(0);

    const activities = createActivities({ pool: fused.pool });
    const retried = await run((i: { tenant: string; runId: number; asOf: string }) => activities.settleSmallNight(i), {
      tenant: crashed,
      runId,
      asOf: NIGHT_1,
    });
    expect(retried.posted + posted.posted).toBe(3);
    const nightOne = (await ledgerOf(fused, small)).filter((l) => l.as_of.toISOString() === NIGHT_1);
    expect(await ledgerOf(fused, crashed)).toEqual(nightOne);
    const { rows } = await fused.pool.query<{ kind: string; n: number }>(
      `select e.kind, count(*)::int as n from outcome_events e join outcomes o using (outcome_id)
        where o.tenant_id = $1 and e.kind = 'billed' group by e.kind`,
      [crashed],
    );
    expect(rows).toEqual([{ kind: 'billed', n: 3 }]);
  });
});
