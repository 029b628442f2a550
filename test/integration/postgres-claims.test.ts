import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import type { ReconError } from '../../src/domain/errors';
import { closePostgresClaimPools, pullPostgresClaimPage, withReadOnlySource } from '../../src/sources/postgres-claims';
import { readSourceCursor } from '../../src/sources/record-pull';
import { runReconciliation } from '../../src/temporal/run-client';
import { HELPDESK_HEADER } from '../support/fixtures';
import { aiSource, startAiDatabase, type AiDatabase } from './ai-postgres';
import { applyExample, startHarness, uniqueTenant, writeLines, type Harness } from './harness';

const OCCURRED = '2026-03-02T10:00:00Z';

describe('claims from the AI side’s PostgreSQL', () => {
  let h: Harness;
  let ai: AiDatabase;
  const env: Record<string, string | undefined> = {};

  beforeAll(async () => {
    ai = await startAiDatabase();
    env.AI_CLAIMS_URL = ai.readerUrl;
    h = await startHarness({ sourceEnv: env });
  });
  afterAll(async () => {
    await closePostgresClaimPools();
    await h?.stop();
    await ai?.stop();
  });

  /** A tenant reading claims from its own table `ai.<table>`. */
  async function tenantWithTable(prefix: string, pageSize: number): Promise<{ tenant: string; table: string }> {
    const tenant = uniqueTenant(prefix);
    const table = `claims_${tenant.replace(/-/g, '_')}`;
    await ai.createClaimTable(table);
    await applyExample(h.pool, tenant, { claimSources: { 'ai-db': aiSource(table, pageSize) } });
    return { tenant, table };
  }

  const pull = (tenant: string, e: Record<string, string | undefined> = env) =>
    pullPostgresClaimPage(h.pool, { tenant, source: 'ai-db', env: e, now: new Date() });

  async function insertClaims(table: string, rows: Array<{ id: string; updatedAt?: string; subject?: string }>) {
    for (const r of rows)
      await ai.admin.query(
        `insert into ai.${table} (claim_id, outcome_type, subject_ref, occurred_at, updated_at)
         values ($1, 'resolved_ticket', $2, $3, coalesce($4::timestamptz, clock_timestamp()))`,
        [r.id, r.subject ?? `T-${r.id}`, OCCURRED, r.updatedAt ?? null],
      );
  }

  const claimIds = async (tenant: string) =>
    (
      await h.pool.query<{ claim_id: string }>(`select claim_id from claims where tenant_id = $1 order by claim_id`, [
        tenant,
      ])
    ).rows.map((r) => r.claim_id);

  async function pullAll(tenant: string): Promise<Array<{ received: number; accepted: number; caughtUp: boolean }>> {
    const pages = [];
    for (let i = 0; i < 50; i++) {
      const r = await pull(tenant);
      pages.push({ received: r.import.received, accepted: r.import.accepted, caughtUp: r.caughtUp });
      if (r.caughtUp) return pages;
    }
    throw new Error('never caught up');
  }

  it('pages by keyset, saves the cursor with each page, and a rerun pulls nothing new', async () => {
    const { tenant, table } = await tenantWithTable('pgc-page', 3);
    await insertClaims(
      table,
      ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id, i) => ({ id, updatedAt: `2026-03-02T12:00:0${i}Z` })),
    );
    const readers = async () =>
      (
        await ai.admin.query<{ pid: number }>(
          `select pid from pg_stat_activity where usename = 'recon_reader' and application_name = 'outcome-recon claims' order by pid`,
        )
      ).rows.map((r) => r.pid);
    await pull(tenant);
    const connected = await readers();
    const pages = [{ received: 3, accepted: 3, caughtUp: false }, ...(await pullAll(tenant))];
    // One pooled connection per URL serves every page: no reconnect per page.
    expect(connected).toHaveLength(1);
    expect(await readers()).toEqual(connected);
    expect(pages).toEqual([
      { received: 3, accepted: 3, caughtUp: false },
      { received: 3, accepted: 3, caughtUp: false },
      { received: 1, accepted: 1, caughtUp: true },
    ]);
    expect(await claimIds(tenant)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    const cursor = await readSourceCursor(h.pool, tenant, 'ai-db');
    expect(cursor).toMatchObject({
      kind: 'postgres',
      cursor: { updatedAt: '2026-03-02 12:00:06+00', id: 'g' },
      pages: 3,
      rows_received: 7,
      last_error: null,
    });

    const again = await pull(tenant);
    expect(again).toMatchObject({ caughtUp: true, import: { received: 0, accepted: 0 } });
    expect((await readSourceCursor(h.pool, tenant, 'ai-db'))?.cursor).toEqual(cursor?.cursor);
    expect(await claimIds(tenant)).toHaveLength(7);
  });

  it('rows whose update times differ by microseconds, or are equal, at a page boundary: none skipped, none doubled', async () => {
    const { tenant, table } = await tenantWithTable('pgc-micro', 2);
    // Within one millisecond: a JS Date would make every one of these the same instant, and a
    // cursor rounded to it would read some again (or, rounded up, skip them).
    await insertClaims(table, [
      { id: 'm1', updatedAt: '2026-03-02T12:00:00.000001Z' },
      { id: 'm2', updatedAt: '2026-03-02T12:00:00.000001Z' },
      { id: 'm3', updatedAt: '2026-03-02T12:00:00.000001Z' },
      { id: 'm0', updatedAt: '2026-03-02T12:00:00.000002Z' },
      { id: 'm4', updatedAt: '2026-03-02T12:00:00.000999Z' },
      { id: 'm5', updatedAt: '2026-03-02T12:00:00.001Z' },
    ]);
    const pages = await pullAll(tenant);
    expect(pages.map((p) => p.received)).toEqual([2, 2, 2, 0]);
    expect(pages.every((p) => p.accepted === p.received)).toBe(true);
    expect(await claimIds(tenant)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    const { rows } = await h.pool.query<{ received: number; redelivered: number }>(
      `select coalesce(sum(received), 0)::int as received, coalesce(sum(redelivered), 0)::int as redelivered
         from imports where tenant_id = $1`,
      [tenant],
    );
    expect(rows[0]).toEqual({ received: 6, redelivered: 0 });
    expect((await readSourceCursor(h.pool, tenant, 'ai-db'))?.cursor).toEqual({
      updatedAt: '2026-03-02 12:00:00.001+00',
      id: 'm5',
    });
    // A row committed later at the boundary's exact time and a greater id is read; one below is not ours to see.
    await insertClaims(table, [{ id: 'm6', updatedAt: '2026-03-02T12:00:00.001Z' }]);
    expect(await pull(tenant)).toMatchObject({ import: { received: 1, accepted: 1 } });
  });

  it('a claim updated on the AI side (retracted) is pulled again and retracts ours', async () => {
    const { tenant, table } = await tenantWithTable('pgc-retract', 10);
    await insertClaims(table, [{ id: 'r1' }, { id: 'r2' }]);
    await pullAll(tenant);
    await ai.admin.query(
      `update ai.${table} set retracted = true, retracted_at = '2026-03-02T18:00:00.123456Z', updated_at = clock_timestamp() where claim_id = 'r2'`,
    );
    const r = await pull(tenant);
    expect(r.import).toMatchObject({ received: 1, accepted: 1, redelivered: 0, quarantined: 0 });
    const { rows } = await h.pool.query<{ claim_id: string; retracted_at: Date | null }>(
      `select claim_id, retracted_at from claims where tenant_id = $1 order by claim_id`,
      [tenant],
    );
    expect(rows.map((x) => [x.claim_id, x.retracted_at?.toISOString() ?? null])).toEqual([
      ['r1', null],
      ['r2', '2026-03-02T18:00:00.123Z'],
    ]);
    expect(await pull(tenant)).toMatchObject({ import: { received: 0 } });
  });

  it('the cursor commits with its page: a failing import leaves it where it was', async () => {
    const { tenant, table } = await tenantWithTable('pgc-atomic', 2);
    await insertClaims(table, [{ id: 'x1' }, { id: 'x2' }, { id: 'x3' }]);
    await pull(tenant);
    const before = await readSourceCursor(h.pool, tenant, 'ai-db');
    await h.pool.query(`create or replace function it_refuse_claim() returns trigger language plpgsql as
      $$ begin raise exception 'the import fails here'; end $$`);
    await h.pool.query(
      `create trigger it_refuse_claim before insert on claims for each row
       when (new.tenant_id = '${tenant}') execute function it_refuse_claim()`,
    );
    try {
      await expect(pull(tenant)).rejects.toThrow(/the import fails here/);
    } finally {
      await h.pool.query(`drop trigger it_refuse_claim on claims`);
      // The snapshot test reads the shared schema: nothing of this test may stay in it.
      await h.pool.query(`drop function it_refuse_claim()`);
    }
    const after = await readSourceCursor(h.pool, tenant, 'ai-db');
    expect(after?.cursor).toEqual(before?.cursor);
    expect(after?.pages).toBe(1);
    expect(await claimIds(tenant)).toEqual(['x1', 'x2']);
    // The same page again, now that the import can succeed.
    expect(await pull(tenant)).toMatchObject({ import: { received: 1, accepted: 1 }, caughtUp: true });
    expect(await claimIds(tenant)).toEqual(['x1', 'x2', 'x3']);
  });

  it('a missing variable, a wrong password, an unreachable server, a missing relation or column: one line each', async () => {
    const { tenant, table } = await tenantWithTable('pgc-errors', 10);
    const failure = async (e: Record<string, string | undefined>, t = tenant) => {
      const err = (await pull(t, e).then(
        () => {
          throw new Error('expected the pull to fail');
        },
        (x: unknown) => x,
      )) as ReconError;
      expect(err.message).not.toMatch(/\n/);
      expect(err.message).not.toContain(ai.readerPassword);
      expect(err.message).not.toContain('recon-local');
      return err;
    };

    const missing = await failure({});
    expect(missing.code).toBe('claims_pg_env_missing');
    expect(missing.message).toContain('AI_CLAIMS_URL');

    const notUrl = await failure({ AI_CLAIMS_URL: `host=127.0.0.1 password=${ai.readerPassword}` });
    expect(notUrl.code).toBe('claims_pg_bad_url');
    expect(notUrl.message).toContain('AI_CLAIMS_URL');

    const wrong = new URL(ai.readerUrl);
    wrong.password = 'not-the-password';
    const login = await failure({ AI_CLAIMS_URL: wrong.toString() });
    expect(login.code).toBe('claims_pg_login_failed');
    expect(login.message).toContain('AI_CLAIMS_URL');
    expect(login.message).toContain(`127.0.0.1:${ai.port}`);
    expect(login.message).not.toContain('not-the-password');

    const closed = new URL(ai.readerUrl);
    closed.port = '1';
    const refused = await failure({ AI_CLAIMS_URL: closed.toString() });
    expect(refused.code).toBe('claims_pg_unreachable');
    expect(refused.message).toMatch(/127\.0\.0\.1:1\b.*AI_CLAIMS_URL/);

    const other = await tenantWithTable('pgc-norel', 10);
    await ai.admin.query(`drop table ai.${other.table}`);
    const norel = await failure(env, other.tenant);
    expect(norel.code).toBe('claims_pg_relation_missing');
    expect(norel.message).toContain(`"ai"."${other.table}"`);

    await ai.admin.query(`alter table ai.${table} drop column subject_ref`);
    const nocol = await failure(env);
    expect(nocol.code).toBe('claims_pg_column_missing');
    expect(nocol.message).toContain('subject_ref');
    await ai.admin.query(`alter table ai.${table} rename column updated_at to changed_at`);
    const nokey = await failure(env);
    expect(nokey.code).toBe('claims_pg_column_missing');
    expect(nokey.message).toContain('updated_at');

    // The last error is kept for `recon source status`; nothing was imported.
    expect(await readSourceCursor(h.pool, tenant, 'ai-db')).toMatchObject({
      cursor: null,
      pages: 0,
      last_error: nokey.message,
    });
    expect(await claimIds(tenant)).toEqual([]);
  });

  it('the read-only transaction refuses writes, even for a login that may write', async () => {
    const table = `claims_ro_${Date.now()}`;
    await ai.createClaimTable(table);
    // The superuser could write anything; inside our transaction it cannot.
    await expect(
      withReadOnlySource(ai.adminUrl, (c) =>
        c.query(
          `insert into ai.${table} (claim_id, outcome_type, subject_ref, occurred_at) values ('w', 't', 's', now())`,
        ),
      ),
    ).rejects.toMatchObject({ code: '25006' });
    await expect(
      withReadOnlySource(ai.adminUrl, async (c) => {
        await c.query('select 1');
        await c.query('set transaction read write');
      }),
    ).rejects.toMatchObject({ code: '25001' });
    // And the login a customer gives us may not write at all.
    await expect(
      ai.admin.query(
        `set role recon_reader; insert into ai.${table} (claim_id, outcome_type, subject_ref, occurred_at) values ('w', 't', 's', now())`,
      ),
    ).rejects.toMatchObject({ code: '42501' });
    await ai.admin.query('reset role');
    const { rows } = await ai.admin.query<{ n: number }>(`select count(*)::int as n from ai.${table}`);
    expect(rows[0].n).toBe(0);
  });

  it('a night with a postgres claim source gives the same ledger as the same claims from a file', async () => {
    const fromDb = await tenantWithTable('pgc-night', 2);
    const fromFile = uniqueTenant('pgc-file');
    await applyExample(h.pool, fromFile);
    const claims = [
      { claim_id: 'n1', subject_ref: 'T-1', occurred_at: '2026-03-02T10:00:00Z' },
      { claim_id: 'n2', subject_ref: 'T-2', occurred_at: '2026-03-02T11:00:00.250Z', attributes: { model: 'v2' } },
      { claim_id: 'n3', subject_ref: 'T-3', occurred_at: '2026-03-02T12:00:00Z' },
      {
        claim_id: 'n4',
        subject_ref: 'T-4',
        occurred_at: '2026-03-02T12:30:00Z',
        retracted: true,
        retracted_at: '2026-03-02T20:00:00Z',
      },
      { claim_id: 'n5', subject_ref: 'T-5', occurred_at: '2026-03-02T13:00:00Z' },
    ];
    for (const c of claims)
      await ai.admin.query(
        `insert into ai.${fromDb.table} (claim_id, outcome_type, subject_ref, occurred_at, attributes, retracted, retracted_at)
         values ($1, 'resolved_ticket', $2, $3, $4, $5, $6)`,
        [
          c.claim_id,
          c.subject_ref,
          c.occurred_at,
          JSON.stringify(c.attributes ?? {}),
          c.retracted ?? false,
          c.retracted_at ?? null,
        ],
      );
    await importClaimsFile(h.pool, {
      tenant: fromFile,
      file: await writeLines(
        h.dir,
        `${fromFile}.jsonl`,
        claims.map((c) => JSON.stringify({ outcome_type: 'resolved_ticket', ...c })),
      ),
    });
    const records = await writeLines(h.dir, `${fromFile}.csv`, [
      HELPDESK_HEADER,
      'T-1,solved,2026-03-02T16:00:00Z,2026-03-02T16:00:00Z,5',
      'T-2,solved,2026-03-02T17:00:00Z,2026-03-02T17:00:00Z,4',
      'T-3,open,,2026-03-02T16:00:00Z,',
      'T-4,solved,2026-03-02T16:00:00Z,2026-03-02T16:00:00Z,5',
      'T-5,solved,2026-03-02T18:00:00Z,2026-03-02T18:00:00Z,1',
    ]);
    for (const tenant of [fromDb.tenant, fromFile])
      await importRecordsFile(h.pool, { tenant, source: 'helpdesk', file: records });

    const summaries: Record<string, unknown[]> = {};
    for (const tenant of [fromDb.tenant, fromFile]) {
      summaries[tenant] = [];
      for (const asOf of ['2026-03-03T07:00:00Z', '2026-03-10T07:00:00Z']) {
        const s = await runReconciliation(h.client, { tenant, asOf: new Date(asOf), taskQueue: h.taskQueue });
        const { openCountedAt: _at, ...outcomes } = s.outcomes;
        summaries[tenant].push(outcomes);
      }
    }
    expect(summaries[fromDb.tenant]).toEqual(summaries[fromFile]);

    const ledger = async (tenant: string) =>
      (
        await h.pool.query<Record<string, unknown>>(
          `select l.kind, l.outcome_type, l.subject_ref, l.period, l.amount_minor, l.currency, l.unit_price, l.primary_claim_id, l.success_at
             from ledger_entries l where l.tenant_id = $1 order by l.subject_ref, l.kind`,
          [tenant],
        )
      ).rows;
    const outcomes = async (tenant: string) =>
      (
        await h.pool.query<Record<string, unknown>>(
          `select subject_key, state, reject_reason from outcomes where tenant_id = $1 order by subject_key`,
          [tenant],
        )
      ).rows;
    const fileLedger = await ledger(fromFile);
    expect(fileLedger.length).toBeGreaterThan(0);
    expect(await ledger(fromDb.tenant)).toEqual(fileLedger);
    expect(await outcomes(fromDb.tenant)).toEqual(await outcomes(fromFile));
    // Pulled over three pages of two, the cursor at the last claim.
    expect(await readSourceCursor(h.pool, fromDb.tenant, 'ai-db')).toMatchObject({ rows_received: 5 });
  });
});
