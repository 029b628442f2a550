import { z } from 'zod';
import type { HubspotSourceConfig } from '../domain/sources';
import type { FetchOutcome, PageItem, RecordSourceClient, SourceContext } from './api-types';

/**
 * HubSpot contacts or deals, read through the CRM search API as HubSpot documents it
 * (https://developers.hubspot.com/docs/api-reference/search/guide):
 *
 * - POST {apiBase}/crm/v3/objects/{contacts|deals}/search with filterGroups, sorts, properties,
 *   limit (at most 200 a page) and `after` (the paging token of the previous answer's
 *   paging.next.after).
 * - "The search endpoints are limited to 10,000 total results for any given query. Attempting to
 *   page beyond 10,000 will result in a 400 error." So the pull filters on the last-modified
 *   property (GTE its anchor), sorted ascending by it, and before a request would page past the
 *   cap it starts a new search anchored on the last modified time it reached.
 * - "The search endpoints are rate limited to five requests per second per account" (same page,
 *   Limitations); a 429 carries Retry-After in seconds
 *   (https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines).
 * - Private-app tokens are sent as `Authorization: Bearer <token>`.
 *
 * Objects that share the anchor's modified time are the hard case: a new search GTE the anchor
 * returns them again, so the cursor keeps the ids already taken at the anchor and drops those
 * (re-reading one would be harmless, an identical version is redelivered, but it is noise). When
 * more objects than one search can return share one modified time (HubSpot's own batch updates
 * do that), re-anchoring makes no progress; the pull then reads that instant alone, by object id,
 * and afterwards continues strictly after it.
 */

/** HubSpot's documented result cap per search query. */
export const HUBSPOT_SEARCH_RESULT_CAP = 10_000;
/** "The search endpoints are rate limited to five requests per second per account." */
export const HUBSPOT_SEARCH_RATE_LIMIT = { requests: 5, perMs: 1_000 } as const;
/**
 * Objects become searchable a little after they are written (HubSpot's search is an index), so a
 * finished pull does not trust the last minute: the next pull reads it again. Identical versions
 * are redelivered, not duplicated.
 */
export const HUBSPOT_SEARCH_INDEX_LAG_MS = 60_000;

/** The last-modified property the search filters and sorts on. */
export function modifiedProperty(objectType: HubspotSourceConfig['objectType']): string {
  return objectType === 'deals' ? 'hs_lastmodifieddate' : 'lastmodifieddate';
}

export interface HubspotCursor {
  /** The window's start: objects modified at or after it (strictly after it when `strict`). */
  anchor: string;
  /** The paging token within the current search; null: its first page. */
  after: string | null;
  /** Results read in the current search (what the 10,000 cap counts). */
  read: number;
  /** Ids already taken whose modified time is exactly `anchor`: dropped when they come again. */
  seenAtAnchor: string[];
  /** The newest modified time taken so far in this search, and the ids taken at it. */
  newest: string;
  newestIds: string[];
  /** The search excludes the anchor instant itself (after reading a crowded instant by id). */
  strict?: boolean;
  /** Reading the crowded instant `anchor` by object id, after this id (null: from the start). */
  tie?: { lastId: string | null };
}

export function firstCursor(config: HubspotSourceConfig): HubspotCursor {
  const anchor = new Date(config.startTime).toISOString();
  return { anchor, after: null, read: 0, seenAtAnchor: [], newest: anchor, newestIds: [] };
}

const Iso = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO time');
const CursorSchema = z.object({
  anchor: Iso,
  after: z.string().nullable(),
  read: z.number().int().nonnegative(),
  seenAtAnchor: z.array(z.string()),
  newest: Iso,
  newestIds: z.array(z.string()),
  strict: z.boolean().optional(),
  tie: z.object({ lastId: z.string().nullable() }).optional(),
});

/** The saved cursor, or the first one; a cursor that is not one of ours is an error, not a restart. */
export function readCursor(config: HubspotSourceConfig, saved: unknown): HubspotCursor | null {
  if (saved === null || saved === undefined) return firstCursor(config);
  const parsed = CursorSchema.safeParse(saved);
  return parsed.success ? parsed.data : null;
}

/** Every `properties.X` the source's fields read, and the modified property the cursor needs. */
export function requestedProperties(config: HubspotSourceConfig): string[] {
  const names = new Set<string>([modifiedProperty(config.objectType)]);
  for (const f of Object.values(config.fields))
    if (f.column.startsWith('properties.')) names.add(f.column.slice('properties.'.length));
  return [...names].sort();
}

/** The search request for the page after `cursor`. */
export function searchRequest(config: HubspotSourceConfig, cursor: HubspotCursor): Record<string, unknown> {
  const prop = modifiedProperty(config.objectType);
  const at = String(Date.parse(cursor.anchor));
  const properties = requestedProperties(config);
  if (cursor.tie) {
    const filters: Array<Record<string, string>> = [{ propertyName: prop, operator: 'EQ', value: at }];
    if (cursor.tie.lastId !== null)
      filters.push({ propertyName: 'hs_object_id', operator: 'GT', value: cursor.tie.lastId });
    return {
      filterGroups: [{ filters }],
      sorts: [{ propertyName: 'hs_object_id', direction: 'ASCENDING' }],
      properties,
      limit: config.pageSize,
    };
  }
  return {
    filterGroups: [{ filters: [{ propertyName: prop, operator: cursor.strict ? 'GT' : 'GTE', value: at }] }],
    sorts: [{ propertyName: prop, direction: 'ASCENDING' }],
    properties,
    limit: config.pageSize,
    ...(cursor.after !== null ? { after: cursor.after } : {}),
  };
}

// The documented answer (the search endpoint's 200 response): results, total, and paging when
// there is more. Objects are checked one by one below, so one bad object is quarantined, not the page.
const SearchAnswer = z.object({
  total: z.number().int().nonnegative(),
  results: z.array(z.unknown()),
  paging: z
    .object({
      next: z
        .object({ after: z.string().min(1) })
        .passthrough()
        .optional(),
    })
    .passthrough()
    .optional(),
});
export type SearchAnswer = z.infer<typeof SearchAnswer>;

const PropertyValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const SearchObject = z.object({
  id: z.string().min(1),
  properties: z.record(z.string(), PropertyValue),
  createdAt: Iso,
  updatedAt: Iso,
  archived: z.boolean().optional(),
});

export function parseSearchAnswer(json: unknown): { ok: true; answer: SearchAnswer } | { ok: false; error: string } {
  const parsed = SearchAnswer.safeParse(json);
  if (parsed.success) return { ok: true, answer: parsed.data };
  const issue = parsed.error.issues[0];
  return {
    ok: false,
    error: `the search answer is not HubSpot's documented shape (${issue.path.join('.') || 'body'}: ${issue.message})`,
  };
}

/** One taken object: its flat values and the modified time the cursor advances on. */
export type ParsedObject = { item: PageItem; id: string | null; modifiedAt: string | null };

/** An object of a search answer as flat values (`properties.dealstage`), or why it is unusable. */
export function flattenObject(raw: unknown, config: HubspotSourceConfig): ParsedObject {
  const text = JSON.stringify(raw) ?? 'null';
  const id =
    raw && typeof raw === 'object' && typeof (raw as { id?: unknown }).id === 'string'
      ? (raw as { id: string }).id || null
      : null;
  const parsed = SearchObject.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      item: {
        ok: false,
        id,
        raw: text,
        code: 'malformed_object',
        reason: `not a HubSpot object (${issue.path.join('.') || 'object'}: ${issue.message})`,
      },
      id,
      modifiedAt: null,
    };
  }
  const o = parsed.data;
  const prop = modifiedProperty(config.objectType);
  const modified = o.properties[prop];
  const modifiedMs = typeof modified === 'string' ? Date.parse(modified) : NaN;
  if (Number.isNaN(modifiedMs))
    return {
      item: {
        ok: false,
        id: o.id,
        raw: text,
        code: 'malformed_object',
        reason: `${prop} is not a time (${JSON.stringify(modified ?? null).slice(0, 60)})`,
      },
      id: o.id,
      modifiedAt: null,
    };
  const values: Record<string, unknown> = {
    id: o.id,
    createdAt: o.createdAt,
    updatedAt: o.updatedAt,
    archived: o.archived ?? false,
  };
  for (const [name, value] of Object.entries(o.properties)) values[`properties.${name}`] = value;
  return { item: { ok: true, values, raw: text }, id: o.id, modifiedAt: new Date(modifiedMs).toISOString() };
}

/**
 * What the cursor becomes after a page, and which of the page's objects were taken already.
 * Pure: the re-anchoring rule is tested on its own.
 */
export function advanceCursor(
  cursor: HubspotCursor,
  objects: ParsedObject[],
  pagingAfter: string | null,
  opts: { pageSize: number; cap: number; now: Date },
): { next: HubspotCursor; done: boolean; drop: Set<number> } {
  // An empty page that still offers a next one would be asked again for ever: it ends the search.
  const nextAfter = objects.length > 0 ? pagingAfter : null;
  const drop = new Set<number>();
  let newest = cursor.newest;
  let newestIds = [...cursor.newestIds];
  const seen = new Set(cursor.tie ? [] : cursor.seenAtAnchor);
  objects.forEach((o, i) => {
    if (o.id === null || o.modifiedAt === null) return;
    if (o.modifiedAt === cursor.anchor && seen.has(o.id)) {
      drop.add(i);
      return;
    }
    if (o.modifiedAt > newest) {
      newest = o.modifiedAt;
      newestIds = [o.id];
    } else if (o.modifiedAt === newest && !newestIds.includes(o.id)) newestIds.push(o.id);
  });

  if (cursor.tie) {
    const ids = objects.map((o) => o.id).filter((id): id is string => id !== null);
    const lastId = ids.length > 0 ? ids[ids.length - 1] : cursor.tie.lastId;
    if (nextAfter !== null && ids.length > 0)
      return { next: { ...cursor, tie: { lastId }, newest, newestIds: [] }, done: false, drop };
    // The crowded instant is read whole: go on strictly after it.
    return {
      next: {
        anchor: cursor.anchor,
        after: null,
        read: 0,
        seenAtAnchor: [],
        newest: cursor.anchor,
        newestIds: [],
        strict: true,
      },
      done: false,
      drop,
    };
  }

  const read = cursor.read + objects.length;
  if (nextAfter !== null) {
    // The next page stays within the cap: keep paging this search.
    if (read + opts.pageSize <= opts.cap)
      return { next: { ...cursor, after: nextAfter, read, newest, newestIds }, done: false, drop };
    if (newest === cursor.anchor)
      // A whole search's worth of objects share the anchor's instant: re-anchoring would return
      // the same ones again, so read that instant by object id.
      return {
        next: {
          anchor: cursor.anchor,
          after: null,
          read: 0,
          seenAtAnchor: [],
          newest,
          newestIds: [],
          tie: { lastId: null },
        },
        done: false,
        drop,
      };
    return {
      next: { anchor: newest, after: null, read: 0, seenAtAnchor: newestIds, newest, newestIds },
      done: false,
      drop,
    };
  }
  // The last page of this window: the next pull asks only what changed since, minus the index lag.
  const safe = new Date(opts.now.getTime() - HUBSPOT_SEARCH_INDEX_LAG_MS).toISOString();
  const keep = { anchor: cursor.anchor, after: null, read: 0, ...(cursor.strict ? { strict: true } : {}) };
  let next: HubspotCursor;
  if (newest === cursor.anchor)
    // Nothing newer than the anchor: keep it (and whether its instant is read already).
    next = { ...keep, seenAtAnchor: newestIds, newest, newestIds };
  else if (newest <= safe) next = { anchor: newest, after: null, read: 0, seenAtAnchor: newestIds, newest, newestIds };
  else if (cursor.anchor >= safe)
    next = { ...keep, seenAtAnchor: cursor.seenAtAnchor, newest: cursor.anchor, newestIds: cursor.seenAtAnchor };
  else next = { anchor: safe, after: null, read: 0, seenAtAnchor: [], newest: safe, newestIds: [] };
  return { next, done: true, drop };
}

/** Retry-After in seconds (HubSpot's form) or an HTTP date; the secondly window when absent. */
export function retryAfterMs(header: string | null, now: Date): number {
  if (header !== null && header.trim() !== '') {
    const seconds = Number(header.trim());
    if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
    const at = Date.parse(header);
    if (!Number.isNaN(at)) return Math.max(0, at - now.getTime());
  }
  return HUBSPOT_SEARCH_RATE_LIMIT.perMs;
}

function hubspotMessage(body: string): string {
  try {
    const j = JSON.parse(body) as { message?: unknown; category?: unknown };
    if (typeof j.message === 'string') return `${typeof j.category === 'string' ? `${j.category}: ` : ''}${j.message}`;
  } catch {
    // not JSON: fall through to the raw text
  }
  return body.replace(/\s+/g, ' ').slice(0, 200);
}

export interface HubspotClientOptions {
  /** HubSpot's 10,000; an emulator started with a smaller cap is tested with the same number. */
  searchCap?: number;
}

export function createHubspotClient(opts: HubspotClientOptions = {}): RecordSourceClient<HubspotSourceConfig> {
  const cap = opts.searchCap ?? HUBSPOT_SEARCH_RESULT_CAP;
  return {
    kind: 'hubspot',
    rateLimit: () => ({ ...HUBSPOT_SEARCH_RATE_LIMIT }),
    fetchPage: (config, saved, ctx) => fetchHubspotPage(config, saved, ctx, cap),
  };
}

export const hubspotClient: RecordSourceClient<HubspotSourceConfig> = createHubspotClient();

async function fetchHubspotPage(
  config: HubspotSourceConfig,
  saved: unknown,
  ctx: SourceContext,
  cap: number,
): Promise<FetchOutcome> {
  const token = ctx.env[config.tokenEnv];
  if (!token)
    return {
      status: 'auth',
      error: `the environment variable ${config.tokenEnv} (the HubSpot private-app token) is not set for the worker`,
    };
  const cursor = readCursor(config, saved);
  if (!cursor)
    return {
      status: 'broken',
      error: 'the saved HubSpot cursor is not one this version reads; reset the source cursor',
    };
  const url = `${config.apiBase}/crm/v3/objects/${config.objectType}/search`;
  let res: Response;
  let body: string;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(searchRequest(config, cursor)),
      signal: AbortSignal.timeout(ctx.timeoutMs),
    });
    body = await res.text();
  } catch (err) {
    return { status: 'retry', error: `HubSpot search at ${config.apiBase} did not answer (${(err as Error).message})` };
  }
  if (res.status === 401 || res.status === 403)
    return {
      status: 'auth',
      error: `HubSpot refused the private-app token in ${config.tokenEnv} (${res.status}); check the token and its crm.objects.${config.objectType}.read scope`,
    };
  if (res.status === 429)
    return { status: 'rate_limited', retryAfterMs: retryAfterMs(res.headers.get('retry-after'), ctx.now) };
  if (res.status >= 500)
    return { status: 'retry', error: `HubSpot search answered ${res.status}: ${hubspotMessage(body)}` };
  if (res.status !== 200)
    return { status: 'broken', error: `HubSpot search answered ${res.status}: ${hubspotMessage(body)}` };
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { status: 'broken', error: 'HubSpot search answered 200 with a body that is not JSON' };
  }
  const parsed = parseSearchAnswer(json);
  if (!parsed.ok) return { status: 'broken', error: parsed.error };
  const objects = parsed.answer.results.map((r) => flattenObject(r, config));
  const nextAfter = parsed.answer.paging?.next?.after ?? null;
  const { next, done, drop } = advanceCursor(cursor, objects, nextAfter, {
    pageSize: config.pageSize,
    cap,
    now: ctx.now,
  });
  return {
    status: 'page',
    page: { items: objects.filter((_, i) => !drop.has(i)).map((o) => o.item), next, done },
  };
}
