import { ScheduleOverlapPolicy, ScheduleNotFoundError, type Client, type ScheduleDescription } from '@temporalio/client';
import { reconcileTenant } from '../../workflows';
import { RUN_WORKFLOW_PREFIX } from '../../workflows/messages';
import { ReconError } from '../domain/errors';
import { TENANT_KEY } from './run-client';

export const DEFAULT_CRON = '0 2 * * *';
/** Missed nights older than this are not caught up automatically; use backfill for them. */
export const DEFAULT_CATCHUP = '1 day';

export function scheduleId(tenant: string): string {
  return `recon-nightly-${tenant}`;
}

export interface ScheduleInfo {
  scheduleId: string;
  tenant: string;
  cron: string[];
  timezone: string | null;
  paused: boolean;
  note: string | null;
  overlap: string;
  catchupWindowMs: number;
  nextRuns: string[];
  recentRuns: Array<{ scheduledAt: string; startedAt: string; workflowId: string }>;
}

function toInfo(tenant: string, d: ScheduleDescription): ScheduleInfo {
  return {
    scheduleId: d.scheduleId,
    tenant,
    cron: Array.isArray(d.memo?.cron) ? (d.memo.cron as string[]) : [],
    timezone: d.spec.timezone ?? null,
    paused: d.state.paused,
    note: d.state.note ?? null,
    overlap: String(d.policies.overlap),
    catchupWindowMs: d.policies.catchupWindow,
    nextRuns: d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
    recentRuns: d.info.recentActions.slice(-5).map((a) => ({
      scheduledAt: a.scheduledAt.toISOString(),
      startedAt: a.takenAt.toISOString(),
      workflowId: a.action.workflow.workflowId,
    })),
  };
}

async function handleFor(client: Client, tenant: string) {
  const handle = client.schedule.getHandle(scheduleId(tenant));
  try {
    return { handle, description: await handle.describe() };
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw new ReconError('schedule_not_found', `no schedule for tenant ${tenant}: create it with \`recon schedule create --tenant ${tenant}\``);
    throw err;
  }
}

/**
 * One schedule per tenant, nightly at the cron time in the tenant's timezone. A run that is still
 * going when the next night comes is not doubled (SKIP). The workflow takes its business time
 * from the schedule's nominal time, so a late or backfilled run reconciles the right night.
 */
export async function createSchedule(client: Client, opts: { tenant: string; taskQueue: string; cron?: string; timezone: string; catchupWindow?: string }): Promise<ScheduleInfo> {
  try {
    await client.schedule.create({
      scheduleId: scheduleId(opts.tenant),
      spec: { cronExpressions: [opts.cron ?? DEFAULT_CRON], timezone: opts.timezone },
      action: {
        type: 'startWorkflow',
        workflowType: reconcileTenant,
        workflowId: `${RUN_WORKFLOW_PREFIX}-${opts.tenant}-scheduled`,
        taskQueue: opts.taskQueue,
        args: [{ tenant: opts.tenant }],
        typedSearchAttributes: [{ key: TENANT_KEY, value: opts.tenant }],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: opts.catchupWindow ?? DEFAULT_CATCHUP },
      // The server keeps cron as calendar specs; the memo keeps what the operator typed.
      memo: { cron: [opts.cron ?? DEFAULT_CRON] },
      state: { note: `nightly reconciliation of ${opts.tenant}` },
    });
  } catch (err) {
    if ((err as Error).name === 'ScheduleAlreadyRunning') {
      throw new ReconError('schedule_exists', `tenant ${opts.tenant} already has a schedule; delete it first to change it`);
    }
    throw err;
  }
  return describeSchedule(client, opts.tenant);
}

export async function describeSchedule(client: Client, tenant: string): Promise<ScheduleInfo> {
  return toInfo(tenant, (await handleFor(client, tenant)).description);
}

export async function pauseSchedule(client: Client, tenant: string, note: string): Promise<ScheduleInfo> {
  await (await handleFor(client, tenant)).handle.pause(note);
  return describeSchedule(client, tenant);
}

export async function unpauseSchedule(client: Client, tenant: string, note: string): Promise<ScheduleInfo> {
  await (await handleFor(client, tenant)).handle.unpause(note);
  return describeSchedule(client, tenant);
}

export async function triggerSchedule(client: Client, tenant: string): Promise<ScheduleInfo> {
  await (await handleFor(client, tenant)).handle.trigger(ScheduleOverlapPolicy.SKIP);
  return describeSchedule(client, tenant);
}

export async function deleteSchedule(client: Client, tenant: string): Promise<{ scheduleId: string; deleted: true }> {
  await (await handleFor(client, tenant)).handle.delete();
  return { scheduleId: scheduleId(tenant), deleted: true };
}

/** Missed nights run one after another (BUFFER_ALL), each with its own nominal time as asOf. */
export async function backfillSchedule(client: Client, tenant: string, from: Date, to: Date): Promise<ScheduleInfo> {
  if (!(from < to)) throw new ReconError('bad_range', `--from ${from.toISOString()} must be before --to ${to.toISOString()}`);
  await (await handleFor(client, tenant)).handle.backfill({ start: from, end: to, overlap: ScheduleOverlapPolicy.BUFFER_ALL });
  return describeSchedule(client, tenant);
}
