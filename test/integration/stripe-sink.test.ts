/**
 * The Stripe sink against the Stripe emulator (Stripe's documented rules, with state) and against
 * stripe-mock (Stripe's OpenAPI spec, without state). Needs neither Temporal nor PostgreSQL.
 */
import { sinkBatch } from '../support/sink-batches';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SinkSchema, type StripeSinkConfig } from '../../src/domain/sinks';
import { startStripeEmulator, type StripeEmulatorHandle } from '../../src/emulators/stripe';
import { stripeAdapter } from '../../src/sinks/stripe';
import type { Planned, Refusal, SinkBatch, SinkContext } from '../../src/sinks/types';
import { startStripeMock, type StripeMock } from '../../src/stack/stripe-mock';
import { BIN, ROOT, recon } from '../support/recon-cli';

const KEY = 'sk_test_emulatorKey9876';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function config(apiBase: string, over: Record<string, unknown> = {}): StripeSinkConfig {
  return SinkSchema.parse({
    kind: 'stripe',
    mode: 'meter_events',
    customer: 'cus_demo',
    apiKeyEnv: 'STRIPE_API_KEY',
    eventName: 'resolved_ticket',
    apiBase,
    ...over,
  }) as StripeSinkConfig;
}
/** Invoice-item mode has no meter fields. */
function itemConfig(apiBase: string, customer = 'cus_demo'): StripeSinkConfig {
  return SinkSchema.parse({
    kind: 'stripe',
    mode: 'invoice_items',
    customer,
    apiKeyEnv: 'STRIPE_API_KEY',
    apiBase,
  }) as StripeSinkConfig;
}

let seq = 0;
function batch(over: Partial<SinkBatch> = {}): SinkBatch {
  seq += 1;
  // Each test's batch is new to the emulator: its own key, run and entries.
  return sinkBatch({
    batchId: seq,
    sink: 'stripe',
    key: `acme-charge-${seq}00-${seq}41`,
    runId: seq,
    currency: 'USD',
    unitPrice: '1.50',
    tier: null,
    lineCount: 42,
    amountMinor: 6300,
    eventAt: new Date(Date.now() - HOUR),
    firstEntryId: seq * 100,
    lastEntryId: seq * 100 + 41,
    ...over,
  });
}

const ctx = (over: Partial<SinkContext> = {}): SinkContext => ({
  now: new Date(),
  secret: KEY,
  timeoutMs: 5000,
  ...over,
});
const planned = (p: Planned | Refusal): Planned => {
  if ('refuse' in p) throw new Error(`refused: ${p.refuse}`);
  return p;
};
/** Plans and sends one batch. */
async function deliver(b: SinkBatch, c: StripeSinkConfig, cx = ctx()) {
  const p = planned(stripeAdapter.plan(b, c, { now: cx.now }));
  const [result] = await stripeAdapter.send([{ batch: b, planned: p }], c, cx);
  return { planned: p, result };
}
async function resend(b: SinkBatch, p: Planned, c: StripeSinkConfig, cx = ctx()) {
  const [result] = await stripeAdapter.send([{ batch: b, planned: p }], c, cx);
  return result;
}

async function api(url: string, method: string, pathname: string, form?: Record<string, string>, key = KEY) {
  const res = await fetch(`${url}${pathname}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: form ? new URLSearchParams(form).toString() : undefined,
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/sinks/${name}.json`, import.meta.url), 'utf8')) as {
    status: number;
    body: Record<string, unknown>;
  };

/** Every field the recorded Stripe answer has, the emulator's answer has too, of the same kind. */
function expectSameShape(actual: unknown, recorded: unknown, at = '$'): void {
  if (recorded === null || actual === null) return;
  if (Array.isArray(recorded)) {
    expect(Array.isArray(actual), at).toBe(true);
    if (recorded.length > 0 && (actual as unknown[]).length > 0)
      expectSameShape((actual as unknown[])[0], recorded[0], `${at}[0]`);
    return;
  }
  expect(typeof actual, at).toBe(typeof recorded);
  if (typeof recorded === 'object') {
    // Payloads and metadata are the caller's own keys.
    if (at.endsWith('.payload') || at.endsWith('.metadata')) return;
    for (const k of Object.keys(recorded)) {
      expect(actual, `${at} lacks ${k}`).toHaveProperty(k);
      expectSameShape((actual as Record<string, unknown>)[k], (recorded as Record<string, unknown>)[k], `${at}.${k}`);
    }
  }
}

describe('the Stripe sink against the Stripe emulator', () => {
  let emu: StripeEmulatorHandle;
  let meterCfg: StripeSinkConfig;
  let itemCfg: StripeSinkConfig;
  let customer: string;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'recon-stripe-'));
    emu = await startStripeEmulator({ secret: KEY, stateFile: path.join(dir, 'state.json') });
    // Seeded through the API, as the demo does it.
    const c = await api(emu.url, 'POST', '/v1/customers', { name: 'Acme Support', 'metadata[tenant]': 'acme' });
    expect(c.status).toBe(200);
    customer = c.json.id as string;
    const m = await api(emu.url, 'POST', '/v1/billing/meters', {
      display_name: 'Resolved tickets',
      event_name: 'resolved_ticket',
      'default_aggregation[formula]': 'sum',
    });
    expect(m.status).toBe(200);
    meterCfg = config(emu.url, { customer });
    itemCfg = itemConfig(emu.url, customer);
  });
  afterAll(async () => {
    await emu?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => emu.setClockOffset(0));

  const summary = async (from: Date, to: Date) => {
    const holdings = await stripeAdapter.holdings!({ tenant: 'acme', from, to, keys: [] }, meterCfg, ctx());
    return holdings.find((h) => h.key === 'meter:resolved_ticket')?.quantity;
  };
  const eventsWith = (identifier: string) => emu.meterEvents().filter((e) => e.identifier === identifier);

  it("answers in Stripe's recorded shapes", async () => {
    const ev = await api(emu.url, 'POST', '/v1/billing/meter_events', {
      event_name: 'resolved_ticket',
      identifier: 'shape-1',
      'payload[stripe_customer_id]': customer,
      'payload[value]': '3',
    });
    expectSameShape(ev.json, fixture('stripe-meter-event').body);
    const dup = await api(emu.url, 'POST', '/v1/billing/meter_events', {
      event_name: 'resolved_ticket',
      identifier: 'shape-1',
      'payload[stripe_customer_id]': customer,
      'payload[value]': '3',
    });
    expect(dup.status).toBe(fixture('stripe-error-duplicate-identifier').status);
    expect(dup.headers.get('stripe-should-retry')).toBe('false');
    expect(dup.json).toEqual({
      error: { type: 'invalid_request_error', message: 'An event already exists with identifier shape-1.' },
    });
    const adj = await api(emu.url, 'POST', '/v1/billing/meter_event_adjustments', {
      event_name: 'resolved_ticket',
      type: 'cancel',
      'cancel[identifier]': 'shape-1',
    });
    expectSameShape(adj.json, fixture('stripe-meter-event-adjustment').body);
    const meters = await api(emu.url, 'GET', '/v1/billing/meters');
    expectSameShape(meters.json, fixture('stripe-meter-list').body);
    expectSameShape((meters.json.data as unknown[])[0], fixture('stripe-meter').body);
    const meterId = (meters.json.data as Array<{ id: string }>)[0].id;
    const sums = await api(
      emu.url,
      'GET',
      `/v1/billing/meters/${meterId}/event_summaries?customer=${customer}&start_time=0&end_time=60`,
    );
    expectSameShape(sums.json, fixture('stripe-meter-event-summaries').body);
    const item = await api(emu.url, 'POST', '/v1/invoiceitems', {
      customer,
      amount: '100',
      currency: 'usd',
      description: 'shape',
    });
    expectSameShape(item.json, fixture('stripe-invoiceitem').body);
    const list = await api(emu.url, 'GET', `/v1/invoiceitems?customer=${customer}&limit=1`);
    expectSameShape(list.json, fixture('stripe-invoiceitem-list').body);
    expectSameShape((await api(emu.url, 'GET', `/v1/customers/${customer}`)).json, fixture('stripe-customer').body);
    const missing = await api(emu.url, 'POST', '/v1/invoiceitems', {
      customer: 'cus_missing',
      amount: '100',
      currency: 'usd',
    });
    expect(missing).toMatchObject({ status: 400, json: fixture('stripe-error-no-such-customer').body });
    const badKey = await api(
      emu.url,
      'GET',
      `/v1/customers/${customer}`,
      undefined,
      'sk_test_000000000000000000001234',
    );
    expect(badKey.status).toBe(401);
    expect(badKey.json).toMatchObject({ error: { type: 'invalid_request_error', code: 'api_key_invalid' } });
    expect((badKey.json.error as { message: string }).message).toMatch(/^Invalid API Key provided: sk_test_\*+1234$/);
    emu.setFault({ mode: 'rate_limit', times: 1, retryAfterSeconds: 2 });
    const limited = await api(emu.url, 'GET', '/v1/billing/meters');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('2');
    expect(limited.json).toEqual(fixture('stripe-error-rate-limit').body);
  });

  it('refuses what Stripe documents it refuses, and is driven through its control endpoints', async () => {
    const event = (over: Record<string, string>) =>
      api(emu.url, 'POST', '/v1/billing/meter_events', {
        event_name: 'resolved_ticket',
        'payload[stripe_customer_id]': customer,
        'payload[value]': '1',
        ...over,
      });
    const code = async (p: Promise<{ status: number; json: Record<string, unknown> }>) => {
      const r = await p;
      return [r.status, (r.json.error as { code?: string } | undefined)?.code];
    };
    expect(await code(event({ event_name: 'no_such_meter' }))).toEqual([400, 'no_meter']);
    expect(await code(event({ 'payload[value]': '1.5' }))).toEqual([400, 'meter_event_invalid_value']);
    expect(await code(event({ 'payload[stripe_customer_id]': 'cus_nobody' }))).toEqual([400, 'resource_missing']);
    expect(await code(event({ timestamp: String(Math.floor(Date.now() / 1000) + 400) }))).toEqual([
      400,
      'timestamp_in_future',
    ]);
    expect(await code(event({ timestamp: String(Math.floor(Date.now() / 1000) - 36 * 86400) }))).toEqual([
      400,
      'timestamp_too_far_in_past',
    ]);
    const item = (amount: string) => api(emu.url, 'POST', '/v1/invoiceitems', { customer, amount, currency: 'usd' });
    expect(await code(item('100000000'))).toEqual([400, 'amount_too_large']);
    expect(await code(item('-100000000'))).toEqual([400, 'amount_too_large']);
    expect((await item('-99999999')).status).toBe(200);
    expect((await api(emu.url, 'GET', `/v1/invoiceitems?customer=${customer}&limit=101`)).status).toBe(400);
    expect((await api(emu.url, 'GET', '/v1/customers/cus_nobody')).status).toBe(404);

    const control = async (p: string, body: unknown) =>
      (await fetch(`${emu.url}/_emulator/${p}`, { method: 'POST', body: JSON.stringify(body) })).status;
    expect(await control('fault', { mode: 'error500', times: 2 })).toBe(200);
    expect((await api(emu.url, 'GET', '/v1/billing/meters')).status).toBe(500);
    expect((await api(emu.url, 'GET', '/v1/billing/meters')).status).toBe(500);
    expect((await api(emu.url, 'GET', '/v1/billing/meters')).status).toBe(200);
    expect(await control('clock', { offsetMs: 40 * DAY })).toBe(200);
    // 40 days on, an event timestamped at the real now is still in range: the emulator's clock moved.
    expect(await code(event({ timestamp: String(Math.floor(Date.now() / 1000) + 40 * 86400) }))).toEqual([
      200,
      undefined,
    ]);
    expect(await control('clock', { offsetMs: 0 })).toBe(200);
    const state = (await (await fetch(`${emu.url}/_emulator/state`)).json()) as {
      customers: unknown[];
      meters: unknown[];
    };
    expect(state.customers).toHaveLength(1);
    expect(state.meters).toHaveLength(1);
    expect(await control('fault', { mode: 'sideways' })).toBe(400);
  });

  it('delivers a charge as one meter event; a resend is replayed, a repeated identifier counts as delivered', async () => {
    const b = batch();
    const { planned: p, result } = await deliver(b, meterCfg);
    expect(result).toEqual({ status: 'delivered', ref: b.key });
    expect(eventsWith(b.key)).toMatchObject([{ value: 42, customer, cancelledAt: null }]);
    // The same request again: Stripe replays the first answer for the Idempotency-Key.
    expect(await resend(b, p, meterCfg)).toEqual({ status: 'delivered', ref: b.key });
    // The identifier again under another key (the key was pruned): Stripe's 400, taken as delivered.
    const other = { ...p, payload: { ...p.payload, idempotencyKey: `${b.key}-again` } };
    expect(await resend(b, other, meterCfg)).toEqual({ status: 'delivered', duplicate: true });
    expect(eventsWith(b.key)).toHaveLength(1);
  });

  it('answers an Idempotency-Key reused with other parameters with an idempotency_error, refused', async () => {
    const b = batch();
    const { planned: p } = await deliver(b, meterCfg);
    const changed = {
      ...p,
      payload: { ...p.payload, params: { ...(p.payload.params as object), 'payload[value]': '43' } },
    };
    const r = await resend(b, changed, meterCfg);
    expect(r).toMatchObject({ status: 'refused', error: expect.stringMatching(/idempotency_error.*same parameters/) });
    expect(eventsWith(b.key)).toMatchObject([{ value: 42 }]);
  });

  it('never sends what Stripe refuses on time; Stripe refuses it too when sent', async () => {
    const old = batch({ eventAt: new Date(Date.now() - 36 * DAY) });
    expect(stripeAdapter.plan(old, meterCfg, { now: new Date() })).toHaveProperty(
      'refuse',
      expect.stringMatching(/35 days/),
    );
    const ahead = batch({ eventAt: new Date(Date.now() + 10 * 60_000) });
    expect(stripeAdapter.plan(ahead, meterCfg, { now: new Date() })).toHaveProperty(
      'refuse',
      expect.stringMatching(/5 minutes/),
    );
    // Planned while valid, sent after the emulator's clock passed 35 days: Stripe's own 400.
    const b = batch({ eventAt: new Date(Date.now() - 34 * DAY) });
    const p = planned(stripeAdapter.plan(b, meterCfg, { now: new Date() }));
    emu.setClockOffset(2 * DAY);
    expect(await resend(b, p, meterCfg)).toEqual({
      status: 'refused',
      error:
        'Stripe 400 invalid_request_error/timestamp_too_far_in_past (timestamp): Timestamp must be no more than 35 days in the past.',
    });
    expect(eventsWith(b.key)).toHaveLength(0);
  });

  it('cancels a fully credited charge inside the cancel window, and Stripe refuses a cancel after 24 h', async () => {
    const t0 = new Date(Date.now() - 2 * HOUR);
    const from = new Date(t0.getTime() - HOUR);
    const to = new Date(Date.now() + HOUR);
    const before = (await summary(from, to)) ?? 0;
    const charge = batch({ eventAt: t0, lineCount: 5 });
    const sent = await deliver(charge, meterCfg);
    expect(sent.result.status).toBe('delivered');
    expect(await summary(from, to)).toBe(before + 5);
    const credit = batch({
      kind: 'credit',
      lineCount: 5,
      amountMinor: -750,
      eventAt: t0,
      reverses: [{ key: charge.key, lineCount: 5, creditedCount: 5, deliveredAt: new Date(), action: 'meter_event' }],
    });
    const c = await deliver(credit, meterCfg);
    expect(c.planned.action).toBe('meter_event_cancel');
    expect(c.result).toEqual({ status: 'delivered', ref: `cancel:${charge.key}` });
    expect(await resend(credit, c.planned, meterCfg)).toMatchObject({ status: 'delivered' });
    expect(await summary(from, to)).toBe(before);

    // A cancel planned in time but sent after Stripe's window: refused with Stripe's reason.
    const late = batch({ eventAt: t0, lineCount: 2 });
    await deliver(late, meterCfg);
    const lateCredit = batch({
      kind: 'credit',
      lineCount: 2,
      amountMinor: -300,
      reverses: [{ key: late.key, lineCount: 2, creditedCount: 2, deliveredAt: new Date(), action: 'meter_event' }],
    });
    const p = planned(stripeAdapter.plan(lateCredit, meterCfg, { now: new Date() }));
    expect(p.action).toBe('meter_event_cancel');
    emu.setClockOffset(25 * HOUR);
    expect(await resend(lateCredit, p, meterCfg)).toMatchObject({
      status: 'refused',
      error: expect.stringMatching(/within 24 hours/),
    });
    // Planned after the window, the same credit becomes a negative invoice item.
    const afterWindow = planned(stripeAdapter.plan(lateCredit, meterCfg, { now: new Date(Date.now() + 25 * HOUR) }));
    expect(afterWindow.action).toBe('invoice_item');
    expect(await resend(lateCredit, afterWindow, meterCfg)).toMatchObject({
      status: 'delivered',
      ref: expect.stringMatching(/^ii_/),
    });
    expect(emu.invoiceItems().find((i) => i.metadata.recon_key === lateCredit.key)).toMatchObject({
      amount: -300,
      currency: 'usd',
    });
  });

  it('retries 429 with Retry-After, 500s, a dead sink and a timeout; a drop after acceptance resends as one event', async () => {
    const b = batch();
    const p = planned(stripeAdapter.plan(b, meterCfg, { now: new Date() }));
    emu.setFault({ mode: 'rate_limit', retryAfterSeconds: 7, times: 1 });
    expect(await resend(b, p, meterCfg)).toMatchObject({ status: 'retry', retryAfterMs: 7000 });
    emu.setFault({ mode: 'error500', times: 1 });
    expect(await resend(b, p, meterCfg)).toMatchObject({
      status: 'retry',
      error: expect.stringMatching(/500 api_error/),
    });
    emu.setFault({ mode: 'down', times: 1 });
    expect(await resend(b, p, meterCfg)).toMatchObject({
      status: 'retry',
      error: expect.stringMatching(/could not reach Stripe/),
    });
    expect(eventsWith(b.key)).toHaveLength(0);
    emu.setFault({ mode: 'accept_then_drop', times: 1 });
    expect(await resend(b, p, meterCfg)).toMatchObject({ status: 'retry' });
    expect(eventsWith(b.key)).toHaveLength(1);
    expect(await resend(b, p, meterCfg)).toEqual({ status: 'delivered', ref: b.key });
    expect(eventsWith(b.key)).toHaveLength(1);

    const silent = http.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const r = await resend(b, p, config(`http://127.0.0.1:${port}`), ctx({ timeoutMs: 200 }));
      expect(r).toEqual({ status: 'retry', error: 'no answer from Stripe within 200 ms' });
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it('reports a wrong key as auth without naming the key', async () => {
    const wrong = 'sk_test_wrongSecretValue5555';
    const { result } = await deliver(batch(), meterCfg, ctx({ secret: wrong }));
    expect(result.status).toBe('auth');
    const text = JSON.stringify(result);
    expect(text).not.toContain(wrong);
    expect(text).not.toContain('5555');
    expect(text).toContain('STRIPE_API_KEY');
    await expect(
      stripeAdapter.verify!(
        [{ batch: batch(), planned: { action: 'invoice_item', payload: {} } }],
        itemCfg,
        ctx({ secret: wrong }),
      ),
    ).rejects.toMatchObject({ code: 'stripe_auth_failed', message: expect.not.stringContaining('5555') });
  });

  it("refuses an invoice item for a customer Stripe does not have, with Stripe's message", async () => {
    const r = await deliver(batch(), { ...itemCfg, customer: 'cus_nobody' });
    expect(r.result).toEqual({
      status: 'refused',
      error: "Stripe 400 invalid_request_error/resource_missing (customer): No such customer: 'cus_nobody'",
    });
  });

  it('finds invoice items across pages in verify and holdings, for this tenant only', async () => {
    const ours: SinkBatch[] = [];
    for (let i = 0; i < 230; i++) {
      const b = batch({ lineCount: 1, amountMinor: 150 + i });
      ours.push(b);
      expect((await deliver(b, itemCfg)).result.status).toBe('delivered');
    }
    const theirs = batch({ tenant: 'globex' });
    await deliver(theirs, itemCfg);
    // The oldest items sit on the last page (Stripe lists newest first).
    const asked = [ours[0], ours[1], ours[150], ours[229], batch()].map((b) => ({
      batch: b,
      planned: planned(stripeAdapter.plan(b, itemCfg, { now: new Date() })),
    }));
    const found = await stripeAdapter.verify!(asked, itemCfg, ctx());
    expect([...found.keys()].sort()).toEqual([ours[0].key, ours[1].key, ours[150].key, ours[229].key].sort());
    expect(found.get(ours[0].key)).toMatchObject({ amountMinor: 150, ref: expect.stringMatching(/^ii_/) });

    const held = await stripeAdapter.holdings!(
      { tenant: 'acme', from: new Date(Date.now() - DAY), to: new Date(Date.now() + DAY), keys: [] },
      itemCfg,
      ctx(),
    );
    const keys = new Set(held.map((h) => h.key));
    for (const b of ours) expect(keys.has(b.key)).toBe(true);
    expect(keys.has(theirs.key)).toBe(false);
    expect(held.some((h) => h.key.startsWith('meter:'))).toBe(false);
  });

  it('keeps its state across a restart from the state file', async () => {
    const b = batch();
    const { planned: p } = await deliver(b, meterCfg);
    await emu.close();
    emu = await startStripeEmulator({ secret: KEY, stateFile: path.join(dir, 'state.json'), port: emu.port });
    expect(eventsWith(b.key)).toHaveLength(1);
    // fetch may first reuse a pooled connection the old server closed: that one comes back as a retry.
    let r = await resend(b, p, meterCfg);
    if (r.status === 'retry') r = await resend(b, p, meterCfg);
    expect(r).toEqual({ status: 'delivered', ref: b.key });
    expect(eventsWith(b.key)).toHaveLength(1);
  });
});

describe('the Stripe sink against stripe-mock (Stripe OpenAPI spec)', () => {
  let mock: StripeMock;
  beforeAll(async () => {
    mock = await startStripeMock({ log: (m) => console.log(m) });
  });
  afterAll(async () => {
    await mock?.stop();
  });

  it('sends only requests Stripe takes, and reads its answers', async () => {
    const meterCfg = config(mock.url, { eventName: 'test-meter-event-name' });
    const itemCfg = itemConfig(mock.url);
    const charge = batch();
    const cases: Array<[SinkBatch, StripeSinkConfig, string]> = [
      [charge, meterCfg, 'meter_event'],
      [
        batch({
          kind: 'credit',
          amountMinor: -6300,
          reverses: [
            { key: charge.key, lineCount: 42, creditedCount: 42, deliveredAt: new Date(), action: 'meter_event' },
          ],
        }),
        meterCfg,
        'meter_event_cancel',
      ],
      [batch({ kind: 'credit', lineCount: 1, amountMinor: -150 }), meterCfg, 'invoice_item'],
      [batch({ kind: 'base_fee', runId: null, lineCount: 1, amountMinor: 50000 }), meterCfg, 'invoice_item'],
      [batch(), itemCfg, 'invoice_item'],
      [batch({ kind: 'credit', lineCount: 3, amountMinor: -450, tier: 2 }), itemCfg, 'invoice_item'],
      [
        batch({ kind: 'true_up', outcomeType: null, runId: null, lineCount: 1, amountMinor: 12345 }),
        itemCfg,
        'invoice_item',
      ],
    ];
    for (const [b, c, action] of cases) {
      const { planned: p, result } = await deliver(b, c, ctx({ secret: 'sk_test_123' }));
      expect(p.action).toBe(action);
      expect(result, `${action} ${b.kind}`).toMatchObject({ status: 'delivered' });
    }
    // The check can fail: a parameter outside Stripe's spec is refused.
    const b = batch();
    const p = planned(stripeAdapter.plan(b, meterCfg, { now: new Date() }));
    const bad = { ...p, payload: { ...p.payload, params: { ...(p.payload.params as object), bogus: '1' } } };
    expect(await resend(b, bad, meterCfg, ctx({ secret: 'sk_test_123' }))).toMatchObject({
      status: 'refused',
      error: expect.stringMatching(/Request validation error/),
    });
    // The read requests are in Stripe's spec and its answers pass our schemas.
    await expect(
      stripeAdapter.verify!(
        [{ batch: b, planned: { action: 'invoice_item', payload: {} } }],
        itemCfg,
        ctx({ secret: 'sk_test_123' }),
      ),
    ).resolves.toBeInstanceOf(Map);
    const held = await stripeAdapter.holdings!(
      { tenant: 'acme', from: new Date('2026-11-01T00:00:00Z'), to: new Date('2026-12-01T00:00:00Z'), keys: [] },
      meterCfg,
      ctx({ secret: 'sk_test_123' }),
    );
    expect(held).toContainEqual(
      expect.objectContaining({ key: 'meter:test-meter-event-name', quantity: expect.any(Number) }),
    );
  });
});

describe('recon emulate stripe', () => {
  /** Starts the command, waits for its one line, and returns the URL and a stop that sends SIGINT. */
  function emulate(args: string[], env: NodeJS.ProcessEnv) {
    const child = spawn(process.execPath, [BIN, 'emulate', 'stripe', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const line = new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        stdout += b.toString();
        if (stdout.includes('\n')) resolve(stdout.split('\n')[0]);
      });
      void exited.then(() => reject(new Error(`recon emulate exited before its line: ${stdout}`)));
    });
    return {
      line,
      stop: async () => {
        child.kill('SIGINT');
        return exited;
      },
    };
  }

  it('starts seeded with a customer and a meter, prints its URL, stops on SIGINT and keeps its state', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'recon-emulate-'));
    const env = { RECON_TEST_STRIPE_KEY: KEY };
    const args = [
      '--customer',
      'cus_cli',
      '--meter',
      'cli_events',
      '--state',
      path.join(dir, 'state.json'),
      '--secret-env',
      'RECON_TEST_STRIPE_KEY',
    ];
    try {
      const first = emulate(args, env);
      const line = await first.line;
      expect(line).toMatch(
        /^stripe emulator at http:\/\/127\.0\.0\.1:\d+ \(customer cus_cli, meter cli_events \(mtr_\w+\), state .*state\.json, key from RECON_TEST_STRIPE_KEY\); Ctrl-C stops it$/,
      );
      const url = /http:\/\/127\.0\.0\.1:\d+/.exec(line)![0];
      const event = {
        event_name: 'cli_events',
        identifier: 'cli-1',
        'payload[stripe_customer_id]': 'cus_cli',
        'payload[value]': '4',
      };
      expect((await api(url, 'POST', '/v1/billing/meter_events', event)).status).toBe(200);
      expect(await first.stop()).toBe(0);

      const second = emulate(args, env);
      const url2 = /http:\/\/127\.0\.0\.1:\d+/.exec(await second.line)![0];
      // The restarted emulator remembers the identifier (and the seeds are not made twice).
      expect((await api(url2, 'POST', '/v1/billing/meter_events', event)).status).toBe(400);
      expect((await api(url2, 'GET', '/v1/billing/meters')).json.data).toHaveLength(1);
      expect(await second.stop()).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('says which variable to set when the key is missing', async () => {
    const r = await recon(['emulate', 'stripe', '--secret-env', 'RECON_TEST_UNSET_KEY'], { RECON_TEST_UNSET_KEY: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^recon: missing_option: set RECON_TEST_UNSET_KEY to the key the emulator should accept/);
    const unknown = await recon(['emulate', 'nosuch'], { STRIPE_API_KEY: 'x' });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no emulator "nosuch"/);
  });
});
