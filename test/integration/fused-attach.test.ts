import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runReconciliation } from '../../src/temporal/run-client';
import { runWorkflowId } from '../../workflows/messages';
import { contractForRun, loadContractVersions } from '../../src/db/contracts';
import { createPool, type Pool } from '../../src/db/pool';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { attachClaimsToOutcomes } from '../../src/reconcile/attach';
import { evaluateChunk } from '../../src/reconcile/evaluate';
import { postChunk } from '../../src/reconcile/post';
import { postPeriodLines } from '../../src/reconcile/period-lines';
import { reverseSettledCharges } from '../../src/reconcile/reversals';
import { startRun } from '../../src/reconcile/runs';
import { applyExample, seedSolvedTickets, startHarness, uniqueTenant, writeLines } from './harness';
import { HELPDESK_HEADER } from '../support/fixtures';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

// The fused attach (new outcomes created already evaluated) against the bare attach that evaluate
// then decides: the same data through both must leave the same outcomes, events and ledger, in
// small chunks, across nights, reruns, claims arriving mid-night, retries and a crash mid-chunk.

const NIGHT_1 = new Date('2026-03-06T07:00:00Z');
const NIGHT_2 = new Date('2026-03-09T07:00:00Z');

type Claim = {
  claim_id: string;
  subject_ref: string;
  occurred_at: string;
  retracted?: boolean;
  retracted_at?: string;
};
const claim = (claim_id: string, subject_ref: string, occurred_at: string): Claim => ({
  claim_id,
  subject_ref,
  occurred_at,
});

/** Night 1's claims: multi-claim subjects whose claims sort apart by claim id, future and evidence-less ones. */
const CLAIMS_1: Claim[] = [
  claim('a-1', 'T-1', '2026-03-01T10:00:00Z'),
  // T-2: three claims, the earliest not the smallest id; spans chunks of 2 in either order.
  claim('z-2', 'T-2', '2026-03-01T09:00:00Z'),
  claim('b-2', 'T-2', '2026-03-01T11:00:00Z'),
  claim('m-2', 'T-2', '2026-03-02T11:00:00Z'),
  // T-3: the earliest claim retracted before the night: the other is primary.
  claim('c-3', 'T-3', '2026-03-01T08:00:00Z'),
  claim('y-3', 'T-3', '2026-03-01T12:00:00Z'),
  // T-4: every claim retracted: rejected (retracted).
  claim('d-4', 'T-4', '2026-03-01T08:00:00Z'),
  claim('e-4', 'T-4', '2026-03-01T09:00:00Z'),
  // T-5: its only claim occurred after night 1 (bare on night 1, decided on night 2).
  claim('f-5', 'T-5', '2026-03-07T10:00:00Z'),
  // T-6: one claim before night 1, one after.
  claim('g-6', 'T-6', '2026-03-02T10:00:00Z'),
  claim('a-6', 'T-6', '2026-03-08T10:00:00Z'),
  // T-7: no record: awaiting evidence. T-8: no record and past the evidence deadline: no_evidence.
  claim('h-7', 'T-7', '2026-03-04T10:00:00Z'),
  claim('i-8', 'T-8', '2026-02-20T10:00:00Z'),
  // T-9: the record never succeeded. T-10: succeeded recently, in grace. T-11: reopened after success.
  claim('j-9', 'T-9', '2026-03-02T10:00:00Z'),
  claim('k-10', 'T-10', '2026-03-05T10:00:00Z'),
  claim('l-11', 'T-11', '2026-03-01T10:00:00Z'),
  // T-12: gains claims on night 2 (an existing outcome).
  claim('n-12', 'T-12', '2026-03-03T10:00:00Z'),
];
const RETRACTIONS_1: Claim[] = [
  { ...claim('c-3', 'T-3', '2026-03-01T08:00:00Z'), retracted: true, retracted_at: '2026-03-03T00:00:00Z' },
  { ...claim('d-4', 'T-4', '2026-03-01T08:00:00Z'), retracted: true, retracted_at: '2026-03-03T00:00:00Z' },
  { ...claim('e-4', 'T-4', '2026-03-01T09:00:00Z'), retracted: true, retracted_at: '2026-03-03T00:00:00Z' },
];
const RECORDS_1 = [
  'T-1,solved,2026-03-01T12:00:00Z,2026-03-01T12:00:00Z,5',
  'T-2,solved,2026-03-02T12:00:00Z,2026-03-02T12:00:00Z,5',
  'T-3,solved,2026-03-02T12:00:00Z,2026-03-02T12:00:00Z,5',
  'T-4,solved,2026-03-02T12:00:00Z,2026-03-02T12:00:00Z,5',
  'T-5,solved,2026-03-02T12:00:00Z,2026-03-02T12:00:00Z,5',
  'T-6,solved,2026-03-02T12:00:00Z,2026-03-02T12:00:00Z,5',
  'T-9,open,,2026-03-02T12:00:00Z,',
  'T-10,solved,2026-03-05T12:00:00Z,2026-03-05T12:00:00Z,5',
  'T-11,solved,2026-03-01T12:00:00Z,2026-03-01T12:00:00Z,5',
  'T-11,open,,2026-03-02T12:00:00Z,',
  'T-12,solved,2026-03-04T12:00:00Z,2026-03-04T12:00:00Z,5',
];
/** Night 2: an existing outcome gains claims, a new subject arrives, T-7's record turns up. */
const CLAIMS_2: Claim[] = [
  claim('a-12', 'T-12', '2026-03-02T10:00:00Z'),
  claim('o-12', 'T-12', '2026-03-08T10:00:00Z'),
  claim('p-13', 'T-13', '2026-03-08T10:00:00Z'),
  claim('q-13', 'T-13', '2026-03-08T09:00:00Z'),
];
const RECORDS_2 = [
  'T-7,solved,2026-03-05T12:00:00Z,2026-03-05T12:00:00Z,5',
  'T-13,solved,2026-03-08T12:00:00Z,2026-03-08T12:00:00Z,5',
];

describe('attach fused with evaluate for new subjects', () => {
  let pool: Pool;
  let dir: string;
  const fused = uniqueTenant('fused');
  const bare = uniqueTenant('bare');
  // The fused attach in chunks of 3 instead of 2.
  const other = uniqueTenant('fused-3');

  beforeAll(async () => {
    pool = createPool(inject('databaseUrl'));
    dir = await mkdtemp(path.join(os.tmpdir(), 'fused-attach-'));
  });
  afterAll(async () => {
    await pool?.end();
    await rm(dir, { recursive: true, force: true });
  });

  async function importClaims(tenant: string, claims: Claim[], tag: string): Promise<void> {
    const lines = claims.map((c) => JSON.stringify({ outcome_type: 'resolved_ticket', ...c }));
    const r = await importClaimsFile(pool, { tenant, file: await writeLines(dir, `${tenant}-${tag}.jsonl`, lines) });
    expect(r.quarantined, `claims ${tag}`).toBe(0);
  }
  async function importRecords(tenant: string, rows: string[], tag: string): Promise<void> {
    const file = await writeLines(dir, `${tenant}-${tag}.csv`, [HELPDESK_HEADER, ...rows]);
    const r = await importRecordsFile(pool, { tenant, source: 'helpdesk', file });
    expect(r.quarantined, `records ${tag}`).toBe(0);
  }

  /** A run's steps as the activities take them, in chunks of `limit`; afterFirstAttach runs after attach's first chunk. */
  async function night(
    tenant: string,
    asOf: Date,
    opts: { fuse: boolean; limit?: number; afterFirstAttach?: () => Promise<void>; pool?: Pool } = {
      fuse: true,
    },
  ): Promise<{ runId: number; attachCalls: number }> {
    const db = opts.pool ?? pool;
    const limit = opts.limit ?? 2;
    const versions = await loadContractVersions(pool, tenant);
    const contract = contractForRun(versions, asOf);
    const runId = await startRun(pool, { tenant, asOf, workflowId: `wf-${tenant}` });
    const fuse = opts.fuse ? { asOf, contract } : undefined;
    let attachCalls = 0;
    for (;;) {
      const a = await attachClaimsToOutcomes(db, tenant, runId, limit, fuse);
      attachCalls++;
      if (attachCalls === 1) await opts.afterFirstAttach?.();
      else if (a.done) break;
    }
    for (let cursor = 0; ;) {
      const r = await evaluateChunk(pool, { tenant, runId, asOf, contract, afterOutcomeId: cursor, limit, slices: 2 });
      cursor = r.lastOutcomeId;
      if (r.done) break;
    }
    await reverseSettledCharges(pool, { tenant, runId, asOf, contract });
    await postPeriodLines(pool, { tenant, runId, asOf, contract });
    for (;;) {
      const r = await postChunk(pool, { tenant, runId, asOf, versions, timeZone: contract.body.timezone, limit });
      if (r.done) break;
    }
    return { runId, attachCalls };
  }

  /** Every decision column of every outcome, by subject. */
  async function outcomesOf(tenant: string) {
    const { rows } = await pool.query<{ subject_key: string; state: string; [column: string]: unknown }>(
      `select o.subject_key, o.subject_ref, o.state, o.reject_reason, o.on_hold, o.primary_claim_id, o.claim_count,
              o.match_status, r.external_id as record, v.effective_at as evidence_at, o.success_at, o.grace_ends_at,
              o.evidence_due_at, o.last_reopened_at, o.confirmed_as_of, o.evaluated_as_of, run.as_of as created_as_of,
              (select array_agg(c.claim_id order by c.claim_id) from claims c where c.tenant_id = o.tenant_id and c.outcome_id = o.outcome_id) as claims
         from outcomes o left join records r on r.record_id = o.record_id
              left join record_versions v on v.version_id = o.evidence_version_id
              left join runs run on run.run_id = o.created_run_id
        where o.tenant_id = $1 order by o.subject_key`,
      [tenant],
    );
    return rows;
  }
  /** Events by subject, with the record and version ids in their details named as the customer does. */
  async function eventsOf(tenant: string) {
    const { rows } = await pool.query<{ details: Record<string, unknown> }>(
      `select o.subject_key, run.as_of as run_as_of, e.as_of, e.kind, e.from_state, e.to_state, e.reason, e.details
         from outcome_events e join outcomes o using (outcome_id) left join runs run on run.run_id = e.run_id
        where o.tenant_id = $1 order by o.subject_key, e.as_of, e.kind`,
      [tenant],
    );
    const { rows: versions } = await pool.query<{ record_id: number; version_id: number; name: string; at: Date }>(
      `select r.record_id, v.version_id, r.external_id as name, v.effective_at as at
         from records r join record_versions v using (record_id) where r.tenant_id = $1`,
      [tenant],
    );
    const { rows: entries } = await pool.query<{ entry_id: number; name: string }>(
      `select entry_id, kind || ':' || period || ':' || period_position as name from ledger_entries where tenant_id = $1`,
      [tenant],
    );
    const entry = new Map(entries.map((e) => [e.entry_id, e.name]));
    const record = new Map(versions.map((v) => [v.record_id, v.name]));
    const version = new Map(versions.map((v) => [v.version_id, `${v.name}@${v.at.toISOString()}`]));
    return rows.map((r) => ({
      ...r,
      details: {
        ...r.details,
        ...('recordId' in r.details ? { recordId: record.get(r.details.recordId as number) } : {}),
        ...('entryId' in r.details ? { entryId: entry.get(r.details.entryId as number) } : {}),
        ...('evidenceVersionId' in r.details
          ? { evidenceVersionId: version.get(r.details.evidenceVersionId as number) ?? null }
          : {}),
      },
    }));
  }
  async function ledgerOf(tenant: string) {
    const { rows } = await pool.query<Record<string, unknown>>(
      `select kind, outcome_type, subject_ref, period, currency, unit_price, amount_minor, contract_version, as_of,
              primary_claim_id, success_at, pricing_basis, tier, period_position
         from ledger_entries where tenant_id = $1 order by period, period_position, subject_ref, kind`,
      [tenant],
    );
    return rows;
  }
  const stateOf = async (tenant: string) => ({
    outcomes: await outcomesOf(tenant),
    events: await eventsOf(tenant),
    ledger: await ledgerOf(tenant),
  });

  it('writes the same outcomes, events and ledger as attach then evaluate, over two nights and a rerun', async () => {
    for (const tenant of [fused, other, bare]) {
      await applyExample(pool, tenant);
      await importClaims(tenant, CLAIMS_1, 'c1');
      await importClaims(tenant, RETRACTIONS_1, 'r1');
      await importRecords(tenant, RECORDS_1, 'v1');
    }
    // A claim for a subject the first chunk already created (and decided) arrives mid-night.
    const late = (tenant: string) => () => importClaims(tenant, [claim('zz-1', 'T-1', '2026-03-01T15:00:00Z')], 'late');
    // Lines with the same success_at are posted in outcome id order, and the bare attach numbers
    // outcomes by claim id within a chunk, by subject across it: in one chunk its order is the
    // fused attach's at any chunk size (subject order). Chunks of 2 for the fused attach.
    await night(fused, NIGHT_1, { fuse: true, afterFirstAttach: late(fused) });
    await night(other, NIGHT_1, { fuse: true, limit: 3, afterFirstAttach: late(other) });
    await night(bare, NIGHT_1, { fuse: false, limit: 100, afterFirstAttach: late(bare) });

    const one = await stateOf(fused);
    expect(one).toEqual(await stateOf(bare));
    expect(await stateOf(other)).toEqual(one);
    const byKey = new Map(one.outcomes.map((o) => [o.subject_key, o]));
    expect(Object.fromEntries([...byKey].map(([k, o]) => [k, [o.state, o.reject_reason]]))).toEqual({
      't-1': ['billed', null],
      't-2': ['billed', null],
      't-3': ['billed', null],
      't-4': ['rejected', 'retracted'],
      't-5': ['awaiting_evidence', null],
      't-6': ['billed', null],
      't-7': ['awaiting_evidence', null],
      't-8': ['rejected', 'no_evidence'],
      't-9': ['awaiting_evidence', null],
      't-10': ['in_grace', null],
      't-11': ['awaiting_evidence', null],
      't-12': ['in_grace', null],
    });
    expect(byKey.get('t-2')).toMatchObject({ primary_claim_id: 'z-2', claim_count: 3, subject_ref: 'T-2' });
    expect(byKey.get('t-3')).toMatchObject({ primary_claim_id: 'y-3' });
    // Bare: no claim visible on night 1, so evaluate leaves it as attach created it.
    expect(byKey.get('t-5')).toMatchObject({ claim_count: 0, evaluated_as_of: null, primary_claim_id: null });
    expect(byKey.get('t-6')).toMatchObject({ claim_count: 1, claims: ['a-6', 'g-6'] });

    // The fused path decided the new outcomes at attach: evaluate wrote none of them, except T-1,
    // which gained a claim after its chunk.
    const { rows: fusedRows } = await pool.query<{ subject_key: string; marked: boolean }>(
      `select subject_key, attach_evaluated_attempt is not null as marked from outcomes where tenant_id = $1 order by subject_key`,
      [fused],
    );
    expect(fusedRows.filter((r) => !r.marked).map((r) => r.subject_key)).toEqual(['t-1', 't-5']);
    expect(byKey.get('t-1')).toMatchObject({ claims: ['a-1', 'zz-1'], claim_count: 2 });

    // Night 2: T-12 gains claims, T-13 is new, T-7's record turns up.
    for (const tenant of [fused, other, bare]) {
      await importClaims(tenant, CLAIMS_2, 'c2');
      await importRecords(tenant, RECORDS_2, 'v2');
    }
    await night(fused, NIGHT_2, { fuse: true });
    await night(other, NIGHT_2, { fuse: true, limit: 3 });
    await night(bare, NIGHT_2, { fuse: false, limit: 100 });
    const two = await stateOf(fused);
    expect(two).toEqual(await stateOf(bare));
    expect(await stateOf(other)).toEqual(two);
    expect(two.outcomes.find((o) => o.subject_key === 't-13')).toMatchObject({ state: 'in_grace', claim_count: 2 });
    expect(two.outcomes.find((o) => o.subject_key === 't-12')).toMatchObject({ claim_count: 3 });

    // A rerun of night 2 after a record changed: another attempt, so evaluate decides the outcomes
    // the first attempt created at attach as it decides every open one.
    for (const tenant of [fused, other, bare]) await importRecords(tenant, ['T-13,open,,2026-03-08T20:00:00Z,'], 'v3');
    await night(fused, NIGHT_2, { fuse: true });
    await night(other, NIGHT_2, { fuse: true, limit: 3 });
    await night(bare, NIGHT_2, { fuse: false, limit: 100 });
    const rerun = await stateOf(fused);
    expect(rerun).toEqual(await stateOf(bare));
    expect(await stateOf(other)).toEqual(rerun);
    expect(rerun.outcomes.find((o) => o.subject_key === 't-13')).toMatchObject({ state: 'awaiting_evidence' });
  });

  it('a chunk killed halfway, a duplicate attempt and a repeated evaluate change nothing', async () => {
    const crashed = uniqueTenant('fused-crash');
    const reference = uniqueTenant('fused-ref');
    for (const tenant of [crashed, reference]) {
      await applyExample(pool, tenant);
      await importClaims(tenant, CLAIMS_1, 'c1');
      await importClaims(tenant, RETRACTIONS_1, 'r1');
      await importRecords(tenant, RECORDS_1, 'v1');
    }
    await night(reference, NIGHT_1, { fuse: true, limit: 3 });

    // The second chunk dies after its first half's outcomes were inserted, before their events:
    // nothing of it stays (its second half waits for the first and rolls back with it).
    let inserts = 0;
    const faulty = {
      query: pool.query.bind(pool),
      connect: async () => {
        const client = await pool.connect();
        const query = client.query.bind(client) as (...a: unknown[]) => Promise<unknown>;
        return Object.assign(client, {
          query: (...a: unknown[]) => {
            if (typeof a[0] === 'string' && a[0].startsWith('insert into outcome_events') && ++inserts === 3)
              return Promise.reject(new Error('worker killed'));
            return query(...a);
          },
        });
      },
    } as unknown as Pool;
    const versions = await loadContractVersions(pool, crashed);
    const contract = contractForRun(versions, NIGHT_1);
    const runId = await startRun(pool, { tenant: crashed, asOf: NIGHT_1, workflowId: `wf-${crashed}` });
    const fuse = { asOf: NIGHT_1, contract };
    await attachClaimsToOutcomes(faulty, crashed, runId, 3, fuse);
    const count = async () =>
      (await pool.query<{ n: number }>('select count(*)::int as n from outcomes where tenant_id = $1', [crashed]))
        .rows[0].n;
    const afterFirst = await count();
    await expect(attachClaimsToOutcomes(faulty, crashed, runId, 3, fuse)).rejects.toThrow('worker killed');
    expect(await count()).toBe(afterFirst);
    // Two attempts of the rest at once (a retry while the first still runs): one waits for the other.
    await Promise.all([
      attachClaimsToOutcomes(pool, crashed, runId, 3, fuse),
      attachClaimsToOutcomes(pool, crashed, runId, 4, fuse),
    ]);
    for (;;) if ((await attachClaimsToOutcomes(pool, crashed, runId, 3, fuse)).done) break;
    // The worker dies during evaluate and the activity starts again from its first chunk.
    await evaluateChunk(pool, { tenant: crashed, runId, asOf: NIGHT_1, contract, afterOutcomeId: 0, limit: 3 });
    // Then the whole night again from its start, as a retried workflow would.
    await night(crashed, NIGHT_1, { fuse: true, limit: 3 });
    expect(await stateOf(crashed)).toEqual(await stateOf(reference));
    // And once more: a night with nothing new to attach changes nothing.
    const before = await stateOf(crashed);
    await night(crashed, NIGHT_1, { fuse: true, limit: 3 });
    expect(await stateOf(crashed)).toEqual(before);
  });
});

describe('the chunked night on Temporal with the fused attach', () => {
  it('passes asOf to attach behind patched(fused-attach), evaluates nothing twice, and replays', async () => {
    // Chunks of 2, one per call: attach, evaluate and post each take several activity calls.
    const h = await startHarness({ chunkSize: 2, chunksPerCall: 1 });
    try {
      const tenant = uniqueTenant('fused-night');
      await applyExample(h.pool, tenant);
      await seedSolvedTickets(h, tenant, 'solved', [
        ['T-1', '2026-03-02T10:00:00Z'],
        ['T-2', '2026-03-02T11:00:00Z'],
        ['T-3', '2026-03-01T09:00:00Z'],
        ['T-4', '2026-03-05T12:00:00Z'],
        ['T-5', '2026-03-05T18:00:00Z'],
      ]);
      const asOf = NIGHT_1.toISOString();
      const summary = await runReconciliation(h.client, { tenant, asOf: NIGHT_1, taskQueue: h.taskQueue });
      expect(summary.ledger).toMatchObject({ charges: 3, amountMinor: 297 });
      expect(summary.outcomes.created).toBe(5);

      const history = await h.client.workflow.getHandle(runWorkflowId(tenant, asOf)).fetchHistory();
      const events = history.events ?? [];
      const scheduled = events
        .map((e) => e.activityTaskScheduledEventAttributes)
        .filter((a): a is NonNullable<typeof a> => !!a);
      const attaches = scheduled.filter((a) => a.activityType?.name === 'attachClaims');
      expect(attaches.length).toBeGreaterThan(0);
      const markers = events.map((e) => e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0]?.data);
      expect(markers.some((d) => d && Buffer.from(d).toString().includes('fused-attach'))).toBe(true);
      // Every outcome was decided at attach: evaluate wrote no event of this run.
      const { rows } = await h.pool.query<{ kind: string; n: number }>(
        `select e.kind, count(*)::int as n from outcome_events e join outcomes o using (outcome_id)
          where o.tenant_id = $1 group by e.kind order by e.kind`,
        [tenant],
      );
      expect(rows).toEqual([
        { kind: 'billed', n: 3 },
        { kind: 'confirmed', n: 3 },
        { kind: 'in_grace', n: 2 },
        { kind: 'matched', n: 5 },
      ]);

      await Worker.runReplayHistory({ workflowBundle: { codePath: inject('workflowBundlePath') } }, history);
      // test/replay replays this one from test/fixtures, so the fused-attach branch stays deterministic.
      if (process.env.RECORD_HISTORIES) {
        const out = fileURLToPath(new URL('../fixtures/histories/reconcile-fused-attach.json', import.meta.url));
        await writeFile(out, JSON.stringify(JSON.parse(historyToJSON(history)), null, 1));
      }
    } finally {
      await h.stop();
    }
  }, 120_000);
});
