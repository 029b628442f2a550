import { describe, expect, it } from 'vitest';
import { SinkSchema, type WebhookSinkConfig } from '../../src/domain/sinks';
import type { Planned, Refusal } from '../../src/sinks/types';
import { canonicalJson, webhookAdapter } from '../../src/sinks/webhook';
import { creditBatch, sinkBatch } from '../support/sink-batches';

const config = SinkSchema.parse({
  kind: 'webhook',
  url: 'https://billing.example.com/hooks/ledger',
  secretEnv: 'LEDGER_WEBHOOK_SECRET',
  dedupWindowHours: 48,
}) as WebhookSinkConfig;
const NOW = new Date('2026-11-20T02:00:00Z');

function planned(p: Planned | Refusal): Planned {
  if ('refuse' in p) throw new Error(`refused: ${p.refuse}`);
  return p;
}

describe('the webhook adapter plans', () => {
  it('one ledger event per batch, timestamped with the business time', () => {
    const p = planned(webhookAdapter.plan(sinkBatch(), config, { now: NOW }));
    expect(p.action).toBe('webhook');
    expect(p.payload).toEqual({
      type: 'ledger.charges',
      timestamp: '2026-11-20T00:00:00.000Z',
      data: {
        tenant: 'acme',
        key: 'acme-charge-1001-1012',
        kind: 'charge',
        run_id: 7,
        outcome_type: 'resolved_ticket',
        period: '2026-11',
        currency: 'EUR',
        unit_price: '0.99',
        tier: 1,
        line_count: 12,
        amount_minor: 1188,
        first_entry_id: 1001,
        last_entry_id: 1012,
        references: [],
      },
    });
  });

  it('names each kind as its own event type', () => {
    const typeOf = (kind: 'charge' | 'credit' | 'base_fee' | 'true_up') =>
      planned(webhookAdapter.plan(sinkBatch({ kind }), config, { now: NOW })).payload.type;
    expect([typeOf('charge'), typeOf('credit'), typeOf('base_fee'), typeOf('true_up')]).toEqual([
      'ledger.charges',
      'ledger.credits',
      'ledger.base_fee',
      'ledger.true_up',
    ]);
  });

  it('has a credit reference the charge deliveries it reverses', () => {
    const p = planned(webhookAdapter.plan(creditBatch(), config, { now: NOW }));
    expect(p.payload).toMatchObject({
      type: 'ledger.credits',
      data: { kind: 'credit', amount_minor: -198, line_count: 2, references: ['acme-charge-1001-1012'] },
    });
  });

  it('does not depend on the clock: a resend plans the same payload', () => {
    const a = planned(webhookAdapter.plan(sinkBatch(), config, { now: NOW }));
    const b = planned(webhookAdapter.plan(sinkBatch(), config, { now: new Date('2026-12-30T00:00:00Z') }));
    expect(canonicalJson(a.payload)).toBe(canonicalJson(b.payload));
  });

  it('serializes the same bytes whatever order the keys come back in (jsonb reorders them)', () => {
    const p = planned(webhookAdapter.plan(sinkBatch(), config, { now: NOW }));
    const reversed = (v: unknown): unknown =>
      v && typeof v === 'object' && !Array.isArray(v)
        ? Object.fromEntries(
            Object.entries(v)
              .reverse()
              .map(([k, x]) => [k, reversed(x)]),
          )
        : v;
    const back = reversed(p.payload) as Record<string, unknown>;
    expect(Object.keys(back)[0]).not.toBe(Object.keys(p.payload)[0]);
    expect(canonicalJson(back)).toBe(canonicalJson(p.payload));
    expect(canonicalJson({ b: 1, a: [{ d: null, c: 'x' }] })).toBe('{"a":[{"c":"x","d":null}],"b":1}');
  });

  it('states the limits: one batch a call, 1000 lines, the contract dedup window, every kind', () => {
    expect(webhookAdapter.batchesPerCall(config)).toBe(1);
    expect(webhookAdapter.maxLinesPerBatch(config)).toBe(1000);
    expect(webhookAdapter.dedupWindowMs(config)).toBe(48 * 3600_000);
    expect(webhookAdapter.maxAmountPerBatch(config)).toBeNull();
    for (const kind of ['charge', 'credit', 'base_fee', 'true_up'] as const)
      expect(webhookAdapter.takes(config, kind)).toBe(true);
    // A receiver has no read API: nothing to verify or reconcile against.
    expect('verify' in webhookAdapter).toBe(false);
    expect('holdings' in webhookAdapter).toBe(false);
  });
});
