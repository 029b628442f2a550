import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ReconError } from './domain/errors';

/** Written by `recon dev` so that commands in another terminal find the local stack. */
export const STATE_FILE = path.join(process.cwd(), '.recon', 'dev.json');

const DevStateSchema = z.object({
  databaseUrl: z.string(),
  temporalAddress: z.string(),
  namespace: z.string(),
  taskQueue: z.string(),
  uiUrl: z.string().nullable(),
  pid: z.number(),
});
export type DevState = z.infer<typeof DevStateSchema>;

export interface Settings {
  databaseUrl: string;
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  from: 'environment' | 'recon dev';
}

export const DEFAULT_TASK_QUEUE = 'outcome-recon';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function readDevState(file = STATE_FILE): DevState | undefined {
  if (!existsSync(file)) return undefined;
  const parsed = DevStateSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success || !alive(parsed.data.pid)) return undefined;
  return parsed.data;
}

/** Environment first (a real deployment), else the stack `recon dev` is running. */
export function resolveSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const dev = readDevState();
  const databaseUrl = env.DATABASE_URL ?? dev?.databaseUrl;
  const temporalAddress = env.TEMPORAL_ADDRESS ?? dev?.temporalAddress;
  if (!databaseUrl || !temporalAddress) {
    throw new ReconError(
      'no_stack',
      'no database or Temporal to talk to: start `npx recon dev` in another terminal, or set DATABASE_URL and TEMPORAL_ADDRESS',
    );
  }
  return {
    databaseUrl,
    temporalAddress,
    namespace: env.TEMPORAL_NAMESPACE ?? dev?.namespace ?? 'default',
    taskQueue: env.TEMPORAL_TASK_QUEUE ?? dev?.taskQueue ?? DEFAULT_TASK_QUEUE,
    from: env.DATABASE_URL && env.TEMPORAL_ADDRESS ? 'environment' : 'recon dev',
  };
}

/** The default cell's task queue, without needing Temporal's address (the directory lookups). */
export function defaultTaskQueue(env: NodeJS.ProcessEnv = process.env): string {
  return env.TEMPORAL_TASK_QUEUE ?? readDevState()?.taskQueue ?? DEFAULT_TASK_QUEUE;
}

export function databaseUrlOnly(env: NodeJS.ProcessEnv = process.env): string {
  const url = env.DATABASE_URL ?? readDevState()?.databaseUrl;
  if (!url)
    throw new ReconError('no_stack', 'no database: start `npx recon dev` in another terminal, or set DATABASE_URL');
  return url;
}
