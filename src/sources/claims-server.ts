import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small claims API with cursor paging, standing in for the AI vendor's endpoint in the demo and
 * the tests: GET /claims?cursor=N&limit=M answers { claims, next_cursor }.
 */
export interface ClaimsServer {
  url: string;
  publish(claims: unknown[]): void;
  /** Make the next `n` requests fail with this HTTP status (fault tests). */
  failNext(n: number, status?: number): void;
  requests: number;
  close(): Promise<void>;
}

export async function startClaimsServer(): Promise<ClaimsServer> {
  const published: unknown[] = [];
  let failures = 0;
  let failStatus = 500;
  const state = { requests: 0 };
  const server = http.createServer((req, res) => {
    state.requests++;
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/claims') {
      res.writeHead(404).end();
      return;
    }
    if (failures > 0) {
      failures--;
      res.writeHead(failStatus, { 'content-type': 'application/json' }).end('{"error":"injected"}');
      return;
    }
    const from = Number(url.searchParams.get('cursor') ?? '0');
    const limit = Math.min(Number(url.searchParams.get('limit') ?? '100'), 1000);
    const page = published.slice(from, from + limit);
    const next = from + page.length;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ claims: page, next_cursor: String(next) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/claims`,
    publish: (claims) => published.push(...claims),
    failNext: (n, status = 500) => {
      failures = n;
      failStatus = status;
    },
    get requests() {
      return state.requests;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
