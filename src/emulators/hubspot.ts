import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { EmulatorHandle, EmulatorOptions } from './common';
import { bearerAuthorized, startHttpEmulator, type EmulatorReply, type EmulatorRequest } from './http-emulator';

/**
 * A stateful emulator of HubSpot's CRM objects API for contacts and deals, written from HubSpot's
 * documentation:
 *
 * - Objects (https://developers.hubspot.com/docs/api/crm/contacts, https://developers.hubspot.com/docs/api/crm/deals):
 *   POST /crm/v3/objects/{type} creates, PATCH /crm/v3/objects/{type}/{id} updates, both with
 *   {"properties": {...}}; GET /crm/v3/objects/{type}/{id} reads; DELETE archives (archived
 *   objects leave search). An object is {id, properties,
 *   createdAt, updatedAt, archived}; property values are strings. Every write sets the
 *   last-modified property (contacts: lastmodifieddate, deals: hs_lastmodifieddate) and updatedAt.
 * - Stage calculated properties (https://knowledge.hubspot.com/properties/stage-calculated-properties):
 *   when the deal stage or lifecycle stage changes, "Date entered [stage ID]"
 *   (hs_v2_date_entered_<stage>) is set on the new stage and hs_v2_date_exited_<stage> on the old;
 *   a record that re-enters a stage has them updated again.
 * - Search (https://developers.hubspot.com/docs/api-reference/search/guide): POST
 *   /crm/v3/objects/{type}/search with filterGroups (OR of groups, AND within; at most 5 groups and
 *   25 filters, 10 a group), sorts (one), properties, limit (at most 200, else 400), after; the
 *   answer is {total, results, paging.next.after}. "The search endpoints are limited to 10,000
 *   total results for any given query. Attempting to page beyond 10,000 will result in a 400
 *   error": a request whose after reaches the cap is refused, while paging.next keeps pointing
 *   there as HubSpot's does. Date filters take epoch milliseconds (or an ISO time).
 * - "The search endpoints are rate limited to five requests per second per account" (same page);
 *   over it: 429 with HubSpot's rate-limit body (errorType RATE_LIMIT, policyName SECONDLY) and
 *   Retry-After in seconds
 *   (https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines).
 * - Auth: a private-app token as `Authorization: Bearer`; anything else is 401 with category
 *   INVALID_AUTHENTICATION. Errors are {status: "error", message, correlationId, category}.
 */

export type HubspotObjectType = 'contacts' | 'deals';
export const HUBSPOT_OBJECT_TYPES: readonly HubspotObjectType[] = ['contacts', 'deals'];
export const HUBSPOT_SEARCH_CAP = 10_000;
export const HUBSPOT_SEARCH_MAX_LIMIT = 200;

export interface HubspotObject {
  id: string;
  properties: Record<string, string | null>;
  createdAt: string;
  updatedAt: string;
  archived: boolean;
}

export interface HubspotState {
  nextId: number;
  contacts: HubspotObject[];
  deals: HubspotObject[];
  /** Search requests answered (200) and refused for the rate limit, for tests and the demo. */
  searches: number;
  rateLimited: number;
}

/** A seeded object: properties, and optionally the times it was created and last modified. */
export interface HubspotSeed {
  properties: Record<string, string | number | boolean | null>;
  createdAt?: string;
  modifiedAt?: string;
}

export interface HubspotEmulatorOptions extends EmulatorOptions {
  /** Objects present at start (not added when a state file already holds objects). */
  seed?: Partial<Record<HubspotObjectType, HubspotSeed[]>>;
  /** Search requests allowed per window; false: no limit. Default: HubSpot's 5 a second. */
  rateLimit?: { requests: number; perMs: number } | false;
  /** The result cap of one search (HubSpot's is 10,000); smaller for fast tests. */
  searchCap?: number;
}

export interface HubspotEmulatorHandle extends EmulatorHandle {
  state(): HubspotState;
  /** Creates or updates objects as the API would, at the emulator's clock (or at `at`). */
  create(type: HubspotObjectType, seed: HubspotSeed): HubspotObject;
  update(type: HubspotObjectType, id: string, properties: HubspotSeed['properties'], at?: string): HubspotObject;
  /**
   * Rewrites the next search answers (a vendor's changed shape, a malformed object) until cleared
   * with null. Only tests use it; the answer is otherwise computed from the state.
   */
  setSearchTransform(fn: ((answer: Record<string, unknown>) => unknown) | null): void;
}

export function modifiedPropertyOf(type: HubspotObjectType): string {
  return type === 'deals' ? 'hs_lastmodifieddate' : 'lastmodifieddate';
}
const stageProperty = (type: HubspotObjectType) => (type === 'deals' ? 'dealstage' : 'lifecyclestage');

/** Returned when a search names no properties (the search guide's default lists). */
const DEFAULT_PROPERTIES: Record<HubspotObjectType, string[]> = {
  contacts: ['createdate', 'email', 'firstname', 'hs_object_id', 'lastmodifieddate', 'lastname'],
  deals: [
    'amount',
    'closedate',
    'createdate',
    'dealname',
    'dealstage',
    'hs_lastmodifieddate',
    'hs_object_id',
    'pipeline',
  ],
};

const DATE_PROPERTY = /^(createdate|closedate|lastmodifieddate|hs_lastmodifieddate|hs_v2_date_(entered|exited)_.+)$/;
const NUMBER_PROPERTY = /^(hs_object_id|amount)$/;

const errorBody = (message: string, category: string) => ({
  status: 'error',
  message,
  correlationId: randomUUID(),
  category,
});
const error = (status: number, message: string, category: string): EmulatorReply => ({
  status,
  json: errorBody(message, category),
});

const PropertyInput = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const WriteBody = z.object({ properties: z.record(z.string(), PropertyInput) });

const Filter = z.object({
  propertyName: z.string().min(1),
  operator: z.enum([
    'EQ',
    'NEQ',
    'LT',
    'LTE',
    'GT',
    'GTE',
    'BETWEEN',
    'IN',
    'NOT_IN',
    'HAS_PROPERTY',
    'NOT_HAS_PROPERTY',
  ]),
  value: z.union([z.string(), z.number(), z.boolean()]).optional(),
  highValue: z.union([z.string(), z.number()]).optional(),
  values: z.array(z.union([z.string(), z.number()])).optional(),
});
type Filter = z.infer<typeof Filter>;
const Sort = z.union([
  z.string().min(1),
  z.object({ propertyName: z.string().min(1), direction: z.enum(['ASCENDING', 'DESCENDING']).default('ASCENDING') }),
]);
const SearchBody = z.object({
  filterGroups: z
    .array(z.object({ filters: z.array(Filter).max(10) }))
    .max(5)
    .default([]),
  sorts: z.array(Sort).max(1).default([]),
  properties: z.array(z.string()).optional(),
  limit: z.number().int().min(0).default(10),
  after: z.union([z.string(), z.number()]).optional(),
  query: z.string().optional(),
});

function toStored(v: z.infer<typeof PropertyInput>): string | null {
  return v === null ? null : String(v);
}

/** A filter or property value as something to compare: instants for dates, numbers for numbers. */
function comparable(name: string, v: string | number | boolean | null | undefined): number | string | null {
  if (v === null || v === undefined || v === '') return null;
  const s = String(v);
  if (DATE_PROPERTY.test(name)) {
    const n = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
    return Number.isNaN(n) ? null : n;
  }
  if (NUMBER_PROPERTY.test(name)) {
    const n = Number(s);
    return Number.isNaN(n) ? s : n;
  }
  return s.toLowerCase();
}

function matches(o: HubspotObject, f: Filter): boolean {
  const actual = comparable(f.propertyName, o.properties[f.propertyName]);
  const value = comparable(f.propertyName, f.value);
  switch (f.operator) {
    case 'HAS_PROPERTY':
      return actual !== null;
    case 'NOT_HAS_PROPERTY':
      return actual === null;
    case 'IN':
    case 'NOT_IN': {
      const set = (f.values ?? []).map((v) => comparable(f.propertyName, v));
      const found = actual !== null && set.includes(actual);
      return f.operator === 'IN' ? found : !found;
    }
    case 'NEQ':
      return actual !== value;
    default:
      break;
  }
  if (actual === null || value === null) return false;
  switch (f.operator) {
    case 'EQ':
      return actual === value;
    case 'LT':
      return actual < value;
    case 'LTE':
      return actual <= value;
    case 'GT':
      return actual > value;
    case 'GTE':
      return actual >= value;
    case 'BETWEEN': {
      const high = comparable(f.propertyName, f.highValue);
      return high !== null && actual >= value && actual <= high;
    }
  }
  return false;
}

function filterProblem(f: Filter): string | null {
  if (['HAS_PROPERTY', 'NOT_HAS_PROPERTY'].includes(f.operator)) return null;
  if (['IN', 'NOT_IN'].includes(f.operator)) return f.values ? null : `${f.operator} needs values`;
  if (f.value === undefined) return `${f.operator} on ${f.propertyName} needs a value`;
  if (f.operator === 'BETWEEN' && f.highValue === undefined) return 'BETWEEN needs a highValue';
  if (DATE_PROPERTY.test(f.propertyName) && comparable(f.propertyName, f.value) === null)
    return `${String(f.value)} is not a valid date for ${f.propertyName}`;
  return null;
}

const StoredObject = z.object({
  id: z.string(),
  properties: z.record(z.string(), z.string().nullable()),
  createdAt: z.string(),
  updatedAt: z.string(),
  archived: z.boolean(),
});
const StateSchema = z.object({
  nextId: z.number().int().positive(),
  contacts: z.array(StoredObject),
  deals: z.array(StoredObject),
  searches: z.number().int().nonnegative(),
  rateLimited: z.number().int().nonnegative(),
});

export async function startHubspotEmulator(opts: HubspotEmulatorOptions): Promise<HubspotEmulatorHandle> {
  const limit = opts.rateLimit === undefined ? { requests: 5, perMs: 1_000 } : opts.rateLimit;
  const cap = opts.searchCap ?? HUBSPOT_SEARCH_CAP;
  let window: { startedAt: number; requests: number } | null = null;
  let transform: ((answer: Record<string, unknown>) => unknown) | null = null;
  let offsetMs = 0;
  let clock: () => Date = () => new Date(Date.now() + offsetMs);

  const write = (
    state: HubspotState,
    type: HubspotObjectType,
    existing: HubspotObject | null,
    input: HubspotSeed['properties'],
    at: Date,
    createdAt?: Date,
  ): HubspotObject => {
    const iso = at.toISOString();
    const o: HubspotObject = existing ?? {
      id: String(state.nextId++),
      properties: {},
      createdAt: (createdAt ?? at).toISOString(),
      updatedAt: iso,
      archived: false,
    };
    // A deal made without a pipeline goes into the account's default one, as in HubSpot.
    if (!existing && type === 'deals' && input.pipeline === undefined) o.properties.pipeline = 'default';
    const stage = stageProperty(type);
    const before = o.properties[stage] ?? null;
    for (const [k, v] of Object.entries(input)) o.properties[k] = toStored(v);
    const after = o.properties[stage] ?? null;
    if (after !== before) {
      if (after) o.properties[`hs_v2_date_entered_${after}`] = iso;
      if (before) o.properties[`hs_v2_date_exited_${before}`] = iso;
    }
    o.properties.hs_object_id = o.id;
    o.properties.createdate = o.createdAt;
    o.properties[modifiedPropertyOf(type)] = iso;
    if (type === 'contacts') o.properties.hs_lastmodifieddate = iso;
    o.updatedAt = iso;
    if (!existing) state[type].push(o);
    return o;
  };

  const search = (req: EmulatorRequest, state: HubspotState, type: HubspotObjectType, now: Date): EmulatorReply => {
    if (limit) {
      const t = now.getTime();
      if (!window || t - window.startedAt >= limit.perMs || t < window.startedAt)
        window = { startedAt: t, requests: 0 };
      if (window.requests >= limit.requests) {
        state.rateLimited++;
        const seconds = Math.max(1, Math.ceil((window.startedAt + limit.perMs - t) / 1000));
        return {
          status: 429,
          headers: { 'retry-after': String(seconds) },
          json: {
            status: 'error',
            message: 'You have reached your secondly limit.',
            errorType: 'RATE_LIMIT',
            correlationId: randomUUID(),
            policyName: 'SECONDLY',
            groupName: 'publicapi:crm:search:private-app',
          },
          changed: true,
        };
      }
      window.requests++;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(req.body);
    } catch {
      return error(400, 'Invalid input JSON on line 1', 'VALIDATION_ERROR');
    }
    const parsed = SearchBody.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return error(400, `Invalid search request: ${issue.path.join('.')}: ${issue.message}`, 'VALIDATION_ERROR');
    }
    const body = parsed.data;
    if (body.limit > HUBSPOT_SEARCH_MAX_LIMIT)
      return error(400, `limit must be at most ${HUBSPOT_SEARCH_MAX_LIMIT}`, 'VALIDATION_ERROR');
    if (body.filterGroups.reduce((n, g) => n + g.filters.length, 0) > 25)
      return error(400, 'at most 25 filters are allowed across all filter groups', 'VALIDATION_ERROR');
    for (const g of body.filterGroups)
      for (const f of g.filters) {
        const problem = filterProblem(f);
        if (problem) return error(400, problem, 'VALIDATION_ERROR');
      }
    const offset = body.after === undefined || body.after === '' ? 0 : Number(body.after);
    if (!Number.isInteger(offset) || offset < 0) return error(400, 'after must be a paging token', 'VALIDATION_ERROR');
    if (offset >= cap)
      return error(
        400,
        `The search endpoints are limited to ${cap} total results for any given query.`,
        'VALIDATION_ERROR',
      );
    const found = state[type].filter(
      (o) =>
        !o.archived &&
        (body.filterGroups.length === 0 || body.filterGroups.some((g) => g.filters.every((f) => matches(o, f)))),
    );
    const sort = body.sorts[0];
    const sortBy =
      sort === undefined ? 'hs_object_id' : typeof sort === 'string' ? sort.replace(/^-/, '') : sort.propertyName;
    const descending = typeof sort === 'string' ? sort.startsWith('-') : sort?.direction === 'DESCENDING';
    const key = (o: HubspotObject) => comparable(sortBy, o.properties[sortBy]);
    // HubSpot orders equal sort values consistently between pages; the object id does that here.
    found.sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      let c = ka === kb ? 0 : ka === null ? 1 : kb === null ? -1 : ka < kb ? -1 : 1;
      if (descending) c = -c;
      return c !== 0 ? c : Number(a.id) - Number(b.id);
    });
    const names = body.properties && body.properties.length > 0 ? body.properties : DEFAULT_PROPERTIES[type];
    const always = ['hs_object_id', 'createdate', modifiedPropertyOf(type)];
    const page = found.slice(offset, offset + body.limit).map((o) => {
      const properties: Record<string, string | null> = {};
      for (const n of [...new Set([...names, ...always])]) properties[n] = o.properties[n] ?? null;
      return { id: o.id, properties, createdAt: o.createdAt, updatedAt: o.updatedAt, archived: o.archived };
    });
    const nextOffset = offset + page.length;
    const answer: Record<string, unknown> = {
      total: found.length,
      results: page,
      ...(nextOffset < found.length && page.length > 0
        ? { paging: { next: { after: String(nextOffset), link: `?after=${nextOffset}` } } }
        : {}),
    };
    state.searches++;
    return { status: 200, json: transform ? transform(answer) : answer, changed: true };
  };

  const started = await startHttpEmulator<HubspotState>(opts, {
    name: 'hubspot',
    initialState: () => ({ nextId: 1, contacts: [], deals: [], searches: 0, rateLimited: 0 }),
    parseState: (raw) => StateSchema.parse(raw),
    errorBody: (status, message) =>
      status === 429
        ? {
            status: 'error',
            message: 'You have reached your secondly limit.',
            errorType: 'RATE_LIMIT',
            correlationId: randomUUID(),
            policyName: 'SECONDLY',
          }
        : errorBody(message, 'INTERNAL_ERROR'),
    summary: (s) => ({
      contacts: s.contacts.length,
      deals: s.deals.length,
      searches: s.searches,
      rateLimited: s.rateLimited,
    }),
    handle: (req, ctx) => {
      clock = () => ctx.now();
      if (!bearerAuthorized(req, opts.secret))
        return error(
          401,
          'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview',
          'INVALID_AUTHENTICATION',
        );
      const m = /^\/crm\/v3\/objects\/([a-z]+)(?:\/([^/]+))?$/.exec(req.path);
      if (!m || !HUBSPOT_OBJECT_TYPES.includes(m[1] as HubspotObjectType))
        return error(404, `no route ${req.method} ${req.path}`, 'OBJECT_NOT_FOUND');
      const type = m[1] as HubspotObjectType;
      const now = ctx.now();
      if (m[2] === 'search' && req.method === 'POST') return search(req, ctx.state, type, now);
      if (!m[2] && req.method === 'POST') {
        const body = WriteBody.safeParse(safeJson(req.body));
        if (!body.success) return error(400, 'expected {"properties": {...}}', 'VALIDATION_ERROR');
        return { status: 201, json: write(ctx.state, type, null, body.data.properties, now), changed: true };
      }
      const existing = m[2] ? ctx.state[type].find((o) => o.id === m[2] && !o.archived) : undefined;
      if (!existing) return error(404, `Object not found.  objectId are usually numeric.`, 'OBJECT_NOT_FOUND');
      if (req.method === 'GET') return { status: 200, json: existing };
      if (req.method === 'PATCH') {
        const body = WriteBody.safeParse(safeJson(req.body));
        if (!body.success) return error(400, 'expected {"properties": {...}}', 'VALIDATION_ERROR');
        return { status: 200, json: write(ctx.state, type, existing, body.data.properties, now), changed: true };
      }
      if (req.method === 'DELETE') {
        existing.archived = true;
        existing.updatedAt = now.toISOString();
        return { status: 204, changed: true };
      }
      return error(405, `${req.method} is not allowed on ${req.path}`, 'VALIDATION_ERROR');
    },
  });

  const state = started.state();
  if (opts.seed && state.contacts.length === 0 && state.deals.length === 0) {
    for (const type of HUBSPOT_OBJECT_TYPES)
      for (const s of opts.seed[type] ?? [])
        write(
          state,
          type,
          null,
          s.properties,
          s.modifiedAt ? new Date(s.modifiedAt) : clock(),
          s.createdAt ? new Date(s.createdAt) : undefined,
        );
  }

  return {
    ...started,
    state: () => started.state(),
    create: (type, seed) =>
      write(
        started.state(),
        type,
        null,
        seed.properties,
        seed.modifiedAt ? new Date(seed.modifiedAt) : clock(),
        seed.createdAt ? new Date(seed.createdAt) : undefined,
      ),
    update: (type, id, properties, at) => {
      const o = started.state()[type].find((x) => x.id === id);
      if (!o) throw new Error(`no ${type} object ${id}`);
      return write(started.state(), type, o, properties, at ? new Date(at) : clock());
    },
    setClockOffset: (ms) => {
      offsetMs = ms;
      clock = () => new Date(Date.now() + offsetMs);
      started.setClockOffset(ms);
    },
    setSearchTransform: (fn) => {
      transform = fn;
    },
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
