/**
 * stripe-mock, Stripe's own mock of its API: stateless, but it validates every request against
 * Stripe's OpenAPI spec, so tests can prove each request the Stripe sink sends is one Stripe takes.
 * Built once with `go install` into the same cache as the Temporal CLI (scripts/ensure-temporal.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ReconError } from '../domain/errors';
import { freePort } from './ports';
import { cacheDir, executable, onPath, run } from './temporal-binary';

export const STRIPE_MOCK_VERSION = 'v0.203.0';
const MODULE = `github.com/stripe/stripe-mock@${STRIPE_MOCK_VERSION}`;

/**
 * Finds stripe-mock: $STRIPE_MOCK_PATH, the cache outside the clone, PATH, then builds it with
 * `go install` into that cache. Undefined when it is nowhere and Go is absent (or build is false).
 */
export async function findOrBuildStripeMock(
  log: (m: string) => void,
  opts: { build?: boolean } = {},
): Promise<{ path: string; source: 'env' | 'cache' | 'path' | 'go-install' } | undefined> {
  const fromEnv = process.env.STRIPE_MOCK_PATH;
  if (fromEnv) {
    if (await executable(fromEnv)) return { path: fromEnv, source: 'env' };
    throw new ReconError('stripe_mock_missing', `STRIPE_MOCK_PATH=${fromEnv} is not an executable file`);
  }
  const binDir = path.join(cacheDir(), 'bin');
  const cached = path.join(binDir, 'stripe-mock');
  // The cache before PATH: the cache holds the pinned version, PATH may hold any.
  if (await executable(cached)) return { path: cached, source: 'cache' };
  const found = await onPath('stripe-mock');
  if (found) return { path: found, source: 'path' };
  if (opts.build === false) return undefined;
  const go = await onPath('go');
  if (!go) return undefined;
  await mkdir(binDir, { recursive: true });
  log(`[stripe-mock] building ${MODULE} with go install into ${binDir} (once; takes a minute or two)`);
  await run(
    go,
    ['install', MODULE],
    { ...process.env, GOBIN: binDir, GOFLAGS: '-mod=mod' },
    log,
    '[stripe-mock] still building…',
  );
  return { path: cached, source: 'go-install' };
}

export const NO_STRIPE_MOCK_HELP =
  `stripe-mock is not available: install Go so that \`go install ${MODULE}\` can build it into ` +
  `${path.join(cacheDir(), 'bin')}, or set STRIPE_MOCK_PATH to a stripe-mock binary`;

export interface StripeMock {
  /** http://127.0.0.1:<port>, for the sink's apiBase. */
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts stripe-mock on 127.0.0.1 only. Both addresses are given: with only -http-addr it still
 * opens HTTPS on every interface.
 */
export async function startStripeMock(opts: { log?: (m: string) => void; binary?: string } = {}): Promise<StripeMock> {
  const log = opts.log ?? (() => undefined);
  const binary = opts.binary ?? (await findOrBuildStripeMock(log))?.path;
  if (!binary) throw new ReconError('stripe_mock_missing', NO_STRIPE_MOCK_HELP);
  const httpPort = await freePort();
  let httpsPort = await freePort();
  while (httpsPort === httpPort) httpsPort = await freePort();
  const child: ChildProcess = spawn(
    binary,
    ['-http-addr', `127.0.0.1:${httpPort}`, '-https-addr', `127.0.0.1:${httpsPort}`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let tail = '';
  const keep = (b: Buffer) => {
    tail = (tail + b.toString()).slice(-2000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });
  const url = `http://127.0.0.1:${httpPort}`;
  const stop = () =>
    new Promise<void>((resolve) => {
      if (exited !== undefined) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited !== undefined)
      throw new ReconError(
        'stripe_mock_missing',
        `stripe-mock exited (${exited}) at start: ${tail.trim().split('\n').slice(-2).join(' | ')}`,
      );
    try {
      const res = await fetch(`${url}/v1/customers?limit=1`, {
        headers: { Authorization: 'Bearer sk_test_123' },
        signal: AbortSignal.timeout(1000),
      });
      await res.body?.cancel();
      log(`[stripe-mock] ${STRIPE_MOCK_VERSION} ready at ${url}`);
      return { url, stop };
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new ReconError('stripe_mock_missing', `stripe-mock did not answer at ${url} within 30 s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
