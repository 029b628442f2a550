import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';

const MB = 1024 * 1024;

/** A /proc/PID/status figure in MB (VmRSS now, VmHWM the peak since the process started). */
function procMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0; // the process has gone
  }
}

/**
 * Peak RSS per phase, sampled every 200 ms: this process (imports, in-process worker) and any
 * child worker processes. A phase's peak includes what earlier phases left behind (RSS rarely
 * shrinks), so the baseline before each phase is kept too.
 */
export class RssSampler {
  private timer: NodeJS.Timeout;
  private phase = 'setup';
  readonly peaks = new Map<string, { baseline: number; self: number; children: number }>();
  constructor(private readonly children: () => number[]) {
    this.timer = setInterval(() => this.sample(), 200);
    this.timer.unref();
  }
  enter(phase: string): void {
    this.phase = phase;
    const self = process.memoryUsage().rss / MB;
    this.peaks.set(phase, { baseline: self, self, children: 0 });
    this.sample();
  }
  private sample(): void {
    const p = this.peaks.get(this.phase);
    if (!p) return;
    p.self = Math.max(p.self, process.memoryUsage().rss / MB);
    for (const pid of this.children()) p.children = Math.max(p.children, procMb(pid, 'VmRSS'));
  }
  /** The kernel's own high-water mark of a child: catches peaks between two samples. */
  static childPeak(pid: number): number {
    return procMb(pid, 'VmHWM');
  }
  stop(): void {
    this.sample();
    clearInterval(this.timer);
  }
}

/** The SDK sends at most one heartbeat per activity per throttle interval: min(80% of heartbeatTimeout, 60 s) = 60 s here. */
const HEARTBEAT_THROTTLE_S = 60;

/** Heartbeat calls an activity made, from its result: one per chunk (or claim page). */
function heartbeatCalls(result: { payloads?: Array<{ data?: Uint8Array | null }> | null } | null | undefined): number {
  const data = result?.payloads?.[0]?.data;
  if (!data) return 0;
  try {
    const r = JSON.parse(Buffer.from(data).toString('utf8')) as { chunks?: unknown; pages?: unknown };
    return typeof r.chunks === 'number' ? r.chunks : typeof r.pages === 'number' ? r.pages : 0;
  } catch {
    return 0; // an encoded payload: not counted
  }
}

export interface TemporalActions {
  runs: number;
  /** Activities that needed more than one attempt (history shows only the last), with why. */
  retried: Array<{ activity: string; attempt: number; failure: string }>;
  /** Wall seconds per activity type, from its (last) start to its completion: where the run's time goes. */
  activitySeconds: Record<string, number>;
  events: number;
  byType: Record<string, number>;
  /** Billable kinds only: workflow starts (incl. continue-as-new), activities, timers, signals, updates, markers. */
  actions: number;
  /** Heartbeat calls the activities made (one per chunk), and how many the SDK's throttle lets reach the server at most. */
  heartbeatCalls: number;
  heartbeatsSent: number;
}

const BILLABLE = [
  'workflowExecutionStarted',
  'activityTaskScheduled',
  'timerStarted',
  'workflowExecutionSignaled',
  'workflowExecutionUpdateAccepted',
  'markerRecorded',
  'startChildWorkflowExecutionInitiated',
];

/** Walks the run's continue-as-new chain backwards from the latest execution and counts history events by type. */
export async function countWorkflowEvents(client: Client, workflowId: string): Promise<TemporalActions> {
  const byType: Record<string, number> = {};
  const retried: TemporalActions['retried'] = [];
  const activitySeconds: Record<string, number> = {};
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
    t ? Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6 : 0;
  let runId: string | undefined;
  let runs = 0;
  let events = 0;
  let calls = 0;
  let sent = 0;
  do {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    runs++;
    runId = undefined;
    const names = new Map<string, string>();
    const startedAt = new Map<string, number>();
    for (const e of history.events ?? []) {
      events++;
      // Each event carries exactly one `<type>EventAttributes` field; its name is the event type.
      const attr = Object.keys(e).find(
        (k) => k.endsWith('EventAttributes') && (e as Record<string, unknown>)[k] != null,
      );
      const type = attr ? attr.replace(/EventAttributes$/, '') : 'unknown';
      byType[type] = (byType[type] ?? 0) + 1;
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled) names.set(String(e.eventId), scheduled.activityType?.name ?? '?');
      const started = e.activityTaskStartedEventAttributes;
      if (started) startedAt.set(String(started.scheduledEventId), ms(e.eventTime));
      const completed = e.activityTaskCompletedEventAttributes;
      if (completed) {
        const name = names.get(String(completed.scheduledEventId)) ?? '?';
        const took = (ms(e.eventTime) - (startedAt.get(String(completed.scheduledEventId)) ?? ms(e.eventTime))) / 1000;
        activitySeconds[name] = (activitySeconds[name] ?? 0) + took;
        const n = heartbeatCalls(completed.result);
        calls += n;
        sent += Math.min(n, 1 + Math.floor(took / HEARTBEAT_THROTTLE_S));
      }
      if (started && (started.attempt ?? 1) > 1) {
        retried.push({
          activity: names.get(String(started.scheduledEventId)) ?? '?',
          attempt: started.attempt!,
          failure: started.lastFailure?.message ?? '',
        });
      }
      if (type === 'workflowExecutionStarted')
        runId = e.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
    }
  } while (runId);
  const actions = BILLABLE.reduce((s, t) => s + (byType[t] ?? 0), 0);
  return { runs, retried, activitySeconds, events, byType, actions, heartbeatCalls: calls, heartbeatsSent: sent };
}

/** Seconds of CPU by process group, read from /proc: where a phase's wall time went. */
export interface CpuSeconds {
  bench: number;
  workers: number;
  postgres: number;
  temporal: number;
}

const TICKS_PER_S = 100; // USER_HZ on Linux

interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** utime + stime, and the same for children already reaped by this process. */
  own: number;
  reaped: number;
}

function procStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command may contain spaces and parentheses: the fields start after the last ')'.
    const close = text.lastIndexOf(')');
    const f = text.slice(close + 2).split(' ');
    return {
      pid,
      comm: text.slice(text.indexOf('(') + 1, close),
      ppid: Number(f[1]),
      own: (Number(f[11]) + Number(f[12])) / TICKS_PER_S,
      reaped: (Number(f[13]) + Number(f[14])) / TICKS_PER_S,
    };
  } catch {
    return undefined; // gone
  }
}

function allProcs(): ProcStat[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => procStat(Number(d)))
    .filter((p): p is ProcStat => p !== undefined);
}

/**
 * CPU of the benchmark process, its worker processes, the embedded PostgreSQL (the postmaster,
 * its live backends and the backends it has already reaped) and the Temporal dev server. Taken
 * before and after a phase, the difference says whether Node or the database was the bound.
 */
export function cpuSnapshot(opts: { workerPids: number[]; pgDataDir: string }): CpuSeconds {
  const usage = process.cpuUsage();
  const procs = allProcs();
  let postgres = 0;
  try {
    const postmaster = Number(readFileSync(path.join(opts.pgDataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    for (const p of procs) {
      if (p.pid === postmaster) postgres += p.own + p.reaped;
      else if (p.ppid === postmaster) postgres += p.own;
    }
  } catch {
    // DATABASE_URL from the environment: the server is not ours to measure
  }
  const workers = procs.filter((p) => opts.workerPids.includes(p.pid)).reduce((s, p) => s + p.own, 0);
  const temporal = procs
    .filter((p) => p.ppid === process.pid && p.comm.startsWith('temporal'))
    .reduce((s, p) => s + p.own, 0);
  return { bench: (usage.user + usage.system) / 1e6, workers, postgres, temporal };
}

export function cpuSince(before: CpuSeconds, after: CpuSeconds): CpuSeconds {
  return {
    bench: after.bench - before.bench,
    workers: after.workers - before.workers,
    postgres: after.postgres - before.postgres,
    temporal: after.temporal - before.temporal,
  };
}
