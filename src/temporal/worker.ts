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
import { createActivities, type ActivityDeps } from '../../activities';
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

export async function createWorker(opts: {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  bundle?: WorkflowBundleWithSourceMap | { codePath: string };
  /** Where RECON_PAYLOAD_KEY is read from (payload encryption); default process.env. */
  env?: NodeJS.ProcessEnv;
}): Promise<Worker> {
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
    maxConcurrentActivityTaskExecutions: 4,
    dataConverter: dataConverterFromEnv(opts.env),
  });
}
