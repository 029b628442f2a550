import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPool, type Pool } from '../../src/db/pool';

// Imports insert claims without an outcome; the index on claims by outcome leaves those out
// (migration 021). Every reader asks for given outcomes, which the partial index must still serve:
// with sequential scans priced out, each shape below has to find the index.
describe('the claims-by-outcome index after migration 021', () => {
  let pool: Pool;
  beforeAll(() => {
    pool = createPool(inject('databaseUrl'), 1);
  });
  afterAll(async () => pool?.end());

  const plan = async (sql: string, params: unknown[] = []) => {
    const db = await pool.connect();
    try {
      await db.query('begin');
      await db.query('set local enable_seqscan = off');
      // A generic plan: the reader's parameters are not known when its statement is planned.
      await db.query(`set local plan_cache_mode = force_generic_plan`);
      const { rows } = await db.query<{ 'QUERY PLAN': string }>(`explain ${sql}`, params);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    } finally {
      await db.query('rollback');
      db.release();
    }
  };

  it('holds no claim without an outcome', async () => {
    const { rows } = await pool.query<{ def: string }>(`select pg_get_indexdef('claims_outcome_idx'::regclass) as def`);
    expect(rows[0].def).toMatch(/WHERE \(outcome_id IS NOT NULL\)$/);
  });

  it('serves lookups by one outcome, by a list and from a join', async () => {
    expect(await plan('select claim_id from claims where outcome_id = $1', [1])).toContain('claims_outcome_idx');
    expect(await plan('select claim_id from claims where outcome_id = any($1::bigint[])', [[1, 2]])).toContain(
      'claims_outcome_idx',
    );
    expect(
      await plan(
        'select o.outcome_id from outcomes o where o.outcome_id = any($1::bigint[]) and not exists (select 1 from claims k where k.outcome_id = o.outcome_id)',
        [[1, 2]],
      ),
    ).toContain('claims_outcome_idx');
  });
});
