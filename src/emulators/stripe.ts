/**
 * A stateful local emulator of the parts of Stripe's API that the Stripe sink uses: customers,
 * billing meters and their event summaries, meter events and their cancellation, invoice items.
 * stripe-mock (Stripe's own) checks that our requests match the OpenAPI spec but keeps no state;
 * this one keeps what Stripe documents it keeps, so the sink's semantics can be tested:
 *
 * - Meter events (https://docs.stripe.com/api/billing/meter-event/create): `identifier` unique
 *   "within a rolling period of at least 24 hours"; `timestamp` "within the past 35 calendar days
 *   or up to 5 minutes in the future". A repeated identifier is answered HTTP 400
 *   invalid_request_error "An event already exists with identifier …", with no error code and
 *   `Stripe-Should-Retry: false` (as seen in production: langfuse/langfuse PR 16292).
 *   Stripe checks customer, meter and value asynchronously (its error codes meter_event_customer_
 *   not_found, no_meter, meter_event_invalid_value come in error reports); the emulator answers
 *   them at once with a 400 so tests see them.
 * - Meter event adjustments (https://docs.stripe.com/api/billing/meter-event-adjustment/create):
 *   "You can only cancel events within 24 hours of Stripe receiving them."
 * - Idempotency (https://docs.stripe.com/api/idempotent_requests): the first result for a key is
 *   replayed for 24 hours; the same key with other parameters is an `idempotency_error`. Results
 *   are saved only once the endpoint ran, so a refused or faulted request saves nothing.
 * - Invoice items (https://docs.stripe.com/api/invoiceitems/create): integer amount in minor units,
 *   negative allowed, at most 8 digits (99,999,999) for two-decimal currencies; lists newest first,
 *   `limit` 1-100, `starting_after` cursors (https://docs.stripe.com/api/pagination).
 * - Errors (https://docs.stripe.com/api/errors): `{ error: { type, code, message, param } }`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { EmulatorHandle, EmulatorOptions, Fault } from './common';

const DAY_MS = 86_400_000;
const IDENTIFIER_WINDOW_MS = DAY_MS;
const CANCEL_WINDOW_MS = DAY_MS;
const IDEMPOTENCY_WINDOW_MS = DAY_MS;
const PAST_LIMIT_S = 35 * 86_400;
const FUTURE_LIMIT_S = 5 * 60;
/** Stripe's largest amount for two-decimal currencies: eight digits. */
const MAX_AMOUNT = 99_999_999;
const FAULT_MODES: Array<Fault['mode']> = ['none', 'down', 'error500', 'rate_limit', 'accept_then_drop', 'hold'];
/** How long the 'hold' fault keeps an answer back unless told otherwise. */
const DEFAULT_HOLD_MS = 10_000;

export interface StripeCustomer {
  id: string;
  object: 'customer';
  created: number;
  name: string | null;
  email: string | null;
  description: string | null;
  metadata: Record<string, string>;
  livemode: false;
}

export interface StripeMeter {
  id: string;
  object: 'billing.meter';
  created: number;
  updated: number;
  display_name: string;
  event_name: string;
  event_time_window: null;
  status: 'active' | 'inactive';
  status_transitions: { deactivated_at: number | null };
  customer_mapping: { event_payload_key: string; type: 'by_id' };
  default_aggregation: { formula: 'sum' | 'count' | 'last' };
  value_settings: { event_payload_key: string };
  livemode: false;
}

export interface StoredMeterEvent {
  identifier: string;
  event_name: string;
  customer: string;
  value: number;
  /** Business time, unix seconds. */
  timestamp: number;
  /** When the emulator received it (its own clock), ms. */
  receivedAt: number;
  payload: Record<string, string>;
  cancelledAt: number | null;
}

export interface StripeInvoiceItem {
  id: string;
  object: 'invoiceitem';
  amount: number;
  currency: string;
  customer: string;
  date: number;
  description: string | null;
  discountable: boolean;
  discounts: never[];
  invoice: null;
  livemode: false;
  metadata: Record<string, string>;
  parent: null;
  period: { start: number; end: number };
  proration: false;
  quantity: number;
  tax_rates: never[];
  test_clock: null;
}

interface SavedResponse {
  at: number;
  method: string;
  path: string;
  params: string;
  status: number;
  body: string;
}

export interface StripeEmulatorState {
  customers: StripeCustomer[];
  meters: StripeMeter[];
  meterEvents: StoredMeterEvent[];
  /** In creation order (lists answer newest first). */
  invoiceItems: StripeInvoiceItem[];
  idempotency: Record<string, SavedResponse>;
}

export interface StripeEmulatorOptions extends EmulatorOptions {
  /** Customers to create at start (ids as given, e.g. cus_demo) unless the state already has them. */
  customers?: string[];
  /** Meters (event names, sum aggregation) to create at start unless an active one exists. */
  meters?: string[];
}

export interface StripeEmulatorHandle extends EmulatorHandle {
  customers(): StripeCustomer[];
  meters(): StripeMeter[];
  meterEvents(): StoredMeterEvent[];
  invoiceItems(): StripeInvoiceItem[];
  /** Creates a customer with this id (Stripe picks ids itself; seeding needs a known one). */
  seedCustomer(id: string, name?: string): StripeCustomer;
  /** Creates an active sum meter for this event name, or returns the existing one. */
  seedMeter(eventName: string): StripeMeter;
}

class StripeHttpError extends Error {
  constructor(
    public readonly status: number,
    public readonly error: { type: string; code?: string; message: string; param?: string },
    public readonly headers: Record<string, string> = {},
  ) {
    super(error.message);
  }
}

function invalid(message: string, param?: string, code?: string): StripeHttpError {
  return new StripeHttpError(400, {
    type: 'invalid_request_error',
    message,
    ...(code ? { code } : {}),
    ...(param ? { param } : {}),
  });
}

function noSuchCustomer(id: string, param: string, status = 400): StripeHttpError {
  return new StripeHttpError(status, {
    type: 'invalid_request_error',
    code: 'resource_missing',
    message: `No such customer: '${id}'`,
    param,
  });
}

function missing(param: string): StripeHttpError {
  return invalid(`Missing required param: ${param}.`, param, 'parameter_missing');
}

type Form = { [k: string]: string | Form | Array<string | Form> };

/** Stripe's form encoding: `a[b][c]=v` nests, `a[]=v` appends. */
export function parseStripeForm(body: string): Form {
  const out: Form = {};
  for (const [rawKey, value] of new URLSearchParams(body)) {
    const parts = rawKey.split('[').map((p, i) => (i === 0 ? p : p.replace(/\]$/, '')));
    let node: Form | Array<string | Form> = out;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      const last = i === parts.length - 1;
      if (Array.isArray(node)) {
        if (last) node.push(value);
        else {
          const child: Form = {};
          node.push(child);
          node = child;
        }
        continue;
      }
      if (last) {
        node[part] = value;
      } else {
        const nextIsArray = parts[i + 1] === '';
        const existing: string | Form | Array<string | Form> | undefined = node[part];
        if (existing === undefined || typeof existing === 'string') node[part] = nextIsArray ? [] : {};
        node = node[part] as Form | Array<string | Form>;
        if (nextIsArray && Array.isArray(node) && i + 1 === parts.length - 1) {
          node.push(value);
          break;
        }
      }
    }
  }
  return out;
}

function str(form: Form, key: string): string | undefined {
  const v = form[key];
  return typeof v === 'string' ? v : undefined;
}

function obj(form: Form, key: string): Form {
  const v = form[key];
  return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
}

/** Canonical text of the parameters, for comparing an idempotent retry with the first request. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function newId(prefix: string): string {
  const bytes = randomBytes(14);
  let s = '';
  for (const b of bytes) s += ALNUM[b % ALNUM.length];
  return `${prefix}_${s}`;
}

function emptyState(): StripeEmulatorState {
  return { customers: [], meters: [], meterEvents: [], invoiceItems: [], idempotency: {} };
}

function loadState(file: string | undefined): StripeEmulatorState {
  if (!file) return emptyState();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    throw err;
  }
  return { ...emptyState(), ...(JSON.parse(text) as Partial<StripeEmulatorState>) };
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Stripe shows the key's last four characters only. */
function maskedKey(key: string): string {
  const m = /^((?:sk|rk)_(?:test|live)_)/.exec(key);
  return `${m ? m[1] : ''}${'*'.repeat(Math.max(0, key.length - (m ? m[1].length : 0) - 4))}${key.slice(-4)}`;
}

export async function startStripeEmulator(opts: StripeEmulatorOptions): Promise<StripeEmulatorHandle> {
  const state = loadState(opts.stateFile);
  let fault: Fault = { mode: 'none' };
  let faultLeft = Infinity;
  let holdFor = DEFAULT_HOLD_MS;
  let clockOffsetMs = 0;
  const now = () => Date.now() + clockOffsetMs;
  const nowS = () => Math.floor(now() / 1000);
  const log = opts.log ?? (() => undefined);

  const persist = () => {
    if (!opts.stateFile) return;
    mkdirSync(path.dirname(path.resolve(opts.stateFile)), { recursive: true });
    // Written aside and renamed, so a kill mid-write never leaves half a file for the restart.
    const tmp = `${opts.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(state));
    renameSync(tmp, opts.stateFile);
  };

  const customerById = (id: string) => state.customers.find((c) => c.id === id);
  const activeMeter = (eventName: string) =>
    state.meters.find((m) => m.event_name === eventName && m.status === 'active');

  const seedCustomer = (id: string, name?: string): StripeCustomer => {
    const found = customerById(id);
    if (found) return found;
    const c: StripeCustomer = {
      id,
      object: 'customer',
      created: nowS(),
      name: name ?? null,
      email: null,
      description: null,
      metadata: {},
      livemode: false,
    };
    state.customers.push(c);
    persist();
    return c;
  };

  const createMeter = (
    eventName: string,
    displayName: string,
    formula: 'sum' | 'count' | 'last',
    customerKey: string,
    valueKey: string,
  ) => {
    const t = nowS();
    const m: StripeMeter = {
      id: newId('mtr'),
      object: 'billing.meter',
      created: t,
      updated: t,
      display_name: displayName,
      event_name: eventName,
      event_time_window: null,
      status: 'active',
      status_transitions: { deactivated_at: null },
      customer_mapping: { event_payload_key: customerKey, type: 'by_id' },
      default_aggregation: { formula },
      value_settings: { event_payload_key: valueKey },
      livemode: false,
    };
    state.meters.push(m);
    persist();
    return m;
  };

  const seedMeter = (eventName: string): StripeMeter =>
    activeMeter(eventName) ?? createMeter(eventName, eventName, 'sum', 'stripe_customer_id', 'value');

  for (const c of opts.customers ?? []) seedCustomer(c);
  for (const m of opts.meters ?? []) seedMeter(m);

  // ---- endpoints -------------------------------------------------------------------------

  const postCustomer = (form: Form): [number, unknown] => {
    const c: StripeCustomer = {
      id: newId('cus'),
      object: 'customer',
      created: nowS(),
      name: str(form, 'name') ?? null,
      email: str(form, 'email') ?? null,
      description: str(form, 'description') ?? null,
      metadata: metadataOf(form),
      livemode: false,
    };
    state.customers.push(c);
    return [200, c];
  };

  const metadataOf = (form: Form): Record<string, string> => {
    const md = obj(form, 'metadata');
    const out: Record<string, string> = {};
    const keys = Object.keys(md);
    // https://docs.stripe.com/metadata: 50 keys, names up to 40 characters, values up to 500.
    if (keys.length > 50) throw invalid('You can only specify up to 50 metadata keys.', 'metadata');
    for (const k of keys) {
      const v = md[k];
      if (typeof v !== 'string') throw invalid(`Invalid metadata[${k}]: must be a string`, `metadata[${k}]`);
      if (k.length > 40)
        throw invalid(`Metadata keys can have up to 40 characters; "${k}" has ${k.length}.`, `metadata[${k}]`);
      if (v.length > 500) throw invalid(`Metadata values can have up to 500 characters.`, `metadata[${k}]`);
      out[k] = v;
    }
    return out;
  };

  const postMeter = (form: Form): [number, unknown] => {
    const eventName = str(form, 'event_name');
    const displayName = str(form, 'display_name');
    const formula = str(obj(form, 'default_aggregation'), 'formula');
    if (!displayName) throw missing('display_name');
    if (!eventName) throw missing('event_name');
    if (!formula) throw missing('default_aggregation[formula]');
    if (formula !== 'sum' && formula !== 'count' && formula !== 'last')
      throw invalid(
        `Invalid default_aggregation[formula]: must be one of sum, count, or last`,
        'default_aggregation[formula]',
      );
    if (eventName.length > 100) throw invalid('event_name must be at most 100 characters.', 'event_name');
    if (activeMeter(eventName))
      throw invalid(`An active meter with event_name \`${eventName}\` already exists.`, 'event_name');
    const customerKey = str(obj(form, 'customer_mapping'), 'event_payload_key') ?? 'stripe_customer_id';
    const valueKey = str(obj(form, 'value_settings'), 'event_payload_key') ?? 'value';
    return [200, createMeter(eventName, displayName, formula, customerKey, valueKey)];
  };

  const listOf = <T extends { id: string }>(items: T[], url: string, query: URLSearchParams): unknown => {
    const limitText = query.get('limit') ?? '10';
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > 100)
      throw invalid('Invalid integer: limit must be between 1 and 100', 'limit');
    let start = 0;
    const after = query.get('starting_after');
    if (after) {
      const i = items.findIndex((x) => x.id === after);
      if (i < 0) throw invalid(`No such object: '${after}'`, 'starting_after', 'resource_missing');
      start = i + 1;
    }
    const data = items.slice(start, start + limit);
    return { object: 'list', data, has_more: start + limit < items.length, url };
  };

  const postMeterEvent = (form: Form): [number, unknown] => {
    const eventName = str(form, 'event_name');
    if (!eventName) throw missing('event_name');
    const payloadForm = obj(form, 'payload');
    if (Object.keys(payloadForm).length === 0) throw missing('payload');
    const meter = activeMeter(eventName);
    if (!meter) throw invalid(`No active meter was found with event_name \`${eventName}\`.`, 'event_name', 'no_meter');
    const t = now();
    const identifier = str(form, 'identifier') ?? newId('evt');
    if (identifier.length > 100) throw invalid('identifier must be at most 100 characters.', 'identifier');
    const tsText = str(form, 'timestamp');
    if (tsText !== undefined && !/^\d+$/.test(tsText))
      throw invalid('Invalid timestamp: must be an integer Unix timestamp', 'timestamp');
    const timestamp = tsText === undefined ? Math.floor(t / 1000) : Number(tsText);
    if (timestamp < Math.floor(t / 1000) - PAST_LIMIT_S)
      throw invalid('Timestamp must be no more than 35 days in the past.', 'timestamp', 'timestamp_too_far_in_past');
    if (timestamp > Math.floor(t / 1000) + FUTURE_LIMIT_S)
      throw invalid('Timestamp must be no more than 5 minutes in the future.', 'timestamp', 'timestamp_in_future');
    const customerKey = meter.customer_mapping.event_payload_key;
    const valueKey = meter.value_settings.event_payload_key;
    const customer = str(payloadForm, customerKey);
    if (!customer)
      throw invalid(
        `The payload must contain \`${customerKey}\`.`,
        `payload[${customerKey}]`,
        'meter_event_no_customer_defined',
      );
    if (!customerById(customer)) throw noSuchCustomer(customer, `payload[${customerKey}]`);
    const valueText = str(payloadForm, valueKey);
    if (valueText === undefined)
      throw invalid(`The payload must contain \`${valueKey}\`.`, `payload[${valueKey}]`, 'meter_event_value_not_found');
    if (!/^-?\d+$/.test(valueText))
      throw invalid(
        `The value of \`${valueKey}\` must be an integer.`,
        `payload[${valueKey}]`,
        'meter_event_invalid_value',
      );
    const earlier = state.meterEvents.find(
      (e) => e.identifier === identifier && t - e.receivedAt < IDENTIFIER_WINDOW_MS,
    );
    if (earlier)
      throw new StripeHttpError(
        400,
        { type: 'invalid_request_error', message: `An event already exists with identifier ${identifier}.` },
        { 'Stripe-Should-Retry': 'false' },
      );
    const payload: Record<string, string> = {};
    for (const [k, v] of Object.entries(payloadForm)) if (typeof v === 'string') payload[k] = v;
    state.meterEvents.push({
      identifier,
      event_name: eventName,
      customer,
      value: Number(valueText),
      timestamp,
      receivedAt: t,
      payload,
      cancelledAt: null,
    });
    return [
      200,
      {
        object: 'billing.meter_event',
        created: Math.floor(t / 1000),
        event_name: eventName,
        identifier,
        livemode: false,
        payload,
        timestamp,
      },
    ];
  };

  const postMeterEventAdjustment = (form: Form): [number, unknown] => {
    const type = str(form, 'type');
    const eventName = str(form, 'event_name');
    if (!eventName) throw missing('event_name');
    if (!type) throw missing('type');
    if (type !== 'cancel') throw invalid('Invalid type: must be one of cancel', 'type');
    const identifier = str(obj(form, 'cancel'), 'identifier');
    if (!identifier) throw missing('cancel[identifier]');
    const event = state.meterEvents.find((e) => e.identifier === identifier && e.event_name === eventName);
    if (!event)
      throw invalid(
        `No meter event with identifier ${identifier} was found for event_name \`${eventName}\`.`,
        'cancel[identifier]',
        'resource_missing',
      );
    const t = now();
    if (event.cancelledAt === null) {
      if (t - event.receivedAt >= CANCEL_WINDOW_MS)
        throw invalid(
          `Meter event ${identifier} cannot be cancelled: events can only be cancelled within 24 hours of Stripe receiving them.`,
          'cancel[identifier]',
        );
      event.cancelledAt = t;
    }
    return [
      200,
      {
        object: 'billing.meter_event_adjustment',
        livemode: false,
        status: 'complete',
        event_name: eventName,
        type: 'cancel',
        cancel: { identifier },
      },
    ];
  };

  const eventSummaries = (meterId: string, query: URLSearchParams): [number, unknown] => {
    const meter = state.meters.find((m) => m.id === meterId);
    if (!meter)
      throw new StripeHttpError(404, {
        type: 'invalid_request_error',
        code: 'resource_missing',
        message: `No such billing.meter: '${meterId}'`,
        param: 'id',
      });
    const customer = query.get('customer');
    const start = query.get('start_time');
    const end = query.get('end_time');
    if (!customer) throw missing('customer');
    if (!start) throw missing('start_time');
    if (!end) throw missing('end_time');
    if (!/^\d+$/.test(start) || Number(start) % 60 !== 0)
      throw invalid('start_time must be aligned with minute boundaries.', 'start_time');
    if (!/^\d+$/.test(end) || Number(end) % 60 !== 0)
      throw invalid('end_time must be aligned with minute boundaries.', 'end_time');
    if (Number(end) <= Number(start)) throw invalid('end_time must be after start_time.', 'end_time');
    const events = state.meterEvents
      .filter((e) => e.event_name === meter.event_name && e.customer === customer && e.cancelledAt === null)
      .filter((e) => e.timestamp >= Number(start) && e.timestamp < Number(end))
      .sort((a, b) => a.timestamp - b.timestamp || a.receivedAt - b.receivedAt);
    const formula = meter.default_aggregation.formula;
    const aggregated =
      formula === 'count'
        ? events.length
        : formula === 'last'
          ? (events.at(-1)?.value ?? 0)
          : events.reduce((s, e) => s + e.value, 0);
    const summary = {
      id: `mtrusg_${createHash('sha256').update(`${meter.id}:${customer}:${start}:${end}`).digest('hex').slice(0, 24)}`,
      object: 'billing.meter_event_summary',
      aggregated_value: aggregated,
      end_time: Number(end),
      livemode: false,
      meter: meter.id,
      start_time: Number(start),
    };
    return [
      200,
      { object: 'list', data: [summary], has_more: false, url: `/v1/billing/meters/${meter.id}/event_summaries` },
    ];
  };

  const postInvoiceItem = (form: Form): [number, unknown] => {
    const customer = str(form, 'customer');
    if (!customer) throw missing('customer');
    const amountText = str(form, 'amount');
    const currency = str(form, 'currency');
    if (amountText === undefined) throw missing('amount');
    if (!/^-?\d+$/.test(amountText)) throw invalid('Invalid integer: ' + amountText, 'amount');
    const amount = Number(amountText);
    if (Math.abs(amount) > MAX_AMOUNT)
      throw invalid(
        'Amount must be no more than 99999999 in the smallest currency unit (e.g. $999,999.99).',
        'amount',
        'amount_too_large',
      );
    if (!currency) throw missing('currency');
    if (!/^[a-z]{3}$/.test(currency))
      throw invalid(
        `Invalid currency: ${currency}. Stripe currently supports these currencies: lowercase ISO codes such as usd, eur.`,
        'currency',
      );
    if (!customerById(customer)) throw noSuchCustomer(customer, 'customer');
    const description = str(form, 'description') ?? null;
    if (description && description.length > 5000)
      throw invalid('description must be at most 5000 characters.', 'description');
    const metadata = metadataOf(form);
    const t = nowS();
    const item: StripeInvoiceItem = {
      id: newId('ii'),
      object: 'invoiceitem',
      amount,
      currency,
      customer,
      date: t,
      description,
      // Negative invoice items are not discountable by default (Stripe's `discountable`).
      discountable: amount >= 0,
      discounts: [],
      invoice: null,
      livemode: false,
      metadata,
      parent: null,
      period: { start: t, end: t },
      proration: false,
      quantity: 1,
      tax_rates: [],
      test_clock: null,
    };
    state.invoiceItems.push(item);
    return [200, item];
  };

  const listInvoiceItems = (query: URLSearchParams): [number, unknown] => {
    const customer = query.get('customer');
    const items = state.invoiceItems
      .filter((i) => !customer || i.customer === customer)
      .slice()
      .reverse();
    return [200, listOf(items, '/v1/invoiceitems', query)];
  };

  // ---- routing ---------------------------------------------------------------------------

  const route = (method: string, pathname: string, form: Form, query: URLSearchParams): [number, unknown] => {
    if (method === 'POST' && pathname === '/v1/customers') return postCustomer(form);
    let m = /^\/v1\/customers\/([^/]+)$/.exec(pathname);
    if (method === 'GET' && m) {
      const c = customerById(decodeURIComponent(m[1]));
      if (!c) throw noSuchCustomer(decodeURIComponent(m[1]), 'id', 404);
      return [200, c];
    }
    if (method === 'POST' && pathname === '/v1/billing/meters') return postMeter(form);
    if (method === 'GET' && pathname === '/v1/billing/meters') {
      const status = query.get('status');
      return [
        200,
        listOf(
          state.meters.filter((x) => !status || x.status === status),
          '/v1/billing/meters',
          query,
        ),
      ];
    }
    m = /^\/v1\/billing\/meters\/([^/]+)$/.exec(pathname);
    if (method === 'GET' && m) {
      const meter = state.meters.find((x) => x.id === m![1]);
      if (!meter)
        throw new StripeHttpError(404, {
          type: 'invalid_request_error',
          code: 'resource_missing',
          message: `No such billing.meter: '${m[1]}'`,
          param: 'id',
        });
      return [200, meter];
    }
    m = /^\/v1\/billing\/meters\/([^/]+)\/event_summaries$/.exec(pathname);
    if (method === 'GET' && m) return eventSummaries(decodeURIComponent(m[1]), query);
    if (method === 'POST' && pathname === '/v1/billing/meter_events') return postMeterEvent(form);
    if (method === 'POST' && pathname === '/v1/billing/meter_event_adjustments') return postMeterEventAdjustment(form);
    if (method === 'POST' && pathname === '/v1/invoiceitems') return postInvoiceItem(form);
    if (method === 'GET' && pathname === '/v1/invoiceitems') return listInvoiceItems(query);
    throw new StripeHttpError(404, {
      type: 'invalid_request_error',
      message: `Unrecognized request URL (${method}: ${pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
    });
  };

  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body, null, 2);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Request-Id': newId('req'), ...headers });
    res.end(text);
  };

  const control = async (req: http.IncomingMessage, res: http.ServerResponse, pathname: string) => {
    if (req.method === 'GET' && pathname === '/_emulator/state') return send(res, 200, state);
    const bad = (message: string) => send(res, 400, { error: { type: 'invalid_request_error', message } });
    let json: Record<string, unknown>;
    try {
      const body = await readBody(req);
      const parsed: unknown = body ? JSON.parse(body) : {};
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return bad('expected a JSON object');
      json = parsed as Record<string, unknown>;
    } catch {
      return bad('expected a JSON object');
    }
    if (req.method === 'POST' && pathname === '/_emulator/fault') {
      const { mode, times, retryAfterSeconds, holdMs } = json;
      if (typeof mode !== 'string' || !FAULT_MODES.includes(mode as Fault['mode']))
        return bad(`mode must be one of ${FAULT_MODES.join(', ')}`);
      if (times !== undefined && !(Number.isInteger(times) && (times as number) > 0))
        return bad('times must be a positive integer');
      if (
        retryAfterSeconds !== undefined &&
        !(Number.isInteger(retryAfterSeconds) && (retryAfterSeconds as number) >= 0)
      )
        return bad('retryAfterSeconds must be a whole number of seconds');
      if (holdMs !== undefined && !(Number.isInteger(holdMs) && (holdMs as number) >= 0))
        return bad('holdMs must be a whole number of milliseconds');
      handle.setFault({
        mode: mode as Fault['mode'],
        times: times as number | undefined,
        retryAfterSeconds: retryAfterSeconds as number | undefined,
        holdMs: holdMs as number | undefined,
      });
      return send(res, 200, { fault });
    }
    if (req.method === 'POST' && pathname === '/_emulator/clock') {
      if (!Number.isFinite(json.offsetMs)) return bad('offsetMs must be a number of milliseconds');
      handle.setClockOffset(json.offsetMs as number);
      return send(res, 200, { offsetMs: clockOffsetMs });
    }
    return send(res, 404, {
      error: { type: 'invalid_request_error', message: `unknown control endpoint ${pathname}` },
    });
  };

  /** The answer is ready and the state saved; the client hears it only after this wait, if it still listens. */
  const held = (ms: number, what: string) => {
    log(`[stripe-emulator] ${what}: answer held ${ms} ms (fault hold)`);
    return new Promise((r) => setTimeout(r, ms).unref());
  };

  /** The fault to apply to this request, counting it down. */
  const takeFault = (): Fault['mode'] => {
    if (fault.mode === 'none' || faultLeft <= 0) return 'none';
    faultLeft -= 1;
    const mode = fault.mode;
    if (mode === 'hold') holdFor = fault.holdMs ?? DEFAULT_HOLD_MS;
    if (faultLeft <= 0) fault = { mode: 'none' };
    return mode;
  };

  const onRequest = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    if (url.pathname.startsWith('/_emulator/')) return control(req, res, url.pathname);
    const body = await readBody(req);
    const mode = takeFault();
    const holdMs = holdFor;
    log(`[stripe-emulator] ${method} ${url.pathname}${mode !== 'none' ? ` (fault ${mode})` : ''}`);
    if (mode === 'down') return req.socket.destroy();
    if (mode === 'error500')
      return send(res, 500, { error: { type: 'api_error', message: 'An unknown error occurred' } });
    if (mode === 'rate_limit')
      return send(
        res,
        429,
        {
          error: {
            type: 'invalid_request_error',
            code: 'rate_limit',
            message: 'Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.',
          },
        },
        { 'Retry-After': String(fault.retryAfterSeconds ?? lastRetryAfter) },
      );

    const auth = req.headers.authorization ?? '';
    const key = auth.startsWith('Bearer ')
      ? auth.slice(7)
      : auth.startsWith('Basic ')
        ? Buffer.from(auth.slice(6), 'base64').toString('utf8').replace(/:.*$/, '')
        : '';
    if (!key)
      return send(res, 401, {
        error: {
          type: 'invalid_request_error',
          message:
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        },
      });
    if (key !== opts.secret)
      return send(res, 401, {
        error: {
          type: 'invalid_request_error',
          code: 'api_key_invalid',
          message: `Invalid API Key provided: ${maskedKey(key)}`,
        },
      });

    const form = method === 'POST' ? parseStripeForm(body) : {};
    const idemKey = method === 'POST' ? req.headers['idempotency-key'] : undefined;
    const params = canonical(form);
    let status: number;
    let answer: unknown;
    let headers: Record<string, string> = {};
    if (typeof idemKey === 'string' && idemKey !== '') {
      const saved = state.idempotency[idemKey];
      if (saved && now() - saved.at < IDEMPOTENCY_WINDOW_MS) {
        if (saved.path !== url.pathname || saved.params !== params)
          return send(res, 400, {
            error: {
              type: 'idempotency_error',
              message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idemKey}' if you meant to execute a different request.`,
            },
          });
        if (mode === 'accept_then_drop') return req.socket.destroy();
        if (mode === 'hold') await held(holdMs, `${method} ${url.pathname} replayed`);
        return send(res, saved.status, saved.body, { 'Idempotent-Replayed': 'true', 'Idempotency-Key': idemKey });
      }
    }
    try {
      [status, answer] = route(method, url.pathname, form, url.searchParams);
    } catch (err) {
      if (!(err instanceof StripeHttpError)) throw err;
      status = err.status;
      answer = { error: err.error };
      headers = err.headers;
    }
    const text = JSON.stringify(answer, null, 2);
    if (method === 'POST' && status < 300) {
      if (typeof idemKey === 'string' && idemKey !== '') {
        for (const [k, v] of Object.entries(state.idempotency))
          if (now() - v.at >= IDEMPOTENCY_WINDOW_MS) delete state.idempotency[k];
        state.idempotency[idemKey] = { at: now(), method, path: url.pathname, params, status, body: text };
      }
      persist();
    }
    if (mode === 'accept_then_drop') return req.socket.destroy();
    if (mode === 'hold') await held(holdMs, `${method} ${url.pathname} -> ${status}`);
    send(
      res,
      status,
      text,
      typeof idemKey === 'string' && idemKey ? { ...headers, 'Idempotency-Key': idemKey } : headers,
    );
  };

  let lastRetryAfter = 1;
  const server = http.createServer((req, res) => {
    onRequest(req, res).catch((err: unknown) => {
      log(`[stripe-emulator] internal error: ${(err as Error).message}`);
      if (!res.headersSent) send(res, 500, { error: { type: 'api_error', message: 'An unknown error occurred' } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const handle: StripeEmulatorHandle = {
    url: `http://127.0.0.1:${port}`,
    port,
    setFault(f: Fault) {
      fault = f.mode === 'none' ? { mode: 'none' } : { ...f };
      faultLeft = f.times ?? Infinity;
      if (f.retryAfterSeconds !== undefined) lastRetryAfter = f.retryAfterSeconds;
    },
    setClockOffset(ms: number) {
      clockOffsetMs = ms;
    },
    customers: () => structuredClone(state.customers),
    meters: () => structuredClone(state.meters),
    meterEvents: () => structuredClone(state.meterEvents),
    invoiceItems: () => structuredClone(state.invoiceItems),
    seedCustomer,
    seedMeter,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return handle;
}
