import { timingSafeEqual } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EmulatorHandle, EmulatorOptions, Fault, FaultMode } from './common';

/**
 * The plumbing every stateful emulator shares (common.ts describes the contract): a node:http
 * server on 127.0.0.1, the /_emulator control endpoints, the fault modes and the clock offset, and
 * a state file rewritten after every change. A vendor emulator supplies only its routes and its
 * error body; so the faults behave the same against every vendor.
 */

export interface EmulatorRequest {
  method: string;
  /** The path without the query string. */
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** The body exactly as received (signatures are computed over these bytes). */
  body: string;
}

export interface EmulatorReply {
  status: number;
  /** Serialized as JSON; undefined: an empty body. */
  json?: unknown;
  headers?: Record<string, string>;
  /** The vendor state changed: the state file is rewritten before the reply goes out. */
  changed?: boolean;
}

export interface EmulatorContext<S> {
  state: S;
  /** The emulator's clock: the wall clock plus the offset set through /_emulator/clock. */
  now(): Date;
}

export interface EmulatorSpec<S> {
  /** For log lines. */
  name: string;
  initialState(): S;
  /** Checks a state read back from the state file; throws when it is not this emulator's. */
  parseState(raw: unknown): S;
  /** The vendor's error body for a status the fault modes answer with (429, 500). */
  errorBody(status: number, message: string): unknown;
  handle(req: EmulatorRequest, ctx: EmulatorContext<S>): EmulatorReply | Promise<EmulatorReply>;
  /** Counts a test or a person compares with the ledger, shown beside the state. */
  summary(state: S): Record<string, number>;
}

interface StoredFile<S> {
  clockOffsetMs: number;
  state: S;
}

const MAX_BODY_BYTES = 8 * 1024 * 1024;
const FAULT_MODES: readonly FaultMode[] = ['none', 'down', 'error500', 'rate_limit', 'accept_then_drop', 'hold'];

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, reply: EmulatorReply): void {
  const body = reply.json === undefined ? '' : JSON.stringify(reply.json);
  res.writeHead(reply.status, {
    ...(body ? { 'content-type': 'application/json' } : {}),
    'content-length': String(Buffer.byteLength(body)),
    ...reply.headers,
  });
  res.end(body);
}

function parseFault(raw: unknown): Fault | null {
  if (!raw || typeof raw !== 'object') return null;
  const f = raw as Record<string, unknown>;
  if (typeof f.mode !== 'string' || !FAULT_MODES.includes(f.mode as FaultMode)) return null;
  if (f.times !== undefined && !(Number.isInteger(f.times) && (f.times as number) >= 0)) return null;
  if (
    f.retryAfterSeconds !== undefined &&
    !(typeof f.retryAfterSeconds === 'number' && Number.isFinite(f.retryAfterSeconds) && f.retryAfterSeconds >= 0)
  )
    return null;
  if (f.holdMs !== undefined && !(Number.isInteger(f.holdMs) && (f.holdMs as number) >= 0)) return null;
  return {
    mode: f.mode as FaultMode,
    times: f.times as number | undefined,
    retryAfterSeconds: f.retryAfterSeconds,
    holdMs: f.holdMs as number | undefined,
  };
}

export interface StartedEmulator<S> extends EmulatorHandle {
  /** The live state (tests and the control endpoint read it; only the emulator writes it). */
  state(): S;
}

export async function startHttpEmulator<S>(opts: EmulatorOptions, spec: EmulatorSpec<S>): Promise<StartedEmulator<S>> {
  let state = spec.initialState();
  let clockOffsetMs = 0;
  if (opts.stateFile) {
    let text: string | null = null;
    try {
      text = readFileSync(opts.stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== null) {
      const stored = JSON.parse(text) as StoredFile<unknown>;
      state = spec.parseState(stored.state);
      clockOffsetMs = typeof stored.clockOffsetMs === 'number' ? stored.clockOffsetMs : 0;
    }
  }
  let fault: Fault = { mode: 'none' };
  const now = () => new Date(Date.now() + clockOffsetMs);
  const log = (line: string) => opts.log?.(`${spec.name}: ${line}`);

  const persist = () => {
    if (!opts.stateFile) return;
    // Written whole and renamed, so a killed emulator leaves the old state or the new, never half.
    const tmp = `${opts.stateFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ clockOffsetMs, state } satisfies StoredFile<S>));
    renameSync(tmp, opts.stateFile);
  };

  /** The fault for this vendor request, counting it against `times`. */
  const takeFault = (): Fault => {
    const taken = fault;
    if (taken.mode !== 'none' && taken.times !== undefined) {
      fault = taken.times <= 1 ? { mode: 'none' } : { ...taken, times: taken.times - 1 };
    }
    return taken;
  };

  const control = (req: EmulatorRequest): EmulatorReply => {
    if (req.method === 'GET' && req.path === '/_emulator/state') {
      return {
        status: 200,
        json: { clockOffsetMs, now: now().toISOString(), fault, summary: spec.summary(state), state },
      };
    }
    if (req.method === 'POST' && req.path === '/_emulator/fault') {
      let parsed: Fault | null = null;
      try {
        parsed = parseFault(JSON.parse(req.body));
      } catch {
        parsed = null;
      }
      if (!parsed)
        return { status: 400, json: { message: 'expected {"mode": one of ' + FAULT_MODES.join(', ') + '}' } };
      fault = parsed;
      return { status: 200, json: { fault } };
    }
    if (req.method === 'POST' && req.path === '/_emulator/clock') {
      let offset: unknown;
      try {
        offset = (JSON.parse(req.body) as { offsetMs?: unknown }).offsetMs;
      } catch {
        offset = undefined;
      }
      if (typeof offset !== 'number' || !Number.isFinite(offset))
        return { status: 400, json: { message: 'expected {"offsetMs": number}' } };
      clockOffsetMs = offset;
      persist();
      return { status: 200, json: { clockOffsetMs, now: now().toISOString() } };
    }
    return { status: 404, json: { message: `no control endpoint ${req.method} ${req.path}` } };
  };

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const isControl = url.pathname.startsWith('/_emulator/');
      const taken: Fault = isControl ? { mode: 'none' } : takeFault();
      const mode = taken.mode;
      if (mode === 'down') {
        log(`${req.method} ${url.pathname} -> dropped (down)`);
        req.socket.destroy();
        return;
      }
      let body: string;
      try {
        body = await readBody(req);
      } catch {
        req.socket.destroy();
        return;
      }
      const request: EmulatorRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
      };
      if (isControl) {
        send(res, control(request));
        return;
      }
      if (mode === 'error500') {
        log(`${request.method} ${request.path} -> 500 (fault)`);
        send(res, { status: 500, json: spec.errorBody(500, 'Internal server error') });
        return;
      }
      if (mode === 'rate_limit') {
        const seconds = taken.retryAfterSeconds ?? 1;
        log(`${request.method} ${request.path} -> 429 (fault)`);
        send(res, {
          status: 429,
          json: spec.errorBody(429, 'Too many requests'),
          headers: { 'retry-after': String(seconds) },
        });
        return;
      }
      let reply: EmulatorReply;
      try {
        reply = await spec.handle(request, { state, now });
      } catch (err) {
        log(`${request.method} ${request.path} -> 500 (${(err as Error).message})`);
        send(res, { status: 500, json: spec.errorBody(500, 'Internal server error') });
        return;
      }
      if (reply.changed) persist();
      if (mode === 'accept_then_drop') {
        log(`${request.method} ${request.path} -> ${reply.status}, then dropped (accept_then_drop)`);
        req.socket.destroy();
        return;
      }
      if (mode === 'hold') {
        const ms = taken.holdMs ?? 10_000;
        log(`${request.method} ${request.path} -> ${reply.status}, answer held ${ms} ms (fault hold)`);
        await new Promise((r) => setTimeout(r, ms).unref());
      }
      log(`${request.method} ${request.path} -> ${reply.status}`);
      send(res, reply);
    })();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  persist();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    setFault(f: Fault) {
      fault = { ...f };
    },
    setClockOffset(ms: number) {
      clockOffsetMs = ms;
      persist();
    },
    state: () => state,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** Two credentials compared in constant time, so an emulator teaches no timing leak by example. */
export function sameSecret(given: string, want: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Whether the request carries `Authorization: Bearer <token>`. */
export function bearerAuthorized(req: EmulatorRequest, token: string): boolean {
  const h = req.headers.authorization;
  return typeof h === 'string' && h.startsWith('Bearer ') && sameSecret(h.slice('Bearer '.length), token);
}
