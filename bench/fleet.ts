import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import { z } from 'zod';
import { createPool, type Pool } from '../src/db/pool';
import { applyContract } from '../src/db/contracts';
import { ContractSchema, formatZodIssues } from '../src/domain/contract';
import { importClaimsFile, importRecordsFile } from '../src/ingest/files';
import { startLocalStack } from '../src/stack/local-stack';
import { connectClient } from '../src/temporal/connection';
import { installRuntime } from '../src/temporal/runtime';
import { cachedWorkflowBundle, resolveWorkerLimits } from '../src/temporal/worker';
import { AS_OF_KEY, TENANT_KEY } from '../src/temporal/run-client';
import { reconcileTenant } from '../workflows';
import { runWorkflowId } from '../workflows/messages';
import { AS_OF, generate } from './generate';
import { RssSampler, countWorkflowEvents, cpuSince, cpuSnapshot } from './probes';
import { startChildWorker, stopChild } from './run';
import { startTeardown } from './teardown';

/**
 * `--tenants N`: the same data set spread over N tenants with a Zipf-like skew (a few large
 * tenants, many small ones), every tenant's night started at once, beside the same claims as one
 * tenant. The question it answers: what does a tenant cost beyond its claims?
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXAMPLE = path.join(ROOT, 'examples', 'contract.acme.json');
const SINGLE = 'single';
const TASK_QUEUE = 'recon-bench';
/** Zipf exponent: tenant k weighs 1/(k+1)^s. */
const SKEW = 1.1;
/** Histories fetched to estimate Temporal actions per tenant-night: fetching all thousand adds nothing. */
const SAMPLE = 20;

const Args = z.object({
  tenants: z.coerce.number().int().min(1).max(100_000),
  claims: z.coerce.number().int().min(100).max(10_000_000).default(100_000),
});

const log = (m: string) => process.stderr.write(`${m}\n`);
const seconds = (t0: number) => (performance.now() - t0) / 1000;
export const tenantId = (k: number) => `t${String(k + 1).padStart(4, '0')}`;

/** Cumulative Zipf weights, so a uniform draw maps to a tenant by binary search. */
function zipfCdf(n: number, s: number): number[] {
  const w = Array.from({ length: n }, (_, k) => 1 / Math.pow(k + 1, s));
  const total = w.reduce((a, b) => a + b, 0);
  let acc = 0;
  return w.map((x) => (acc += x / total));
}

/** A fixed integer hash (splitmix-like), so a ticket lands on the same tenant on every run and machine. */
function unit(n: number): number {
  let x = (n ^ 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return ((x ^ (x >>> 16)) >>> 0) / 2 ** 32;
}

function tenantOf(cdf: number[], ticket: number): number {
  const u = unit(ticket);
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid] > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * The ticket number a line belongs to: its subject (duplicates name another ticket, in another
 * case or padded), else its claim id (retractions, mangled lines). A claim and its ticket's
 * records share the number, so they land on the same tenant; lines without one go to tenant 0.
 */
function claimTicket(line: string): number {
  try {
    const c = JSON.parse(line) as { subject_ref?: unknown; claim_id?: unknown };
    const m = /(\d{8})/.exec(
      typeof c.subject_ref === 'string' ? c.subject_ref : typeof c.claim_id === 'string' ? c.claim_id : '',
    );
    if (m) return Number(m[1]);
  } catch {
    // a truncated line: fall back to the claim id in its text
  }
  const m = /c-(\d{8})/.exec(line);
  return m ? Number(m[1]) : 0;
}

async function* lines(file: string): AsyncGenerator<string> {
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) yield line;
}

/** Splits the generated files into one claims file and one records file per tenant. */
async function split(
  dir: string,
  claimsFile: string,
  recordsFile: string,
  n: number,
): Promise<Array<{ claims: string; records: string; claimLines: number }>> {
  const cdf = zipfCdf(n, SKEW);
  const claims: string[][] = Array.from({ length: n }, () => []);
  const records: string[][] = Array.from({ length: n }, () => []);
  for await (const line of lines(claimsFile)) if (line) claims[tenantOf(cdf, claimTicket(line))].push(line);
  let header = '';
  for await (const line of lines(recordsFile)) {
    if (!header) {
      header = line;
      continue;
    }
    const m = /^T-(\d{8}),/.exec(line);
    records[tenantOf(cdf, m ? Number(m[1]) : 0)].push(line);
  }
  const out = [];
  for (let k = 0; k < n; k++) {
    const c = path.join(dir, `${tenantId(k)}.jsonl`);
    const r = path.join(dir, `${tenantId(k)}.csv`);
    await writeFile(c, claims[k].length ? claims[k].join('\n') + '\n' : '');
    await writeFile(r, [header, ...records[k]].join('\r\n') + '\r\n');
    out.push({ claims: c, records: r, claimLines: claims[k].length });
  }
  return out;
}

async function chargesOf(pool: Pool, tenants: string[]): Promise<{ count: number; totalMinor: number }> {
  const {
    rows: [r],
  } = await pool.query<{ count: number; total: string }>(
    `select count(*)::int as count, coalesce(sum(amount_minor), 0)::text as total
       from ledger_entries where tenant_id = any($1) and kind = 'charge'`,
    [tenants],
  );
  return { count: r.count, totalMinor: Number(r.total) };
}

/** ANALYZEs of the night's shared tables so far, by sessions and by autovacuum. */
async function analyzeCounts(pool: Pool): Promise<{ manual: number; auto: number }> {
  const {
    rows: [r],
  } = await pool.query<{ manual: number; auto: number }>(
    `select coalesce(sum(analyze_count), 0)::int as manual, coalesce(sum(autoanalyze_count), 0)::int as auto
       from pg_stat_user_tables where relname in ('claims', 'outcomes', 'records', 'record_versions')`,
  );
  return r;
}

/**
 * Where one tenant-night's wall time went, from its history's event times: activities running,
 * activities scheduled but waiting for a worker slot, workflow tasks waiting and running; the rest
 * is the server's own bookkeeping between them (timers, none here) and round trips.
 */
interface NightTimes {
  wall: number;
  activityRun: number;
  activityWait: number;
  workflowTaskWait: number;
  workflowTaskRun: number;
  activities: number;
  workflowTasks: number;
}

async function nightTimes(client: Client, workflowId: string): Promise<NightTimes> {
  const t: NightTimes = {
    wall: 0,
    activityRun: 0,
    activityWait: 0,
    workflowTaskWait: 0,
    workflowTaskRun: 0,
    activities: 0,
    workflowTasks: 0,
  };
  const ms = (x: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
    x ? Number(x.seconds ?? 0) * 1000 + (x.nanos ?? 0) / 1e6 : 0;
  let runId: string | undefined;
  do {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    runId = undefined;
    const at = new Map<string, number>();
    let first = Infinity;
    let last = 0;
    for (const e of history.events ?? []) {
      const when = ms(e.eventTime);
      first = Math.min(first, when);
      last = Math.max(last, when);
      at.set(String(e.eventId), when);
      const aStarted = e.activityTaskStartedEventAttributes;
      if (aStarted) t.activityWait += when - (at.get(String(aStarted.scheduledEventId)) ?? when);
      const aDone = e.activityTaskCompletedEventAttributes;
      if (aDone) {
        t.activities++;
        t.activityRun += when - (at.get(String(aDone.startedEventId)) ?? when);
      }
      const wStarted = e.workflowTaskStartedEventAttributes;
      if (wStarted) t.workflowTaskWait += when - (at.get(String(wStarted.scheduledEventId)) ?? when);
      const wDone = e.workflowTaskCompletedEventAttributes;
      if (wDone) {
        t.workflowTasks++;
        t.workflowTaskRun += when - (at.get(String(wDone.startedEventId)) ?? when);
      }
      if (e.workflowExecutionStartedEventAttributes)
        runId = e.workflowExecutionStartedEventAttributes.continuedExecutionRunId || undefined;
    }
    t.wall += last - first;
  } while (runId);
  for (const k of ['wall', 'activityRun', 'activityWait', 'workflowTaskWait', 'workflowTaskRun'] as const) t[k] /= 1000;
  return t;
}

export async function runFleet(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { tenants: { type: 'string' }, claims: { type: 'string' } },
    strict: true,
  });
  const parsed = Args.safeParse(values);
  if (!parsed.success) {
    log(`bench: ${formatZodIssues(parsed.error)}`);
    return 2;
  }
  const args = parsed.data;
  installRuntime();
  const teardown = startTeardown(log);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'recon-fleet-'));
  teardown.add(() => rm(dir, { recursive: true, force: true }));
  try {
    log(`[bench] generating ${args.claims} claims, spreading them over ${args.tenants} tenants`);
    await mkdir(path.join(dir, 'data'));
    await mkdir(path.join(dir, 'tenants'));
    const data = await generate(path.join(dir, 'data'), args.claims);
    const parts = await split(path.join(dir, 'tenants'), data.claimsFile, data.recordsFile, args.tenants);
    const sizes = parts.map((p) => p.claimLines).sort((a, b) => b - a);

    const stack = await startLocalStack({ dir, persistent: false, ui: false, log });
    teardown.add(() => stack.stop());
    const pool = createPool(stack.databaseUrl);
    teardown.add(() => pool.end());
    const example = JSON.parse(await readFile(EXAMPLE, 'utf8')) as Record<string, unknown>;
    const tenants = parts.map((_, k) => tenantId(k));
    for (const tenant of [SINGLE, ...tenants]) await applyContract(pool, ContractSchema.parse({ ...example, tenant }));

    log('[bench] importing every tenant’s files, then the single tenant’s');
    const tImport = performance.now();
    for (let k = 0; k < parts.length; k++) {
      await importClaimsFile(pool, { tenant: tenants[k], file: parts[k].claims, now: AS_OF });
      await importRecordsFile(pool, { tenant: tenants[k], source: 'helpdesk', file: parts[k].records, now: AS_OF });
    }
    const fleetImportSeconds = seconds(tImport);
    const tSingleImport = performance.now();
    await importClaimsFile(pool, { tenant: SINGLE, file: data.claimsFile, now: AS_OF });
    await importRecordsFile(pool, { tenant: SINGLE, source: 'helpdesk', file: data.recordsFile, now: AS_OF });
    const singleImportSeconds = seconds(tSingleImport);

    const client = await connectClient(stack.temporalAddress, 'default');
    teardown.add(() => client.connection.close());
    await cachedWorkflowBundle();
    const child = await startChildWorker(
      {
        ...process.env,
        DATABASE_URL: stack.databaseUrl,
        TEMPORAL_ADDRESS: stack.temporalAddress,
        TEMPORAL_NAMESPACE: 'default',
        TEMPORAL_TASK_QUEUE: TASK_QUEUE,
      },
      [],
    );
    teardown.add(() => stopChild(child));
    const rss = new RssSampler(() => [child.pid!]);
    const cpu = () =>
      cpuSnapshot({ workerPids: [child.pid!], pgDataDir: stack.postgresDataDir ?? path.join(dir, 'pgdata') });
    const asOf = AS_OF.toISOString();
    const night = async (names: string[]) => {
      const analyzedBefore = await analyzeCounts(pool);
      const before = cpu();
      const t0 = performance.now();
      const handles = await Promise.all(
        names.map((tenant) =>
          client.workflow.start(reconcileTenant, {
            taskQueue: TASK_QUEUE,
            workflowId: runWorkflowId(tenant, asOf),
            args: [{ tenant, asOf }],
            workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
            workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
            typedSearchAttributes: [
              { key: TENANT_KEY, value: tenant },
              { key: AS_OF_KEY, value: AS_OF },
            ],
          }),
        ),
      );
      // A thousand-tenant night runs for minutes: say how far it has got.
      let done = 0;
      const progress = setInterval(
        () => log(`[bench]   ${done}/${names.length} nights done after ${seconds(t0).toFixed(0)} s`),
        15_000,
      );
      try {
        await Promise.all(handles.map((h) => h.result().then(() => done++)));
      } finally {
        clearInterval(progress);
      }
      const took = seconds(t0);
      const usage = cpuSince(before, cpu());
      const analyzedAfter = await analyzeCounts(pool);
      return {
        seconds: took,
        cpu: usage,
        analyzes: {
          manual: analyzedAfter.manual - analyzedBefore.manual,
          auto: analyzedAfter.auto - analyzedBefore.auto,
        },
      };
    };

    // The single tenant first, while the worker is fresh: the fleet night cannot borrow its warm-up.
    log('[bench] single-tenant night');
    rss.enter('single');
    const single = await night([SINGLE]);
    log(`[bench] fleet night: ${tenants.length} workflows started at once`);
    rss.enter('fleet');
    const fleet = await night(tenants);
    rss.stop();
    const workerPeak = RssSampler.childPeak(child.pid!);

    const sample = tenants
      .filter((_, k) => k % Math.max(1, Math.floor(tenants.length / SAMPLE)) === 0)
      .slice(0, SAMPLE);
    const counted = [];
    for (const t of sample) counted.push(await countWorkflowEvents(client, runWorkflowId(t, asOf)));
    const meanActions = counted.reduce((s, e) => s + e.actions + e.heartbeatsSent, 0) / counted.length;
    const singleEvents = await countWorkflowEvents(client, runWorkflowId(SINGLE, asOf));
    const times: NightTimes[] = [];
    for (const t of sample) times.push(await nightTimes(client, runWorkflowId(t, asOf)));
    const mean = (k: keyof NightTimes) => times.reduce((s, x) => s + x[k], 0) / times.length;

    const fleetCharges = await chargesOf(pool, tenants);
    const singleCharges = await chargesOf(pool, [SINGLE]);
    const agree = fleetCharges.count === singleCharges.count && fleetCharges.totalMinor === singleCharges.totalMinor;

    const f = (x: number, d = 1) => x.toFixed(d);
    // The child worker resolves the same environment.
    const limits = resolveWorkerLimits({}, process.env);
    const rows: Array<[string, string]> = [
      [
        'tenants',
        `${args.tenants} (largest ${sizes[0]} claim lines, median ${sizes[Math.floor(sizes.length / 2)]}, smallest ${sizes[sizes.length - 1]})`,
      ],
      ['claims', `${args.claims} (${data.claimLines} lines, ${data.recordRows} record rows)`],
      [
        'worker limits',
        `${limits.maxConcurrentActivities} activities, ${limits.maxConcurrentWorkflowTasks} workflow tasks at once (RECON_MAX_CONCURRENT_*)`,
      ],
      ['fleet night wall', `${f(fleet.seconds)} s`],
      ['single-tenant night wall', `${f(single.seconds)} s`],
      ['ratio fleet/single', f(fleet.seconds / single.seconds, 2)],
      [
        'Temporal actions / tenant-night',
        `${f(meanActions)} (mean of ${counted.length}; single tenant ${singleEvents.actions + singleEvents.heartbeatsSent})`,
      ],
      [
        'tenant-night wall, of which',
        `${f(mean('wall'), 2)} s: activities running ${f(mean('activityRun'), 2)} s (${f(mean('activities'))}), waiting for a worker slot ${f(mean('activityWait'), 2)} s; workflow tasks running ${f(mean('workflowTaskRun'), 2)} s (${f(mean('workflowTasks'))}), waiting ${f(mean('workflowTaskWait'), 2)} s (mean of ${times.length})`,
      ],
      [
        'ANALYZEs of the shared tables',
        `fleet night ${fleet.analyzes.manual} (autovacuum ${fleet.analyzes.auto}), single ${single.analyzes.manual} (autovacuum ${single.analyzes.auto})`,
      ],
      ['database CPU, fleet night', `${f(fleet.cpu.postgres)} s (single ${f(single.cpu.postgres)} s)`],
      ['worker CPU, fleet night', `${f(fleet.cpu.workers)} s (single ${f(single.cpu.workers)} s)`],
      ['Temporal server CPU, fleet', `${f(fleet.cpu.temporal)} s (single ${f(single.cpu.temporal)} s)`],
      ['worker peak RSS', `${f(workerPeak, 0)} MB`],
      ['imports wall', `fleet ${f(fleetImportSeconds)} s, single ${f(singleImportSeconds)} s`],
      [
        'charges',
        `fleet ${fleetCharges.count} / ${fleetCharges.totalMinor} minor, single ${singleCharges.count} / ${singleCharges.totalMinor} minor: ${agree ? 'equal' : 'DIFFER'}`,
      ],
    ];
    // Where a tenant-night's time goes: the per-tenant cost the 2x goal is about.
    const perActivity: Record<string, number> = {};
    for (const e of counted)
      for (const [name, took] of Object.entries(e.activitySeconds))
        perActivity[name] = (perActivity[name] ?? 0) + took / counted.length;
    const top = Object.entries(perActivity)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5);
    rows.push([
      'activity s / tenant-night',
      `${top.map(([n, t]) => `${n} ${f(t, 2)}`).join(', ')} (single: ${Object.entries(singleEvents.activitySeconds)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3)
        .map(([n, t]) => `${n} ${f(t, 2)}`)
        .join(', ')})`,
    ]);
    const width = Math.max(...rows.map(([k]) => k.length));
    console.log(rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n'));
    if (!agree) log('[bench] FAILED: the fleet’s charges and the single tenant’s differ');
    return agree ? 0 : 1;
  } catch (err) {
    log(`bench: ${(err as Error).stack ?? String(err)}`);
    return 1;
  } finally {
    await teardown.close();
  }
}
