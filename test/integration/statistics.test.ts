import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createPool, type Pool } from '../../src/db/pool';
import { importClaimsFile } from '../../src/ingest/files';
import { STALE_STATISTICS, refreshNightlyStatistics } from '../../src/reconcile/statistics';
import { applyExample, uniqueTenant, writeLines } from './harness';

// A night refreshes the planner's figures of a shared table only when its imports changed the
// table enough, right after they commit, and never waits for another session's analyze.

const NOW = new Date('2026-03-03T00:00:00Z');

describe('nightly statistics on real Postgres', () => {
  let pool: Pool;
  let dir: string;
  beforeAll(async () => {
    pool = createPool(inject('databaseUrl'));
    dir = await mkdtemp(path.join(os.tmpdir(), 'recon-stats-'));
    // Autovacuum's own analyze could refresh the table between an import and the refresh under test.
    await pool.query('alter table claims set (autovacuum_enabled = false)');
    await pool.query('analyze claims');
  });
  afterAll(async () => {
    await pool?.query('alter table claims reset (autovacuum_enabled)');
    await pool?.end();
    await rm(dir, { recursive: true, force: true });
  });

  const analyzeCount = async () => {
    const {
      rows: [r],
    } = await pool.query<{ n: number }>(
      `select analyze_count::int as n from pg_stat_user_tables where relid = 'claims'::regclass`,
    );
    return r.n;
  };
  const modifiedSinceAnalyze = async () => {
    const {
      rows: [r],
    } = await pool.query<{ n: number }>(
      `select n_mod_since_analyze::float8 as n from pg_stat_user_tables where relid = 'claims'::regclass`,
    );
    return r.n;
  };
  /** Claims enough to be a large share of the table as it is now (other test files share it). */
  const bigImportSize = async () => {
    const {
      rows: [r],
    } = await pool.query<{ n: number }>(`select reltuples::float8 as n from pg_class where oid = 'claims'::regclass`);
    return Math.ceil(Math.max(STALE_STATISTICS.minRows, STALE_STATISTICS.fraction * Math.max(r.n, 0)) * 1.5) + 500;
  };
  const importClaims = async (tenant: string, count: number) => {
    const lines = Array.from({ length: count }, (_, i) =>
      JSON.stringify({
        claim_id: `c${i}`,
        outcome_type: 'resolved_ticket',
        subject_ref: `T-${i}`,
        occurred_at: '2026-03-02T10:00:00Z',
      }),
    );
    const file = await writeLines(dir, `${tenant}.jsonl`, lines);
    const r = await importClaimsFile(pool, { tenant, file, now: NOW });
    expect(r.accepted).toBe(count);
  };

  /**
   * Imports and waits until the statistics collector counts the rows. When an import grows the
   * file the refresh sees it at once (unit-tested); here the table may have space freed by earlier
   * test files, so wait, as a night's pulled pages have flushed by the time attach runs. An idle
   * session flushes within about ten seconds.
   */
  const importCounted = async (tenant: string, count: number) => {
    const modifiedBefore = await modifiedSinceAnalyze();
    await importClaims(tenant, count);
    for (let t0 = Date.now(); (await modifiedSinceAnalyze()) < modifiedBefore + count && Date.now() - t0 < 30_000;)
      await new Promise((r) => setTimeout(r, 250));
  };

  it('a small tenant’s import leaves the shared table’s statistics alone', async () => {
    const tenant = uniqueTenant('stats-small');
    await applyExample(pool, tenant);
    await importClaims(tenant, 25);
    const before = await analyzeCount();
    const r = await refreshNightlyStatistics(pool, ['claims']);
    expect(r).toEqual({ analyzed: [], skippedBusy: [], fresh: ['claims'] });
    expect(await analyzeCount()).toBe(before);
  });

  it('a large import is analyzed once the importing session has flushed its counters', async () => {
    const tenant = uniqueTenant('stats-big');
    await applyExample(pool, tenant);
    const count = await bigImportSize();
    await importCounted(tenant, count);
    const before = await analyzeCount();
    const r = await refreshNightlyStatistics(pool, ['claims']);
    expect(r.analyzed).toEqual(['claims']);
    expect(await analyzeCount()).toBe(before + 1);
    // Its figures are fresh now: the next night does not analyze again.
    expect((await refreshNightlyStatistics(pool, ['claims'])).fresh).toEqual(['claims']);
    expect(await analyzeCount()).toBe(before + 1);
  });

  it('does not wait for another session analyzing the same table, and catches up after it', async () => {
    const tenant = uniqueTenant('stats-busy');
    await applyExample(pool, tenant);
    await importCounted(tenant, await bigImportSize());
    const before = await analyzeCount();
    const other = await pool.connect();
    try {
      await other.query('begin');
      await other.query('select pg_advisory_xact_lock(hashtext($1))', ['analyze:claims']);
      const t0 = performance.now();
      const r = await refreshNightlyStatistics(pool, ['claims']);
      expect(r.skippedBusy).toEqual(['claims']);
      expect(performance.now() - t0).toBeLessThan(5_000);
      expect(await analyzeCount()).toBe(before);
    } finally {
      await other.query('rollback');
      other.release();
    }
    expect((await refreshNightlyStatistics(pool, ['claims'])).analyzed).toEqual(['claims']);
    expect(await analyzeCount()).toBe(before + 1);
  });
});
