import { describe, expect, it } from 'vitest';
import { DEDUP_WINDOW_MARGIN_MS, isPastDedupWindow, nextAttemptDelayMs } from '../../src/sinks/policy';
import { batchKey, batchKeySuffix } from '../../src/sinks/batches';

const HOUR = 3_600_000;

describe('sink delivery policy', () => {
  it('backs off from 30 s, doubling, to at most an hour', () => {
    expect([1, 2, 3, 4].map(nextAttemptDelayMs)).toEqual([30_000, 60_000, 120_000, 240_000]);
    expect(nextAttemptDelayMs(8)).toBe(HOUR);
    expect(nextAttemptDelayMs(500)).toBe(HOUR);
    expect(nextAttemptDelayMs(0)).toBe(30_000);
  });

  it('a send is past the window a margin before the sink forgets it', () => {
    const first = new Date('2026-11-01T00:00:00Z');
    const at = (ms: number) => new Date(first.getTime() + ms);
    expect(isPastDedupWindow(first, at(24 * HOUR - DEDUP_WINDOW_MARGIN_MS), 24 * HOUR)).toBe(false);
    expect(isPastDedupWindow(first, at(24 * HOUR - DEDUP_WINDOW_MARGIN_MS + 1), 24 * HOUR)).toBe(true);
  });

  it('batch keys name the lines they carry, fit every sink and differ by tenant and sink', () => {
    const key = batchKey(
      'charge',
      9_007_199_254_740_991,
      9_007_199_254_740_991,
      batchKeySuffix('a'.repeat(63), 'stripe'),
    );
    expect(key).toMatch(/^recon_ch_\d+_\d+_[0-9a-f]{10}$/);
    expect(key.length).toBeLessThanOrEqual(80);
    expect(batchKeySuffix('acme', 'stripe')).not.toBe(batchKeySuffix('acme', 'metronome'));
    expect(batchKeySuffix('acme', 'stripe')).not.toBe(batchKeySuffix('globex', 'stripe'));
  });
});
