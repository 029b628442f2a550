import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Pool } from '../src/db/pool';

/**
 * `npm run bench -- --profile DIR`: what the database spent each phase on. pg_stat_statements
 * gives every statement's total time, calls, rows, buffers and WAL per phase; auto_explain logs
 * the plan (EXPLAIN ANALYZE, BUFFERS, WAL) of every statement slower than the threshold. The
 * instrumentation slows the statements it times, so a profiled run's seconds and ratio are not
 * the benchmark's: take those from a run without --profile.
 */
export const PROFILE_SETTINGS = (minDurationMs: number) => [
  'shared_preload_libraries=pg_stat_statements,auto_explain',
  'pg_stat_statements.track=all',
  'pg_stat_statements.max=2000',
  `auto_explain.log_min_duration=${minDurationMs}`,
  'auto_explain.log_analyze=on',
  'auto_explain.log_buffers=on',
  'auto_explain.log_wal=on',
  'auto_explain.log_timing=on',
  'auto_explain.log_nested_statements=on',
];

interface StatementRow {
  calls: string;
  total_ms: number;
  mean_ms: number;
  rows: string;
  hit: string;
  read: string;
  dirtied: string;
  temp_written: string;
  wal_mb: number;
  query: string;
}

/** The server's stderr, kept in a file: auto_explain's plans arrive there. */
export class PlanLog {
  private out: WriteStream;
  constructor(readonly file: string) {
    this.out = createWriteStream(file);
  }
  write = (text: string) => {
    this.out.write(text);
  };
  close(): Promise<void> {
    return new Promise((resolve) => this.out.end(resolve));
  }
}

export class StatementProfile {
  private constructor(
    private pool: Pool,
    private dir: string,
  ) {}

  static async start(pool: Pool, dir: string): Promise<StatementProfile> {
    await mkdir(dir, { recursive: true });
    await pool.query('create extension if not exists pg_stat_statements');
    return new StatementProfile(pool, dir);
  }

  /** Forgets what earlier phases did, so the next dump is this phase's alone. */
  async reset(): Promise<void> {
    await this.pool.query('select pg_stat_statements_reset()');
  }

  /** Writes the phase's statements by total time to DIR/statements-<phase>.txt; returns its top lines. */
  async dump(phase: string, top = 15): Promise<string> {
    const { rows } = await this.pool.query<StatementRow>(
      `select calls::text, total_exec_time::float8 as total_ms, mean_exec_time::float8 as mean_ms, rows::text,
              shared_blks_hit::text as hit, shared_blks_read::text as read, shared_blks_dirtied::text as dirtied,
              temp_blks_written::text as temp_written, (wal_bytes / 1048576.0)::float8 as wal_mb,
              regexp_replace(query, '\\s+', ' ', 'g') as query
         from pg_stat_statements
        where query not like '%pg_stat_statements%'
        order by total_exec_time desc`,
    );
    const total = rows.reduce((s, r) => s + r.total_ms, 0);
    const lines = [
      `# ${phase}: ${rows.length} statements, ${(total / 1000).toFixed(2)} s of execution in all`,
      '# total_s  share  calls  mean_ms  rows  blks_hit  blks_read  blks_dirtied  temp_blks  wal_MB  query',
      ...rows.map((r) =>
        [
          (r.total_ms / 1000).toFixed(2).padStart(8),
          `${((100 * r.total_ms) / Math.max(total, 1)).toFixed(1)}%`.padStart(6),
          r.calls.padStart(6),
          r.mean_ms.toFixed(1).padStart(8),
          r.rows.padStart(8),
          r.hit.padStart(9),
          r.read.padStart(9),
          r.dirtied.padStart(9),
          r.temp_written.padStart(7),
          r.wal_mb.toFixed(1).padStart(7),
          r.query,
        ].join('  '),
      ),
    ];
    const slug = phase.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '');
    await writeFile(path.join(this.dir, `statements-${slug}.txt`), lines.join('\n') + '\n');
    return lines
      .slice(0, top + 2)
      .map((l) => (l.length > 220 ? l.slice(0, 217) + '...' : l))
      .join('\n');
  }
}
