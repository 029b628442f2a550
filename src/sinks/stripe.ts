/**
 * The Stripe sink: ledger batches become Stripe Billing meter events (Stripe prices the usage) or
 * invoice items (we price). See src/sinks/types.ts for the engine/adapter contract.
 *
 * Stripe's rules this adapter plans around (cited where the rule is applied):
 * - https://docs.stripe.com/api/billing/meter-event/create: `identifier` unique within a rolling
 *   24 h; `timestamp` within the past 35 calendar days or up to 5 minutes ahead; values are
 *   strings holding whole numbers.
 * - https://docs.stripe.com/api/billing/meter-event-adjustment/create: events can be cancelled
 *   only within 24 h of Stripe receiving them.
 * - https://docs.stripe.com/api/idempotent_requests: `Idempotency-Key` results kept at least 24 h.
 * - https://docs.stripe.com/api/invoiceitems/create: integer amounts in minor units, negative
 *   allowed (a credit), at most eight digits.
 *
 * Meter events have no per-event read API in Stripe (only per-meter summaries), so verify() can
 * confirm invoice items only: the engine sets an unconfirmed meter event older than the dedup
 * window aside as needs_attention rather than resending it.
 */
import { z } from 'zod';
import { ReconError, oneLine } from '../domain/errors';
import type { LedgerKind } from '../ledger/rows';
import type { StripeSinkConfig } from '../domain/sinks';
import type { Holding, Planned, Refusal, SendResult, SinkAdapter, SinkBatch, SinkContext } from './types';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Stripe's documented limits for meter event timestamps, relative to when it receives them. */
const PAST_LIMIT_MS = 35 * DAY_MS;
const FUTURE_LIMIT_MS = 5 * 60_000;
/**
 * A planned request is fixed at its first attempt and may be retried for hours (a sink down for a
 * night), so the time rules keep a margin: an event is not planned when it would be over 35 days
 * old within the hour, and a credit cancels its charge's event only while that event has at least
 * six hours of Stripe's 24-hour cancel window left; later, it becomes a negative invoice item.
 */
const PAST_MARGIN_MS = HOUR_MS;
const CANCEL_WINDOW_MS = DAY_MS;
const CANCEL_MARGIN_MS = 6 * HOUR_MS;
/** Stripe's largest invoice item amount (eight digits: 999,999.99 in a two-decimal currency). */
export const STRIPE_MAX_AMOUNT = 99_999_999;

export interface StripeRequest {
  method: 'POST';
  path: '/v1/billing/meter_events' | '/v1/billing/meter_event_adjustments' | '/v1/invoiceitems';
  /** Form fields exactly as sent, Stripe's `a[b]` nesting written out. */
  params: Record<string, string>;
  idempotencyKey: string;
}

// ---- responses, validated at the edge ---------------------------------------------------------

const StripeErrorBody = z.object({
  error: z.object({
    type: z.string(),
    code: z.string().optional(),
    message: z.string().optional(),
    param: z.string().optional(),
  }),
});

export const MeterEventResponse = z.object({
  object: z.literal('billing.meter_event'),
  identifier: z.string(),
  event_name: z.string(),
  timestamp: z.number().int(),
  created: z.number().int(),
  livemode: z.boolean(),
  payload: z.record(z.string(), z.string()),
});

export const MeterEventAdjustmentResponse = z.object({
  object: z.literal('billing.meter_event_adjustment'),
  event_name: z.string(),
  type: z.literal('cancel'),
  status: z.enum(['pending', 'complete']),
  livemode: z.boolean(),
  cancel: z.object({ identifier: z.string().nullable() }).nullable(),
});

export const InvoiceItemResponse = z.object({
  id: z.string().startsWith('ii_'),
  object: z.literal('invoiceitem'),
  amount: z.number().int(),
  currency: z.string(),
  customer: z.string(),
  date: z.number().int(),
  description: z.string().nullable(),
  livemode: z.boolean(),
  metadata: z.record(z.string(), z.string()).nullable(),
});

export const InvoiceItemList = z.object({
  object: z.literal('list'),
  data: z.array(InvoiceItemResponse),
  has_more: z.boolean(),
});

export const MeterResponse = z.object({
  id: z.string(),
  object: z.literal('billing.meter'),
  event_name: z.string(),
  status: z.enum(['active', 'inactive']),
  default_aggregation: z.object({ formula: z.string() }),
});

export const MeterList = z.object({ object: z.literal('list'), data: z.array(MeterResponse), has_more: z.boolean() });

export const MeterEventSummaryList = z.object({
  object: z.literal('list'),
  data: z.array(
    z.object({
      id: z.string(),
      object: z.literal('billing.meter_event_summary'),
      aggregated_value: z.number(),
      start_time: z.number().int(),
      end_time: z.number().int(),
      meter: z.string(),
      livemode: z.boolean(),
    }),
  ),
  has_more: z.boolean(),
});

// ---- planning (pure) --------------------------------------------------------------------------

const iso = (d: Date) => d.toISOString().replace('.000Z', 'Z');

function meterEventRefusal(batch: SinkBatch, now: Date): string | null {
  const age = now.getTime() - batch.eventAt.getTime();
  if (age > PAST_LIMIT_MS - PAST_MARGIN_MS)
    return `Stripe takes meter events at most 35 days old; these ${batch.lineCount} line(s) are from ${iso(batch.eventAt)}, ${Math.floor(age / DAY_MS)} days before ${iso(now)}: bill them by hand (an invoice item) and mark them settled`;
  if (-age > FUTURE_LIMIT_MS)
    return `Stripe takes meter events at most 5 minutes ahead; these lines are dated ${iso(batch.eventAt)}, after ${iso(now)}: check the run's as-of time and the worker's clock`;
  if (!Number.isSafeInteger(batch.lineCount) || batch.lineCount <= 0)
    return `a meter event needs a whole, positive quantity; this batch has ${batch.lineCount}: report this as a fault`;
  return null;
}

function amountRefusal(amount: number): string | null {
  if (!Number.isSafeInteger(amount))
    return `an invoice item needs a whole amount in minor units, not ${amount}: report this as a fault`;
  if (Math.abs(amount) > STRIPE_MAX_AMOUNT)
    return `Stripe takes invoice items of at most ${STRIPE_MAX_AMOUNT} minor units; this one is ${amount}: split it by hand and mark the lines settled`;
  return null;
}

/** What a finance person reads on the invoice line. */
export function invoiceItemDescription(batch: SinkBatch): string {
  const currency = batch.currency.toUpperCase();
  const run = batch.runId !== null ? `, run ${batch.runId}` : '';
  const tier = batch.tier !== null ? ` (tier ${batch.tier})` : '';
  switch (batch.kind) {
    case 'charge':
      return `${batch.lineCount} × ${batch.outcomeType ?? 'outcome'}${tier} at ${batch.unitPrice} ${currency}, ${batch.period}${run}`;
    case 'credit':
      return `Credit: ${batch.lineCount} × ${batch.outcomeType ?? 'outcome'}${tier} at ${batch.unitPrice} ${currency}, ${batch.period}${run}`;
    case 'base_fee':
      return `Base fee${batch.outcomeType ? ` for ${batch.outcomeType}` : ''}, ${batch.period}`;
    case 'true_up':
      return `Minimum commitment true-up, ${batch.period}`;
  }
}

function invoiceItem(batch: SinkBatch, config: StripeSinkConfig): Planned | Refusal {
  const refusal = amountRefusal(batch.amountMinor);
  if (refusal) return { refuse: refusal };
  const request: StripeRequest = {
    method: 'POST',
    path: '/v1/invoiceitems',
    params: {
      customer: config.customer,
      amount: String(batch.amountMinor),
      currency: batch.currency.toLowerCase(),
      description: invoiceItemDescription(batch),
      'metadata[recon_key]': batch.key,
      'metadata[recon_tenant]': batch.tenant,
      'metadata[recon_period]': batch.period,
      'metadata[recon_kind]': batch.kind,
      'metadata[recon_lines]': String(batch.lineCount),
      'metadata[recon_first_entry]': String(batch.firstEntryId),
      'metadata[recon_last_entry]': String(batch.lastEntryId),
      'metadata[recon_event_at]': iso(batch.eventAt),
    },
    idempotencyKey: batch.key,
  };
  return { action: 'invoice_item', payload: { ...request } };
}

/**
 * A credit undoes its charge's meter event in kind only when the cancel removes exactly what the
 * credit reverses: the credit reverses one charge batch, all of its lines, by itself (an earlier
 * partial credit already became an invoice item, and a cancel would credit those lines twice),
 * and Stripe still lets the event be cancelled.
 */
export function cancellableCharge(batch: SinkBatch, now: Date): string | null {
  if (batch.reverses.length !== 1) return null;
  const [r] = batch.reverses;
  if (r.action !== 'meter_event' || r.deliveredAt === null) return null;
  if (r.creditedCount !== r.lineCount || batch.lineCount !== r.lineCount) return null;
  if (now.getTime() - r.deliveredAt.getTime() > CANCEL_WINDOW_MS - CANCEL_MARGIN_MS) return null;
  return r.key;
}

function plan(batch: SinkBatch, config: StripeSinkConfig, ctx: Pick<SinkContext, 'now'>): Planned | Refusal {
  if (config.mode === 'invoice_items') return invoiceItem(batch, config);
  if (batch.kind === 'charge') {
    const refusal = meterEventRefusal(batch, ctx.now);
    if (refusal) return { refuse: refusal };
    const request: StripeRequest = {
      method: 'POST',
      path: '/v1/billing/meter_events',
      params: {
        event_name: config.eventName,
        identifier: batch.key,
        timestamp: String(Math.floor(batch.eventAt.getTime() / 1000)),
        'payload[stripe_customer_id]': config.customer,
        'payload[value]': String(batch.lineCount),
      },
      idempotencyKey: batch.key,
    };
    return { action: 'meter_event', payload: { ...request } };
  }
  if (batch.kind === 'credit') {
    const charge = cancellableCharge(batch, ctx.now);
    if (charge !== null) {
      const request: StripeRequest = {
        method: 'POST',
        path: '/v1/billing/meter_event_adjustments',
        params: { event_name: config.eventName, type: 'cancel', 'cancel[identifier]': charge },
        idempotencyKey: batch.key,
      };
      return { action: 'meter_event_cancel', payload: { ...request } };
    }
    return invoiceItem(batch, config);
  }
  if (config.periodLines === 'skip')
    return { refuse: `this Stripe sink skips ${batch.kind} lines (periodLines: skip): Stripe's own price bills them` };
  return invoiceItem(batch, config);
}

// ---- the wire ---------------------------------------------------------------------------------

const PlannedRequest = z.object({
  method: z.literal('POST'),
  path: z.enum(['/v1/billing/meter_events', '/v1/billing/meter_event_adjustments', '/v1/invoiceitems']),
  params: z.record(z.string(), z.string()),
  idempotencyKey: z.string().min(1),
});

/** Stripe's messages never carry a full key, but a proxy's might: nothing key-like leaves here. */
function scrub(text: string, secret: string): string {
  let out = text;
  if (secret.length >= 4) out = out.split(secret).join('[key]');
  return oneLine(out.replace(/\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9*]+/g, '[key]'));
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

interface RawAnswer {
  status: number;
  headers: Headers;
  json: unknown;
}

/** One HTTP exchange with Stripe; a failure to get any answer is returned as a retry. */
async function exchange(
  config: StripeSinkConfig,
  ctx: SinkContext,
  method: 'GET' | 'POST',
  pathAndQuery: string,
  form?: Record<string, string>,
  idempotencyKey?: string,
): Promise<RawAnswer | { status: 'retry'; error: string }> {
  const headers: Record<string, string> = { Authorization: `Bearer ${ctx.secret}`, Accept: 'application/json' };
  if (form) headers['Content-Type'] = 'application/x-www-form-urlencoded';
  if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
  try {
    const res = await fetch(`${config.apiBase}${pathAndQuery}`, {
      method,
      headers,
      body: form ? new URLSearchParams(form).toString() : undefined,
      signal: AbortSignal.timeout(ctx.timeoutMs),
    });
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, json };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const why =
      e.name === 'TimeoutError' || e.name === 'AbortError'
        ? `no answer from Stripe within ${ctx.timeoutMs} ms`
        : `could not reach Stripe at ${config.apiBase} (${e.cause?.code ?? e.message})`;
    return { status: 'retry', error: scrub(why, ctx.secret) };
  }
}

function stripeError(json: unknown): { type: string; code?: string; message: string; param?: string } {
  const parsed = StripeErrorBody.safeParse(json);
  if (!parsed.success)
    return { type: 'unknown', message: "the answer is not a Stripe error (check the sink's apiBase)" };
  return { ...parsed.data.error, message: parsed.data.error.message ?? '' };
}

const DUPLICATE_IDENTIFIER = /An event already exists with identifier/i;

/** What an answer to a planned request means for the batch. */
export function classify(answer: RawAnswer, action: string, config: StripeSinkConfig, secret: string): SendResult {
  const { status, json } = answer;
  if (status >= 200 && status < 300) {
    const schema =
      action === 'meter_event'
        ? MeterEventResponse
        : action === 'meter_event_cancel'
          ? MeterEventAdjustmentResponse
          : InvoiceItemResponse;
    const parsed = schema.safeParse(json);
    // Resending is safe (same Idempotency-Key): an answer that is not Stripe's may be a proxy's.
    if (!parsed.success)
      return { status: 'retry', error: `Stripe answered ${status} with a body that is not a ${action} object` };
    const body = parsed.data as Record<string, unknown>;
    const ref =
      action === 'meter_event'
        ? (body.identifier as string)
        : action === 'meter_event_cancel'
          ? `cancel:${(body.cancel as { identifier: string | null } | null)?.identifier ?? ''}`
          : (body.id as string);
    return { status: 'delivered', ref };
  }
  const err = stripeError(json);
  const what = `Stripe ${status} ${[err.type, err.code].filter(Boolean).join('/')}`;
  if (status === 429)
    return {
      status: 'retry',
      error: `${what}: rate limited`,
      retryAfterMs: retryAfterMs(answer.headers.get('retry-after')),
    };
  if (status >= 500 || status === 409 || answer.headers.get('stripe-should-retry') === 'true')
    return { status: 'retry', error: scrub(`${what}: ${err.message}`, secret) };
  if (status === 401 || status === 403)
    return {
      status: 'auth',
      error: `Stripe refused the API key (${status}): put a valid secret key in the environment variable ${config.apiKeyEnv} and retry`,
    };
  // The identifier derives from the ledger lines: Stripe holding it means these lines arrived.
  if (status === 400 && action === 'meter_event' && DUPLICATE_IDENTIFIER.test(err.message))
    return { status: 'delivered', duplicate: true };
  return { status: 'refused', error: scrub(`${what}${err.param ? ` (${err.param})` : ''}: ${err.message}`, secret) };
}

async function sendOne(
  item: { batch: SinkBatch; planned: Planned },
  config: StripeSinkConfig,
  ctx: SinkContext,
): Promise<SendResult> {
  const request = PlannedRequest.safeParse(item.planned.payload);
  if (!request.success)
    return {
      status: 'refused',
      error: `the planned Stripe request for batch ${item.batch.batchId} is malformed: report this as a fault`,
    };
  const r = request.data;
  const answer = await exchange(config, ctx, r.method, r.path, r.params, r.idempotencyKey);
  if (answer.status === 'retry') return answer;
  return classify(answer, item.planned.action, config, ctx.secret);
}

// ---- reading back -----------------------------------------------------------------------------

async function getJson<T>(
  config: StripeSinkConfig,
  ctx: SinkContext,
  pathAndQuery: string,
  schema: z.ZodType<T>,
): Promise<T> {
  const answer = await exchange(config, ctx, 'GET', pathAndQuery);
  if (answer.status === 'retry') throw new ReconError('stripe_unavailable', `${answer.error}; try again later`);
  const a = answer;
  if (a.status === 401 || a.status === 403)
    throw new ReconError(
      'stripe_auth_failed',
      `Stripe refused the API key (${a.status}): put a valid secret key in the environment variable ${config.apiKeyEnv}`,
    );
  if (a.status === 429 || a.status >= 500)
    throw new ReconError(
      'stripe_unavailable',
      `Stripe answered ${a.status} reading ${pathAndQuery.split('?')[0]}; try again later`,
    );
  if (a.status >= 300) {
    const err = stripeError(a.json);
    throw new ReconError(
      'stripe_refused',
      scrub(`Stripe ${a.status} reading ${pathAndQuery.split('?')[0]}: ${err.message}`, ctx.secret),
    );
  }
  const parsed = schema.safeParse(a.json);
  if (!parsed.success)
    throw new ReconError(
      'stripe_bad_response',
      `Stripe's answer to ${pathAndQuery.split('?')[0]} is not the expected list; check apiBase`,
    );
  return parsed.data;
}

type InvoiceItem = z.infer<typeof InvoiceItemResponse>;

/** Every invoice item of the customer, newest first, until `enough` says stop. */
async function eachInvoiceItem(
  config: StripeSinkConfig,
  ctx: SinkContext,
  visit: (item: InvoiceItem) => boolean | void,
): Promise<void> {
  let after: string | null = null;
  for (;;) {
    const q = new URLSearchParams({ customer: config.customer, limit: '100' });
    if (after) q.set('starting_after', after);
    const page = await getJson(config, ctx, `/v1/invoiceitems?${q.toString()}`, InvoiceItemList);
    for (const item of page.data) if (visit(item) === false) return;
    if (!page.has_more || page.data.length === 0) return;
    after = page.data[page.data.length - 1].id;
  }
}

async function verify(
  batches: Array<{ batch: SinkBatch; planned: Planned }>,
  config: StripeSinkConfig,
  ctx: SinkContext,
): Promise<Map<string, Holding>> {
  const found = new Map<string, Holding>();
  const wanted = new Set(batches.filter((b) => b.planned.action === 'invoice_item').map((b) => b.batch.key));
  if (wanted.size === 0) return found;
  await eachInvoiceItem(config, ctx, (item) => {
    const key = item.metadata?.recon_key;
    if (key && wanted.has(key) && !found.has(key)) found.set(key, { key, amountMinor: item.amount, ref: item.id });
    return found.size < wanted.size;
  });
  return found;
}

const floorMinute = (d: Date) => Math.floor(d.getTime() / 60_000) * 60;
const ceilMinute = (d: Date) => Math.ceil(d.getTime() / 60_000) * 60;

async function holdings(
  scope: { tenant: string; from: Date; to: Date; keys: string[] },
  config: StripeSinkConfig,
  ctx: SinkContext,
): Promise<Holding[]> {
  const keys = new Set(scope.keys);
  const out: Holding[] = [];
  await eachInvoiceItem(config, ctx, (item) => {
    const md = item.metadata ?? {};
    if (!md.recon_key || md.recon_tenant !== scope.tenant) return;
    const at = md.recon_event_at ? Date.parse(md.recon_event_at) : NaN;
    const inRange = !Number.isNaN(at) && at >= scope.from.getTime() && at < scope.to.getTime();
    if (keys.has(md.recon_key) || inRange) out.push({ key: md.recon_key, amountMinor: item.amount, ref: item.id });
  });
  if (config.mode === 'meter_events') {
    let meter: z.infer<typeof MeterResponse> | undefined;
    let after: string | null = null;
    while (!meter) {
      const q = new URLSearchParams({ limit: '100' });
      if (after) q.set('starting_after', after);
      const page = await getJson(config, ctx, `/v1/billing/meters?${q.toString()}`, MeterList);
      meter =
        page.data.find((m) => m.event_name === config.eventName && m.status === 'active') ??
        page.data.find((m) => m.event_name === config.eventName);
      if (meter || !page.has_more || page.data.length === 0) break;
      after = page.data[page.data.length - 1].id;
    }
    if (!meter)
      throw new ReconError(
        'stripe_meter_missing',
        `Stripe has no meter with event_name "${config.eventName}": create it in Stripe or fix the sink's eventName`,
      );
    let quantity = 0;
    let cursor: string | null = null;
    for (;;) {
      const q = new URLSearchParams({
        customer: config.customer,
        start_time: String(floorMinute(scope.from)),
        end_time: String(ceilMinute(scope.to)),
        limit: '100',
      });
      if (cursor) q.set('starting_after', cursor);
      const page = await getJson(
        config,
        ctx,
        `/v1/billing/meters/${encodeURIComponent(meter.id)}/event_summaries?${q.toString()}`,
        MeterEventSummaryList,
      );
      for (const s of page.data) quantity += s.aggregated_value;
      if (!page.has_more || page.data.length === 0) break;
      cursor = page.data[page.data.length - 1].id;
    }
    out.push({ key: `meter:${config.eventName}`, quantity, ref: meter.id });
  }
  return out;
}

export const stripeAdapter: SinkAdapter<StripeSinkConfig> = {
  kind: 'stripe',
  dedupWindowMs: () => DAY_MS,
  // Lines only add to a meter event's value or an invoice item's amount: no need to cap counts.
  maxLinesPerBatch: () => 1_000_000,
  maxAmountPerBatch: (config) => (config.mode === 'invoice_items' ? STRIPE_MAX_AMOUNT : null),
  batchesPerCall: () => 1,
  takes(config, kind: LedgerKind) {
    if (config.mode === 'invoice_items') return true;
    return kind === 'charge' || kind === 'credit' || config.periodLines === 'invoice_items';
  },
  plan,
  async send(batches, config, ctx) {
    const results: SendResult[] = [];
    for (const item of batches) results.push(await sendOne(item, config, ctx));
    return results;
  },
  verifiable: (planned) => planned.action === 'invoice_item',
  verify,
  holdings,
};
