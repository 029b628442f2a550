/**
 * Everything a benchmark starts (servers, pools, worker processes, temp dirs), stopped in reverse
 * order on success, failure or Ctrl-C, once.
 */
export function startTeardown(log: (m: string) => void) {
  const stops: Array<() => Promise<unknown>> = [];
  let stopped = false;
  const stopAll = async () => {
    if (stopped) return;
    stopped = true;
    for (const stop of stops.reverse()) await stop().catch((e) => log(`[bench] stop failed: ${(e as Error).message}`));
  };
  const onSignal = () => void stopAll().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    add(stop: () => Promise<unknown>): void {
      stops.push(stop);
    },
    async close(): Promise<void> {
      await stopAll();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
