import { spawn } from 'node:child_process';
import { access, constants, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ReconError } from '../domain/errors';

/** v1.5.1 is the newest CLI tag whose go.mod has no `replace`, so it can be `go install`ed. */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';

export function cacheDir(): string {
  return (
    process.env.RECON_CACHE_DIR ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'outcome-recon')
  );
}

export async function executable(p: string): Promise<boolean> {
  return access(p, constants.X_OK).then(
    () => true,
    () => false,
  );
}

export async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && (await executable(path.join(dir, name)))) return path.join(dir, name);
  }
  return undefined;
}

export function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  log: (m: string) => void,
  building = '[temporal] still building the Temporal CLI with go install…',
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (b: Buffer) => {
      tail = (tail + b.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setInterval(() => log(building), 30_000);
    child.on('error', (e) => {
      clearInterval(timer);
      reject(e);
    });
    child.on('exit', (code) => {
      clearInterval(timer);
      if (code === 0) resolve();
      else
        reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${tail.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

export type BinarySource = 'env' | 'path' | 'cache' | 'go-install';

/**
 * Finds the Temporal CLI in the documented order: $TEMPORAL_CLI_PATH, PATH, the cache outside
 * the clone, then builds it with `go install` into that cache. (The SDK's own download is tried
 * by the caller when this returns nothing and Go is absent.)
 */
export async function findOrBuildTemporalCli(
  log: (m: string) => void,
  opts: { build?: boolean } = {},
): Promise<{ path: string; source: BinarySource } | undefined> {
  const fromEnv = process.env.TEMPORAL_CLI_PATH;
  if (fromEnv) {
    if (await executable(fromEnv)) return { path: fromEnv, source: 'env' };
    throw new ReconError('temporal_cli_missing', `TEMPORAL_CLI_PATH=${fromEnv} is not an executable file`);
  }
  const found = await onPath('temporal');
  if (found) return { path: found, source: 'path' };
  const binDir = path.join(cacheDir(), 'bin');
  const cached = path.join(binDir, 'temporal');
  if (await executable(cached)) return { path: cached, source: 'cache' };
  if (opts.build === false) return undefined;
  const go = await onPath('go');
  if (!go) return undefined;
  await mkdir(binDir, { recursive: true });
  log(
    `[temporal] building github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION} with go install into ${binDir} (once; takes a few minutes)`,
  );
  const env = { ...process.env, GOBIN: binDir, GOFLAGS: '-mod=mod' };
  try {
    await run(go, ['install', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`], env, log);
  } catch (err) {
    // Newer Go releases occasionally break old tags; a pinned toolchain comes through the same proxy.
    log(`[temporal] go install failed (${(err as Error).message.slice(0, 200)}); retrying with GOTOOLCHAIN=go1.25.0`);
    await run(
      go,
      ['install', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`],
      { ...env, GOTOOLCHAIN: 'go1.25.0' },
      log,
    );
  }
  return { path: cached, source: 'go-install' };
}

export const NO_TEMPORAL_HELP =
  'no Temporal server available. Fix one of: set TEMPORAL_ADDRESS to a running cluster; ' +
  'put the Temporal CLI on PATH or set TEMPORAL_CLI_PATH; ' +
  `install Go so that \`go install github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}\` can build it into ${path.join(cacheDir(), 'bin')}; ` +
  'or allow the Temporal SDK to download its test server.';
