import type { EmulatorHandle, EmulatorOptions } from './common';
import { sameSecret, startHttpEmulator, type EmulatorReply, type EmulatorRequest } from './http-emulator';

/**
 * A stateful emulator of the parts of Zendesk Support the Zendesk record source reads, written from
 * Zendesk's documentation:
 *
 * - GET /api/v2/incremental/tickets/cursor.json, the cursor-based Incremental Ticket Export
 *   (https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/,
 *   https://developer.zendesk.com/documentation/ticketing/managing-tickets/using-the-incremental-export-api):
 *   `start_time` (unix seconds, "at least one minute in the past") on the first request, `cursor`
 *   after; tickets in the order of their generated_timestamp (moved by every change), so a ticket
 *   changed during an export comes again later; "items that were created or changed within the
 *   minute prior to your request are excluded"; `per_page` up to 1000; `include=metric_sets`
 *   sideloads the ticket metrics; `exclude_deleted=true` leaves deleted tickets out, which are
 *   otherwise exported with status "deleted". The answer: tickets, metric_sets, after_cursor,
 *   after_url, before_cursor, before_url, end_of_stream ("true if the current request has returned
 *   all the results up to the current time"). Cursors encode the position as Zendesk's do
 *   (base64 of "<timestamp>.0||<ticket id>|", as in the documented example MTU3NjYxMzUzOS4wfHw0Njd8).
 * - "You can make up to 10 requests per minute to these endpoints": the 11th in a minute is a 429
 *   with Retry-After in seconds (https://developer.zendesk.com/api-reference/introduction/rate-limits/).
 *   The limit is an option, so tests can scale it or switch it off.
 * - Tickets (https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/): POST
 *   /api/v2/tickets.json (201, a comment is required), GET and PUT /api/v2/tickets/{id}.json (a
 *   closed ticket cannot be updated: 422), DELETE /api/v2/tickets/{id}.json (204; the ticket is then
 *   exported with status deleted, and 404 to the tickets API). Each change moves updated_at and
 *   the ticket's metric set (https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_metrics/):
 *   solved_at at each solve, reopens when a solved ticket goes back to open, pending or hold,
 *   replies and latest_comment_added_at with a comment. A deletion creates no ticket event, so it
 *   moves generated_timestamp only (an assumption: Zendesk says updated_at moves "only if the update
 *   generates a ticket event").
 * - Auth: an API token as Basic `{email}/token:{token}`, or an OAuth token as Bearer; anything else
 *   is 401 {"error": "Couldn't authenticate you"}.
 */

export const ZENDESK_EXPORT_RATE_LIMIT = { requests: 10, perMs: 60_000 } as const;
/** "Data isn't provided for the most recent minute." */
export const ZENDESK_EXPORT_LAG_MS = 60_000;
const MAX_PER_PAGE = 1000;
const STATUSES = ['new', 'open', 'pending', 'hold', 'solved', 'closed'] as const;
type Status = (typeof STATUSES)[number];

export interface ZendeskTicket {
  id: number;
  url: string;
  external_id: string | null;
  type: string | null;
  subject: string;
  raw_subject: string;
  description: string;
  priority: string | null;
  status: Status | 'deleted';
  requester_id: number;
  submitter_id: number;
  assignee_id: number | null;
  organization_id: number | null;
  group_id: number | null;
  collaborator_ids: number[];
  follower_ids: number[];
  tags: string[];
  custom_fields: Array<{ id: number; value: unknown }>;
  satisfaction_rating: { score: string; comment?: string } | null;
  via: { channel: string };
  has_incidents: boolean;
  problem_id: number | null;
  recipient: string | null;
  sharing_agreement_ids: number[];
  is_public: boolean;
  due_at: string | null;
  created_at: string;
  updated_at: string;
  /** Unix seconds of the last change of any kind: the export's order. */
  generated_timestamp: number;
}

interface Minutes {
  calendar: number | null;
  business: number | null;
}

export interface ZendeskMetricSet {
  id: number;
  ticket_id: number;
  url: string;
  group_stations: number;
  assignee_stations: number;
  reopens: number;
  replies: number;
  assignee_updated_at: string | null;
  requester_updated_at: string | null;
  status_updated_at: string;
  initially_assigned_at: string | null;
  assigned_at: string | null;
  solved_at: string | null;
  latest_comment_added_at: string;
  reply_time_in_minutes: Minutes;
  first_resolution_time_in_minutes: Minutes;
  full_resolution_time_in_minutes: Minutes;
  agent_wait_time_in_minutes: Minutes;
  requester_wait_time_in_minutes: Minutes;
  on_hold_time_in_minutes: Minutes;
  created_at: string;
  updated_at: string;
}

export interface ZendeskState {
  tickets: ZendeskTicket[];
  metricSets: ZendeskMetricSet[];
  nextTicketId: number;
  nextMetricSetId: number;
}

/** Faults of the export page that the common fault modes cannot express. */
export type ZendeskPageFault =
  /** The answer changes shape (as an unannounced API change would): no `tickets`, no `end_of_stream`. */
  | 'changed_shape'
  /** The page's first ticket has no id, and its second an updated_at that is not a time. */
  | 'malformed_ticket';

export interface ZendeskEmulatorOptions extends EmulatorOptions {
  /** The agent whose API token `secret` is (Basic `{email}/token:{secret}`). Default admin@example.com. */
  email?: string;
  /** An OAuth access token accepted as Bearer (default: `secret` is accepted as Bearer too). */
  oauthToken?: string;
  /** The export's rate limit; null switches it off (fast tests). Default 10 a minute, as documented. */
  exportRateLimit?: { requests: number; perMs: number } | null;
}

export interface ZendeskEmulatorHandle extends EmulatorHandle {
  state(): ZendeskState;
  /** Export requests answered (any status), for tests that check no request was made. */
  exportRequests(): number;
  /** The next `times` export answers (default 1) carry this fault. */
  setPageFault(fault: ZendeskPageFault, times?: number): void;
  /** For tests and the demo: the tickets API's create, update and delete, over HTTP with the token. */
  createTicket(fields?: TicketInput): Promise<ZendeskTicket>;
  updateTicket(id: number, fields: TicketInput): Promise<ZendeskTicket>;
  deleteTicket(id: number): Promise<void>;
}

export interface TicketInput {
  subject?: string;
  comment?: { body?: string; public?: boolean };
  status?: string;
  priority?: string;
  type?: string;
  external_id?: string;
  tags?: string[];
  assignee_id?: number | null;
  requester_id?: number;
  custom_fields?: Array<{ id: number; value: unknown }>;
  satisfaction_rating?: { score: string; comment?: string } | null;
}

class ZendeskError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(JSON.stringify(body));
  }
}

const invalid = (description: string, details?: unknown) =>
  new ZendeskError(422, {
    error: 'RecordInvalid',
    description: 'Record validation errors',
    details: details ?? description,
  });
const badParam = (description: string) => new ZendeskError(400, { error: 'InvalidValue', description });
const notFound = () => new ZendeskError(404, { error: 'RecordNotFound', description: 'Not found' });

export function encodeZendeskCursor(generatedTimestamp: number, ticketId: number): string {
  return Buffer.from(`${generatedTimestamp}.0||${ticketId}|`).toString('base64');
}

export function decodeZendeskCursor(cursor: string): { ts: number; id: number } | null {
  const text = Buffer.from(cursor, 'base64').toString('utf8');
  const m = /^(\d+)\.0\|\|(\d+)\|$/.exec(text);
  return m ? { ts: Number(m[1]), id: Number(m[2]) } : null;
}

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
const minutesBetween = (from: string, to: Date) => Math.max(0, Math.round((to.getTime() - Date.parse(from)) / 60_000));

function authorized(req: EmulatorRequest, opts: ZendeskEmulatorOptions): boolean {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return false;
  if (h.startsWith('Bearer ')) return sameSecret(h.slice(7), opts.oauthToken ?? opts.secret);
  if (h.startsWith('Basic ')) {
    const given = Buffer.from(h.slice(6), 'base64').toString('utf8');
    return sameSecret(given, `${opts.email ?? 'admin@example.com'}/token:${opts.secret}`);
  }
  return false;
}

function parseState(raw: unknown): ZendeskState {
  const s = raw as ZendeskState | null;
  if (!s || !Array.isArray(s.tickets) || !Array.isArray(s.metricSets) || typeof s.nextTicketId !== 'number')
    throw new Error('the state file does not hold a Zendesk emulator state');
  return s;
}

function ticketInput(body: string): TicketInput {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new ZendeskError(400, { error: 'InvalidJSON', description: 'The request body is not valid JSON' });
  }
  const ticket = (parsed as { ticket?: unknown } | null)?.ticket;
  if (!ticket || typeof ticket !== 'object' || Array.isArray(ticket))
    throw badParam('The request body must be {"ticket": {...}}');
  return ticket;
}

function statusOf(value: unknown): Status {
  if (typeof value !== 'string' || !(STATUSES as readonly string[]).includes(value))
    throw invalid(`Status: ${String(value)} is not valid`, {
      status: [{ description: `Status: ${String(value)} is not valid` }],
    });
  return value as Status;
}

/** Applies a create or update to the ticket and its metric set, as Zendesk's rules have it. */
function applyChange(ticket: ZendeskTicket, metrics: ZendeskMetricSet, input: TicketInput, now: Date): boolean {
  const at = iso(now);
  let changed = false;
  if (input.status !== undefined) {
    const next = statusOf(input.status);
    const before = ticket.status;
    if (next === 'closed' && before !== 'solved' && before !== 'closed')
      throw invalid('Status: closed is only for solved tickets', {
        status: [{ description: 'Status: closed is only for solved tickets' }],
      });
    if (next !== before) {
      ticket.status = next;
      metrics.status_updated_at = at;
      if (next === 'solved') {
        metrics.solved_at = at;
        const minutes = minutesBetween(ticket.created_at, now);
        if (metrics.first_resolution_time_in_minutes.calendar === null)
          metrics.first_resolution_time_in_minutes = { calendar: minutes, business: minutes };
        metrics.full_resolution_time_in_minutes = { calendar: minutes, business: minutes };
      }
      if (before === 'solved' && (next === 'open' || next === 'pending' || next === 'hold')) metrics.reopens += 1;
      changed = true;
    }
  }
  if (input.comment !== undefined) {
    metrics.latest_comment_added_at = at;
    if (input.comment.public !== false) metrics.replies += 1;
    changed = true;
  }
  if (input.assignee_id !== undefined && input.assignee_id !== ticket.assignee_id) {
    ticket.assignee_id = input.assignee_id;
    if (input.assignee_id !== null) {
      metrics.assignee_stations += 1;
      metrics.assigned_at = at;
      metrics.initially_assigned_at ??= at;
    }
    changed = true;
  }
  for (const key of ['subject', 'priority', 'type', 'external_id'] as const) {
    const v = input[key];
    if (v !== undefined && v !== ticket[key]) {
      if (key === 'subject') {
        ticket.subject = String(v);
        ticket.raw_subject = String(v);
      } else ticket[key] = v === null ? null : String(v);
      changed = true;
    }
  }
  if (input.tags !== undefined) {
    ticket.tags = input.tags.map(String);
    changed = true;
  }
  if (input.custom_fields !== undefined) {
    for (const f of input.custom_fields) {
      const existing = ticket.custom_fields.find((c) => c.id === f.id);
      if (existing) existing.value = f.value;
      else ticket.custom_fields.push({ id: f.id, value: f.value });
    }
    changed = true;
  }
  if (input.satisfaction_rating !== undefined) {
    ticket.satisfaction_rating = input.satisfaction_rating;
    changed = true;
  }
  if (changed) {
    ticket.updated_at = at;
    ticket.generated_timestamp = seconds(now);
    metrics.updated_at = at;
  }
  return changed;
}

export async function startZendeskEmulator(opts: ZendeskEmulatorOptions): Promise<ZendeskEmulatorHandle> {
  const limit = opts.exportRateLimit === undefined ? ZENDESK_EXPORT_RATE_LIMIT : opts.exportRateLimit;
  /** Times (ms, emulator clock) of the export requests answered inside the last window. */
  let window: number[] = [];
  let exportRequests = 0;
  let pageFault: { mode: ZendeskPageFault; times: number } | null = null;
  let baseUrl = '';

  const findTicket = (s: ZendeskState, id: number, includeDeleted = false): ZendeskTicket => {
    const t = s.tickets.find((x) => x.id === id);
    if (!t || (t.status === 'deleted' && !includeDeleted)) throw notFound();
    return t;
  };
  const metricsOf = (s: ZendeskState, ticketId: number): ZendeskMetricSet => {
    const m = s.metricSets.find((x) => x.ticket_id === ticketId);
    if (!m) throw new Error(`ticket ${ticketId} has no metric set`);
    return m;
  };

  const create = (s: ZendeskState, input: TicketInput, now: Date): ZendeskTicket => {
    const body = input.comment?.body;
    if (typeof body !== 'string' || body.trim() === '')
      throw invalid('Description: cannot be blank', { base: [{ description: 'Ticket must have a comment' }] });
    const at = iso(now);
    const id = s.nextTicketId++;
    const subject = input.subject ?? body.slice(0, 80);
    const ticket: ZendeskTicket = {
      id,
      url: `${baseUrl}/api/v2/tickets/${id}.json`,
      external_id: input.external_id ?? null,
      type: input.type ?? null,
      subject,
      raw_subject: subject,
      description: body,
      priority: input.priority ?? null,
      status: 'new',
      requester_id: input.requester_id ?? 1,
      submitter_id: input.requester_id ?? 1,
      assignee_id: null,
      organization_id: null,
      group_id: null,
      collaborator_ids: [],
      follower_ids: [],
      tags: input.tags?.map(String) ?? [],
      custom_fields: [],
      satisfaction_rating: null,
      via: { channel: 'api' },
      has_incidents: false,
      problem_id: null,
      recipient: null,
      sharing_agreement_ids: [],
      is_public: input.comment?.public !== false,
      due_at: null,
      created_at: at,
      updated_at: at,
      generated_timestamp: seconds(now),
    };
    const metrics: ZendeskMetricSet = {
      id: s.nextMetricSetId++,
      ticket_id: id,
      url: `${baseUrl}/api/v2/ticket_metrics/${s.nextMetricSetId - 1}.json`,
      group_stations: 1,
      assignee_stations: 0,
      reopens: 0,
      replies: 0,
      assignee_updated_at: null,
      requester_updated_at: at,
      status_updated_at: at,
      initially_assigned_at: null,
      assigned_at: null,
      solved_at: null,
      latest_comment_added_at: at,
      reply_time_in_minutes: { calendar: null, business: null },
      first_resolution_time_in_minutes: { calendar: null, business: null },
      full_resolution_time_in_minutes: { calendar: null, business: null },
      agent_wait_time_in_minutes: { calendar: null, business: null },
      requester_wait_time_in_minutes: { calendar: null, business: null },
      on_hold_time_in_minutes: { calendar: 0, business: 0 },
      created_at: at,
      updated_at: at,
    };
    // Zendesk sets a new ticket to open when it gets a status or an assignee; solved on create too.
    const rest: TicketInput = { ...input, comment: undefined, subject: undefined };
    if (rest.status === undefined && rest.assignee_id != null) rest.status = 'open';
    applyChange(ticket, metrics, rest, now);
    ticket.updated_at = at;
    ticket.generated_timestamp = seconds(now);
    s.tickets.push(ticket);
    s.metricSets.push(metrics);
    return ticket;
  };

  const update = (s: ZendeskState, id: number, input: TicketInput, now: Date): ZendeskTicket => {
    const ticket = findTicket(s, id);
    if (ticket.status === 'closed')
      throw invalid('Status: closed prevents ticket update', {
        status: [{ description: 'Status: closed prevents ticket update' }],
      });
    applyChange(ticket, metricsOf(s, id), input, now);
    return ticket;
  };

  const remove = (s: ZendeskState, id: number, now: Date): void => {
    const ticket = findTicket(s, id);
    ticket.status = 'deleted';
    ticket.generated_timestamp = Math.max(ticket.generated_timestamp + 1, seconds(now));
  };

  const exportPage = (req: EmulatorRequest, s: ZendeskState, now: Date): EmulatorReply => {
    exportRequests++;
    if (limit) {
      const t = now.getTime();
      window = window.filter((w) => w > t - limit.perMs);
      if (window.length >= limit.requests) {
        const seconds = Math.max(1, Math.ceil((window[0] + limit.perMs - t) / 1000));
        return {
          status: 429,
          json: { error: 'APIRateLimitExceeded', description: 'Number of allowed API requests per minute exceeded' },
          headers: { 'retry-after': String(seconds) },
        };
      }
      window.push(t);
    }
    const q = req.query;
    let after: { ts: number; id: number };
    const cursor = q.get('cursor');
    const start = q.get('start_time');
    if (cursor) {
      const decoded = decodeZendeskCursor(cursor);
      if (!decoded) throw badParam('cursor is invalid');
      after = decoded;
    } else if (start !== null) {
      if (!/^\d+$/.test(start)) throw badParam('start_time must be a unix epoch time in seconds');
      if (Number(start) * 1000 > now.getTime() - ZENDESK_EXPORT_LAG_MS)
        throw badParam('Too recent start_time. Use a start_time older than 1 minute');
      // "All the items that were created or changed on or after the start time."
      after = { ts: Number(start), id: 0 };
    } else throw badParam('start_time or cursor is required');
    const perPageText = q.get('per_page');
    const perPage =
      perPageText && /^\d+$/.test(perPageText) && Number(perPageText) > 0
        ? Math.min(Number(perPageText), MAX_PER_PAGE)
        : MAX_PER_PAGE;
    const include = (q.get('include') ?? '').split(',').map((x) => x.trim());
    const excludeDeleted = q.get('exclude_deleted') === 'true';
    const horizon = seconds(new Date(now.getTime() - ZENDESK_EXPORT_LAG_MS));
    const eligible = s.tickets
      .filter(
        (t) =>
          (t.generated_timestamp > after.ts || (t.generated_timestamp === after.ts && t.id > after.id)) &&
          t.generated_timestamp <= horizon &&
          !(excludeDeleted && t.status === 'deleted'),
      )
      .sort((a, b) => a.generated_timestamp - b.generated_timestamp || a.id - b.id);
    const tickets = eligible.slice(0, perPage);
    const last = tickets.at(-1);
    const afterCursor = last
      ? encodeZendeskCursor(last.generated_timestamp, last.id)
      : encodeZendeskCursor(after.ts, after.id);
    const first = tickets[0];
    const host = typeof req.headers.host === 'string' ? `http://${req.headers.host}` : baseUrl;
    const urlFor = (c: string) => `${host}/api/v2/incremental/tickets/cursor.json?cursor=${encodeURIComponent(c)}`;
    const beforeCursor = first ? encodeZendeskCursor(first.generated_timestamp, first.id) : null;
    let body: Record<string, unknown> = {
      tickets: tickets.map((t) => structuredClone(t)),
      ...(include.includes('metric_sets')
        ? { metric_sets: tickets.map((t) => s.metricSets.find((m) => m.ticket_id === t.id)).filter(Boolean) }
        : {}),
      after_url: urlFor(afterCursor),
      after_cursor: afterCursor,
      before_url: beforeCursor ? urlFor(beforeCursor) : null,
      before_cursor: beforeCursor,
      end_of_stream: eligible.length <= perPage,
    };
    if (pageFault) {
      const mode = pageFault.mode;
      pageFault = pageFault.times <= 1 ? null : { mode, times: pageFault.times - 1 };
      if (mode === 'changed_shape') {
        body = {
          results: body.tickets,
          meta: { has_more: !body.end_of_stream, after_cursor: afterCursor },
          links: { next: body.after_url },
        };
      } else {
        const list = body.tickets as Array<Record<string, unknown>>;
        if (list[0]) delete list[0].id;
        if (list[1]) list[1].updated_at = 'yesterday';
      }
    }
    return { status: 200, json: body };
  };

  const run = (fn: () => EmulatorReply): EmulatorReply => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ZendeskError) return { status: err.status, json: err.body };
      throw err;
    }
  };

  const started = await startHttpEmulator<ZendeskState>(opts, {
    name: 'zendesk',
    initialState: () => ({ tickets: [], metricSets: [], nextTicketId: 1, nextMetricSetId: 1 }),
    parseState,
    errorBody: (status, message) =>
      status === 429
        ? { error: 'APIRateLimitExceeded', description: message }
        : { error: 'InternalServerError', description: message },
    summary: (s) => ({
      tickets: s.tickets.length,
      solved: s.tickets.filter((t) => t.status === 'solved' || t.status === 'closed').length,
      deleted: s.tickets.filter((t) => t.status === 'deleted').length,
      exportRequests,
    }),
    handle(req, ctx) {
      if (!authorized(req, opts)) return { status: 401, json: { error: "Couldn't authenticate you" } };
      const now = ctx.now();
      const s = ctx.state;
      if (req.method === 'GET' && req.path === '/api/v2/incremental/tickets/cursor.json')
        return run(() => exportPage(req, s, now));
      if (req.method === 'POST' && req.path === '/api/v2/tickets.json')
        return run(() => {
          const ticket = create(s, ticketInput(req.body), now);
          return { status: 201, json: { ticket }, changed: true, headers: { location: ticket.url } };
        });
      const m = /^\/api\/v2\/tickets\/(\d+)\.json$/.exec(req.path);
      if (m) {
        const id = Number(m[1]);
        if (req.method === 'GET') return run(() => ({ status: 200, json: { ticket: findTicket(s, id) } }));
        if (req.method === 'PUT')
          return run(() => ({
            status: 200,
            json: { ticket: update(s, id, ticketInput(req.body), now) },
            changed: true,
          }));
        if (req.method === 'DELETE')
          return run(() => {
            remove(s, id, now);
            return { status: 204, changed: true };
          });
      }
      return { status: 404, json: { error: 'InvalidEndpoint', description: 'Not found' } };
    },
  });
  baseUrl = started.url;
  const basic = `Basic ${Buffer.from(`${opts.email ?? 'admin@example.com'}/token:${opts.secret}`).toString('base64')}`;
  /** The helpers go through the tickets API, so its rules, the clock and the state file apply alike. */
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${started.url}${path}`, {
      method,
      headers: { authorization: basic, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`zendesk emulator: ${method} ${path} answered ${res.status} ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  };
  return {
    ...started,
    exportRequests: () => exportRequests,
    setPageFault(fault, times = 1) {
      pageFault = { mode: fault, times };
    },
    async createTicket(fields = {}) {
      const answer = (await call('POST', '/api/v2/tickets.json', {
        ticket: { comment: { body: 'Help, my printer is on fire!' }, ...fields },
      })) as { ticket: ZendeskTicket };
      return answer.ticket;
    },
    async updateTicket(id, fields) {
      const answer = (await call('PUT', `/api/v2/tickets/${id}.json`, { ticket: fields })) as { ticket: ZendeskTicket };
      return answer.ticket;
    },
    async deleteTicket(id) {
      await call('DELETE', `/api/v2/tickets/${id}.json`);
    },
  };
}
