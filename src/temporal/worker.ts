import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Worker,
  bundleWorkflowCode,
  type NativeConnection,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { z } from 'zod';
import { createActivities, type ActivityDeps } from '../../activities';
import { ReconError } from '../domain/errors';
import { dataConverterFromEnv } from './codec';
import { observeActivities } from '../observability/recon-metrics';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUNDLE_CHILD = fileURLToPath(new URL('./bundle-child.mjs', import.meta.url));

/**
 * Bundles the workflow code; fails on a forbidden (non-deterministic) import. Always from the
 * TypeScript sources in workflows/, also for the compiled `recon` (dist/), whose build keeps this
 * module's import.meta.url pointing here (scripts/build.mjs). bundle-child.mjs does the same.
 */
export async function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH });
}

/** Every source the bundle could include, and the SDK version: the bundle changes only when one does. */
async function sourcesHash(): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (dir: string): Promise<void> => {
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (/\.(ts|mjs|js|json)$/.test(e.name))
        hash
          .update(path.relative(ROOT, p))
          .update('\0')
          .update(await readFile(p))
          .update('\0');
    }
  };
  for (const dir of ['workflows', 'activities', 'src']) await walk(path.join(ROOT, dir));
  // The dependencies bundled in (the SDK, zod) change with the lock file.
  hash.update(await readFile(path.join(ROOT, 'package-lock.json')));
  return hash.digest('hex').slice(0, 24);
}

/**
 * The workflow bundle as a file, built once per version of the sources by a short-lived child
 * process: webpack needs some 120 MB while bundling, which would otherwise stay in the worker's
 * peak memory for its whole life.
 */
export async function cachedWorkflowBundle(
  cacheDir = path.join(os.tmpdir(), 'recon-workflow-bundles'),
): Promise<{ codePath: string }> {
  const codePath = path.join(cacheDir, `workflows-${await sourcesHash()}.js`);
  if (existsSync(codePath)) return { codePath };
  await mkdir(cacheDir, { recursive: true });
  const child = spawn(process.execPath, [BUNDLE_CHILD, codePath, WORKFLOWS_PATH], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0 || !existsSync(codePath))
    throw new Error(`bundling the workflows failed (exit ${code}): ${stderr.slice(-2000)}`);
  return { codePath };
}

/** How much work one worker process admits at once (WorkerOptions of the Temporal SDK). */
export interface WorkerLimits {
  /** Activities (pull, import, match, evaluate, post, deliver chunks) running at once. */
  maxConcurrentActivities: number;
  /** Workflow tasks at once: cheap (no I/O), so only a cap on CPU bursts at a night's start. */
  maxConcurrentWorkflowTasks: number;
  /** Activities per second started from the whole task queue, over all workers (server-enforced). */
  maxTaskQueueActivitiesPerSecond?: number;
  /** Activities per second started by this worker. */
  maxActivitiesPerSecond?: number;
}

/**
 * Defaults for a small database server (2 cores). A night's activities are set-based SQL over
 * thousands of rows: the database, not Node, is the bottleneck, and past about twice its cores
 * more activities only queue inside PostgreSQL. Measured on this 2-core machine (shared, load
 * 4-9), 20 tenants' nights at once, 1,000 claims each: 2 activities 20.4 s and 26.7 s, 4: 8.3 s and
 * 22.1 s, 8: 12.7 s and 20.1 s (300 claims each: 2: 6.0 s, 4: 5.2 s, 8: 4.9 s); 8 bought nothing
 * over 4 beyond the noise and doubles the connections, 2 was the slowest. A night of thousands of
 * tenants is admitted 4 activities at a time per worker process; Temporal holds the rest in the
 * task queue, where waiting costs nothing. Workflow tasks never touch the database: 10 (the SDK's
 * default is 40) bounds the CPU burst when thousands of schedules fire at the same minute.
 */
export const DEFAULT_WORKER_LIMITS: WorkerLimits = { maxConcurrentActivities: 4, maxConcurrentWorkflowTasks: 10 };

/**
 * Database connections one activity may hold at once: evaluateOutcomes writes two slices side by
 * side (activities/index.ts), every other activity holds one.
 */
export const CONNECTIONS_PER_ACTIVITY = 2;

/**
 * The worker's pool: enough that every admitted activity gets its connections without waiting
 * (a wait longer than the pool's 10 s connection timeout fails the activity), plus one for the
 * health check. Activity concurrency is the admission limit; the pool follows from it, so a
 * night of any size opens at most this many connections per worker process.
 */
export function poolSizeFor(limits: WorkerLimits): number {
  return limits.maxConcurrentActivities * CONNECTIONS_PER_ACTIVITY + 1;
}

const Count = (name: string, max: number) =>
  z.coerce
    .number({ message: `${name} must be a number` })
    .int(`${name} must be a whole number`)
    .min(1, `${name} must be at least 1`)
    .max(max, `${name} must be at most ${max}`);
const Rate = (name: string) =>
  z.coerce.number({ message: `${name} must be a number` }).positive(`${name} must be above 0`);

/**
 * The limits from flags, else RECON_MAX_CONCURRENT_ACTIVITIES, RECON_MAX_CONCURRENT_WORKFLOW_TASKS,
 * RECON_MAX_TASK_QUEUE_ACTIVITIES_PER_SECOND, RECON_MAX_ACTIVITIES_PER_SECOND, else the defaults.
 */
export function resolveWorkerLimits(
  flags: Partial<Record<keyof WorkerLimits, string | number | undefined>>,
  env: NodeJS.ProcessEnv = process.env,
): WorkerLimits {
  const pick = (k: keyof WorkerLimits, envName: string) => flags[k] ?? (env[envName] || undefined);
  const schema = z.object({
    maxConcurrentActivities: Count('--max-concurrent-activities (RECON_MAX_CONCURRENT_ACTIVITIES)', 1000).default(
      DEFAULT_WORKER_LIMITS.maxConcurrentActivities,
    ),
    maxConcurrentWorkflowTasks: Count(
      '--max-concurrent-workflow-tasks (RECON_MAX_CONCURRENT_WORKFLOW_TASKS)',
      1000,
    ).default(DEFAULT_WORKER_LIMITS.maxConcurrentWorkflowTasks),
    maxTaskQueueActivitiesPerSecond: Rate(
      '--max-task-queue-activities-per-second (RECON_MAX_TASK_QUEUE_ACTIVITIES_PER_SECOND)',
    ).optional(),
    maxActivitiesPerSecond: Rate('--max-activities-per-second (RECON_MAX_ACTIVITIES_PER_SECOND)').optional(),
  });
  const r = schema.safeParse({
    maxConcurrentActivities: pick('maxConcurrentActivities', 'RECON_MAX_CONCURRENT_ACTIVITIES'),
    maxConcurrentWorkflowTasks: pick('maxConcurrentWorkflowTasks', 'RECON_MAX_CONCURRENT_WORKFLOW_TASKS'),
    maxTaskQueueActivitiesPerSecond: pick(
      'maxTaskQueueActivitiesPerSecond',
      'RECON_MAX_TASK_QUEUE_ACTIVITIES_PER_SECOND',
    ),
    maxActivitiesPerSecond: pick('maxActivitiesPerSecond', 'RECON_MAX_ACTIVITIES_PER_SECOND'),
  });
  if (!r.success)
    throw new ReconError('invalid_worker_limit', `${r.error.issues[0].message}; or leave it unset for the default`);
  // The SDK refuses fewer than 2 workflow task slots (its poller needs two).
  if (r.data.maxConcurrentWorkflowTasks < 2)
    throw new ReconError(
      'invalid_worker_limit',
      '--max-concurrent-workflow-tasks must be at least 2 (the SDK polls with two)',
    );
  return r.data;
}

export async function createWorker(opts: {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  bundle?: WorkflowBundleWithSourceMap | { codePath: string };
  /** Where RECON_PAYLOAD_KEY is read from (payload encryption); default process.env. */
  env?: NodeJS.ProcessEnv;
  limits?: WorkerLimits;
}): Promise<Worker> {
  const limits = opts.limits ?? DEFAULT_WORKER_LIMITS;
  // RECON_WORKFLOW_BUNDLE names a bundle built ahead (e.g. shipped with a deploy); otherwise the
  // cached bundle for these sources is used, built once in a child process.
  const prebuilt = (opts.env ?? process.env).RECON_WORKFLOW_BUNDLE;
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    workflowBundle: opts.bundle ?? (prebuilt ? { codePath: prebuilt } : await cachedWorkflowBundle()),
    activities: createActivities(opts.deps),
    // Activity durations and the run facts /metrics counts; tenant and run id on activity log lines.
    interceptors: { activity: [observeActivities] },
    maxConcurrentActivityTaskExecutions: limits.maxConcurrentActivities,
    maxConcurrentWorkflowTaskExecutions: limits.maxConcurrentWorkflowTasks,
    // Left to the SDK's defaults when unset: no rate limit, only the concurrency above.
    ...(limits.maxTaskQueueActivitiesPerSecond !== undefined && {
      maxTaskQueueActivitiesPerSecond: limits.maxTaskQueueActivitiesPerSecond,
    }),
    ...(limits.maxActivitiesPerSecond !== undefined && { maxActivitiesPerSecond: limits.maxActivitiesPerSecond }),
    dataConverter: dataConverterFromEnv(opts.env),
  });
}
