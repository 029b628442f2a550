import { describe, expect, it } from 'vitest';
import { ReconError } from '../../src/domain/errors';
import { retryActionFor } from '../../src/sinks/retry';
import { summariseSinks } from '../../src/sinks/status';
import { formatSinkStatus } from '../../src/cli/commands/sink';

const b = (state: 'pending' | 'delivered' | 'failed' | 'needs_attention' | 'skipped') => ({
  batchId: 7,
  state,
  key: 'recon_ch_1_3_abcdef0123',
});

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as ReconError).code;
  }
  return undefined;
}

describe('retryActionFor: what a person may move, and how', () => {
  it('a plain retry requeues refused batches, pulls pending ones forward, leaves set-aside ones alone', () => {
    expect(retryActionFor(b('failed'), 'retry', false)).toBe('requeue');
    expect(retryActionFor(b('pending'), 'retry', false)).toBe('pull_forward');
    expect(retryActionFor(b('needs_attention'), 'retry', false)).toBe('leave');
    expect(retryActionFor(b('delivered'), 'retry', false)).toBeNull();
    expect(retryActionFor(b('skipped'), 'retry', false)).toBeNull();
  });

  it('a set-aside batch named without --resend or --mark-delivered is refused: only a person who looked may move it', () => {
    expect(code(() => retryActionFor(b('needs_attention'), 'retry', true))).toBe('needs_person');
    expect(retryActionFor(b('needs_attention'), 'resend', true)).toBe('resend');
    expect(retryActionFor(b('needs_attention'), 'mark_delivered', true)).toBe('mark_delivered');
    expect(retryActionFor(b('failed'), 'mark_delivered', true)).toBe('mark_delivered');
  });

  it('refuses to mark a pending batch delivered, and names a settled batch as nothing to retry', () => {
    expect(code(() => retryActionFor(b('pending'), 'mark_delivered', true))).toBe('batch_not_retryable');
    expect(code(() => retryActionFor(b('delivered'), 'resend', true))).toBe('batch_not_retryable');
    expect(code(() => retryActionFor(b('skipped'), 'retry', true))).toBe('batch_not_retryable');
  });
});

describe('summariseSinks: one sink, five states', () => {
  it('counts unbatched lines as pending and keeps currencies apart', () => {
    const [s] = summariseSinks(
      [{ name: 'billing', kind: 'webhook' }],
      [
        { sink: 'billing', state: 'delivered', currency: 'USD', batches: 2, lines: 12, amountMinor: 1188 },
        { sink: 'billing', state: 'owed', currency: 'USD', batches: 0, lines: 2, amountMinor: 198 },
        { sink: 'billing', state: 'pending', currency: 'USD', batches: 1, lines: 3, amountMinor: 297 },
        { sink: 'billing', state: 'pending', currency: 'EUR', batches: 1, lines: 1, amountMinor: 50 },
        { sink: 'other', state: 'delivered', currency: 'USD', batches: 9, lines: 9, amountMinor: 9 },
      ],
      [{ sink: 'billing', nextAttemptAt: new Date('2026-03-06T07:05:00Z'), lastError: 'connect ECONNREFUSED' }],
    );
    expect(s.states.delivered).toEqual({ lines: 12, batches: 2, amounts: [{ currency: 'USD', amountMinor: 1188 }] });
    expect(s.states.pending).toEqual({
      lines: 6,
      batches: 2,
      unbatched: 2,
      amounts: [
        { currency: 'EUR', amountMinor: 50 },
        { currency: 'USD', amountMinor: 495 },
      ],
    });
    expect(s.states.failed).toEqual({ lines: 0, batches: 0, amounts: [] });
    const text = formatSinkStatus({ tenant: 'acme', period: '2026-03', sinks: [s], attention: [] });
    expect(text).toContain('billing (webhook)');
    expect(text).toMatch(/pending +6 lines +2 batches {2}0\.50 EUR and 4\.95 USD \(2 not yet batched\)/);
    expect(text).toContain('next attempt 2026-03-06T07:05:00.000Z; waiting because: connect ECONNREFUSED');
  });

  it('a tenant without sinks is told how to add one', () => {
    expect(formatSinkStatus({ tenant: 'acme', period: null, sinks: [], attention: [] })).toMatch(
      /^tenant acme's contract names no sink.*"sinks" in the contract.*recon contract apply/,
    );
  });
});
