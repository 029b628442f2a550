import { z } from 'zod';
import type { MetronomeSinkConfig } from '../domain/sinks';
import { ReconError } from '../domain/errors';
import type { LedgerKind } from '../ledger/rows';
import type { Holding, Planned, Refusal, SendResult, SinkAdapter, SinkBatch, SinkContext } from './types';
import { postOnce, retryAfterMs, withoutSecret } from './wire';

/**
 * Metronome usage ingest (https://docs.metronome.com/api-reference/usage/ingest-events): each batch
 * becomes one usage event whose transaction_id is the batch key, so Metronome's 34-day transaction
 * dedup (https://docs.metronome.com/guides/events/send-usage-events) makes a resend count once. A
 * credit is its own event with a negative quantity and amount; a billable metric summing `quantity`
 * (or `amount_minor`) over the event type nets charges and credits.
 *
 * verify() is deliberately absent: Metronome's only per-event read, POST /v1/events/search
 * (https://docs.metronome.com/api-reference/usage/search-events), sees the last 34 days, exactly the
 * dedup window, so for a send older than the window "not found" cannot tell "never held" from
 * "held, but too old to see"; such a batch must go to a person, not be resent. holdings() uses the
 * same search for reconcile, and refuses a range it cannot fully see.
 */

const DAY_MS = 24 * 3600_000;
export const METRONOME_DEDUP_WINDOW_MS = 34 * DAY_MS;
/** Metronome refuses "Timestamps more than 24 hours in the future" (send-usage-events guide). */
const FUTURE_LIMIT_MS = 24 * 3600_000;
/** "The body of this request is expected to be a JSON array of between 1 and 100 usage events." */
export const METRONOME_EVENTS_PER_CALL = 100;
/** How far back the event search sees. An event timestamped t can be processed from t − 24 h on. */
const SEARCH_WINDOW_MS = 34 * DAY_MS;
const SEARCH_IDS_PER_CALL = 100;
const SEARCH_ATTEMPTS = 3;
const SEARCH_MAX_WAIT_MS = 10_000;

/** Every 4xx body (https://docs.metronome.com/api-reference/status-codes). */
export const MetronomeErrorSchema = z.object({ message: z.string() });

/** One element of the search answer; fields we do not read are let through. */
export const MetronomeSearchEventSchema = z.looseObject({
  id: z.string(),
  transaction_id: z.string(),
  customer_id: z.string(),
  event_type: z.string(),
  timestamp: z.string(),
  properties: z.record(z.string(), z.unknown()).optional(),
  is_duplicate: z.boolean().optional(),
  processed_at: z.string().optional(),
  matched_customer: z.looseObject({ id: z.string(), name: z.string().optional() }).optional().nullable(),
});
export const MetronomeSearchResponseSchema = z.array(MetronomeSearchEventSchema);

/** The usage event a batch becomes: the planned payload, sent as one element of the ingest array. */
export interface MetronomeEvent {
  transaction_id: string;
  customer_id: string;
  event_type: string;
  timestamp: string;
  properties: Record<string, string>;
}

function customerOf(config: MetronomeSinkConfig): string {
  // The contract's refine guarantees exactly one of them.
  return (config.customerId ?? config.ingestAlias) as string;
}

/**
 * The event's properties. Metronome asks for property values as strings ("This prevents the loss of
 * precision that often occurs in systems that use floating point numbers"); absent values are left
 * out rather than sent as empty strings a billable metric would group by.
 */
export function metronomeProperties(batch: SinkBatch): Record<string, string> {
  const quantity = batch.kind === 'credit' ? -batch.lineCount : batch.lineCount;
  const props: Record<string, string> = {
    kind: batch.kind,
    quantity: String(quantity),
    amount_minor: String(batch.amountMinor),
    currency: batch.currency,
    unit_price: batch.unitPrice,
    period: batch.period,
    first_entry_id: String(batch.firstEntryId),
    last_entry_id: String(batch.lastEntryId),
  };
  if (batch.outcomeType !== null) props.outcome_type = batch.outcomeType;
  if (batch.tier !== null) props.tier = String(batch.tier);
  if (batch.runId !== null) props.run_id = String(batch.runId);
  return props;
}

function plan(batch: SinkBatch, config: MetronomeSinkConfig, ctx: Pick<SinkContext, 'now'>): Planned | Refusal {
  if (batch.eventAt.getTime() > ctx.now.getTime() + FUTURE_LIMIT_MS)
    return {
      refuse: `Metronome refuses events timestamped more than 24 hours ahead; this batch is at ${batch.eventAt.toISOString()}: check the run's as-of time`,
    };
  const event: MetronomeEvent = {
    transaction_id: batch.key,
    customer_id: customerOf(config),
    event_type: config.eventType,
    timestamp: batch.eventAt.toISOString(),
    properties: metronomeProperties(batch),
  };
  return { action: 'ingest', payload: { ...event } };
}

function errorMessage(text: string): string | null {
  try {
    const parsed = MetronomeErrorSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data.message : null;
  } catch {
    return null;
  }
}

/** What an answer means, for every batch of the call (ingest answers for the request as a whole). */
function classify(
  answer: Awaited<ReturnType<typeof postOnce>>,
  config: MetronomeSinkConfig,
  ctx: SinkContext,
): SendResult {
  if (!answer.answered) return { status: 'retry', error: `Metronome ingest: ${answer.error}` };
  const { status } = answer;
  if (status >= 200 && status < 300) return { status: 'delivered' };
  const said = errorMessage(answer.text);
  const detail = withoutSecret(said ?? (answer.text || '(empty body)'), ctx.secret);
  if (status === 429)
    return {
      status: 'retry',
      error: `Metronome ingest answered 429 (rate limited): ${detail}`,
      retryAfterMs: retryAfterMs(answer.headers.get('retry-after'), ctx.now),
    };
  if (status >= 500 || status === 408)
    return {
      status: 'retry',
      error: `Metronome ingest answered ${status}: ${detail}`,
      retryAfterMs: retryAfterMs(answer.headers.get('retry-after'), ctx.now),
    };
  if (status === 401 || status === 403)
    return {
      status: 'auth',
      error: `Metronome answered ${status} to the token in ${config.tokenEnv}: set a valid Metronome API token there and retry the sink`,
    };
  return { status: 'refused', error: `Metronome ingest answered ${status}: ${detail}` };
}

async function send(
  batches: Array<{ batch: SinkBatch; planned: Planned }>,
  config: MetronomeSinkConfig,
  ctx: SinkContext,
): Promise<SendResult[]> {
  if (batches.length === 0) return [];
  if (batches.length > METRONOME_EVENTS_PER_CALL) {
    const error = `${batches.length} events in one call: Metronome takes at most ${METRONOME_EVENTS_PER_CALL}; nothing was sent`;
    return batches.map(() => ({ status: 'refused', error }));
  }
  const answer = await postOnce(`${config.apiBase}/v1/ingest`, {
    headers: {
      authorization: `Bearer ${ctx.secret}`,
      'content-type': 'application/json',
      accept: 'application/json',
    },
    body: JSON.stringify(batches.map((b) => b.planned.payload)),
    timeoutMs: ctx.timeoutMs,
  });
  const result = classify(answer, config, ctx);
  return batches.map(() => result);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function searchOnce(
  ids: string[],
  config: MetronomeSinkConfig,
  ctx: SinkContext,
): Promise<z.infer<typeof MetronomeSearchResponseSchema>> {
  for (let attempt = 1; ; attempt++) {
    const answer = await postOnce(`${config.apiBase}/v1/events/search`, {
      headers: {
        authorization: `Bearer ${ctx.secret}`,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      body: JSON.stringify({ transactionIds: ids }),
      timeoutMs: ctx.timeoutMs,
    });
    if (!answer.answered)
      throw new ReconError('sink_read_failed', `Metronome event search: ${answer.error}; run the command again later`);
    if (answer.status === 401 || answer.status === 403)
      throw new ReconError(
        'sink_auth_failed',
        `Metronome answered ${answer.status} to the token in ${config.tokenEnv}: set a valid Metronome API token there`,
      );
    // The search is "heavily rate limited": wait as told a few times before giving up.
    if (answer.status === 429 && attempt < SEARCH_ATTEMPTS) {
      await sleep(Math.min(retryAfterMs(answer.headers.get('retry-after'), ctx.now) ?? 1000, SEARCH_MAX_WAIT_MS));
      continue;
    }
    if (answer.status < 200 || answer.status >= 300) {
      const detail = withoutSecret(errorMessage(answer.text) ?? (answer.text || '(empty body)'), ctx.secret);
      throw new ReconError(
        'sink_read_failed',
        `Metronome event search answered ${answer.status}: ${detail}; run the command again later`,
      );
    }
    let parsed: ReturnType<typeof MetronomeSearchResponseSchema.safeParse>;
    try {
      parsed = MetronomeSearchResponseSchema.safeParse(JSON.parse(answer.text));
    } catch {
      parsed = MetronomeSearchResponseSchema.safeParse(undefined);
    }
    if (!parsed.success)
      throw new ReconError(
        'sink_read_failed',
        'Metronome event search sent an answer that is not a list of events; run the command again later',
      );
    return parsed.data;
  }
}

/**
 * What Metronome holds of our keys with a timestamp in [from, to): counted events only (a repeat
 * inside the dedup window is flagged is_duplicate and counts nothing), summed per key. A key counted
 * twice because it was resent after the window cannot show here: its two events are more than 34
 * days apart and the search sees 34 days. That is why a send older than the window is never resent.
 */
async function holdings(
  scope: { tenant: string; from: Date; to: Date; keys: string[] },
  config: MetronomeSinkConfig,
  ctx: SinkContext,
): Promise<Holding[]> {
  const oldestVisible = ctx.now.getTime() - SEARCH_WINDOW_MS + FUTURE_LIMIT_MS;
  if (scope.from.getTime() < oldestVisible)
    throw new ReconError(
      'sink_history_unavailable',
      `Metronome's event search only sees the last 34 days, so events from ${scope.from.toISOString().slice(0, 10)} on cannot all be checked; reconcile a range starting after ${new Date(oldestVisible).toISOString().slice(0, 10)}, or compare totals in Metronome's usage view`,
    );
  const customer = customerOf(config);
  const byKey = new Map<string, Holding & { quantity: number; amountMinor: number }>();
  for (let i = 0; i < scope.keys.length; i += SEARCH_IDS_PER_CALL) {
    const found = await searchOnce(scope.keys.slice(i, i + SEARCH_IDS_PER_CALL), config, ctx);
    for (const e of found) {
      if (e.is_duplicate || e.customer_id !== customer || e.event_type !== config.eventType) continue;
      const at = Date.parse(e.timestamp);
      if (!(at >= scope.from.getTime() && at < scope.to.getTime())) continue;
      const quantity = Number(e.properties?.quantity ?? NaN);
      const amount = Number(e.properties?.amount_minor ?? NaN);
      const held = byKey.get(e.transaction_id) ?? { key: e.transaction_id, quantity: 0, amountMinor: 0, ref: e.id };
      held.quantity += Number.isFinite(quantity) ? quantity : 0;
      held.amountMinor += Number.isFinite(amount) ? amount : 0;
      byKey.set(e.transaction_id, held);
    }
  }
  return [...byKey.values()];
}

export const metronomeAdapter: SinkAdapter<MetronomeSinkConfig> = {
  kind: 'metronome',
  dedupWindowMs: () => METRONOME_DEDUP_WINDOW_MS,
  // A batch is one event carrying a count: any number of lines fits (kept within a 32-bit count).
  maxLinesPerBatch: () => 1_000_000_000,
  maxAmountPerBatch: () => null,
  batchesPerCall: () => METRONOME_EVENTS_PER_CALL,
  // Every kind is usage Metronome can meter: a billable metric filters on the `kind` property.
  takes: (_config: MetronomeSinkConfig, _kind: LedgerKind) => true,
  plan,
  send,
  holdings,
};
