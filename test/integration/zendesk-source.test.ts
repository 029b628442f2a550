import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createPool, type Pool } from '../../src/db/pool';
import { applyContract } from '../../src/db/contracts';
import { evaluatePredicate, type Predicate } from '../../src/domain/predicate';
import { ReconError } from '../../src/domain/errors';
import { decodeZendeskCursor, startZendeskEmulator, type ZendeskEmulatorHandle } from '../../src/emulators/zendesk';
import { pullRecordPage, readSourceCursor, type ClientFor, type RecordPullResult } from '../../src/sources/record-pull';
import { zendeskClient } from '../../src/sources/zendesk';
import { ZENDESK_ENV, zendeskContract } from '../support/zendesk';

/**
 * The Zendesk record source end to end: the generic pull (cursor and rate-limit window in
 * source_cursors, each page imported with its cursor in one transaction) with the Zendesk client,
 * against the Zendesk emulator, on a real tenant in PostgreSQL.
 */

const MINUTE = 60_000;
const SUCCESS: Predicate = { all: [{ in: ['status', ['solved', 'closed']] }, { exists: 'solved_at' }] };
const clientFor: ClientFor = () => zendeskClient;

let pool: Pool;
let em: ZendeskEmulatorHandle;
/** The pull's clock: each call moves it past the export's minute unless a test holds it. */
let clock = Date.now();
let step = 61_000;

beforeAll(() => {
  pool = createPool(inject('databaseUrl'));
});
afterAll(async () => {
  await pool?.end();
});
afterEach(async () => {
  await em?.close();
});

async function setUp(opts: { pageSize?: number; rateLimited?: boolean } = {}): Promise<string> {
  em = await startZendeskEmulator({
    secret: ZENDESK_ENV.ZENDESK_API_TOKEN,
    email: ZENDESK_ENV.ZENDESK_EMAIL,
    // The pull keeps the documented budget itself; the emulator's own limit is on where a test says.
    exportRateLimit: opts.rateLimited ? undefined : null,
  });
  const tenant = `zd-${randomUUID().slice(0, 8)}`;
  await applyContract(
    pool,
    zendeskContract(tenant, {
      apiBase: em.url,
      startTime: new Date(Date.now() - 60 * MINUTE).toISOString(),
      pageSize: opts.pageSize ?? 2,
    }),
  );
  clock = Date.now();
  step = 61_000;
  return tenant;
}

function pull(tenant: string, opts: { env?: Record<string, string>; db?: Pool } = {}): Promise<RecordPullResult> {
  clock += step;
  const now = new Date(clock);
  return pullRecordPage(opts.db ?? pool, {
    tenant,
    source: 'zendesk',
    clientFor,
    env: opts.env ?? ZENDESK_ENV,
    now: () => now,
  });
}

async function pullToEnd(tenant: string): Promise<RecordPullResult[]> {
  const results: RecordPullResult[] = [];
  for (let i = 0; i < 50; i++) {
    const r = await pull(tenant);
    results.push(r);
    if (r.status === 'page' && r.caughtUp) return results;
  }
  throw new Error('the export never reached end_of_stream');
}

/** Runs `fn` with the emulator's clock `minutesAgo` behind the wall clock (tickets change then). */
/**
 * Zendesk stamps whole seconds. The emulator's clock is set half a second into the second
 * `minutesAgo` before a fixed base, so a request made within that half second is stamped exactly
 * there, whatever second the wall clock is in (a clock offset from the wall clock alone made two
 * changes 10 minutes apart sometimes 10 minutes and 1 second apart).
 */
const BASE_MS = Math.floor(Date.now() / 1000) * 1000;
async function ago<T>(minutesAgo: number, fn: () => Promise<T>): Promise<T> {
  em.setClockOffset(BASE_MS - minutesAgo * MINUTE + 500 - Date.now());
  try {
    return await fn();
  } finally {
    em.setClockOffset(0);
  }
}

async function versions(tenant: string) {
  const { rows } = await pool.query<{
    external_id: string;
    effective_at: Date;
    data: Record<string, unknown>;
  }>(
    `select r.external_id, v.effective_at, v.data from record_versions v join records r using (record_id)
      where r.tenant_id = $1 order by r.external_id::int, v.effective_at, v.version_id`,
    [tenant],
  );
  return rows;
}

async function rejection(p: Promise<unknown>): Promise<ReconError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ReconError) return err;
    throw err;
  }
  throw new Error('expected the pull to fail');
}

/** A pool whose first statement matching `pattern` fails: the worker dies before the commit. */
function failingOnce(real: Pool, pattern: RegExp): Pool {
  let armed = true;
  const wrap = <T extends object>(target: T, query: (target: T) => (...args: unknown[]) => unknown): T =>
    new Proxy(target, {
      get(t, prop) {
        if (prop === 'query') return query(t);
        const v = Reflect.get(t, prop) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  return new Proxy(real, {
    get(t, prop) {
      if (prop === 'connect')
        return async () => {
          const client = await t.connect();
          return wrap(client, (c) => (...args: unknown[]) => {
            if (armed && typeof args[0] === 'string' && pattern.test(args[0])) {
              armed = false;
              return Promise.reject(new Error('the worker was killed before the commit'));
            }
            return (c.query as (...a: unknown[]) => unknown).apply(c, args);
          });
        };
      const v = Reflect.get(t, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

describe('pulling a Zendesk record source', () => {
  it('pages with the cursor to end_of_stream, keeps the after_cursor, and a second pull gets only what changed', async () => {
    const tenant = await setUp({ pageSize: 2 });
    const ids = await ago(10, async () => {
      const made: number[] = [];
      for (let i = 0; i < 5; i++) made.push((await em.createTicket({ status: 'solved' })).id);
      return made;
    });
    const first = await pullToEnd(tenant);
    expect(first.map((r) => r.status === 'page' && [r.import.received, r.caughtUp])).toEqual([
      [2, false],
      [2, false],
      [1, true],
    ]);
    const cursor = await readSourceCursor(pool, tenant, 'zendesk');
    expect(cursor).toMatchObject({ kind: 'zendesk', pages: 3, rows_received: 5, last_error: null });
    expect(decodeZendeskCursor(cursor?.cursor as string)?.id).toBe(ids[4]);
    expect((await versions(tenant)).map((v) => v.external_id)).toEqual(ids.map(String));

    // Nothing changed: an empty page at the end of the stream, nothing new.
    const idle = await pull(tenant);
    expect(idle).toMatchObject({ status: 'page', caughtUp: true, import: { received: 0, accepted: 0 } });

    await ago(5, () => em.updateTicket(ids[1], { status: 'open', comment: { body: 'not fixed' } }));
    const second = await pullToEnd(tenant);
    expect(second).toHaveLength(1);
    expect(second[0]).toMatchObject({ status: 'page', import: { received: 1, accepted: 1 } });
    const v2 = (await versions(tenant)).filter((v) => v.external_id === String(ids[1]));
    expect(v2.map((v) => [v.data.status, v.data.reopens])).toEqual([
      ['solved', 0],
      ['open', 1],
    ]);
  });

  it('a crash between fetch and commit neither skips nor doubles a page', async () => {
    const tenant = await setUp({ pageSize: 2 });
    await ago(10, async () => {
      for (let i = 0; i < 4; i++) await em.createTicket({ status: 'solved' });
    });
    expect(await pull(tenant)).toMatchObject({ status: 'page', caughtUp: false });
    // The second page's import fails at its cursor update, inside the transaction.
    const crashing = failingOnce(pool, /set cursor = \$3/);
    await expect(pull(tenant, { db: crashing })).rejects.toThrow(/killed before the commit/);
    const held = await readSourceCursor(pool, tenant, 'zendesk');
    expect(held).toMatchObject({ pages: 1, rows_received: 2 });
    expect(await versions(tenant)).toHaveLength(2);
    // The retry asks from the same cursor and takes the page once.
    const rest = await pullToEnd(tenant);
    expect(rest[0]).toMatchObject({ status: 'page', import: { received: 2, accepted: 2, replayed: false } });
    expect(await versions(tenant)).toHaveLength(4);
    expect(await readSourceCursor(pool, tenant, 'zendesk')).toMatchObject({ rows_received: 4 });
  });

  it('a ticket reopened and solved again between pulls is a second version with the new solved_at', async () => {
    const tenant = await setUp();
    const t = await ago(30, () => em.createTicket({ status: 'open' }));
    await ago(25, () => em.updateTicket(t.id, { status: 'solved' }));
    await pullToEnd(tenant);
    await ago(20, () => em.updateTicket(t.id, { status: 'open', comment: { body: 'it is back' } }));
    await ago(15, () => em.updateTicket(t.id, { status: 'solved' }));
    await pullToEnd(tenant);
    const rows = await versions(tenant);
    expect(rows).toHaveLength(2);
    expect(rows.map((r) => [r.data.status, r.data.reopens])).toEqual([
      ['solved', 0],
      ['solved', 1],
    ]);
    const [a, b] = rows.map((r) => Date.parse(r.data.solved_at as string));
    expect(b - a).toBe(10 * MINUTE);
    // Each version takes effect at the ticket's own update time.
    expect(rows[1].effective_at.getTime()).toBe(Date.parse(rows[1].data.updated_at as string));
    expect(rows.every((r) => evaluatePredicate(SUCCESS, r.data))).toBe(true);
  });

  it('a deleted ticket becomes a version with status deleted, dated at the deletion, that fails success', async () => {
    const tenant = await setUp();
    const t = await ago(30, () => em.createTicket({ status: 'solved' }));
    await pullToEnd(tenant);
    await ago(10, () => em.deleteTicket(t.id));
    await pullToEnd(tenant);
    const rows = await versions(tenant);
    expect(rows.map((r) => r.data.status)).toEqual(['solved', 'deleted']);
    // Zendesk did not move updated_at for the deletion; the version is dated when it happened.
    expect(rows[1].effective_at.getTime() - rows[0].effective_at.getTime()).toBeGreaterThanOrEqual(19 * MINUTE);
    expect(evaluatePredicate(SUCCESS, rows[0].data)).toBe(true);
    expect(evaluatePredicate(SUCCESS, rows[1].data)).toBe(false);
  });

  it('quarantines a malformed ticket with its id and imports the rest of the page', async () => {
    const tenant = await setUp({ pageSize: 10 });
    await ago(10, async () => {
      for (let i = 0; i < 4; i++) await em.createTicket({ status: 'solved' });
    });
    em.setPageFault('malformed_ticket');
    const [r] = await pullToEnd(tenant);
    expect(r).toMatchObject({ status: 'page', import: { received: 4, accepted: 2, quarantined: 2 } });
    const { rows } = await pool.query<{ code: string; reason: string }>(
      'select code, reason from quarantine where tenant_id = $1 order by row_number',
      [tenant],
    );
    expect(rows.map((q) => q.code)).toEqual(['missing_field', 'bad_timestamp']);
    expect(rows[0].reason).toMatch(/item 1: ticket has no id$/);
    expect(rows[1].reason).toMatch(/item 2 \(id 2\): updated_at "yesterday" is not an ISO 8601 time/);
  });

  it('stops on 401 with an error naming the environment variables, never the token', async () => {
    const tenant = await setUp();
    const err = await rejection(pull(tenant, { env: { ...ZENDESK_ENV, ZENDESK_API_TOKEN: 'wrong-token-999' } }));
    expect(err.code).toBe('source_auth_failed');
    expect(err.message).toMatch(/401.*ZENDESK_EMAIL and ZENDESK_API_TOKEN/);
    expect(err.message).not.toContain('wrong-token-999');
    const row = await readSourceCursor(pool, tenant, 'zendesk');
    expect(row?.last_error).toMatch(/ZENDESK_API_TOKEN/);
    expect(row?.cursor).toBeNull();
    const missing = await rejection(pull(tenant, { env: { ZENDESK_API_TOKEN: 'x' } }));
    expect(missing.message).toMatch(/environment variable ZENDESK_EMAIL is not set/);
  });

  it('fails loudly on a changed response shape, importing nothing and keeping the cursor', async () => {
    const tenant = await setUp();
    await ago(10, () => em.createTicket({ status: 'solved' }));
    em.setPageFault('changed_shape');
    const err = await rejection(pull(tenant));
    expect(err.code).toBe('source_bad_response');
    expect(err.message).toMatch(/not the documented export page: tickets/);
    expect(await versions(tenant)).toHaveLength(0);
    expect(await readSourceCursor(pool, tenant, 'zendesk')).toMatchObject({ cursor: null, pages: 0 });
    // Once Zendesk answers as documented again, the pull resumes from where it was.
    await pullToEnd(tenant);
    expect(await versions(tenant)).toHaveLength(1);
  });
});

describe('the rate limits of the export', () => {
  it('a 429 with Retry-After is a wait of that long, counted in the source status', async () => {
    const tenant = await setUp();
    em.setFault({ mode: 'rate_limit', retryAfterSeconds: 7, times: 1 });
    expect(await pull(tenant)).toEqual({ status: 'wait', waitMs: 7_000 });
    const row = await readSourceCursor(pool, tenant, 'zendesk');
    expect([row?.rate_limit_waits, Number(row?.rate_limit_wait_ms)]).toEqual([1, 7_000]);
    expect(await pull(tenant)).toMatchObject({ status: 'page' });
  });

  it('a short Retry-After holds the budget that long, not the rest of the minute', async () => {
    const tenant = await setUp();
    step = 2_000;
    em.setFault({ mode: 'rate_limit', retryAfterSeconds: 1, times: 1 });
    expect(await pull(tenant)).toEqual({ status: 'wait', waitMs: 1_000 });
    // Two seconds later the Retry-After has passed: Zendesk is asked again at once.
    expect(await pull(tenant)).toMatchObject({ status: 'page' });
    expect(em.exportRequests()).toBe(1);
    const row = await readSourceCursor(pool, tenant, 'zendesk');
    expect([row?.rate_limit_waits, Number(row?.rate_limit_wait_ms)]).toEqual([1, 1_000]);
  });

  it('holds the 10-a-minute window across calls: the 11th asks nobody and says when', async () => {
    const tenant = await setUp();
    step = 2_000;
    for (let i = 0; i < 10; i++) expect(await pull(tenant)).toMatchObject({ status: 'page' });
    expect(em.exportRequests()).toBe(10);
    // Ten requests in 20 seconds (the first at +2s): the window opens again 60s after it started.
    expect(await pull(tenant)).toEqual({ status: 'wait', waitMs: 60_000 - 20_000 });
    expect(em.exportRequests()).toBe(10);
    step = 40_000;
    expect(await pull(tenant)).toMatchObject({ status: 'page' });
    expect(em.exportRequests()).toBe(11);
  });

  it('Zendesk\u2019s own limit, hit by a pull that does not count right, answers 429 and the pull waits', async () => {
    const tenant = await setUp({ rateLimited: true });
    // The pull's clock runs a minute per call, so only Zendesk's real-time window binds.
    for (let i = 0; i < 10; i++) expect(await pull(tenant)).toMatchObject({ status: 'page' });
    const r = await pull(tenant);
    expect(r.status).toBe('wait');
    expect(r.status === 'wait' && r.waitMs).toBeGreaterThan(50_000);
    expect(r.status === 'wait' && r.waitMs).toBeLessThanOrEqual(60_000);
  });
});
