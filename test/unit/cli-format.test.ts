import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main';
import { CommandContext } from '../../src/cli/context';
import { decimalReason, formatRunProgress, formatShown, plural, terminalProgress } from '../../src/cli/format';
import { snakeCaseKeys, verbatim } from '../../src/cli/io';
import { formatMoney } from '../../src/domain/money';
import { sqlFilters } from '../../src/reconcile/explain';

function leaves(cmd: Command, path: string[] = []): Array<{ path: string[]; cmd: Command }> {
  const here = cmd.name() === 'recon' ? [] : [...path, cmd.name()];
  return [...(here.length ? [{ path: here, cmd }] : []), ...cmd.commands.flatMap((c) => leaves(c, here))];
}

describe('human output', () => {
  it('says 1 charge and 2 charges, 0 charges', () => {
    expect(plural(1, 'charge')).toBe('1 charge');
    expect(plural(2, 'charge')).toBe('2 charges');
    expect(plural(0, 'charge')).toBe('0 charges');
    expect(plural(1, 'quarantined row')).toBe('1 quarantined row');
  });

  it('prints amounts as decimals in the currency, never minor units', () => {
    expect(formatMoney(1250, 'EUR')).toBe('12.50 EUR');
    expect(formatMoney(1500, 'JPY')).toBe('1500 JPY');
    expect(formatMoney(-99, 'USD')).toBe('-0.99 USD');
    expect(formatMoney(1234, 'KWD')).toBe('1.234 KWD');
    expect(decimalReason('charged 99 minor units in 2026-03 (unit)', 'EUR')).toBe('charged 0.99 EUR in 2026-03 (unit)');
    expect(decimalReason('dispute upheld; credited -1250 minor units in 2026-04', 'EUR')).toBe(
      'dispute upheld; credited -12.50 EUR in 2026-04',
    );
  });

  it('says how many rows a listing shows of how many match', () => {
    expect(formatShown(3, 3, 'outcome')).toBe('3 of 3 outcomes');
    expect(formatShown(1, 1, 'run')).toBe('1 of 1 run');
    expect(formatShown(100, 1532, 'outcome')).toBe('100 of 1532 outcomes (raise --limit to see more)');
    expect(formatShown(0, 0, 'quarantined row')).toBe('0 of 0 quarantined rows');
  });

  it('describes run progress in words', () => {
    expect(formatRunProgress({ phase: 'evaluate', chunksDone: 1, outcomesEvaluated: 2000, chargesPosted: 1 })).toBe(
      'run: evaluating outcomes · 1 chunk · 2000 outcomes evaluated · 1 charge posted',
    );
    expect(
      formatRunProgress({ phase: 'pull', chunksDone: 0, outcomesEvaluated: 0, chargesPosted: 0, claimPagesPulled: 3 }),
    ).toBe('run: pulling claims · 0 chunks · 3 pages of claims pulled · 0 outcomes evaluated · 0 charges posted');
  });

  it('shows progress only on a terminal, rewriting one line and clearing it at the end', () => {
    const written: string[] = [];
    expect(terminalProgress({ isTTY: false, write: (s) => written.push(s) })).toBeUndefined();
    const line = terminalProgress({ isTTY: true, write: (s) => written.push(s) }, 0)!;
    line.update('a: 1000 rows staged so far');
    line.update('a: 1000 rows staged so far');
    line.update('a: 2000 rows staged so far');
    line.done();
    expect(written).toEqual(['\ra: 1000 rows staged so far\x1b[K', '\ra: 2000 rows staged so far\x1b[K', '\r\x1b[K']);
  });
});

describe('--json naming', () => {
  it('turns our camelCase keys into snake_case, deeply, and leaves data keys alone', () => {
    const value = {
      runId: 7,
      asOf: new Date('2026-03-06T07:00:00Z'),
      outcomes: { byState: { in_grace: 2, awaiting_evidence: 1 }, rejected: { no_evidence: 1 } },
      totals: { EUR: { amountMinor: 1250 } },
      items: [{ subjectRef: 'T-1', data: { 'Ticket ID': 'T-1', solvedAt: 'x' }, attributes: { agentId: 'a' } }],
      contractBody: verbatim({ outcomeTypes: { resolved_ticket: { graceWindow: 'P3D' } } }),
      already_snake: null,
    };
    expect(snakeCaseKeys(value)).toEqual({
      run_id: 7,
      as_of: '2026-03-06T07:00:00.000Z',
      outcomes: { by_state: { in_grace: 2, awaiting_evidence: 1 }, rejected: { no_evidence: 1 } },
      totals: { EUR: { amount_minor: 1250 } },
      items: [{ subject_ref: 'T-1', data: { 'Ticket ID': 'T-1', solvedAt: 'x' }, attributes: { agentId: 'a' } }],
      contract_body: { outcomeTypes: { resolved_ticket: { graceWindow: 'P3D' } } },
      already_snake: null,
    });
  });
});

describe('listing filters', () => {
  it('put only the filters given into the WHERE, numbering their placeholders in order', () => {
    const state: string | undefined = undefined;
    expect(
      sqlFilters([
        [(p) => `tenant_id = ${p}`, 'acme'],
        state !== undefined && [(p) => `state = ${p}`, state],
        [(p) => `kind = ${p}`, 'claims'],
      ]),
    ).toEqual({
      where: 'tenant_id = $1 and kind = $2',
      params: ['acme', 'claims'],
    });
    expect(sqlFilters([false, undefined])).toEqual({ where: 'true', params: [] });
  });
});

describe('recon --help', () => {
  const program = buildProgram(new CommandContext());
  const all = leaves(program);

  it('has the verbs a person expects', () => {
    const names = all.map((l) => l.path.join(' '));
    expect(names).toEqual(
      expect.arrayContaining(['tenant list', 'run list', 'run show', 'outcome list', 'quarantine list']),
    );
    expect(program.version()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('marks every required option "(required)" in every verb, and no other option', () => {
    let required = 0;
    for (const { path, cmd } of all) {
      const help = cmd.helpInformation();
      for (const o of cmd.options) {
        const line = help.split('\n').find((l) => l.trimStart().startsWith(o.flags));
        expect(line, `${path.join(' ')} ${o.flags}`).toBeDefined();
        // The description may wrap; "(required)" ends the option's text, which starts on this line.
        const text = help.slice(help.indexOf(line!)).split(/\n\s{0,3}(?=-)/)[0];
        if (o.mandatory) required++;
        expect(/\(required\)/.test(text), `${path.join(' ')} ${o.flags}`).toBe(o.mandatory);
      }
    }
    expect(required).toBeGreaterThan(20);
  });
});
