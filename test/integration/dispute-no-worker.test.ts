import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReconError } from '../../src/domain/errors';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { findOutcomeId } from '../../src/reconcile/explain';
import { showDispute } from '../../src/disputes/views';
import { runReconciliation } from '../../src/temporal/run-client';
import {
  noteDisputeViaTemporal,
  openDisputeViaTemporal,
  resolveDisputeViaTemporal,
} from '../../src/temporal/dispute-client';
import { disputeWorkflowId } from '../../workflows/dispute-messages';
import { applyExample, startHarness, uniqueTenant, writeLines, type Harness } from './harness';
import { HOUR } from '../support/fixtures';

const at = (offsetMs: number) => new Date(Math.floor((Date.now() + offsetMs) / 60_000) * 60_000).toISOString();

async function refusal(p: Promise<unknown>): Promise<ReconError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ReconError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('disputes without a worker', () => {
  let h: Harness;
  const tenant = uniqueTenant('noworker');
  let outcomeA: number;
  let outcomeB: number;

  beforeAll(async () => {
    h = await startHarness();
    await applyExample(h.pool, tenant);
    await importClaimsFile(h.pool, {
      tenant,
      file: await writeLines(
        h.dir,
        'claims.jsonl',
        ['A', 'B'].map((s) =>
          JSON.stringify({
            claim_id: `${s}-c`,
            outcome_type: 'resolved_ticket',
            subject_ref: s,
            occurred_at: at(-2 * HOUR),
          }),
        ),
      ),
    });
    await importRecordsFile(h.pool, {
      tenant,
      source: 'helpdesk',
      file: await writeLines(h.dir, 'tickets.csv', [
        'Ticket ID,Status,Solved at,Updated at,CSAT',
        ...['A', 'B'].map((s) => `${s},solved,${at(-HOUR)},${at(-HOUR)},5`),
      ]),
    });
    // The night makes the outcomes; both stay in grace, open to dispute.
    await runReconciliation(h.client, { tenant, asOf: new Date(Date.now() - 60_000), taskQueue: h.taskQueue });
    outcomeA = await findOutcomeId(h.pool, { tenant, subject: 'A' });
    outcomeB = await findOutcomeId(h.pool, { tenant, subject: 'B' });
  });
  afterAll(async () => h?.stop());

  it('with no worker on the queue nothing is sent, the message names that queue, the dispute does not exist', async () => {
    const queue = `nobody-${randomUUID()}`;
    const started = Date.now();
    const e = await refusal(
      openDisputeViaTemporal(h.client, {
        tenant,
        outcomeId: outcomeA,
        actor: 'sam',
        reason: 'not fixed',
        taskQueue: queue,
        timeoutMs: 60_000,
      }),
    );
    expect(e.code).toBe('no_worker');
    expect(e.message).toContain(`task queue "${queue}"`);
    expect(e.message).toMatch(/nothing was sent and the dispute is unchanged/);
    expect(Date.now() - started).toBeLessThan(15_000);
    await expect(h.client.workflow.getHandle(disputeWorkflowId(tenant, outcomeA)).describe()).rejects.toThrow();
  });

  it('notes and resolutions go to the queue the dispute runs on, whatever the settings say', async () => {
    const view = await openDisputeViaTemporal(h.client, {
      tenant,
      outcomeId: outcomeB,
      actor: 'sam',
      reason: 'not fixed',
      taskQueue: h.taskQueue,
    });
    const workflowId = disputeWorkflowId(tenant, outcomeB);
    const wrong = `elsewhere-${randomUUID()}`;
    await noteDisputeViaTemporal(h.client, { workflowId, actor: 'sam', text: 'first', taskQueue: wrong });
    expect((await showDispute(h.pool, view.disputeId!)).events.map((x) => x.kind)).toEqual(['opened', 'note']);

    // The worker goes away: the answer says what became of the request, and it is true.
    await h.stopWorker();
    const e = await refusal(
      noteDisputeViaTemporal(h.client, {
        workflowId,
        actor: 'sam',
        text: 'second',
        taskQueue: wrong,
        timeoutMs: 3_000,
      }),
    );
    expect(e.code).toBe('no_worker');
    expect(e.message).toContain(`task queue "${h.taskQueue}"`);
    expect(e.message).not.toContain(wrong);
    await h.startWorker();
    const queued = /the request is queued and applies when that worker takes it/.test(e.message);
    expect(queued || /nothing was sent/.test(e.message)).toBe(true);
    let notes = 1;
    for (let i = 0; i < 40; i++) {
      notes = (await showDispute(h.pool, view.disputeId!)).events.filter((x) => x.kind === 'note').length;
      if (!queued || notes === 2) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    if (!queued) await new Promise((r) => setTimeout(r, 3_000));
    notes = (await showDispute(h.pool, view.disputeId!)).events.filter((x) => x.kind === 'note').length;
    expect(notes).toBe(queued ? 2 : 1);

    const r = await resolveDisputeViaTemporal(h.client, {
      workflowId,
      decision: 'reject',
      actor: 'lee',
      note: 'billed right',
      taskQueue: wrong,
    });
    expect(r.status).toBe('rejected');
  });
});
