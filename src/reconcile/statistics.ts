import type { Pool } from '../db/pool';

/** The tables a night's imports and attach grow, whose statistics the run's plans depend on. */
const NIGHTLY_TABLES = ['claims', 'outcomes', 'records', 'record_versions'] as const;

/**
 * Refreshes the planner's statistics after the night's imports and again once its claims are
 * attached. A night can add more
 * rows than the tables held at their last analyze; with stale figures the planner takes a 100k-row
 * table for an empty one and loops over it in every chunk, until autovacuum catches up. ANALYZE
 * samples a fixed number of rows, so this costs about the same at any table size. A role that does
 * not own the tables gets a warning, not an error: autovacuum still analyzes them.
 */
export async function refreshNightlyStatistics(
  pool: Pool,
  tables: ReadonlyArray<(typeof NIGHTLY_TABLES)[number]> = NIGHTLY_TABLES,
): Promise<void> {
  await pool.query(`analyze ${tables.join(', ')}`);
}
