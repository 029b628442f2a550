import type { Pool } from '../db/pool';
import { ReconError } from '../domain/errors';
import type { CellEntry } from '../domain/cells';

interface CellRow {
  name: string;
  database_url: string | null;
  database_url_env: string | null;
  database_name: string | null;
  task_queue: string;
}

const entry = (r: CellRow): CellEntry => ({
  name: r.name,
  databaseUrl: r.database_url,
  databaseUrlEnv: r.database_url_env,
  databaseName: r.database_name,
  taskQueue: r.task_queue,
});

/** A schema from before cells (migration 017 not applied yet) has one cell and no directory. */
function beforeCells(err: unknown): boolean {
  return (err as { code?: string }).code === '42P01';
}

export async function listCellEntries(home: Pool): Promise<CellEntry[]> {
  try {
    const { rows } = await home.query<CellRow>(
      'select name, database_url, database_url_env, database_name, task_queue from cells order by name',
    );
    return rows.map(entry);
  } catch (err) {
    if (beforeCells(err)) return [];
    throw err;
  }
}

/** The tenant's cell, or null when it has no placement: it lives in the default cell. */
export async function cellEntryOfTenant(home: Pool, tenant: string): Promise<CellEntry | null> {
  try {
    const { rows } = await home.query<CellRow>(
      `select c.name, c.database_url, c.database_url_env, c.database_name, c.task_queue
         from cell_tenants p join cells c on c.name = p.cell where p.tenant_id = $1`,
      [tenant],
    );
    return rows[0] ? entry(rows[0]) : null;
  } catch (err) {
    if (beforeCells(err)) return null;
    throw err;
  }
}

/** Tenants placed per cell; the default cell's tenants are the ones with no row. */
export async function placementsByCell(home: Pool): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  try {
    const { rows } = await home.query<{ cell: string; tenant_id: string }>(
      'select cell, tenant_id from cell_tenants order by cell, tenant_id',
    );
    for (const r of rows) out.set(r.cell, [...(out.get(r.cell) ?? []), r.tenant_id]);
  } catch (err) {
    if (!beforeCells(err)) throw err;
  }
  return out;
}

function ownerOnly(err: unknown, what: string): never {
  if ((err as { code?: string }).code === '42501')
    throw new ReconError(
      'cell_not_permitted',
      `${what} changes the cell directory, which only the schema's owner may do; run it with the DATABASE_URL that runs \`recon migrate\``,
    );
  throw err;
}

export async function insertCell(home: Pool, cell: CellEntry): Promise<void> {
  try {
    await home.query(
      `insert into cells (name, database_url, database_url_env, database_name, task_queue)
       values ($1, $2, $3, $4, $5)`,
      [cell.name, cell.databaseUrl, cell.databaseUrlEnv, cell.databaseName, cell.taskQueue],
    );
  } catch (err) {
    if ((err as { code?: string }).code === '23505')
      throw new ReconError(
        'cell_exists',
        `a cell named "${cell.name}" or polling task queue "${cell.taskQueue}" is already in the directory; \`recon cell list\` shows the cells`,
      );
    if (beforeCells(err))
      throw new ReconError('schema_outdated', 'this database has no cell directory yet: run `recon migrate` first');
    ownerOnly(err, '`recon cell add`');
  }
}

/** Records the placement; true when it was new, false when the tenant was already placed there. */
export async function insertPlacement(home: Pool, tenant: string, cell: string): Promise<boolean> {
  try {
    const r = await home.query(
      'insert into cell_tenants (tenant_id, cell) values ($1, $2) on conflict (tenant_id) do nothing',
      [tenant, cell],
    );
    return r.rowCount === 1;
  } catch (err) {
    if (beforeCells(err))
      throw new ReconError('schema_outdated', 'this database has no cell directory yet: run `recon migrate` first');
    return ownerOnly(err, '`recon cell place`');
  }
}
