import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createPool } from '../../src/db/pool';
import { migrate } from '../../src/db/migrate';
import { startEmbeddedPostgres, type LocalPostgres } from '../../src/stack/postgres';
import { startTemporalDevServer, type LocalTemporal } from '../../src/stack/temporal-server';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Everything this process started, stopped on Ctrl-C or SIGTERM so that no server outlives the suite. */
const live = new Set<() => Promise<void>>();
/** Registers a clean-up for stopEverything (first registered, last run); returns its remover. */
export function onStopEverything(stop: () => Promise<void>): () => void {
  live.add(stop);
  return () => live.delete(stop);
}
export async function stopEverything(): Promise<void> {
  for (const stop of [...live].reverse()) await stop().catch(() => undefined);
}

/** What a scenario run needs; the servers themselves only when a fault stops them. */
export interface ScenarioStack {
  temporalAddress: string;
  /** The maintenance database's URL (for CREATE DATABASE and pg_terminate_backend). */
  adminUrl: string;
  /** A fresh, migrated database; its URL. */
  freshDatabase(name: string): Promise<string>;
  /** A prebuilt workflow bundle for the worker processes (RECON_WORKFLOW_BUNDLE). */
  workflowBundle?: string;
  postgres?: LocalPostgres;
  temporal?: LocalTemporal;
}

export interface FaultStack extends ScenarioStack {
  postgres: LocalPostgres;
  temporal: LocalTemporal;
  stop(): Promise<void>;
}

let migrating: Promise<unknown> = Promise.resolve();

/**
 * Drops and recreates database `name` on the server of `anyUrl`, migrated; returns its URL. One at a
 * time: the migrations also create cluster-wide roles, which parallel databases would race on.
 */
export function freshDatabaseOn(anyUrl: string, name: string): Promise<string> {
  const next = migrating.then(() => createMigrated(anyUrl, name));
  migrating = next.catch(() => undefined);
  return next;
}

async function createMigrated(anyUrl: string, name: string): Promise<string> {
  const admin = new URL(anyUrl);
  admin.pathname = '/postgres';
  const c = new pg.Client({ connectionString: admin.toString() });
  await c.connect();
  try {
    await c.query(`drop database if exists "${name}" with (force)`);
    await c.query(`create database "${name}"`);
  } finally {
    await c.end();
  }
  const url = new URL(anyUrl);
  url.pathname = `/${name}`;
  const pool = createPool(url.toString(), 1);
  try {
    await migrate(pool);
  } finally {
    await pool.end();
  }
  return url.toString();
}

export function adminUrlOf(anyUrl: string): string {
  const admin = new URL(anyUrl);
  admin.pathname = '/postgres';
  return admin.toString();
}

/** Embedded PostgreSQL and a Temporal dev server whose state survives a restart (SQLite file). */
export async function startFaultStack(
  dir: string,
  log: (m: string) => void,
  workflowBundle?: string,
): Promise<FaultStack> {
  const postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), log });
  const temporal = await startTemporalDevServer({ dbFile: path.join(dir, 'temporal.db'), ui: false, log }).catch(
    async (e) => {
      await postgres.stop();
      throw e;
    },
  );
  const stopStack = async () => {
    live.delete(stopStack);
    await temporal.stop().catch(() => undefined);
    await postgres.stop().catch(() => undefined);
  };
  live.add(stopStack);
  return {
    postgres,
    temporal,
    temporalAddress: temporal.address,
    workflowBundle,
    adminUrl: adminUrlOf(postgres.url),
    freshDatabase: (name) => freshDatabaseOn(postgres.url, name),
    stop: stopStack,
  };
}

/** The production worker (`recon worker`) in its own OS process, so that SIGKILL is a real crash. */
export class WorkerProcess {
  child: ChildProcess | null = null;
  starts = 0;
  /** Exits we did not cause: the worker crashed on its own. */
  crashes = 0;
  log = '';
  private expectExit = false;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly chunkSize: number,
  ) {}

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.starts++;
    const child = spawn(
      process.execPath,
      [path.join(ROOT, 'bin', 'recon.mjs'), 'worker', '--chunk-size', String(this.chunkSize)],
      {
        cwd: ROOT,
        env: this.env,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    this.child = child;
    this.expectExit = false;
    const stopChild = () => this.stop();
    live.add(stopChild);
    child.once('exit', () => live.delete(stopChild));
    child.once('exit', (code, signal) => {
      if (this.expectExit) return;
      this.crashes++;
      this.log += `\n[worker ${child.pid} exited on its own with ${code ?? signal}]\n`;
      process.stderr.write(`[faults] worker ${child.pid} crashed (${code ?? signal}): ${this.log.slice(-1200)}\n`);
    });
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`worker ${child.pid} did not start polling within 180 s: ${seen.slice(-400)}`)),
        180_000,
      );
      child.stderr.on('data', (b: Buffer) => {
        const text = b.toString();
        seen += text;
        this.log = (this.log + text).slice(-20_000);
        if (seen.includes('polling task queue')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`worker ${child.pid} exited with ${code ?? signal} before polling: ${seen.slice(-400)}`));
      });
    });
  }

  /** A crash: no drain, no goodbye to Temporal or Postgres. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = once(child, 'exit');
    this.expectExit = true;
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = once(child, 'exit');
    this.expectExit = true;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
}
