import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../workflows/messages';
import { ReconError } from '../domain/errors';
import { NO_TEMPORAL_HELP, findOrBuildTemporalCli } from './temporal-binary';
import { freePort } from './ports';

export interface LocalTemporal {
  address: string;
  uiUrl: string | null;
  how: string;
  stop(): Promise<void>;
  /** Stops the dev server, keeping its database file (only when started with `dbFile`). */
  halt?(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and database file, and waits until it serves. */
  resume?(): Promise<void>;
}

const DEV_SEARCH_ATTRIBUTES = [`${SEARCH_ATTRIBUTES.tenant}=Keyword`, `${SEARCH_ATTRIBUTES.asOf}=Datetime`];

async function waitUntilServing(address: string, child: ChildProcess | null, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null)
      throw new ReconError('temporal_start_failed', `the Temporal dev server exited with code ${child.exitCode}`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 2000 });
      try {
        await conn.workflowService.describeNamespace({ namespace: 'default' });
        return;
      } finally {
        await conn.close();
      }
    } catch (err) {
      last = (err as Error).message;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  throw new ReconError(
    'temporal_start_failed',
    `the Temporal dev server did not answer at ${address} within ${timeoutMs / 1000}s: ${last}`,
  );
}

/**
 * Starts the Temporal CLI's dev server (SQLite, persisted to `dbFile` when given). The binary is
 * found or built in the documented order; the step taken is logged.
 */
export async function startTemporalDevServer(opts: {
  dbFile?: string;
  port?: number;
  uiPort?: number;
  ui?: boolean;
  log: (m: string) => void;
}): Promise<LocalTemporal> {
  const { log } = opts;
  const binary = await findOrBuildTemporalCli(log);
  const port = opts.port ?? (await freePort());
  const address = `127.0.0.1:${port}`;
  if (!binary) {
    log('[temporal] no Temporal CLI on this machine and no Go toolchain; trying the Temporal SDK download');
    return startSdkDownloadedServer(address, port, log);
  }
  log(`[temporal] using the Temporal CLI from ${binary.source}: ${binary.path}`);
  const uiPort = opts.ui === false ? null : (opts.uiPort ?? (await freePort()));
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--namespace',
    'default',
    '--log-level',
    'error',
  ];
  for (const sa of DEV_SEARCH_ATTRIBUTES) args.push('--search-attribute', sa);
  if (uiPort) args.push('--ui-port', String(uiPort));
  else args.push('--headless');
  if (opts.dbFile) {
    await mkdir(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  const launch = (): ChildProcess => {
    const c = spawn(binary.path, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
    c.stderr?.on('data', (b: Buffer) => {
      const text = b.toString().trim();
      if (text) log(`[temporal] ${text.split('\n')[0].slice(0, 300)}`);
    });
    return c;
  };
  let child = launch();
  // Never leave the dev server running behind a process that exits (Ctrl-C, a crash).
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  try {
    await waitUntilServing(address, child, 60_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const halt = (signal: NodeJS.Signals) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill(signal);
    });
  return {
    address,
    uiUrl: uiPort ? `http://127.0.0.1:${uiPort}` : null,
    how: `Temporal CLI dev server (${binary.source})`,
    halt: async (signal = 'SIGTERM') => {
      if (!opts.dbFile)
        throw new ReconError(
          'temporal_not_persistent',
          'a restart needs the dev server started with a database file; it would come back empty',
        );
      await halt(signal);
    },
    resume: async () => {
      if (child.exitCode === null && child.signalCode === null) return;
      child = launch();
      await waitUntilServing(address, child, 60_000);
    },
    stop: async () => {
      process.off('exit', killOnExit);
      await halt('SIGTERM');
    },
  };
}

async function startSdkDownloadedServer(
  address: string,
  port: number,
  log: (m: string) => void,
): Promise<LocalTemporal> {
  try {
    const { TestWorkflowEnvironment } = await import('@temporalio/testing');
    const env = await TestWorkflowEnvironment.createLocal({
      server: { ip: '127.0.0.1', port, extraArgs: DEV_SEARCH_ATTRIBUTES.flatMap((sa) => ['--search-attribute', sa]) },
    });
    log('[temporal] using the dev server downloaded by the Temporal SDK');
    return { address, uiUrl: null, how: 'Temporal SDK download', stop: () => env.teardown() };
  } catch (err) {
    throw new ReconError(
      'temporal_unavailable',
      `${NO_TEMPORAL_HELP} (SDK download: ${(err as Error).message.split('\n')[0]})`,
    );
  }
}
