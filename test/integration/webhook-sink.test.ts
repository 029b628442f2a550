import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SinkSchema, type WebhookSinkConfig } from '../../src/domain/sinks';
import { startWebhookReceiver, type WebhookReceiverHandle } from '../../src/emulators/webhook-receiver';
import type { Planned, SinkBatch, SinkContext } from '../../src/sinks/types';
import { canonicalJson, webhookAdapter } from '../../src/sinks/webhook';
import { creditBatch, sinkBatch } from '../support/sink-batches';

// Adapter against the signature-verifying receiver: no Temporal, no Postgres.

const SECRET = 'whsec_' + Buffer.from('a-secret-of-thirty-two-bytes-ok!').toString('base64');
const HOUR = 3600_000;
let receiver: WebhookReceiverHandle;
let config: WebhookSinkConfig;

const ctx = (over: Partial<SinkContext> = {}): SinkContext => ({
  now: new Date(),
  secret: SECRET,
  timeoutMs: 2000,
  ...over,
});

function planOne(batch: SinkBatch): Array<{ batch: SinkBatch; planned: Planned }> {
  const p = webhookAdapter.plan(batch, config, { now: new Date() });
  if ('refuse' in p) throw new Error(p.refuse);
  return [{ batch, planned: p }];
}

beforeEach(async () => {
  receiver = await startWebhookReceiver({ secret: SECRET, dedupWindowMs: HOUR });
  config = SinkSchema.parse({
    kind: 'webhook',
    url: `${receiver.url}/hooks/ledger`,
    secretEnv: 'LEDGER_WEBHOOK_SECRET',
    dedupWindowHours: 1,
  }) as WebhookSinkConfig;
});
afterEach(async () => {
  await receiver.close();
});

describe('signed webhooks through the adapter', () => {
  it('delivers a batch the receiver verifies, stores and can read back', async () => {
    const one = planOne(sinkBatch());
    expect(await webhookAdapter.send(one, config, ctx())).toEqual([{ status: 'delivered' }]);
    const [event] = receiver.state().events;
    expect(event).toMatchObject({
      id: 'acme-charge-1001-1012',
      path: '/hooks/ledger',
      type: 'ledger.charges',
      repeats: 0,
    });
    expect(event.body).toEqual(one[0].planned.payload);
    const control = (await (await fetch(`${receiver.url}/_emulator/state`)).json()) as {
      summary: Record<string, number>;
      state: { events: unknown[] };
    };
    expect(control.state.events).toHaveLength(1);
    expect(control.summary).toEqual({ events: 1, repeats: 0, rejections: 0 });
  });

  it('sends the same bytes on every resend, and the receiver takes the id once', async () => {
    const one = planOne(creditBatch());
    await webhookAdapter.send(one, config, ctx());
    // A resend minutes later, from a payload that went through jsonb (keys reordered).
    const reordered = JSON.parse(
      JSON.stringify({
        data: one[0].planned.payload.data,
        type: one[0].planned.payload.type,
        timestamp: one[0].planned.payload.timestamp,
      }),
    ) as Record<string, unknown>;
    const again = [{ batch: one[0].batch, planned: { action: 'webhook', payload: reordered } }];
    expect(await webhookAdapter.send(again, config, ctx({ now: new Date(Date.now() + 120_000) }))).toEqual([
      { status: 'delivered' },
    ]);
    const events = receiver.state().events;
    expect(events).toHaveLength(1);
    expect(events[0].repeats).toBe(1);
    expect(events[0].repeatsWithOtherBody).toBe(0);
    expect(canonicalJson(events[0].body)).toBe(canonicalJson(one[0].planned.payload));
    expect(events[0].body).toMatchObject({ type: 'ledger.credits', data: { references: ['acme-charge-1001-1012'] } });
  });

  it('is refused with a wrong secret, and the error names the variable, not the secret', async () => {
    const wrong = 'whsec_' + Buffer.alloc(32, 9).toString('base64');
    const [result] = await webhookAdapter.send(planOne(sinkBatch()), config, ctx({ secret: wrong }));
    expect(result).toMatchObject({ status: 'refused' });
    const error = (result as { error: string }).error;
    expect(error).toContain('LEDGER_WEBHOOK_SECRET');
    expect(error).not.toContain(wrong);
    expect(receiver.state().events).toEqual([]);
    expect(receiver.state().rejections).toEqual([expect.objectContaining({ reason: 'bad_signature' })]);
  });

  it('is refused when the attempt is timestamped outside five minutes', async () => {
    const [old] = await webhookAdapter.send(
      planOne(sinkBatch()),
      config,
      ctx({ now: new Date(Date.now() - 6 * 60_000) }),
    );
    expect(old).toMatchObject({ status: 'refused' });
    const [ahead] = await webhookAdapter.send(
      planOne(sinkBatch()),
      config,
      ctx({ now: new Date(Date.now() + 6 * 60_000) }),
    );
    expect(ahead).toMatchObject({ status: 'refused' });
    expect(receiver.state().rejections.map((r) => r.reason)).toEqual(['timestamp_too_old', 'timestamp_too_new']);
    expect(receiver.state().events).toEqual([]);
  });

  it('stores one event when the answer was lost after the receiver took it', async () => {
    receiver.setFault({ mode: 'accept_then_drop', times: 1 });
    const one = planOne(sinkBatch());
    expect((await webhookAdapter.send(one, config, ctx()))[0].status).toBe('retry');
    expect((await webhookAdapter.send(one, config, ctx()))[0].status).toBe('delivered');
    expect(receiver.state().events).toHaveLength(1);
    expect(receiver.state().events[0].repeats).toBe(1);
  });

  it('waits as told on 429, retries 500 and a receiver that is down', async () => {
    const one = planOne(sinkBatch());
    receiver.setFault({ mode: 'rate_limit', retryAfterSeconds: 30, times: 1 });
    expect((await webhookAdapter.send(one, config, ctx()))[0]).toEqual(
      expect.objectContaining({ status: 'retry', retryAfterMs: 30_000 }),
    );
    receiver.setFault({ mode: 'error500', times: 1 });
    expect((await webhookAdapter.send(one, config, ctx()))[0].status).toBe('retry');
    receiver.setFault({ mode: 'down', times: 1 });
    expect((await webhookAdapter.send(one, config, ctx()))[0].status).toBe('retry');
    expect(receiver.state().events).toEqual([]);
    expect((await webhookAdapter.send(one, config, ctx()))[0].status).toBe('delivered');
  });

  it('is taken twice once the receiver has forgotten the id (why old sends are never resent blindly)', async () => {
    const one = planOne(sinkBatch());
    await webhookAdapter.send(one, config, ctx());
    receiver.setClockOffset(webhookAdapter.dedupWindowMs(config) + 60_000);
    const later = ctx({ now: new Date(Date.now() + webhookAdapter.dedupWindowMs(config) + 60_000) });
    expect((await webhookAdapter.send(one, config, later))[0].status).toBe('delivered');
    expect(receiver.state().events).toHaveLength(2);
  });

  it('refuses more than one batch a call, and a secret that is not a Standard Webhooks secret', async () => {
    const two = [...planOne(sinkBatch()), ...planOne(creditBatch())];
    expect((await webhookAdapter.send(two, config, ctx())).map((r) => r.status)).toEqual(['refused', 'refused']);
    const [bad] = await webhookAdapter.send(planOne(sinkBatch()), config, ctx({ secret: 'hunter2' }));
    expect(bad).toMatchObject({ status: 'auth', error: expect.stringContaining('LEDGER_WEBHOOK_SECRET') });
    expect((bad as { error: string }).error).not.toContain('hunter2');
    expect(receiver.state().events).toEqual([]);
  });
});

describe('what a receiver answers, per the Standard Webhooks status rules', () => {
  let server: Server;
  let answer: { status: number; headers?: Record<string, string> } | null;
  beforeEach(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (!answer) return; // never answers: the sender's deadline decides
        res.writeHead(answer.status, answer.headers);
        res.end(`{"error":"status ${answer.status}"}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('stops the sink on 410 Gone, 401 and a redirect; refuses 409; retries 502 and 504', async () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const local = { ...config, url };
    const statusFor = async (status: number, headers?: Record<string, string>) => {
      answer = { status, headers };
      return (await webhookAdapter.send(planOne(sinkBatch()), local, ctx()))[0];
    };
    expect((await statusFor(410)).status).toBe('auth');
    expect((await statusFor(401)).status).toBe('auth');
    expect(await statusFor(308, { location: 'https://elsewhere.example.com/hook' })).toMatchObject({
      status: 'auth',
      error: expect.stringContaining('elsewhere.example.com'),
    });
    expect((await statusFor(409)).status).toBe('refused');
    expect((await statusFor(502)).status).toBe('retry');
    expect(await statusFor(503, { 'retry-after': '12' })).toMatchObject({ status: 'retry', retryAfterMs: 12_000 });
    expect((await statusFor(504)).status).toBe('retry');
    expect((await statusFor(204)).status).toBe('delivered');
  });

  it('retries when the receiver does not answer before the deadline', async () => {
    answer = null;
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const [result] = await webhookAdapter.send(planOne(sinkBatch()), { ...config, url }, ctx({ timeoutMs: 200 }));
    expect(result).toEqual({ status: 'retry', error: expect.stringContaining('no answer within') });
  });
});
