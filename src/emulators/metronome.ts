import { randomUUID } from 'node:crypto';
import type { EmulatorHandle, EmulatorOptions } from './common';
import { bearerAuthorized, startHttpEmulator, type EmulatorReply, type EmulatorRequest } from './http-emulator';

/**
 * A stateful emulator of Metronome's usage ingest, written from Metronome's documentation:
 *
 * - POST /v1/ingest (https://docs.metronome.com/api-reference/usage/ingest-events): a JSON array of
 *   1 to 100 usage events, Bearer token; 200 with an empty body.
 * - Events (https://docs.metronome.com/guides/events/send-usage-events): transaction_id, customer_id
 *   (a customer id or an ingest alias), event_type, timestamp (RFC 3339, 4-digit year; more than 24
 *   hours in the future is rejected), properties. "Once a usage event is accepted with a given
 *   transaction ID, subsequent events within the next 34 days with the same ID are treated as
 *   duplicates and ignored": a repeat is answered 200 and counts nothing.
 * - An event for a customer_id no customer has is kept; it counts towards a customer once one gets that
 *   alias ("Metronome retroactively associates that usage",
 *   https://docs.metronome.com/guides/get-started/core-concepts/provision-customer).
 * - POST /v1/events/search (https://docs.metronome.com/api-reference/usage/search-events): events by
 *   transaction id, of the last 34 days, with is_duplicate and matched_customer.
 * - POST /v1/customers and POST /v1/customers/{id}/setIngestAliases
 *   (https://docs.metronome.com/api-reference/customers/create-a-customer): an ingest alias already
 *   in use is a 409 (https://docs.metronome.com/api-reference/idempotency).
 * - Errors (https://docs.metronome.com/api-reference/status-codes): every 4xx is {"message": "..."}.
 */

export const METRONOME_DEDUP_WINDOW_MS = 34 * 24 * 3600_000;
export const METRONOME_MAX_EVENTS_PER_CALL = 100;
export const METRONOME_FUTURE_LIMIT_MS = 24 * 3600_000;
/** The search endpoint "looks at transactions that occurred in the last 34 days". */
export const METRONOME_SEARCH_WINDOW_MS = 34 * 24 * 3600_000;

export interface MetronomeCustomer {
  id: string;
  name: string;
  ingest_aliases: string[];
}

/** One event as the emulator keeps it: every accepted request's events, repeats marked. */
export interface MetronomeStoredEvent {
  id: string;
  transaction_id: string;
  customer_id: string;
  event_type: string;
  timestamp: string;
  properties: Record<string, unknown>;
  processed_at: string;
  is_duplicate: boolean;
}

export interface MetronomeState {
  customers: MetronomeCustomer[];
  events: MetronomeStoredEvent[];
}

export interface MetronomeEmulatorOptions extends EmulatorOptions {
  /** Customers present at start (a state file's customers are kept; these are added when new). */
  customers?: Array<{ id?: string; name: string; ingest_aliases?: string[] }>;
}

export interface MetronomeEmulatorHandle extends EmulatorHandle {
  state(): MetronomeState;
}

// RFC 3339 date-time with a 4-digit year, as the ingest guide requires.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

const error = (status: number, message: string): EmulatorReply => ({ status, json: { message } });

function parseJson(body: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(body) as unknown };
  } catch {
    return { ok: false };
  }
}

/** Why an event is malformed, or null. */
function eventProblem(e: unknown, index: number, now: Date): string | null {
  if (!e || typeof e !== 'object' || Array.isArray(e)) return `event ${index}: expected an object`;
  const ev = e as Record<string, unknown>;
  for (const field of ['transaction_id', 'customer_id', 'event_type', 'timestamp'] as const) {
    if (typeof ev[field] !== 'string' || ev[field] === '')
      return `event ${index}: ${field} is required and must be a non-empty string`;
  }
  const ts = ev.timestamp as string;
  const at = Date.parse(ts);
  if (!RFC3339.test(ts) || Number.isNaN(at))
    return `event ${index}: timestamp must be an RFC 3339 string such as 2025-01-23T01:23:45Z`;
  if (at > now.getTime() + METRONOME_FUTURE_LIMIT_MS)
    return `event ${index}: timestamp is more than 24 hours in the future`;
  if (
    ev.properties !== undefined &&
    (!ev.properties || typeof ev.properties !== 'object' || Array.isArray(ev.properties))
  )
    return `event ${index}: properties must be an object`;
  return null;
}

function matchedCustomer(state: MetronomeState, customerId: string): MetronomeCustomer | undefined {
  return state.customers.find((c) => c.id === customerId || c.ingest_aliases.includes(customerId));
}

function aliasTaken(state: MetronomeState, aliases: string[], except?: string): string | undefined {
  return aliases.find((a) => state.customers.some((c) => c.id !== except && c.ingest_aliases.includes(a)));
}

function ingest(req: EmulatorRequest, state: MetronomeState, now: Date): EmulatorReply {
  const parsed = parseJson(req.body);
  if (!parsed.ok) return error(400, 'request body is not valid JSON');
  const events = parsed.value;
  if (!Array.isArray(events)) return error(400, 'request body must be a JSON array of usage events');
  if (events.length < 1 || events.length > METRONOME_MAX_EVENTS_PER_CALL)
    return error(
      400,
      `request body must hold between 1 and ${METRONOME_MAX_EVENTS_PER_CALL} usage events, got ${events.length}`,
    );
  // The whole request is refused when one event is malformed: nothing of it is kept.
  for (let i = 0; i < events.length; i++) {
    const problem = eventProblem(events[i], i, now);
    if (problem) return error(400, problem);
  }
  const processedAt = now.toISOString();
  for (const e of events as Array<Record<string, unknown>>) {
    const txn = e.transaction_id as string;
    const since = now.getTime() - METRONOME_DEDUP_WINDOW_MS;
    const duplicate = state.events.some(
      (s) => s.transaction_id === txn && !s.is_duplicate && Date.parse(s.processed_at) > since,
    );
    state.events.push({
      id: randomUUID(),
      transaction_id: txn,
      customer_id: e.customer_id as string,
      event_type: e.event_type as string,
      timestamp: e.timestamp as string,
      properties: (e.properties as Record<string, unknown> | undefined) ?? {},
      processed_at: processedAt,
      is_duplicate: duplicate,
    });
  }
  return { status: 200, changed: true };
}

function search(req: EmulatorRequest, state: MetronomeState, now: Date): EmulatorReply {
  const parsed = parseJson(req.body);
  const ids = parsed.ok ? (parsed.value as { transactionIds?: unknown } | null)?.transactionIds : undefined;
  if (!Array.isArray(ids) || !ids.every((i) => typeof i === 'string'))
    return error(400, 'transactionIds is required and must be an array of strings');
  const wanted = new Set(ids);
  const since = now.getTime() - METRONOME_SEARCH_WINDOW_MS;
  const found = state.events
    .filter((e) => wanted.has(e.transaction_id) && Date.parse(e.processed_at) > since)
    .map((e) => {
      const customer = matchedCustomer(state, e.customer_id);
      return {
        id: e.id,
        transaction_id: e.transaction_id,
        customer_id: e.customer_id,
        event_type: e.event_type,
        timestamp: e.timestamp,
        properties: e.properties,
        processed_at: e.processed_at,
        is_duplicate: e.is_duplicate,
        ...(customer ? { matched_customer: { id: customer.id, name: customer.name } } : {}),
        matched_billable_metrics: [],
      };
    });
  return { status: 200, json: found };
}

function aliasesOf(value: unknown): string[] | null {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > 2000) return null;
  return value.every((a) => typeof a === 'string' && a.length >= 1 && a.length <= 128) ? (value as string[]) : null;
}

function createCustomer(req: EmulatorRequest, state: MetronomeState): EmulatorReply {
  const parsed = parseJson(req.body);
  const body = parsed.ok ? (parsed.value as Record<string, unknown> | null) : null;
  if (!body || typeof body !== 'object' || typeof body.name !== 'string' || body.name === '')
    return error(400, 'name is required');
  const aliases = aliasesOf(body.ingest_aliases);
  if (!aliases) return error(400, 'ingest_aliases must be an array of up to 2000 strings of 1 to 128 characters');
  const taken = aliasTaken(state, aliases);
  if (taken) return error(409, `ingest alias ${taken} is already in use by another customer`);
  const customer: MetronomeCustomer = { id: randomUUID(), name: body.name.slice(0, 160), ingest_aliases: aliases };
  state.customers.push(customer);
  return {
    status: 200,
    changed: true,
    json: {
      data: { id: customer.id, external_id: aliases[0] ?? customer.id, ingest_aliases: aliases, name: customer.name },
    },
  };
}

function setIngestAliases(req: EmulatorRequest, state: MetronomeState, customerId: string): EmulatorReply {
  const customer = state.customers.find((c) => c.id === customerId);
  if (!customer) return error(404, `customer ${customerId} not found`);
  const parsed = parseJson(req.body);
  const aliases = parsed.ok ? aliasesOf((parsed.value as { ingest_aliases?: unknown } | null)?.ingest_aliases) : null;
  if (!aliases) return error(400, 'ingest_aliases must be an array of up to 2000 strings of 1 to 128 characters');
  const taken = aliasTaken(state, aliases, customer.id);
  if (taken) return error(409, `ingest alias ${taken} is already in use by another customer`);
  customer.ingest_aliases = aliases;
  return { status: 200, changed: true };
}

function parseState(raw: unknown): MetronomeState {
  const s = raw as MetronomeState | null;
  if (!s || !Array.isArray(s.customers) || !Array.isArray(s.events))
    throw new Error('the state file does not hold a Metronome emulator state');
  return s;
}

/**
 * Events that count: accepted, not repeats inside the dedup window. What a billable metric over
 * these events would sum (tests compare it with the ledger).
 */
export function countedMetronomeEvents(state: MetronomeState): MetronomeStoredEvent[] {
  return state.events.filter((e) => !e.is_duplicate);
}

export async function startMetronomeEmulator(opts: MetronomeEmulatorOptions): Promise<MetronomeEmulatorHandle> {
  // Seeds are added to a fresh state and to one read back, so a restart with a state file keeps both.
  const seed = (state: MetronomeState): MetronomeState => {
    for (const c of opts.customers ?? []) {
      const aliases = c.ingest_aliases ?? [];
      if (state.customers.some((x) => (c.id ? x.id === c.id : x.name === c.name))) continue;
      if (aliasTaken(state, aliases)) continue;
      state.customers.push({ id: c.id ?? randomUUID(), name: c.name, ingest_aliases: aliases });
    }
    return state;
  };
  return startHttpEmulator<MetronomeState>(opts, {
    name: 'metronome',
    initialState: () => seed({ customers: [], events: [] }),
    parseState: (raw) => seed(parseState(raw)),
    errorBody: (_status, message) => ({ message }),
    summary: (state) => ({
      customers: state.customers.length,
      events: state.events.length,
      counted: countedMetronomeEvents(state).length,
      duplicates: state.events.filter((e) => e.is_duplicate).length,
    }),
    handle(req, ctx) {
      if (!bearerAuthorized(req, opts.secret)) return error(401, 'Invalid access token');
      const now = ctx.now();
      if (req.method === 'POST' && req.path === '/v1/ingest') return ingest(req, ctx.state, now);
      if (req.method === 'POST' && req.path === '/v1/events/search') return search(req, ctx.state, now);
      if (req.method === 'POST' && req.path === '/v1/customers') return createCustomer(req, ctx.state);
      const m = /^\/v1\/customers\/([^/]+)\/setIngestAliases$/.exec(req.path);
      if (req.method === 'POST' && m) return setIngestAliases(req, ctx.state, decodeURIComponent(m[1]));
      return error(404, `no route ${req.method} ${req.path}`);
    },
  });
}
