import { randomUUID } from 'node:crypto';
import { readFile, writeFile, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import type { Client } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { createPool, type Pool } from '../../src/db/pool';
import { applyContract } from '../../src/db/contracts';
import { ContractSchema, type Contract } from '../../src/domain/contract';
import { connectClient, connectWorker } from '../../src/temporal/connection';
import { createWorker } from '../../src/temporal/worker';
import type { ActivityDeps } from '../../activities';
import { installRuntime } from '../../src/temporal/runtime';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { HELPDESK_HEADER } from '../support/fixtures';

export interface Harness {
  pool: Pool;
  client: Client;
  taskQueue: string;
  worker: Worker;
  dir: string;
  /** Stops the worker (as a crash or a deploy would) and starts a fresh one on the same queue. */
  stopWorker(): Promise<void>;
  startWorker(): Promise<void>;
  stop(): Promise<void>;
}

/** A worker on its own task queue against the shared real Temporal server and Postgres. */
export async function startHarness(opts: Partial<Omit<ActivityDeps, 'pool'>> = {}): Promise<Harness> {
  installRuntime('WARN');
  const pool = createPool(inject('databaseUrl'));
  const address = inject('temporalAddress');
  const client = await connectClient(address, 'default');
  const connection: NativeConnection = await connectWorker(address);
  const taskQueue = `it-${randomUUID()}`;
  const make = () =>
    createWorker({
      connection,
      namespace: 'default',
      taskQueue,
      deps: { pool, ...opts },
      bundle: { codePath: inject('workflowBundlePath') },
    });
  let worker: Worker | null = await make();
  let running: Promise<void> | null = worker.run();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'recon-case-'));
  const stopWorker = async () => {
    worker?.shutdown();
    await running;
    worker = null;
    running = null;
  };
  return {
    pool,
    client,
    taskQueue,
    dir,
    get worker() {
      if (!worker) throw new Error('worker stopped');
      return worker;
    },
    stopWorker,
    async startWorker() {
      if (worker) return;
      worker = await make();
      running = worker.run();
    },
    async stop() {
      await stopWorker();
      await connection.close();
      await client.connection.close();
      await pool.end();
    },
  };
}

export async function loadExampleContract(tenant: string, overrides: Partial<Contract> = {}): Promise<Contract> {
  const raw = JSON.parse(
    await readFile(new URL('../../examples/contract.acme.json', import.meta.url), 'utf8'),
  ) as Record<string, unknown>;
  return ContractSchema.parse({ ...raw, tenant, ...overrides });
}

export async function applyExample(pool: Pool, tenant: string, overrides: Partial<Contract> = {}): Promise<Contract> {
  const c = await loadExampleContract(tenant, overrides);
  await applyContract(pool, c);
  return c;
}

export async function writeLines(dir: string, name: string, lines: string[]): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, lines.join('\n') + '\n');
  return file;
}

export function uniqueTenant(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** The settings a `recon` process needs to reach the test stack and this harness's worker. */
export function reconEnv(h: Harness): NodeJS.ProcessEnv {
  return {
    DATABASE_URL: inject('databaseUrl'),
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_TASK_QUEUE: h.taskQueue,
  };
}

/**
 * Imports one claim per ticket and a helpdesk export in which each ticket was solved at the given
 * time (CSAT 5): outcomes that a night bills once their grace has passed.
 */
export async function seedSolvedTickets(
  h: Harness,
  tenant: string,
  tag: string,
  tickets: Array<[id: string, solvedAt: string]>,
): Promise<void> {
  const claims = tickets.map(([id, at]) =>
    JSON.stringify({ claim_id: `${id}-c`, outcome_type: 'resolved_ticket', subject_ref: id, occurred_at: at }),
  );
  await importClaimsFile(h.pool, { tenant, file: await writeLines(h.dir, `${tenant}-${tag}.jsonl`, claims) });
  const records = [HELPDESK_HEADER, ...tickets.map(([id, at]) => `${id},solved,${at},${at},5`)];
  await importRecordsFile(h.pool, {
    tenant,
    source: 'helpdesk',
    file: await writeLines(h.dir, `${tenant}-${tag}.csv`, records),
  });
}
