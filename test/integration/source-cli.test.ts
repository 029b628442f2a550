import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createPool, type Pool } from '../../src/db/pool';
import type { FetchOutcome, RecordSourceClient, SourceContext } from '../../src/sources/api-types';
import { closePostgresClaimPools, pullPostgresClaimPage } from '../../src/sources/postgres-claims';
import type { PulledRecordSource } from '../../src/domain/sources';
import { loadExampleContract } from './harness';
import { applyContract } from '../../src/db/contracts';
import { testSource } from '../../src/sources/source-status';
import { startClaimsServer } from '../../src/sources/claims-server';
import { pullClaimPage } from '../../src/sources/http-claims';
import { recon } from '../support/recon-cli';
import { aiSource, startAiDatabase, type AiDatabase } from './ai-postgres';
import { applyExample, uniqueTenant } from './harness';

describe('recon source test and recon source status', () => {
  let pool: Pool;
  let ai: AiDatabase;
  let env: NodeJS.ProcessEnv;
  const tenant = uniqueTenant('srccli');
  const table = `claims_${tenant.replace(/-/g, '_')}`;

  beforeAll(async () => {
    pool = createPool(inject('databaseUrl'));
    ai = await startAiDatabase();
    env = { DATABASE_URL: inject('databaseUrl'), AI_CLAIMS_URL: ai.readerUrl };
    await ai.createClaimTable(table);
    for (const [id, at, occurred] of [
      ['c1', '2026-03-02T12:00:00.000001Z', '2026-03-02T10:00:00Z'],
      ['c2', '2026-03-02T12:00:00.000002Z', '2026-03-02T10:00:00Z'],
      ['c3', '2026-03-02T12:00:01Z', '2099-01-01T00:00:00Z'],
      ['c4', '2026-03-02T12:00:02Z', '2026-03-02T10:00:00Z'],
      ['c5', '2026-03-02T12:00:03Z', '2026-03-02T10:00:00Z'],
    ])
      await ai.admin.query(
        `insert into ai.${table} (claim_id, outcome_type, subject_ref, occurred_at, updated_at)
         values ($1, 'resolved_ticket', $1, $3, $2)`,
        [id, at, occurred],
      );
    await applyExample(pool, tenant, { claimSources: { 'ai-db': aiSource(table, 3) } });
  });
  afterAll(async () => {
    await closePostgresClaimPools();
    await pool?.end();
    await ai?.stop();
  });

  const written = async () => {
    const { rows } = await pool.query<{ cursors: number; imports: number }>(
      `select (select count(*)::int from source_cursors where tenant_id = $1) as cursors,
              (select count(*)::int from imports where tenant_id = $1) as imports`,
      [tenant],
    );
    return rows[0];
  };

  it('status lists a claim source that was never pulled', async () => {
    const r = await recon(['--json', 'source', 'status', '--tenant', tenant], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      tenant,
      sources: [
        {
          source: 'ai-db',
          role: 'claims',
          kind: 'postgres',
          in_contract: true,
          cursor: null,
          last_pull_at: null,
          pages: 0,
          rows: 0,
          rate_limit_waits: 0,
          rate_limit_wait_ms: 0,
          last_error: null,
          last_error_at: null,
        },
      ],
    });
  });

  it('test reads the first page, says what it holds and writes nothing', async () => {
    const r = await recon(['source', 'test', '--tenant', tenant, '--source', 'ai-db'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`claim source ai-db (postgres) of ${tenant}: connected; the first page holds 3 rows`);
    expect(r.stdout).toContain('first: id c1 updated 2026-03-02 12:00:00.000001+00');
    expect(r.stdout).toContain('last:  id c3 updated 2026-03-02 12:00:01+00');
    expect(r.stdout).toMatch(/1 would be quarantined; first: row 3 \(claim c3\): field occurred_at: 2099-01-01/);
    expect(r.stdout).toContain('more pages follow');
    expect(r.stdout).toContain('nothing was written');
    expect(await written()).toEqual({ cursors: 0, imports: 0 });
  });

  it('after the night pulled, status shows the cursor and counts; test reads from the saved cursor', async () => {
    for (let i = 0; i < 2; i++)
      await pullPostgresClaimPage(pool, {
        tenant,
        source: 'ai-db',
        env: { AI_CLAIMS_URL: ai.readerUrl },
        now: new Date(),
      });
    const status = await recon(['--json', 'source', 'status', '--tenant', tenant], env);
    expect((JSON.parse(status.stdout) as { sources: unknown[] }).sources[0]).toMatchObject({
      cursor: { updatedAt: '2026-03-02 12:00:03+00', id: 'c5' },
      pages: 2,
      rows: 5,
      last_error: null,
    });
    const human = await recon(['source', 'status', '--tenant', tenant], env);
    expect(human.stdout).toMatch(
      /^ai-db \(claims, postgres\)\n {2}cursor: {5}\{"id":"c5","updatedAt":"2026-03-02 12:00:03\+00"\}\n {2}last pull: {2}\S+ · 2 pages · 5 rows\n {2}last error: -$/m,
    );

    const before = await written();
    const test = await recon(['--json', 'source', 'test', '--tenant', tenant, '--source', 'ai-db'], env);
    expect(JSON.parse(test.stdout)).toMatchObject({ count: 0, caught_up: true, first: null, unusable: 0 });
    expect(await written()).toEqual(before);
  });

  it('a missing variable or a wrong password: one line, exit 2, the variable named, no password; status keeps the error', async () => {
    const missing = await recon(['source', 'test', '--tenant', tenant, '--source', 'ai-db'], {
      ...env,
      AI_CLAIMS_URL: '',
    });
    expect(missing.code).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/^recon: claims_pg_env_missing: .*environment variable AI_CLAIMS_URL is not set/);

    const wrong = new URL(ai.readerUrl);
    wrong.password = 'hunter2-wrong';
    const login = await recon(['--json', 'source', 'test', '--tenant', tenant, '--source', 'ai-db'], {
      ...env,
      AI_CLAIMS_URL: wrong.toString(),
    });
    expect(login.code).toBe(2);
    const err = JSON.parse(login.stderr) as { error: { code: string; message: string } };
    expect(err.error.code).toBe('claims_pg_login_failed');
    expect(err.error.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${ai.port}.*AI_CLAIMS_URL`));
    expect(login.stderr).not.toContain('hunter2-wrong');

    // `source test` writes nothing, not even the error; a night's failed pull does.
    expect((await written()).cursors).toBe(1);
    await expect(
      pullPostgresClaimPage(pool, {
        tenant,
        source: 'ai-db',
        env: { AI_CLAIMS_URL: wrong.toString() },
        now: new Date(),
      }),
    ).rejects.toMatchObject({ code: 'claims_pg_login_failed' });
    const status = await recon(['source', 'status', '--tenant', tenant], env);
    expect(status.stdout).toMatch(/ {2}last error: \S+: claim source ai-db of .* refused the login/);
  });

  it('an unknown source, or a file source, is refused in one line', async () => {
    const unknown = await recon(['source', 'test', '--tenant', tenant, '--source', 'nope'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^recon: unknown_source: source "nope" is not in the contract of /);
    const file = await recon(['source', 'test', '--tenant', tenant, '--source', 'helpdesk'], env);
    expect(file.code).toBe(2);
    expect(file.stderr).toMatch(/^recon: not_a_pulled_source: record source "helpdesk" .* is a file source/);
  });

  it('test of an API record source asks its client for the page after the saved cursor and maps what it holds', async () => {
    // The Zendesk and HubSpot clients are their own modules; this is the contract between them
    // and `source test`: fetchPage after the saved cursor, the preset's id and update columns.
    const api = uniqueTenant('srcapi');
    const base = await loadExampleContract(api);
    await applyContract(pool, {
      ...base,
      recordSources: {
        ...base.recordSources,
        tickets: {
          kind: 'zendesk',
          apiBase: 'http://127.0.0.1:9',
          auth: { kind: 'oauth', tokenEnv: 'ZD_TOKEN' },
          startTime: '2026-03-01T00:00:00Z',
        } as never,
      },
    });
    const calls: Array<{ cursor: unknown; ctx: SourceContext }> = [];
    let answer: FetchOutcome = { status: 'auth', error: 'Zendesk answered 401: check ZD_TOKEN' };
    const client: RecordSourceClient<PulledRecordSource> = {
      kind: 'zendesk',
      rateLimit: () => ({ requests: 10, perMs: 60_000 }),
      fetchPage: (_config, cursor, ctx) => {
        calls.push({ cursor, ctx });
        return Promise.resolve(answer);
      },
    };
    const test = () =>
      testSource(pool, {
        tenant: api,
        source: 'tickets',
        env: { ZD_TOKEN: 't' },
        now: new Date(),
        clientFor: () => client,
      });

    await expect(test()).rejects.toMatchObject({
      code: 'source_auth_failed',
      message: expect.stringContaining('ZD_TOKEN'),
    });
    answer = { status: 'rate_limited', retryAfterMs: 42_000 };
    await expect(test()).rejects.toMatchObject({
      code: 'source_rate_limited',
      message: expect.stringContaining('42 s'),
    });
    answer = { status: 'broken', error: 'no tickets array' };
    await expect(test()).rejects.toMatchObject({ code: 'source_bad_response' });

    await pool.query(
      `insert into source_cursors (tenant_id, source, kind, cursor, pages) values ($1, 'tickets', 'zendesk', '{"afterCursor":"abc"}', 4)`,
      [api],
    );
    answer = {
      status: 'page',
      page: {
        items: [
          { ok: true, raw: '{}', values: { id: 101, status: 'solved', updated_at: '2026-03-02T10:00:00Z' } },
          { ok: false, id: '102', raw: '{}', code: 'invalid_field', reason: 'updated_at is not a time' },
          { ok: true, raw: '{}', values: { id: 103, status: 'open', updated_at: '2026-03-02T11:00:00Z' } },
        ],
        next: { afterCursor: 'def' },
        done: false,
      },
    };
    const r = await test();
    expect(calls.at(-1)?.cursor).toEqual({ afterCursor: 'abc' });
    expect(calls.at(-1)?.ctx.env).toEqual({ ZD_TOKEN: 't' });
    expect(r).toMatchObject({
      role: 'records',
      kind: 'zendesk',
      count: 3,
      first: { id: '101', updatedAt: '2026-03-02T10:00:00Z' },
      last: { id: '103', updatedAt: '2026-03-02T11:00:00Z' },
      unusable: 1,
      firstProblem: 'id 102: updated_at is not a time',
      caughtUp: false,
    });
    // Nothing written: the cursor and its counters are as they were, no import.
    const { rows } = await pool.query(
      `select cursor, pages, window_requests, last_error from source_cursors where tenant_id = $1`,
      [api],
    );
    expect(rows).toEqual([{ cursor: { afterCursor: 'abc' }, pages: 4, window_requests: 0, last_error: null }]);
    const status = await recon(['--json', 'source', 'status', '--tenant', api], env);
    expect((JSON.parse(status.stdout) as { sources: unknown[] }).sources).toEqual([
      expect.objectContaining({
        source: 'tickets',
        role: 'records',
        kind: 'zendesk',
        cursor: { afterCursor: 'abc' },
        pages: 4,
      }),
    ]);
  });

  it('an HTTP claim feed: test reads the page after its cursor, status shows claim_cursors', async () => {
    const api = await startClaimsServer();
    try {
      const feed = uniqueTenant('srchttp');
      await applyExample(pool, feed, {
        claimSources: { feed: { kind: 'http', url: api.url, pageSize: 2, pagesPerChunk: 1 } },
      });
      api.publish(
        ['h1', 'h2', 'h3'].map((id) => ({
          claim_id: id,
          outcome_type: 'resolved_ticket',
          subject_ref: id,
          occurred_at: '2026-03-02T10:00:00Z',
        })),
      );
      const first = await recon(['source', 'test', '--tenant', feed, '--source', 'feed'], env);
      expect(first.stdout).toContain(`claim source feed (http) of ${feed}: connected; the first page holds 2 rows`);
      expect(first.stdout).toMatch(/first: id h1\n {2}last: {2}id h2\n/);
      await pullClaimPage(pool, { tenant: feed, source: 'feed', url: api.url, pageSize: 2, now: new Date() });
      const status = await recon(['--json', 'source', 'status', '--tenant', feed], env);
      expect((JSON.parse(status.stdout) as { sources: unknown[] }).sources).toEqual([
        expect.objectContaining({ source: 'feed', role: 'claims', kind: 'http', cursor: '2', pages: 1, rows: 2 }),
      ]);
      const next = await recon(['--json', 'source', 'test', '--tenant', feed, '--source', 'feed'], env);
      expect(JSON.parse(next.stdout)).toMatchObject({ cursor: '2', count: 1, first: { id: 'h3' } });
      const { rows } = await pool.query(`select cursor, pages from claim_cursors where tenant_id = $1`, [feed]);
      expect(rows).toEqual([{ cursor: '2', pages: 1 }]);
    } finally {
      await api.close();
    }
  });
});
