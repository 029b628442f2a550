import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebhookReceiver, type WebhookReceiverHandle } from '../../src/emulators/webhook-receiver';
import { runReconciliation } from '../../src/temporal/run-client';
import { deliverTenant } from '../../src/sinks/deliver';
import { adapterFor } from '../../src/sinks/registry';
import { sinkWorkflowId, wakeSignal } from '../../workflows/sink-messages';
import { applyExample, seedSolvedTickets, startHarness, uniqueTenant, type Harness } from './harness';

const SECRET = 'whsec_' + Buffer.from('a test secret of the outbox, 32 bytes!').toString('base64');
const ENV = { RECON_IT_WEBHOOK_SECRET: SECRET };

interface Totals {
  lines: number;
  amount: number;
}

/** What the receiver took, summed over the events' line counts and amounts. */
function received(r: WebhookReceiverHandle, tenant: string): Totals & { events: number; repeats: number } {
  const events = r.state().events.filter((e) => (e.body as { data?: { tenant?: string } }).data?.tenant === tenant);
  const data = events.map((e) => (e.body as { data: { line_count: number; amount_minor: number } }).data);
  return {
    events: events.length,
    repeats: events.reduce((n, e) => n + e.repeats, 0),
    lines: data.reduce((n, d) => n + d.line_count, 0),
    amount: data.reduce((n, d) => n + d.amount_minor, 0),
  };
}

async function ledger(h: Harness, tenant: string): Promise<Totals> {
  const { rows } = await h.pool.query<{ lines: number; amount: number }>(
    'select count(*)::int as lines, coalesce(sum(amount_minor), 0)::bigint as amount from ledger_entries where tenant_id = $1',
    [tenant],
  );
  return rows[0];
}

describe('billing sinks: the outbox and the delivery engine', () => {
  let h: Harness;
  let receiver: WebhookReceiverHandle;
  let tenant: string;

  beforeAll(async () => {
    h = await startHarness({ sinkEnv: ENV });
    receiver = await startWebhookReceiver({ secret: SECRET });
    tenant = uniqueTenant('sink');
    await applyExample(h.pool, tenant, {
      sinks: { books: { kind: 'webhook', url: `${receiver.url}/hooks`, secretEnv: 'RECON_IT_WEBHOOK_SECRET' } },
    } as never);
  });

  afterAll(async () => {
    await receiver?.close();
    await h?.stop();
  });

  it('a night gives every ledger line its delivery and the receiver exactly the ledger', async () => {
    await seedSolvedTickets(h, tenant, 'n1', [
      ['T-1', '2026-03-01T10:00:00Z'],
      ['T-2', '2026-03-01T11:00:00Z'],
      ['T-3', '2026-03-01T12:00:00Z'],
    ]);
    const summary = await runReconciliation(h.client, {
      tenant,
      asOf: new Date('2026-03-06T07:00:00Z'),
      taskQueue: h.taskQueue,
    });
    const ours = await ledger(h, tenant);
    expect(ours.lines).toBe(3);
    const { rows } = await h.pool.query<{ n: number }>(
      'select count(*)::int as n from sink_deliveries where tenant_id = $1',
      [tenant],
    );
    expect(rows[0].n).toBe(ours.lines);
    expect(received(receiver, tenant)).toMatchObject({ events: 1, lines: 3, amount: ours.amount });
    expect(summary.sinks).toEqual([
      { sink: 'books', state: 'delivered', currency: 'USD', batches: 1, lines: 3, amountMinor: ours.amount },
    ]);
  });

  it('a receiver down for the night leaves the lines pending, and the loop delivers them once it is back', async () => {
    receiver.setFault({ mode: 'down' });
    await seedSolvedTickets(h, tenant, 'n2', [['T-4', '2026-03-02T10:00:00Z']]);
    const summary = await runReconciliation(h.client, {
      tenant,
      asOf: new Date('2026-03-07T07:00:00Z'),
      taskQueue: h.taskQueue,
    });
    expect(summary.sinks?.find((s) => s.state === 'pending')).toMatchObject({ lines: 1 });
    const { rows } = await h.pool.query<{ last_error: string; attempts: number }>(
      "select last_error, attempts from sink_batches where tenant_id = $1 and state = 'pending'",
      [tenant],
    );
    expect(rows[0].attempts).toBe(1);
    expect(rows[0].last_error).toMatch(/\S/);

    receiver.setFault({ mode: 'none' });
    // `recon sink retry` does this: due now, and the loop woken.
    await h.pool.query("update sink_batches set next_attempt_at = now() where tenant_id = $1 and state = 'pending'", [
      tenant,
    ]);
    await h.client.workflow.getHandle(sinkWorkflowId(tenant)).signal(wakeSignal);
    const done = await h.client.workflow.getHandle(sinkWorkflowId(tenant)).result();
    expect(done).toMatchObject({ pending: 0 });
    const ours = await ledger(h, tenant);
    expect(received(receiver, tenant)).toMatchObject({ lines: ours.lines, amount: ours.amount });
  });

  it('an answer lost after the receiver took the batch: the resend is recognised, nothing counts twice', async () => {
    receiver.setFault({ mode: 'accept_then_drop', times: 1 });
    await seedSolvedTickets(h, tenant, 'n3', [['T-5', '2026-03-03T10:00:00Z']]);
    await runReconciliation(h.client, { tenant, asOf: new Date('2026-03-08T07:00:00Z'), taskQueue: h.taskQueue });
    await h.pool.query("update sink_batches set next_attempt_at = now() where tenant_id = $1 and state = 'pending'", [
      tenant,
    ]);
    const pass = await deliverTenant(
      { pool: h.pool, adapterFor, env: ENV, now: () => new Date() },
      { tenant, budgetMs: 30_000 },
    );
    expect(pass.pending).toBe(0);
    const ours = await ledger(h, tenant);
    expect(received(receiver, tenant)).toMatchObject({ lines: ours.lines, amount: ours.amount, repeats: 1 });
  });

  it('a send older than the receiver remembers is set aside for a person, not sent blindly', async () => {
    receiver.setFault({ mode: 'error500' });
    await seedSolvedTickets(h, tenant, 'n4', [['T-6', '2026-03-04T10:00:00Z']]);
    await runReconciliation(h.client, { tenant, asOf: new Date('2026-03-09T07:00:00Z'), taskQueue: h.taskQueue });
    receiver.setFault({ mode: 'none' });
    await h.pool.query(
      `update sink_batches set first_attempt_at = now() - interval '2 days', next_attempt_at = now()
        where tenant_id = $1 and state = 'pending'`,
      [tenant],
    );
    const before = received(receiver, tenant).events;
    await deliverTenant({ pool: h.pool, adapterFor, env: ENV, now: () => new Date() }, { tenant, budgetMs: 30_000 });
    const { rows } = await h.pool.query<{ state: string; last_error: string }>(
      'select state, last_error from sink_batches where tenant_id = $1 and kind = $2 order by batch_id desc limit 1',
      [tenant, 'charge'],
    );
    expect(rows[0].state).toBe('needs_attention');
    expect(rows[0].last_error).toMatch(/recon sink retry --batch \d+/);
    expect(received(receiver, tenant).events).toBe(before);
  });

  it('a missing secret holds the sink with the variable named, and never fails the pass', async () => {
    await h.pool.query("update sink_batches set next_attempt_at = now() where tenant_id = $1 and state = 'pending'", [
      tenant,
    ]);
    const pass = await deliverTenant(
      { pool: h.pool, adapterFor, env: {}, now: () => new Date() },
      { tenant, budgetMs: 30_000 },
    );
    expect(pass.sinks[0].heldUp).toBe('RECON_IT_WEBHOOK_SECRET is not set');
  });

  it('delivery rows are never deleted, and a tenant without sinks owes none', async () => {
    await expect(h.pool.query('delete from sink_deliveries where tenant_id = $1', [tenant])).rejects.toThrow(
      /never deleted/,
    );
    const plain = uniqueTenant('nosink');
    await applyExample(h.pool, plain);
    await seedSolvedTickets(h, plain, 'p1', [['P-1', '2026-03-01T10:00:00Z']]);
    await runReconciliation(h.client, {
      tenant: plain,
      asOf: new Date('2026-03-06T07:00:00Z'),
      taskQueue: h.taskQueue,
    });
    const { rows } = await h.pool.query<{ n: number }>(
      'select count(*)::int as n from sink_deliveries where tenant_id = $1',
      [plain],
    );
    expect(rows[0].n).toBe(0);
    expect((await ledger(h, plain)).lines).toBe(1);
  });
});
