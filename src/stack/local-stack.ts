import path from 'node:path';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { startEmbeddedPostgres } from './postgres';
import { startTemporalDevServer } from './temporal-server';

export interface LocalStack {
  databaseUrl: string;
  temporalAddress: string;
  uiUrl: string | null;
  /** The embedded server's data directory; null when DATABASE_URL names the server. */
  postgresDataDir: string | null;
  describe: string[];
  stop(): Promise<void>;
}

/**
 * DATABASE_URL and TEMPORAL_ADDRESS win when set; otherwise an embedded PostgreSQL and the
 * Temporal CLI dev server are started under `dir` (kept between runs when `persistent`).
 */
export async function startLocalStack(opts: {
  dir: string;
  persistent: boolean;
  ui?: boolean;
  log: (m: string) => void;
  /** Passed to the embedded PostgreSQL only (see startEmbeddedPostgres). */
  postgres?: { settings?: string[]; onServerLog?: (text: string) => void };
}): Promise<LocalStack> {
  const stops: Array<() => Promise<void>> = [];
  const describe: string[] = [];
  try {
    let databaseUrl = process.env.DATABASE_URL;
    let postgresDataDir: string | null = null;
    if (databaseUrl) {
      describe.push('PostgreSQL: DATABASE_URL from the environment');
    } else {
      opts.log('[postgres] starting embedded PostgreSQL');
      const pg = await startEmbeddedPostgres({
        dataDir: path.join(opts.dir, 'pgdata'),
        persistent: opts.persistent,
        log: opts.log,
        ...opts.postgres,
      });
      stops.push(() => pg.stop());
      databaseUrl = pg.url;
      postgresDataDir = pg.dataDir;
      describe.push(`PostgreSQL: ${pg.url.replace(/:[^:@/]*@/, ':***@')} (embedded, data in ${pg.dataDir})`);
    }
    let temporalAddress = process.env.TEMPORAL_ADDRESS;
    let uiUrl: string | null = null;
    if (temporalAddress) {
      describe.push(`Temporal: ${temporalAddress} from TEMPORAL_ADDRESS`);
    } else {
      const t = await startTemporalDevServer({
        dbFile: opts.persistent ? path.join(opts.dir, 'temporal.db') : undefined,
        ui: opts.ui ?? true,
        log: opts.log,
      });
      stops.push(() => t.stop());
      temporalAddress = t.address;
      uiUrl = t.uiUrl;
      describe.push(`Temporal: ${t.address} (${t.how})`);
      if (uiUrl) describe.push(`Temporal Web UI: ${uiUrl}`);
    }
    const pool = createPool(databaseUrl);
    try {
      const m = await migrate(pool);
      if (m.applied.length) opts.log(`[postgres] applied migrations ${m.applied.join(', ')}`);
    } finally {
      await pool.end();
    }
    return {
      databaseUrl,
      temporalAddress,
      uiUrl,
      postgresDataDir,
      describe,
      stop: async () => {
        for (const s of stops.reverse())
          await s().catch((e) => opts.log(`[stack] stop failed: ${(e as Error).message}`));
      },
    };
  } catch (err) {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    throw err;
  }
}
