import {
  ScheduleOverlapPolicy,
  ScheduleNotFoundError,
  type Client,
  type ScheduleDescription,
} from '@temporalio/client';
import { reconcileTenant } from '../../workflows';
import { RUN_WORKFLOW_PREFIX } from '../../workflows/messages';
import { msToNumber } from '@temporalio/common';
import { ReconError } from '../domain/errors';
import { planScheduleSync, type ExistingSchedule, type WantedSchedule } from '../domain/fleet';
import { AS_OF_SKEW_MS } from '../reconcile/runs';
import { TENANT_KEY } from './run-client';

export const DEFAULT_CRON = '0 2 * * *';
/** Missed nights older than this are not caught up automatically; use backfill for them. */
export const DEFAULT_CATCHUP = '1 day';

const CRON_FIELDS = [
  { name: 'minute', min: 0, max: 59, names: [] as string[] },
  { name: 'hour', min: 0, max: 23, names: [] as string[] },
  { name: 'day of month', min: 1, max: 31, names: [] as string[] },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'],
  },
  // 7 is Sunday as well as 0, as in most crons and in Temporal's.
  { name: 'day of week', min: 0, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] },
];

/**
 * Five cron fields (minute hour day-of-month month day-of-week), each `*`, a number, a range
 * `a-b`, a step `*\/n` or `a-b/n`, or a list of those; months and weekdays also by name. Checked
 * here because Temporal reads some mistakes (minute 61, day 0) as a schedule that never fires.
 */
export function checkCron(expr: string): void {
  const fields = expr.trim().split(/\s+/);
  const bad = (why: string) =>
    new ReconError(
      'invalid_cron',
      `--cron "${expr}": ${why}; expected five fields: minute hour day-of-month month day-of-week, e.g. "0 2 * * *"`,
    );
  if (fields.length !== 5) throw bad(`${fields.length} ${fields.length === 1 ? 'field' : 'fields'}`);
  fields.forEach((field, i) => {
    const spec = CRON_FIELDS[i];
    const value = (t: string): number => {
      const named = spec.names.indexOf(t.toUpperCase());
      const n = named >= 0 ? named + spec.min : /^\d{1,2}$/.test(t) ? Number(t) : NaN;
      if (!(n >= spec.min && n <= spec.max))
        throw bad(
          `${spec.name} "${t}" is not ${spec.min}-${spec.max}${spec.names.length ? ` or ${spec.names[0]}-${spec.names[spec.names.length - 1]}` : ''}`,
        );
      return n;
    };
    for (const part of field.split(',')) {
      const m = /^([^/]+)(?:\/(\d{1,2}))?$/.exec(part);
      if (!m) throw bad(`${spec.name} "${part}" is not a value, range or step`);
      const [, range, step] = m;
      if (step !== undefined && !(Number(step) >= 1 && Number(step) <= spec.max))
        throw bad(`${spec.name} step "/${step}" is not 1-${spec.max}`);
      if (range === '*') continue;
      const [from, to, extra] = range.split('-');
      if (extra !== undefined || from === '') throw bad(`${spec.name} "${range}" is not a value or range`);
      const a = value(from);
      if (to !== undefined && value(to) < a) throw bad(`${spec.name} range "${range}" runs backwards`);
    }
  });
}

/** Missed nights in an outage are caught up within this window; more is what backfill is for. */
const MIN_CATCHUP_MS = 60_000;
const MAX_CATCHUP_MS = 366 * 24 * 3600_000;

/** The catch-up window as milliseconds: a duration such as "1 day", "12 hours", "90m". */
export function checkCatchupWindow(text: string): number {
  let ms: number;
  try {
    ms = msToNumber(text as Parameters<typeof msToNumber>[0]);
  } catch {
    ms = NaN;
  }
  if (!Number.isFinite(ms))
    throw new ReconError(
      'invalid_catchup',
      `--catchup "${text}" is not a duration; write e.g. "1 day", "12 hours" or "90m"`,
    );
  if (ms < MIN_CATCHUP_MS || ms > MAX_CATCHUP_MS)
    throw new ReconError(
      'invalid_catchup',
      `--catchup "${text}" must be between 1 minute and 366 days; use \`recon schedule backfill\` for older nights`,
    );
  return ms;
}

/** A backfill runs nights that have happened: from before to, and to not after now. */
export function checkBackfillRange(from: Date, to: Date, now: Date): void {
  if (!(from < to))
    throw new ReconError('bad_range', `--from ${from.toISOString()} must be before --to ${to.toISOString()}`);
  if (to.getTime() > now.getTime() + AS_OF_SKEW_MS) {
    throw new ReconError(
      'as_of_in_future',
      `--to ${to.toISOString()} is in the future (now ${now.toISOString()}); a backfill runs only nights that have passed`,
    );
  }
}

/** Every schedule this project makes has this id prefix; sync never looks at any other. */
export const SCHEDULE_PREFIX = 'recon-nightly-';

export function scheduleId(tenant: string): string {
  return `${SCHEDULE_PREFIX}${tenant}`;
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
    if (err instanceof ScheduleNotFoundError)
      throw new ReconError(
        'schedule_not_found',
        `no schedule for tenant ${tenant}: create it with \`recon schedule create --tenant ${tenant}\``,
      );
    throw err;
  }
}

/**
 * One schedule per tenant, nightly at the cron time in the tenant's timezone. A run that is still
 * going when the next night comes is not doubled (SKIP). The workflow takes its business time
 * from the schedule's nominal time, so a late or backfilled run reconciles the right night.
 */
export async function createSchedule(
  client: Client,
  opts: { tenant: string; taskQueue: string; cron?: string; timezone: string; catchupWindow?: string },
): Promise<ScheduleInfo> {
  checkCron(opts.cron ?? DEFAULT_CRON);
  checkCatchupWindow(opts.catchupWindow ?? DEFAULT_CATCHUP);
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
      throw new ReconError(
        'schedule_exists',
        `tenant ${opts.tenant} already has a schedule; delete it first to change it`,
      );
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
  checkBackfillRange(from, to, new Date());
  await (
    await handleFor(client, tenant)
  ).handle.backfill({ start: from, end: to, overlap: ScheduleOverlapPolicy.BUFFER_ALL });
  return describeSchedule(client, tenant);
}

export interface SyncLine {
  tenant: string;
  scheduleId: string;
  result: 'created' | 'updated' | 'unchanged' | 'removed' | 'skipped';
  /** What changed (updated), or why (removed, skipped). */
  detail: string | null;
}

export interface SyncReport {
  dryRun: boolean;
  /** The queues of the cells that answered: only schedules on these were created, changed or removed. */
  taskQueues: string[];
  /** Contracts carry no time of day: new schedules fire at this cron, existing ones keep theirs. */
  newScheduleCron: string;
  lines: SyncLine[];
  totals: Record<SyncLine['result'], number>;
}

/** A schedule made by `schedule create`/`sync`: our id prefix, our workflow and its id. */
function madeByRecon(d: ScheduleDescription): boolean {
  return (
    d.scheduleId.startsWith(SCHEDULE_PREFIX) &&
    d.action.type === 'startWorkflow' &&
    d.action.workflowType === reconcileTenant.name &&
    d.action.workflowId.startsWith(`${RUN_WORKFLOW_PREFIX}-`)
  );
}

/** Runs fn over items with at most `limit` in flight: thousands of describes, not all at once. */
async function boundedMap<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

async function describeOrNull(client: Client, id: string): Promise<ScheduleDescription | null> {
  try {
    return await client.schedule.getHandle(id).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return null;
    throw err;
  }
}

/**
 * Makes every tenant's schedule match the contract in effect now: creates the missing ones,
 * moves a schedule to the contract's timezone, removes those of tenants that are gone or have no
 * contract in effect. Idempotent: a second sync finds everything unchanged. Each schedule is read
 * by id (strongly consistent) rather than trusted from the list, which the server's visibility
 * store may show a moment late; the list only finds schedules of tenants we no longer have.
 * Paused state, catch-up window and time of day are left as they are.
 */
export async function syncSchedules(
  client: Client,
  opts: { tenants: WantedSchedule[]; taskQueues: string[]; dryRun: boolean },
): Promise<SyncReport> {
  const ids = new Set(opts.tenants.map((t) => scheduleId(t.tenant)));
  for await (const s of client.schedule.list()) if (s.scheduleId.startsWith(SCHEDULE_PREFIX)) ids.add(s.scheduleId);
  const described = (await boundedMap([...ids], 16, (id) => describeOrNull(client, id))).filter(
    (d): d is ScheduleDescription => d !== null && madeByRecon(d),
  );
  const byTenant = new Map(described.map((d) => [d.scheduleId.slice(SCHEDULE_PREFIX.length), d]));
  const existing: ExistingSchedule[] = [...byTenant].map(([tenant, d]) => ({
    tenant,
    timezone: d.spec.timezone ?? null,
    taskQueue: d.action.taskQueue,
  }));
  const plan = planScheduleSync(opts.tenants, existing, opts.taskQueues);
  const lines = await boundedMap(plan, 8, async (p): Promise<SyncLine> => {
    const id = scheduleId(p.tenant);
    switch (p.action) {
      case 'create':
        if (!opts.dryRun) {
          try {
            await createSchedule(client, { tenant: p.tenant, taskQueue: p.taskQueue, timezone: p.timezone });
          } catch (err) {
            // Made meanwhile by someone else (a concurrent sync, `schedule create`): theirs stands.
            if (!(err instanceof ReconError && err.code === 'schedule_exists')) throw err;
            return {
              tenant: p.tenant,
              scheduleId: id,
              result: 'unchanged',
              detail: 'created meanwhile by another sync',
            };
          }
        }
        return { tenant: p.tenant, scheduleId: id, result: 'created', detail: `${DEFAULT_CRON} in ${p.timezone}` };
      case 'update':
        if (!opts.dryRun)
          await client.schedule.getHandle(id).update((prev) => ({
            ...prev,
            spec: { ...prev.spec, timezone: p.timezone },
            action: { ...prev.action, taskQueue: p.taskQueue },
          }));
        return { tenant: p.tenant, scheduleId: id, result: 'updated', detail: p.changes.join(', ') };
      case 'remove':
        if (!opts.dryRun) {
          try {
            await client.schedule.getHandle(id).delete();
          } catch (err) {
            if (!(err instanceof ScheduleNotFoundError)) throw err;
          }
        }
        return { tenant: p.tenant, scheduleId: id, result: 'removed', detail: p.why };
      case 'skip':
        return { tenant: p.tenant, scheduleId: id, result: 'skipped', detail: p.why };
      case 'unchanged':
        return { tenant: p.tenant, scheduleId: id, result: 'unchanged', detail: null };
    }
  });
  const totals = { created: 0, updated: 0, unchanged: 0, removed: 0, skipped: 0 };
  for (const l of lines) totals[l.result] += 1;
  return { dryRun: opts.dryRun, taskQueues: opts.taskQueues, newScheduleCron: DEFAULT_CRON, lines, totals };
}

/** Per schedule of ours: its cron (as typed) and the fire times Temporal recorded, for fleet status. */
export interface ScheduleFacts {
  tenant: string;
  cron: string | null;
  paused: boolean;
  recentFires: Date[];
}

/** One list call (paged by the SDK): enough for fleet status, no describe per tenant. */
export async function listScheduleFacts(client: Client): Promise<Map<string, ScheduleFacts>> {
  const out = new Map<string, ScheduleFacts>();
  for await (const s of client.schedule.list()) {
    if (!s.scheduleId.startsWith(SCHEDULE_PREFIX) || s.action?.workflowType !== reconcileTenant.name) continue;
    const tenant = s.scheduleId.slice(SCHEDULE_PREFIX.length);
    const cron = Array.isArray(s.memo?.cron) ? String((s.memo.cron as unknown[])[0]) : null;
    out.set(tenant, {
      tenant,
      cron,
      paused: s.state.paused,
      recentFires: s.info.recentActions.map((a) => a.scheduledAt),
    });
  }
  return out;
}
