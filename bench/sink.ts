import type { Pool } from '../src/db/pool';
import { startStripeEmulator, type StripeEmulatorHandle } from '../src/emulators/stripe';
import type { SinkConfig } from '../src/domain/sinks';

/**
 * `--sink stripe`: the night also delivers to a local Stripe emulator. Meter events by default
 * (one event per run, type and tier carries the count), invoice items with `--sink-mode`.
 */

export const BENCH_STRIPE_KEY_ENV = 'RECON_BENCH_STRIPE_KEY';
const KEY = 'sk_test_bench';
const CUSTOMER = 'cus_bench';
const EVENT = 'resolved_ticket';

export interface BenchSink {
  emulator: StripeEmulatorHandle;
  config: SinkConfig;
  env: Record<string, string>;
}

export async function startBenchSink(mode: 'meter_events' | 'invoice_items'): Promise<BenchSink> {
  const emulator = await startStripeEmulator({ secret: KEY, customers: [CUSTOMER], meters: [EVENT] });
  const common = {
    kind: 'stripe' as const,
    customer: CUSTOMER,
    apiKeyEnv: BENCH_STRIPE_KEY_ENV,
    apiBase: emulator.url,
  };
  const config: SinkConfig =
    mode === 'meter_events'
      ? { ...common, mode, eventName: EVENT, periodLines: 'invoice_items', concurrency: 4 }
      : { ...common, mode, concurrency: 4 };
  return { emulator, config, env: { [BENCH_STRIPE_KEY_ENV]: KEY } };
}

export interface SinkFigures {
  lines: number;
  batches: number;
  calls: number;
  linesPerCall: number;
  deliverySeconds: number;
  /** Lines not delivered when the night ended. */
  undelivered: number;
  /** The emulator holds what the ledger says: charges counted once, amounts equal. */
  agrees: boolean;
  held: string;
}

/** What the night's delivery did, from the outbox's own records, checked against the emulator. */
/** `since`: when the measured night began; lines seeded before it (an earlier month) owe the sink nothing. */
export async function measureSink(pool: Pool, tenant: string, sink: BenchSink, since: Date): Promise<SinkFigures> {
  const {
    rows: [b],
  } = await pool.query<{ lines: number; batches: number; calls: number; seconds: number; undelivered: number }>(
    `select coalesce(sum(line_count), 0)::int as lines, count(*)::int as batches, coalesce(sum(attempts), 0)::int as calls,
            coalesce(extract(epoch from max(delivered_at) - min(created_at)), 0)::float8 as seconds,
            coalesce(sum(line_count) filter (where state <> 'delivered'), 0)::int as undelivered
       from sink_batches where tenant_id = $1`,
    [tenant],
  );
  const {
    rows: [l],
  } = await pool.query<{ charges: number; amount: number }>(
    `select count(*) filter (where kind = 'charge')::int as charges, coalesce(sum(amount_minor), 0)::bigint as amount
       from ledger_entries where tenant_id = $1 and created_at >= $2`,
    [tenant, since],
  );
  let agrees: boolean;
  let held: string;
  if (sink.config.kind === 'stripe' && sink.config.mode === 'meter_events') {
    const counted = sink.emulator
      .meterEvents()
      .filter((e) => e.cancelledAt === null)
      .reduce((n, e) => n + e.value, 0);
    agrees = counted === l.charges;
    held = `${sink.emulator.meterEvents().length} meter events counting ${counted} outcomes (ledger: ${l.charges} charges)`;
  } else {
    const total = sink.emulator.invoiceItems().reduce((n, i) => n + i.amount, 0);
    agrees = total === Number(l.amount);
    held = `${sink.emulator.invoiceItems().length} invoice items totalling ${total} (ledger: ${l.amount})`;
  }
  return {
    lines: b.lines,
    batches: b.batches,
    calls: b.calls,
    linesPerCall: b.calls ? b.lines / b.calls : 0,
    deliverySeconds: b.seconds,
    undelivered: b.undelivered,
    agrees,
    held,
  };
}

export function formatSinkFigures(f: SinkFigures): string {
  return [
    `sink            ${f.calls} calls for ${f.lines.toLocaleString('en-US')} lines in ${f.batches} batches (${Math.round(f.linesPerCall).toLocaleString('en-US')} lines per call), delivered in ${f.deliverySeconds.toFixed(2)} s of the night; ${f.undelivered} undelivered`,
    `                emulator holds ${f.held}: ${f.agrees ? 'agrees with the ledger' : 'DIFFERS from the ledger'}`,
  ].join('\n');
}
