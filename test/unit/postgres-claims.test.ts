import { describe, expect, it } from 'vitest';
import { isoTime } from '../../src/sources/postgres-claims';
import { parseCustomerTimestamp } from '../../src/domain/timestamps';

describe('times read from the AI side’s PostgreSQL', () => {
  it('turn its ISO output into ISO 8601, microseconds and offsets kept', () => {
    expect(isoTime('2026-03-02 10:00:00+00')).toBe('2026-03-02T10:00:00Z');
    expect(isoTime('2026-03-02 10:00:00.123456+00')).toBe('2026-03-02T10:00:00.123456Z');
    expect(isoTime('2026-03-02 10:00:00+05:30')).toBe('2026-03-02T10:00:00+05:30');
    expect(isoTime('2026-03-02 10:00:00-03')).toBe('2026-03-02T10:00:00-03:00');
    // A timestamp without a zone stays without one: the importer reads it as UTC.
    expect(isoTime('2026-03-02 10:00:00.5')).toBe('2026-03-02T10:00:00.5');
  });

  it('leave text that is not its output alone (a text column already holding ISO 8601)', () => {
    expect(isoTime('2026-03-02T10:00:00Z')).toBe('2026-03-02T10:00:00Z');
    expect(isoTime('infinity')).toBe('infinity');
  });

  it('read back as the instant PostgreSQL meant', () => {
    for (const [pg, instant] of [
      ['2026-03-02 10:00:00.123456+00', '2026-03-02T10:00:00.123Z'],
      ['2026-03-02 10:00:00+05:30', '2026-03-02T04:30:00.000Z'],
      ['2026-03-02 10:00:00', '2026-03-02T10:00:00.000Z'],
    ])
      expect(parseCustomerTimestamp(isoTime(pg), 'UTC').toISOString()).toBe(instant);
  });
});
