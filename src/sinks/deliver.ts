import type { Pool } from '../db/pool';
import { sinkSecretEnv, type SinkConfig } from '../domain/sinks';
import { oneLine } from '../domain/errors';
import {
  formBatches,
  loadTenantSinks,
  reversedBatches,
  toSinkBatch,
  type BatchRow,
  type ReversedRow,
  type TenantSink,
} from './batches';
import { nextAttemptDelayMs, isPastDedupWindow } from './policy';
import type { Planned, SendResult, SinkAdapter, SinkBatch } from './types';

/**
 * One delivery pass over a tenant's sinks: group owed lines into batches, then send what is due,
 * recording each attempt before the call and its answer after it. A sink that is down, limited or
 * misconfigured costs the pass one call: its batches wait with a reason and a time to try again,
 * and nothing here throws for it (only the database can fail a pass, and Temporal retries that).
 */

export type AdapterFor = (config: SinkConfig) => SinkAdapter<SinkConfig>;

export interface DeliverDeps {
  pool: Pool;
  adapterFor: AdapterFor;
  /** Where secrets come from: the worker's environment. */
  env: Record<string, string | undefined>;
  /** The wall clock: sinks' windows are real time, not business time. */
  now: () => Date;
  heartbeat?: () => void;
  /** Per-request timeout. */
  timeoutMs?: number;
}

export interface SinkPass {
  sink: string;
  kind: SinkConfig['kind'];
  formed: number;
  calls: number;
  delivered: number;
  deferred: number;
  failed: number;
  needsAttention: number;
  /** The sink's last answer when it held this pass up, e.g. "429: retry after 30 s". */
  heldUp: string | null;
}

export interface DeliveryPass {
  sinks: SinkPass[];
  /** False when the budget ran out with work due: call again. */
  done: boolean;
  /** Batches still owed on every sink, and when the earliest of them is due. */
  pending: number;
  nextDueAt: string | null;
}

const FORM_CHUNK = 100_000;
/**
 * A pass claims one wave of calls at a time (concurrency × batches per call), so a lease covers
 * one wave: at most a request timeout, plus recording. A worker killed mid-wave holds its batches
 * no longer than this.
 */
const LEASE = "interval '2 minutes'";
/** Retry-After up to this long is waited out within the pass; longer waits are the retry loop's, durable. */
const SHORT_WAIT_MS = 2_000;

export async function deliverTenant(
  deps: DeliverDeps,
  p: { tenant: string; budgetMs: number; only?: string[] },
): Promise<DeliveryPass> {
  const started = Date.now();
  const overBudget = () => Date.now() - started > p.budgetMs;
  const sinks = (await loadTenantSinks(deps.pool, p.tenant)).filter((s) => !p.only || p.only.includes(s.name));
  const passes: SinkPass[] = [];
  let done = true;
  for (const sink of sinks) {
    const pass = await deliverSink(deps, p.tenant, sink, overBudget);
    passes.push(pass.summary);
    if (!pass.done) done = false;
  }
  const { rows } = await deps.pool.query<{ pending: number; next_due: Date | null }>(
    // A batch leased by a pass that died is due when its lease ends, not before.
    `select count(*)::int as pending, min(greatest(next_attempt_at, coalesce(leased_until, next_attempt_at))) as next_due
       from sink_batches where tenant_id = $1 and state = 'pending'`,
    [p.tenant],
  );
  const unbatched = await deps.pool.query<{ n: number }>(
    'select count(*)::int as n from sink_deliveries where tenant_id = $1 and batch_id is null',
    [p.tenant],
  );
  return {
    sinks: passes,
    done: done && unbatched.rows[0].n === 0,
    pending: rows[0].pending + unbatched.rows[0].n,
    nextDueAt: rows[0].next_due?.toISOString() ?? null,
  };
}

async function deliverSink(
  deps: DeliverDeps,
  tenant: string,
  sink: TenantSink,
  overBudget: () => boolean,
): Promise<{ summary: SinkPass; done: boolean }> {
  const adapter = deps.adapterFor(sink.config);
  const config = sink.config;
  const summary: SinkPass = {
    sink: sink.name,
    kind: config.kind,
    formed: 0,
    calls: 0,
    delivered: 0,
    deferred: 0,
    failed: 0,
    needsAttention: 0,
    heldUp: null,
  };
  const skipKinds = (['charge', 'credit', 'base_fee', 'true_up'] as const).filter((k) => !adapter.takes(config, k));
  for (;;) {
    const f = await formBatches(deps.pool, {
      tenant,
      sink: sink.name,
      limits: { maxLines: adapter.maxLinesPerBatch(config), maxAmount: adapter.maxAmountPerBatch(config), skipKinds },
      limit: FORM_CHUNK,
    });
    summary.formed += f.batches;
    deps.heartbeat?.();
    if (f.lines < FORM_CHUNK) break;
    if (overBudget()) return { summary, done: false };
  }

  const envName = sinkSecretEnv(config);
  const secret = deps.env[envName];
  if (!secret) {
    await holdSink(
      deps,
      tenant,
      sink.name,
      `sink_secret_missing: set ${envName} in the worker's environment`,
      5 * 60_000,
    );
    summary.heldUp = `${envName} is not set`;
    return { summary, done: true };
  }
  const ctx = { secret, timeoutMs: deps.timeoutMs ?? 15_000 };
  // Stripe takes one meter-event call at a time per customer and meter.
  const concurrency = config.kind === 'stripe' && config.mode === 'meter_events' ? 1 : config.concurrency;
  const perCall = adapter.batchesPerCall(config);

  for (;;) {
    if (overBudget()) return { summary, done: false };
    const claimed = await claimDue(deps, tenant, sink.name, concurrency * perCall);
    if (claimed.length === 0) return { summary, done: true };
    const ready: Array<{ batch: SinkBatch; planned: Planned; row: BatchRow }> = [];
    for (const row of claimed) {
      const prepared = await prepare(deps, adapter, config, row, ctx, summary);
      if (prepared) ready.push({ ...prepared, row });
    }
    const calls: (typeof ready)[] = [];
    for (let i = 0; i < ready.length; i += perCall) calls.push(ready.slice(i, i + perCall));
    let stop: string | null = null;
    for (let i = 0; i < calls.length && !stop; i += concurrency) {
      const wave = calls.slice(i, i + concurrency);
      const results = await Promise.all(
        wave.map(async (call) => {
          await recordAttempt(
            deps,
            call.map((c) => c.row.batch_id),
          );
          const answers = await adapter.send(call, config, { ...ctx, now: deps.now() });
          summary.calls++;
          return { call, answers };
        }),
      );
      for (const { call, answers } of results) {
        for (const [j, c] of call.entries()) {
          const held = await recordAnswer(deps, c.row, answers[j] ?? missingAnswer(), summary);
          if (held) stop = held;
        }
      }
      deps.heartbeat?.();
      if (stop && waitIsShort(results)) {
        await new Promise((r) => setTimeout(r, SHORT_WAIT_MS));
        stop = null;
      }
    }
    // Batches claimed but not sent (the sink held the pass up) go back, due again at once.
    await deps.pool.query(
      "update sink_batches set leased_until = null where batch_id = any ($1) and state = 'pending'",
      [claimed.map((r) => r.batch_id)],
    );
    if (stop) {
      summary.heldUp = stop;
      return { summary, done: true };
    }
  }
}

function missingAnswer(): SendResult {
  return { status: 'retry', error: 'the sink adapter gave no answer for this batch' };
}

function waitIsShort(results: Array<{ answers: SendResult[] }>): boolean {
  return results.every((r) =>
    r.answers.every((a) => a.status !== 'retry' || (a.retryAfterMs !== undefined && a.retryAfterMs <= SHORT_WAIT_MS)),
  );
}

async function claimDue(deps: DeliverDeps, tenant: string, sink: string, wave: number): Promise<BatchRow[]> {
  const now = deps.now();
  const { rows } = await deps.pool.query<BatchRow>(
    `update sink_batches b set leased_until = $3::timestamptz + ${LEASE}
      where b.batch_id in (
        select batch_id from sink_batches
         where tenant_id = $1 and sink = $2 and state = 'pending' and next_attempt_at <= $3
           and (leased_until is null or leased_until < $3)
         order by batch_id
         limit $4
         for update skip locked)
     returning b.*`,
    [tenant, sink, now, wave],
  );
  return rows.sort((a, b) => a.batch_id - b.batch_id);
}

/**
 * The request of a batch, planned once and kept; or null when the batch is not sent now: a credit
 * whose charge the sink does not hold yet waits, a batch the sink would refuse fails, and a send
 * older than the sink's memory is verified or set aside.
 */
async function prepare(
  deps: DeliverDeps,
  adapter: SinkAdapter<SinkConfig>,
  config: SinkConfig,
  row: BatchRow,
  ctx: { secret: string; timeoutMs: number },
  summary: SinkPass,
): Promise<{ batch: SinkBatch; planned: Planned } | null> {
  const now = deps.now();
  const reverses: ReversedRow[] = row.kind === 'credit' ? await reversedBatches(deps.pool, row) : [];
  const batch = toSinkBatch(row, reverses);
  if (row.payload === null || row.action === null) {
    const waiting = reverses.find((r) => r.state !== 'delivered' && r.state !== 'skipped');
    if (waiting) {
      await defer(
        deps,
        row,
        waiting.batchId === null
          ? 'waiting for the charge it credits to be batched for this sink'
          : `waiting for charge batch ${waiting.batchId} (${waiting.state}) to be delivered first`,
        nextAttemptDelayMs(row.attempts + 1),
      );
      summary.deferred++;
      return null;
    }
    const planned = adapter.plan(batch, config, { now });
    if ('refuse' in planned) {
      await settle(deps, row.batch_id, 'failed', { error: planned.refuse });
      summary.failed++;
      return null;
    }
    await deps.pool.query('update sink_batches set action = $2, payload = $3 where batch_id = $1 and payload is null', [
      row.batch_id,
      planned.action,
      JSON.stringify(planned.payload),
    ]);
    return { batch, planned };
  }
  const planned: Planned = { action: row.action, payload: row.payload };
  if (row.first_attempt_at && isPastDedupWindow(row.first_attempt_at, now, adapter.dedupWindowMs(config))) {
    const since = row.first_attempt_at.toISOString();
    if (!adapter.verify || adapter.verifiable?.(planned) === false) {
      await settle(deps, row.batch_id, 'needs_attention', {
        error: `first sent ${since} and never confirmed; ${config.kind} forgets repeats after ${windowText(adapter.dedupWindowMs(config))} and has no read API to check, so it is not sent again blindly: look for key ${row.batch_key} in ${config.kind}, then run recon sink retry --batch ${row.batch_id} with --mark-delivered or --resend`,
      });
      summary.needsAttention++;
      return null;
    }
    let held;
    try {
      held = (await adapter.verify([{ batch, planned }], config, { ...ctx, now })).get(row.batch_key);
    } catch (err) {
      await defer(
        deps,
        row,
        `could not check ${row.batch_key} in ${config.kind}: ${oneLine(err instanceof Error ? err.message : String(err))}`,
        5 * 60_000,
      );
      summary.deferred++;
      return null;
    }
    if (held) {
      await settle(deps, row.batch_id, 'delivered', {
        ref: held.ref ?? null,
        resolution: `found in ${config.kind} by its read API at ${now.toISOString()} (first sent ${since})`,
      });
      summary.delivered++;
      return null;
    }
    // Absent from the sink: it never landed, so a send now cannot count twice. It starts a new window.
    await deps.pool.query('update sink_batches set first_attempt_at = null, resolution = $2 where batch_id = $1', [
      row.batch_id,
      `not found in ${config.kind} at ${now.toISOString()} (first sent ${since}); sent again`,
    ]);
  }
  return { batch, planned };
}

/** Written before the call: a crash after sending leaves the attempt on record, so the window rule sees it. */
async function recordAttempt(deps: DeliverDeps, batchIds: number[]): Promise<void> {
  await deps.pool.query(
    `update sink_batches set attempts = attempts + 1, first_attempt_at = coalesce(first_attempt_at, $2), last_attempt_at = $2
      where batch_id = any ($1)`,
    [batchIds, deps.now()],
  );
}

/** Records the sink's answer; returns why the sink holds the pass up (retry later), or null. */
async function recordAnswer(
  deps: DeliverDeps,
  row: BatchRow,
  answer: SendResult,
  summary: SinkPass,
): Promise<string | null> {
  switch (answer.status) {
    case 'delivered':
      await settle(deps, row.batch_id, 'delivered', {
        ref: answer.ref ?? null,
        resolution: answer.duplicate ? 'the sink answered that it already held this key' : null,
      });
      summary.delivered++;
      return null;
    case 'refused':
      await settle(deps, row.batch_id, 'failed', { error: answer.error });
      summary.failed++;
      return null;
    case 'auth':
      await defer(deps, row, answer.error, 15 * 60_000);
      summary.deferred++;
      return answer.error;
    case 'retry':
      await defer(deps, row, answer.error, Math.max(answer.retryAfterMs ?? 0, nextAttemptDelayMs(row.attempts + 1)));
      summary.deferred++;
      return answer.error;
  }
}

async function settle(
  deps: DeliverDeps,
  batchId: number,
  state: 'delivered' | 'failed' | 'needs_attention',
  p: { ref?: string | null; error?: string; resolution?: string | null },
): Promise<void> {
  await deps.pool.query(
    `update sink_batches
        set state = $2, leased_until = null, last_error = $3, sink_ref = coalesce($4, sink_ref),
            delivered_at = case when $2 = 'delivered' then $5::timestamptz end,
            resolution = coalesce($6, resolution)
      where batch_id = $1`,
    [batchId, state, p.error ? oneLine(p.error) : null, p.ref ?? null, deps.now(), p.resolution ?? null],
  );
}

async function defer(deps: DeliverDeps, row: BatchRow, reason: string, delayMs: number): Promise<void> {
  await deps.pool.query(
    `update sink_batches set leased_until = null, last_error = $2, next_attempt_at = $3::timestamptz + make_interval(secs => $4)
      where batch_id = $1`,
    [row.batch_id, oneLine(reason), deps.now(), delayMs / 1000],
  );
}

/** Every due batch of a sink that cannot be sent now (no secret) waits, saying why. */
async function holdSink(deps: DeliverDeps, tenant: string, sink: string, reason: string, delayMs: number) {
  await deps.pool.query(
    `update sink_batches set last_error = $3, next_attempt_at = $4::timestamptz + make_interval(secs => $5)
      where tenant_id = $1 and sink = $2 and state = 'pending' and next_attempt_at <= $4`,
    [tenant, sink, reason, deps.now(), delayMs / 1000],
  );
}

function windowText(ms: number): string {
  const h = ms / 3_600_000;
  return h >= 48 ? `${Math.round(h / 24)} days` : `${Math.round(h)} hours`;
}
