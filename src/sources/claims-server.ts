import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What the next requests for /claims get, in order (fault tests): `ok` a normal page, `status` an
 * HTTP 500, `hang` no answer until the client gives up, `truncate` the first half of the JSON body,
 * `replay` the previous page served again together with the requested one.
 */
export type ClaimsFault = 'ok' | 'status' | 'hang' | 'truncate' | 'replay';

/**
 * A small claims API with cursor paging, standing in for the AI vendor's endpoint in the demo and
 * the tests: GET /claims?cursor=N&limit=M answers { claims, next_cursor }. POST /alerts accepts
 * alert webhooks and counts them.
 */
export interface ClaimsServer {
  url: string;
  alertsUrl: string;
  publish(claims: unknown[]): void;
  /** Make the next `n` requests fail with this HTTP status (fault tests). */
  failNext(n: number, status?: number): void;
  /** Queue faults for the next /claims requests, one per request. */
  inject(...faults: ClaimsFault[]): void;
  /** Faults injected so far, by kind. */
  injected: Record<ClaimsFault, number>;
  requests: number;
  alerts: number;
  close(): Promise<void>;
}

export async function startClaimsServer(opts: { hangMs?: number } = {}): Promise<ClaimsServer> {
  const published: unknown[] = [];
  const queue: ClaimsFault[] = [];
  let failStatus = 500;
  let lastPageLength = 0;
  const injected: Record<ClaimsFault, number> = { ok: 0, status: 0, hang: 0, truncate: 0, replay: 0 };
  const state = { requests: 0, alerts: 0 };
  const hanging = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/alerts' && req.method === 'POST') {
      req.resume();
      req.on('end', () => {
        state.alerts++;
        res.writeHead(204).end();
      });
      return;
    }
    if (url.pathname !== '/claims') {
      res.writeHead(404).end();
      return;
    }
    state.requests++;
    const fault = queue.shift() ?? 'ok';
    injected[fault]++;
    if (fault === 'status') {
      res.writeHead(failStatus, { 'content-type': 'application/json' }).end('{"error":"injected"}');
      return;
    }
    if (fault === 'hang') {
      // Held open past the client's timeout, then dropped.
      hanging.add(res);
      setTimeout(() => {
        hanging.delete(res);
        res.destroy();
      }, opts.hangMs ?? 40_000).unref();
      return;
    }
    const asked = Number(url.searchParams.get('cursor') ?? '0');
    const limit = Math.min(Number(url.searchParams.get('limit') ?? '100'), 1000);
    const from = fault === 'replay' ? Math.max(0, asked - lastPageLength) : asked;
    const page = published.slice(from, asked + limit);
    const next = asked + published.slice(asked, asked + limit).length;
    const body = JSON.stringify({ claims: page, next_cursor: String(next) });
    if (fault === 'truncate') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body.slice(0, Math.floor(body.length / 2)));
      return;
    }
    lastPageLength = next - asked;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/claims`,
    alertsUrl: `http://127.0.0.1:${port}/alerts`,
    publish: (claims) => published.push(...claims),
    failNext: (n, status = 500) => {
      failStatus = status;
      for (let i = 0; i < n; i++) queue.push('status');
    },
    inject: (...faults) => queue.push(...faults),
    injected,
    get requests() {
      return state.requests;
    },
    get alerts() {
      return state.alerts;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
