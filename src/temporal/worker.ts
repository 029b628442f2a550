import { fileURLToPath } from 'node:url';
import { Worker, bundleWorkflowCode, type NativeConnection, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../../activities';
import { dataConverterFromEnv } from './codec';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));

/** Bundles the workflow code; fails on a forbidden (non-deterministic) import. */
export async function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH });
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
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    ...(opts.bundle ? { workflowBundle: opts.bundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities(opts.deps),
    maxConcurrentActivityTaskExecutions: 4,
    dataConverter: dataConverterFromEnv(opts.env),
  });
}
