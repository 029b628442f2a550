import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { contractForRun, loadContractVersions } from '../../src/db/contracts';
import { createPool, type Pool } from '../../src/db/pool';
import { openDispute, resolveDispute, type ResolvedDispute } from '../../src/disputes/store';
import type { Decision } from '../../src/domain/disputes';
import { addIsoDuration } from '../../src/domain/durations';
import { ReconError } from '../../src/domain/errors';
import { billingPeriodOf } from '../../src/domain/periods';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { attachClaimsToOutcomes } from '../../src/reconcile/attach';
import { evaluateChunk } from '../../src/reconcile/evaluate';
import { postChunk } from '../../src/reconcile/post';
import { postPeriodLines } from '../../src/reconcile/period-lines';
import { reverseSettledCharges } from '../../src/reconcile/reversals';
import { startRun } from '../../src/reconcile/runs';
import { applyExample, loadExampleContract, uniqueTenant, writeLines } from './harness';
import { driveNight, noStep } from '../support/night';
import { HELPDESK_HEADER, MINUTE, HOUR, DAY } from '../support/fixtures';

/**
 * A property over the whole money path on the real PostgreSQL of the integration setup (no
 * Temporal: the Postgres-level steps a night and a dispute workflow call are called directly).
 * Random small scenarios of tickets, claims, record versions, nights, reruns, late records,
 * retractions and disputes; after every step the ledger must stay sound.
 */

const TZ = 'America/New_York'; // the example contract's zone
const UNIT = 99; // "0.99" USD in cents
const RUNS = Number(process.env.LEDGER_PROPERTY_RUNS ?? 20);
const FINAL_NIGHT_AFTER = 10 * DAY;

// ---------------------------------------------------------------------------------------------
// Scenarios

type Status = 'solved' | 'closed' | 'open';
interface VersionSpec {
  h: number;
  status: Status;
  csat: number;
}
interface TicketSpec {
  claims: number[];
  versions: VersionSpec[];
}
type Op =
  | { kind: 'night'; advanceH: number; post: boolean }
  | { kind: 'rerun' }
  | { kind: 'open'; t: number; billed: boolean; retry: boolean }
  | { kind: 'resolve'; t: number; decision: Decision; retries: number; race: boolean }
  | { kind: 'retract'; t: number; c: number; all: boolean }
  | { kind: 'late'; t: number; status: Status; lagH: number };
interface Scenario {
  clawback: string;
  disputeWindow: string;
  tickets: TicketSpec[];
  ops: Op[];
}

const ticketArb: fc.Arbitrary<TicketSpec> = fc.record({
  // Claim times in hours from the first night's eve (some before it); a second claim is a duplicate.
  claims: fc.uniqueArray(fc.integer({ min: -120, max: 48 }), { minLength: 1, maxLength: 2 }),
  // The record's history: mostly solved early, then perhaps reopened and solved again, some of
  // it after billing. Times are hours from the first night's eve, as for claims.
  versions: fc
    .tuple(
      fc.option(
        fc.record({
          h: fc.integer({ min: -120, max: 72 }),
          status: fc.constantFrom<Status>('solved', 'solved', 'solved', 'closed', 'open'),
          csat: fc.constantFrom(5, 5, 5, 5, 5, 5, 1),
        }),
        { freq: 8 },
      ),
      // Reopen episodes: reopened some hours later, and perhaps solved again later still.
      fc.array(
        fc.record({
          openAfterH: fc.integer({ min: 1, max: 120 }),
          solvedAfterH: fc.option(fc.integer({ min: 1, max: 72 }), { freq: 3 }),
        }),
        { maxLength: 2 },
      ),
    )
    .map(([first, reopens]) => {
      if (!first) return [];
      const out: VersionSpec[] = [first];
      const last = () => out[out.length - 1].h;
      for (const r of reopens) {
        out.push({ h: last() + r.openAfterH, status: 'open', csat: 5 });
        if (r.solvedAfterH !== null) out.push({ h: last() + r.solvedAfterH, status: 'solved', csat: 5 });
      }
      return out;
    }),
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('night' as const),
      advanceH: fc.integer({ min: 4, max: 60 }),
      post: fc.constantFrom(true, true, true, false),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('rerun' as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('open' as const),
      t: fc.nat(4),
      billed: fc.boolean(),
      retry: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('resolve' as const),
      t: fc.nat(4),
      decision: fc.constantFrom<Decision>('uphold', 'reject'),
      retries: fc.integer({ min: 0, max: 2 }),
      race: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('retract' as const), t: fc.nat(4), c: fc.nat(1), all: fc.boolean() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('late' as const),
      t: fc.nat(4),
      status: fc.constantFrom<Status>('solved', 'open'),
      lagH: fc.integer({ min: 0, max: 48 }),
    }),
  },
);

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  clawback: fc.constantFrom('PT0S', 'P2D', 'PT36H'),
  disputeWindow: fc.constantFrom('P30D', 'P2D'),
  tickets: fc.array(ticketArb, { minLength: 1, maxLength: 5 }),
  ops: fc.array(opArb, { minLength: 6, maxLength: 30 }),
});

// ---------------------------------------------------------------------------------------------
// Driving the real code

let pool: Pool;
let dir: string;
let fileNo = 0;

beforeAll(async () => {
  pool = createPool(inject('databaseUrl'));
  dir = await mkdtemp(path.join(os.tmpdir(), 'recon-prop-'));
});
afterAll(async () => {
  await pool?.end();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const iso = (ms: number) => new Date(ms).toISOString();
const subject = (t: number) => `T${t}`;
const claimId = (t: number, c: number) => `T${t}-c${c}`;

/** Calls a chunked step until it is done; a step that never finishes fails the test instead of hanging it. */
async function untilDone(step: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 1000; i++) if (await step()) return;
  throw new Error('a chunked step did not finish in 1000 calls');
}

/** One nightly run as the workflow does it, in small chunks; `post: false` is a run that died before posting. */
async function night(tenant: string, asOf: Date, post: boolean): Promise<void> {
  const versions = await loadContractVersions(pool, tenant);
  const contract = contractForRun(versions, asOf);
  let runId = 0;
  let cursor = 0;
  await driveNight({
    startRun: async () => {
      runId = await startRun(pool, { tenant, asOf, workflowId: `prop-${tenant}` });
    },
    pullClaims: noStep('claims come from files here, imported before the night'),
    pullRecords: noStep('records come from files here, imported before the night'),
    // The fused attach the workflow runs: new outcomes are created already evaluated.
    attachClaims: () =>
      untilDone(async () => (await attachClaimsToOutcomes(pool, tenant, runId, 3, { asOf, contract })).done),
    evaluateOutcomes: () =>
      untilDone(async () => {
        const r = await evaluateChunk(pool, { tenant, runId, asOf, contract, afterOutcomeId: cursor, limit: 2 });
        cursor = r.lastOutcomeId;
        return r.done;
      }),
    reverseCharges: async () => {
      await reverseSettledCharges(pool, { tenant, runId, asOf, contract });
    },
    postPeriodLines: async () => {
      if (!post) return 'stop';
      await postPeriodLines(pool, { tenant, runId, asOf, contract });
    },
    postCharges: async () => {
      cursor = 0;
      await untilDone(async () => {
        // Passed as a variable: the cursor and currency are extra (not errors) for newer signatures.
        const postArgs = {
          tenant,
          runId,
          asOf,
          versions,
          timeZone: contract.body.timezone,
          currency: contract.body.currency,
          afterOutcomeId: cursor,
          limit: 2,
        };
        const r = await postChunk(pool, postArgs);
        cursor = r.lastOutcomeId;
        return r.done;
      });
    },
    deliverToSinks: noStep('these contracts name no billing sink: the lines owe no delivery'),
    deliverAlerts: noStep('a flat price has no cap or commitment, so no alert'),
    reportRun: noStep('the summary is not this property; money.test.ts checks it against the ledger'),
  });
}

async function importRecords(
  tenant: string,
  rows: Array<{ t: number; status: Status; at: number; csat: number }>,
): Promise<void> {
  if (rows.length === 0) return;
  const lines = rows.map(
    (r) => `${subject(r.t)},${r.status},${r.status === 'open' ? '' : iso(r.at)},${iso(r.at)},${r.csat}`,
  );
  await importRecordsFile(pool, {
    tenant,
    source: 'helpdesk',
    file: await writeLines(dir, `${tenant}-records-${fileNo++}.csv`, [HELPDESK_HEADER, ...lines]),
  });
}

async function importClaims(tenant: string, rows: object[]): Promise<void> {
  await importClaimsFile(pool, {
    tenant,
    file: await writeLines(
      dir,
      `${tenant}-claims-${fileNo++}.jsonl`,
      rows.map((r) => JSON.stringify(r)),
    ),
  });
}

async function outcomeOf(tenant: string, t: number) {
  const {
    rows: [o],
  } = await pool.query<{ outcome_id: number; state: string; on_hold: boolean }>(
    'select outcome_id, state, on_hold from outcomes where tenant_id = $1 and subject_ref = $2',
    [tenant, subject(t)],
  );
  return o ?? null;
}

async function chargeOf(outcomeId: number) {
  const {
    rows: [c],
  } = await pool.query<{ entry_id: number; as_of: Date }>(
    `select entry_id, as_of from ledger_entries where outcome_id = $1 and kind = 'charge'`,
    [outcomeId],
  );
  return c ?? null;
}

const ledgerCount = async (tenant: string) =>
  (
    await pool.query<{ n: number; max: number }>(
      'select count(*)::int as n, coalesce(max(entry_id), 0)::int as max from ledger_entries where tenant_id = $1',
      [tenant],
    )
  ).rows[0];
const states = async (tenant: string) =>
  (
    await pool.query(
      'select outcome_id, state, reject_reason, on_hold from outcomes where tenant_id = $1 order by outcome_id',
      [tenant],
    )
  ).rows;
const disputeEventCount = async (disputeId: number) =>
  (await pool.query<{ n: number }>('select count(*)::int as n from dispute_events where dispute_id = $1', [disputeId]))
    .rows[0].n;

async function codeOfAsync(p: Promise<unknown>): Promise<{ code: string; message: string } | null> {
  try {
    await p;
    return null;
  } catch (err) {
    if (err instanceof ReconError) return { code: err.code, message: err.message };
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// The invariants

async function checkLedger(tenant: string, backdatedCharges: Set<number>, where: string): Promise<void> {
  const ctx = (x: unknown) => `${where}: ${JSON.stringify(x)}`;
  const { rows: outcomes } = await pool.query<{
    outcome_id: number;
    state: string;
    net: number;
    charges: number;
    credits: number;
  }>(
    `select o.outcome_id, o.state, coalesce(sum(l.amount_minor), 0)::int as net,
            count(l.entry_id) filter (where l.kind = 'charge')::int as charges,
            count(l.entry_id) filter (where l.kind = 'credit')::int as credits
       from outcomes o left join ledger_entries l on l.outcome_id = o.outcome_id
      where o.tenant_id = $1 group by o.outcome_id order by o.outcome_id`,
    [tenant],
  );
  for (const o of outcomes) {
    // Net is 0 or exactly one unit price, with at most one charge and at most one credit.
    expect([0, UNIT], ctx(o)).toContain(o.net);
    expect(o.charges, ctx(o)).toBeLessThanOrEqual(1);
    expect(o.credits, ctx(o)).toBeLessThanOrEqual(o.charges);
    expect(o.net, ctx(o)).toBe(o.charges === 1 && o.credits === 0 ? UNIT : 0);
    // The state agrees with the ledger.
    if (o.state === 'billed') expect([o.charges, o.credits], ctx(o)).toEqual([1, 0]);
    if (o.state === 'credited') expect([o.charges, o.credits], ctx(o)).toEqual([1, 1]);
    if (o.charges > 0) expect(['billed', 'credited'], ctx(o)).toContain(o.state);
  }
  // Every credit reverses a charge of the same outcome, for exactly its amount.
  const { rows: credits } = await pool.query(
    `select c.entry_id, c.outcome_id, c.amount_minor, c.reverses_entry_id, ch.kind as charge_kind, ch.outcome_id as charge_outcome, ch.amount_minor as charge_amount
       from ledger_entries c left join ledger_entries ch on ch.entry_id = c.reverses_entry_id
      where c.tenant_id = $1 and c.kind = 'credit'`,
    [tenant],
  );
  for (const c of credits) {
    expect(c.charge_kind, ctx(c)).toBe('charge');
    expect(c.charge_outcome, ctx(c)).toBe(c.outcome_id);
    expect(c.amount_minor, ctx(c)).toBe(-c.charge_amount);
  }
  // Every line is in the period of its own time (credits land in the period open when decided).
  const { rows: lines } = await pool.query<{
    entry_id: number;
    kind: string;
    amount_minor: number;
    period: string;
    as_of: Date;
  }>(
    `select entry_id, kind, amount_minor, period, as_of from ledger_entries where tenant_id = $1 and kind in ('charge', 'credit')`,
    [tenant],
  );
  for (const l of lines) {
    expect(l.amount_minor, ctx(l)).toBe(l.kind === 'charge' ? UNIT : -UNIT);
    expect(l.period, ctx(l)).toBe(billingPeriodOf(l.as_of, TZ));
  }
  // Nothing is charged as of a time at which a dispute on it was open. Left out: charges posted by
  // a rerun of an asOf older than a later dispute action. The hold is a flag, not history, so a
  // rerun of a night the outcome was held through, after the dispute was rejected, bills it as of
  // that night (reported as a doubt; runNight checks the hold as it stood when the run ran).
  const { rows: held } = await pool.query(
    `select l.entry_id, l.outcome_id, l.as_of, d.dispute_id, d.opened_at, d.resolved_at
       from ledger_entries l join disputes d on d.outcome_id = l.outcome_id
      where l.tenant_id = $1 and l.kind = 'charge'
        and d.opened_at <= l.as_of and (d.resolved_at is null or d.resolved_at > l.as_of)`,
    [tenant],
  );
  expect(
    held.filter((h) => !backdatedCharges.has(h.entry_id)),
    `${where}: charged while a dispute was open`,
  ).toEqual([]);
}

// ---------------------------------------------------------------------------------------------
// One scenario

async function runScenario(s: Scenario): Promise<void> {
  const tenant = uniqueTenant('prop');
  const base = await loadExampleContract(tenant);
  const terms = base.outcomeTypes.resolved_ticket;
  await applyExample(pool, tenant, {
    outcomeTypes: {
      resolved_ticket: {
        ...terms,
        clawbackWindow: s.clawback,
        disputes: { ...terms.disputes, window: s.disputeWindow },
      },
    },
  });
  // Everything is relative to now, and no run is as of the future (runs refuse that): the
  // scenario's last night is just before now.
  const span = s.ops.reduce(
    (h, op) => h + (op.kind === 'night' ? op.advanceH * HOUR : op.kind === 'rerun' ? 0 : 5 * MINUTE),
    FINAL_NIGHT_AFTER,
  );
  const t0 = Math.floor(Date.now() / MINUTE) * MINUTE - span - HOUR;
  let clock = t0;
  let lastAsOf: number | null = null;
  let lastDisputeActionAt = -Infinity;
  const backdated = new Set<number>();
  const retracted = new Set<string>();
  const n = s.tickets.length;
  let step = 0;
  let req = 0;

  await importClaims(
    tenant,
    s.tickets.flatMap((tk, t) =>
      tk.claims.map((h, c) => ({
        claim_id: claimId(t, c),
        outcome_type: 'resolved_ticket',
        subject_ref: subject(t),
        occurred_at: iso(t0 + h * HOUR),
      })),
    ),
  );
  await importRecords(
    tenant,
    s.tickets.flatMap((tk, t) => tk.versions.map((v) => ({ t, status: v.status, at: t0 + v.h * HOUR, csat: v.csat }))),
  );

  /** A run as of `asOf`: the outcomes under an open dispute must not be charged by it. */
  const runNight = async (asOf: number, post: boolean, label: string) => {
    const { rows: heldRows } = await pool.query<{ outcome_id: number }>(
      `select outcome_id from disputes where tenant_id = $1 and status = 'open'`,
      [tenant],
    );
    const before = await ledgerCount(tenant);
    await night(tenant, new Date(asOf), post);
    const { rows: newCharges } = await pool.query<{ entry_id: number; outcome_id: number }>(
      `select entry_id, outcome_id from ledger_entries where tenant_id = $1 and kind = 'charge' and entry_id > $2`,
      [tenant, before.max],
    );
    const heldIds = new Set(heldRows.map((h) => h.outcome_id));
    expect(
      newCharges.filter((c) => heldIds.has(c.outcome_id)),
      `${label}: charged an outcome on hold`,
    ).toEqual([]);
    if (asOf < lastDisputeActionAt) for (const c of newCharges) backdated.add(c.entry_id);
    // The same asOf again, straight away: not one ledger line, not one state change.
    const afterLedger = await ledgerCount(tenant);
    const afterStates = await states(tenant);
    await night(tenant, new Date(asOf), post);
    expect(await ledgerCount(tenant), `${label}: rerun of the same asOf added ledger entries`).toEqual(afterLedger);
    expect(await states(tenant), `${label}: rerun of the same asOf changed outcomes`).toEqual(afterStates);
  };

  for (const op of s.ops) {
    const label = `step ${step++} ${JSON.stringify(op)}`;
    switch (op.kind) {
      case 'night': {
        clock += op.advanceH * HOUR;
        lastAsOf = clock;
        await runNight(clock, op.post, label);
        break;
      }
      case 'rerun': {
        if (lastAsOf === null) break;
        await runNight(lastAsOf, true, label);
        break;
      }
      case 'late': {
        // A customer export arriving late: a version that took effect some hours ago.
        clock += 5 * MINUTE;
        const t = op.t % n;
        await importRecords(tenant, [{ t, status: op.status, at: clock - op.lagH * HOUR, csat: 5 }]);
        break;
      }
      case 'retract': {
        clock += 5 * MINUTE;
        const t = op.t % n;
        const tk = s.tickets[t];
        const which = op.all ? tk.claims.map((_h, c) => c) : [op.c % tk.claims.length];
        const due = which.filter((c) => !retracted.has(claimId(t, c)) && t0 + tk.claims[c] * HOUR <= clock);
        if (due.length === 0) break;
        for (const c of due) retracted.add(claimId(t, c));
        await importClaims(
          tenant,
          due.map((c) => ({ claim_id: claimId(t, c), retracted: true, retracted_at: iso(clock) })),
        );
        break;
      }
      case 'open': {
        clock += 5 * MINUTE;
        lastDisputeActionAt = clock;
        // Half the time one of the billed outcomes, if there is one; else the ticket's outcome.
        const { rows: billed } = await pool.query<{ subject_ref: string }>(
          `select subject_ref from outcomes where tenant_id = $1 and state = 'billed' order by outcome_id`,
          [tenant],
        );
        const t = op.billed && billed.length > 0 ? Number(billed[op.t % billed.length].subject_ref.slice(1)) : op.t % n;
        const o = await outcomeOf(tenant, t);
        if (!o) break;
        const at = new Date(clock);
        const {
          rows: [already],
        } = await pool.query<{ dispute_id: number }>(
          `select dispute_id from disputes where outcome_id = $1 and status = 'open'`,
          [o.outcome_id],
        );
        const charge = await chargeOf(o.outcome_id);
        const requestId = `open-${req++}`;
        const attempt = () =>
          openDispute(pool, {
            tenant,
            outcomeId: o.outcome_id,
            workflowId: `wf-${o.outcome_id}`,
            actor: 'sam',
            reason: 'customer disagrees',
            channel: 'support',
            requestId,
            at,
          });
        // Expected independently of the code under test.
        const windowEnd = charge ? addIsoDuration(charge.as_of, s.disputeWindow, TZ) : null;
        if (already) {
          expect(await attempt(), label).toMatchObject({ disputeId: already.dispute_id, attached: true });
        } else if (o.state === 'rejected' || o.state === 'credited') {
          expect(await codeOfAsync(attempt()), label).toMatchObject({ code: 'outcome_settled' });
        } else if (o.state === 'billed' && windowEnd && at.getTime() > windowEnd.getTime()) {
          const refused = await codeOfAsync(attempt());
          expect(refused, label).toMatchObject({ code: 'dispute_window_closed' });
          expect(refused?.message, label).toContain(windowEnd.toISOString());
          expect((await outcomeOf(tenant, t))?.on_hold, label).toBe(o.on_hold);
        } else {
          const opened = await attempt();
          expect(opened, label).toMatchObject({ attached: false, outcomeId: o.outcome_id, outcomeState: o.state });
          expect((await outcomeOf(tenant, t))?.on_hold, label).toBe(true);
          if (op.retry) {
            // A retried activity (same request id) answers the same and records nothing new.
            const events = await disputeEventCount(opened.disputeId);
            expect(await attempt(), label).toEqual(opened);
            expect(await disputeEventCount(opened.disputeId), label).toBe(events);
          }
        }
        break;
      }
      case 'resolve': {
        clock += 5 * MINUTE;
        lastDisputeActionAt = clock;
        const at = new Date(clock);
        // Mostly one of the disputes still open; without one, the ticket's last resolved dispute.
        const { rows: openOnes } = await pool.query<{ dispute_id: number; outcome_id: number }>(
          `select dispute_id, outcome_id from disputes where tenant_id = $1 and status = 'open' order by dispute_id`,
          [tenant],
        );
        const target =
          openOnes.length > 0
            ? openOnes[op.t % openOnes.length].outcome_id
            : (await outcomeOf(tenant, op.t % n))?.outcome_id;
        if (target === undefined) break;
        const {
          rows: [o],
        } = await pool.query<{ outcome_id: number; state: string; subject_ref: string }>(
          'select outcome_id, state, subject_ref from outcomes where outcome_id = $1',
          [target],
        );
        const {
          rows: [d],
        } = await pool.query<{ dispute_id: number; status: string }>(
          `select dispute_id, status from disputes where outcome_id = $1 order by (status = 'open') desc, dispute_id desc limit 1`,
          [o.outcome_id],
        );
        if (!d) break;
        const resolve = (decision: Decision, requestId: string, actor: string) =>
          resolveDispute(pool, {
            disputeId: d.dispute_id,
            decision,
            actor,
            note: `${decision} after review`,
            requestId,
            at,
            auto: false,
          });
        if (d.status !== 'open') {
          // A second resolution with another request id is refused, and changes nothing.
          const before = await ledgerCount(tenant);
          const refused = await codeOfAsync(resolve(op.decision, `resolve-${req++}`, 'bob'));
          expect(refused, label).toMatchObject({ code: 'already_resolved' });
          expect(refused?.message, label).toMatch(/already resolved: (upheld|rejected) by /);
          expect(await ledgerCount(tenant), label).toEqual(before);
          break;
        }
        // Upholding once the outcome settled while the dispute was open (credited, rejected) changes nothing.
        const decision: Decision = op.decision;
        const ledgerBefore = await ledgerCount(tenant);
        const mine = `resolve-${req++}`;
        const other = `resolve-${req++}`;
        let result: ResolvedDispute;
        if (op.race) {
          // Two people resolving at once: exactly one wins, the other is refused.
          const settled = await Promise.allSettled([
            resolve(decision, mine, 'ann'),
            resolve(decision === 'uphold' ? 'reject' : 'uphold', other, 'bob'),
          ]);
          const won = settled.filter((x): x is PromiseFulfilledResult<ResolvedDispute> => x.status === 'fulfilled');
          expect(won, label).toHaveLength(1);
          const lost = settled.find((x) => x.status === 'rejected') as PromiseRejectedResult;
          expect(lost.reason, label).toBeInstanceOf(ReconError);
          expect((lost.reason as ReconError).code, label).toBe('already_resolved');
          result = won[0].value;
        } else {
          result = await resolve(decision, mine, 'ann');
        }
        const winner = result.resolvedBy === 'ann' ? mine : other;
        // The effect matches the decision and the state the outcome was in.
        const settled = o.state === 'credited' || o.state === 'rejected';
        const expected = settled
          ? 'none'
          : result.decision === 'reject'
            ? 'lift_hold'
            : o.state === 'billed'
              ? 'credit_charge'
              : 'reject_outcome';
        expect(result.effect, label).toBe(expected);
        const after = await outcomeOf(tenant, Number(o.subject_ref.slice(1)));
        expect(after?.on_hold, label).toBe(false);
        if (expected === 'credit_charge') {
          expect(result.creditEntryId, label).not.toBeNull();
          expect(after?.state, label).toBe('credited');
          expect((await ledgerCount(tenant)).n, label).toBe(ledgerBefore.n + 1);
        } else {
          expect(result.creditEntryId, label).toBeNull();
          expect((await ledgerCount(tenant)).n, label).toBe(ledgerBefore.n);
          if (expected === 'reject_outcome') expect(after?.state, label).toBe('rejected');
          else expect(after?.state, label).toBe(o.state);
        }
        // Retried calls of the same resolution answer the same and add nothing.
        const ledgerAfter = await ledgerCount(tenant);
        const events = await disputeEventCount(d.dispute_id);
        const retries = await Promise.all(
          Array.from({ length: op.retries }, () => resolve(result.decision, winner, result.resolvedBy)),
        );
        for (const again of retries) expect(again, label).toEqual(result);
        expect(await ledgerCount(tenant), label).toEqual(ledgerAfter);
        expect(await disputeEventCount(d.dispute_id), label).toBe(events);
        break;
      }
    }
    await checkLedger(tenant, backdated, label);
  }
  // A last night well after everything settles, then the same checks.
  clock += FINAL_NIGHT_AFTER;
  await runNight(clock, true, 'final night');
  await checkLedger(tenant, backdated, 'final night');
}

/**
 * Always tried first: a dispute opened in grace holds the outcome through a night past its grace,
 * is rejected, and that night is run again (it bills now, as of that night: see checkLedger).
 */
const rerunAfterRejection: Scenario = {
  clawback: 'PT0S',
  disputeWindow: 'P30D',
  tickets: [{ claims: [-100], versions: [{ h: -60, status: 'solved', csat: 5 }] }],
  ops: [
    { kind: 'night', advanceH: 4, post: true },
    { kind: 'open', t: 0, billed: false, retry: true },
    { kind: 'night', advanceH: 20, post: true },
    { kind: 'resolve', t: 0, decision: 'reject', retries: 2, race: false },
    { kind: 'rerun' },
    { kind: 'open', t: 0, billed: true, retry: false },
    { kind: 'resolve', t: 0, decision: 'uphold', retries: 1, race: true },
  ],
};

describe('ledger property on real PostgreSQL', () => {
  it('for every outcome the ledger nets to 0 or one unit price, whatever happens around it', async () => {
    await fc.assert(fc.asyncProperty(scenarioArb, runScenario), { numRuns: RUNS, examples: [[rerunAfterRejection]] });
  });
});
