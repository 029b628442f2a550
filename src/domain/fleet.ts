import { TZDate } from '@date-fns/tz';
import { ReconError } from './errors';

/**
 * A tenant's night D is the calendar day D on the tenant's own wall clock: the scheduled run fires
 * inside it (02:00 local by default) and takes its fire time as asOf, so the runs of night D are the
 * runs whose asOf falls in [start, end). A DST day is 23 or 25 hours long.
 */
export function nightWindow(night: string, timeZone: string): { start: Date; end: Date } {
  const [y, m, d] = parseNight(night);
  const start = new TZDate(y, m - 1, d, 0, 0, 0, 0, timeZone);
  const end = new TZDate(y, m - 1, d + 1, 0, 0, 0, 0, timeZone);
  return { start: new Date(start.getTime()), end: new Date(end.getTime()) };
}

function parseNight(night: string): [number, number, number] {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(night);
  const parts = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [];
  const check = m ? new Date(Date.UTC(parts[0], parts[1] - 1, parts[2])) : null;
  if (!check || check.getUTCMonth() !== parts[1] - 1 || check.getUTCDate() !== parts[2])
    throw new ReconError('invalid_night', `--night "${night}" is not a calendar day; write it as YYYY-MM-DD`);
  return parts as [number, number, number];
}

/**
 * When the schedule fires on night D: only a daily cron ("M H * * *") names one time; any other
 * cron (several times, some weekdays) gives null and the night is judged by its runs alone.
 */
export function dueAt(night: string, timeZone: string, cron: string | null): Date | null {
  const m = cron ? /^(\d{1,2})\s+(\d{1,2})\s+\*\s+\*\s+\*$/.exec(cron.trim()) : null;
  if (!m) return null;
  const [y, mo, d] = parseNight(night);
  return new Date(new TZDate(y, mo - 1, d, Number(m[2]), Number(m[1]), 0, 0, timeZone).getTime());
}

/**
 * "Last night" when none is named: the latest day whose 02:00 (the default schedule time) has
 * passed on every wall clock from UTC+14 to UTC-12, i.e. the UTC date of now minus 14 hours. Any
 * other day is asked for with --night; a tenant whose run of that day is not yet due shows as
 * scheduled, not missing.
 */
export function lastNight(now: Date): string {
  return new Date(now.getTime() - 14 * 3600_000).toISOString().slice(0, 10);
}

/** unreachable: the tenant's cell does not answer, so its night cannot be told from here. */
export const FLEET_STATUSES = [
  'unreachable',
  'failed',
  'late',
  'missing',
  'running',
  'scheduled',
  'completed',
] as const;
export type FleetStatus = (typeof FLEET_STATUSES)[number];

export interface NightFacts {
  run: { status: string; startedAt: Date } | null;
  /** The schedule's fire time for this night (null: no schedule, or not a daily cron). */
  dueAt: Date | null;
  /** Temporal recorded a start for this night (it keeps the last few only; null when unknown). */
  firedAt: Date | null;
  hasSchedule: boolean;
  nightEnd: Date;
  now: Date;
  lateAfterMs: number;
}

/**
 * One tenant's night, from what is known: its run row (latest asOf of the night), its schedule's
 * due time and Temporal's record of starting it. Late: started (or due) more than lateAfterMs ago
 * and not finished. Missing: nothing ran and nothing is going to within the night.
 */
export function classifyNight(f: NightFacts): { status: FleetStatus; why: string | null } {
  const age = (t: Date) => f.now.getTime() - t.getTime();
  const mins = (ms: number) => `${Math.round(ms / 60_000)} min`;
  if (f.run?.status === 'completed') return { status: 'completed', why: null };
  if (f.run?.status === 'failed') return { status: 'failed', why: null };
  if (f.run) {
    const since = f.dueAt && f.dueAt < f.run.startedAt ? f.dueAt : f.run.startedAt;
    return age(since) > f.lateAfterMs
      ? { status: 'late', why: `still running ${mins(age(since))} after ${since.toISOString()}` }
      : { status: 'running', why: null };
  }
  if (f.firedAt) {
    return age(f.firedAt) > f.lateAfterMs
      ? {
          status: 'late',
          why: `the schedule started it at ${f.firedAt.toISOString()} and no run has reported in ${mins(age(f.firedAt))} (is a worker polling?)`,
        }
      : { status: 'running', why: `started by the schedule at ${f.firedAt.toISOString()}` };
  }
  if (!f.hasSchedule)
    return f.now < f.nightEnd
      ? { status: 'missing', why: 'no schedule: nothing will run tonight (`recon schedule sync`)' }
      : { status: 'missing', why: 'no run and no schedule (`recon schedule sync`)' };
  if (f.dueAt && age(f.dueAt) <= f.lateAfterMs) return { status: 'scheduled', why: `due ${f.dueAt.toISOString()}` };
  if (!f.dueAt && f.now < f.nightEnd) return { status: 'scheduled', why: 'the night is not over' };
  return {
    status: 'missing',
    why: f.dueAt ? `due ${f.dueAt.toISOString()}, no run (schedule paused, or Temporal did not start it?)` : 'no run',
  };
}

/** Problems first (failed, late, missing), then the rest; by tenant within a status. */
export function fleetOrder(a: { status: FleetStatus; tenant: string }, b: { status: FleetStatus; tenant: string }) {
  return FLEET_STATUSES.indexOf(a.status) - FLEET_STATUSES.indexOf(b.status) || a.tenant.localeCompare(b.tenant);
}

// ---- schedule sync ---------------------------------------------------------------------------

export interface WantedSchedule {
  tenant: string;
  /** The timezone of the contract in effect now; null: no contract in effect, no schedule. */
  timezone: string | null;
  /** The task queue of the tenant's cell: its runs start there. */
  taskQueue: string;
}

export interface ExistingSchedule {
  tenant: string;
  timezone: string | null;
  taskQueue: string;
}

export type SyncAction =
  | { tenant: string; action: 'create'; timezone: string; taskQueue: string }
  | { tenant: string; action: 'update'; timezone: string; taskQueue: string; changes: string[] }
  | { tenant: string; action: 'unchanged' }
  | { tenant: string; action: 'remove'; why: string }
  | { tenant: string; action: 'skip'; why: string };

/**
 * What sync does, tenant by tenant. Only schedules this deployment made are given here (our id
 * prefix and workflow). `ourQueues` are the task queues of the cells that answered: a schedule on
 * one of them is ours to fix or remove; one on any other queue belongs to another deployment, or
 * to a cell that did not answer, and is left alone and named. The time of day is not in the
 * contract: it is never changed here.
 */
export function planScheduleSync(
  tenants: WantedSchedule[],
  existing: ExistingSchedule[],
  ourQueues: readonly string[],
): SyncAction[] {
  const ours = new Set(ourQueues);
  const byTenant = new Map(existing.map((s) => [s.tenant, s]));
  const known = new Set(tenants.map((t) => t.tenant));
  const out: SyncAction[] = [];
  for (const t of tenants) {
    const s = byTenant.get(t.tenant);
    if (s && s.taskQueue !== t.taskQueue && !ours.has(s.taskQueue)) {
      out.push({
        tenant: t.tenant,
        action: 'skip',
        why: `its schedule starts runs on task queue "${s.taskQueue}", not "${t.taskQueue}": left alone; \`recon schedule delete --tenant ${t.tenant}\` and sync again to move it`,
      });
    } else if (t.timezone === null) {
      if (s) out.push({ tenant: t.tenant, action: 'remove', why: 'no contract in effect' });
    } else if (!s) {
      out.push({ tenant: t.tenant, action: 'create', timezone: t.timezone, taskQueue: t.taskQueue });
    } else if ((s.timezone ?? 'UTC') !== t.timezone || s.taskQueue !== t.taskQueue) {
      const changes = [
        ...((s.timezone ?? 'UTC') !== t.timezone ? [`timezone ${s.timezone ?? 'UTC'} → ${t.timezone}`] : []),
        ...(s.taskQueue !== t.taskQueue ? [`task queue ${s.taskQueue} → ${t.taskQueue}`] : []),
      ];
      out.push({ tenant: t.tenant, action: 'update', timezone: t.timezone, taskQueue: t.taskQueue, changes });
    } else {
      out.push({ tenant: t.tenant, action: 'unchanged' });
    }
  }
  for (const s of existing) {
    if (!known.has(s.tenant) && ours.has(s.taskQueue))
      out.push({ tenant: s.tenant, action: 'remove', why: 'no such tenant' });
  }
  return out.sort((a, b) => a.tenant.localeCompare(b.tenant));
}
