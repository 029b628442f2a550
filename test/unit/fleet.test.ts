import { describe, expect, it } from 'vitest';
import {
  classifyNight,
  dueAt,
  fleetOrder,
  lastNight,
  nightWindow,
  planScheduleSync,
  type NightFacts,
} from '../../src/domain/fleet';
import { fleetReport, type FleetNightRow } from '../../src/reconcile/fleet';
import { DEFAULT_WORKER_LIMITS, poolSizeFor, resolveWorkerLimits } from '../../src/temporal/worker';

describe('a night is a calendar day on the tenant wall clock', () => {
  it('starts and ends at local midnight', () => {
    expect(nightWindow('2026-03-02', 'UTC')).toEqual({
      start: new Date('2026-03-02T00:00:00Z'),
      end: new Date('2026-03-03T00:00:00Z'),
    });
    expect(nightWindow('2026-03-02', 'America/New_York')).toEqual({
      start: new Date('2026-03-02T05:00:00Z'),
      end: new Date('2026-03-03T05:00:00Z'),
    });
    expect(nightWindow('2026-03-02', 'Asia/Tokyo')).toEqual({
      start: new Date('2026-03-01T15:00:00Z'),
      end: new Date('2026-03-02T15:00:00Z'),
    });
  });

  it('is 23 hours on the spring DST day and 25 on the autumn one', () => {
    const hours = (n: string) => {
      const w = nightWindow(n, 'America/New_York');
      return (w.end.getTime() - w.start.getTime()) / 3600_000;
    };
    expect(hours('2026-03-08')).toBe(23);
    expect(hours('2026-11-01')).toBe(25);
    expect(hours('2026-11-02')).toBe(24);
  });

  it('refuses what is not a calendar day', () => {
    expect(() => nightWindow('2026-02-30', 'UTC')).toThrow(/not a calendar day/);
    expect(() => nightWindow('yesterday', 'UTC')).toThrow(/YYYY-MM-DD/);
  });

  it('is due at the daily cron time in the tenant timezone, unknown for other crons', () => {
    expect(dueAt('2026-03-02', 'America/New_York', '0 2 * * *')).toEqual(new Date('2026-03-02T07:00:00Z'));
    expect(dueAt('2026-07-02', 'America/New_York', '30 1 * * *')).toEqual(new Date('2026-07-02T05:30:00Z'));
    expect(dueAt('2026-03-02', 'Asia/Tokyo', '0 2 * * *')).toEqual(new Date('2026-03-01T17:00:00Z'));
    expect(dueAt('2026-03-02', 'UTC', '0 2 * * 1-5')).toBeNull();
    expect(dueAt('2026-03-02', 'UTC', null)).toBeNull();
  });

  it('last night is the latest day whose 02:00 has passed in every timezone', () => {
    expect(lastNight(new Date('2026-11-29T11:50:00Z'))).toBe('2026-11-28');
    expect(lastNight(new Date('2026-11-29T14:00:00Z'))).toBe('2026-11-29');
    // 02:00 at UTC-12 on the 29th is 14:00 UTC on the 29th.
    expect(dueAt('2026-11-29', 'Etc/GMT+12', '0 2 * * *')).toEqual(new Date('2026-11-29T14:00:00Z'));
  });
});

describe('a tenant night is classified from its run, its due time and its schedule', () => {
  const base: NightFacts = {
    run: null,
    dueAt: new Date('2026-03-02T07:00:00Z'),
    firedAt: null,
    hasSchedule: true,
    nightEnd: new Date('2026-03-03T05:00:00Z'),
    now: new Date('2026-03-02T08:00:00Z'),
    lateAfterMs: 2 * 3600_000,
  };
  const at = (iso: string) => new Date(iso);

  it('completed and failed runs say so whatever the clock', () => {
    expect(classifyNight({ ...base, run: { status: 'completed', startedAt: at('2026-03-02T07:00:00Z') } }).status).toBe(
      'completed',
    );
    expect(classifyNight({ ...base, run: { status: 'failed', startedAt: at('2026-03-02T07:00:00Z') } }).status).toBe(
      'failed',
    );
  });

  it('a running run is late once the threshold has passed since it was due', () => {
    const run = { status: 'running', startedAt: at('2026-03-02T07:01:00Z') };
    expect(classifyNight({ ...base, run }).status).toBe('running');
    const late = classifyNight({ ...base, run, now: at('2026-03-02T09:30:00Z') });
    expect(late.status).toBe('late');
    expect(late.why).toMatch(/still running 150 min/);
  });

  it('a fired schedule with no run row is running, then late (no worker?)', () => {
    const firedAt = at('2026-03-02T07:00:00Z');
    expect(classifyNight({ ...base, firedAt }).status).toBe('running');
    const late = classifyNight({ ...base, firedAt, now: at('2026-03-02T09:01:00Z') });
    expect(late).toMatchObject({ status: 'late' });
    expect(late.why).toMatch(/worker/);
  });

  it('no run: scheduled until the threshold passes, then missing', () => {
    expect(classifyNight({ ...base, now: at('2026-03-02T06:00:00Z') }).status).toBe('scheduled');
    expect(classifyNight({ ...base, now: at('2026-03-02T08:59:00Z') }).status).toBe('scheduled');
    expect(classifyNight({ ...base, now: at('2026-03-02T09:01:00Z') }).status).toBe('missing');
    expect(classifyNight({ ...base, hasSchedule: false, dueAt: null }).why).toMatch(/no schedule/);
    expect(classifyNight({ ...base, hasSchedule: false, dueAt: null }).status).toBe('missing');
  });

  it('sorts problems first', () => {
    const lines = [
      { tenant: 'a', status: 'completed' as const },
      { tenant: 'b', status: 'missing' as const },
      { tenant: 'c', status: 'failed' as const },
      { tenant: 'd', status: 'late' as const },
      { tenant: 'e', status: 'running' as const },
    ];
    expect(lines.sort(fleetOrder).map((l) => l.tenant)).toEqual(['c', 'd', 'b', 'e', 'a']);
  });

  it('the report takes the failure cause from the run and counts every status', () => {
    const row = (tenant: string, run: FleetNightRow['run']): FleetNightRow => ({
      tenant,
      timezone: 'UTC',
      nightStart: at('2026-03-02T00:00:00Z'),
      nightEnd: at('2026-03-03T00:00:00Z'),
      run,
      runsInNight: run ? 1 : 0,
      pendingDeliveries: 0,
      deliveriesNeedingAttention: 0,
      disputesPastSla: tenant === 'ok' ? 2 : 0,
    });
    const run = (status: string, code: string | null = null) => ({
      runId: 1,
      asOf: at('2026-03-02T02:00:00Z'),
      status,
      startedAt: at('2026-03-02T02:00:00Z'),
      finishedAt: null,
      failureCode: code,
      failureMessage: code ? 'the price does not fit' : null,
      charges: 3,
      amountMinor: 450,
      amount: '4.50',
      currency: 'USD',
    });
    const schedule = (tenant: string) => ({ tenant, cron: '0 2 * * *', paused: false, recentFires: [] });
    const r = fleetReport({
      night: '2026-03-02',
      rows: [row('ok', run('completed')), row('bad', run('failed', 'amount_out_of_range')), row('none', null)],
      schedules: new Map(['ok', 'bad', 'none'].map((t) => [t, schedule(t)])),
      now: at('2026-03-05T00:00:00Z'),
      lateAfterMs: 2 * 3600_000,
    });
    expect(r.tenants.map((t) => [t.tenant, t.status])).toEqual([
      ['bad', 'failed'],
      ['none', 'missing'],
      ['ok', 'completed'],
    ]);
    expect(r.tenants[0].why).toBe('amount_out_of_range: the price does not fit');
    expect(r.totals).toMatchObject({ completed: 1, failed: 1, missing: 1, late: 0, running: 0 });
  });
});

describe('schedule sync plan', () => {
  const q = 'outcome-recon';
  it('creates, updates the timezone, keeps, removes, and leaves other queues alone', () => {
    const plan = planScheduleSync(
      [
        { tenant: 'new', timezone: 'UTC', taskQueue: q },
        { tenant: 'moved', timezone: 'Asia/Tokyo', taskQueue: q },
        { tenant: 'same', timezone: 'Europe/Paris', taskQueue: q },
        { tenant: 'notyet', timezone: null, taskQueue: q },
        { tenant: 'elsewhere', timezone: 'UTC', taskQueue: q },
      ],
      [
        { tenant: 'moved', timezone: 'America/New_York', taskQueue: q },
        { tenant: 'same', timezone: 'Europe/Paris', taskQueue: q },
        { tenant: 'notyet', timezone: 'UTC', taskQueue: q },
        { tenant: 'gone', timezone: 'UTC', taskQueue: q },
        { tenant: 'elsewhere', timezone: 'UTC', taskQueue: 'cell-2' },
        { tenant: 'other-cell', timezone: 'UTC', taskQueue: 'cell-2' },
      ],
      [q],
    );
    expect(plan.map((p) => [p.tenant, p.action])).toEqual([
      ['elsewhere', 'skip'],
      ['gone', 'remove'],
      ['moved', 'update'],
      ['new', 'create'],
      ['notyet', 'remove'],
      ['same', 'unchanged'],
    ]);
    expect(plan.find((p) => p.tenant === 'moved')).toMatchObject({
      changes: ['timezone America/New_York → Asia/Tokyo'],
    });
  });

  it("gives each tenant its cell's queue, and touches nothing of a cell that did not answer", () => {
    const plan = planScheduleSync(
      [
        { tenant: 'a', timezone: 'UTC', taskQueue: q },
        { tenant: 'b', timezone: 'UTC', taskQueue: `${q}-eu` },
        { tenant: 'misfiled', timezone: 'UTC', taskQueue: `${q}-eu` },
      ],
      [
        { tenant: 'a', timezone: 'UTC', taskQueue: q },
        { tenant: 'misfiled', timezone: 'UTC', taskQueue: q },
        // Cell "us" is down: its tenants are not among the wanted ones, yet their schedules stay.
        { tenant: 'c', timezone: 'UTC', taskQueue: `${q}-us` },
      ],
      [q, `${q}-eu`],
    );
    expect(plan).toEqual([
      { tenant: 'a', action: 'unchanged' },
      { tenant: 'b', action: 'create', timezone: 'UTC', taskQueue: `${q}-eu` },
      {
        tenant: 'misfiled',
        action: 'update',
        timezone: 'UTC',
        taskQueue: `${q}-eu`,
        changes: [`task queue ${q} → ${q}-eu`],
      },
    ]);
  });

  it('is a fixed point: applying it leaves nothing to do', () => {
    const tenants = [
      { tenant: 'a', timezone: 'UTC', taskQueue: q },
      { tenant: 'b', timezone: 'Asia/Tokyo', taskQueue: `${q}-eu` },
    ];
    const after = tenants.map((t) => ({ tenant: t.tenant, timezone: t.timezone, taskQueue: t.taskQueue }));
    expect(planScheduleSync(tenants, after, [q, `${q}-eu`]).every((p) => p.action === 'unchanged')).toBe(true);
  });
});

describe('worker limits', () => {
  it('flags beat the environment, which beats the defaults', () => {
    expect(resolveWorkerLimits({}, {})).toEqual(DEFAULT_WORKER_LIMITS);
    expect(
      resolveWorkerLimits(
        { maxConcurrentActivities: '8' },
        { RECON_MAX_CONCURRENT_ACTIVITIES: '2', RECON_MAX_ACTIVITIES_PER_SECOND: '5' },
      ),
    ).toEqual({ maxConcurrentActivities: 8, maxConcurrentWorkflowTasks: 10, maxActivitiesPerSecond: 5 });
    expect(resolveWorkerLimits({}, { RECON_MAX_TASK_QUEUE_ACTIVITIES_PER_SECOND: '0.5' })).toMatchObject({
      maxTaskQueueActivitiesPerSecond: 0.5,
    });
  });

  it('refuses nonsense in one line naming the flag and its variable', () => {
    expect(() => resolveWorkerLimits({ maxConcurrentActivities: '0' }, {})).toThrow(
      /--max-concurrent-activities \(RECON_MAX_CONCURRENT_ACTIVITIES\) must be at least 1/,
    );
    expect(() => resolveWorkerLimits({}, { RECON_MAX_CONCURRENT_ACTIVITIES: 'many' })).toThrow(/must be a number/);
    expect(() => resolveWorkerLimits({ maxConcurrentWorkflowTasks: '1' }, {})).toThrow(/at least 2/);
    expect(() => resolveWorkerLimits({ maxActivitiesPerSecond: '-1' }, {})).toThrow(/above 0/);
  });

  it('sizes the pool so that every admitted activity has its connections', () => {
    expect(poolSizeFor(DEFAULT_WORKER_LIMITS)).toBe(9);
    expect(poolSizeFor({ ...DEFAULT_WORKER_LIMITS, maxConcurrentActivities: 2 })).toBe(5);
  });
});
