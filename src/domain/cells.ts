import { z } from 'zod';
import { ReconError } from './errors';

/**
 * The cell every installation starts with: the database DATABASE_URL names and the task queue the
 * worker polls by default. It is never a row of the directory, so a single-server user has none.
 */
export const DEFAULT_CELL = 'default';

export const CellNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,39}$/, 'expected a cell name such as eu-2 (lower case, up to 40 characters)')
  .refine((n) => n !== DEFAULT_CELL, 'the cell "default" always exists: it is the database DATABASE_URL names');

/** A cell a tenant may be placed in: any listed cell, or the default. */
export const CellNameOrDefault = z.union([z.literal(DEFAULT_CELL), CellNameSchema]);

export const UrlEnvSchema = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]*$/, 'expected an environment variable name such as RECON_CELL_EU2_DATABASE_URL');

/** A cell as the directory stores it: where its database is, and the queue its workers poll. */
export interface CellEntry {
  name: string;
  databaseUrl: string | null;
  databaseUrlEnv: string | null;
  /** Another database on the default cell's server, reached with the default cell's login. */
  databaseName: string | null;
  taskQueue: string;
}

export const DatabaseNameSchema = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a database name such as recon_eu2 (lower case, digits, _)');

/** A cell a process can talk to: the URL read, wherever it was kept. */
export interface ResolvedCell {
  name: string;
  databaseUrl: string;
  taskQueue: string;
  /** Where the URL came from, for messages: "DATABASE_URL", "the directory", "$RECON_CELL_EU2_URL". */
  urlFrom: string;
}

/** Each cell's workers poll their own queue: the default cell's queue with the cell's name after it. */
export function cellTaskQueue(defaultQueue: string, cell: string): string {
  return `${defaultQueue}-${cell}`;
}

/** The URL without its password, for every message and listing. */
export function redactDatabaseUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*):[^@]*@/i, '$1:***@');
}

/** Where a URL points, short enough for a table: host:port/database, no user or password. */
export function databaseWhere(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || 'socket'}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return redactDatabaseUrl(url);
  }
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/**
 * Decides whether a URL may be written into the directory as it is. A password in it would sit in
 * a table every recon login can read; only a server on this machine (the local stack, a test) is
 * exempt. Elsewhere the URL is kept in an environment variable the directory names.
 */
export function checkStorableUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ReconError(
      'invalid_cell',
      `"${redactDatabaseUrl(url)}" is not a PostgreSQL URL such as postgres://recon@db-2:5432/recon`,
    );
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:')
    throw new ReconError('invalid_cell', `"${redactDatabaseUrl(url)}" is not a PostgreSQL URL (postgres://…)`);
  if (parsed.password && !LOOPBACK.has(parsed.hostname))
    throw new ReconError(
      'cell_url_has_password',
      `the URL for ${parsed.hostname} carries a password, which the directory would show to every recon login; put the URL in an environment variable and give --database-url-env NAME instead (or keep the password in ~/.pgpass)`,
    );
}

/**
 * The URL a process uses for a cell: from the directory, from the variable the directory names, or
 * the default cell's URL with another database name (`homeUrl`).
 */
export function resolveCellUrl(cell: CellEntry, env: NodeJS.ProcessEnv, homeUrl: string): ResolvedCell {
  const base = { name: cell.name, taskQueue: cell.taskQueue };
  if (cell.databaseUrl !== null) return { ...base, databaseUrl: cell.databaseUrl, urlFrom: 'the directory' };
  if (cell.databaseName !== null) {
    const u = new URL(homeUrl);
    u.pathname = `/${cell.databaseName}`;
    return { ...base, databaseUrl: u.toString(), urlFrom: "the default cell's server" };
  }
  const name = cell.databaseUrlEnv ?? '';
  const url = env[name];
  if (!url)
    throw new ReconError(
      'cell_url_missing',
      `cell "${cell.name}" keeps its database URL in $${name}, which is not set in this process; set it (as on the cell's workers) and run the command again`,
    );
  return { ...base, databaseUrl: url, urlFrom: `$${name}` };
}

/** A connection failure of a cell as one line a support person can act on. */
export function cellUnavailable(cell: ResolvedCell, err: unknown): ReconError {
  const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
  return new ReconError(
    'cell_unavailable',
    `cell "${cell.name}" (${redactDatabaseUrl(cell.databaseUrl)}, from ${cell.urlFrom}) does not answer: ${why}; its tenants wait until it is back, other cells are not affected`,
  );
}
