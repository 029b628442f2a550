import type { SinkFigures } from './sink';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LedgerCheck } from './floor';
import type { CpuSeconds, TemporalActions } from './probes';

export interface Phase {
  side: 'project' | 'floor';
  name: string;
  seconds: number;
  /** Peak RSS of the process doing the phase (MB): the benchmark process for imports and export, the worker processes for the run. */
  rssMb?: number;
  /** CPU seconds each process group spent during the phase (project phases). */
  cpu?: CpuSeconds;
  note?: string;
}

export interface BenchResult {
  claims: number;
  existing: number;
  workers: number;
  claimLines: number;
  recordRows: number;
  phases: Phase[];
  project_s: number;
  floor_s: number;
  /** CPU seconds of the whole floor (its own process and the database). */
  floor_cpu: CpuSeconds;
  /** Project / floor, the night's sink writes and delivery included (when there is a sink). */
  ratio: number;
  /** The same without the night's delivery step (deliverToSinks): what the floor also leaves out. */
  ratio_without_delivery: number;
  /** The sink the night delivered to, or none (--sink none). */
  delivery: string;
  worker_peak_rss_mb: number;
  claims_per_s: number;
  temporal_actions: number;
  temporal: TemporalActions & { progressQueries: number; chunkSize: number };
  ledger: { project: LedgerCheck; floor: LedgerCheck; expected: number; agree: boolean };
  generate_s: number;
  date: string;
  machine: { cpus: number; memoryGb: number; node: string };
  /** With --sink: what the night's delivery did. */
  sink?: SinkFigures;
}

const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);
const sec = (s: number) => s.toFixed(2);

export function formatTable(r: BenchResult): string {
  const rows = [['side', 'phase', 'wall s', 'claims/s', 'peak RSS MB', 'CPU s node/pg/temporal', '']];
  for (const p of r.phases) {
    rows.push([
      p.side,
      p.name,
      sec(p.seconds),
      Math.round(r.claims / p.seconds).toLocaleString('en-US'),
      p.rssMb ? p.rssMb.toFixed(0) : '',
      p.cpu ? cpuCell(p.cpu) : '',
      p.note ?? '',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row: string[]) =>
    row
      .map((c, i) => (i >= 2 && i <= 5 ? lpad(c, widths[i]) : pad(c, widths[i])))
      .join('  ')
      .trimEnd();
  const t = r.temporal;
  const types = Object.entries(t.byType)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const l = r.ledger;
  return [
    `claims ${r.claims.toLocaleString('en-US')} (${r.claimLines.toLocaleString('en-US')} lines), record rows ${r.recordRows.toLocaleString('en-US')}, existing outcomes ${r.existing.toLocaleString('en-US')}, workers ${r.workers}, chunk size ${t.chunkSize}`,
    '',
    line(rows[0]),
    ...rows.slice(1).map(line),
    '',
    `project total   ${sec(r.project_s)} s   (${Math.round(r.claims_per_s).toLocaleString('en-US')} claims/s)`,
    `floor total     ${sec(r.floor_s)} s   (CPU s node/pg/temporal ${cpuCell(r.floor_cpu)})`,
    r.delivery === 'none'
      ? `ratio           ${r.ratio.toFixed(2)}  (project / floor; no sink: --sink none)`
      : `ratio           ${r.ratio.toFixed(2)}  (project / floor, with the outbox and delivery to ${r.delivery}); ${r.ratio_without_delivery.toFixed(2)} without the delivery step`,
    `worker peak RSS ${r.worker_peak_rss_mb.toFixed(0)} MB`,
    `temporal        ${r.temporal_actions} actions = history actions ${t.actions} + heartbeats sent ~${t.heartbeatsSent} (at most; ${t.heartbeatCalls} heartbeat calls, one per chunk, throttled by the SDK to one a minute per activity); ${t.runs} execution(s), ${t.events} events; progress queries ${t.progressQueries} (not in history)`,
    `                events: ${types}`,
    `                activity seconds: ${Object.entries(t.activitySeconds)
      .map(([k, v]) => `${k} ${v.toFixed(2)}`)
      .join(', ')}`,
    ...(t.retried.length
      ? [
          `                retried activities: ${t.retried.map((x) => `${x.activity} attempt ${x.attempt} (${x.failure})`).join('; ')}`,
        ]
      : []),
    `ledger          project ${l.project.count} charges, ${l.project.totalMinor} minor units; floor ${l.floor.count} charges, ${l.floor.totalMinor} minor units; generator expects ${l.expected}` +
      `; same outcomes: ${l.project.fingerprint === l.floor.fingerprint ? 'yes' : 'NO'} -> ${l.agree ? 'agree' : 'MISMATCH'}`,
  ].join('\n');
}

/** Node is the benchmark process plus the worker processes: whichever ran the phase. */
function cpuCell(c: CpuSeconds): string {
  return `${(c.bench + c.workers).toFixed(1)} / ${c.postgres.toFixed(1)} / ${c.temporal.toFixed(1)}`;
}

export async function writeResults(r: BenchResult, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'latest.json');
  await writeFile(file, JSON.stringify(r, null, 2) + '\n');
  return file;
}

export function machine(): BenchResult['machine'] {
  return { cpus: os.cpus().length, memoryGb: Math.round(os.totalmem() / 1024 ** 3), node: process.version };
}
