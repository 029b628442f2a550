import { z } from 'zod';
import { parseCustomerTimestamp } from '../domain/timestamps';
import type { ZendeskSourceConfig } from '../domain/sources';
import { retryAfterMs, withoutSecret } from '../sinks/wire';
import type { FetchOutcome, PageItem, RecordSourceClient, SourceContext } from './api-types';
import { nulCharacterReason } from './rows';

/**
 * Zendesk's Incremental Ticket Export, cursor based, as Zendesk documents it
 * (https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/ and
 * https://developer.zendesk.com/documentation/ticketing/managing-tickets/using-the-incremental-export-api):
 *
 * - The first request names `start_time` (unix seconds, at least a minute in the past); every later
 *   one the `cursor` the previous page gave as `after_cursor`. A page answers `tickets`, the
 *   sideloaded `metric_sets` (`include=metric_sets`: solved_at and reopens live there),
 *   `after_cursor`, `after_url` and `end_of_stream`. At end_of_stream the after_cursor is kept: the
 *   next night asks from it and gets only what changed since.
 * - "You can make up to 10 requests per minute to these endpoints"; 429 carries Retry-After in
 *   seconds (some 429s come without it: the documented minute is waited then).
 * - The export orders tickets by generated_timestamp, which every change moves (system updates
 *   too), so a ticket changed while the export is being read comes again on a later page, and a
 *   ticket seen last night comes again tonight. That is harmless here: a version is keyed by the
 *   ticket's own updated_at and the mapped values, so the same state twice adds nothing and a new
 *   state is a new version.
 * - An empty page with end_of_stream true is the normal answer of a night with no changes.
 *
 * Deleted tickets: the export includes them, with status "deleted", unless `exclude_deleted=true` is
 * asked, which is deliberately never asked. A deletion is imported as one more version of the
 * ticket, status "deleted": a success rule that reads status (the preset's ticket's does) then
 * fails, so an outcome still in grace is voided, while one already confirmed stays billed (a
 * deletion after grace is a dispute, like any change after grace). Zendesk moves only
 * generated_timestamp for changes that create no ticket event, so a deletion can keep the ticket's
 * old updated_at; the deleted version is then dated when Zendesk recorded the deletion (the later
 * of updated_at and generated_timestamp), so a rerun of an earlier night still sees the ticket as it
 * was that night, and the deletion never ties with the version before it.
 */

export const ZENDESK_EXPORT_PATH = '/api/v2/incremental/tickets/cursor.json';
/** "You can make up to 10 requests per minute to these endpoints" (Incremental Exports, Rate limits). */
export const ZENDESK_EXPORT_RATE_LIMIT = { requests: 10, perMs: 60_000 } as const;

/** The page as documented; keys we do not read are let through, the ones we read must be there. */
export const ZendeskExportPageSchema = z.looseObject({
  tickets: z.array(z.unknown()),
  metric_sets: z.array(z.unknown()).optional(),
  after_cursor: z.string().min(1).nullable().optional(),
  after_url: z.string().nullable().optional(),
  before_cursor: z.string().nullable().optional(),
  end_of_stream: z.boolean(),
});
export type ZendeskExportPage = z.infer<typeof ZendeskExportPageSchema>;

/** A sideloaded metric set: matched to its ticket by ticket_id. */
const MetricSetSchema = z.looseObject({ ticket_id: z.number().int() });

/** Zendesk writes every time in UTC ISO 8601 with its zone (2011-05-05T10:38:52Z). */
const ZONED_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;
/** Nested objects are flattened this deep; deeper values stay whole under their parent's key. */
const MAX_DEPTH = 4;
const RAW_MAX_CHARS = 4000;

export type ZendeskCursor = string | null;

function isTime(v: unknown): v is string {
  if (typeof v !== 'string' || !ZONED_TIME.test(v)) return false;
  try {
    parseCustomerTimestamp(v, 'UTC');
    return true;
  } catch {
    return false;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * An object as flat values: each key as it is, and each nested object's keys under `key.` as
 * well (satisfaction_rating.score, via.channel). Zendesk's custom_fields, a list of {id, value},
 * also give `custom_fields.<id>`, so a contract's `fields` can name a custom field by its id.
 */
function flattenInto(out: Array<[string, unknown]>, obj: Record<string, unknown>, prefix: string, depth: number): void {
  for (const [key, value] of Object.entries(obj)) {
    const name = `${prefix}${key}`;
    out.push([name, value]);
    if (depth >= MAX_DEPTH) continue;
    if (isPlainObject(value)) flattenInto(out, value, `${name}.`, depth + 1);
    else if (key === 'custom_fields' && Array.isArray(value)) {
      for (const f of value) {
        if (isPlainObject(f) && (typeof f.id === 'number' || typeof f.id === 'string'))
          out.push([`${name}.${f.id}`, f.value]);
      }
    }
  }
}

/**
 * One exported ticket and its metric set as the values the preset's columns read: the ticket's
 * own keys, and the metric set's under `metric_set.` (metric_set.solved_at, metric_set.reopens).
 * Built with fromEntries, so a key named __proto__ stays a plain value.
 */
export function flattenTicket(
  ticket: Record<string, unknown>,
  metricSet: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const entries: Array<[string, unknown]> = [];
  flattenInto(entries, ticket, '', 1);
  if (metricSet) {
    entries.push(['metric_set', metricSet]);
    flattenInto(entries, metricSet, 'metric_set.', 2);
  }
  const values = Object.fromEntries(entries) as Record<string, unknown>;
  if (ticket.status === 'deleted') values.updated_at = deletionTime(ticket);
  return values;
}

/** When Zendesk recorded a deletion: the later of updated_at and generated_timestamp (unix seconds). */
function deletionTime(ticket: Record<string, unknown>): unknown {
  const g = ticket.generated_timestamp;
  if (typeof g !== 'number' || !Number.isFinite(g) || !isTime(ticket.updated_at)) return ticket.updated_at;
  const generated = g * 1000;
  const updated = Date.parse(ticket.updated_at);
  return generated > updated ? new Date(generated).toISOString() : ticket.updated_at;
}

function rawOf(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > RAW_MAX_CHARS ? `${text.slice(0, RAW_MAX_CHARS)}…` : text;
}

/**
 * The page's tickets as items: usable ones flattened with their metric set, malformed ones with
 * their id (when there is one) and the reason, to be quarantined while the rest is imported.
 */
export function ticketItems(page: ZendeskExportPage): PageItem[] {
  const metrics = new Map<number, Record<string, unknown>>();
  for (const m of page.metric_sets ?? []) {
    const parsed = MetricSetSchema.safeParse(m);
    // A ticket can come twice in a page; its metric set the same way, the later one the newer.
    if (parsed.success) metrics.set(parsed.data.ticket_id, parsed.data);
  }
  return page.tickets.map((t): PageItem => {
    const raw = JSON.stringify(t) ?? 'null';
    const bad = (id: string | null, code: string, reason: string): PageItem => ({
      ok: false,
      id,
      raw: rawOf(t),
      code,
      reason,
    });
    if (!isPlainObject(t)) return bad(null, 'not_an_object', 'expected a ticket object');
    const idText = t.id === undefined || t.id === null ? null : rawOf(t.id).slice(0, 40);
    if (idText === null) return bad(null, 'missing_field', 'ticket has no id');
    if (typeof t.id !== 'number' || !Number.isSafeInteger(t.id) || t.id < 1)
      return bad(idText, 'invalid_field', `ticket id ${idText} is not a positive whole number`);
    const id = String(t.id);
    if (!isTime(t.updated_at))
      return bad(
        id,
        'bad_timestamp',
        `updated_at ${t.updated_at === undefined ? 'is missing' : `${rawOf(t.updated_at).slice(0, 40)} is not an ISO 8601 time with a zone`}`,
      );
    const metricSet = metrics.get(t.id);
    // Without its metric set a solved ticket would read as unsolved and void a good outcome:
    // the version in effect stays until the ticket comes again. A deleted ticket needs none.
    if (!metricSet && t.status !== 'deleted')
      return bad(
        id,
        'missing_field',
        `ticket ${id} has no metric set in the page (solved_at and reopens come from it)`,
      );
    const nul = nulCharacterReason(t) ?? (metricSet ? nulCharacterReason(metricSet) : undefined);
    if (nul !== undefined) return bad(id, 'nul_character', nul);
    return {
      ok: true,
      values: flattenTicket(t, metricSet),
      raw: metricSet ? `${raw}\n${JSON.stringify(metricSet)}` : raw,
    };
  });
}

/** The request for the page after `cursor` (null: the first pull, from the config's startTime). */
export function exportUrl(config: ZendeskSourceConfig, cursor: ZendeskCursor): string {
  const url = new URL(`${config.apiBase}${ZENDESK_EXPORT_PATH}`);
  if (cursor === null) url.searchParams.set('start_time', String(Math.floor(Date.parse(config.startTime) / 1000)));
  else url.searchParams.set('cursor', cursor);
  url.searchParams.set('include', 'metric_sets');
  url.searchParams.set('per_page', String(config.pageSize));
  return url.toString();
}

/** The variables that hold the credentials, for messages (their values never appear). */
export function credentialVariables(config: ZendeskSourceConfig): string[] {
  return config.auth.kind === 'api_token' ? [config.auth.emailEnv, config.auth.tokenEnv] : [config.auth.tokenEnv];
}

/**
 * The Authorization header from the environment: an API token is Basic `{email}/token:{token}`
 * (https://developer.zendesk.com/api-reference/introduction/security-and-auth/), an OAuth access
 * token Bearer. A variable that is not set is named; its value is never shown.
 */
export function authHeader(
  config: ZendeskSourceConfig,
  env: Record<string, string | undefined>,
): { ok: true; header: string; secret: string } | { ok: false; error: string } {
  const missing = credentialVariables(config).filter((name) => !env[name]?.trim());
  if (missing.length > 0)
    return {
      ok: false,
      error: `environment variable ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set: set it in the worker's environment`,
    };
  if (config.auth.kind === 'oauth') {
    const token = (env[config.auth.tokenEnv] as string).trim();
    return { ok: true, header: `Bearer ${token}`, secret: token };
  }
  const email = (env[config.auth.emailEnv] as string).trim();
  const token = (env[config.auth.tokenEnv] as string).trim();
  return {
    ok: true,
    header: `Basic ${Buffer.from(`${email}/token:${token}`).toString('base64')}`,
    secret: token,
  };
}

function describeError(text: string, secret: string): string {
  let detail = text;
  try {
    const body = JSON.parse(text) as { error?: unknown; description?: unknown };
    const parts = [body.error, body.description].filter((p) => typeof p === 'string' || isPlainObject(p));
    if (parts.length > 0) detail = parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(': ');
  } catch {
    // Not JSON (a proxy's page, a plain-text 429): the text itself, cut short.
  }
  return withoutSecret(detail, secret, 200);
}

async function fetchPage(config: ZendeskSourceConfig, cursor: unknown, ctx: SourceContext): Promise<FetchOutcome> {
  if (cursor !== null && cursor !== undefined && (typeof cursor !== 'string' || cursor === ''))
    return {
      status: 'broken',
      error: `the saved cursor ${rawOf(cursor).slice(0, 60)} is not a Zendesk after_cursor`,
    };
  const auth = authHeader(config, ctx.env);
  if (!auth.ok) return { status: 'auth', error: auth.error };
  const url = exportUrl(config, cursor ?? null);
  let status: number;
  let text: string;
  let headers: Headers;
  try {
    const res = await fetch(url, {
      headers: { authorization: auth.header, accept: 'application/json' },
      // A redirect would carry the credentials elsewhere; apiBase must name the API itself.
      redirect: 'manual',
      signal: AbortSignal.timeout(ctx.timeoutMs),
    });
    status = res.status;
    headers = res.headers;
    text = await res.text();
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError')
      return { status: 'retry', error: `Zendesk gave no answer within ${Math.round(ctx.timeoutMs / 1000)}s` };
    return {
      status: 'retry',
      error: `cannot reach Zendesk at ${config.apiBase} (${withoutSecret(e.cause?.code ?? e.cause?.message ?? e.message, auth.secret, 120)})`,
    };
  }
  const vars = credentialVariables(config).join(' and ');
  if (status === 401) return { status: 'auth', error: `Zendesk refused the credentials (401): check ${vars}` };
  if (status === 403)
    return {
      status: 'auth',
      error: `Zendesk answered 403: the incremental export needs an admin's credentials; check ${vars}`,
    };
  if (status === 429)
    return {
      status: 'rate_limited',
      retryAfterMs: retryAfterMs(headers.get('retry-after'), ctx.now) ?? ZENDESK_EXPORT_RATE_LIMIT.perMs,
    };
  if (status >= 500)
    return { status: 'retry', error: `Zendesk answered ${status} (${describeError(text, auth.secret)})` };
  if (status !== 200)
    return {
      status: 'broken',
      error: `Zendesk answered ${status} to the incremental export (${describeError(text, auth.secret)}): check apiBase ${config.apiBase} and startTime`,
    };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { status: 'broken', error: `Zendesk's answer is not JSON (${withoutSecret(text, auth.secret, 80)})` };
  }
  const parsed = ZendeskExportPageSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      status: 'broken',
      error: `Zendesk's answer is not the documented export page: ${issue.path.join('.') || 'the answer'}: ${issue.message}`,
    };
  }
  const page = parsed.data;
  if (page.tickets.length > 0 && page.metric_sets === undefined)
    return {
      status: 'broken',
      error: `Zendesk's answer has tickets but no metric_sets although include=metric_sets was asked (solved_at would read empty)`,
    };
  if (!page.end_of_stream && !page.after_cursor)
    return { status: 'broken', error: `Zendesk's answer has more to read (end_of_stream false) but no after_cursor` };
  // The night pulls until end_of_stream: a cursor that does not move would ask the same page forever.
  if (!page.end_of_stream && page.after_cursor === cursor)
    return { status: 'broken', error: `Zendesk's after_cursor did not move although end_of_stream is false` };
  return {
    status: 'page',
    page: {
      items: ticketItems(page),
      // At the end of the stream without a new cursor, the one asked with still holds the position.
      next: page.after_cursor ?? cursor ?? null,
      done: page.end_of_stream,
    },
  };
}

export const zendeskClient: RecordSourceClient<ZendeskSourceConfig> = {
  kind: 'zendesk',
  rateLimit: () => ({ ...ZENDESK_EXPORT_RATE_LIMIT }),
  fetchPage,
};
