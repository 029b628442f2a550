import type { WebhookSinkConfig } from '../domain/sinks';
import type { LedgerKind } from '../ledger/rows';
import { signWebhook, webhookKey } from './standard-webhooks';
import type { Planned, Refusal, SendResult, SinkAdapter, SinkBatch, SinkContext } from './types';
import { postOnce, retryAfterMs, withoutSecret } from './wire';

/**
 * Signed webhooks (https://www.standardwebhooks.com): one POST per batch, `webhook-id` = the batch
 * key (the receiver's idempotency key), `webhook-timestamp` = the attempt's time, `webhook-signature`
 * = HMAC-SHA256 over `${id}.${timestamp}.${body}`. The body is fixed when the batch is planned and
 * serialized canonically (keys sorted), so every resend sends the same bytes even after the planned
 * payload went through jsonb, which reorders keys; only the timestamp and signature change per attempt.
 *
 * The spec's status handling ("Delivery success and failure"): only 2xx is success; 410 Gone means
 * the receiver wants no more webhooks and 3xx means the URL moved, so both stop the sink until a
 * person acts (reported as 'auth', the engine's stop-the-sink answer); 429, 502, 504 and other 5xx
 * are retried, honouring Retry-After. The spec gives 409 no meaning, so it is not read as
 * "duplicate". There is no read API: no verify(), no holdings().
 */

export type WebhookEventType = 'ledger.charges' | 'ledger.credits' | 'ledger.base_fee' | 'ledger.true_up';

const TYPES: Record<LedgerKind, WebhookEventType> = {
  charge: 'ledger.charges',
  credit: 'ledger.credits',
  base_fee: 'ledger.base_fee',
  true_up: 'ledger.true_up',
};

export const WEBHOOK_MAX_LINES_PER_BATCH = 1000;

export interface WebhookPayload {
  type: WebhookEventType;
  /** When the lines happened (the run's as-of), not when this attempt is made. */
  timestamp: string;
  data: {
    tenant: string;
    key: string;
    kind: LedgerKind;
    run_id: number | null;
    outcome_type: string | null;
    period: string;
    currency: string;
    unit_price: string;
    tier: number | null;
    line_count: number;
    amount_minor: number;
    first_entry_id: number;
    last_entry_id: number;
    /** For credits: the keys of the charge deliveries whose lines this credit reverses. */
    references: string[];
  };
}

/** JSON with object keys sorted at every level: the same value always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

export function webhookPayload(batch: SinkBatch): WebhookPayload {
  return {
    type: TYPES[batch.kind],
    timestamp: batch.eventAt.toISOString(),
    data: {
      tenant: batch.tenant,
      key: batch.key,
      kind: batch.kind,
      run_id: batch.runId,
      outcome_type: batch.outcomeType,
      period: batch.period,
      currency: batch.currency,
      unit_price: batch.unitPrice,
      tier: batch.tier,
      line_count: batch.lineCount,
      amount_minor: batch.amountMinor,
      first_entry_id: batch.firstEntryId,
      last_entry_id: batch.lastEntryId,
      references: batch.kind === 'credit' ? batch.reverses.map((r) => r.key) : [],
    },
  };
}

function plan(batch: SinkBatch, _config: WebhookSinkConfig, _ctx: Pick<SinkContext, 'now'>): Planned | Refusal {
  return { action: 'webhook', payload: { ...webhookPayload(batch) } };
}

function classify(
  answer: Awaited<ReturnType<typeof postOnce>>,
  config: WebhookSinkConfig,
  ctx: SinkContext,
): SendResult {
  if (!answer.answered) return { status: 'retry', error: `webhook receiver: ${answer.error}` };
  const { status } = answer;
  if (status >= 200 && status < 300) return { status: 'delivered' };
  const detail = withoutSecret(answer.text || '(empty body)', ctx.secret, 200);
  const wait = retryAfterMs(answer.headers.get('retry-after'), ctx.now);
  if (status === 429 || status === 408 || status >= 500)
    return { status: 'retry', error: `webhook receiver answered ${status}: ${detail}`, retryAfterMs: wait };
  if (status >= 300 && status < 400)
    return {
      status: 'auth',
      error: `webhook receiver answered ${status} (moved to ${answer.headers.get('location') ?? 'an unknown place'}): put the new URL in the sink's url; redirects are not followed`,
    };
  if (status === 410)
    return {
      status: 'auth',
      error:
        "webhook receiver answered 410 Gone: it wants no more webhooks; fix the receiver or the sink's url, then retry the sink",
    };
  if (status === 401 || status === 403)
    return {
      status: 'auth',
      error: `webhook receiver answered ${status}: check that ${config.secretEnv} holds the secret the receiver has, then retry the sink`,
    };
  return {
    status: 'refused',
    error: `webhook receiver answered ${status}: ${detail}${status === 400 ? ` (a bad signature is answered 400 too: check ${config.secretEnv})` : ''}`,
  };
}

async function send(
  batches: Array<{ batch: SinkBatch; planned: Planned }>,
  config: WebhookSinkConfig,
  ctx: SinkContext,
): Promise<SendResult[]> {
  if (batches.length === 0) return [];
  if (batches.length > 1)
    return batches.map(() => ({
      status: 'refused',
      error: `${batches.length} batches in one call: a webhook carries one; nothing was sent`,
    }));
  if (!webhookKey(ctx.secret))
    return [
      {
        status: 'auth',
        error: `${config.secretEnv} does not hold a Standard Webhooks secret (whsec_ followed by 24 to 64 bytes in base64): set it to the receiver's secret`,
      },
    ];
  const { batch, planned } = batches[0];
  const body = canonicalJson(planned.payload);
  // The attempt's time, not the event's: receivers refuse timestamps outside their tolerance.
  const timestamp = Math.floor(ctx.now.getTime() / 1000);
  const answer = await postOnce(config.url, {
    headers: {
      'content-type': 'application/json',
      'webhook-id': batch.key,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook({ secret: ctx.secret, id: batch.key, timestamp, body }),
    },
    body,
    timeoutMs: ctx.timeoutMs,
  });
  return [classify(answer, config, ctx)];
}

export const webhookAdapter: SinkAdapter<WebhookSinkConfig> = {
  kind: 'webhook',
  dedupWindowMs: (config) => config.dedupWindowHours * 3600_000,
  maxLinesPerBatch: () => WEBHOOK_MAX_LINES_PER_BATCH,
  maxAmountPerBatch: () => null,
  batchesPerCall: () => 1,
  takes: () => true,
  plan,
  send,
};
