import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createPool, type Pool } from '../src/db/pool';
import { applyContract } from '../src/db/contracts';
import { ContractSchema, formatZodIssues } from '../src/domain/contract';
import { parseIsoDuration } from '../src/domain/durations';
import { priceToMinorUnits } from '../src/domain/money';
import { billingPeriodOf } from '../src/domain/periods';
import { importClaimsFile, importRecordsFile } from '../src/ingest/files';
import { writeExport, ledgerTotal } from '../src/export/export';
import { startLocalStack } from '../src/stack/local-stack';
import { connectClient } from '../src/temporal/connection';
import { installRuntime } from '../src/temporal/runtime';
import { cachedWorkflowBundle } from '../src/temporal/worker';
import { runReconciliation } from '../src/temporal/run-client';
import { runWorkflowId } from '../workflows/messages';
import { AS_OF, generate } from './generate';
import { runFloor, type LedgerCheck } from './floor';
import { seedExistingHistory } from './existing';
import { formatSinkFigures, measureSink, startBenchSink } from './sink';
import { RssSampler, countWorkflowEvents, cpuSince, cpuSnapshot } from './probes';
import { runFleet } from './fleet';
import { formatTable, machine, writeResults, type BenchResult, type Phase } from './report';
import { startTeardown } from './teardown';
import { PROFILE_SETTINGS, PlanLog, StatementProfile } from './pg-profile';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXAMPLE = path.join(ROOT, 'examples', 'contract.acme.json');
const TENANT = 'bench';
const TASK_QUEUE = 'recon-bench';
/** The worker's default (`recon worker --chunk-size`): the benchmark runs the worker as shipped. */
const CHUNK_SIZE = 2000;

const Args = z.object({
  claims: z.coerce.number().int().min(100).max(10_000_000).default(100_000),
  existing: z.coerce.number().int().min(0).max(50_000_000).default(0),
  workers: z.coerce.number().int().min(1).max(8).default(1),
  /** Directory for a V8 CPU profile of each worker process (summarise with bench/profile-top.ts). */
  cpuProf: z.string().min(1).optional(),
  /**
   * Where the night delivers its ledger (bench/sink.ts): a local Stripe emulator by default, so
   * the headline includes the outbox writes and the delivery, as a real night has them; `none`
   * measures the night without a sink.
   */
  sink: z.enum(['stripe', 'none']).default('stripe'),
  sinkMode: z.enum(['meter_events', 'invoice_items']).default('meter_events'),
  /** Directory for the database's profile of each phase: statements by time, and slow plans (bench/pg-profile.ts). */
  profile: z.string().min(1).optional(),
});
/** auto_explain logs the plan of every statement slower than this, in a --profile run. */
const PROFILE_PLAN_MS = 100;

const log = (m: string) => process.stderr.write(`${m}\n`);
const seconds = (t0: number) => (performance.now() - t0) / 1000;

/**
 * Workers are the production command, each in its own process, as an operator runs them: the
 * worker's memory is measured on its own, not mixed with the benchmark's generator and imports.
 */
export async function startChildWorker(env: NodeJS.ProcessEnv, nodeArgs: string[]): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [...nodeArgs, path.join(ROOT, 'bin', 'recon.mjs'), 'worker', '--chunk-size', String(CHUNK_SIZE)],
    {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`worker ${child.pid} did not start polling within 120 s: ${stderr.slice(-300)}`)),
      120_000,
    );
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (stderr.includes('polling task queue')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker ${child.pid} exited with ${code}: ${stderr.slice(-300)}`));
    });
  });
  return child;
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM'); // the worker drains on SIGTERM
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

async function projectLedger(pool: Pool, runId: number): Promise<LedgerCheck> {
  const {
    rows: [l],
  } = await pool.query<{ count: number; total: string; fingerprint: string }>(
    `select count(*)::int as count, coalesce(sum(amount_minor), 0)::text as total,
            coalesce(md5(string_agg(primary_claim_id, ',' order by primary_claim_id collate "C")), '') as fingerprint
       from ledger_entries where tenant_id = $1 and kind = 'charge' and run_id = $2`,
    [TENANT, runId],
  );
  return { count: l.count, totalMinor: Number(l.total), fingerprint: l.fingerprint };
}

/** Runs the benchmark; returns the exit code (1 when the project's and the floor's ledgers differ). */
export async function main(argv: string[]): Promise<number> {
  // The fleet benchmark is its own run: N tenants beside one (bench/fleet.ts).
  if (argv.some((a) => a === '--tenants' || a.startsWith('--tenants='))) return runFleet(argv);
  const { values } = parseArgs({
    args: argv,
    options: {
      claims: { type: 'string' },
      existing: { type: 'string' },
      workers: { type: 'string' },
      'cpu-prof': { type: 'string' },
      sink: { type: 'string' },
      'sink-mode': { type: 'string' },
      profile: { type: 'string' },
    },
    strict: true,
  });
  const parsed = Args.safeParse({ ...values, cpuProf: values['cpu-prof'], sinkMode: values['sink-mode'] });
  if (!parsed.success) {
    log(`bench: ${formatZodIssues(parsed.error)}`);
    return 2;
  }
  const args = parsed.data;
  installRuntime();

  const teardown = startTeardown(log);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'recon-bench-'));
  teardown.add(() => rm(dir, { recursive: true, force: true }));
  try {
    log(`[bench] generating ${args.claims} claims into ${dir}`);
    const t0 = performance.now();
    await mkdir(path.join(dir, 'data'));
    const data = await generate(path.join(dir, 'data'), args.claims);
    const generateSeconds = seconds(t0);

    // As the demo does: a throwaway embedded PostgreSQL and Temporal dev server under a temp dir.
    const profileDir = args.profile ? path.resolve(args.profile) : undefined;
    let planLog: PlanLog | undefined;
    if (profileDir) {
      await mkdir(profileDir, { recursive: true });
      planLog = new PlanLog(path.join(profileDir, 'plans.log'));
      const pl = planLog;
      teardown.add(() => pl.close());
      log(
        `[bench] profiling the database into ${profileDir}: timings are inflated, quote ratios from a run without --profile`,
      );
    }
    const stack = await startLocalStack({
      dir,
      persistent: false,
      ui: false,
      log,
      postgres: planLog ? { settings: PROFILE_SETTINGS(PROFILE_PLAN_MS), onServerLog: planLog.write } : undefined,
    });
    teardown.add(() => stack.stop());
    const pool = createPool(stack.databaseUrl);
    teardown.add(() => pool.end());
    const profile = profileDir ? await StatementProfile.start(pool, profileDir) : undefined;
    const example = JSON.parse(await readFile(EXAMPLE, 'utf8')) as Record<string, unknown>;
    const sink = args.sink === 'stripe' ? await startBenchSink(args.sinkMode) : undefined;
    if (sink) teardown.add(() => sink.emulator.close());
    const contract = ContractSchema.parse({
      ...example,
      tenant: TENANT,
      ...(sink ? { sinks: { stripe: sink.config } } : {}),
    });
    await applyContract(pool, contract);
    if (args.existing > 0) {
      log(`[bench] seeding ${args.existing} settled outcomes of an earlier month`);
      await seedExistingHistory(pool, TENANT, args.existing);
    }

    const client = await connectClient(stack.temporalAddress, 'default');
    teardown.add(() => client.connection.close());
    // Built (or found in the cache) here, so no worker's peak holds a bundler and starts race to build it.
    await cachedWorkflowBundle();
    const children: ChildProcess[] = [];
    const childEnv = {
      ...process.env,
      DATABASE_URL: stack.databaseUrl,
      TEMPORAL_ADDRESS: stack.temporalAddress,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: TASK_QUEUE,
      ...sink?.env,
    };
    // Written when the worker exits after its SIGTERM drain, at the end of the run.
    const nodeArgs = args.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(args.cpuProf)}`] : [];
    for (let k = 0; k < args.workers; k++) {
      const child = await startChildWorker(childEnv, nodeArgs);
      children.push(child);
      teardown.add(() => stopChild(child));
    }

    const rss = new RssSampler(() => children.map((c) => c.pid!).filter(Boolean));
    const cpu = () =>
      cpuSnapshot({
        workerPids: children.map((c) => c.pid!),
        pgDataDir: stack.postgresDataDir ?? path.join(dir, 'pgdata'),
      });
    const phases: Phase[] = [];
    const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      await profile?.reset();
      rss.enter(name);
      const start = performance.now();
      const before = cpu();
      const result = await fn();
      phases.push({
        side: 'project',
        name,
        seconds: seconds(start),
        rssMb: rss.peaks.get(name)!.self,
        cpu: cpuSince(before, cpu()),
      });
      if (profile) log(await profile.dump(name));
      return result;
    };

    log('[bench] project: import, reconcile on Temporal, export');
    const nightStarted = new Date();
    // The files arrive for the night being reconciled; asOf stands in for a missing time.
    const claimsImport = await phase('import claims', () =>
      importClaimsFile(pool, { tenant: TENANT, file: data.claimsFile, now: AS_OF }),
    );
    const recordsImport = await phase('import records', () =>
      importRecordsFile(pool, { tenant: TENANT, source: 'helpdesk', file: data.recordsFile, now: AS_OF }),
    );
    let progressQueries = 0;
    const summary = await phase('reconcile (Temporal)', () =>
      runReconciliation(client, {
        tenant: TENANT,
        asOf: AS_OF,
        taskQueue: TASK_QUEUE,
        timeoutMs: 6 * 3600_000,
        onProgress: () => progressQueries++,
      }),
    );
    const exportFile = path.join(dir, `${TENANT}-${summary.period}.csv`);
    const exported = await phase('export', async () => {
      const out = createWriteStream(exportFile);
      const totals = await writeExport(pool, { tenant: TENANT, period: summary.period, format: 'csv', out });
      out.end();
      await once(out, 'finish');
      return totals;
    });
    rss.stop();
    // The kernel's high-water mark of each worker process, startup included.
    const childPeaks = children.map((c) => RssSampler.childPeak(c.pid!));
    const reconcilePeak = rss.peaks.get('reconcile (Temporal)')!;
    const workerPeak = Math.max(...childPeaks);
    phases[2].rssMb = workerPeak;
    phases[2].note = `worker process${children.length > 1 ? 'es' : ''} ${childPeaks.map((p) => p.toFixed(0)).join('/')} MB peak (VmHWM), ${reconcilePeak.children.toFixed(0)} MB sampled during the run`;
    phases[0].note = `${claimsImport.accepted} accepted, ${claimsImport.redelivered} redelivered, ${claimsImport.quarantined} quarantined`;
    phases[1].note = `${recordsImport.accepted} accepted, ${recordsImport.redelivered} redelivered, ${recordsImport.quarantined} quarantined`;
    phases[3].note = `${exported.lines} lines`;
    const ledger = await ledgerTotal(pool, TENANT, summary.period);
    if (ledger.amountMinor !== exported.amountMinor)
      throw new Error(`export total ${exported.amountMinor} != ledger total ${ledger.amountMinor}`);
    const project = await projectLedger(pool, summary.runId);
    const events = await countWorkflowEvents(client, runWorkflowId(TENANT, AS_OF.toISOString()));

    log('[bench] floor: COPY, one statement to evaluate, one to post, on a fresh database');
    const terms = contract.outcomeTypes.resolved_ticket;
    const grace = parseIsoDuration(terms.graceWindow);
    await profile?.reset();
    const floorCpuBefore = cpu();
    const floor = await runFloor(stack.databaseUrl, 'bench_floor', {
      claimsFile: data.claimsFile,
      recordsFile: data.recordsFile,
      asOf: AS_OF,
      importedAt: AS_OF,
      timeZone: contract.timezone,
      period: billingPeriodOf(AS_OF, contract.timezone),
      unitPrice: terms.unitPrice!,
      unitMinor: priceToMinorUnits(terms.unitPrice!, contract.currency),
      // The hand-written floor knows this contract: a grace window in whole hours.
      graceHours: grace.hours + 24 * (grace.days + 7 * grace.weeks),
      existing: args.existing,
    });
    const floorCpu = cpuSince(floorCpuBefore, cpu());
    if (profile) log(await profile.dump('floor'));
    for (const p of floor.phases) phases.push({ side: 'floor', name: p.name, seconds: p.seconds });
    phases[phases.length - 2].note = `${floor.outcomes} outcomes`;

    const projectSeconds = phases.filter((p) => p.side === 'project').reduce((s, p) => s + p.seconds, 0);
    const floorSeconds = floor.phases.reduce((s, p) => s + p.seconds, 0);
    const agree =
      project.count === floor.ledger.count &&
      project.totalMinor === floor.ledger.totalMinor &&
      project.fingerprint === floor.ledger.fingerprint;
    const result: BenchResult = {
      claims: args.claims,
      existing: args.existing,
      workers: args.workers,
      claimLines: data.claimLines,
      recordRows: data.recordRows,
      phases,
      project_s: projectSeconds,
      floor_s: floorSeconds,
      floor_cpu: floorCpu,
      ratio: projectSeconds / floorSeconds,
      // The floor delivers nothing: the delivery step (calls to the sink) is quoted apart, the
      // outbox rows written while posting stay in both figures.
      ratio_without_delivery: (projectSeconds - (events.activitySeconds.deliverToSinks ?? 0)) / floorSeconds,
      delivery: sink ? `stripe ${args.sinkMode}` : 'none',
      worker_peak_rss_mb: workerPeak,
      claims_per_s: args.claims / projectSeconds,
      temporal_actions: events.actions + events.heartbeatsSent,
      temporal: { ...events, progressQueries, chunkSize: CHUNK_SIZE },
      ledger: { project, floor: floor.ledger, expected: data.expectedBilled, agree },
      generate_s: generateSeconds,
      date: new Date().toISOString(),
      machine: machine(),
    };
    const sinkFigures = sink ? await measureSink(pool, TENANT, sink, nightStarted) : undefined;
    if (sinkFigures) result.sink = sinkFigures;
    console.log(formatTable(result));
    if (sinkFigures) console.log(formatSinkFigures(sinkFigures));
    const file = await writeResults(result, path.join(ROOT, 'bench', 'results'));
    log(`[bench] wrote ${path.relative(ROOT, file)}`);
    if (project.count !== data.expectedBilled)
      log(
        `[bench] warning: the generator expected ${data.expectedBilled} charges, the project posted ${project.count}`,
      );
    if (!agree) log('[bench] FAILED: the project ledger and the floor ledger differ');
    if (sinkFigures && (!sinkFigures.agrees || sinkFigures.undelivered > 0))
      log('[bench] FAILED: the sink does not hold exactly the ledger');
    return agree && (!sinkFigures || (sinkFigures.agrees && sinkFigures.undelivered === 0)) ? 0 : 1;
  } catch (err) {
    log(`bench: ${(err as Error).stack ?? String(err)}`);
    return 1;
  } finally {
    await teardown.close();
  }
}
