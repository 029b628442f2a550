import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { applyContract, contractForRun, loadContractVersions } from '../../src/db/contracts';
import { createPool, inTransaction, type Pool } from '../../src/db/pool';
import type { ContractVersion } from '../../src/domain/contract';
import type { PeriodUsage } from '../../src/domain/pricing/schema';
import { recordAlerts } from '../../src/reconcile/alerts';
import { startRun } from '../../src/reconcile/runs';
import { loadExampleContract, uniqueTenant } from './harness';

// recordAlerts on its own, against the real alerts table: what postChunk relies on when it calls
// it inside its transaction (the full path is covered by pricing.test.ts and the property test).

const TYPE = 'resolved_ticket';
const AS_OF = new Date('2026-03-10T06:00:00Z');
const EMPTY: PeriodUsage = { count: 0, usageMinor: 0, capped: 0 };

let pool: Pool;
let tenant: string;
let runId: number;
let current: ContractVersion;

beforeAll(async () => {
  pool = createPool(inject('databaseUrl'));
  tenant = uniqueTenant('alerts');
  const base = await loadExampleContract(tenant);
  const { unitPrice: _flat, ...terms } = base.outcomeTypes[TYPE];
  await applyContract(pool, {
    ...base,
    outcomeTypes: {
      [TYPE]: { ...terms, pricing: { tiers: [{ unitPrice: '1' }], cap: { amount: '10.00' }, alerts: [0.5, 0.8, 1] } },
    },
  });
  current = contractForRun(await loadContractVersions(pool, tenant), AS_OF);
  runId = await startRun(pool, { tenant, asOf: AS_OF, workflowId: `alerts-${tenant}` });
});
afterAll(async () => {
  await pool?.end();
});

const record = (period: string, before: PeriodUsage, after: PeriodUsage) => (db: Parameters<typeof recordAlerts>[0]) =>
  recordAlerts(db, {
    tenant,
    runId,
    period,
    at: AS_OF,
    current,
    before: new Map([[TYPE, before]]),
    after: new Map([[TYPE, after]]),
  });

async function alertsOf(period: string) {
  const { rows } = await pool.query<{ threshold: number; basis: string; usage: number; limit: number; run: number }>(
    `select threshold::float as threshold, basis, usage_minor::int as usage, limit_minor::int as "limit", run_id::int as run
       from alerts where tenant_id = $1 and period = $2 order by alert_id`,
    [tenant, period],
  );
  return rows;
}

describe('recordAlerts', () => {
  it('records every threshold one step crosses, in ascending order of alert id, and each once', async () => {
    await inTransaction(pool, record('2026-03', EMPTY, { count: 10, usageMinor: 1000, capped: 0 }));
    const expected = [0.5, 0.8, 1].map((threshold) => ({
      threshold,
      basis: 'cap',
      usage: 1000,
      limit: 1000,
      run: runId,
    }));
    expect(await alertsOf('2026-03')).toEqual(expected);
    // The same step again (a retried chunk) records nothing new.
    await inTransaction(pool, record('2026-03', EMPTY, { count: 10, usageMinor: 1000, capped: 0 }));
    expect(await alertsOf('2026-03')).toEqual(expected);
  });

  it('records nothing when the transaction it runs in rolls back', async () => {
    const crash = inTransaction(pool, async (db) => {
      await record('2026-04', EMPTY, { count: 9, usageMinor: 900, capped: 0 })(db);
      throw new Error('the chunk failed after its alerts');
    });
    await expect(crash).rejects.toThrow('the chunk failed after its alerts');
    expect(await alertsOf('2026-04')).toEqual([]);
    // The retry that commits records them.
    await inTransaction(pool, record('2026-04', EMPTY, { count: 9, usageMinor: 900, capped: 0 }));
    expect((await alertsOf('2026-04')).map((a) => a.threshold)).toEqual([0.5, 0.8]);
  });

  it('records nothing for a step that crosses no threshold, or a type the contract does not price', async () => {
    await inTransaction(
      pool,
      record('2026-05', { count: 1, usageMinor: 100, capped: 0 }, { count: 4, usageMinor: 400, capped: 0 }),
    );
    await inTransaction(pool, (db) =>
      recordAlerts(db, {
        tenant,
        runId,
        period: '2026-05',
        at: AS_OF,
        current,
        before: new Map(),
        after: new Map([['unknown_type', { count: 10, usageMinor: 1000, capped: 0 }]]),
      }),
    );
    expect(await alertsOf('2026-05')).toEqual([]);
  });
});
