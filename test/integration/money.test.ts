import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { applyContract } from '../../src/db/contracts';
import { ContractSchema } from '../../src/domain/contract';
import { ledgerTotal, ledgerTotals, writeExport } from '../../src/export/export';
import { formatSummary } from '../../src/cli/format';
import { importClaimsFile } from '../../src/ingest/files';
import { creditCharge } from '../../src/reconcile/credits';
import { closePeriod, listPeriods, reopenPeriod } from '../../src/reconcile/period-close';
import type { RunSummary } from '../../src/reconcile/runs';
import { buildStatement, formatStatement } from '../../src/reconcile/statement';
import { runReconciliation } from '../../src/temporal/run-client';
import {
  applyExample,
  loadExampleContract,
  startHarness,
  uniqueTenant,
  writeLines,
  type Harness,
  seedSolvedTickets,
} from './harness';
import { recon } from '../support/recon-cli';

function sink(): Writable {
  return new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });
}

/** The failure types and messages along an error's cause chain (workflow → activity → application). */
function failureChain(err: unknown): string {
  const out: string[] = [];
  // A ReconError from the run client names its code; Temporal failures name their type.
  for (
    let e = err as { type?: string; code?: string; message?: string; cause?: unknown } | undefined;
    e;
    e = e.cause as typeof e
  )
    out.push(`${e.type ?? e.code ?? ''}: ${e.message ?? ''}`);
  return out.join(' <- ');
}

/** Adds up what run summaries say they wrote into `period`, per currency. */
function summarised(
  summaries: RunSummary[],
  period: string,
): Array<{ currency: string; lines: number; amountMinor: number }> {
  const by = new Map<string, { currency: string; lines: number; amountMinor: number }>();
  // A night's report shows its own lines and the credits support posted since the previous night.
  const lines = summaries.flatMap((s) => [...s.ledger.byPeriod, ...(s.ledger.outsideRuns?.byPeriod ?? [])]);
  for (const g of lines.filter((g) => g.period === period)) {
    const e = by.get(g.currency) ?? { currency: g.currency, lines: 0, amountMinor: 0 };
    e.lines += g.lines;
    e.amountMinor += g.amountMinor;
    by.set(g.currency, e);
  }
  return [...by.values()].sort((a, b) => a.currency.localeCompare(b.currency));
}

describe('money per currency, periods and the run summary', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ runLeaseWaitMs: 3_000 });
  });
  afterAll(async () => h?.stop());

  it('a period with lines in two currencies has one total per currency in the export, its check, the statement and the period list', async () => {
    const tenant = uniqueTenant('cur');
    await applyExample(h.pool, tenant);
    // Existing data from before a tenant's currency was fixed: lines in EUR, JPY and USD.
    for (const [key, kind, currency, amount] of [
      ['a', 'base_fee', 'EUR', 1250],
      ['b', 'base_fee', 'JPY', 1500],
      ['c', 'true_up', 'USD', 99],
      ['d', 'base_fee', 'EUR', 100],
    ] as const) {
      await h.pool.query(
        `insert into ledger_entries (tenant_id, idempotency_key, kind, outcome_type, period, currency, unit_price, amount_minor, contract_version, as_of, evidence, pricing_basis)
         values ($1, $2, $3, $4, '2026-05', $5, '1', $6, 1, '2026-05-10T12:00:00Z', '{}', $3)`,
        [tenant, `money-${tenant}-${key}`, kind, kind === 'base_fee' ? 'resolved_ticket' : null, currency, amount],
      );
    }
    const exported = await writeExport(h.pool, { tenant, period: '2026-05', format: 'csv', out: sink() });
    expect(exported.byCurrency).toEqual([
      { currency: 'EUR', lines: 2, charges: 0, credits: 0, amountMinor: 1350, amount: '13.50' },
      { currency: 'JPY', lines: 1, charges: 0, credits: 0, amountMinor: 1500, amount: '1500' },
      { currency: 'USD', lines: 1, charges: 0, credits: 0, amountMinor: 99, amount: '0.99' },
    ]);
    expect(exported).toMatchObject({ lines: 4, amountMinor: null, amount: null, currency: null });
    expect(await ledgerTotals(h.pool, tenant, '2026-05')).toEqual({
      lines: 4,
      byCurrency: [
        { currency: 'EUR', lines: 2, amountMinor: 1350 },
        { currency: 'JPY', lines: 1, amountMinor: 1500 },
        { currency: 'USD', lines: 1, amountMinor: 99 },
      ],
    });
    await expect(ledgerTotal(h.pool, tenant, '2026-05')).rejects.toMatchObject({ code: 'mixed_currencies' });

    const s = await buildStatement(h.pool, { tenant, period: '2026-05' });
    expect(s.totals.map((t) => [t.currency, t.amountMinor, t.amount])).toEqual([
      ['EUR', 1350, '13.50'],
      ['JPY', 1500, '1500'],
      ['USD', 99, '0.99'],
    ]);
    expect(s).toMatchObject({ totalMinor: null, total: null });
    expect(s.baseFees.map((b) => [b.currency, b.amountMinor])).toEqual([
      ['EUR', 1350],
      ['JPY', 1500],
    ]);
    expect(formatStatement(s)).toContain(
      'total 13.50 EUR and 1500 JPY and 0.99 USD (one total per currency; never added together)',
    );

    const [p] = await listPeriods(h.pool, { tenant });
    expect(p).toMatchObject({ period: '2026-05', state: 'open', ended: true });
    expect(p.totals.map((t) => `${t.amount} ${t.currency}`)).toEqual(['13.50 EUR', '1500 JPY', '0.99 USD']);

    // The CLI's export checks itself against the ledger currency by currency and says so.
    const env = { DATABASE_URL: inject('databaseUrl'), TEMPORAL_ADDRESS: inject('temporalAddress') };
    const cli = await recon(
      ['--json', 'export', '--tenant', tenant, '--period', '2026-05', '--out', path.join(h.dir, `${tenant}.csv`)],
      env,
    );
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    expect(
      (JSON.parse(cli.stdout) as { by_currency: Array<{ amount: string; currency: string }> }).by_currency.map(
        (c) => `${c.amount} ${c.currency}`,
      ),
    ).toEqual(['13.50 EUR', '1500 JPY', '0.99 USD']);
    const human = await recon(
      ['export', '--tenant', tenant, '--period', '2026-05', '--out', path.join(h.dir, `${tenant}-2.csv`)],
      env,
    );
    expect(human.stdout).toContain(
      'total 13.50 EUR and 1500 JPY and 0.99 USD, equal to the ledger currency by currency',
    );
    const list = await recon(['period', 'list', '--tenant', tenant], env);
    expect(list.stdout).toContain('2026-05  open (ended)');
    expect(list.stdout).toContain('13.50 EUR over 2 lines, 1500 JPY over 1 line, 0.99 USD over 1 line');
  });

  describe('a EUR tenant with a base fee, included outcomes and credits', () => {
    const tenant = uniqueTenant('sum');
    const night = (asOf: string) =>
      runReconciliation(h.client, { tenant, asOf: new Date(asOf), taskQueue: h.taskQueue });
    const summaries: RunSummary[] = [];

    beforeAll(async () => {
      const base = await loadExampleContract(tenant);
      const { unitPrice: _flat, ...terms } = base.outcomeTypes.resolved_ticket;
      await applyContract(
        h.pool,
        ContractSchema.parse({
          ...base,
          timezone: 'Europe/Berlin',
          currency: 'EUR',
          outcomeTypes: {
            resolved_ticket: { ...terms, pricing: { baseFee: '49.00', included: 1, tiers: [{ unitPrice: '32.22' }] } },
          },
        }),
      );
      await seedSolvedTickets(h, tenant, 'a', [
        ['S-1', '2026-06-01T10:00:00Z'],
        ['S-2', '2026-06-01T11:00:00Z'],
        ['S-3', '2026-06-01T12:00:00Z'],
      ]);
    });

    it('the summary shows every line the run wrote, and the nights add up to the export and the statement', async () => {
      const first = await night('2026-06-05T12:00:00Z');
      summaries.push(first);
      // 49.00 base fee + S-1 included + S-2, S-3 at 32.22 = 113.44 EUR: the night the issue saw as "0 new charges, 0.00".
      expect(first.ledger.byPeriod).toEqual([
        {
          period: '2026-06',
          currency: 'EUR',
          corrects: [],
          lines: 4,
          amountMinor: 11344,
          amount: '113.44',
          charges: { count: 3, amountMinor: 6444, included: 1, capped: 0 },
          baseFees: { count: 1, amountMinor: 4900 },
          trueUps: { count: 0, amountMinor: 0 },
          credits: { count: 0, amountMinor: 0 },
          newLines: 4,
          newAmountMinor: 11344,
        },
      ]);
      expect(first.ledger).toMatchObject({
        charges: 3,
        newCharges: 3,
        amountMinor: 6444,
        currency: 'EUR',
        lines: 4,
        newLines: 4,
      });
      const text = formatSummary(first);
      expect(text).toContain('2026-06: 113.44 EUR in 4 lines: 3 charges (1 included) 64.44 EUR, 1 base fee 49.00 EUR');
      expect(text).toContain('this execution added 4 lines 113.44 EUR in 2026-06');
      expect(text).toMatch(/open now \(counted at \S+, when the run reported, not as of its asOf; on hold included\)/);
      expect(text).not.toContain('minor units');

      // The AI side retracts S-2's claim after billing: the next night credits it.
      await importClaimsFile(h.pool, {
        tenant,
        file: await writeLines(h.dir, `${tenant}-retract.jsonl`, [
          JSON.stringify({ claim_id: 'S-2-c', retracted: true, retracted_at: '2026-06-06T09:00:00Z' }),
        ]),
      });
      const second = await night('2026-06-07T12:00:00Z');
      summaries.push(second);
      expect(second.ledger.byPeriod).toMatchObject([
        { period: '2026-06', currency: 'EUR', lines: 1, amountMinor: -3222, credits: { count: 1, amountMinor: -3222 } },
      ]);
      expect(formatSummary(second)).toContain('1 credit -32.22 EUR');

      // A rerun of a night adds nothing and says so.
      const again = await night('2026-06-07T12:00:00Z');
      expect(again.ledger).toMatchObject({ lines: 1, newLines: 0, newCharges: 0 });
      expect(formatSummary(again)).toContain('nothing new: an earlier execution of this asOf wrote these lines');

      // Support upholds a dispute on S-3 between nights: no run wrote that credit, the next night's report shows it.
      const {
        rows: [charge],
      } = await h.pool.query<{ entry_id: number }>(
        `select entry_id from ledger_entries where tenant_id = $1 and kind = 'charge' and subject_ref = 'S-3'`,
        [tenant],
      );
      const db = await h.pool.connect();
      try {
        expect(
          await creditCharge(db, {
            chargeEntryId: charge.entry_id,
            reason: 'dispute upheld by lee',
            at: new Date('2026-06-08T09:00:00Z'),
            timeZone: 'Europe/Berlin',
            runId: null,
          }),
        ).not.toBeNull();
      } finally {
        db.release();
      }
      const third = await night('2026-06-09T12:00:00Z');
      summaries.push(third);
      expect(third.ledger.byPeriod).toEqual([]);
      expect(third.ledger.outsideRuns?.byPeriod).toEqual([
        { period: '2026-06', currency: 'EUR', lines: 1, amountMinor: -3222, amount: '-32.22' },
      ]);
      expect(formatSummary(third)).toContain(
        "2026-06: -32.22 EUR in 1 line that support's disputes posted since the previous run",
      );

      const exported = await writeExport(h.pool, { tenant, period: '2026-06', format: 'jsonl', out: sink() });
      const statement = await buildStatement(h.pool, { tenant, period: '2026-06' });
      const fromRuns = summarised(summaries, '2026-06');
      expect(fromRuns).toEqual([{ currency: 'EUR', lines: 6, amountMinor: 4900 }]);
      expect(
        exported.byCurrency.map((c) => ({ currency: c.currency, lines: c.lines, amountMinor: c.amountMinor })),
      ).toEqual(fromRuns);
      expect(
        statement.totals.map((c) => ({ currency: c.currency, lines: c.lines, amountMinor: c.amountMinor })),
      ).toEqual(fromRuns);
    });

    it('periods: refuses closing before the end, lands late lines in the next period, reopens with an audit', async () => {
      await expect(closePeriod(h.pool, { tenant, period: '2030-01', actor: 'fin' })).rejects.toMatchObject({
        code: 'period_not_ended',
        message:
          'period 2030-01 has not ended: it ends 2030-02-01 00:00 Europe/Berlin (2030-01-31T23:00:00.000Z); close it after that',
      });
      const now = new Date('2026-06-20T12:00:00Z');
      await expect(closePeriod(h.pool, { tenant, period: '2026-06', actor: 'fin', now })).rejects.toMatchObject({
        code: 'period_not_ended',
      });
      const closed = await closePeriod(h.pool, { tenant, period: '2026-06', actor: 'fin', note: 'June invoiced' });
      expect(closed).toMatchObject({ closedBy: 'fin', alreadyClosed: false });

      // A late outcome of June, billed after June closed: it lands in July and says it corrects June
      // (July's usage starts afresh, so it is July's included outcome).
      await seedSolvedTickets(h, tenant, 'b', [['S-4', '2026-06-10T10:00:00Z']]);
      const late = await night('2026-06-14T12:00:00Z');
      expect(late.period).toBe('2026-06');
      expect(late.ledger.byPeriod).toMatchObject([
        { period: '2026-07', corrects: ['2026-06'], lines: 1, amountMinor: 0, charges: { count: 1, included: 1 } },
      ]);
      expect(formatSummary(late)).toContain(
        '2026-07 (corrections of closed 2026-06): 0.00 EUR in 1 line: 1 charge (1 included) 0.00 EUR',
      );
      expect(late.backdated).toBeUndefined();

      // A run for an earlier asOf than the last completed one says what it can and cannot change.
      const earlier = await night('2026-06-12T12:00:00Z');
      expect(earlier.backdated).toMatchObject({ latestCompletedAsOf: '2026-06-14T12:00:00.000Z' });
      expect(earlier.backdated!.cannotChange.join(' ')).toContain('closed periods (2026-06) receive nothing');
      expect(formatSummary(earlier)).toContain(
        "this asOf is before the tenant's last completed run (as of 2026-06-14T12:00:00.000Z)",
      );

      await expect(
        reopenPeriod(h.pool, { tenant, period: '2026-05', actor: 'fin', reason: 'x' }),
      ).rejects.toMatchObject({ code: 'period_not_closed' });
      const reopened = await reopenPeriod(h.pool, {
        tenant,
        period: '2026-06',
        actor: 'lee',
        reason: 'credit note for S-3 missing',
      });
      expect(reopened).toMatchObject({
        reopenedBy: 'lee',
        wasClosedBy: 'fin',
        correctionsElsewhere: [{ period: '2026-07', currency: 'EUR', lines: 1, amountMinor: 0 }],
      });
      const periods = await listPeriods(h.pool, { tenant });
      expect(periods.map((p) => [p.period, p.state, p.reopenedBy, p.totals.map((t) => t.amount).join()])).toEqual([
        ['2026-06', 'open', 'lee', '49.00'],
        ['2026-07', 'open', null, '0.00'],
      ]);
      const { rows: audit } = await h.pool.query(
        'select action, actor, note from period_events where tenant_id = $1 order by event_id',
        [tenant],
      );
      expect(audit).toEqual([
        { action: 'close', actor: 'fin', note: 'June invoiced' },
        { action: 'reopen', actor: 'lee', note: 'credit note for S-3 missing' },
      ]);

      const env = { DATABASE_URL: inject('databaseUrl'), TEMPORAL_ADDRESS: inject('temporalAddress') };
      const noReason = await recon(
        ['period', 'reopen', '--tenant', tenant, '--period', '2026-06', '--actor', 'lee'],
        env,
      );
      expect(noReason.code).not.toBe(0);
      expect(noReason.stderr).toMatch(/--reason/);
      const closeCli = await recon(
        ['period', 'close', '--tenant', tenant, '--period', '2099-12', '--actor', 'lee'],
        env,
      );
      expect(closeCli.code).not.toBe(0);
      expect(closeCli.stderr).toContain('period_not_ended');
    });
  });

  it('one run at a time per tenant: another asOf is refused naming the running run, a stale lease is taken over', async () => {
    const tenant = uniqueTenant('lease');
    await applyExample(h.pool, tenant);
    // Another run of the tenant is in progress (its workflow heartbeats the lease).
    const {
      rows: [held],
    } = await h.pool.query<{ run_id: number }>(
      `insert into runs (tenant_id, as_of, workflow_id) values ($1, '2026-07-01T12:00:00Z', 'wf-other') returning run_id`,
      [tenant],
    );
    await h.pool.query(
      `insert into run_leases (tenant_id, run_id, workflow_id, as_of) values ($1, $2, 'wf-other', '2026-07-01T12:00:00Z')`,
      [tenant, held.run_id],
    );

    const started = Date.now();
    const refused = await runReconciliation(h.client, {
      tenant,
      asOf: new Date('2026-07-02T12:00:00Z'),
      taskQueue: h.taskQueue,
    }).then(() => 'completed', failureChain);
    expect(refused).toContain('run_in_progress');
    expect(refused).toContain(`busy with run ${held.run_id} (asOf 2026-07-01T12:00:00.000Z, workflow wf-other)`);
    // It waited (bounded) before giving up, and was not retried for minutes.
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
    expect(Date.now() - started).toBeLessThan(30_000);
    // The refused night is on record as failed, with the cause, and holds no lease.
    const { rows: refusedRuns } = await h.pool.query(
      `select status, failure_code from runs where tenant_id = $1 and as_of = '2026-07-02T12:00:00Z'`,
      [tenant],
    );
    expect(refusedRuns).toEqual([{ status: 'failed', failure_code: 'run_in_progress' }]);

    // Released while the second run waits: it goes ahead.
    const waiting = runReconciliation(h.client, {
      tenant,
      asOf: new Date('2026-07-03T12:00:00Z'),
      taskQueue: h.taskQueue,
    });
    await new Promise((r) => setTimeout(r, 1_000));
    await h.pool.query(`update runs set status = 'completed' where run_id = $1`, [held.run_id]);
    expect((await waiting).asOf).toBe('2026-07-03T12:00:00.000Z');

    // A crashed holder: its lease has been silent for more than ten minutes, so it is taken over.
    const {
      rows: [crashed],
    } = await h.pool.query<{ run_id: number }>(
      `insert into runs (tenant_id, as_of, workflow_id) values ($1, '2026-07-04T12:00:00Z', 'wf-crashed') returning run_id`,
      [tenant],
    );
    await h.pool.query(
      `update run_leases set run_id = $2, workflow_id = 'wf-crashed', released_at = null, heartbeat_at = now() - interval '11 minutes' where tenant_id = $1`,
      [tenant, crashed.run_id],
    );
    const takenOver = await runReconciliation(h.client, {
      tenant,
      asOf: new Date('2026-07-05T12:00:00Z'),
      taskQueue: h.taskQueue,
    });
    expect(takenOver.asOf).toBe('2026-07-05T12:00:00.000Z');
    const {
      rows: [lease],
    } = await h.pool.query<{ workflow_id: string; released_at: Date | null }>(
      'select workflow_id, released_at from run_leases where tenant_id = $1',
      [tenant],
    );
    expect(lease.workflow_id).not.toBe('wf-crashed');
    expect(lease.released_at).not.toBeNull();
  });
});
