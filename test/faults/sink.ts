/**
 * The story's billing sink: every run delivers to its own Stripe emulator (invoice_items mode, so
 * every ledger kind is delivered with its amount), and ends by proving that the sink holds exactly
 * the ledger. A fault may break the emulator during a night; before the check the fault is cleared
 * and the tenant's delivery loop is left to finish what is owed, as `recon sink retry` would.
 */
import type { Client } from '@temporalio/client';
import type { Pool } from '../../src/db/pool';
import { startStripeEmulator, type StripeEmulatorHandle } from '../../src/emulators/stripe';
import { deliverTenant } from '../../src/sinks/deliver';
import { adapterFor } from '../../src/sinks/registry';
import { sinkWorkflowId, wakeSignal } from '../../workflows/sink-messages';

/** The sink's name in the contract, and the variable the worker reads its API key from. */
export const SINK = 'billing';
export const STRIPE_KEY_ENV = 'RECON_FAULTS_STRIPE_KEY';
/** A test-mode key for the run's own emulator: never a real one. */
const STRIPE_KEY = 'sk_test_faultsuite0000000000000000';

export interface SinkUnderTest {
  emulator: StripeEmulatorHandle;
  customer: string;
  /** The worker's environment additions. */
  env: Record<string, string>;
  /** The contract's `sinks`. */
  contract: Record<string, unknown>;
  /** Listeners to the emulator's request log (a fault watches for its own lines). */
  listeners: Set<(line: string) => void>;
  close(): Promise<void>;
}

export async function startSink(): Promise<SinkUnderTest> {
  const listeners = new Set<(line: string) => void>();
  const emulator = await startStripeEmulator({
    secret: STRIPE_KEY,
    log: (line) => {
      for (const l of listeners) l(line);
    },
  });
  try {
    // Stripe picks customer ids itself: create one through the API, as a person setting up would.
    const res = await fetch(`${emulator.url}/v1/customers`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${STRIPE_KEY}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ name: 'Fault suite tenant' }).toString(),
    });
    const customer = ((await res.json()) as { id?: string }).id;
    if (!res.ok || !customer) throw new Error(`the Stripe emulator did not create a customer (${res.status})`);
    return {
      emulator,
      customer,
      env: { [STRIPE_KEY_ENV]: STRIPE_KEY },
      contract: {
        [SINK]: {
          kind: 'stripe',
          mode: 'invoice_items',
          customer,
          apiKeyEnv: STRIPE_KEY_ENV,
          apiBase: emulator.url,
        },
      },
      listeners,
      close: () => emulator.close(),
    };
  } catch (err) {
    await emulator.close();
    throw err;
  }
}

export interface SinkCheck {
  /** Invoice items beyond one per batch key, plus items no batch of the ledger accounts for. */
  duplicates: number;
  /** Ledger lines the sink does not hold: no delivery row, a batch not delivered, or no item for it. */
  lost: number;
  /** Other disagreements (amounts, totals); each fails the run. */
  problems: string[];
  batches: number;
  items: number;
  /** How the last debts were settled: by the delivery loop, or a final pass of ours. */
  settledBy: string;
}

const LOOP_WAIT_MS = 8 * 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function owed(pool: Pool, tenant: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `select (select count(*) from sink_batches where tenant_id = $1 and state = 'pending')
          + (select count(*) from sink_deliveries where tenant_id = $1 and batch_id is null) as n`,
    [tenant],
  );
  return Number(rows[0].n);
}

/**
 * Clears the emulator's fault, puts every pending batch due now (`recon sink retry`), wakes the
 * tenant's delivery loop and waits for it to end. A lease left by a killed worker is waited out,
 * not broken. Only when no loop is left and something is still owed does a final pass run here.
 */
export async function settleSink(
  pool: Pool,
  client: Client,
  sink: SinkUnderTest,
  tenant: string,
  log: (m: string) => void,
): Promise<string> {
  sink.emulator.setFault({ mode: 'none' });
  // `recon sink retry`: every pending batch due now, and the loop woken. Repeated while the loop
  // runs, since an answer to a request sent before the fault was cleared may defer a batch again.
  const retryNow = () =>
    pool.query("update sink_batches set next_attempt_at = now() where tenant_id = $1 and state = 'pending'", [tenant]);
  const loop = client.workflow.getHandle(sinkWorkflowId(tenant));
  const isRunning = () =>
    loop
      .describe()
      .then((d) => d.status.name === 'RUNNING')
      .catch(() => false);
  let settledBy = (await loop.describe().catch(() => null)) ? 'the delivery loop' : 'the night';
  const t0 = Date.now();
  if (await isRunning()) {
    let ended = false;
    const result = loop.result().then(
      () => (ended = true),
      () => (ended = true),
    );
    while (!ended && Date.now() - t0 < LOOP_WAIT_MS) {
      await retryNow();
      await loop.signal(wakeSignal).catch(() => undefined);
      await Promise.race([result, sleep(5_000)]);
    }
    if (ended) settledBy = `the delivery loop (${Math.round((Date.now() - t0) / 1000)} s after the last night)`;
    else log(`the delivery loop ${sinkWorkflowId(tenant)} did not end within ${LOOP_WAIT_MS / 1000} s`);
  }
  const left = await owed(pool, tenant);
  if (left === 0) return settledBy;
  // Nothing is running that would deliver these: a final pass of our own, waiting out leases.
  log(`${left} batch(es) still owed after the loop; final delivery passes`);
  const deadline = Date.now() + 6 * 60_000;
  while ((await owed(pool, tenant)) > 0 && Date.now() < deadline) {
    await deliverTenant(
      { pool, adapterFor, env: sink.env, now: () => new Date() },
      { tenant, budgetMs: 30_000, only: [SINK] },
    );
    await pool.query("update sink_batches set next_attempt_at = now() where tenant_id = $1 and state = 'pending'", [
      tenant,
    ]);
    if ((await owed(pool, tenant)) > 0) await sleep(5_000);
  }
  return 'a final delivery pass of the suite';
}

/** Compares what the emulator holds for the tenant's customer with the ledger and its batches. */
export async function checkSink(
  pool: Pool,
  sink: SinkUnderTest,
  tenant: string,
  settledBy: string,
): Promise<SinkCheck> {
  const problems: string[] = [];
  const items = sink.emulator.invoiceItems().filter((i) => i.customer === sink.customer);
  const { rows: batches } = await pool.query<{
    batch_id: number;
    batch_key: string;
    state: string;
    line_count: number;
    amount_minor: string;
    last_error: string | null;
  }>(
    'select batch_id, batch_key, state, line_count, amount_minor, last_error from sink_batches where tenant_id = $1 and sink = $2',
    [tenant, SINK],
  );
  const byKey = new Map<string, number[]>();
  let duplicates = 0;
  for (const item of items) {
    const key = item.metadata.recon_key;
    if (!key) {
      duplicates++;
      problems.push(`invoice item ${item.id} carries no recon_key`);
      continue;
    }
    byKey.set(key, [...(byKey.get(key) ?? []), item.amount]);
  }
  const known = new Set(batches.map((b) => b.batch_key));
  for (const [key, amounts] of byKey) {
    if (amounts.length > 1) duplicates += amounts.length - 1;
    if (!known.has(key)) {
      duplicates += 1;
      problems.push(`the sink holds ${key}, which no batch of the ledger has`);
    }
  }
  let lost = 0;
  for (const b of batches) {
    const held = byKey.get(b.batch_key) ?? [];
    if (b.state === 'delivered' && held.length === 0) {
      lost += b.line_count;
      problems.push(`batch ${b.batch_id} (${b.batch_key}) is delivered in the ledger but the sink has no item`);
    }
    if (held.length && held.some((a) => a !== Number(b.amount_minor)))
      problems.push(`batch ${b.batch_key}: the sink holds ${held.join(', ')}, the batch is ${b.amount_minor}`);
    if (b.state !== 'delivered')
      problems.push(`batch ${b.batch_id} is ${b.state}${b.last_error ? `: ${b.last_error}` : ''}`);
  }
  // Ledger lines without a delivered batch: no delivery row, never batched, or batch not delivered.
  const { rows: undelivered } = await pool.query<{ n: number }>(
    `select count(*)::int as n
       from ledger_entries l
       left join sink_deliveries d on d.entry_id = l.entry_id and d.sink = $2
       left join sink_batches b on b.batch_id = d.batch_id
      where l.tenant_id = $1 and b.state is distinct from 'delivered'`,
    [tenant, SINK],
  );
  lost += undelivered[0].n;
  const { rows: total } = await pool.query<{ amount: string }>(
    'select coalesce(sum(amount_minor), 0)::bigint as amount from ledger_entries where tenant_id = $1',
    [tenant],
  );
  const atSink = items.reduce((s, i) => s + i.amount, 0);
  if (atSink !== Number(total[0].amount))
    problems.push(`the sink's invoice items sum to ${atSink}, the ledger to ${total[0].amount}`);
  return { duplicates, lost, problems, batches: batches.length, items: items.length, settledBy };
}
