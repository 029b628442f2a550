import { sinkBatch } from '../support/sink-batches';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SinkSchema, type StripeSinkConfig } from '../../src/domain/sinks';
import {
  InvoiceItemList,
  InvoiceItemResponse,
  MeterEventAdjustmentResponse,
  MeterEventResponse,
  MeterEventSummaryList,
  MeterList,
  MeterResponse,
  STRIPE_MAX_AMOUNT,
  classify,
  invoiceItemDescription,
  stripeAdapter,
} from '../../src/sinks/stripe';
import type { Planned, Refusal, SinkBatch } from '../../src/sinks/types';

const NOW = new Date('2026-11-20T12:00:00Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const meterConfig = SinkSchema.parse({
  kind: 'stripe',
  mode: 'meter_events',
  customer: 'cus_demo',
  apiKeyEnv: 'STRIPE_API_KEY',
  eventName: 'resolved_ticket',
}) as StripeSinkConfig;
const meterSkip = { ...meterConfig, periodLines: 'skip' } as StripeSinkConfig;
const itemConfig = SinkSchema.parse({
  kind: 'stripe',
  mode: 'invoice_items',
  customer: 'cus_demo',
  apiKeyEnv: 'STRIPE_API_KEY',
}) as StripeSinkConfig;

// The shared charge batch, in Stripe's terms: 42 lines at 1.50 USD of run 17.
const batch = (over: Partial<SinkBatch> = {}): SinkBatch =>
  sinkBatch({
    batchId: 7,
    sink: 'stripe',
    key: 'acme-charge-101-142',
    runId: 17,
    currency: 'USD',
    unitPrice: '1.50',
    tier: null,
    lineCount: 42,
    amountMinor: 6300,
    firstEntryId: 101,
    lastEntryId: 142,
    ...over,
  });

const planned = (p: Planned | Refusal): Planned => {
  if ('refuse' in p) throw new Error(`refused: ${p.refuse}`);
  return p;
};
const params = (p: Planned) => (p.payload as { params: Record<string, string> }).params;

describe('the Stripe adapter plans meter events', () => {
  it('turns a charge batch into one meter event carrying the line count', () => {
    const p = planned(stripeAdapter.plan(batch(), meterConfig, { now: NOW }));
    expect(p.action).toBe('meter_event');
    expect(p.payload).toMatchObject({ path: '/v1/billing/meter_events', idempotencyKey: 'acme-charge-101-142' });
    expect(params(p)).toEqual({
      event_name: 'resolved_ticket',
      identifier: 'acme-charge-101-142',
      timestamp: String(Date.parse('2026-11-20T00:00:00Z') / 1000),
      'payload[stripe_customer_id]': 'cus_demo',
      'payload[value]': '42',
    });
  });

  it('refuses timestamps Stripe refuses: over 35 days back (with an hour of margin) or 5 minutes ahead', () => {
    const at = (ms: number) =>
      stripeAdapter.plan(batch({ eventAt: new Date(NOW.getTime() + ms) }), meterConfig, { now: NOW });
    expect(at(-34 * DAY)).toHaveProperty('action', 'meter_event');
    expect(at(-35 * DAY + 2 * HOUR)).toHaveProperty('action', 'meter_event');
    expect(at(-35 * DAY + 30 * 60_000)).toHaveProperty('refuse', expect.stringMatching(/35 days/));
    expect(at(-40 * DAY)).toHaveProperty('refuse', expect.stringMatching(/35 days old.*40 days before/));
    expect(at(5 * 60_000)).toHaveProperty('action', 'meter_event');
    expect(at(5 * 60_000 + 1000)).toHaveProperty('refuse', expect.stringMatching(/5 minutes ahead/));
  });

  it('refuses a value that is not a whole positive number', () => {
    for (const lineCount of [0, -3, 1.5])
      expect(stripeAdapter.plan(batch({ lineCount }), meterConfig, { now: NOW })).toHaveProperty(
        'refuse',
        expect.stringMatching(/whole, positive/),
      );
  });

  const charge = {
    key: 'acme-charge-101-142',
    lineCount: 42,
    creditedCount: 42,
    deliveredAt: new Date(NOW.getTime() - HOUR),
    action: 'meter_event',
  };
  const credit = (over: Partial<SinkBatch> = {}) =>
    batch({
      kind: 'credit',
      key: 'acme-credit-150-191',
      lineCount: 42,
      amountMinor: -6300,
      reverses: [charge],
      ...over,
    });

  it('cancels the charge event when one credit reverses all of it inside the cancel window', () => {
    const p = planned(stripeAdapter.plan(credit(), meterConfig, { now: NOW }));
    expect(p.action).toBe('meter_event_cancel');
    expect(p.payload).toMatchObject({
      path: '/v1/billing/meter_event_adjustments',
      idempotencyKey: 'acme-credit-150-191',
    });
    expect(params(p)).toEqual({
      event_name: 'resolved_ticket',
      type: 'cancel',
      'cancel[identifier]': 'acme-charge-101-142',
    });
  });

  it('credits with a negative invoice item when a cancel would not undo exactly this credit', () => {
    const cases: Array<[string, SinkBatch]> = [
      ['part of the event', credit({ lineCount: 2, amountMinor: -300, reverses: [{ ...charge, creditedCount: 2 }] })],
      // An earlier partial credit already went out as an invoice item: a cancel would credit it twice.
      [
        'the rest after a partial credit',
        credit({ lineCount: 40, amountMinor: -6000, reverses: [{ ...charge, creditedCount: 42 }] }),
      ],
      ['two charge events', credit({ reverses: [charge, { ...charge, key: 'other' }] })],
      ['a charge that went as an invoice item', credit({ reverses: [{ ...charge, action: 'invoice_item' }] })],
      ['a charge not yet delivered', credit({ reverses: [{ ...charge, deliveredAt: null }] })],
      [
        'past the window with its margin',
        credit({ reverses: [{ ...charge, deliveredAt: new Date(NOW.getTime() - 19 * HOUR) }] }),
      ],
      ['no charge known', credit({ reverses: [] })],
    ];
    for (const [why, b] of cases) {
      const p = planned(stripeAdapter.plan(b, meterConfig, { now: NOW }));
      expect(p.action, why).toBe('invoice_item');
      expect(params(p).amount, why).toBe(String(b.amountMinor));
      expect(params(p).description, why).toMatch(/^Credit: /);
    }
    expect(
      planned(
        stripeAdapter.plan(
          credit({ reverses: [{ ...charge, deliveredAt: new Date(NOW.getTime() - 17 * HOUR) }] }),
          meterConfig,
          { now: NOW },
        ),
      ).action,
    ).toBe('meter_event_cancel');
  });

  it('sends base fees and true-ups as invoice items, or takes none of them with periodLines skip', () => {
    expect(stripeAdapter.takes(meterConfig, 'base_fee')).toBe(true);
    expect(stripeAdapter.takes(meterConfig, 'true_up')).toBe(true);
    expect(stripeAdapter.takes(meterSkip, 'base_fee')).toBe(false);
    expect(stripeAdapter.takes(meterSkip, 'true_up')).toBe(false);
    expect(stripeAdapter.takes(meterSkip, 'charge')).toBe(true);
    expect(stripeAdapter.takes(meterSkip, 'credit')).toBe(true);
    const fee = planned(
      stripeAdapter.plan(
        batch({ kind: 'base_fee', runId: null, lineCount: 1, amountMinor: 50000, unitPrice: '500.00' }),
        meterConfig,
        { now: NOW },
      ),
    );
    expect(fee.action).toBe('invoice_item');
    expect(params(fee)).toMatchObject({
      amount: '50000',
      currency: 'usd',
      description: 'Base fee for resolved_ticket, 2026-11',
    });
  });

  it('states its limits: 24 h dedup, one batch per call, no amount cap for meter events', () => {
    expect(stripeAdapter.dedupWindowMs(meterConfig)).toBe(DAY);
    expect(stripeAdapter.batchesPerCall(meterConfig)).toBe(1);
    expect(stripeAdapter.maxAmountPerBatch(meterConfig)).toBeNull();
    expect(stripeAdapter.maxAmountPerBatch(itemConfig)).toBe(99_999_999);
    expect(stripeAdapter.maxLinesPerBatch(meterConfig)).toBeGreaterThanOrEqual(1_000_000);
  });
});

describe('the Stripe adapter plans invoice items', () => {
  it('makes every kind an invoice item of its amount, with metadata that traces it to the ledger', () => {
    for (const kind of ['charge', 'credit', 'base_fee', 'true_up'] as const)
      expect(stripeAdapter.takes(itemConfig, kind)).toBe(true);
    const p = planned(stripeAdapter.plan(batch(), itemConfig, { now: NOW }));
    expect(p.action).toBe('invoice_item');
    expect(p.payload).toMatchObject({ path: '/v1/invoiceitems', idempotencyKey: 'acme-charge-101-142' });
    expect(params(p)).toEqual({
      customer: 'cus_demo',
      amount: '6300',
      currency: 'usd',
      description: '42 × resolved_ticket at 1.50 USD, 2026-11, run 17',
      'metadata[recon_key]': 'acme-charge-101-142',
      'metadata[recon_tenant]': 'acme',
      'metadata[recon_period]': '2026-11',
      'metadata[recon_kind]': 'charge',
      'metadata[recon_lines]': '42',
      'metadata[recon_first_entry]': '101',
      'metadata[recon_last_entry]': '142',
      'metadata[recon_event_at]': '2026-11-20T00:00:00Z',
    });
    const credit = planned(
      stripeAdapter.plan(batch({ kind: 'credit', amountMinor: -150, lineCount: 1 }), itemConfig, { now: NOW }),
    );
    expect(params(credit).amount).toBe('-150');
  });

  it('takes old lines (no time limit on invoice items) but refuses amounts over eight digits', () => {
    expect(
      stripeAdapter.plan(batch({ eventAt: new Date(NOW.getTime() - 90 * DAY) }), itemConfig, { now: NOW }),
    ).toHaveProperty('action', 'invoice_item');
    expect(stripeAdapter.plan(batch({ amountMinor: STRIPE_MAX_AMOUNT }), itemConfig, { now: NOW })).toHaveProperty(
      'action',
    );
    expect(stripeAdapter.plan(batch({ amountMinor: STRIPE_MAX_AMOUNT + 1 }), itemConfig, { now: NOW })).toHaveProperty(
      'refuse',
      expect.stringMatching(/at most 99999999/),
    );
    expect(
      stripeAdapter.plan(batch({ kind: 'credit', amountMinor: -STRIPE_MAX_AMOUNT - 1 }), itemConfig, { now: NOW }),
    ).toHaveProperty('refuse');
  });

  it('describes each kind for a finance person', () => {
    expect(invoiceItemDescription(batch({ tier: 2 }))).toBe(
      '42 × resolved_ticket (tier 2) at 1.50 USD, 2026-11, run 17',
    );
    expect(invoiceItemDescription(batch({ kind: 'true_up', outcomeType: null, runId: null }))).toBe(
      'Minimum commitment true-up, 2026-11',
    );
  });
});

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/sinks/${name}.json`, import.meta.url), 'utf8')) as {
    status: number;
    headers?: Record<string, string>;
    body: unknown;
  };

describe("the Stripe adapter reads Stripe's recorded answers", () => {
  it('accepts every recorded success shape', () => {
    expect(MeterEventResponse.safeParse(fixture('stripe-meter-event').body).success).toBe(true);
    expect(MeterEventAdjustmentResponse.safeParse(fixture('stripe-meter-event-adjustment').body).success).toBe(true);
    expect(MeterResponse.safeParse(fixture('stripe-meter').body).success).toBe(true);
    expect(MeterList.safeParse(fixture('stripe-meter-list').body).success).toBe(true);
    expect(MeterEventSummaryList.safeParse(fixture('stripe-meter-event-summaries').body).success).toBe(true);
    expect(InvoiceItemResponse.safeParse(fixture('stripe-invoiceitem').body).success).toBe(true);
    expect(InvoiceItemList.safeParse(fixture('stripe-invoiceitem-list').body).success).toBe(true);
  });

  const answer = (name: string) => {
    const f = fixture(name);
    return { status: f.status, headers: new Headers(f.headers ?? {}), json: f.body };
  };

  it('classifies recorded answers: delivered, duplicate, retry, auth, refused', () => {
    expect(classify(answer('stripe-meter-event'), 'meter_event', meterConfig, 'sk_test_x')).toEqual({
      status: 'delivered',
      ref: 'identifier_123',
    });
    expect(classify(answer('stripe-invoiceitem'), 'invoice_item', itemConfig, 'sk_test_x')).toEqual({
      status: 'delivered',
      ref: 'ii_1MtGUtLkdIwHu7ixBYwjAM00',
    });
    expect(classify(answer('stripe-error-duplicate-identifier'), 'meter_event', meterConfig, 'sk_test_x')).toEqual({
      status: 'delivered',
      duplicate: true,
    });
    expect(classify(answer('stripe-error-rate-limit'), 'meter_event', meterConfig, 'sk_test_x')).toMatchObject({
      status: 'retry',
      retryAfterMs: 2000,
    });
    const auth = classify(answer('stripe-error-invalid-api-key'), 'meter_event', meterConfig, 'sk_test_x');
    expect(auth).toMatchObject({ status: 'auth' });
    expect(JSON.stringify(auth)).not.toMatch(/sk_test|1234/);
    expect(JSON.stringify(auth)).toMatch(/STRIPE_API_KEY/);
    expect(classify(answer('stripe-error-no-such-customer'), 'invoice_item', itemConfig, 'sk_test_x')).toEqual({
      status: 'refused',
      error: "Stripe 400 invalid_request_error/resource_missing (customer): No such customer: 'cus_missing'",
    });
    expect(classify(answer('stripe-error-idempotency'), 'invoice_item', itemConfig, 'sk_test_x')).toMatchObject({
      status: 'refused',
    });
    // A 200 that is not Stripe's object (a proxy's page) is resent, never taken as delivered.
    expect(
      classify({ status: 200, headers: new Headers(), json: { ok: true } }, 'meter_event', meterConfig, 's'),
    ).toMatchObject({
      status: 'retry',
    });
  });
});
