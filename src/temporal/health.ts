import http from 'node:http';
import type { Worker } from '@temporalio/worker';
import type { Pool } from '../db/pool';

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

/** GET /healthz: 200 while the worker polls Temporal and Postgres answers, 503 otherwise. */
export function serveHealth(port: number, worker: Worker, pool: Pool): http.Server {
  const server = http.createServer((req, res) => {
    if (req.url !== '/healthz') {
      res.writeHead(404).end();
      return;
    }
    checkHealth(worker, pool).then(
      (h) => res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h)),
      (err) => res.writeHead(503).end(JSON.stringify({ ok: false, error: (err as Error).message })),
    );
  });
  server.listen(port, '127.0.0.1');
  return server;
}
