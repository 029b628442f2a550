import http from 'node:http';
import net from 'node:net';
import type { Worker } from '@temporalio/worker';
import type { Pool } from '../db/pool';
import { PROMETHEUS_CONTENT_TYPE } from '../observability/metrics';
import { reconRegistry } from '../observability/recon-metrics';

export interface Health {
  ok: boolean;
  polling: boolean;
  workerState: string;
  postgres: boolean;
  postgresError?: string;
}

export async function checkHealth(worker: Worker, pool: Pool): Promise<Health> {
  const workerState = worker.getState();
  let postgres = true;
  let postgresError: string | undefined;
  try {
    await pool.query('select 1');
  } catch (err) {
    postgres = false;
    postgresError = (err as Error).message;
  }
  const polling = workerState === 'RUNNING';
  return { ok: polling && postgres, polling, workerState, postgres, ...(postgresError ? { postgresError } : {}) };
}

/**
 * The SDK's own metrics (worker slots, polls, task latencies, `temporal_` prefix) come from its
 * Prometheus exporter on a loopback port; they are fetched here so that one scrape of /metrics
 * gets both them and the product's. A failed fetch still serves the product's, with a comment.
 */
async function metricsText(sdkMetricsUrl: string | undefined): Promise<string> {
  let sdk = '';
  if (sdkMetricsUrl) {
    try {
      const r = await fetch(sdkMetricsUrl, { signal: AbortSignal.timeout(2_000) });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      sdk = await r.text();
      if (sdk && !sdk.endsWith('\n')) sdk += '\n';
    } catch (err) {
      sdk = `# the Temporal SDK's metrics are unavailable: ${(err as Error).message.replace(/\n/g, ' ')}\n`;
    }
  }
  return sdk + reconRegistry.expose();
}

/**
 * GET /healthz: 200 while the worker polls Temporal and Postgres answers, 503 otherwise.
 * GET /metrics: Prometheus text format 0.0.4, the SDK's metrics and the product's.
 */
export function serveHealth(
  port: number,
  worker: Worker,
  pool: Pool,
  opts: { host?: string; sdkMetricsUrl?: string } = {},
): http.Server {
  const server = http.createServer((req, res) => {
    if (req.url === '/metrics' && req.method === 'GET') {
      metricsText(opts.sdkMetricsUrl).then(
        (text) => res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE }).end(text),
        (err) => res.writeHead(500).end((err as Error).message),
      );
      return;
    }
    if (req.url !== '/healthz') {
      res.writeHead(404).end();
      return;
    }
    checkHealth(worker, pool).then(
      (h) => res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h)),
      (err) => res.writeHead(503).end(JSON.stringify({ ok: false, error: (err as Error).message })),
    );
  });
  server.listen(port, opts.host ?? '127.0.0.1');
  return server;
}

/** A free loopback port for the SDK's exporter (the SDK cannot report the port it bound to 0). */
export async function freeLoopbackPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', resolve);
  });
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
