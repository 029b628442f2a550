import { migrate, type MigrationResult } from '../db/migrate';
import type { Pool } from '../db/pool';
import { ReconError, toReconError } from '../domain/errors';
import {
  DEFAULT_CELL,
  cellTaskQueue,
  checkStorableUrl,
  redactDatabaseUrl,
  resolveCellUrl,
  type CellEntry,
  type ResolvedCell,
} from '../domain/cells';
import { cellEntryOfTenant, insertCell, insertPlacement, placementsByCell } from './directory';
import { isResolved, type CellRouter } from './router';

/** Which server and database a connection reached: two URLs can name the same one. */
async function databaseIdentity(pool: Pool): Promise<string> {
  const { rows } = await pool.query<{ id: string }>(
    `select concat_ws('/', coalesce(inet_server_addr()::text, 'socket'), inet_server_port(), current_database(),
                      pg_postmaster_start_time()) as id`,
  );
  return rows[0].id;
}

async function tenantIds(pool: Pool): Promise<string[]> {
  const { rows } = await pool.query<{ tenant_id: string }>('select tenant_id from tenants order by tenant_id');
  return rows.map((r) => r.tenant_id);
}

export interface AddCellResult {
  cell: string;
  taskQueue: string;
  database: string;
  migrations: MigrationResult;
}

/**
 * Adds a cell to the directory: checks that its database answers and is not one the directory
 * already uses, applies the migrations there, and only then records it, so a listed cell is always
 * one whose schema is current. Workers for it are started separately (`recon worker --cell`).
 */
export async function addCell(
  router: CellRouter,
  args: {
    name: string;
    databaseUrl?: string;
    databaseUrlEnv?: string;
    /** Another database on the default cell's server. */
    database?: string;
    /** Create that database first when it does not exist. */
    createDatabase?: boolean;
    taskQueue?: string;
  },
  env: NodeJS.ProcessEnv = process.env,
): Promise<AddCellResult> {
  const given = [args.databaseUrl, args.databaseUrlEnv, args.database].filter((x) => x !== undefined).length;
  if (given !== 1)
    throw new ReconError(
      'invalid_cell',
      "give exactly one of --database-url URL, --database-url-env NAME and --database NAME (a database on the default cell's server)",
    );
  if (args.createDatabase && args.database === undefined)
    throw new ReconError(
      'invalid_cell',
      "--create-database creates a database on the default cell's server: use it with --database NAME",
    );
  if (args.databaseUrl !== undefined) checkStorableUrl(args.databaseUrl);
  const entry: CellEntry = {
    name: args.name,
    databaseUrl: args.databaseUrl ?? null,
    databaseUrlEnv: args.databaseUrlEnv ?? null,
    databaseName: args.database ?? null,
    taskQueue: args.taskQueue ?? cellTaskQueue(router.defaultCell().taskQueue, args.name),
  };
  if (entry.taskQueue === router.defaultCell().taskQueue)
    throw new ReconError(
      'invalid_cell',
      `task queue "${entry.taskQueue}" is the default cell's; give the cell its own`,
    );
  const cell = resolveCellUrl(entry, env, router.defaultCell().databaseUrl);
  if (args.createDatabase) await createDatabaseIfMissing(router.homePool(), args.database!);
  const existing = (await router.all()).filter(isResolved);
  const ids = new Map<string, string>();
  for (const c of existing) ids.set(await router.within(c, databaseIdentity).catch(() => ''), c.name);
  const identity = await router.within(cell, databaseIdentity);
  const same = ids.get(identity);
  if (same !== undefined)
    throw new ReconError(
      'invalid_cell',
      `that URL reaches the database of cell "${same}"; a cell needs a database of its own (on the same server is fine)`,
    );
  const migrations = await router.within(cell, (pool) => migrate(pool));
  const strangers = await router.within(cell, tenantIds);
  await insertCell(router.homePool(), entry);
  // Tenants already in that database (a cell re-added after a loss of the directory) are adopted.
  for (const t of strangers) await placeTenant(router, t, entry.name);
  return { cell: entry.name, taskQueue: entry.taskQueue, database: cell.urlFrom, migrations };
}

async function createDatabaseIfMissing(home: Pool, name: string): Promise<void> {
  const { rowCount } = await home.query('select 1 from pg_database where datname = $1', [name]);
  if (rowCount) return;
  try {
    // A name cannot be a bind parameter; DatabaseNameSchema allows only [a-z0-9_].
    await home.query(`create database ${name}`);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '42P04') return; // created meanwhile
    if (code === '42501')
      throw new ReconError(
        'cell_not_permitted',
        `this login may not create databases; create "${name}" as an administrator (or give the login CREATEDB) and run \`recon cell add\` again without --create-database`,
      );
    throw err;
  }
}

export interface PlaceResult {
  tenant: string;
  cell: string;
  changed: boolean;
}

/**
 * Places a tenant in a cell before its first contract. A tenant that already has rows in another
 * cell stays there: moving data between cells is a deliberate operation (README, "Tenant cells").
 */
export async function placeTenant(router: CellRouter, tenant: string, cellName: string): Promise<PlaceResult> {
  const target = await router.cellNamed(cellName);
  const current = await cellEntryOfTenant(router.homePool(), tenant);
  const currentName = current?.name ?? DEFAULT_CELL;
  if (current && current.name !== target.name)
    throw new ReconError(
      'cell_placement_fixed',
      `tenant "${tenant}" lives in cell "${current.name}"; moving a tenant between cells is not done by recon (README, "Tenant cells")`,
    );
  if (current) return { tenant, cell: currentName, changed: false };
  // Unplaced: the tenant belongs to the default cell as soon as it has rows there.
  const inDefault = (await tenantIds(router.homePool())).includes(tenant);
  if (target.name === DEFAULT_CELL) return { tenant, cell: DEFAULT_CELL, changed: false };
  if (inDefault)
    throw new ReconError(
      'cell_placement_fixed',
      `tenant "${tenant}" already has contracts and data in the default cell; moving a tenant between cells is not done by recon (README, "Tenant cells")`,
    );
  const changed = await insertPlacement(router.homePool(), tenant, target.name);
  return { tenant, cell: target.name, changed };
}

export interface CellReport {
  cell: string;
  taskQueue: string;
  database: string;
  /** Where the URL came from: DATABASE_URL, the directory, $VAR. */
  urlFrom: string;
  reachable: boolean;
  problem: string | null;
  tenants: number | null;
  /** The last migration applied there. */
  schemaVersion: number | null;
  placements: number;
}

/** Every cell, each asked for its tenants and schema; a cell that does not answer says why. */
export async function reportCells(router: CellRouter): Promise<CellReport[]> {
  const cells = await router.all();
  const placed = await placementsByCell(router.homePool());
  return Promise.all(
    cells.map(async (c): Promise<CellReport> => {
      const base = {
        cell: c.name,
        taskQueue: c.taskQueue,
        placements: placed.get(c.name)?.length ?? 0,
      };
      if (!isResolved(c))
        return {
          ...base,
          database: '-',
          urlFrom: '-',
          reachable: false,
          problem: c.error.message,
          tenants: null,
          schemaVersion: null,
        };
      try {
        const facts = await router.within(c, async (pool) => {
          const { rows } = await pool.query<{ tenants: number; version: number | null }>(
            `select (select count(*)::int from tenants) as tenants,
                    (select max(version) from schema_migrations) as version`,
          );
          return rows[0];
        });
        return {
          ...base,
          database: redactedOf(c),
          urlFrom: c.urlFrom,
          reachable: true,
          problem: null,
          tenants: facts.tenants,
          schemaVersion: facts.version,
        };
      } catch (err) {
        return {
          ...base,
          database: redactedOf(c),
          urlFrom: c.urlFrom,
          reachable: false,
          problem: toReconError(err).message,
          tenants: null,
          schemaVersion: null,
        };
      }
    }),
  );
}

const redactedOf = (c: ResolvedCell): string => redactDatabaseUrl(c.databaseUrl);

export interface CellMigration {
  cell: string;
  result: MigrationResult | null;
  problem: string | null;
}

/** `recon migrate` for every cell: each in turn, an unreachable one reported and the rest done. */
export async function migrateCells(router: CellRouter): Promise<CellMigration[]> {
  const out: CellMigration[] = [];
  // The default cell first: it holds the directory the others are read from.
  out.push({ cell: DEFAULT_CELL, result: await migrate(router.homePool()), problem: null });
  for (const c of (await router.all()).slice(1)) {
    if (!isResolved(c)) {
      out.push({ cell: c.name, result: null, problem: c.error.message });
      continue;
    }
    try {
      out.push({ cell: c.name, result: await router.within(c, (pool) => migrate(pool)), problem: null });
    } catch (err) {
      out.push({ cell: c.name, result: null, problem: toReconError(err).message });
    }
  }
  return out;
}
