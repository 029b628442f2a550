import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as schedules from '../../src/temporal/schedules';
import { applyExample, startHarness, uniqueTenant, type Harness } from './harness';

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('nightly schedule on the real Temporal server', () => {
  let h: Harness;
  const tenant = uniqueTenant('sched');
  const runs = async () =>
    (
      await h.pool.query<{ as_of: Date; status: string }>(
        `select as_of, status from runs where tenant_id = $1 order by as_of`,
        [tenant],
      )
    ).rows;

  beforeAll(async () => {
    h = await startHarness();
    await applyExample(h.pool, tenant);
  });
  afterAll(async () => {
    await schedules.deleteSchedule(h.client, tenant).catch(() => undefined);
    await h?.stop();
  });

  it('is created nightly in the tenant timezone with overlap SKIP and an explicit catch-up window', async () => {
    const info = await schedules.createSchedule(h.client, {
      tenant,
      taskQueue: h.taskQueue,
      timezone: 'America/New_York',
    });
    expect(info).toMatchObject({
      scheduleId: `recon-nightly-${tenant}`,
      cron: ['0 2 * * *'],
      timezone: 'America/New_York',
      paused: false,
      catchupWindowMs: 86_400_000,
    });
    expect(info.overlap).toMatch(/SKIP/);
    // The next run is at 02:00 New York time, whatever the season.
    const next = new Date(info.nextRuns[0]);
    const local = new Intl.DateTimeFormat('en-US', {
      timeZone: 'America/New_York',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    }).format(next);
    expect(local).toBe('02:00');
    await expect(
      schedules.createSchedule(h.client, { tenant, taskQueue: h.taskQueue, timezone: 'UTC' }),
    ).rejects.toThrow(/already has a schedule/);
  });

  it('trigger starts a run that completes', async () => {
    await schedules.triggerSchedule(h.client, tenant);
    const done = await waitFor('the triggered run', async () => {
      const r = await runs();
      return r.length === 1 && r[0].status === 'completed' ? r : undefined;
    });
    expect(done).toHaveLength(1);
  });

  it('backfill runs each missed night with its own nominal time as asOf', async () => {
    await schedules.backfillSchedule(
      h.client,
      tenant,
      new Date('2026-03-01T00:00:00Z'),
      new Date('2026-03-03T12:00:00Z'),
    );
    const all = await waitFor('three backfilled runs', async () => {
      const r = (await runs()).filter((x) => x.as_of.getTime() < Date.parse('2026-04-01T00:00:00Z'));
      return r.length === 3 && r.every((x) => x.status === 'completed') ? r : undefined;
    });
    expect(all.map((r) => r.as_of.toISOString())).toEqual([
      '2026-03-01T07:00:00.000Z',
      '2026-03-02T07:00:00.000Z',
      '2026-03-03T07:00:00.000Z',
    ]);
  });

  it('pauses, unpauses and deletes', async () => {
    expect((await schedules.pauseSchedule(h.client, tenant, 'maintenance')).paused).toBe(true);
    expect((await schedules.unpauseSchedule(h.client, tenant, 'back')).paused).toBe(false);
    await schedules.deleteSchedule(h.client, tenant);
    await expect(schedules.describeSchedule(h.client, tenant)).rejects.toThrow(/no schedule for tenant/);
  });
});
