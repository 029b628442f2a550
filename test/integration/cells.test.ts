import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { Client } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { createPool, type Pool } from '../../src/db/pool';
import { migrate } from '../../src/db/migrate';
import { startEmbeddedPostgres, type LocalPostgres } from '../../src/stack/postgres';
import { connectClient, connectWorker } from '../../src/temporal/connection';
import { installRuntime } from '../../src/temporal/runtime';
import * as schedules from '../../src/temporal/schedules';
import { createWorker } from '../../src/temporal/worker';
import { HELPDESK_HEADER } from '../support/fixtures';
import { BIN, recon, type ReconResult } from '../support/recon-cli';
import { loadExampleContract, uniqueTenant, writeLines } from './harness';

/** Every table with a tenant_id column, and how many of its rows belong to each of `tenants`. */
async function rowsOfTenants(pool: Pool, tenants: string[]): Promise<Record<string, number>> {
  const { rows: tables } = await pool.query<{ table_name: string }>(
    `select table_name from information_schema.columns
      where table_schema = current_schema() and column_name = 'tenant_id' order by table_name`,
  );
  const out: Record<string, number> = {};
  for (const { table_name } of tables) {
    const { rows } = await pool.query<{ n: number }>(
      `select count(*)::int as n from ${table_name} where tenant_id = any($1::text[])`,
      [tenants],
    );
    if (rows[0].n > 0) out[table_name] = rows[0].n;
  }
  return out;
}

/**
 * Two cells on two real PostgreSQL servers: the default cell (a database of the shared test
 * server, which also holds the directory) and cell "b" (an embedded server of its own, with a
 * `recon worker --cell b` process). Every command goes through the real binary, routed by tenant.
 */
describe('tenant cells: two PostgreSQL servers, one directory', () => {
  const dbName = `recon_cells_${randomUUID().slice(0, 8)}`;
  const queue = `it-cells-${randomUUID()}`;
  const [ta, tb, tc] = [uniqueTenant('cell-a'), uniqueTenant('cell-b'), uniqueTenant('cell-c')];
  let admin: Pool;
  let home: Pool;
  let cellB: LocalPostgres;
  let poolB: Pool;
  let client: Client;
  let connection: NativeConnection;
  let worker: Worker;
  let running: Promise<void>;
  let workerB: ChildProcess | null = null;
  let workerBLog = '';
  let env: NodeJS.ProcessEnv;
  let dir: string;

  const ok = async (args: string[]): Promise<ReconResult> => {
    const r = await recon(args, env);
    expect(r.code, `recon ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r;
  };
  const json = async <T>(args: string[]): Promise<T> => JSON.parse((await ok([...args, '--json'])).stdout) as T;

  async function seedFiles(tenant: string): Promise<{ claims: string; records: string; contract: string }> {
    const contract = path.join(dir, `${tenant}.contract.json`);
    await writeFile(contract, JSON.stringify(await loadExampleContract(tenant)));
    const claims = await writeLines(dir, `${tenant}-claims.csv`, [
      'claim_id,outcome_type,subject_ref,occurred_at',
      'k1,resolved_ticket,T-1,2026-02-20T10:00:00Z',
      'k2,resolved_ticket,T-2,2026-02-20T10:00:00Z',
    ]);
    const records = await writeLines(dir, `${tenant}-tickets.csv`, [
      HELPDESK_HEADER,
      'T-1,solved,2026-02-20T11:00:00Z,2026-02-20T11:00:00Z,5',
      'T-2,solved,2026-02-20T11:00:00Z,2026-02-20T11:00:00Z,5',
    ]);
    return { claims, records, contract };
  }

  beforeAll(async () => {
    installRuntime('WARN');
    dir = await mkdtemp(path.join(os.tmpdir(), 'recon-cells-'));
    admin = createPool(inject('databaseUrl'), 1);
    await admin.query(`create database ${dbName}`);
    const url = new URL(inject('databaseUrl'));
    url.pathname = `/${dbName}`;
    home = createPool(url.toString());
    await migrate(home);
    cellB = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg-b') });
    poolB = createPool(cellB.url, 2);
    client = await connectClient(inject('temporalAddress'), 'default');
    connection = await connectWorker(inject('temporalAddress'));
    worker = await createWorker({
      connection,
      namespace: 'default',
      taskQueue: queue,
      deps: { pool: home },
      bundle: { codePath: inject('workflowBundlePath') },
    });
    running = worker.run();
    env = { DATABASE_URL: url.toString(), TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_TASK_QUEUE: queue };
  });

  afterAll(async () => {
    for (const t of [ta, tb, tc]) await schedules.deleteSchedule(client, t).catch(() => undefined);
    workerB?.kill('SIGTERM');
    worker?.shutdown();
    await running;
    await connection?.close();
    await client?.connection.close();
    await home?.end();
    await poolB?.end().catch(() => undefined);
    await cellB?.stop();
    await admin?.query(`drop database if exists ${dbName} with (force)`);
    await admin?.query(`drop database if exists ${dbName}_c with (force)`);
    await admin?.end();
    await rm(dir, { recursive: true, force: true });
  });

  it('adds a cell: refuses a password for a remote server and a database already in use', async () => {
    const remote = await recon(
      ['cell', 'add', 'far', '--database-url', 'postgres://recon:secret@db-7.example.com/recon'],
      env,
    );
    expect(remote.code).toBe(2);
    expect(remote.stderr).toMatch(/^recon: cell_url_has_password: .*--database-url-env NAME/);
    expect(remote.stderr).not.toContain('secret');
    const same = await recon(['cell', 'add', 'twin', '--database-url', env.DATABASE_URL!], env);
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/^recon: invalid_cell: that URL reaches the database of cell "default"/);

    // Without the variable in this process the cell cannot be reached, and it says which variable.
    const unset = await recon(['cell', 'add', 'b', '--database-url-env', 'CELL_B_URL'], env);
    expect(unset.code).toBe(2);
    expect(unset.stderr).toMatch(/^recon: cell_url_missing: cell "b" keeps its database URL in \$CELL_B_URL/);

    env = { ...env, CELL_B_URL: cellB.url };
    const r = await ok(['cell', 'add', 'b', '--database-url-env', 'CELL_B_URL']);
    expect(r.stdout).toMatch(
      new RegExp(`^cell b added: task queue "${queue}-b", database from \\$CELL_B_URL, applied \\d+ migrations`),
    );
    const { rows } = await poolB.query<{ n: number }>('select count(*)::int as n from schema_migrations');
    expect(rows[0].n).toBeGreaterThanOrEqual(17);
    const again = await recon(['cell', 'add', 'b', '--database-url-env', 'CELL_B_URL'], env);
    expect(again.stderr).toMatch(/^recon: (cell_exists|invalid_cell): /);
  });

  it("routes every verb by tenant: contracts, imports and nights land in the tenant's own cell", async () => {
    workerB = spawn(process.execPath, [BIN, 'worker', '--cell', 'b'], {
      env: { ...process.env, ...env, RECON_WORKFLOW_BUNDLE: inject('workflowBundlePath') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    workerB.stdout!.on('data', (b) => (workerBLog += b));
    workerB.stderr!.on('data', (b) => (workerBLog += b));

    expect((await ok(['cell', 'place', tb, 'b'])).stdout).toBe(
      `tenant ${tb} placed in cell b: its contract, data, runs and schedule live there\n`,
    );
    for (const t of [ta, tb, tc]) {
      const f = await seedFiles(t);
      await ok(['contract', 'apply', f.contract, ...(t === tc ? ['--cell', 'b'] : [])]);
      await ok(['claims', 'import', f.claims, '--tenant', t]);
      await ok(['records', 'import', f.records, '--tenant', t, '--source', 'helpdesk']);
    }
    // A tenant with data in one cell stays there.
    const move = await recon(['cell', 'place', ta, 'b'], env);
    expect(move.code).toBe(2);
    expect(move.stderr).toMatch(/^recon: cell_placement_fixed: /);

    for (const t of [ta, tb, tc]) {
      const s = await json<{ ledger: { charges: number } }>(['run', '--tenant', t, '--as-of', '2026-03-02T12:00:00Z']);
      expect(s.ledger.charges, workerBLog).toBe(2);
    }
    // No row of a tenant in the other cell's database; the directory's placements are the only
    // trace of b's tenants in the default cell.
    expect(await rowsOfTenants(home, [tb, tc])).toEqual({ cell_tenants: 2 });
    expect(await rowsOfTenants(poolB, [ta])).toEqual({});
    expect(await rowsOfTenants(poolB, [tb])).toMatchObject({ tenants: 1, claims: 2, outcomes: 2, ledger_entries: 2 });
    expect(await rowsOfTenants(home, [ta])).toMatchObject({ tenants: 1, claims: 2, outcomes: 2, ledger_entries: 2 });

    const listed = await json<Array<{ tenant: string; cell: string }>>(['tenant', 'list']);
    expect(listed.map((t) => [t.tenant, t.cell])).toEqual(
      [
        [ta, 'default'],
        [tb, 'b'],
        [tc, 'b'],
      ].sort((x, y) => x[0].localeCompare(y[0])),
    );
    const cells = await json<Array<{ cell: string; tenants: number; reachable: boolean; worker_polling: boolean }>>([
      'cell',
      'list',
    ]);
    expect(cells).toMatchObject([
      { cell: 'default', tenants: 1, reachable: true, worker_polling: true },
      { cell: 'b', tenants: 2, reachable: true, worker_polling: true },
    ]);
    const migrated = await ok(['migrate']);
    expect(migrated.stdout).toMatch(/^cell default: schema up to date .*\ncell b: schema up to date/);

    // Ids repeat across cells: an id alone is refused once there is more than one cell.
    const byId = await recon(['outcome', 'show', '1'], env);
    expect(byId.code).toBe(2);
    expect(byId.stderr).toMatch(/^recon: tenant_required: /);
  });

  it("schedule sync gives each tenant its cell's queue; fleet status reads every cell", async () => {
    const s = await json<{ lines: Array<{ tenant: string; result: string }> }>(['schedule', 'sync']);
    expect(Object.fromEntries(s.lines.map((l) => [l.tenant, l.result]))).toEqual({
      [ta]: 'created',
      [tb]: 'created',
      [tc]: 'created',
    });
    const queueOf = async (t: string) =>
      (await client.schedule.getHandle(schedules.scheduleId(t)).describe()).action.taskQueue;
    expect(await queueOf(ta)).toBe(queue);
    expect(await queueOf(tb)).toBe(`${queue}-b`);
    const f = await json<{ tenants: Array<{ tenant: string; cell: string; status: string }> }>([
      'fleet',
      'status',
      '--night',
      '2026-03-02',
    ]);
    expect(f.tenants.map((t) => [t.tenant, t.cell, t.status]).sort()).toEqual(
      [
        [ta, 'default', 'completed'],
        [tb, 'b', 'completed'],
        [tc, 'b', 'completed'],
      ].sort(),
    );
  });

  it('one cell stopped affects only its own tenants', async () => {
    await poolB.end();
    await cellB.halt();
    // The default cell's tenant runs its next night as if nothing happened.
    const s = await json<{ ledger: { charges: number } }>(['run', '--tenant', ta, '--as-of', '2026-03-03T12:00:00Z']);
    expect(s.ledger.charges).toBe(0);
    await ok(['outcome', 'list', '--tenant', ta]);

    // b's tenants get one line naming the cell, not a stack trace or "check DATABASE_URL".
    const down = await recon(['outcome', 'list', '--tenant', tb], env);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(
      /^recon: cell_unavailable: cell "b" \(postgres:\/\/[^:]+:\*\*\*@127\.0\.0\.1:\d+\/recon, from \$CELL_B_URL\) does not answer: .*other cells are not affected\n$/,
    );

    const f = await json<{ tenants: Array<{ tenant: string; status: string }> }>([
      'fleet',
      'status',
      '--night',
      '2026-03-03',
    ]);
    expect(Object.fromEntries(f.tenants.map((t) => [t.tenant, t.status]))).toEqual({
      [ta]: 'completed',
      [tb]: 'unreachable',
      [tc]: 'unreachable',
    });
    const cells = await json<Array<{ cell: string; reachable: boolean }>>(['cell', 'list']);
    expect(cells.map((c) => [c.cell, c.reachable])).toEqual([
      ['default', true],
      ['b', false],
    ]);
    // Sync leaves the schedules of a cell it cannot read alone, and says so.
    const sync = await recon(['schedule', 'sync'], env);
    expect(sync.code).toBe(1);
    expect(sync.stdout).toContain('cell b did not answer: its schedules were left as they are');
    expect(sync.stderr).toMatch(/^recon: cell_unavailable: a cell did not answer \(b\)/);
    expect(await schedules.describeSchedule(client, tb)).toMatchObject({ timezone: 'America/New_York' });

    await cellB.resume();
    poolB = createPool(cellB.url, 2);
    await ok(['outcome', 'list', '--tenant', tb]);
  });

  it("a cell can be another database of the default cell's server, created on the way", async () => {
    const r = await ok(['cell', 'add', 'c', '--database', `${dbName}_c`, '--create-database']);
    expect(r.stdout).toMatch(/^cell c added: task queue ".*-c", database from the default cell's server, applied/);
    const cells = await json<Array<{ cell: string; database: string; tenants: number; reachable: boolean }>>([
      'cell',
      'list',
    ]);
    expect(cells.find((c) => c.cell === 'c')).toMatchObject({ tenants: 0, reachable: true });
    expect(cells.find((c) => c.cell === 'c')?.database).toMatch(new RegExp(`/${dbName}_c$`));
  });
});
