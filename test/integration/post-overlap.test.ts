import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { applyContract, loadContractHistory } from '../../src/db/contracts';
import { createPool, type Pool } from '../../src/db/pool';
import { ContractSchema } from '../../src/domain/contract';
import { versionForRun } from '../../src/domain/contract-history';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { attachClaimsToOutcomes } from '../../src/reconcile/attach';
import { evaluateChunk } from '../../src/reconcile/evaluate';
import { postChunk, postChunksOverlapped } from '../../src/reconcile/post';
import { upsertIndexPoints } from '../../src/reconcile/price-index';
import { startRun } from '../../src/reconcile/runs';
import { loadExampleContract, uniqueTenant, writeLines } from './harness';
import { HELPDESK_HEADER } from '../support/fixtures';

/**
 * Posting two chunks at a time (postChunksOverlapped) against posting one at a time (postChunk),
 * on the same confirmed outcomes in twin tenants: the ledgers, alerts and period usage must be the
 * same line for line, in the same entry order, with tiers, a cap, alerts and an index-priced type
 * crossing chunk boundaries (chunks of 4), and also when the second of two overlapped chunks fails
 * after the first committed, when a call stops after its chunk budget, and when two posters run
 * at once as a retried activity and its stale first attempt would.
 */

const ASOF = new Date('2026-09-20T12:00:00Z');
const LIMIT = 4;
const TICKETS = 37;

let pool: Pool;
let dir: string;

beforeAll(async () => {
  pool = createPool(inject('databaseUrl'), 8);
  dir = await mkdtemp(path.join(os.tmpdir(), 'recon-post-overlap-'));
});
afterAll(async () => {
  await pool?.end();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const subject = (i: number) => `P${String(i).padStart(2, '0')}`;

/** A tenant whose night confirms TICKETS outcomes of two types, ready to post; returns its run. */
async function confirmedNight(prefix: string): Promise<{ tenant: string; runId: number }> {
  const tenant = uniqueTenant(prefix);
  const base = await loadExampleContract(tenant);
  const { unitPrice: _flat, ...terms } = base.outcomeTypes.resolved_ticket;
  await applyContract(
    pool,
    ContractSchema.parse({
      ...base,
      outcomeTypes: {
        resolved_ticket: {
          ...terms,
          pricing: {
            tiers: [{ upTo: 5, unitPrice: '1.00' }, { upTo: 11, unitPrice: '0.50' }, { unitPrice: '0.25' }],
            cap: { amount: '9.00' },
            alerts: [0.5, 0.75, 1],
          },
        },
        gpu_ticket: {
          ...terms,
          pricing: { tiers: [{ upTo: 4, unitPrice: '0.99' }, { unitPrice: '0.33' }], indexSeries: 'gpu-cost' },
        },
      },
    }),
  );
  await upsertIndexPoints(pool, tenant, [
    { series: 'gpu-cost', effectiveFrom: new Date('2026-09-01T00:00:00Z'), multiplier: '1.10' },
    { series: 'gpu-cost', effectiveFrom: new Date('2026-09-02T06:00:00Z'), multiplier: '0.90' },
  ]);
  // Solved over twelve days, two tickets at the same instant (the outcome id breaks the tie); every
  // fourth ticket is index-priced, and runs of each type cross the chunks' boundaries.
  const solvedAt = (i: number) => new Date(Date.parse('2026-09-01T10:00:00Z') + Math.floor(i / 2) * 7 * 3600_000);
  const typeOf = (i: number) => (i % 4 === 1 || i % 9 === 0 ? 'gpu_ticket' : 'resolved_ticket');
  const tickets = Array.from({ length: TICKETS }, (_, i) => i);
  const claims = tickets.map((i) =>
    JSON.stringify({
      claim_id: `${subject(i)}-c`,
      outcome_type: typeOf(i),
      subject_ref: subject(i),
      occurred_at: solvedAt(i).toISOString(),
    }),
  );
  await importClaimsFile(pool, { tenant, file: await writeLines(dir, `${tenant}-claims.jsonl`, claims) });
  const records = tickets.map(
    (i) => `${subject(i)},solved,${solvedAt(i).toISOString()},${solvedAt(i).toISOString()},5`,
  );
  await importRecordsFile(pool, {
    tenant,
    source: 'helpdesk',
    file: await writeLines(dir, `${tenant}-records.csv`, [HELPDESK_HEADER, ...records]),
  });
  const runId = await startRun(pool, { tenant, asOf: ASOF, workflowId: `post-overlap-${tenant}` });
  while (!(await attachClaimsToOutcomes(pool, tenant, runId, 10)).done);
  const current = versionForRun(await loadContractHistory(pool, tenant), ASOF);
  for (let cursor = 0; ;) {
    const r = await evaluateChunk(pool, {
      tenant,
      runId,
      asOf: ASOF,
      contract: current,
      afterOutcomeId: cursor,
      limit: 10,
      slices: 1,
    });
    cursor = r.lastOutcomeId;
    if (r.done) break;
  }
  const { rows } = await pool.query<{ n: number }>(
    `select count(*)::int as n from outcomes where tenant_id = $1 and state = 'confirmed'`,
    [tenant],
  );
  expect(rows[0].n).toBe(TICKETS);
  return { tenant, runId };
}

async function postArgs(tenant: string, runId: number) {
  const history = await loadContractHistory(pool, tenant);
  return {
    tenant,
    runId,
    asOf: ASOF,
    versions: history.versions,
    timeZone: versionForRun(history, ASOF).body.timezone,
    limit: LIMIT,
  };
}

async function postSerially(tenant: string, runId: number): Promise<number> {
  const args = await postArgs(tenant, runId);
  let posted = 0;
  for (;;) {
    const r = await postChunk(pool, args);
    posted += r.posted;
    if (r.done) return posted;
  }
}

async function postOverlapped(tenant: string, runId: number, maxChunks = 1000): Promise<number> {
  const args = await postArgs(tenant, runId);
  let posted = 0;
  for (let calls = 0; calls < 100; calls++) {
    const r = await postChunksOverlapped(pool, { ...args, maxChunks });
    posted += r.posted;
    if (r.done) return posted;
  }
  throw new Error('the overlapped post did not finish in 100 calls');
}

/**
 * Everything a tenant's post wrote, without what differs between twin tenants by construction
 * (tenant, database ids, wall-clock times): the ledger in entry order, with each line's rank in
 * entry order against its rank in pricing order; the alerts in id order; the period's usage; the
 * outcomes' states and billed events.
 */
async function posted(tenant: string) {
  const { rows: ledger } = await pool.query<Record<string, unknown>>(
    `select kind, outcome_type, subject_ref, period, currency, unit_price, amount_minor, contract_version, as_of,
            primary_claim_id, evidence - 'versionId' as evidence, success_at, pricing_basis, tier, period_position,
            corrects_period, reverses_entry_id, reason, dispute_id,
            (rank() over (order by entry_id))::int as entry_rank,
            (rank() over (order by success_at, outcome_id))::int as pricing_rank
       from ledger_entries where tenant_id = $1 order by entry_id`,
    [tenant],
  );
  const { rows: alerts } = await pool.query(
    `select outcome_type, period, threshold::text, basis, usage_minor, limit_minor, crossed_at
       from alerts where tenant_id = $1 order by alert_id`,
    [tenant],
  );
  const { rows: usage } = await pool.query(
    `select period, outcome_type, charges, usage_minor, capped from period_usage where tenant_id = $1 order by period, outcome_type`,
    [tenant],
  );
  const { rows: states } = await pool.query<{ subject_ref: string; state: string; billed_events: number }>(
    `select o.subject_ref, o.state, count(e.*)::int as billed_events
       from outcomes o left join outcome_events e on e.outcome_id = o.outcome_id and e.kind = 'billed'
      where o.tenant_id = $1 group by o.subject_ref, o.state order by o.subject_ref`,
    [tenant],
  );
  const { rows: events } = await pool.query<Record<string, unknown> & { names_its_line: boolean }>(
    `select o.subject_ref, e.from_state, e.to_state, e.as_of, e.reason, e.details - 'entryId' as details,
            (e.details ->> 'entryId')::bigint = l.entry_id as names_its_line
       from outcome_events e
       join outcomes o on o.outcome_id = e.outcome_id
       left join ledger_entries l on l.idempotency_key = 'charge:' || o.outcome_id
      where o.tenant_id = $1 and e.kind = 'billed' order by o.subject_ref`,
    [tenant],
  );
  return { ledger, alerts, usage, states, events };
}

/**
 * A charge already in the ledger for a still-confirmed outcome (an earlier attempt's line): the
 * chunk that picks the outcome inserts nothing for it, so the usage that chunk leaves is one line
 * less than Node priced it to leave.
 */
async function chargeWrittenEarlier(tenant: string, runId: number, i: number): Promise<void> {
  const { rowCount } = await pool.query(
    `insert into ledger_entries (tenant_id, idempotency_key, kind, outcome_id, outcome_type, subject_ref, period, currency,
                                 unit_price, amount_minor, contract_version, run_id, as_of, primary_claim_id, evidence,
                                 success_at, pricing_basis, tier, period_position)
     select o.tenant_id, 'charge:' || o.outcome_id, 'charge', o.outcome_id, o.outcome_type, o.subject_ref, '2026-09', 'USD',
            '0.77', 77, 1, $3, $4, o.primary_claim_id, '{}', o.success_at, 'tier', 1, 1
       from outcomes o where o.tenant_id = $1 and o.subject_ref = $2`,
    [tenant, subject(i), runId, ASOF],
  );
  expect(rowCount).toBe(1);
}

describe('posting two chunks at a time', () => {
  let reference: Awaited<ReturnType<typeof posted>>;

  beforeAll(async () => {
    const { tenant, runId } = await confirmedNight('post-serial');
    expect(await postSerially(tenant, runId)).toBe(TICKETS);
    reference = await posted(tenant);
  });

  it('the reference crosses tiers, the cap, alerts and an index change across chunks', () => {
    const bases = new Set(reference.ledger.map((l) => l.pricing_basis));
    expect(bases).toContain('capped');
    expect(new Set(reference.ledger.map((l) => l.tier)).size).toBeGreaterThanOrEqual(3);
    expect(
      new Set(reference.ledger.filter((l) => l.outcome_type === 'gpu_ticket').map((l) => l.unit_price)).size,
    ).toBeGreaterThanOrEqual(3);
    expect(reference.alerts.length).toBe(3);
    // Entry order is pricing order.
    expect(reference.ledger.every((l) => l.entry_rank === l.pricing_rank)).toBe(true);
    expect(reference.states.every((s) => s.state === 'billed' && s.billed_events === 1)).toBe(true);
    expect(reference.events.length).toBe(TICKETS);
    expect(reference.events.every((e) => e.names_its_line === true)).toBe(true);
  });

  it('writes the serial ledger, alerts and usage', async () => {
    const { tenant, runId } = await confirmedNight('post-overlap');
    expect(await postOverlapped(tenant, runId)).toBe(TICKETS);
    expect(await posted(tenant)).toEqual(reference);
  });

  it('writes the serial ledger when every call stops after its chunk budget', async () => {
    const { tenant, runId } = await confirmedNight('post-budget');
    expect(await postOverlapped(tenant, runId, 3)).toBe(TICKETS);
    expect(await posted(tenant)).toEqual(reference);
  });

  it('keeps the first chunk when the second fails, and a retry completes the serial ledger', async () => {
    const { tenant, runId } = await confirmedNight('post-fail');
    // A failure in the second chunk's statement (subject P05: the second of chunks of 4), from
    // outside the code under test: a trigger that refuses that one line of this tenant.
    const fn = `post_overlap_fail_${runId}`;
    await pool.query(
      `create function ${fn}() returns trigger language plpgsql as $$
       begin raise exception 'refused by the test' using errcode = 'P0001'; end $$`,
    );
    await pool.query(
      `create trigger ${fn} before insert on ledger_entries for each row
         when (new.tenant_id = '${tenant}' and new.subject_ref = '${subject(5)}') execute function ${fn}()`,
    );
    try {
      const args = await postArgs(tenant, runId);
      await expect(postChunksOverlapped(pool, { ...args, maxChunks: 1000 })).rejects.toThrow(/refused by the test/);
      const { rows } = await pool.query<{ subject_ref: string }>(
        `select subject_ref from ledger_entries where tenant_id = $1 order by entry_id`,
        [tenant],
      );
      // The chunk ahead committed; the failed one and the one chained behind it did not.
      expect(rows.map((r) => r.subject_ref)).toEqual(reference.ledger.slice(0, LIMIT).map((l) => l.subject_ref));
    } finally {
      await pool.query(`drop trigger if exists ${fn} on ledger_entries`);
      await pool.query(`drop function if exists ${fn}()`);
    }
    expect(await postOverlapped(tenant, runId)).toBe(TICKETS - LIMIT);
    expect(await posted(tenant)).toEqual(reference);
  });

  it('writes the serial ledger when two posters run at once', async () => {
    const { tenant, runId } = await confirmedNight('post-twice');
    const [a, b] = await Promise.all([postOverlapped(tenant, runId), postOverlapped(tenant, runId)]);
    expect(a + b).toBe(TICKETS);
    const got = await posted(tenant);
    expect(got).toEqual(reference);
  });

  it('writes the serial ledger when a serial poster runs beside it', async () => {
    const { tenant, runId } = await confirmedNight('post-mixed');
    const [a, b] = await Promise.all([postOverlapped(tenant, runId), postSerially(tenant, runId)]);
    expect(a + b).toBe(TICKETS);
    expect(await posted(tenant)).toEqual(reference);
  });

  it('prices a chunk again when the one ahead inserted less than it priced, as a serial post does', async () => {
    const serial = await confirmedNight('post-early-s');
    await chargeWrittenEarlier(serial.tenant, serial.runId, 6);
    expect(await postSerially(serial.tenant, serial.runId)).toBe(TICKETS - 1);
    const over = await confirmedNight('post-early-o');
    await chargeWrittenEarlier(over.tenant, over.runId, 6);
    const args = await postArgs(over.tenant, over.runId);
    const r = await postChunksOverlapped(pool, { ...args, maxChunks: 1000 });
    expect(r).toMatchObject({ posted: TICKETS - 1, done: true });
    // The chunk behind P06's was priced from usage one line too high: rolled back and redone.
    expect(r.redone).toBeGreaterThan(0);
    expect(await posted(over.tenant)).toEqual(await posted(serial.tenant));
  });
});
