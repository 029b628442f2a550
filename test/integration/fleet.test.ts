import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { Client } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { createPool, type Pool } from '../../src/db/pool';
import { migrate } from '../../src/db/migrate';
import { applyContract } from '../../src/db/contracts';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { connectClient, connectWorker } from '../../src/temporal/connection';
import { installRuntime } from '../../src/temporal/runtime';
import { runReconciliation } from '../../src/temporal/run-client';
import * as schedules from '../../src/temporal/schedules';
import { createWorker } from '../../src/temporal/worker';
import { HELPDESK_HEADER } from '../support/fixtures';
import { recon } from '../support/recon-cli';
import { loadExampleContract, uniqueTenant, writeLines } from './harness';

interface SyncJson {
  lines: Array<{ tenant: string; result: string; detail: string | null }>;
  totals: Record<string, number>;
}
interface FleetJson {
  night: string;
  tenants: Array<{
    tenant: string;
    status: string;
    why: string | null;
    run: { charges: number | null; amount: string | null; failure_code: string | null } | null;
  }>;
  totals: Record<string, number>;
}

/**
 * The fleet commands read every tenant of the database and every schedule of the task queue, so
 * this file has a database of its own (in the shared server) and a worker on its own queue: the
 * tenants of other test files are not its fleet.
 */
describe('fleet operations: schedule sync and fleet status', () => {
  const dbName = `recon_fleet_${randomUUID().slice(0, 8)}`;
  const taskQueue = `it-fleet-${randomUUID()}`;
  const otherQueue = `it-other-${randomUUID()}`;
  const [a, b, c] = [uniqueTenant('fleet-a'), uniqueTenant('fleet-b'), uniqueTenant('fleet-c')];
  const gone = uniqueTenant('fleet-gone');
  const notYet = uniqueTenant('fleet-later');
  const foreign = uniqueTenant('fleet-foreign');
  let admin: Pool;
  let pool: Pool;
  let client: Client;
  let connection: NativeConnection;
  let worker: Worker;
  let running: Promise<void>;
  let env: NodeJS.ProcessEnv;
  let dir: string;

  const sync = async (...extra: string[]): Promise<SyncJson> => {
    const r = await recon(['schedule', 'sync', '--json', ...extra], env);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as SyncJson;
  };
  const resultOf = (s: SyncJson) => Object.fromEntries(s.lines.map((l) => [l.tenant, l.result]));
  const exists = (tenant: string) =>
    schedules.describeSchedule(client, tenant).then(
      (i) => i,
      () => null,
    );

  async function seedBillable(tenant: string): Promise<void> {
    const claims = await writeLines(dir, `${tenant}-claims.csv`, [
      'claim_id,outcome_type,subject_ref,occurred_at',
      'k1,resolved_ticket,T-1,2026-02-20T10:00:00Z',
      'k2,resolved_ticket,T-2,2026-02-20T10:00:00Z',
    ]);
    await importClaimsFile(pool, { tenant, file: claims });
    const records = await writeLines(dir, `${tenant}-tickets.csv`, [
      HELPDESK_HEADER,
      'T-1,solved,2026-02-20T11:00:00Z,2026-02-20T11:00:00Z,5',
      'T-2,solved,2026-02-20T11:00:00Z,2026-02-20T11:00:00Z,5',
    ]);
    await importRecordsFile(pool, { tenant, source: 'helpdesk', file: records });
  }

  beforeAll(async () => {
    installRuntime('WARN');
    admin = createPool(inject('databaseUrl'), 1);
    await admin.query(`create database ${dbName}`);
    const url = new URL(inject('databaseUrl'));
    url.pathname = `/${dbName}`;
    pool = createPool(url.toString());
    await migrate(pool);
    dir = await mkdtemp(path.join(os.tmpdir(), 'recon-fleet-'));
    for (const t of [a, b, c]) await applyContract(pool, await loadExampleContract(t));
    // Onboarded, but its contract starts next year: no schedule until then.
    await applyContract(pool, await loadExampleContract(notYet, { effectiveFrom: '2099-01-01T00:00:00Z' }));
    client = await connectClient(inject('temporalAddress'), 'default');
    connection = await connectWorker(inject('temporalAddress'));
    worker = await createWorker({
      connection,
      namespace: 'default',
      taskQueue,
      deps: { pool },
      bundle: { codePath: inject('workflowBundlePath') },
    });
    running = worker.run();
    env = { DATABASE_URL: url.toString(), TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_TASK_QUEUE: taskQueue };
  });

  afterAll(async () => {
    for (const t of [a, b, c, gone, notYet, foreign]) await schedules.deleteSchedule(client, t).catch(() => undefined);
    worker?.shutdown();
    await running;
    await connection?.close();
    await client?.connection.close();
    await pool?.end();
    await admin?.query(`drop database if exists ${dbName} with (force)`);
    await admin?.end();
  });

  it('creates one schedule per tenant with a contract in effect, in its timezone', async () => {
    const s = await sync();
    expect(resultOf(s)).toEqual({ [a]: 'created', [b]: 'created', [c]: 'created' });
    expect(s.totals).toMatchObject({ created: 3, updated: 0, unchanged: 0, removed: 0 });
    for (const t of [a, b, c])
      expect(await exists(t)).toMatchObject({ timezone: 'America/New_York', cron: ['0 2 * * *'] });
  });

  it('a new contract version in another timezone updates only that tenant; a second sync changes nothing', async () => {
    await applyContract(
      pool,
      await loadExampleContract(b, {
        effectiveFrom: new Date(Date.now() - 60_000).toISOString(),
        timezone: 'Asia/Tokyo',
      }),
    );
    const human = await recon(['schedule', 'sync'], env);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain(`updated   ${b} · timezone America/New_York → Asia/Tokyo`);
    expect(human.stdout).toMatch(/0 created, 1 updated, 2 unchanged, 0 removed, 0 skipped/);
    const info = await exists(b);
    expect(info).toMatchObject({ timezone: 'Asia/Tokyo', cron: ['0 2 * * *'] });
    // The time of day is kept: the next run is at 02:00 in Tokyo.
    const next = new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Tokyo', hour: '2-digit', minute: '2-digit' });
    expect(next.format(new Date(info!.nextRuns[0]))).toBe('02:00');
    const again = await sync();
    expect(resultOf(again)).toEqual({ [a]: 'unchanged', [b]: 'unchanged', [c]: 'unchanged' });
    expect(again.totals).toMatchObject({ created: 0, updated: 0, removed: 0 });
  });

  it('removes schedules of tenants that are gone or have no contract in effect, never another queue', async () => {
    // A tenant leaves by its row leaving this database (there is no offboarding verb); its
    // schedule stays behind. Another tenant never had a contract in effect.
    await schedules.createSchedule(client, { tenant: gone, taskQueue, timezone: 'UTC' });
    await schedules.createSchedule(client, { tenant: notYet, taskQueue, timezone: 'UTC' });
    await schedules.createSchedule(client, { tenant: foreign, taskQueue: otherQueue, timezone: 'UTC' });
    const dry = await sync('--dry-run');
    expect(resultOf(dry)).toMatchObject({ [gone]: 'removed', [notYet]: 'removed' });
    expect(await exists(gone)).not.toBeNull();
    const s = await sync();
    expect(resultOf(s)).toEqual({
      [a]: 'unchanged',
      [b]: 'unchanged',
      [c]: 'unchanged',
      [gone]: 'removed',
      [notYet]: 'removed',
    });
    expect(s.lines.find((l) => l.tenant === notYet)?.detail).toBe('no contract in effect');
    expect(await exists(gone)).toBeNull();
    expect(await exists(notYet)).toBeNull();
    expect(await exists(foreign)).toMatchObject({ timezone: 'UTC' });
    expect(resultOf(await sync())).toEqual({ [a]: 'unchanged', [b]: 'unchanged', [c]: 'unchanged' });
  });

  it('fleet status: one tenant completed, one failed with its cause, one missing, problems first', async () => {
    await seedBillable(a);
    await seedBillable(c);
    // A unit price the ledger cannot hold fails c's night for good (as in run-failure.test.ts).
    await pool.query(
      `update contracts set body = jsonb_set(body, '{outcomeTypes,resolved_ticket,unitPrice}', to_jsonb('99999999999999999999'::text)) where tenant_id = $1`,
      [c],
    );
    // 12:00 UTC on 2 March is 07:00 in New York: inside a's and c's night of 2026-03-02.
    const asOf = new Date('2026-03-02T12:00:00Z');
    const done = await runReconciliation(client, { tenant: a, asOf, taskQueue, timeoutMs: 120_000 });
    expect(done.ledger.charges).toBe(2);
    await expect(runReconciliation(client, { tenant: c, asOf, taskQueue, timeoutMs: 120_000 })).rejects.toThrow();

    const r = await recon(['fleet', 'status', '--night', '2026-03-02', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const f = JSON.parse(r.stdout) as FleetJson;
    expect(f.night).toBe('2026-03-02');
    expect(f.tenants.map((t) => [t.tenant, t.status])).toEqual([
      [c, 'failed'],
      [b, 'missing'],
      [a, 'completed'],
    ]);
    expect(f.totals).toMatchObject({ completed: 1, failed: 1, missing: 1, late: 0, running: 0 });
    const { rows } = await pool.query<{ failure_code: string }>('select failure_code from runs where tenant_id = $1', [
      c,
    ]);
    expect(f.tenants[0].why).toContain(`${rows[0].failure_code}: `);
    expect(f.tenants[2].run).toMatchObject({ charges: 2 });
    expect(f.tenants[2].run?.amount).toBe(done.ledger.amount);

    const human = await recon(['fleet', 'status', '--night', '2026-03-02'], env);
    const lines = human.stdout.trim().split('\n');
    expect(lines[1]).toMatch(new RegExp(`^failed +${c} · ${rows[0].failure_code}: `));
    expect(lines[2]).toMatch(new RegExp(`^missing +${b} · due 2026-03-01T17:00:00.000Z, no run`));
    expect(lines[3]).toContain(`completed ${a} · 2 charges, ${done.ledger.amount} USD`);
    expect(lines[4]).toBe('1 failed, 1 missing, 1 completed');

    const bad = await recon(['fleet', 'status', '--night', '2026-02-30'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^recon: invalid_night: /);
  });
});
