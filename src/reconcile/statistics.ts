import { inTransaction, type Pool } from '../db/pool';

/** The tables a night's imports and attach grow, whose statistics the run's plans depend on. */
const NIGHTLY_TABLES = ['claims', 'outcomes', 'records', 'record_versions'] as const;
type NightlyTable = (typeof NIGHTLY_TABLES)[number];

/**
 * When a table's statistics are stale enough to refresh: at least `minRows` rows changed since its
 * last analyze, and either more than `fraction` of the rows the planner counts on or `alwaysRows`
 * whatever the table's size. Below `minRows` a misplanned join costs little (the harm of stale
 * figures grows with the rows a loop visits); the fraction is autovacuum's own default
 * (autovacuum_analyze_scale_factor), applied when the night needs it instead of whenever
 * autovacuum next wakes; `alwaysRows` is ANALYZE's own sample at the default statistics target
 * (300 x 100 rows): a change that large is worth the fixed cost of one analyze even on a table of
 * millions (100k new claims on 5M existing ones are 2%). In a fleet, the table-wide change since
 * the last analyze crosses it about once per 30,000 rows changed by all tenants together, not once
 * per tenant.
 */
export const STALE_STATISTICS = { fraction: 0.1, minRows: 2_000, alwaysRows: 30_000 } as const;

export type StalePolicy = { fraction: number; minRows: number; alwaysRows: number };

/**
 * Rows per 8 kB page assumed when a table has never been counted with rows in it, so growth in
 * pages cannot be converted with the table's own density. Higher than any of our tables holds
 * (claims ~40, record_versions fewer), so the guess errs towards analyzing.
 */
const FALLBACK_ROWS_PER_PAGE = 100;

/** What PostgreSQL knows of a table's change since the planner's figures were taken. */
export interface TableChange {
  /** pg_class.reltuples: the row count of the last ANALYZE or VACUUM; -1 if neither ever ran. */
  rowsAtLastCount: number;
  /** pg_class.relpages: the size in pages at that count. */
  pagesAtLastCount: number;
  /** The table's size in pages now (exact, no lag). */
  pagesNow: number;
  /** pg_stat_user_tables.n_mod_since_analyze: rows inserted, updated or deleted since the last analyze. */
  modifiedSinceAnalyze: number;
  /** Neither ANALYZE nor autovacuum's analyze has run since the statistics were last reset. */
  neverAnalyzed: boolean;
}

/**
 * Whether a table needs ANALYZE now. Two estimates of the rows changed since the last analyze,
 * the larger wins: the statistics collector's count, which lags behind other sessions' commits
 * (a backend flushes its counters when idle, at most once a second and up to a minute late under
 * contention), and the growth of the file since the last count, which is exact but sees only
 * inserts that needed new pages. An import that grew the file is seen at once; one that filled
 * space vacuum had freed (claims leave a dead version behind when attach updates them), and any
 * update, is seen once the importing session has flushed its counters: normally within a second
 * of going idle, at most about ten seconds. A night's pulled pages flush as they go, so only the
 * last seconds of an import can be missed, and the next refresh or autovacuum counts them.
 */
export function needsAnalyze(t: TableChange, policy: StalePolicy = STALE_STATISTICS): boolean {
  if (t.pagesNow === 0 && t.modifiedSinceAnalyze === 0) return false;
  // No statistics at all: the planner falls back to fixed guesses for every column.
  if (t.neverAnalyzed) return true;
  const counted = Math.max(t.rowsAtLastCount, 0);
  const density =
    t.rowsAtLastCount > 0 && t.pagesAtLastCount > 0 ? t.rowsAtLastCount / t.pagesAtLastCount : FALLBACK_ROWS_PER_PAGE;
  const grown = Math.max(0, t.pagesNow - Math.max(t.pagesAtLastCount, 0)) * density;
  const changed = Math.max(t.modifiedSinceAnalyze, grown);
  return changed >= policy.minRows && (changed > policy.fraction * counted || changed >= policy.alwaysRows);
}

const TABLE_STATE = `
  select c.relname as "table",
         c.reltuples::float8 as "rowsAtLastCount",
         c.relpages::float8 as "pagesAtLastCount",
         (pg_relation_size(c.oid) / current_setting('block_size')::int)::float8 as "pagesNow",
         coalesce(s.n_mod_since_analyze, 0)::float8 as "modifiedSinceAnalyze",
         (s.last_analyze is null and s.last_autoanalyze is null) as "neverAnalyzed"
    from pg_class c
    left join pg_stat_user_tables s on s.relid = c.oid
   where c.oid = any($1::regclass[])`;

/** What one refresh did, table by table. */
export interface StatisticsRefresh {
  analyzed: NightlyTable[];
  /** Changed enough, but another session was analyzing it at that moment. */
  skippedBusy: NightlyTable[];
  /** Fresh enough. */
  fresh: NightlyTable[];
}

/**
 * Refreshes the planner's statistics after the night's imports and again once its claims are
 * attached, for the tables that changed enough since their last analyze. A night can add more rows
 * than the tables held at their last analyze; with stale figures the planner takes a 100k-row table
 * for an empty one and loops over it in every chunk, until autovacuum catches up. A small tenant's
 * night changes a shared table by a fraction that no plan notices, so it analyzes nothing: a
 * thousand nights at once used to queue two thousand ANALYZEs of the same tables behind each other.
 *
 * Of sessions that find the same table stale at once, one analyzes it and the others go on without
 * waiting (a per-table advisory try-lock): that analyze is refreshing the same figures. It samples
 * the rows committed when it started, so a night whose import committed during it may plan on
 * figures without its rows; the next night, or autovacuum, catches up.
 *
 * ANALYZE samples a fixed number of rows, so it costs about the same at any table size. A role
 * that does not own the tables gets a warning, not an error: autovacuum still analyzes them.
 */
export async function refreshNightlyStatistics(
  pool: Pool,
  tables: ReadonlyArray<NightlyTable> = NIGHTLY_TABLES,
): Promise<StatisticsRefresh> {
  const result: StatisticsRefresh = { analyzed: [], skippedBusy: [], fresh: [] };
  const { rows } = await pool.query<TableChange & { table: NightlyTable }>(TABLE_STATE, [tables]);
  for (const table of tables) {
    const state = rows.find((r) => r.table === table);
    if (!state || !needsAnalyze(state)) {
      result.fresh.push(table);
      continue;
    }
    const outcome = await inTransaction(pool, async (db) => {
      const {
        rows: [lock],
      } = await db.query<{ got: boolean }>('select pg_try_advisory_xact_lock(hashtext($1)) as got', [
        `analyze:${table}`,
      ]);
      if (!lock.got) return 'busy' as const;
      // Another session may have analyzed it between the first look and the lock.
      const {
        rows: [now],
      } = await db.query<TableChange>(TABLE_STATE, [[table]]);
      if (!now || !needsAnalyze(now)) return 'fresh' as const;
      await db.query(`analyze ${table}`);
      return 'analyzed' as const;
    });
    (outcome === 'analyzed' ? result.analyzed : outcome === 'busy' ? result.skippedBusy : result.fresh).push(table);
  }
  return result;
}
