import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Contract } from '../../src/domain/contract';
import { billingPeriodOf } from '../../src/domain/periods';
import { startStripeEmulator, type StripeEmulatorHandle } from '../../src/emulators/stripe';
import { startWebhookReceiver, type WebhookReceiverHandle } from '../../src/emulators/webhook-receiver';
import { applyExample, reconEnv, seedSolvedTickets, startHarness, uniqueTenant, type Harness } from './harness';
import { recon } from '../support/recon-cli';

// `recon sink status | retry | reconcile`, `outcome show` and `export --with-delivery`, run as a
// person runs them, against a worker delivering to a signature-verifying webhook receiver.

const SECRET = 'whsec_' + Buffer.from('a-secret-of-thirty-two-bytes-ok!').toString('base64');
const WRONG = 'whsec_' + Buffer.from('not-the-secret-the-receiver-has').toString('base64');
const SINK = 'ledger_hook';

interface StateJson {
  lines: number;
  batches: number;
  unbatched?: number;
  amounts: Array<{ currency: string; amount_minor: number }>;
}
interface StatusJson {
  sinks: Array<{
    sink: string;
    kind: string;
    states: Record<'delivered' | 'pending' | 'failed' | 'needs_attention' | 'skipped', StateJson>;
    next_attempt_at: string | null;
    waiting_because: string | null;
  }>;
  attention: Array<{ batch_id: number; key: string; state: string; last_error: string | null }>;
}

describe('recon sink: status, retry and reconcile from the command line', () => {
  let h: Harness;
  let env: NodeJS.ProcessEnv;
  let receiver: WebhookReceiverHandle;
  const sinkEnv: Record<string, string | undefined> = { HOOK_SECRET: SECRET };
  const tenant = uniqueTenant('sinkcli');
  const bare = uniqueTenant('nosink');

  const status = async (period = '2026-03'): Promise<StatusJson> => {
    const r = await recon(['--json', 'sink', 'status', '--tenant', tenant, '--period', period], env);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as StatusJson;
  };
  const night = async (asOf: string) => {
    const r = await recon(['run', '--tenant', tenant, '--as-of', asOf], env);
    expect(r.code, r.stderr).toBe(0);
  };
  const ledgerLines = async () =>
    Number(
      (await h.pool.query<{ n: string }>('select count(*) as n from ledger_entries where tenant_id = $1', [tenant]))
        .rows[0].n,
    );

  beforeAll(async () => {
    receiver = await startWebhookReceiver({ secret: SECRET });
    h = await startHarness({ sinkEnv });
    env = reconEnv(h);
    await applyExample(h.pool, tenant, {
      sinks: {
        [SINK]: { kind: 'webhook', url: `${receiver.url}/hooks/billing`, secretEnv: 'HOOK_SECRET' },
      } as unknown as Contract['sinks'],
    });
    await applyExample(h.pool, bare);
  });
  afterAll(async () => {
    await h?.stop();
    await receiver?.close();
  });

  it('after a night, every ledger line is delivered, and the receiver holds each batch once', async () => {
    await seedSolvedTickets(h, tenant, 'n1', [
      ['T-1', '2026-03-02T10:00:00Z'],
      ['T-2', '2026-03-02T11:00:00Z'],
      ['T-3', '2026-03-02T12:00:00Z'],
    ]);
    await night('2026-03-06T07:00:00Z');
    const s = await status();
    expect(s.sinks).toHaveLength(1);
    const [hook] = s.sinks;
    expect(hook).toMatchObject({ sink: SINK, kind: 'webhook' });
    expect(hook.states.delivered.lines).toBe(await ledgerLines());
    expect(hook.states.delivered).toMatchObject({
      lines: 3,
      batches: 1,
      amounts: [{ currency: 'USD', amount_minor: 297 }],
    });
    expect(hook.states.pending).toMatchObject({ lines: 0, batches: 0 });
    expect(receiver.state().events.map((e) => e.type)).toEqual(['ledger.charges']);

    const text = await recon(['sink', 'status', '--tenant', tenant], env);
    expect(text.stdout).toMatch(/ledger_hook \(webhook\)\n\s+delivered\s+3 lines\s+1 batch\s+2\.97 USD/);
  });

  it('a receiver that is down leaves the night pending with the reason; sink retry delivers once it is back', async () => {
    receiver.setFault({ mode: 'down' });
    await seedSolvedTickets(h, tenant, 'n2', [
      ['T-4', '2026-03-05T10:00:00Z'],
      ['T-5', '2026-03-05T11:00:00Z'],
    ]);
    await night('2026-03-09T07:00:00Z');
    const down = (await status()).sinks[0];
    expect(down.states.pending).toMatchObject({ lines: 2, batches: 1 });
    expect(down.states.delivered.lines).toBe(3);
    expect(down.waiting_because).toMatch(/webhook receiver/);
    expect(down.next_attempt_at).not.toBeNull();

    // Retried while still down: the loop tries at once, then waits again, saying what holds it up.
    const early = await recon(['sink', 'retry', '--tenant', tenant], env);
    expect(early.code, early.stderr).toBe(0);
    expect(early.stdout).toMatch(/^delivery loop: waiting until \S+; held up by ledger_hook: webhook receiver/m);

    receiver.setFault({ mode: 'none' });
    const r = await recon(['sink', 'retry', '--tenant', tenant], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/delivery loop: finished, nothing left to send/);
    expect(r.stdout).toMatch(/delivered\s+5 lines\s+2 batches\s+4\.95 USD/);
    const back = (await status()).sinks[0];
    expect(back.states.delivered.lines).toBe(await ledgerLines());
    expect(back.states.pending.lines).toBe(0);
    expect(receiver.state().events).toHaveLength(2);
  });

  it('a refused batch is failed and listed; retry after the fix delivers it', async () => {
    sinkEnv.HOOK_SECRET = WRONG;
    await seedSolvedTickets(h, tenant, 'n3', [['T-6', '2026-03-08T10:00:00Z']]);
    await night('2026-03-12T07:00:00Z');
    const s = await status();
    expect(s.sinks[0].states.failed).toMatchObject({ lines: 1, batches: 1 });
    expect(s.attention).toHaveLength(1);
    expect(s.attention[0]).toMatchObject({ state: 'failed', last_error: expect.stringMatching(/answered 400/) });
    const text = await recon(['sink', 'status', '--tenant', tenant, '--period', '2026-03'], env);
    expect(text.stdout).toContain(
      `batch ${s.attention[0].batch_id} ${s.attention[0].key} charge 1 line 0.99 USD failed:`,
    );

    sinkEnv.HOOK_SECRET = SECRET;
    const r = await recon(['--json', 'sink', 'retry', '--tenant', tenant, '--sink', SINK], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { batches: unknown[]; loop: { state: string } };
    expect(out.batches).toEqual([
      expect.objectContaining({ batch_id: s.attention[0].batch_id, was: 'failed', action: 'requeue' }),
    ]);
    expect(out.loop.state).toBe('finished');
    const after = (await status()).sinks[0];
    expect(after.states.failed.lines).toBe(0);
    expect(after.states.delivered.lines).toBe(await ledgerLines());
  });

  it('reconcile: zero differences exits 0; a webhook is compared on our own records', async () => {
    const r = await recon(['sink', 'reconcile', '--tenant', tenant, '--period', '2026-03'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ledger_hook \(webhook\): 3 batches of ours; webhook has no read API/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('0 differences');
  });

  it("a batch set aside past the receiver's memory is a difference until a person resends it", async () => {
    receiver.setFault({ mode: 'down' });
    await seedSolvedTickets(h, tenant, 'n4', [['T-7', '2026-03-11T10:00:00Z']]);
    await night('2026-03-15T07:00:00Z');
    // Two days pass while the receiver is down: longer than the 24 hours it remembers ids.
    await h.pool.query(
      `update sink_batches set first_attempt_at = first_attempt_at - interval '2 days'
        where tenant_id = $1 and state = 'pending'`,
      [tenant],
    );
    receiver.setFault({ mode: 'none' });
    const retried = await recon(['sink', 'retry', '--tenant', tenant], env);
    expect(retried.code, retried.stderr).toBe(0);
    const s = await status();
    expect(s.sinks[0].states.needs_attention).toMatchObject({ lines: 1, batches: 1 });
    const aside = s.attention[0];
    expect(aside.state).toBe('needs_attention');
    expect(receiver.state().events).toHaveLength(3);

    const diff = await recon(['sink', 'reconcile', '--tenant', tenant, '--period', '2026-03'], env);
    expect(diff.code).toBe(1);
    expect(diff.stderr).toMatch(/^recon: sink_differences: 1 difference between the ledger/);
    expect(diff.stdout).toMatch(new RegExp(`needs_attention +${aside.key} +needs_attention charge 1 line, 0\\.99 USD`));
    expect(diff.stdout.trim().split('\n').at(-1)).toBe('1 difference');
    const json = await recon(['--json', 'sink', 'reconcile', '--tenant', tenant, '--period', '2026-03'], env);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      count: 1,
      differences: [{ kind: 'needs_attention', key: aside.key }],
    });

    const plain = await recon(['sink', 'retry', '--tenant', tenant, '--batch', String(aside.batch_id)], env);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(
      /^recon: needs_person: batch \d+ needs attention: .*--resend .*--mark-delivered --note/,
    );
    const noNote = await recon(
      ['sink', 'retry', '--tenant', tenant, '--batch', String(aside.batch_id), '--mark-delivered'],
      env,
    );
    expect(noNote.code).toBe(2);
    expect(noNote.stderr).toMatch(/^recon: bad_input: --mark-delivered: needs --note/);

    const resent = await recon(
      [
        'sink',
        'retry',
        '--tenant',
        tenant,
        '--batch',
        String(aside.batch_id),
        '--resend',
        '--note',
        'not in the receiver log',
        '--actor',
        'sam',
      ],
      env,
    );
    expect(resent.code, resent.stderr).toBe(0);
    expect(resent.stdout).toMatch(/1 set-aside batch to be sent again as new/);
    const { rows } = await h.pool.query<{ state: string; resolution: string }>(
      'select state, resolution from sink_batches where batch_id = $1',
      [aside.batch_id],
    );
    expect(rows[0].state).toBe('delivered');
    expect(rows[0].resolution).toMatch(/resent by sam at .*: not in the receiver log/);
    expect(receiver.state().events).toHaveLength(4);

    const clean = await recon(['sink', 'reconcile', '--tenant', tenant, '--period', '2026-03', '--sink', SINK], env);
    expect(clean.code, clean.stdout + clean.stderr).toBe(0);
    expect(clean.stdout.trim().split('\n').at(-1)).toBe('0 differences');
  });

  it("outcome show names each line's delivery; export --with-delivery adds a column per sink", async () => {
    const show = await recon(['outcome', 'show', '--tenant', tenant, '--subject', 'T-1'], env);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(
      /entry \d+ charge 0\.99 USD .*\n {4}to ledger_hook: delivered in batch \d+ \(recon_ch_\d+_\d+_[0-9a-f]{10}\) at 20/,
    );
    const json = JSON.parse(
      (await recon(['--json', 'outcome', 'show', '--tenant', tenant, '--subject', 'T-1'], env)).stdout,
    ) as { ledger: Array<{ deliveries: unknown[] }> };
    expect(json.ledger[0].deliveries).toEqual([
      expect.objectContaining({ sink: SINK, state: 'delivered', batch_key: expect.stringMatching(/^recon_ch_/) }),
    ]);

    const file = path.join(h.dir, 'with-delivery.csv');
    const r = await recon(['export', '--tenant', tenant, '--period', '2026-03', '--with-delivery', '--out', file], env);
    expect(r.code, r.stderr).toBe(0);
    const [header, ...rows] = (await readFile(file, 'utf8')).trim().split('\r\n');
    expect(header.split(',').at(-1)).toBe('delivery_ledger_hook');
    expect(rows).toHaveLength(await ledgerLines());
    expect(rows.every((row) => row.endsWith(',delivered'))).toBe(true);
    const plain = path.join(h.dir, 'plain.csv');
    await recon(['export', '--tenant', tenant, '--period', '2026-03', '--out', plain], env);
    expect(await readFile(plain, 'utf8')).not.toContain('delivery_');
  });

  it('a tenant whose contract names no sink is told so, and how to add one', async () => {
    const r = await recon(['sink', 'status', '--tenant', bare], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toMatch(/names no sink.*"sinks" in the contract.*recon contract apply/);
    for (const verb of [['retry'], ['reconcile', '--period', '2026-03']]) {
      const other = await recon(['sink', ...verb, '--tenant', bare], env);
      expect(other.code, other.stderr).toBe(0);
      expect(other.stdout).toMatch(/names no sink/);
    }
    const unknown = await recon(['sink', 'retry', '--tenant', tenant, '--sink', 'stripe'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /^recon: unknown_sink: tenant \S+ has no sink "stripe"; its contract names ledger_hook/,
    );
  });
});

describe('recon sink reconcile against a sink with a read API: a Stripe meter', () => {
  const KEY = 'sk_test_reconcileKey4242';
  const DAY = 86_400_000;
  let h: Harness;
  let env: NodeJS.ProcessEnv;
  let stripe: StripeEmulatorHandle;
  const tenant = uniqueTenant('sinkstripe');
  // Stripe takes meter events of the last 35 days only: this night is yesterday.
  const minute = (ms: number) => new Date(Math.floor((Date.now() + ms) / 60_000) * 60_000).toISOString();
  const asOf = minute(-DAY);
  const period = billingPeriodOf(new Date(asOf), 'America/New_York');

  beforeAll(async () => {
    stripe = await startStripeEmulator({ secret: KEY, customers: ['cus_recon'], meters: ['resolved_ticket'] });
    h = await startHarness({ sinkEnv: { STRIPE_KEY: KEY } });
    env = reconEnv(h);
    await applyExample(h.pool, tenant, {
      sinks: {
        usage: {
          kind: 'stripe',
          mode: 'meter_events',
          customer: 'cus_recon',
          eventName: 'resolved_ticket',
          apiKeyEnv: 'STRIPE_KEY',
          apiBase: stripe.url,
        },
      } as unknown as Contract['sinks'],
    });
  });
  afterAll(async () => {
    await h?.stop();
    await stripe?.close();
  });

  it('finds no difference after a night, and the usage someone else adds to the meter', async () => {
    await seedSolvedTickets(h, tenant, 'n1', [
      ['S-1', minute(-5 * DAY)],
      ['S-2', minute(-5 * DAY + 60_000)],
    ]);
    const run = await recon(['run', '--tenant', tenant, '--as-of', asOf], env);
    expect(run.code, run.stderr).toBe(0);
    expect(stripe.meterEvents()).toHaveLength(1);

    const clean = await recon(['--json', 'sink', 'reconcile', '--tenant', tenant, '--period', period], env);
    expect(clean.code, clean.stdout + clean.stderr).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({
      count: 0,
      sinks: [{ sink: 'usage', kind: 'stripe', read_api: true, batches: 1, holdings: 1 }],
    });

    // Another integration meters usage for the same customer: Stripe now holds more than we sent.
    const res = await fetch(`${stripe.url}/v1/billing/meter_events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        event_name: 'resolved_ticket',
        identifier: 'someone-else-1',
        timestamp: String(Math.floor(Date.parse(asOf) / 1000)),
        'payload[stripe_customer_id]': 'cus_recon',
        'payload[value]': '5',
      }).toString(),
    });
    expect(res.status).toBe(200);
    const diff = await recon(['sink', 'reconcile', '--tenant', tenant, '--period', period], env);
    expect(diff.code).toBe(1);
    expect(diff.stdout).toMatch(/total_differs +meter:resolved_ticket +2 \(1 delivered events less 0 cancelled\) +7/);
    expect(diff.stderr).toMatch(/^recon: sink_differences: 1 difference/);
  });
});
