import { describe, expect, it } from 'vitest';
import { aggregateRuleFor, compareSink, type CompareInput, type OurBatch } from '../../src/sinks/reconcile';
import { SinkSchema } from '../../src/domain/sinks';

const SUFFIX = 'abcdef0123';
const RANGE = { from: '2026-03-01T05:00:00.000Z', to: '2026-04-01T04:00:00.000Z' };

let nextId = 1;
function batch(p: Partial<OurBatch> & { key?: string }): OurBatch {
  const id = nextId++;
  const lineCount = p.lineCount ?? 3;
  const amountMinor = p.amountMinor ?? lineCount * 99;
  return {
    batchId: id,
    key: p.key ?? `recon_ch_${id}_${id}_${SUFFIX}`,
    kind: 'charge',
    state: 'delivered',
    lineCount,
    amountMinor,
    currency: 'USD',
    eventAt: '2026-03-06T12:00:00.000Z',
    action: 'ingest',
    cancels: null,
    lastError: null,
    carriedLines: lineCount,
    carriedAmountMinor: amountMinor,
    ...p,
  };
}

function input(p: Partial<CompareInput>): CompareInput {
  return {
    sink: 'usage',
    ours: [],
    owed: [],
    holdings: [],
    range: RANGE,
    aggregate: null,
    keySuffix: SUFFIX,
    ...p,
  };
}

const kinds = (ds: Array<{ kind: string }>) => ds.map((d) => d.kind);

describe('compareSink: our ledger against what a sink holds', () => {
  it('finds nothing when every delivered batch is held with our quantity and amount', () => {
    const a = batch({});
    const credit = batch({ kind: 'credit', lineCount: 1, amountMinor: -99, key: `recon_cr_9_9_${SUFFIX}` });
    const d = compareSink(
      input({
        ours: [a, credit],
        holdings: [
          { key: a.key, quantity: 3, amountMinor: 297 },
          { key: credit.key, quantity: -1, amountMinor: -99 },
        ],
      }),
    );
    expect(d).toEqual([]);
  });

  it('reports a delivered batch the sink does not hold, and one it holds with another quantity or amount', () => {
    const gone = batch({});
    const more = batch({});
    const cheaper = batch({});
    const d = compareSink(
      input({
        ours: [gone, more, cheaper],
        holdings: [
          { key: more.key, quantity: 6, amountMinor: 297 },
          { key: cheaper.key, amountMinor: 200 },
        ],
      }),
    );
    expect(d).toEqual([
      expect.objectContaining({ kind: 'not_at_sink', key: gone.key, batchId: gone.batchId, theirs: 'absent' }),
      expect.objectContaining({ kind: 'quantity_differs', key: more.key, ours: '3', theirs: '6' }),
      expect.objectContaining({ kind: 'amount_differs', key: cheaper.key, ours: '2.97 USD', theirs: '2.00 USD' }),
    ]);
  });

  it('reports a key of this sink the sink holds that we never delivered, and ignores keys that are not ours', () => {
    const d = compareSink(
      input({
        holdings: [
          { key: `recon_ch_5_7_${SUFFIX}`, quantity: 3 },
          { key: 'recon_ch_5_7_0000000000', quantity: 3 },
          { key: 'manual-adjustment-1', amountMinor: 500 },
        ],
      }),
    );
    expect(d).toEqual([
      expect.objectContaining({ kind: 'unknown_at_sink', key: `recon_ch_5_7_${SUFFIX}`, theirs: 'held: quantity 3' }),
    ]);
  });

  it('lists every line not yet at the sink: unbatched lines, pending, failed and set-aside batches', () => {
    const pending = batch({ state: 'pending', lastError: 'webhook receiver: connect ECONNREFUSED' });
    const failed = batch({ state: 'failed', lastError: 'webhook receiver answered 400: bad signature' });
    const aside = batch({ state: 'needs_attention' });
    const skipped = batch({ state: 'skipped', kind: 'base_fee', lineCount: 1, amountMinor: 5000 });
    const d = compareSink(
      input({
        ours: [pending, failed, aside, skipped],
        owed: [{ currency: 'USD', lines: 2, amountMinor: 198 }],
        holdings: null,
      }),
    );
    expect(kinds(d)).toEqual(['owed', 'pending', 'failed', 'needs_attention']);
    expect(d[0]).toMatchObject({ key: '-', ours: '2 lines not yet batched, 1.98 USD' });
    expect(d[1]).toMatchObject({
      ours: 'pending charge 3 lines, 2.97 USD',
      detail: 'webhook receiver: connect ECONNREFUSED',
    });
    expect(d[3].theirs).toBe('not known');
  });

  it('says a set-aside batch the sink holds is held (mark it delivered), not absent', () => {
    const aside = batch({ state: 'needs_attention' });
    const lost = batch({ state: 'failed' });
    const d = compareSink(input({ ours: [aside, lost], holdings: [{ key: aside.key, quantity: 3, ref: 'evt_1' }] }));
    expect(d).toEqual([
      expect.objectContaining({ kind: 'held_not_recorded', key: aside.key, theirs: 'held: quantity 3 (evt_1)' }),
      expect.objectContaining({ kind: 'failed', key: lost.key, theirs: 'absent' }),
    ]);
  });

  it('checks our own records: a batch must be what its delivery rows add up to', () => {
    const short = batch({ carriedLines: 2, carriedAmountMinor: 198 });
    const d = compareSink(input({ ours: [short], holdings: null }));
    expect(d).toEqual([
      expect.objectContaining({
        kind: 'batch_mismatch',
        ours: 'batch says 3 lines, 2.97 USD',
        theirs: 'its delivery rows: 2 lines, 1.98 USD',
      }),
    ]);
  });

  it('without a read API compares only our records: a delivered batch is not "absent"', () => {
    expect(compareSink(input({ ours: [batch({})], holdings: null }))).toEqual([]);
  });
});

describe('compareSink: a Stripe meter holds one total', () => {
  const config = SinkSchema.parse({
    kind: 'stripe',
    mode: 'meter_events',
    customer: 'cus_NffrFeUfNV2Hib',
    apiKeyEnv: 'STRIPE_API_KEY',
    eventName: 'resolved_tickets',
  });
  const rule = aggregateRuleFor(config)!;

  it('is the sum of delivered meter events in the range, less the ones a credit cancelled', () => {
    const a = batch({ action: 'meter_event', lineCount: 10 });
    const b = batch({ action: 'meter_event', lineCount: 4 });
    const late = batch({ action: 'meter_event', lineCount: 7, eventAt: '2026-04-01T04:00:00.000Z' });
    const notYet = batch({ action: 'meter_event', lineCount: 5, state: 'pending' });
    const cancel = batch({
      kind: 'credit',
      action: 'meter_event_cancel',
      lineCount: 4,
      amountMinor: -396,
      cancels: b.key,
    });
    // A credit too late to cancel is a negative invoice item, held by key.
    const item = batch({ kind: 'credit', action: 'invoice_item', lineCount: 1, amountMinor: -99 });
    const ours = [a, b, late, notYet, cancel, item];
    const held = [
      { key: rule.key, quantity: 10 },
      { key: item.key, amountMinor: -99 },
    ];
    expect(rule.key).toBe('meter:resolved_tickets');
    const d = compareSink(input({ ours, holdings: held, aggregate: rule }));
    // Only the pending event differs: it is not at Stripe yet, and nothing per key can say so.
    expect(d).toEqual([
      expect.objectContaining({
        kind: 'pending',
        key: notYet.key,
        theirs: 'not known (inside meter:resolved_tickets)',
      }),
    ]);

    const counted = compareSink(input({ ours, holdings: [{ key: rule.key, quantity: 14 }, held[1]], aggregate: rule }));
    expect(counted.find((x) => x.kind === 'total_differs')).toMatchObject({
      key: 'meter:resolved_tickets',
      ours: '10 (2 delivered events less 1 cancelled)',
      theirs: '14',
    });
  });

  it('a meter Stripe cannot find is a difference, not a zero', () => {
    const d = compareSink(input({ ours: [batch({ action: 'meter_event' })], holdings: [], aggregate: rule }));
    expect(d).toEqual([
      expect.objectContaining({ kind: 'total_differs', ours: expect.stringMatching(/^3 /), theirs: 'absent' }),
    ]);
  });

  it('only Stripe meter sinks hold a total', () => {
    expect(
      aggregateRuleFor(
        SinkSchema.parse({ kind: 'webhook', url: 'https://example.com/hook', secretEnv: 'HOOK_SECRET' }),
      ),
    ).toBeNull();
    expect(
      aggregateRuleFor(
        SinkSchema.parse({
          kind: 'stripe',
          mode: 'invoice_items',
          customer: 'cus_NffrFeUfNV2Hib',
          apiKeyEnv: 'STRIPE_API_KEY',
        }),
      ),
    ).toBeNull();
  });
});
