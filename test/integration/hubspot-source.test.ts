import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { applyContract } from '../../src/db/contracts';
import { createPool, type Pool } from '../../src/db/pool';
import type { Contract } from '../../src/domain/contract';
import type { PulledRecordSource } from '../../src/domain/sources';
import { startHubspotEmulator, type HubspotEmulatorHandle, type HubspotSeed } from '../../src/emulators/hubspot';
import type { RecordSourceClient } from '../../src/sources/api-types';
import {
  HUBSPOT_SEARCH_RESULT_CAP,
  createHubspotClient,
  hubspotClient,
  parseSearchAnswer,
  type HubspotCursor,
} from '../../src/sources/hubspot';
import { pullRecordPage, readSourceCursor } from '../../src/sources/record-pull';
import { loadExampleContract, uniqueTenant } from './harness';

// The HubSpot record source end to end: the client against the emulator, each page imported with
// its cursor by the generic pull on the real database.

const TOKEN = 'pat-na1-test-token-0123456789';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'recon.mjs');
const ENV = { HUBSPOT_TOKEN: TOKEN };
const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../fixtures/sources/${name}`, import.meta.url), 'utf8'));

/** Deals modified at the given times (one a minute from 2026-02-01 unless said), stage appointmentscheduled. */
function deals(times: string[]): HubspotSeed[] {
  return times.map((modifiedAt, i) => ({
    createdAt: '2026-01-15T00:00:00.000Z',
    modifiedAt,
    properties: { dealname: `deal ${i + 1}`, dealstage: 'appointmentscheduled', pipeline: 'default', amount: 100 + i },
  }));
}
const minute = (m: number) => new Date(Date.UTC(2026, 1, 1, 0, m)).toISOString();

type Client = RecordSourceClient<PulledRecordSource>;
const asPulled = (c: unknown) => c as Client;

describe('HubSpot record source against the emulator', () => {
  let pool: Pool;
  const emulators: HubspotEmulatorHandle[] = [];
  beforeAll(() => {
    pool = createPool(inject('databaseUrl'));
  });
  afterAll(async () => {
    for (const e of emulators) await e.close();
    await pool?.end();
  });

  async function tenantOn(
    emulator: HubspotEmulatorHandle,
    over: Record<string, unknown> = {},
    idField = 'deal_id',
    stageField = 'stage',
  ): Promise<{ tenant: string; contract: Contract }> {
    const tenant = uniqueTenant('hubspot');
    const contract = await loadExampleContract(tenant, {
      recordSources: {
        crm: {
          kind: 'hubspot',
          objectType: 'deals',
          successStage: 'closedwon',
          tokenEnv: 'HUBSPOT_TOKEN',
          apiBase: emulator.url,
          startTime: '2026-01-01T00:00:00Z',
          ...over,
        },
      },
      outcomeTypes: {
        won_deal: {
          recordSource: 'crm',
          matchKey: { field: idField, caseInsensitive: false },
          success: { eq: [stageField, over.successStage ?? 'closedwon'] },
          successTimeField: 'stage_entered_at',
          graceWindow: 'PT24H',
          evidenceDeadline: 'P7D',
          unitPrice: '25.00',
        },
      },
    } as unknown as Partial<Contract>);
    await applyContract(pool, contract);
    return { tenant, contract };
  }

  async function emulator(opts: Partial<Parameters<typeof startHubspotEmulator>[0]> = {}) {
    const e = await startHubspotEmulator({ secret: TOKEN, ...opts });
    emulators.push(e);
    return e;
  }

  /** Pulls until the source is caught up, waiting out the rate limit as the workflow would. */
  async function pullAll(tenant: string, client: unknown = hubspotClient, env: Record<string, string> = ENV) {
    const t = { pages: 0, received: 0, accepted: 0, redelivered: 0, quarantined: 0, waits: 0 };
    for (let i = 0; i < 500; i++) {
      const r = await pullRecordPage(pool, {
        tenant,
        source: 'crm',
        clientFor: () => asPulled(client),
        env,
        now: () => new Date(),
      });
      if (r.status === 'wait') {
        t.waits++;
        await sleep(Math.min(r.waitMs, 2_000));
        continue;
      }
      t.pages++;
      t.received += r.import.received;
      t.accepted += r.import.accepted;
      t.redelivered += r.import.redelivered;
      t.quarantined += r.import.quarantined;
      if (r.caughtUp) return t;
    }
    throw new Error('the pull never caught up');
  }

  const versions = async (tenant: string) => {
    const { rows } = await pool.query<{ external_id: string; n: number; stage: string; entered: string | null }>(
      `select r.external_id, count(*)::int as n,
              (array_agg(v.data->>'stage' order by v.effective_at desc, v.version_id desc))[1] as stage,
              (array_agg(v.data->>'stage_entered_at' order by v.effective_at desc, v.version_id desc))[1] as entered
         from records r join record_versions v using (record_id)
        where r.tenant_id = $1 and r.source = 'crm' group by r.external_id order by r.external_id::bigint`,
      [tenant],
    );
    return rows;
  };

  it('answers in the shape of the recorded HubSpot responses', async () => {
    const e = await emulator({ rateLimit: false, seed: { deals: deals([minute(1), minute(2), minute(3)]) } });
    const search = (body: unknown, token = TOKEN) =>
      fetch(`${e.url}/crm/v3/objects/deals/search`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const res = await search({ limit: 2, properties: ['dealstage', 'amount', 'pipeline'] });
    const answer = (await res.json()) as Record<string, unknown>;
    const recorded = fixture('hubspot-deals-search.json') as Record<string, unknown>;
    expect(Object.keys(answer).sort()).toEqual(Object.keys(recorded).sort());
    expect(parseSearchAnswer(answer).ok).toBe(true);
    const [mine] = answer.results as Array<Record<string, unknown>>;
    const [theirs] = recorded.results as Array<Record<string, unknown>>;
    expect(Object.keys(mine).sort()).toEqual(Object.keys(theirs).sort());
    expect(Object.keys((answer.paging as { next: object }).next).sort()).toEqual(['after', 'link']);
    expect(mine.properties).toMatchObject({ dealstage: 'appointmentscheduled', amount: '100', hs_object_id: mine.id });

    const unauthorized = await search({}, 'wrong');
    expect(unauthorized.status).toBe(401);
    expect(Object.keys((await unauthorized.json()) as object).sort()).toEqual(
      Object.keys(fixture('hubspot-unauthorized-401.json') as object).sort(),
    );
    expect((await search({ limit: 201 })).status).toBe(400);
    // HubSpot's result cap: a request paging to it is refused.
    expect((await search({ limit: 10, after: String(HUBSPOT_SEARCH_RESULT_CAP) })).status).toBe(400);

    const limited = await emulator({ rateLimit: { requests: 1, perMs: 60_000 } });
    const ask = () =>
      fetch(`${limited.url}/crm/v3/objects/deals/search`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: '{}',
      });
    expect((await ask()).status).toBe(200);
    const tooMany = await ask();
    expect(tooMany.status).toBe(429);
    expect(Number(tooMany.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
    expect(Object.keys((await tooMany.json()) as object).sort()).toEqual(
      Object.keys(fixture('hubspot-rate-limit-429.json') as object).sort(),
    );
  });

  it('keeps its objects in the state file across a restart', async () => {
    const stateFile = path.join(await mkdtemp(path.join(os.tmpdir(), 'hubspot-emu-')), 'state.json');
    const first = await startHubspotEmulator({ secret: TOKEN, stateFile });
    const made = await fetch(`${first.url}/crm/v3/objects/contacts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ properties: { email: 'kept@example.com', lifecyclestage: 'lead' } }),
    });
    const { id } = (await made.json()) as { id: string };
    await first.close();
    const second = await emulator({ stateFile });
    expect(second.state().contacts.map((c) => [c.id, c.properties.email])).toEqual([[id, 'kept@example.com']]);
    const again = await fetch(`${second.url}/crm/v3/objects/contacts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ properties: { email: 'next@example.com' } }),
    });
    expect(((await again.json()) as { id: string }).id).toBe(String(Number(id) + 1));
  });

  it('runs as `recon emulate hubspot` with the token from HUBSPOT_TOKEN', async () => {
    const child = spawn(process.execPath, [BIN, 'emulate', 'hubspot'], {
      cwd: ROOT,
      env: { ...process.env, HUBSPOT_TOKEN: TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          if (out.includes('\n')) resolve(out.split('\n')[0]);
        });
        void exited.then(() => reject(new Error(`recon emulate exited before its line: ${out}`)));
      });
      expect(line).toMatch(
        /^hubspot emulator at http:\/\/127\.0\.0\.1:\d+ \(key from HUBSPOT_TOKEN\); Ctrl-C stops it$/,
      );
      const url = /http:\/\/127\.0\.0\.1:\d+/.exec(line)?.[0] ?? '';
      const made = await fetch(`${url}/crm/v3/objects/deals`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ properties: { dealname: 'cli', dealstage: 'closedwon' } }),
      });
      expect(made.status).toBe(201);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });

  it('sets the stage-entered date when a deal changes stage, and the modified date on every write', async () => {
    const e = await emulator({ rateLimit: false });
    const created = await fetch(`${e.url}/crm/v3/objects/deals`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ properties: { dealname: 'x', dealstage: 'qualifiedtobuy', amount: '10' } }),
    });
    expect(created.status).toBe(201);
    const deal = (await created.json()) as { id: string; properties: Record<string, string | null> };
    expect(deal.properties.hs_v2_date_entered_qualifiedtobuy).toBe(deal.properties.hs_lastmodifieddate);
    e.setClockOffset(60_000);
    const patched = await fetch(`${e.url}/crm/v3/objects/deals/${deal.id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ properties: { dealstage: 'closedwon' } }),
    });
    const after = (await patched.json()) as { properties: Record<string, string | null>; updatedAt: string };
    expect(after.properties.hs_v2_date_entered_closedwon).toBe(after.properties.hs_lastmodifieddate);
    expect(after.properties.hs_v2_date_exited_qualifiedtobuy).toBe(after.properties.hs_lastmodifieddate);
    expect(after.updatedAt).toBe(after.properties.hs_lastmodifieddate);
    expect(Date.parse(after.updatedAt)).toBeGreaterThan(Date.parse(deal.properties.hs_lastmodifieddate ?? ''));
  });

  it('pages with after, re-anchors at the result cap, reads ties at page and window edges and a crowded instant', async () => {
    // 12 deals share one instant (more than the cap of 10), groups of 4 share the others, so ties
    // fall on page boundaries (3 a page) and on the re-anchoring points (every 9 results).
    const times = [
      ...Array.from({ length: 12 }, () => minute(0)),
      ...Array.from({ length: 28 }, (_, i) => minute(1 + Math.floor(i / 4))),
    ];
    const e = await emulator({ searchCap: 10, seed: { deals: deals(times) } });
    const { tenant } = await tenantOn(e, { pageSize: 3 });
    const t = await pullAll(tenant, createHubspotClient({ searchCap: 10 }));
    const got = await versions(tenant);
    expect(got).toHaveLength(40);
    expect(got.every((r) => r.n === 1)).toBe(true);
    // 21 searches: the first stops at the cap inside the crowded instant, which is then read by id
    // (its first 9 again: redelivered, not duplicated); ties at re-anchoring points are not re-read.
    expect(t).toMatchObject({ pages: 21, received: 49, accepted: 40, redelivered: 9, quarantined: 0 });
    const cursor = (await readSourceCursor(pool, tenant, 'crm'))?.cursor as HubspotCursor;
    expect(cursor).toMatchObject({ anchor: minute(7), after: null, read: 0 });
    expect(cursor.seenAtAnchor).toHaveLength(4);
    expect(e.state().searches).toBe(21);

    // A second pull asks only for what changed since.
    const [first, second] = e.state().deals;
    e.update('deals', first.id, { dealstage: 'closedwon' });
    e.update('deals', second.id, { amount: '999' });
    const again = await pullAll(tenant, createHubspotClient({ searchCap: 10 }));
    expect(again).toMatchObject({ received: 2, accepted: 2, quarantined: 0 });
    const won = (await versions(tenant)).find((r) => r.external_id === first.id);
    expect(won).toMatchObject({ n: 2, stage: 'closedwon' });
    expect(won?.entered).toBe(new Date(first.properties.hs_lastmodifieddate ?? '').toISOString());
    // The last minute is read again (HubSpot's index lags writes), and adds nothing.
    const rerun = await pullAll(tenant, createHubspotClient({ searchCap: 10 }));
    expect(rerun).toMatchObject({ received: 2, accepted: 0, redelivered: 2 });
  });

  it('pulls contacts through the contacts preset: lifecycle stage and the date it was entered', async () => {
    const e = await emulator({
      seed: {
        contacts: [
          { modifiedAt: minute(1), properties: { email: 'a@example.com', lifecyclestage: 'lead' } },
          { modifiedAt: minute(2), properties: { email: 'b@example.com', lifecyclestage: 'customer' } },
        ],
      },
    });
    const { tenant } = await tenantOn(
      e,
      { objectType: 'contacts', successStage: 'customer' },
      'contact_id',
      'lifecycle_stage',
    );
    const t = await pullAll(tenant);
    expect(t).toMatchObject({ received: 2, accepted: 2, quarantined: 0 });
    const { rows } = await pool.query<{ external_id: string; data: Record<string, unknown> }>(
      `select r.external_id, v.data from records r join record_versions v using (record_id)
        where r.tenant_id = $1 order by r.external_id`,
      [tenant],
    );
    expect(rows.map((r) => [r.external_id, r.data.email, r.data.lifecycle_stage, r.data.stage_entered_at])).toEqual([
      ['1', 'a@example.com', 'lead', null],
      ['2', 'b@example.com', 'customer', minute(2)],
    ]);
  });

  it('reads more than HubSpot real 10,000-result cap in one window', async () => {
    const times = Array.from({ length: 10_050 }, (_, i) => new Date(Date.UTC(2026, 1, 1) + i * 1000).toISOString());
    const e = await emulator({ rateLimit: false, seed: { deals: deals(times) } });
    const { tenant } = await tenantOn(e);
    const t = await pullAll(tenant);
    expect(t.accepted).toBe(10_050);
    expect(t.quarantined).toBe(0);
    const { rows } = await pool.query<{ n: number }>(
      `select count(*)::int as n from records where tenant_id = $1 and source = 'crm'`,
      [tenant],
    );
    expect(rows[0].n).toBe(10_050);
  });

  it('stops with an error naming the environment variable on 401, or when it is not set', async () => {
    const e = await emulator({ rateLimit: false, seed: { deals: deals([minute(1)]) } });
    const { tenant } = await tenantOn(e);
    const pull = (env: Record<string, string>) =>
      pullRecordPage(pool, {
        tenant,
        source: 'crm',
        clientFor: () => asPulled(hubspotClient),
        env,
        now: () => new Date(),
      });
    const wrong = await pull({ HUBSPOT_TOKEN: 'pat-na1-not-the-token' }).catch((err: unknown) => err as Error);
    expect(wrong).toMatchObject({ code: 'source_auth_failed' });
    expect((wrong as Error).message).toContain('HUBSPOT_TOKEN');
    expect((wrong as Error).message).not.toContain('pat-na1');
    const missing = await pull({}).catch((err: unknown) => err as Error);
    expect(missing).toMatchObject({ code: 'source_auth_failed' });
    expect((missing as Error).message).toContain('HUBSPOT_TOKEN');
    expect((await readSourceCursor(pool, tenant, 'crm'))?.last_error).toContain('HUBSPOT_TOKEN');
    expect((await readSourceCursor(pool, tenant, 'crm'))?.cursor).toBeNull();
  });

  it('a server error or a dropped connection is retried from the same cursor', async () => {
    const e = await emulator({ rateLimit: false, seed: { deals: deals([minute(1), minute(2)]) } });
    const { tenant } = await tenantOn(e);
    const pull = () =>
      pullRecordPage(pool, {
        tenant,
        source: 'crm',
        clientFor: () => asPulled(hubspotClient),
        env: ENV,
        now: () => new Date(),
        timeoutMs: 2_000,
      });
    for (const mode of ['error500', 'down', 'accept_then_drop'] as const) {
      e.setFault({ mode, times: 1 });
      await expect(pull()).rejects.toMatchObject({ code: 'source_unavailable' });
      expect((await readSourceCursor(pool, tenant, 'crm'))?.cursor).toBeNull();
    }
    const t = await pullAll(tenant);
    expect(t).toMatchObject({ pages: 1, received: 2, accepted: 2 });
  });

  it('a 429 with Retry-After becomes a wait, counted, and the pull then goes on', async () => {
    const e = await emulator({
      rateLimit: { requests: 1, perMs: 2_000 },
      seed: { deals: deals([minute(1), minute(2)]) },
    });
    const { tenant } = await tenantOn(e, { pageSize: 1 });
    const pull = () =>
      pullRecordPage(pool, {
        tenant,
        source: 'crm',
        clientFor: () => asPulled(hubspotClient),
        env: ENV,
        now: () => new Date(),
      });
    expect((await pull()).status).toBe('page');
    const waited = await pull();
    expect(waited).toMatchObject({ status: 'wait' });
    expect(waited.status === 'wait' && waited.waitMs).toBeGreaterThanOrEqual(1_000);
    expect(waited.status === 'wait' && waited.waitMs).toBeLessThanOrEqual(2_000);
    e.setFault({ mode: 'rate_limit', times: 1, retryAfterSeconds: 7 });
    await sleep(2_100);
    expect(await pull()).toEqual({ status: 'wait', waitMs: 7_000 });
    const row = await readSourceCursor(pool, tenant, 'crm');
    expect(row?.rate_limit_waits).toBeGreaterThanOrEqual(2);
    expect(e.state().rateLimited).toBeGreaterThanOrEqual(1);
    const rest = await pullAll(tenant);
    expect(rest.accepted).toBe(1);
  });

  it('fails loudly on a changed answer shape and quarantines a malformed object with its id', async () => {
    const e = await emulator({ rateLimit: false, seed: { deals: deals([minute(1), minute(2), minute(3)]) } });
    const { tenant } = await tenantOn(e);
    e.setSearchTransform((a) => ({ total: a.total, items: a.results }));
    const broken = await pullAll(tenant).catch((err: unknown) => err as Error);
    expect(broken).toMatchObject({ code: 'source_bad_response' });
    expect((broken as Error).message).toContain('results');
    expect((await readSourceCursor(pool, tenant, 'crm'))?.cursor).toBeNull();

    e.setSearchTransform((a) => {
      const [one, two, three] = a.results as Array<{ id?: string; properties: Record<string, unknown> }>;
      delete one.id;
      two.properties.hs_lastmodifieddate = 'last tuesday';
      return { ...a, results: [one, two, three] };
    });
    const t = await pullAll(tenant);
    expect(t).toMatchObject({ received: 3, accepted: 1, quarantined: 2 });
    const { rows } = await pool.query<{ code: string; reason: string }>(
      `select code, reason from quarantine where tenant_id = $1 order by row_number`,
      [tenant],
    );
    expect(rows.map((r) => r.code)).toEqual(['malformed_object', 'malformed_object']);
    expect(rows[0].reason).toContain('id');
    expect(rows[1].reason).toContain('(id 2)');
    expect(rows[1].reason).toContain('hs_lastmodifieddate is not a time');
  });
});
