import { describe, expect, it } from 'vitest';
import { STALE_STATISTICS, needsAnalyze, type TableChange } from '../../src/reconcile/statistics';

/** A table analyzed at 100,000 rows in 2,500 pages (40 rows a page), unchanged since. */
const analyzed: TableChange = {
  rowsAtLastCount: 100_000,
  pagesAtLastCount: 2_500,
  pagesNow: 2_500,
  modifiedSinceAnalyze: 0,
  neverAnalyzed: false,
};

describe('a shared table is analyzed when it changed enough since its last analyze', () => {
  it('leaves an unchanged table alone', () => {
    expect(needsAnalyze(analyzed)).toBe(false);
  });

  it('leaves an empty table alone, even one never analyzed', () => {
    expect(
      needsAnalyze({ ...analyzed, rowsAtLastCount: -1, pagesAtLastCount: 0, pagesNow: 0, neverAnalyzed: true }),
    ).toBe(false);
  });

  it('analyzes a table with rows but no statistics at all', () => {
    expect(
      needsAnalyze({ ...analyzed, rowsAtLastCount: -1, pagesAtLastCount: 0, pagesNow: 3, neverAnalyzed: true }),
    ).toBe(true);
  });

  it('skips a small tenant’s night on a large table, analyzes a large one', () => {
    expect(needsAnalyze({ ...analyzed, modifiedSinceAnalyze: 60 })).toBe(false);
    expect(needsAnalyze({ ...analyzed, modifiedSinceAnalyze: 10_000 })).toBe(false); // exactly 10%
    expect(needsAnalyze({ ...analyzed, modifiedSinceAnalyze: 10_001 })).toBe(true);
  });

  it('needs at least the minimum of rows on a small table, however large the fraction', () => {
    const small = { ...analyzed, rowsAtLastCount: 100, pagesAtLastCount: 3, pagesNow: 3 };
    expect(needsAnalyze({ ...small, modifiedSinceAnalyze: STALE_STATISTICS.minRows - 1 })).toBe(false);
    expect(needsAnalyze({ ...small, modifiedSinceAnalyze: STALE_STATISTICS.minRows })).toBe(true);
  });

  it('sees an import the statistics collector has not counted yet by the file’s growth', () => {
    // 300 new pages at 40 rows a page: ~12,000 rows, 12% of the table.
    expect(needsAnalyze({ ...analyzed, pagesNow: 2_800 })).toBe(true);
    // 100 new pages: ~4,000 rows, 4%.
    expect(needsAnalyze({ ...analyzed, pagesNow: 2_600 })).toBe(false);
  });

  it('converts growth of a table counted empty with a generous density, so a big import is not missed', () => {
    const countedEmpty = { ...analyzed, rowsAtLastCount: 0, pagesAtLastCount: 0 };
    expect(needsAnalyze({ ...countedEmpty, pagesNow: 1 })).toBe(false);
    expect(needsAnalyze({ ...countedEmpty, pagesNow: 2_500 })).toBe(true);
  });

  it('takes the larger of the two estimates', () => {
    // Updates in place do not grow the file; the collector's count still sees them.
    expect(needsAnalyze({ ...analyzed, modifiedSinceAnalyze: 20_000 })).toBe(true);
    // Growth counts even while the collector reports little.
    expect(needsAnalyze({ ...analyzed, modifiedSinceAnalyze: 100, pagesNow: 3_000 })).toBe(true);
  });

  it('analyzes a change as large as ANALYZE’s sample on a table of millions', () => {
    const huge = { ...analyzed, rowsAtLastCount: 5_000_000, pagesAtLastCount: 125_000, pagesNow: 125_000 };
    expect(needsAnalyze({ ...huge, modifiedSinceAnalyze: STALE_STATISTICS.alwaysRows - 1 })).toBe(false);
    expect(needsAnalyze({ ...huge, modifiedSinceAnalyze: STALE_STATISTICS.alwaysRows })).toBe(true);
    // 100k new claims on 5M (2%), seen by the file's growth alone.
    expect(needsAnalyze({ ...huge, pagesNow: 127_500 })).toBe(true);
  });

  it('honours a stricter or looser policy', () => {
    const change = { ...analyzed, modifiedSinceAnalyze: 3_000 };
    expect(needsAnalyze(change, { fraction: 0.02, minRows: 1_000, alwaysRows: 1e9 })).toBe(true);
    expect(needsAnalyze(change, { fraction: 0.02, minRows: 5_000, alwaysRows: 1e9 })).toBe(false);
    expect(needsAnalyze(change, { fraction: 0.5, minRows: 1_000, alwaysRows: 3_000 })).toBe(true);
  });
});
