import { describe, expect, it } from 'vitest';
import { formatSummary } from '../../src/cli/format';
import { backdatedNotes, summariseLedger, type RunSummary } from '../../src/reconcile/runs';

const g = (
  period: string,
  currency: string,
  kind: string,
  basis: string,
  n: number,
  amount: number,
  fresh = n,
  corrects: string | null = null,
) => ({ period, currency, kind, basis, corrects, n, amount, new_n: fresh, new_amount: fresh === n ? amount : 0 });

describe('summariseLedger', () => {
  it('keeps one entry per period landed in and currency, never adding currencies together', () => {
    const l = summariseLedger(
      [
        g('2026-11', 'EUR', 'base_fee', 'base_fee', 1, 4900),
        g('2026-11', 'EUR', 'charge', 'included', 2, 0),
        g('2026-11', 'EUR', 'charge', 'tier', 2, 6444),
        g('2026-11', 'EUR', 'charge', 'capped', 1, 0),
        g('2026-11', 'EUR', 'credit', 'credit', 1, -3222),
        g('2026-11', 'JPY', 'charge', 'tier', 1, 1500),
        g('2026-12', 'EUR', 'true_up', 'true_up', 1, 700, 1, '2026-11'),
      ],
      'EUR',
    );
    expect(l.byPeriod.map((e) => [e.period, e.currency, e.lines, e.amountMinor, e.amount, e.corrects])).toEqual([
      ['2026-11', 'EUR', 7, 8122, '81.22', []],
      ['2026-11', 'JPY', 1, 1500, '1500', []],
      ['2026-12', 'EUR', 1, 700, '7.00', ['2026-11']],
    ]);
    expect(l.byPeriod[0]).toMatchObject({
      charges: { count: 5, amountMinor: 6444, included: 2, capped: 1 },
      baseFees: { count: 1, amountMinor: 4900 },
      credits: { count: 1, amountMinor: -3222 },
      trueUps: { count: 0, amountMinor: 0 },
    });
    // The older top-level fields cover the contract's currency only: the JPY line is not in them.
    expect(l).toMatchObject({
      charges: 5,
      amountMinor: 6444,
      amount: '64.44',
      newCharges: 5,
      newAmountMinor: 6444,
      credits: 1,
      creditsMinor: -3222,
      currency: 'EUR',
      lines: 9,
      newLines: 9,
    });
  });

  it('counts what this execution added apart from what an earlier execution wrote', () => {
    const l = summariseLedger([g('2026-11', 'USD', 'charge', 'tier', 3, 297, 0)], 'USD');
    expect(l).toMatchObject({ charges: 3, newCharges: 0, newAmountMinor: 0, lines: 3, newLines: 0 });
  });
});

describe('formatSummary', () => {
  const base: RunSummary = {
    runId: 7,
    tenant: 'acme',
    asOf: '2026-11-20T05:00:00.000Z',
    period: '2026-11',
    claims: { received: 0, accepted: 0, redelivered: 0, quarantined: 0, duplicates: 0, retracted: 0 },
    records: { received: 0, accepted: 0, redelivered: 0, quarantined: 0 },
    outcomes: {
      created: 0,
      transitions: {},
      rejected: {},
      ambiguous: 0,
      byState: { in_grace: 2 },
      openCountedAt: '2026-11-29T08:00:00.000Z',
    },
    alerts: [],
    ledger: summariseLedger(
      [g('2026-11', 'EUR', 'base_fee', 'base_fee', 1, 4900), g('2026-11', 'JPY', 'charge', 'tier', 1, 1500)],
      'EUR',
    ),
  };

  it('shows each currency on its own line as decimals with the currency, never minor units', () => {
    const text = formatSummary(base);
    expect(text).toContain('  ledger   2026-11: 49.00 EUR in 1 line: 0 charges 0.00 EUR, 1 base fee 49.00 EUR');
    expect(text).toContain('           2026-11: 1500 JPY in 1 line: 1 charge 1500 JPY');
    expect(text).toContain('this execution added 1 line 49.00 EUR in 2026-11, 1 line 1500 JPY in 2026-11');
    expect(text).toContain(
      'open now (counted at 2026-11-29T08:00:00.000Z, when the run reported, not as of its asOf; on hold included): in_grace 2',
    );
    expect(text).not.toMatch(/minor units/);
  });

  it("shows the credits support's disputes posted since the previous run, apart from the run's own lines", () => {
    const ledger = {
      ...summariseLedger([], 'EUR'),
      outsideRuns: {
        since: '2026-11-19T05:00:00.000Z',
        byPeriod: [{ period: '2026-11', currency: 'EUR', lines: 1, amountMinor: -1250, amount: '-12.50' }],
      },
    };
    const text = formatSummary({ ...base, ledger });
    expect(text).toContain(
      "  between  2026-11: -12.50 EUR in 1 line that support's disputes posted since the previous run",
    );
    expect(text).not.toContain('no lines');
    expect(formatSummary({ ...base, ledger: summariseLedger([], 'EUR') })).toContain('  ledger   no lines');
  });

  it('says what a run for an earlier asOf can and cannot change', () => {
    const notes = backdatedNotes({
      asOf: new Date(base.asOf),
      latestCompletedAsOf: new Date('2026-11-25T05:00:00Z'),
      closedPeriods: ['2026-10'],
    });
    const text = formatSummary({ ...base, backdated: { latestCompletedAsOf: '2026-11-25T05:00:00.000Z', ...notes } });
    expect(text).toContain("this asOf is before the tenant's last completed run (as of 2026-11-25T05:00:00.000Z)");
    expect(text).toContain('it could still change: outcomes still open');
    expect(text).toContain(
      'it cannot change: lines already posted by later runs (up to 2026-11-25T05:00:00.000Z) stay as they are',
    );
    expect(text).toContain('it cannot change: closed periods (2026-10) receive nothing');
  });
});
