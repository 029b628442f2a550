import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { connectClient } from '../../src/temporal/connection';
import { installRuntime } from '../../src/temporal/runtime';
import { bundleWorkflows } from '../../src/temporal/worker';
import { makeStory, type Story } from './data';
import {
  ACTIVITIES,
  connectionDrop,
  disputeWhileDown,
  httpFaults,
  pgClaimsKill,
  postgresRestart,
  pull429,
  pullKill,
  sigkill,
  sink429,
  sink500,
  sinkAmbiguous,
  sinkDown,
  sinkKill,
  temporalRestart,
  type KillRecord,
  type PullFaultRecord,
  type SinkFaultRecord,
} from './faults';
import { runScenario, type FaultHooks } from './scenario';
import { onStopEverything, startFaultStack, type FaultStack } from './stack';
import { compareLedgers } from './compare';
import { pullCountDifferences } from './pulled';

export const STORY_SEED = 20261127;

export interface FaultPlan {
  fault: string;
  seeds: number[];
  hooks(seed: number): FaultHooks;
  /** The runs' name prefix (default: the fault's first word). */
  slug?: string;
  /** The fault stops a server: its runs get their own stack and go one at a time. */
  alone?: boolean;
}

export interface Row {
  fault: string;
  seeds: number;
  recovered: number;
  identical: number;
  sameUpToIds: number;
  duplicates: number;
  lost: number;
  /** Invoice items at the sink beyond one per batch, or that no batch accounts for. */
  sinkDuplicates: number;
  /** Ledger lines the sink does not hold once every debt is settled. */
  sinkLost: number;
  failures: string[];
}

export interface SuiteOptions {
  sigkillSeeds: number;
  temporalSeeds: number;
  postgresSeeds: number;
  dropSeeds: number;
  httpSeeds: number;
  disputeSeeds: number;
  sink500Seeds: number;
  sinkAmbiguousSeeds: number;
  sink429Seeds: number;
  sinkDownSeeds: number;
  sinkKillSeeds: number;
  pullKillSeeds: number;
  pull429Seeds: number;
  pgClaimsKillSeeds: number;
  tickets: number;
  parallel: number;
  /** Fail when the bytes differ even though the ledgers agree up to database-assigned ids. */
  strictBytes: boolean;
  log: (m: string) => void;
}

export interface SuiteResult {
  rows: Row[];
  kills: KillRecord[];
  drops: string[];
  checks: string[];
  sinkFaults: Array<SinkFaultRecord & { fault: string }>;
  pullFaults: Array<PullFaultRecord & { fault: string }>;
  /** What the pulled tenant's reference run pulled (versions, imports, rows). */
  referencePull: string;
  referenceSeconds: number;
  ok: boolean;
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: Math.min(limit, queue.length) }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
    }),
  );
}

/** Runs the reference, then every fault plan, and compares each export to the reference's bytes. */
export async function runSuite(opts: SuiteOptions): Promise<SuiteResult> {
  installRuntime('ERROR');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'recon-faults-'));
  const forget = onStopEverything(() => rm(dir, { recursive: true, force: true }));
  let stack: FaultStack | null = null;
  let client: Client | null = null;
  try {
    // Bundled once here: dozens of worker starts would otherwise each bundle the workflows again.
    const bundle = path.join(dir, 'workflow-bundle.js');
    await writeFile(bundle, (await bundleWorkflows()).code);
    stack = await startFaultStack(dir, opts.log, bundle);
    client = await connectClient(stack.temporal.address, 'default');
    const story: Story = makeStory(STORY_SEED, opts.tickets);
    opts.log(
      `[faults] story: ${opts.tickets} tickets, ${story.claims.length} claim deliveries, ${story.records.length} record versions, ${story.disputes.length} disputes`,
    );
    opts.log(
      `[faults] pulled tenant: ${story.pulled.tickets} Zendesk tickets, ${story.pulled.events.length} changes and claims`,
    );
    const reference = await runScenario(stack, client, story, 'reference', {}, dir, opts.log);
    await writeFile(path.join(dir, 'reference.csv'), reference.csv);
    const rc = reference.pulled.counts;
    const referencePull = `${rc.versions} record versions from ${rc.recordImports} pages (${rc.recordRows} tickets read), ${rc.claims} claims from ${rc.claimImports} pages, ${reference.pulled.csv.toString().split('\r\n').length - 1} export lines, rate-limit waits ${rc.rateLimitWaits} (${rc.rateLimitWaitMs} ms)`;
    opts.log(`[faults] reference pulled tenant: ${referencePull}`);
    if (reference.pulled.duplicates)
      throw new Error(`the reference run's pulled tenant has ${reference.pulled.duplicates} duplicate charges`);
    if (!reference.pulled.csv.toString().includes(',charge,'))
      throw new Error(`the reference run's pulled tenant billed nothing`);
    opts.log(
      `[faults] reference run: ${reference.seconds.toFixed(1)} s, ${reference.csv.toString().split('\r\n').length - 1} export lines`,
    );
    if (reference.duplicates) throw new Error(`the reference run itself has ${reference.duplicates} duplicate charges`);
    if (reference.sink.duplicates || reference.sink.lost || reference.sink.problems.length)
      throw new Error(
        `the reference run's sink differs from its ledger: ${reference.sink.duplicates} duplicates, ${reference.sink.lost} lost; ${reference.sink.problems.join(' | ')}`,
      );
    opts.log(
      `[faults] reference sink: ${reference.sink.items} invoice items for ${reference.sink.batches} batches, equal to the ledger`,
    );

    const kills: KillRecord[] = [];
    const drops: string[] = [];
    const checks: string[] = [];
    const checkFailures: string[] = [];
    const sinkFaults: SuiteResult['sinkFaults'] = [];
    const pullFaults: SuiteResult['pullFaults'] = [];
    const pullRecord = (fault: string) => (r: PullFaultRecord) => {
      pullFaults.push({ ...r, fault });
      if (r.struck === 0) checkFailures.push(`${fault}|seed ${r.seed}: the fault never struck (${r.note})`);
    };
    // A sink fault that never struck a request proves nothing: its run fails.
    const sinkRecord = (fault: string) => (r: SinkFaultRecord) => {
      sinkFaults.push({ ...r, fault });
      if (r.struck === 0) checkFailures.push(`${fault}|seed ${r.seed}: the fault never struck (${r.note})`);
    };
    const plans: FaultPlan[] = [
      {
        fault: 'worker SIGKILL + restart',
        seeds: range(1, opts.sigkillSeeds),
        hooks: (s) => sigkill(s, (k) => kills.push(k)),
      },
      {
        fault: 'connection dropped mid-transaction',
        seeds: range(101, opts.dropSeeds),
        hooks: (s) => connectionDrop(s, (d) => drops.push(d)),
      },
      {
        fault: 'claims HTTP 500/timeout/truncated/replayed page',
        seeds: range(201, opts.httpSeeds),
        hooks: (s) => httpFaults(s),
      },
      {
        fault: 'dispute resolved while worker down',
        seeds: range(301, opts.disputeSeeds),
        hooks: (s) =>
          disputeWhileDown(s, (ok, note) => {
            checks.push(note);
            if (!ok) checkFailures.push(`seed ${s}: ${note}`);
          }),
      },
      {
        fault: 'Temporal dev server stop + restart',
        seeds: range(401, opts.temporalSeeds),
        hooks: (s) => temporalRestart(s),
        alone: true,
      },
      {
        fault: 'PostgreSQL stop + restart',
        seeds: range(501, opts.postgresSeeds),
        hooks: (s) => postgresRestart(s),
        alone: true,
      },
      {
        fault: 'sink 500s',
        slug: 'sink500',
        seeds: range(601, opts.sink500Seeds),
        hooks: (s) => sink500(s, sinkRecord('sink 500s')),
      },
      {
        fault: 'sink accepted, answer lost',
        slug: 'sinkambiguous',
        seeds: range(701, opts.sinkAmbiguousSeeds),
        hooks: (s) => sinkAmbiguous(s, sinkRecord('sink accepted, answer lost')),
      },
      {
        fault: 'sink 429 storm',
        slug: 'sink429',
        seeds: range(801, opts.sink429Seeds),
        hooks: (s) => sink429(s, sinkRecord('sink 429 storm')),
      },
      {
        fault: 'sink down for a night',
        slug: 'sinkdown',
        seeds: range(901, opts.sinkDownSeeds),
        hooks: (s) => sinkDown(s, sinkRecord('sink down for a night')),
      },
      {
        fault: 'worker SIGKILL between sink send and answer',
        slug: 'sinkkill',
        seeds: range(1001, opts.sinkKillSeeds),
        hooks: (s) => sinkKill(s, sinkRecord('worker SIGKILL between sink send and answer')),
      },
      {
        fault: 'worker SIGKILL mid Zendesk pull',
        slug: 'pullkill',
        seeds: range(1101, opts.pullKillSeeds),
        hooks: (s) => pullKill(s, pullRecord('worker SIGKILL mid Zendesk pull')),
      },
      {
        fault: 'Zendesk 429 storm',
        slug: 'pull429',
        seeds: range(1201, opts.pull429Seeds),
        hooks: (s) => pull429(s, pullRecord('Zendesk 429 storm')),
      },
      {
        fault: 'worker SIGKILL reading AI-side claims',
        slug: 'pgclaimskill',
        seeds: range(1301, opts.pgClaimsKillSeeds),
        hooks: (s) => pgClaimsKill(s, pullRecord('worker SIGKILL reading AI-side claims')),
      },
    ];
    const rows = new Map<string, Row>(
      plans.map((p) => [
        p.fault,
        {
          fault: p.fault,
          seeds: p.seeds.length,
          recovered: 0,
          identical: 0,
          sameUpToIds: 0,
          duplicates: 0,
          lost: 0,
          sinkDuplicates: 0,
          sinkLost: 0,
          failures: [],
        },
      ]),
    );
    const runOne = async (on: FaultStack, onClient: Client, plan: FaultPlan, seed: number) => {
      const row = rows.get(plan.fault)!;
      const name = `${
        plan.slug ??
        plan.fault
          .split(' ')[0]
          .toLowerCase()
          .replace(/[^a-z]/g, '')
      }-${seed}`;
      try {
        const run = await runScenario(on, onClient, story, name, plan.hooks(seed), dir, opts.log);
        row.recovered++;
        const fileCmp = compareLedgers(reference.csv, run.csv);
        // The pulled tenant's ledger is held to the same standard, and its pulls to the reference's counts.
        const pulledCmp = compareLedgers(reference.pulled.csv, run.pulled.csv);
        const cmp = {
          identical: fileCmp.identical && pulledCmp.identical,
          sameUpToIds: fileCmp.sameUpToIds && pulledCmp.sameUpToIds,
          duplicates: fileCmp.duplicates + pulledCmp.duplicates,
          lost: fileCmp.lost + pulledCmp.lost,
          summary: [
            fileCmp.identical ? '' : `file tenant: ${fileCmp.summary}`,
            pulledCmp.identical ? '' : `pulled tenant: ${pulledCmp.summary}`,
          ]
            .filter(Boolean)
            .join('; '),
        };
        row.duplicates += run.duplicates + run.pulled.duplicates + cmp.duplicates;
        row.lost += cmp.lost;
        const pullDiff = pullCountDifferences(reference.pulled.counts, run.pulled.counts);
        if (pullDiff.length)
          row.failures.push(`seed ${seed}: the pulled tenant's pulls differ: ${pullDiff.join(', ')}`);
        row.sinkDuplicates += run.sink.duplicates;
        row.sinkLost += run.sink.lost;
        for (const p of run.sink.problems) row.failures.push(`seed ${seed}: sink: ${p}`);
        if (cmp.identical) row.identical++;
        if (cmp.sameUpToIds) row.sameUpToIds++;
        if (!cmp.identical) {
          await writeFile(path.join(dir, `${name}.csv`), run.csv);
          await writeFile(path.join(dir, `${name}-pulled.csv`), run.pulled.csv);
          opts.log(`[faults] ${name}: export bytes differ (${cmp.summary})`);
          if (!cmp.sameUpToIds || opts.strictBytes)
            row.failures.push(
              `seed ${seed}: export differs${cmp.sameUpToIds ? ' (only in database-assigned ids)' : ''}: ${cmp.summary}`,
            );
        }
        opts.log(
          `[faults] ${name}: ${run.seconds.toFixed(1)} s, worker started ${run.workerStarts}×, ledger ${cmp.identical ? 'identical' : cmp.sameUpToIds ? 'identical up to ids' : 'DIFFERENT'}, sink ${run.sink.duplicates + run.sink.lost + run.sink.problems.length === 0 ? 'equal to the ledger' : 'DIFFERENT'} (${run.sink.items} items, settled by ${run.sink.settledBy})`,
        );
      } catch (err) {
        row.failures.push(`seed ${seed}: did not recover: ${(err as Error).message.split('\n')[0]}`);
        opts.log(`[faults] ${name}: FAILED ${(err as Error).stack}`);
      }
    };
    const shared = plans.filter((p) => !p.alone).flatMap((p) => p.seeds.map((s) => [p, s] as const));
    const alone = plans
      .filter((p) => p.alone && p.seeds.length)
      .map(async (p, i) => {
        // A server stopped under one run must not stop the others: a private stack per such fault.
        const own = await startFaultStack(path.join(dir, `stack-${i}`), opts.log, stack!.workflowBundle);
        const ownClient = await connectClient(own.temporal.address, 'default');
        try {
          for (const s of p.seeds) await runOne(own, ownClient, p, s);
        } finally {
          await ownClient.connection.close().catch(() => undefined);
          await own.stop();
        }
      });
    await Promise.all([pool(shared, opts.parallel, ([p, s]) => runOne(stack!, client!, p, s)), ...alone]);

    for (const f of checkFailures) {
      const bar = f.indexOf('|');
      const [fault, rest] = bar >= 0 ? [f.slice(0, bar), f.slice(bar + 1)] : ['dispute resolved while worker down', f];
      rows.get(fault)!.failures.push(rest);
    }
    const covered = new Set(kills.flatMap((k) => k.pendingAtKill.map((p) => p.split(':')[0])));
    const targeted = new Set(kills.map((k) => k.target));
    const missing = opts.sigkillSeeds >= ACTIVITIES.length ? ACTIVITIES.filter((a) => !targeted.has(a)) : [];
    if (missing.length)
      rows.get('worker SIGKILL + restart')!.failures.push(`no kill was aimed at ${missing.join(', ')}`);
    opts.log(`[faults] SIGKILL hit activities in flight: ${[...covered].sort().join(', ') || '(none)'}`);
    const all = [...rows.values()];
    const ok = all.every(
      (r) =>
        r.failures.length === 0 &&
        r.recovered === r.seeds &&
        (opts.strictBytes ? r.identical : r.sameUpToIds) === r.seeds &&
        r.duplicates === 0 &&
        r.lost === 0 &&
        r.sinkDuplicates === 0 &&
        r.sinkLost === 0,
    );
    return {
      rows: all,
      kills,
      drops,
      checks,
      sinkFaults,
      pullFaults,
      referencePull,
      referenceSeconds: reference.seconds,
      ok,
    };
  } finally {
    await client?.connection.close().catch(() => undefined);
    await stack?.stop();
    forget();
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

export function formatRows(rows: Row[]): string {
  const head = [
    'fault',
    'seeds',
    'runs recovered',
    'ledger identical (bytes)',
    'identical up to ids',
    'duplicates found',
    'outcomes lost',
    'sink duplicates',
    'sink lost',
  ];
  const body = rows.map((r) => [
    r.fault,
    String(r.seeds),
    `${r.recovered}/${r.seeds}`,
    `${r.identical}/${r.seeds}`,
    `${r.sameUpToIds}/${r.seeds}`,
    String(r.duplicates),
    String(r.lost),
    String(r.sinkDuplicates),
    String(r.sinkLost),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
