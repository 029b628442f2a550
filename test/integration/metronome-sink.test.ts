import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SinkSchema, type MetronomeSinkConfig } from '../../src/domain/sinks';
import { ReconError } from '../../src/domain/errors';
import {
  countedMetronomeEvents,
  startMetronomeEmulator,
  type MetronomeEmulatorHandle,
} from '../../src/emulators/metronome';
import { MetronomeErrorSchema, MetronomeSearchResponseSchema, metronomeAdapter } from '../../src/sinks/metronome';
import type { Planned, SinkBatch, SinkContext } from '../../src/sinks/types';
import { creditBatch, sinkBatch } from '../support/sink-batches';

// Adapter against the stateful Metronome emulator: no Temporal, no Postgres.

const TOKEN = 'mtok_test_5f1c9a7e2b';
const DAY = 24 * 3600_000;
let emu: MetronomeEmulatorHandle;
let config: MetronomeSinkConfig;

const ctx = (over: Partial<SinkContext> = {}): SinkContext => ({
  now: new Date(),
  secret: TOKEN,
  timeoutMs: 2000,
  ...over,
});

function planAll(batches: SinkBatch[], now = new Date()): Array<{ batch: SinkBatch; planned: Planned }> {
  return batches.map((batch) => {
    const p = metronomeAdapter.plan(batch, config, { now });
    if ('refuse' in p) throw new Error(p.refuse);
    return { batch, planned: p };
  });
}

/** n charge batches with distinct keys, as the engine would cut them. */
function charges(n: number, prefix = 'acme-charge'): SinkBatch[] {
  return Array.from({ length: n }, (_, i) =>
    sinkBatch({
      batchId: i + 1,
      key: `${prefix}-${i + 1}`,
      firstEntryId: i * 10 + 1,
      lastEntryId: i * 10 + 10,
      lineCount: 10,
      amountMinor: 990,
      eventAt: new Date(Date.now() - 3600_000),
    }),
  );
}

async function api(pathname: string, body: unknown, token = TOKEN): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${emu.url}${pathname}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : null };
}

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../fixtures/sinks/${name}`, import.meta.url), 'utf8'));
const keysOf = (o: unknown) => Object.keys(o as object).sort();

beforeEach(async () => {
  emu = await startMetronomeEmulator({
    secret: TOKEN,
    customers: [{ name: 'Acme', ingest_aliases: ['acme-prod'] }],
  });
  config = SinkSchema.parse({
    kind: 'metronome',
    ingestAlias: 'acme-prod',
    eventType: 'billable_outcome',
    tokenEnv: 'METRONOME_TOKEN',
    apiBase: emu.url,
  }) as MetronomeSinkConfig;
});
afterEach(async () => {
  await emu.close();
});

describe('Metronome ingest through the adapter', () => {
  it('carries 100 batches in one call, each counted once and matched to the customer by alias', async () => {
    const results = await metronomeAdapter.send(planAll(charges(100)), config, ctx());
    expect(results).toHaveLength(100);
    expect(results.every((r) => r.status === 'delivered')).toBe(true);
    const counted = countedMetronomeEvents(emu.state());
    expect(counted).toHaveLength(100);
    expect(counted[0]).toMatchObject({
      transaction_id: 'acme-charge-1',
      customer_id: 'acme-prod',
      event_type: 'billable_outcome',
      properties: { kind: 'charge', quantity: '10', amount_minor: '990' },
    });
    const found = await api('/v1/events/search', { transactionIds: ['acme-charge-1'] });
    expect((found.json as Array<{ matched_customer?: { name: string } }>)[0].matched_customer?.name).toBe('Acme');
  });

  it('refuses to send more than 100 batches in one call, and sends nothing', async () => {
    const results = await metronomeAdapter.send(planAll(charges(101)), config, ctx());
    expect(results).toHaveLength(101);
    expect(results.every((r) => r.status === 'refused')).toBe(true);
    expect(emu.state().events).toHaveLength(0);
    // Metronome itself refuses such a call in its error shape.
    const raw = await api(
      '/v1/ingest',
      planAll(charges(101)).map((b) => b.planned.payload),
    );
    expect(raw.status).toBe(400);
    expect(keysOf(MetronomeErrorSchema.parse(raw.json))).toEqual(keysOf(fixture('metronome-error-400.json')));
    expect(emu.state().events).toHaveLength(0);
  });

  it('counts a transaction id once within 34 days, and again after Metronome forgets it', async () => {
    const batch = planAll(charges(1));
    expect((await metronomeAdapter.send(batch, config, ctx()))[0].status).toBe('delivered');
    expect((await metronomeAdapter.send(batch, config, ctx()))[0].status).toBe('delivered');
    expect(countedMetronomeEvents(emu.state())).toHaveLength(1);
    expect(emu.state().events.filter((e) => e.is_duplicate)).toHaveLength(1);

    emu.setClockOffset(34 * DAY - 60_000);
    await metronomeAdapter.send(batch, config, ctx());
    expect(countedMetronomeEvents(emu.state())).toHaveLength(1);

    // The window the adapter tells the engine is the one the sink keeps.
    emu.setClockOffset(metronomeAdapter.dedupWindowMs(config) + 60_000);
    await metronomeAdapter.send(batch, config, ctx());
    expect(countedMetronomeEvents(emu.state())).toHaveLength(2);
  });

  it('counts once when the answer was lost after Metronome accepted (accept_then_drop, then resend)', async () => {
    const batches = planAll([sinkBatch({ eventAt: new Date() }), creditBatch({ eventAt: new Date() })]);
    emu.setFault({ mode: 'accept_then_drop', times: 1 });
    const first = await metronomeAdapter.send(batches, config, ctx());
    expect(first.map((r) => r.status)).toEqual(['retry', 'retry']);
    expect(countedMetronomeEvents(emu.state())).toHaveLength(2);
    const again = await metronomeAdapter.send(batches, config, ctx());
    expect(again.map((r) => r.status)).toEqual(['delivered', 'delivered']);
    expect(countedMetronomeEvents(emu.state())).toHaveLength(2);
  });

  it('waits as told on 429, retries 500 and a dropped connection, and keeps nothing meanwhile', async () => {
    const batch = planAll(charges(3));
    emu.setFault({ mode: 'rate_limit', retryAfterSeconds: 7, times: 1 });
    const limited = await metronomeAdapter.send(batch, config, ctx());
    expect(limited.map((r) => r.status)).toEqual(['retry', 'retry', 'retry']);
    expect(limited[0]).toMatchObject({ retryAfterMs: 7000 });
    emu.setFault({ mode: 'error500', times: 1 });
    expect((await metronomeAdapter.send(batch, config, ctx()))[0]).toMatchObject({ status: 'retry' });
    emu.setFault({ mode: 'down', times: 1 });
    const down = await metronomeAdapter.send(batch, config, ctx());
    expect(down[0]).toMatchObject({ status: 'retry', error: expect.stringContaining('connection failed') });
    expect(emu.state().events).toHaveLength(0);
    expect((await metronomeAdapter.send(batch, config, ctx())).every((r) => r.status === 'delivered')).toBe(true);
    expect(countedMetronomeEvents(emu.state())).toHaveLength(3);
  });

  it('says which environment variable holds a refused token, never the token', async () => {
    const wrong = 'mtok_wrong_0000000000';
    const results = await metronomeAdapter.send(planAll(charges(2)), config, ctx({ secret: wrong }));
    expect(results.map((r) => r.status)).toEqual(['auth', 'auth']);
    const error = (results[0] as { error: string }).error;
    expect(error).toContain('METRONOME_TOKEN');
    expect(error).not.toContain(wrong);
    expect(error).not.toContain(TOKEN);
    expect(emu.state().events).toHaveLength(0);
  });

  it('reports a malformed event as refused, with Metronome message', async () => {
    const [b] = planAll(charges(1));
    const bad = {
      batch: b.batch,
      planned: { ...b.planned, payload: { ...b.planned.payload, timestamp: 'yesterday' } },
    };
    const [result] = await metronomeAdapter.send([bad], config, ctx());
    expect(result).toMatchObject({ status: 'refused', error: expect.stringContaining('RFC 3339') });
  });

  it('keeps events of a customer it does not know yet, and counts them once the alias is added', async () => {
    const unknown = { ...config, ingestAlias: 'acme-eu' };
    const [b] = charges(1, 'acme-eu-charge');
    const planned = metronomeAdapter.plan(b, unknown, { now: new Date() }) as Planned;
    expect((await metronomeAdapter.send([{ batch: b, planned }], unknown, ctx()))[0].status).toBe('delivered');
    type Found = Array<{ matched_customer?: { id: string } }>;
    const before = (await api('/v1/events/search', { transactionIds: [b.key] })).json as Found;
    expect(before[0].matched_customer).toBeUndefined();
    const created = await api('/v1/customers', { name: 'Acme EU', ingest_aliases: ['acme-eu'] });
    expect(created.status).toBe(200);
    expect(keysOf((created.json as { data: unknown }).data)).toEqual(
      keysOf((fixture('metronome-customer-200.json') as { data: unknown }).data),
    );
    const after = (await api('/v1/events/search', { transactionIds: [b.key] })).json as Found;
    expect(after[0].matched_customer?.id).toBe((created.json as { data: { id: string } }).data.id);
    // An alias belongs to one customer.
    expect((await api('/v1/customers', { name: 'Other', ingest_aliases: ['acme-eu'] })).status).toBe(409);
  });

  it('answers the event search in the documented shape', async () => {
    await metronomeAdapter.send(planAll(charges(1)), config, ctx());
    const found = await api('/v1/events/search', { transactionIds: ['acme-charge-1', 'never-sent'] });
    const events = MetronomeSearchResponseSchema.parse(found.json);
    expect(events).toHaveLength(1);
    expect(keysOf(events[0])).toEqual(keysOf((fixture('metronome-search-200.json') as unknown[])[0]));
    const unauthorized = await api('/v1/events/search', { transactionIds: [] }, 'nope');
    expect(unauthorized.status).toBe(401);
    expect(keysOf(unauthorized.json)).toEqual(keysOf(fixture('metronome-error-401.json')));
  });
});

describe('Metronome holdings for reconcile', () => {
  it('reports what Metronome counts per key, doubled when a key was counted twice', async () => {
    const now = new Date();
    const charge = sinkBatch({ key: 'acme-charge-h1', eventAt: new Date(now.getTime() - DAY) });
    const credit = creditBatch({ key: 'acme-credit-h2', eventAt: new Date(now.getTime() - DAY) });
    await metronomeAdapter.send(planAll([charge, credit]), config, ctx());
    const scope = {
      tenant: 'acme',
      from: new Date(now.getTime() - 7 * DAY),
      to: now,
      keys: ['acme-charge-h1', 'acme-credit-h2', 'acme-charge-missing'],
    };
    const held = await metronomeAdapter.holdings!(scope, config, ctx());
    expect(held.map((h) => [h.key, h.quantity, h.amountMinor]).sort()).toEqual([
      ['acme-charge-h1', 12, 1188],
      ['acme-credit-h2', -2, -198],
    ]);
    // Outside the business range: not held for this range.
    const later = await metronomeAdapter.holdings!(
      { ...scope, from: now, to: new Date(now.getTime() + DAY) },
      config,
      ctx(),
    );
    expect(later).toEqual([]);

    emu.setClockOffset(35 * DAY);
    await metronomeAdapter.send(planAll([charge]), config, ctx());
    const shifted = ctx({ now: new Date(Date.now() + 35 * DAY) });
    await expect(metronomeAdapter.holdings!(scope, config, shifted)).rejects.toMatchObject({
      code: 'sink_history_unavailable',
    });
  });

  it('fails with a stable code, and without the token, when the token is refused', async () => {
    const scope = { tenant: 'acme', from: new Date(Date.now() - DAY), to: new Date(), keys: ['x'] };
    const err = (await metronomeAdapter.holdings!(scope, config, ctx({ secret: 'mtok_bad_1234' })).catch(
      (e: unknown) => e,
    )) as ReconError;
    expect(err).toBeInstanceOf(ReconError);
    expect(err.code).toBe('sink_auth_failed');
    expect(err.message).toContain('METRONOME_TOKEN');
    expect(err.message).not.toContain('mtok_bad_1234');
  });
});

describe('the Metronome emulator control endpoints', () => {
  it('take faults and the clock over HTTP, and show a summary beside the state', async () => {
    const control = (p: string, body: unknown) =>
      fetch(`${emu.url}/_emulator/${p}`, { method: 'POST', body: JSON.stringify(body) }).then((r) => r.status);
    expect(await control('fault', { mode: 'error500', times: 1 })).toBe(200);
    expect(await control('fault', { mode: 'melt' })).toBe(400);
    const batch = planAll(charges(2));
    expect((await metronomeAdapter.send(batch, config, ctx()))[0].status).toBe('retry');
    await metronomeAdapter.send(batch, config, ctx());
    await metronomeAdapter.send(batch, config, ctx());
    expect(await control('clock', { offsetMs: 40 * DAY })).toBe(200);
    await metronomeAdapter.send(batch, config, ctx());
    const state = (await (await fetch(`${emu.url}/_emulator/state`)).json()) as {
      clockOffsetMs: number;
      summary: Record<string, number>;
    };
    expect(state.clockOffsetMs).toBe(40 * DAY);
    expect(state.summary).toEqual({ customers: 1, events: 6, counted: 4, duplicates: 2 });
  });
});

describe('the Metronome emulator state file', () => {
  it('keeps events and the dedup memory across a restart', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'metronome-emu-'));
    try {
      const stateFile = path.join(dir, 'state.json');
      await emu.close();
      emu = await startMetronomeEmulator({
        secret: TOKEN,
        stateFile,
        customers: [{ name: 'Acme', ingest_aliases: ['acme-prod'] }],
      });
      config = { ...config, apiBase: emu.url };
      const batch = planAll(charges(2));
      await metronomeAdapter.send(batch, config, ctx());
      await emu.close();
      emu = await startMetronomeEmulator({
        secret: TOKEN,
        stateFile,
        customers: [{ name: 'Acme', ingest_aliases: ['acme-prod'] }],
      });
      config = { ...config, apiBase: emu.url };
      expect(emu.state().customers).toHaveLength(1);
      await metronomeAdapter.send(batch, config, ctx());
      expect(countedMetronomeEvents(emu.state())).toHaveLength(2);
      expect(emu.state().events).toHaveLength(4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
