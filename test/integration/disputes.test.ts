import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Writable } from 'node:stream';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { runReconciliation } from '../../src/temporal/run-client';
import {
  openDisputeViaTemporal,
  noteDisputeViaTemporal,
  resolveDisputeViaTemporal,
} from '../../src/temporal/dispute-client';
import { findOutcomeId } from '../../src/reconcile/explain';
import { showDispute } from '../../src/disputes/views';
import { writeExport } from '../../src/export/export';
import { billingPeriodOf } from '../../src/domain/periods';
import { disputeWorkflowId } from '../../workflows/dispute-messages';
import { applyExample, loadExampleContract, startHarness, uniqueTenant, writeLines, type Harness } from './harness';
import { HELPDESK_HEADER, HOUR, DAY } from '../support/fixtures';

const NOW = Date.now();
const t = (offsetMs: number) => new Date(Math.floor((NOW + offsetMs) / 60_000) * 60_000);

async function seed(
  h: Harness,
  tenant: string,
  tickets: Array<{ id: string; claimAt: Date; versions: Array<{ status: string; at: Date }> }>,
) {
  await importClaimsFile(h.pool, {
    tenant,
    file: await writeLines(
      h.dir,
      `${tenant}-claims-${tickets[0].id}.jsonl`,
      tickets.map((x) =>
        JSON.stringify({
          claim_id: `${x.id}-c`,
          outcome_type: 'resolved_ticket',
          subject_ref: x.id,
          occurred_at: x.claimAt.toISOString(),
        }),
      ),
    ),
  });
  const rows = tickets.flatMap((x) =>
    x.versions.map(
      (v) => `${x.id},${v.status},${v.status === 'solved' ? v.at.toISOString() : ''},${v.at.toISOString()},5`,
    ),
  );
  await importRecordsFile(h.pool, {
    tenant,
    source: 'helpdesk',
    file: await writeLines(h.dir, `${tenant}-records-${tickets[0].id}.csv`, [HELPDESK_HEADER, ...rows]),
  });
}

describe('disputes on real Temporal and Postgres', () => {
  let h: Harness;
  const tenant = uniqueTenant('disp');
  const night = (asOf: Date) => runReconciliation(h.client, { tenant, asOf, taskQueue: h.taskQueue });
  const outcome = async (subject: string) => {
    const id = await findOutcomeId(h.pool, { tenant, subject });
    const {
      rows: [o],
    } = await h.pool.query('select outcome_id, state, reject_reason, on_hold from outcomes where outcome_id = $1', [
      id,
    ]);
    return o;
  };
  const open = async (subject: string, actor = 'sam') =>
    openDisputeViaTemporal(h.client, {
      tenant,
      outcomeId: await findOutcomeId(h.pool, { tenant, subject }),
      actor,
      reason: `customer says ${subject} is not resolved`,
      taskQueue: h.taskQueue,
    });
  const resolve = (subject: string, outcomeId: number, decision: 'uphold' | 'reject', actor = 'lee') =>
    resolveDisputeViaTemporal(h.client, {
      workflowId: disputeWorkflowId(tenant, outcomeId),
      decision,
      actor,
      note: `${decision} for ${subject}`,
      taskQueue: h.taskQueue,
    });
  const ledgerOf = async (subject: string) =>
    (
      await h.pool.query(
        `select kind, amount_minor, reverses_entry_id, reason, period from ledger_entries where tenant_id = $1 and subject_ref = $2 order by entry_id`,
        [tenant, subject],
      )
    ).rows;

  beforeAll(async () => {
    h = await startHarness();
    const base = await loadExampleContract(tenant);
    const terms = base.outcomeTypes.resolved_ticket;
    await applyExample(h.pool, tenant, {
      outcomeTypes: {
        resolved_ticket: { ...terms, clawbackWindow: 'P2D', disputes: { ...terms.disputes, window: 'P30D' } },
      },
    });
    await seed(h, tenant, [
      { id: 'D-1', claimAt: t(-5 * DAY), versions: [{ status: 'solved', at: t(-5 * DAY + HOUR) }] },
      { id: 'D-2', claimAt: t(-5 * DAY), versions: [{ status: 'solved', at: t(-5 * DAY + HOUR) }] },
      { id: 'D-3', claimAt: t(-10 * DAY), versions: [{ status: 'solved', at: t(-10 * DAY + HOUR) }] },
      { id: 'D-4', claimAt: t(-70 * DAY), versions: [{ status: 'solved', at: t(-70 * DAY + HOUR) }] },
      { id: 'D-5', claimAt: t(-10 * DAY), versions: [{ status: 'solved', at: t(-10 * DAY + HOUR) }] },
    ]);
  });
  afterAll(async () => h?.stop());

  it('refuses a run as of the future: it would settle outcomes for good', async () => {
    await expect(night(t(DAY))).rejects.toThrow();
    const { rows } = await h.pool.query('select count(*)::int as n from runs where tenant_id = $1', [tenant]);
    expect(rows[0].n).toBe(0);
  });

  it('refuses a dispute on a charge whose window has closed, naming the end of the window', async () => {
    await night(t(-60 * DAY));
    expect((await outcome('D-4')).state).toBe('billed');
    await expect(open('D-4')).rejects.toThrow(/dispute window for this charge closed at \d{4}-\d{2}-\d{2}T/);
    expect((await outcome('D-4')).on_hold).toBe(false);
  });

  it('a dispute opened in grace blocks billing across nights; upheld rejects, rejected bills at the next run', async () => {
    // Solved five days ago: in grace as of four days ago, grace over two days ago.
    await night(t(-4 * DAY));
    expect((await outcome('D-1')).state).toBe('in_grace');
    const d1 = await open('D-1');
    const d2 = await open('D-2');
    expect(d1).toMatchObject({ status: 'open', defaultDecision: 'uphold', attached: false });
    // A second open on the same outcome attaches to the dispute already open.
    const again = await open('D-1', 'kim');
    expect(again).toMatchObject({ disputeId: d1.disputeId, attached: true });
    await night(t(-DAY));
    await night(t(-12 * HOUR));
    expect(await outcome('D-1')).toMatchObject({ state: 'in_grace', on_hold: true });
    expect(await ledgerOf('D-1')).toEqual([]);

    const up = await resolve('D-1', d1.outcomeId, 'uphold');
    expect(up.resolution).toMatchObject({ decision: 'uphold', effect: 'reject_outcome', by: 'lee' });
    expect(await outcome('D-1')).toMatchObject({ state: 'rejected', reject_reason: 'dispute_upheld', on_hold: false });

    const down = await resolve('D-2', d2.outcomeId, 'reject');
    expect(down.resolution).toMatchObject({ effect: 'lift_hold' });
    expect(await outcome('D-2')).toMatchObject({ state: 'in_grace', on_hold: false });
    const next = await night(t(-11 * HOUR));
    expect(next.ledger.newCharges).toBe(1);
    expect(await outcome('D-2')).toMatchObject({ state: 'billed' });
    expect(await ledgerOf('D-1')).toEqual([]);

    const shown = await showDispute(h.pool, d1.disputeId!);
    expect(shown.events.map((e) => [e.kind, e.actor])).toEqual([
      ['opened', 'sam'],
      ['attached', 'kim'],
      ['resolved', 'lee'],
    ]);
  });

  it('a billed outcome disputed within the window and upheld is credited in the current period; the export shows it', async () => {
    expect((await outcome('D-3')).state).toBe('billed');
    const d = await open('D-3');
    const r = await resolve('D-3', d.outcomeId, 'uphold');
    expect(r.resolution).toMatchObject({ effect: 'credit_charge' });
    const lines = await ledgerOf('D-3');
    expect(lines.map((l) => [l.kind, l.amount_minor])).toEqual([
      ['charge', 99],
      ['credit', -99],
    ]);
    expect(lines[1].reason).toMatch(new RegExp(`^dispute ${d.disputeId} upheld by lee`));
    expect(lines[1].period).toBe(billingPeriodOf(new Date(), 'America/New_York'));
    expect((await outcome('D-3')).state).toBe('credited');

    const chunks: Buffer[] = [];
    await writeExport(h.pool, {
      tenant,
      period: lines[1].period,
      format: 'csv',
      out: new Writable({
        write(c, _e, cb) {
          chunks.push(Buffer.from(c));
          cb();
        },
      }),
    });
    const credit = Buffer.concat(chunks)
      .toString()
      .split('\r\n')
      .find((l) => l.includes(',credit,') && l.includes('D-3'));
    expect(credit).toMatch(/,-99,-0\.99,USD,\d+,/);
    expect(credit).toContain(`dispute ${d.disputeId} upheld by lee`);
  });

  it('two resolutions racing: exactly one wins, the other is refused, the ledger holds one effect', async () => {
    const d = await open('D-5');
    const results = await Promise.allSettled([
      resolve('D-5', d.outcomeId, 'uphold', 'ann'),
      resolve('D-5', d.outcomeId, 'uphold', 'bob'),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(String(refused.reason.message)).toMatch(/already resolved|being resolved right now/);
    expect((await ledgerOf('D-5')).map((l) => l.kind)).toEqual(['charge', 'credit']);
  });

  it('for every outcome, charges minus credits is 0 or one unit price', async () => {
    const { rows } = await h.pool.query(
      `select outcome_id, sum(amount_minor)::int as net from ledger_entries where tenant_id = $1 group by outcome_id`,
      [tenant],
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect([0, 99]).toContain(r.net);
  });
});

describe('dispute timers, worker restarts and clawback', () => {
  let h: Harness;
  const tenant = uniqueTenant('dispt');

  beforeAll(async () => {
    h = await startHarness();
    const base = await loadExampleContract(tenant);
    const terms = base.outcomeTypes.resolved_ticket;
    await applyExample(h.pool, tenant, {
      outcomeTypes: {
        resolved_ticket: {
          ...terms,
          clawbackWindow: 'P2D',
          disputes: { window: 'P30D', sla: 'PT2S', autoResolveAfter: 'PT5S', defaultDecision: 'uphold' },
        },
      },
    });
    await seed(h, tenant, [
      { id: 'S-1', claimAt: t(-DAY), versions: [{ status: 'solved', at: t(-DAY + HOUR) }] },
      { id: 'S-2', claimAt: t(-DAY), versions: [{ status: 'solved', at: t(-DAY + HOUR) }] },
      {
        id: 'R-1',
        claimAt: t(-10 * DAY),
        versions: [
          { status: 'solved', at: t(-10 * DAY) },
          { status: 'open', at: t(-5 * DAY) },
        ],
      },
      {
        id: 'R-2',
        claimAt: t(-10 * DAY),
        versions: [
          { status: 'solved', at: t(-10 * DAY) },
          { status: 'open', at: t(-3 * DAY) },
        ],
      },
      { id: 'X-1', claimAt: t(-10 * DAY), versions: [{ status: 'solved', at: t(-10 * DAY) }] },
      { id: 'Z-1', claimAt: t(-10 * DAY), versions: [{ status: 'solved', at: t(-10 * DAY) }] },
    ]);
    await runReconciliation(h.client, { tenant, asOf: t(-6 * DAY), taskQueue: h.taskQueue });
  });
  afterAll(async () => h?.stop());

  const idOf = (s: string) => findOutcomeId(h.pool, { tenant, subject: s });

  it('escalates past the SLA and resolves by the contract default past the deadline', async () => {
    const view = await openDisputeViaTemporal(h.client, {
      tenant,
      outcomeId: await idOf('S-1'),
      actor: 'sam',
      reason: 'nobody will answer this',
      taskQueue: h.taskQueue,
    });
    const deadline = Date.now() + 30_000;
    let d = await showDispute(h.pool, view.disputeId!);
    while (d.status === 'open' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      d = await showDispute(h.pool, view.disputeId!);
    }
    expect(d).toMatchObject({ status: 'upheld', autoResolved: true, resolvedBy: 'system:auto-resolution' });
    expect(d.escalatedAt).not.toBeNull();
    expect(d.events.map((e) => e.kind)).toEqual(['opened', 'escalated', 'resolved']);
    const {
      rows: [o],
    } = await h.pool.query('select state, reject_reason from outcomes where outcome_id = $1', [view.outcomeId]);
    expect(o).toEqual({ state: 'rejected', reject_reason: 'dispute_upheld' });
  });

  it('a worker stopped in the middle of a dispute and restarted: nothing lost or doubled', async () => {
    const outcomeId = await idOf('X-1');
    const view = await openDisputeViaTemporal(h.client, {
      tenant,
      outcomeId,
      actor: 'sam',
      reason: 'billed twice?',
      taskQueue: h.taskQueue,
    });
    await noteDisputeViaTemporal(h.client, {
      workflowId: disputeWorkflowId(tenant, outcomeId),
      actor: 'sam',
      text: 'asked the customer for the ticket',
      taskQueue: h.taskQueue,
    });
    await h.stopWorker();
    await h.startWorker();
    const r = await resolveDisputeViaTemporal(h.client, {
      workflowId: disputeWorkflowId(tenant, outcomeId),
      decision: 'uphold',
      actor: 'lee',
      note: 'confirmed with the customer',
      taskQueue: h.taskQueue,
    });
    expect(r).toMatchObject({ status: 'upheld', notes: 1 });
    const d = await showDispute(h.pool, view.disputeId!);
    expect(d.events.map((e) => e.kind)).toEqual(['opened', 'note', 'resolved']);
    const { rows } = await h.pool.query(`select kind from ledger_entries where outcome_id = $1 order by entry_id`, [
      outcomeId,
    ]);
    expect(rows.map((x) => x.kind)).toEqual(['charge', 'credit']);

    // Its history (open, note, worker restart, resolve) replays against the current code.
    const history = await h.client.workflow.getHandle(disputeWorkflowId(tenant, outcomeId)).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: { codePath: inject('workflowBundlePath') } }, history);
    if (process.env.RECORD_HISTORIES) {
      await writeFile(
        fileURLToPath(new URL('../fixtures/histories/dispute-note-restart-resolve.json', import.meta.url)),
        historyToJSON(history),
      );
    }
  });

  it('a reopen after billing credits inside the clawback window and changes nothing after it', async () => {
    // Both were billed as of -6 days; R-1 reopened a day later (inside P2D), R-2 three days later.
    const s = await runReconciliation(h.client, { tenant, asOf: t(-2 * DAY), taskQueue: h.taskQueue });
    expect(s.ledger.credits).toBe(1);
    const { rows } = await h.pool.query(
      `select subject_ref, kind, amount_minor, reason from ledger_entries where tenant_id = $1 and subject_ref in ('R-1', 'R-2') order by subject_ref, entry_id`,
      [tenant],
    );
    expect(rows.map((r) => [r.subject_ref, r.kind, r.amount_minor])).toEqual([
      ['R-1', 'charge', 99],
      ['R-1', 'credit', -99],
      ['R-2', 'charge', 99],
    ]);
    expect(rows[1].reason).toMatch(/^reopened: /);
    // Rerunning changes nothing.
    const again = await runReconciliation(h.client, { tenant, asOf: t(-2 * DAY), taskQueue: h.taskQueue });
    expect(again.ledger.credits).toBe(1);
    const { rows: count } = await h.pool.query(
      `select count(*)::int as n from ledger_entries where tenant_id = $1 and kind = 'credit' and subject_ref in ('R-1', 'R-2')`,
      [tenant],
    );
    expect(count[0].n).toBe(1);
  });

  it('a retraction after billing credits the charge', async () => {
    await importClaimsFile(h.pool, {
      tenant,
      file: await writeLines(h.dir, 'retract-z1.jsonl', [
        JSON.stringify({ claim_id: 'Z-1-c', retracted: true, retracted_at: t(-HOUR).toISOString() }),
      ]),
    });
    // Not yet retracted as of two hours ago: nothing to reverse.
    expect(
      (await runReconciliation(h.client, { tenant, asOf: t(-2 * HOUR), taskQueue: h.taskQueue })).ledger.credits,
    ).toBe(0);
    const s = await runReconciliation(h.client, { tenant, asOf: t(0), taskQueue: h.taskQueue });
    const { rows } = await h.pool.query(
      `select kind, amount_minor, reason from ledger_entries where tenant_id = $1 and subject_ref = 'Z-1' order by entry_id`,
      [tenant],
    );
    expect(rows.map((r) => r.kind)).toEqual(['charge', 'credit']);
    expect(rows[1].reason).toMatch(/^retracted: /);
    expect(s.ledger.credits).toBe(1);
  });

  it('a credit names the dispute it comes from; credits of reopens and retractions name none', async () => {
    const { rows } = await h.pool.query<{ subject_ref: string; dispute_id: number | null; upheld: number | null }>(
      `select l.subject_ref, l.dispute_id,
              (select d.dispute_id from disputes d where d.outcome_id = l.outcome_id and d.effect = 'credit_charge') as upheld
         from ledger_entries l where l.tenant_id = $1 and l.kind = 'credit' order by l.subject_ref`,
      [tenant],
    );
    // upheld while billed (the worker-restart case); R-1 reopened in the clawback window; Z-1 retracted.
    expect(rows.map((r) => r.subject_ref)).toEqual(['R-1', 'X-1', 'Z-1']);
    for (const r of rows) expect(r.dispute_id, r.subject_ref).toBe(r.upheld);
    expect(rows.filter((r) => r.dispute_id !== null).map((r) => r.subject_ref)).toEqual(['X-1']);
    const { rows: charges } = await h.pool.query(
      `select count(*)::int as n from ledger_entries where tenant_id = $1 and dispute_id is not null and kind <> 'credit'`,
      [tenant],
    );
    expect(charges[0].n).toBe(0);
    // Migration 014 filled dispute_id for older credits from their 'credited' events: that source agrees.
    const { rows: fromEvents } = await h.pool.query<{ dispute_id: number; from_event: number }>(
      `select l.dispute_id, (e.details ->> 'disputeId')::bigint as from_event
         from ledger_entries l join outcome_events e on e.outcome_id = l.outcome_id and e.kind = 'credited' and e.details ? 'disputeId'
          and (e.details ->> 'entryId')::bigint = l.entry_id
        where l.tenant_id = $1 and l.kind = 'credit'`,
      [tenant],
    );
    expect(fromEvents).toHaveLength(1);
    expect(fromEvents[0].from_event).toBe(fromEvents[0].dispute_id);
  });
});
