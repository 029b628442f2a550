import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ZendeskSourceConfig } from '../../src/domain/sources';
import { evaluatePredicate } from '../../src/domain/predicate';
import { mapRecordRow } from '../../src/ingest/record-row';
import { rateLimitWaitMs } from '../../src/sources/record-pull';
import type { FetchOutcome, PageItem } from '../../src/sources/api-types';
import {
  ZendeskExportPageSchema,
  authHeader,
  exportUrl,
  flattenTicket,
  ticketItems,
  zendeskClient,
  type ZendeskExportPage,
} from '../../src/sources/zendesk';
import { ZENDESK_ENV, zendeskContract, zendeskFixture } from '../support/zendesk';

const contract = zendeskContract('zd-unit', {
  apiBase: 'https://example.zendesk.com',
  startTime: '2026-03-01T00:00:00Z',
});
const source = contract.recordSources.zendesk as ZendeskSourceConfig;
const success = contract.outcomeTypes.resolved_ticket.success;
const mapOpts = { timeZone: 'UTC', matchField: 'ticket_id', caseInsensitive: false };
const page = (name: string) => ZendeskExportPageSchema.parse(zendeskFixture(name));
const okValues = (item: PageItem) => {
  if (!item.ok) throw new Error(`expected a usable item, got ${item.code}: ${item.reason}`);
  return item.values;
};

describe('the documented export page', () => {
  it('parses, and each ticket flattens with its metric set under metric_set.', () => {
    const items = ticketItems(page('zendesk-export-page.json'));
    expect(items).toHaveLength(1);
    const v = okValues(items[0]);
    expect(v).toMatchObject({
      id: 35436,
      status: 'open',
      updated_at: '2011-05-05T10:38:52Z',
      'satisfaction_rating.score': 'good',
      'via.channel': 'web',
      'custom_fields.27642': '745',
      'metric_set.solved_at': '2011-05-09T10:38:52Z',
      'metric_set.reopens': 55,
      'metric_set.full_resolution_time_in_minutes.calendar': 2391,
    });
  });

  it('maps onto the preset through mapRecordRow with no configuration, and custom fields by path', () => {
    const v = okValues(ticketItems(page('zendesk-export-page.json'))[0]);
    const mapped = mapRecordRow(v, source, mapOpts);
    expect(mapped).toMatchObject({
      externalId: '35436',
      matchKey: '35436',
      updatedAt: '2011-05-05T10:38:52.000Z',
      data: {
        ticket_id: '35436',
        status: 'open',
        solved_at: '2011-05-09T10:38:52.000Z',
        updated_at: '2011-05-05T10:38:52.000Z',
        reopens: 55,
      },
    });
    const custom = zendeskContract('zd-unit', {
      apiBase: 'https://example.zendesk.com',
      startTime: '2026-03-01T00:00:00Z',
      fields: {
        csat: { column: 'satisfaction_rating.score' },
        units: { column: 'custom_fields.27642', type: 'number' },
      },
    }).recordSources.zendesk;
    expect(mapRecordRow(v, custom, mapOpts).data).toMatchObject({ csat: 'good', units: 745, reopens: 55 });
  });

  it('an empty page at the end of the stream is nothing to import, and says so', () => {
    const p = page('zendesk-export-empty.json');
    expect(ticketItems(p)).toEqual([]);
    expect(p.end_of_stream).toBe(true);
  });

  it('a deleted ticket is a version with status deleted, dated when the deletion was recorded, that fails success', () => {
    const v = okValues(ticketItems(page('zendesk-export-deleted.json'))[0]);
    const mapped = mapRecordRow(v, source, mapOpts);
    expect(mapped.data.status).toBe('deleted');
    // updated_at did not move with the deletion; generated_timestamp did (2011-05-17T10:40:00Z).
    expect(mapped.updatedAt).toBe('2011-05-17T10:40:00.000Z');
    expect(evaluatePredicate(success, mapped.data)).toBe(false);
    const solved = { ...mapped.data, status: 'solved' };
    expect(evaluatePredicate(success, solved)).toBe(true);
    // A deletion that did move updated_at keeps it.
    const later = flattenTicket(
      { id: 1, status: 'deleted', updated_at: '2026-03-02T10:00:00Z', generated_timestamp: 1 },
      undefined,
    );
    expect(later.updated_at).toBe('2026-03-02T10:00:00Z');
  });
});

describe('malformed tickets are quarantined with their id, the rest of the page imported', () => {
  const good = zendeskFixture('zendesk-export-page.json') as ZendeskExportPage;
  const ticket = good.tickets[0] as Record<string, unknown>;
  const metric = good.metric_sets?.[0] as Record<string, unknown>;
  const withTickets = (...tickets: unknown[]): ZendeskExportPage => ({
    ...good,
    tickets,
    metric_sets: tickets.map((t, i) => ({ ...metric, id: i + 1, ticket_id: (t as { id?: unknown })?.id ?? -1 })),
  });

  it('names the code, the id and the reason of each', () => {
    const items = ticketItems(
      withTickets(
        { ...ticket, id: undefined },
        { ...ticket, id: 'T-9' },
        { ...ticket, id: 7, updated_at: 'yesterday' },
        { ...ticket, id: 8, subject: 'nul \u0000 here' },
        'not a ticket',
        { ...ticket, id: 9 },
      ),
    );
    const bad = items.map((i) => (i.ok ? 'ok' : `${i.code} ${i.id} ${i.reason}`));
    expect(bad).toEqual([
      'missing_field null ticket has no id',
      'invalid_field "T-9" ticket id "T-9" is not a positive whole number',
      'bad_timestamp 7 updated_at "yesterday" is not an ISO 8601 time with a zone',
      expect.stringMatching(/^nul_character 8 field subject: contains a NUL/),
      'not_an_object null expected a ticket object',
      'ok',
    ]);
  });

  it('a ticket without its metric set is quarantined (it would read as unsolved); a deleted one needs none', () => {
    const items = ticketItems({
      ...good,
      tickets: [ticket, { ...ticket, id: 2, status: 'deleted' }],
      metric_sets: [],
    });
    expect(items[0]).toMatchObject({ ok: false, id: '35436', code: 'missing_field' });
    expect(items[1].ok).toBe(true);
  });

  it('the same ticket twice in a page maps to the same data: the importer keeps one version', () => {
    const items = ticketItems(withTickets(ticket, ticket));
    const [a, b] = items.map((i) => mapRecordRow(okValues(i), source, mapOpts));
    expect(a.rowSha256).toBe(b.rowSha256);
    expect(a.updatedAt).toBe(b.updatedAt);
  });
});

describe('the request', () => {
  it('first from start_time in unix seconds, then from the cursor, always with metric sets and per_page', () => {
    const first = new URL(exportUrl(source, null));
    expect(first.pathname).toBe('/api/v2/incremental/tickets/cursor.json');
    expect(Object.fromEntries(first.searchParams)).toEqual({
      start_time: String(Date.parse('2026-03-01T00:00:00Z') / 1000),
      include: 'metric_sets',
      per_page: '1000',
    });
    const next = new URL(exportUrl(source, 'MTU3NjYxMzUzOS4wfHw0Njd8'));
    expect(Object.fromEntries(next.searchParams)).toEqual({
      cursor: 'MTU3NjYxMzUzOS4wfHw0Njd8',
      include: 'metric_sets',
      per_page: '1000',
    });
  });

  it('an API token is Basic {email}/token:{token}; an OAuth token Bearer; a missing variable is named', () => {
    const basic = authHeader(source, ZENDESK_ENV);
    expect(basic.ok && Buffer.from(basic.header.replace('Basic ', ''), 'base64').toString()).toBe(
      'admin@example.com/token:zd-test-token-1234',
    );
    const oauth = { ...source, auth: { kind: 'oauth' as const, tokenEnv: 'ZENDESK_OAUTH' } };
    expect(authHeader(oauth, { ZENDESK_OAUTH: 'abc' })).toMatchObject({ ok: true, header: 'Bearer abc' });
    expect(authHeader(source, { ZENDESK_EMAIL: 'a@b.c' })).toEqual({
      ok: false,
      error: "environment variable ZENDESK_API_TOKEN is not set: set it in the worker's environment",
    });
  });

  it('keeps the documented budget: 10 requests a minute, the 11th waits for the window', () => {
    const limit = zendeskClient.rateLimit(source);
    expect(limit).toEqual({ requests: 10, perMs: 60_000 });
    const startedAt = new Date('2026-03-02T10:00:00Z');
    expect(rateLimitWaitMs({ startedAt, requests: 9 }, limit, new Date('2026-03-02T10:00:20Z'))).toBe(0);
    expect(rateLimitWaitMs({ startedAt, requests: 10 }, limit, new Date('2026-03-02T10:00:20Z'))).toBe(40_000);
    expect(rateLimitWaitMs({ startedAt, requests: 10 }, limit, new Date('2026-03-02T10:01:00Z'))).toBe(0);
  });
});

describe('answers from a tiny local server', () => {
  let server: Server;
  let base: string;
  const seen: IncomingMessage[] = [];
  let answer: { status: number; body: string; headers?: Record<string, string> } = { status: 200, body: '{}' };
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req);
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const fetchWith = async (
    reply: typeof answer,
    opts: { cursor?: unknown; env?: Record<string, string | undefined> } = {},
  ): Promise<FetchOutcome> => {
    answer = reply;
    return zendeskClient.fetchPage({ ...source, apiBase: base }, opts.cursor ?? null, {
      now: new Date('2026-03-02T10:00:00Z'),
      env: opts.env ?? ZENDESK_ENV,
      timeoutMs: 5_000,
    });
  };
  const json = (body: unknown, status = 200, headers?: Record<string, string>) => ({
    status,
    body: JSON.stringify(body),
    headers,
  });

  it('reads the documented page, sending the credentials as Basic', async () => {
    const r = await fetchWith(json(zendeskFixture('zendesk-export-page.json')));
    expect(r).toMatchObject({ status: 'page', page: { next: 'MTU3NjYxMzUzOS4wfHw0Njd8', done: true } });
    expect(seen.at(-1)?.headers.authorization).toBe(
      `Basic ${Buffer.from('admin@example.com/token:zd-test-token-1234').toString('base64')}`,
    );
    expect(seen.at(-1)?.url).toContain('include=metric_sets');
  });

  it('an empty last page without a new cursor keeps the one asked with', async () => {
    const r = await fetchWith(json({ tickets: [], metric_sets: [], after_cursor: null, end_of_stream: true }), {
      cursor: 'abc',
    });
    expect(r).toEqual({ status: 'page', page: { items: [], next: 'abc', done: true } });
  });

  it('a changed shape fails loudly, with a one-line reason', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ results: [], meta: { has_more: false } }, /not the documented export page: tickets: /],
      [{ tickets: [], metric_sets: [] }, /not the documented export page: end_of_stream: /],
      [{ tickets: [{ id: 1 }], end_of_stream: true, after_cursor: 'x' }, /no metric_sets although include=metric_sets/],
      [{ tickets: [], metric_sets: [], end_of_stream: false }, /end_of_stream false\) but no after_cursor/],
      [{ tickets: [], metric_sets: [], end_of_stream: false, after_cursor: 'c1' }, /after_cursor did not move/],
    ];
    for (const [body, reason] of cases) {
      const r = await fetchWith(json(body), { cursor: 'c1' });
      expect(r.status).toBe('broken');
      expect(r.status === 'broken' && r.error).toMatch(reason);
      expect(r.status === 'broken' && r.error).not.toContain('\n');
    }
    expect(await fetchWith({ status: 200, body: '<html>maintenance</html>' })).toMatchObject({
      status: 'broken',
      error: expect.stringMatching(/not JSON/),
    });
    expect(await fetchWith(json({ error: 'InvalidEndpoint' }, 404))).toMatchObject({
      status: 'broken',
      error: expect.stringMatching(/answered 404 .*check apiBase/),
    });
  });

  it('401 and 403 name the environment variables and never the secret', async () => {
    const r401 = await fetchWith(json(zendeskFixture('zendesk-error-401.json'), 401));
    expect(r401).toEqual({
      status: 'auth',
      error: 'Zendesk refused the credentials (401): check ZENDESK_EMAIL and ZENDESK_API_TOKEN',
    });
    const r403 = await fetchWith(json({ error: 'Forbidden', description: 'token zd-test-token-1234' }, 403));
    expect(r403.status).toBe('auth');
    expect(JSON.stringify(r403)).not.toContain('zd-test-token-1234');
    expect(JSON.stringify(r403)).toContain('ZENDESK_API_TOKEN');
  });

  it('a missing variable makes no request at all', async () => {
    const before = seen.length;
    const r = await fetchWith(json({}), { env: { ZENDESK_API_TOKEN: 'x' } });
    expect(r).toEqual({
      status: 'auth',
      error: "environment variable ZENDESK_EMAIL is not set: set it in the worker's environment",
    });
    expect(seen.length).toBe(before);
  });

  it('429 waits Retry-After seconds, or the documented minute without it; 5xx is retried', async () => {
    expect(await fetchWith(json({ error: 'APIRateLimitExceeded' }, 429, { 'retry-after': '17' }))).toEqual({
      status: 'rate_limited',
      retryAfterMs: 17_000,
    });
    expect(await fetchWith({ status: 429, body: 'Number of allowed API requests per minute exceeded' })).toEqual({
      status: 'rate_limited',
      retryAfterMs: 60_000,
    });
    expect(await fetchWith(json({ error: 'InternalServerError' }, 503))).toMatchObject({ status: 'retry' });
  });

  it('a saved cursor that is not a Zendesk cursor is refused', async () => {
    expect(await fetchWith(json({}), { cursor: { after: 3 } })).toMatchObject({
      status: 'broken',
      error: expect.stringMatching(/saved cursor .* is not a Zendesk after_cursor/),
    });
  });

  it('an unreachable Zendesk is retried', async () => {
    const r = await zendeskClient.fetchPage({ ...source, apiBase: 'http://127.0.0.1:9' }, null, {
      now: new Date(),
      env: ZENDESK_ENV,
      timeoutMs: 2_000,
    });
    expect(r).toMatchObject({ status: 'retry', error: expect.stringMatching(/cannot reach Zendesk/) });
  });
});
