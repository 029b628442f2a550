import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';

let installed = false;

/** Quiet by default: a worker's INFO lines drown the run summary people came for. */
export function installRuntime(level: LogLevel = (process.env.RECON_LOG_LEVEL as LogLevel) ?? 'WARN'): void {
  if (installed) return;
  installed = true;
  Runtime.install({ logger: new DefaultLogger(level) });
}
