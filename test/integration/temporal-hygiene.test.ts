import type { WorkflowExecutionInfo } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { openDisputeViaTemporal, resolveDisputeViaTemporal } from '../../src/temporal/dispute-client';
import { runReconciliation } from '../../src/temporal/run-client';
import { createSchedule, deleteSchedule, triggerSchedule } from '../../src/temporal/schedules';
import { disputeWorkflowId } from '../../workflows/dispute-messages';
import { applyExample, startHarness, uniqueTenant, writeLines, type Harness } from './harness';

// DESIGN 8: no personal data in Temporal workflow ids or search attributes. Those are indexed and
// shown in plain text by every Temporal UI and API (the payload codec cannot encrypt them), so a
// night, a dispute and a scheduled run whose data is full of people must leave none of it there.

// What a customer's data really holds: emails and names as ticket keys, in claim ids, in the
// attributes, in a dispute's reason and actor, and an external CRM id.
const SYSTEM_ATTRIBUTE = /^(Temporal[A-Za-z]+|BuildIds)$/;
const PERSONAL = [
  'jane.doe@example.com',
  'Jane Doe',
  'john.smith@example.org',
  'John Smith',
  'Alice Liddell',
  'CRM-884213',
  'crm-884213',
  '+44 20 7946 0958',
];

describe('no personal data in workflow ids or search attributes', () => {
  let h: Harness;
  const tenant = uniqueTenant('hygiene');

  beforeAll(async () => {
    h = await startHarness();
    await applyExample(h.pool, tenant);
  });
  afterAll(async () => {
    await deleteSchedule(h.client, tenant).catch(() => undefined);
    await h?.stop();
  });

  /** Every workflow of this test, from the visibility store, as a reader of the UI would see it. */
  async function visible(): Promise<WorkflowExecutionInfo[]> {
    const out: WorkflowExecutionInfo[] = [];
    // By task queue as well as by tenant: a workflow started without the tenant attribute counts too.
    for await (const wf of h.client.workflow.list({ query: `TaskQueue = '${h.taskQueue}'` })) out.push(wf);
    return out;
  }

  /** The indexed text of one execution: id, type, every search attribute, memo, raw bytes included. */
  function indexedText(wf: WorkflowExecutionInfo): string {
    const raw = Object.entries(wf.raw.searchAttributes?.indexedFields ?? {}).map(
      ([k, p]) => `${k}=${Buffer.from(p.data ?? new Uint8Array()).toString('utf8')}`,
    );
    return JSON.stringify({
      id: wf.workflowId,
      type: wf.type,
      runId: wf.runId,
      attrs: wf.searchAttributes,
      typed: wf.typedSearchAttributes,
      memo: wf.memo,
      raw,
    });
  }

  it('a night, a dispute and a scheduled run show only the tenant, times and numeric ids', async () => {
    const claims = await writeLines(h.dir, 'claims.jsonl', [
      JSON.stringify({
        claim_id: 'claim-jane.doe@example.com-1',
        outcome_type: 'resolved_ticket',
        subject_ref: 'jane.doe@example.com',
        occurred_at: '2026-03-02T10:00:00Z',
        attributes: { customer: 'Jane Doe', phone: '+44 20 7946 0958' },
      }),
      JSON.stringify({
        claim_id: 'CRM-884213',
        outcome_type: 'resolved_ticket',
        subject_ref: 'CRM-884213',
        occurred_at: '2026-03-02T10:00:00Z',
        attributes: { customer: 'John Smith <john.smith@example.org>' },
      }),
    ]);
    expect(await importClaimsFile(h.pool, { tenant, file: claims })).toMatchObject({ accepted: 2, quarantined: 0 });
    const records = await writeLines(h.dir, 'tickets.csv', [
      'Ticket ID,Status,Solved at,Updated at,CSAT,Requester',
      'jane.doe@example.com,solved,2026-03-02T12:00:00Z,2026-03-02T12:00:00Z,5,Jane Doe',
      'CRM-884213,solved,2026-03-02T12:00:00Z,2026-03-02T12:00:00Z,4,John Smith <john.smith@example.org>',
    ]);
    expect(await importRecordsFile(h.pool, { tenant, source: 'helpdesk', file: records })).toMatchObject({
      accepted: 2,
      quarantined: 0,
    });

    const asOf = '2026-03-03T00:00:00.000Z';
    await runReconciliation(h.client, { tenant, asOf: new Date(asOf), taskQueue: h.taskQueue });

    const { rows } = await h.pool.query<{ outcome_id: number }>(
      `select outcome_id from outcomes where tenant_id = $1 and subject_key = 'jane.doe@example.com'`,
      [tenant],
    );
    const outcomeId = Number(rows[0].outcome_id);
    await openDisputeViaTemporal(h.client, {
      tenant,
      outcomeId,
      actor: 'support:Alice Liddell',
      reason: 'Jane Doe (jane.doe@example.com, +44 20 7946 0958) says it is not fixed',
      taskQueue: h.taskQueue,
    });
    await resolveDisputeViaTemporal(h.client, {
      workflowId: disputeWorkflowId(tenant, outcomeId),
      decision: 'uphold',
      actor: 'support:Alice Liddell',
      note: 'John Smith confirmed',
      taskQueue: h.taskQueue,
    });

    await createSchedule(h.client, { tenant, taskQueue: h.taskQueue, timezone: 'UTC' });
    await triggerSchedule(h.client, tenant);

    // Visibility is eventually consistent: wait until all three workflows are listed.
    let listed: WorkflowExecutionInfo[] = [];
    for (const started = Date.now(); Date.now() - started < 60_000; await new Promise((r) => setTimeout(r, 500))) {
      listed = await visible();
      if (listed.length >= 3 && listed.some((w) => w.workflowId.startsWith(`reconcile-${tenant}-scheduled`))) break;
    }
    const esc = tenant.replace(/[-]/g, '\\-');
    expect(listed.map((w) => w.workflowId).sort()).toEqual([
      `dispute-${tenant}-${outcomeId}`,
      `reconcile-${tenant}-${asOf}`,
      expect.stringMatching(new RegExp(`^reconcile-${esc}-scheduled-\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z$`)),
    ]);
    for (const wf of listed) {
      const text = indexedText(wf);
      for (const word of PERSONAL) expect(text, `${wf.workflowId} shows "${word}"`).not.toContain(word);
      // Only our own attributes (the tenant id, the run's asOf) and Temporal's bookkeeping (build
      // ids, the schedule's nominal time): nothing that takes a value from customer data.
      const names = Object.keys(wf.raw.searchAttributes?.indexedFields ?? {});
      expect(names.filter((n) => !SYSTEM_ATTRIBUTE.test(n)).sort(), wf.workflowId).toEqual(
        wf.workflowId.startsWith('dispute')
          ? ['ReconTenant']
          : ['ReconAsOf', 'ReconTenant'].filter((n) => names.includes(n)),
      );
      expect(names, wf.workflowId).toContain('ReconTenant');
      expect(wf.searchAttributes.ReconTenant, wf.workflowId).toEqual([tenant]);
    }

    // The data itself was there to leak: the test would catch an id built from it.
    const { rows: subjects } = await h.pool.query<{ subject_ref: string }>(
      'select subject_ref from claims where tenant_id = $1 order by 1',
      [tenant],
    );
    expect(subjects.map((s) => s.subject_ref)).toEqual(['CRM-884213', 'jane.doe@example.com']);
  });
});
