import { jsonLogs, writeLog } from '../observability/log';

/**
 * Runs `stop` once on the first SIGINT or SIGTERM, so that Ctrl-C drains the worker and stops the
 * servers we started instead of killing the process under them. A second signal exits at once.
 */
export function onShutdownSignal(stop: () => void | Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    if (jsonLogs()) writeLog('INFO', `recon: ${signal} received, stopping`, { signal });
    else process.stderr.write(`\nrecon: ${signal} received, stopping…\n`);
    void stop();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
