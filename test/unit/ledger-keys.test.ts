import { describe, expect, it } from 'vitest';
import { baseFeeKey, chargeKey, chargeKeySql, creditKey, creditKeySql, trueUpKey } from '../../src/ledger/keys';

// These bytes are in every ledger already written: a changed format would let a replayed run or a
// retried credit write a second line beside the first instead of doing nothing.
describe('ledger idempotency keys', () => {
  it('keep the formats existing rows were written with', () => {
    expect(chargeKey(42)).toBe('charge:42');
    expect(creditKey(7)).toBe('credit:7');
    expect(baseFeeKey('acme', 'ticket_resolved', '2026-03')).toBe('base:acme:ticket_resolved:2026-03');
    expect(trueUpKey('acme', '2026-01-01T00:00:00Z')).toBe('trueup:acme:2026-01-01T00:00:00Z');
  });

  it('build the same keys in SQL as in TypeScript', () => {
    expect(chargeKeySql('l.outcome_id')).toBe(`'charge:' || l.outcome_id`);
    expect(creditKeySql('c.entry_id')).toBe(`'credit:' || c.entry_id`);
    // The SQL form concatenates the literal prefix before the id: the same bytes as the TS form.
    const sqlPrefix = (sql: string) => /^'([^']*)' \|\| /.exec(sql)![1];
    expect(sqlPrefix(chargeKeySql('x')) + '42').toBe(chargeKey(42));
    expect(sqlPrefix(creditKeySql('x')) + '7').toBe(creditKey(7));
  });

  it('give every kind of line its own prefix', () => {
    const prefixes = [chargeKey(1), creditKey(1), baseFeeKey('t', 'x', '2026-01'), trueUpKey('t', '2026-01-01')].map(
      (k) => k.split(':')[0],
    );
    expect(new Set(prefixes).size).toBe(prefixes.length);
  });
});
