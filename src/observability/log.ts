import { format } from 'node:util';

/**
 * LOG_FORMAT=json: every line the worker logs is one JSON object on stderr,
 * {"time","level","message", ...attributes}, with tenant and runId where known. Anything else
 * (the default) keeps today's human text.
 */
export function jsonLogs(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.LOG_FORMAT?.toLowerCase() === 'json';
}

type Level = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

function plain(v: unknown, depth = 0): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) {
    const cause = (v as Error & { cause?: unknown }).cause;
    return {
      name: v.name,
      message: v.message,
      ...(v.stack ? { stack: v.stack } : {}),
      ...(cause !== undefined && depth < 3 ? { cause: plain(cause, depth + 1) } : {}),
    };
  }
  if (Array.isArray(v)) return depth < 5 ? v.map((x) => plain(x, depth + 1)) : '[…]';
  if (v && typeof v === 'object') {
    if (depth >= 5) return '[…]';
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x, depth + 1)]));
  }
  return v;
}

/** One JSON line; the three fixed fields come first and cannot be overwritten by attributes. */
export function jsonLogLine(
  level: string,
  message: string,
  meta: Record<string, unknown> = {},
  time = new Date(),
): string {
  const attrs = plain(meta) as Record<string, unknown>;
  delete attrs.time;
  delete attrs.level;
  delete attrs.message;
  return JSON.stringify({ time: time.toISOString(), level, message, ...attrs }) + '\n';
}

export function writeLog(level: Level, message: string, meta?: Record<string, unknown>): void {
  if (jsonLogs()) process.stderr.write(jsonLogLine(level, message, meta));
  else process.stderr.write(message + '\n');
}

/**
 * With LOG_FORMAT=json, console.* (the pool's connection errors, RECON_DEBUG traces, anything a
 * library prints) goes out as JSON lines on stderr too, so a log shipper never meets a stray line.
 */
export function routeConsoleToJson(): void {
  if (!jsonLogs()) return;
  const to =
    (level: Level) =>
    (...args: unknown[]) => {
      const err = args.find((a) => a instanceof Error);
      process.stderr.write(jsonLogLine(level, format(...args), err ? { error: err } : {}));
    };
  console.log = to('INFO');
  console.info = to('INFO');
  console.warn = to('WARN');
  console.error = to('ERROR');
  console.debug = to('DEBUG');
}
