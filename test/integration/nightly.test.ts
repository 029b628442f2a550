import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { runReconciliation } from '../../src/temporal/run-client';
import { writeExport, ledgerTotal } from '../../src/export/export';
import { applyExample, startHarness, uniqueTenant, writeLines, type Harness } from './harness';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { Worker } from '@temporalio/worker';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import { runWorkflowId } from '../../workflows/messages';
import { HELPDESK_HEADER } from '../support/fixtures';
import { textSink } from '../support/sink';

const claim = (id: string, subject: string, at: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ claim_id: id, outcome_type: 'resolved_ticket', subject_ref: subject, occurred_at: at, ...extra });

describe('nightly reconciliation on real Temporal and Postgres', () => {
  let h: Harness;
  const tenant = uniqueTenant('nightly');
  const night = async (asOf: string) =>
    runReconciliation(h.client, { tenant, asOf: new Date(asOf), taskQueue: h.taskQueue });
  const states = async () => {
    const { rows } = await h.pool.query(
      `select subject_key, state, reject_reason from outcomes where tenant_id = $1 order by subject_key`,
      [tenant],
    );
    return Object.fromEntries(
      rows.map((r) => [r.subject_key, r.reject_reason ? `${r.state}:${r.reject_reason}` : r.state]),
    );
  };

  beforeAll(async () => {
    h = await startHarness({ chunkSize: 2, chunksPerCall: 2 });
    await applyExample(h.pool, tenant);
  });
  afterAll(async () => h?.stop());

  it('moves outcomes from evidence through grace to billed, exactly once each', async () => {
    const claims = await writeLines(h.dir, 'claims.jsonl', [
      claim('c1', 'T-1', '2026-03-02T10:00:00Z'),
      claim('c2a', 'T-2', '2026-03-02T10:00:00Z'),
      claim('c2b', ' t-2 ', '2026-03-02T11:00:00Z'),
      claim('c3', 'T-3', '2026-03-02T10:00:00Z'),
      claim('c4', 'T-4', '2026-03-02T10:00:00Z'),
      claim('c5', 'T-5', '2026-03-02T10:00:00Z'),
      claim('c6', 'T-6', '2026-03-02T10:00:00Z'),
      '{"claim_id": "broken", ',
      JSON.stringify({ claim_id: 'c7', outcome_type: 'resolved_ticket', occurred_at: '2026-03-02T10:00:00Z' }),
    ]);
    const imported = await importClaimsFile(h.pool, { tenant, file: claims });
    expect(imported).toMatchObject({ received: 9, accepted: 7, redelivered: 0, quarantined: 2 });
    expect(imported.problems.map((p) => p.code).sort()).toEqual(['bad_json', 'missing_field']);

    // Versions carry the customer's own update times; a run only sees those in effect at asOf.
    const records = await writeLines(h.dir, 'tickets.csv', [
      HELPDESK_HEADER,
      'T-1,solved,2026-03-02 10:00,2026-03-02 10:00,5',
      'T-2,closed,2026-03-02T16:00:00Z,2026-03-02T16:00:00Z,',
      'T-3,solved,2026-03-02T16:00:00Z,2026-03-02T16:00:00Z,4',
      'T-3,open,2026-03-02T16:00:00Z,2026-03-03T20:00:00Z,4',
      'T-3,solved,2026-03-04T12:00:00Z,2026-03-04T12:00:00Z,4',
      'T-5,solved,2026-03-02T16:00:00Z,2026-03-02T16:00:00Z,5',
      'T-6,open,,2026-03-02T16:00:00Z,',
      'T-9,solved,not a date,2026-03-02T16:00:00Z,',
    ]);
    const rec = await importRecordsFile(h.pool, { tenant, source: 'helpdesk', file: records });
    expect(rec).toMatchObject({ received: 8, accepted: 7, quarantined: 1 });
    expect(rec.problems[0]).toMatchObject({ code: 'bad_timestamp', line: 9 });

    const n1 = await night('2026-03-03T07:00:00Z');
    expect(n1.claims).toMatchObject({ received: 9, accepted: 7, quarantined: 2, duplicates: 1 });
    expect(await states()).toEqual({
      't-1': 'in_grace',
      't-2': 'in_grace',
      't-3': 'in_grace',
      't-4': 'awaiting_evidence',
      't-5': 'in_grace',
      't-6': 'awaiting_evidence',
    });
    expect(n1.ledger.charges).toBe(0);

    // The AI side retracts c5 before it is billed.
    const retraction = await writeLines(h.dir, 'retract.jsonl', [
      JSON.stringify({ claim_id: 'c5', retracted: true, retracted_at: '2026-03-03T12:00:00Z' }),
    ]);
    expect(await importClaimsFile(h.pool, { tenant, file: retraction })).toMatchObject({ received: 1, accepted: 1 });

    const n2 = await night('2026-03-04T07:00:00Z');
    expect(n2.outcomes.transitions).toMatchObject({ reopened: 1, rejected: 1 });
    expect(await states()).toMatchObject({ 't-3': 'awaiting_evidence', 't-5': 'rejected:retracted' });

    await night('2026-03-05T07:00:00Z');
    expect(await states()).toMatchObject({ 't-1': 'in_grace', 't-3': 'in_grace' });

    // T-1 was solved 2026-03-02 10:00 New York = 15:00Z; grace PT72H ends 2026-03-05T15:00Z.
    const n4 = await night('2026-03-06T07:00:00Z');
    expect(n4.ledger).toMatchObject({ charges: 2, amountMinor: 198, currency: 'USD' });
    expect(await states()).toMatchObject({ 't-1': 'billed', 't-2': 'billed', 't-3': 'in_grace' });

    const n5 = await night('2026-03-08T06:00:00Z');
    expect(n5.ledger.charges).toBe(1);
    expect(await states()).toMatchObject({ 't-3': 'billed', 't-4': 'awaiting_evidence' });

    // P7D from 2026-03-02 05:00 EST crosses the DST change: due 2026-03-09 05:00 EDT = 09:00Z.
    await night('2026-03-09T08:59:00Z');
    expect(await states()).toMatchObject({ 't-4': 'awaiting_evidence', 't-6': 'awaiting_evidence' });
    const n7 = await night('2026-03-09T09:01:00Z');
    expect(n7.outcomes.rejected).toEqual({ no_evidence: 1, not_achieved: 1 });
    expect(await states()).toEqual({
      't-1': 'billed',
      't-2': 'billed',
      't-3': 'billed',
      't-4': 'rejected:no_evidence',
      't-5': 'rejected:retracted',
      't-6': 'rejected:not_achieved',
    });

    const { rows: ledger } = await h.pool.query(
      `select subject_ref, amount_minor, period, primary_claim_id, idempotency_key from ledger_entries where tenant_id = $1 order by subject_ref`,
      [tenant],
    );
    expect(ledger).toEqual([
      {
        subject_ref: 'T-1',
        amount_minor: 99,
        period: '2026-03',
        primary_claim_id: 'c1',
        idempotency_key: expect.stringMatching(/^charge:/),
      },
      {
        subject_ref: 'T-2',
        amount_minor: 99,
        period: '2026-03',
        primary_claim_id: 'c2a',
        idempotency_key: expect.stringMatching(/^charge:/),
      },
      {
        subject_ref: 'T-3',
        amount_minor: 99,
        period: '2026-03',
        primary_claim_id: 'c3',
        idempotency_key: expect.stringMatching(/^charge:/),
      },
    ]);
  });

  it('the recorded history of a night replays against the current workflow code', async () => {
    const history = await h.client.workflow.getHandle(runWorkflowId(tenant, '2026-03-06T07:00:00.000Z')).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: { codePath: inject('workflowBundlePath') } }, history);
    // The JSON form is what the replay fixtures hold; it must survive the round trip.
    const json = historyToJSON(history);
    await Worker.runReplayHistory(
      { workflowBundle: { codePath: inject('workflowBundlePath') } },
      historyFromJSON(JSON.parse(json)),
    );
    if (process.env.RECORD_HISTORIES) {
      const out = fileURLToPath(new URL('../fixtures/histories/reconcile-night-with-charges.json', import.meta.url));
      await writeFile(out, JSON.stringify(JSON.parse(json), null, 1));
    }
  });

  it('a rerun of the same asOf adds nothing', async () => {
    const before = await ledgerTotal(h.pool, tenant, '2026-03');
    const again = await night('2026-03-06T07:00:00Z');
    expect(again.ledger).toMatchObject({ charges: 2, newCharges: 0, newAmountMinor: 0 });
    expect(await ledgerTotal(h.pool, tenant, '2026-03')).toEqual(before);
  });

  it('exports the period as the same bytes twice, totals equal to the ledger', async () => {
    const a = textSink();
    const totals = await writeExport(h.pool, { tenant, period: '2026-03', format: 'csv', out: a.out });
    const b = textSink();
    await writeExport(h.pool, { tenant, period: '2026-03', format: 'csv', out: b.out });
    expect(a.text()).toBe(b.text());
    expect(totals).toMatchObject({ lines: 3, amountMinor: 297, amount: '2.97' });
    expect(await ledgerTotal(h.pool, tenant, '2026-03')).toEqual({ lines: 3, amountMinor: 297 });
    const lines = a.text().trimEnd().split('\r\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toContain('entry_id,kind,period');
  });

  it('refuses to edit or delete the ledger, even as its owner', async () => {
    await expect(
      h.pool.query(`update ledger_entries set amount_minor = 0 where tenant_id = $1`, [tenant]),
    ).rejects.toThrow(/append-only/);
    await expect(h.pool.query(`delete from ledger_entries where tenant_id = $1`, [tenant])).rejects.toThrow(
      /append-only/,
    );
  });
});
