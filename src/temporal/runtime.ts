import {
  DefaultLogger,
  Runtime,
  makeTelemetryFilterString,
  type LogLevel,
  type RuntimeOptions,
} from '@temporalio/worker';
import { jsonLogLine, jsonLogs } from '../observability/log';

let installed = false;

/**
 * Quiet by default: a worker's INFO lines drown the run summary people came for. With
 * LOG_FORMAT=json the SDK's lines, those of its native core included (forwarded rather than
 * printed by the core), are JSON lines with their attributes (workflow id, activity type, and
 * the tenant and run id that observeActivities adds). `sdkMetricsAddress` (host:port) turns on
 * the SDK's Prometheus exporter there; the health server serves its text under /metrics.
 */
export function installRuntime(
  level: LogLevel = (process.env.RECON_LOG_LEVEL as LogLevel) ?? 'WARN',
  opts: { sdkMetricsAddress?: string } = {},
): void {
  if (installed) return;
  installed = true;
  const json = jsonLogs();
  const options: RuntimeOptions = {
    logger: json
      ? new DefaultLogger(level, (e) =>
          process.stderr.write(
            jsonLogLine(e.level, e.message, e.meta ?? {}, new Date(Number(e.timestampNanos / 1_000_000n))),
          ),
        )
      : new DefaultLogger(level),
    telemetryOptions: {
      ...(json ? { logging: { filter: makeTelemetryFilterString({ core: level, other: 'ERROR' }), forward: {} } } : {}),
      ...(opts.sdkMetricsAddress ? { metrics: { prometheus: { bindAddress: opts.sdkMetricsAddress } } } : {}),
    },
  };
  Runtime.install(options);
}
