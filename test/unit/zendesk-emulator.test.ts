import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ZendeskSourceConfig } from '../../src/domain/sources';
import {
  decodeZendeskCursor,
  startZendeskEmulator,
  type ZendeskEmulatorHandle,
  type ZendeskEmulatorOptions,
  type ZendeskMetricSet,
  type ZendeskTicket,
} from '../../src/emulators/zendesk';
import { ZendeskExportPageSchema, zendeskClient } from '../../src/sources/zendesk';
import { ZENDESK_ENV, zendeskContract, zendeskFixture } from '../support/zendesk';

const MINUTE = 60_000;

/** An export answer as the emulator gives it (an error answer has only `error`). */
interface ExportAnswer {
  tickets: ZendeskTicket[];
  metric_sets: ZendeskMetricSet[];
  after_cursor: string;
  end_of_stream: boolean;
  error?: string;
}
interface DocumentedPage {
  tickets: Array<Record<string, unknown>>;
  metric_sets: Array<Record<string, unknown>>;
  after_cursor: string;
}
let em: ZendeskEmulatorHandle | undefined;
afterEach(async () => {
  await em?.close();
  em = undefined;
});

async function start(opts: Partial<ZendeskEmulatorOptions> = {}): Promise<ZendeskEmulatorHandle> {
  em = await startZendeskEmulator({ secret: ZENDESK_ENV.ZENDESK_API_TOKEN, email: ZENDESK_ENV.ZENDESK_EMAIL, ...opts });
  return em;
}

const basic = `Basic ${Buffer.from(`${ZENDESK_ENV.ZENDESK_EMAIL}/token:${ZENDESK_ENV.ZENDESK_API_TOKEN}`).toString('base64')}`;
async function get(e: ZendeskEmulatorHandle, query: string, auth = basic) {
  const res = await fetch(`${e.url}/api/v2/incremental/tickets/cursor.json?${query}`, {
    headers: { authorization: auth },
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as ExportAnswer };
}
const startQuery = (minutesAgo: number, extra = '') =>
  `start_time=${Math.floor((Date.now() - minutesAgo * MINUTE) / 1000)}&include=metric_sets${extra}`;

/** Creates tickets `minutesAgo` on the emulator's clock, then brings the clock back to now. */
async function ticketsAgo(e: ZendeskEmulatorHandle, minutesAgo: number, n: number, status = 'solved') {
  e.setClockOffset(-minutesAgo * MINUTE);
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push((await e.createTicket({ subject: `t${i}`, status })).id);
  e.setClockOffset(0);
  return ids;
}

describe('the Zendesk emulator agrees with the documented shapes', () => {
  it('its export page has the documented keys, tickets and metric sets at least the example fields', async () => {
    const e = await start();
    await ticketsAgo(e, 10, 1);
    const { status, body } = await get(e, startQuery(20));
    expect(status).toBe(200);
    const doc = zendeskFixture('zendesk-export-page.json') as DocumentedPage;
    expect(Object.keys(body).sort()).toEqual(Object.keys(doc).sort());
    for (const key of Object.keys(doc.tickets[0])) expect(body.tickets[0]).toHaveProperty(key);
    for (const key of Object.keys(doc.metric_sets[0])) expect(body.metric_sets[0]).toHaveProperty(key);
    expect(ZendeskExportPageSchema.safeParse(body).success).toBe(true);
    expect(decodeZendeskCursor(doc.after_cursor)).toEqual({ ts: 1576613539, id: 467 });
  });

  it('401 answers the documented body; Bearer with the OAuth token is accepted', async () => {
    const e = await start({ oauthToken: 'oauth-abc' });
    const bad = await get(e, startQuery(20), 'Basic eDp5');
    expect(bad).toMatchObject({ status: 401, body: zendeskFixture('zendesk-error-401.json') });
    expect((await get(e, startQuery(20), 'Bearer oauth-abc')).status).toBe(200);
  });
});

describe('the cursor-based export', () => {
  it('pages in generated_timestamp order to end_of_stream; a cursor encodes the position', async () => {
    const e = await start();
    const ids = await ticketsAgo(e, 10, 5);
    const seen: number[] = [];
    let q = startQuery(20, '&per_page=2');
    const ends: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      const { body } = await get(e, q);
      seen.push(...body.tickets.map((t) => t.id));
      ends.push(body.end_of_stream);
      expect(body.metric_sets.map((m) => m.ticket_id)).toEqual(body.tickets.map((t) => t.id));
      if (body.end_of_stream) break;
      q = `cursor=${encodeURIComponent(body.after_cursor)}&include=metric_sets&per_page=2`;
    }
    expect(seen).toEqual(ids);
    expect(ends).toEqual([false, false, true]);
  });

  it('leaves out the last minute, refuses a start_time inside it, and serves it once a minute has passed', async () => {
    const e = await start();
    await e.createTicket({ status: 'open' });
    expect((await get(e, startQuery(20))).body.tickets).toEqual([]);
    expect(await get(e, startQuery(0))).toMatchObject({ status: 400, body: { error: 'InvalidValue' } });
    e.setClockOffset(2 * MINUTE);
    expect((await get(e, startQuery(20))).body.tickets).toHaveLength(1);
  });

  it('a ticket changed during an export comes again on a later page', async () => {
    const e = await start();
    const ids = await ticketsAgo(e, 10, 3, 'open');
    const first = await get(e, startQuery(20, '&per_page=1'));
    expect(first.body.tickets[0].id).toBe(ids[0]);
    e.setClockOffset(-5 * MINUTE);
    await e.updateTicket(ids[0], { status: 'solved' });
    e.setClockOffset(0);
    const rest = await get(e, `cursor=${first.body.after_cursor}&include=metric_sets`);
    expect(rest.body.tickets.map((t) => t.id)).toEqual([ids[1], ids[2], ids[0]]);
    expect(rest.body.tickets[2].status).toBe('solved');
  });

  it('keeps solved_at and reopens as tickets are solved, reopened and solved again; closed tickets are final', async () => {
    const e = await start();
    e.setClockOffset(-30 * MINUTE);
    const t = await e.createTicket({ status: 'open' });
    e.setClockOffset(-20 * MINUTE);
    await e.updateTicket(t.id, { status: 'solved' });
    const firstSolve = e.state().metricSets[0].solved_at;
    e.setClockOffset(-15 * MINUTE);
    await e.updateTicket(t.id, { status: 'open', comment: { body: 'still broken' } });
    e.setClockOffset(-10 * MINUTE);
    await e.updateTicket(t.id, { status: 'solved' });
    const m = e.state().metricSets[0];
    expect(m.reopens).toBe(1);
    expect(Date.parse(m.solved_at as string) - Date.parse(firstSolve as string)).toBe(10 * MINUTE);
    await e.updateTicket(t.id, { status: 'closed' });
    await expect(e.updateTicket(t.id, { status: 'open' })).rejects.toThrow(/422/);
  });

  it('a deleted ticket is exported with status deleted (unless exclude_deleted), and gone from the tickets API', async () => {
    const e = await start();
    const [id] = await ticketsAgo(e, 30, 1);
    e.setClockOffset(-10 * MINUTE);
    await e.deleteTicket(id);
    e.setClockOffset(0);
    const res = await fetch(`${e.url}/api/v2/tickets/${id}.json`, { headers: { authorization: basic } });
    expect(res.status).toBe(404);
    const { body } = await get(e, startQuery(40));
    expect(body.tickets[0]).toMatchObject({ id, status: 'deleted' });
    expect(body.tickets[0].generated_timestamp * 1000).toBeGreaterThan(Date.parse(body.tickets[0].updated_at));
    expect((await get(e, startQuery(40, '&exclude_deleted=true'))).body.tickets).toEqual([]);
  });
});

describe('the export rate limit', () => {
  it('answers the 11th request in a minute 429 with Retry-After in seconds', async () => {
    const e = await start();
    for (let i = 0; i < 10; i++) expect((await get(e, startQuery(20))).status).toBe(200);
    const limited = await get(e, startQuery(20));
    expect(limited.status).toBe(429);
    expect(Number(limited.retryAfter)).toBeGreaterThanOrEqual(59);
    expect(Number(limited.retryAfter)).toBeLessThanOrEqual(60);
    e.setClockOffset(MINUTE);
    expect((await get(e, startQuery(20))).status).toBe(200);
  });

  it('can be scaled or switched off for fast tests', async () => {
    const scaled = await start({ exportRateLimit: { requests: 2, perMs: 1000 } });
    expect((await get(scaled, startQuery(20))).status).toBe(200);
    expect((await get(scaled, startQuery(20))).status).toBe(200);
    expect(await get(scaled, startQuery(20))).toMatchObject({ status: 429, retryAfter: '1' });
    await scaled.close();
    const off = await start({ exportRateLimit: null });
    for (let i = 0; i < 15; i++) expect((await get(off, startQuery(20))).status).toBe(200);
    expect(off.exportRequests()).toBe(15);
  });
});

describe('page faults, read by the client', () => {
  const config = (url: string) =>
    zendeskContract('zd', { apiBase: url, startTime: new Date(Date.now() - 20 * MINUTE).toISOString() }).recordSources
      .zendesk as ZendeskSourceConfig;
  const ctx = { now: new Date(), env: ZENDESK_ENV, timeoutMs: 5_000 };

  it('a changed shape is broken; malformed tickets are quarantined while the rest is read', async () => {
    const e = await start();
    await ticketsAgo(e, 10, 3);
    e.setPageFault('changed_shape');
    expect(await zendeskClient.fetchPage(config(e.url), null, ctx)).toMatchObject({
      status: 'broken',
      error: expect.stringMatching(/tickets/),
    });
    e.setPageFault('malformed_ticket');
    const r = await zendeskClient.fetchPage(config(e.url), null, ctx);
    if (r.status !== 'page') throw new Error(`expected a page, got ${r.status}`);
    expect(r.page.items.map((i) => (i.ok ? 'ok' : `${i.code}:${i.id}`))).toEqual([
      'missing_field:null',
      'bad_timestamp:2',
      'ok',
    ]);
    // The fault was for one answer only.
    const again = await zendeskClient.fetchPage(config(e.url), null, ctx);
    expect(again.status === 'page' && again.page.items.every((i) => i.ok)).toBe(true);
  });
});

describe('the state file', () => {
  it('keeps tickets, metric sets and the next id across a restart', async () => {
    const stateFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'zd-state-')), 'zendesk.json');
    const first = await start({ stateFile });
    const [id] = await ticketsAgo(first, 10, 1);
    await first.updateTicket(id, { status: 'open' });
    await first.close();
    const again = await start({ stateFile });
    expect(again.state().tickets.map((t) => [t.id, t.status])).toEqual([[id, 'open']]);
    expect(again.state().metricSets[0].reopens).toBe(1);
    expect((await again.createTicket()).id).toBe(id + 1);
  });
});
