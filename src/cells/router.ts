import { createPool, type Pool } from '../db/pool';
import { ReconError, toReconError } from '../domain/errors';
import { DEFAULT_CELL, cellUnavailable, resolveCellUrl, type CellEntry, type ResolvedCell } from '../domain/cells';
import { cellEntryOfTenant, listCellEntries, placementsByCell } from './directory';

const CONNECTION_FAILURES = new Set(['database_unavailable', 'database_login_failed']);

/** A cell with the reason it cannot be used from this process (its URL variable unset). */
export interface UnresolvedCell {
  name: string;
  taskQueue: string;
  error: ReconError;
}

/**
 * Finds each tenant's cell through the directory in the default cell's database, and keeps one
 * pool per cell for the life of a command. Nothing here moves data between cells: a tenant is
 * served wholly by its cell's database and task queue.
 */
export class CellRouter {
  private readonly pools = new Map<string, Pool>();

  constructor(
    private readonly home: { databaseUrl: string; taskQueue: string; urlFrom: string },
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly poolSize = 5,
  ) {}

  defaultCell(): ResolvedCell {
    return {
      name: DEFAULT_CELL,
      databaseUrl: this.home.databaseUrl,
      taskQueue: this.home.taskQueue,
      urlFrom: this.home.urlFrom,
    };
  }

  /** The default cell's database, which also holds the directory. */
  homePool(): Pool {
    return this.pool(this.defaultCell());
  }

  pool(cell: ResolvedCell): Pool {
    let p = this.pools.get(cell.name);
    if (!p) {
      p = createPool(cell.databaseUrl, this.poolSize);
      this.pools.set(cell.name, p);
    }
    return p;
  }

  async entries(): Promise<CellEntry[]> {
    return listCellEntries(this.homePool());
  }

  async cellFor(tenant: string): Promise<ResolvedCell> {
    const e = await cellEntryOfTenant(this.homePool(), tenant);
    return e ? resolveCellUrl(e, this.env, this.home.databaseUrl) : this.defaultCell();
  }

  async cellNamed(name: string): Promise<ResolvedCell> {
    if (name === DEFAULT_CELL) return this.defaultCell();
    const e = (await this.entries()).find((c) => c.name === name);
    if (!e) throw new ReconError('unknown_cell', `no cell "${name}": \`recon cell list\` shows the cells`);
    return resolveCellUrl(e, this.env, this.home.databaseUrl);
  }

  /** Every cell, the default first; a cell whose URL this process cannot read comes back unresolved. */
  async all(): Promise<Array<ResolvedCell | UnresolvedCell>> {
    const out: Array<ResolvedCell | UnresolvedCell> = [this.defaultCell()];
    for (const e of await this.entries()) {
      try {
        out.push(resolveCellUrl(e, this.env, this.home.databaseUrl));
      } catch (err) {
        out.push({ name: e.name, taskQueue: e.taskQueue, error: toReconError(err) });
      }
    }
    return out;
  }

  /**
   * Runs fn against one cell's database; a cell that does not answer is reported as that cell's
   * outage (cell_unavailable), not as a fault of DATABASE_URL.
   */
  async within<T>(cell: ResolvedCell, fn: (pool: Pool) => Promise<T>): Promise<T> {
    try {
      return await fn(this.pool(cell));
    } catch (err) {
      // A refused login is as much that cell's outage as a stopped server: it stays in the cell.
      if (cell.name !== DEFAULT_CELL && CONNECTION_FAILURES.has(toReconError(err).code))
        throw cellUnavailable(cell, err);
      throw err;
    }
  }

  /**
   * Runs fn in every cell. A cell that cannot be used (down, its URL variable unset) is returned
   * with the tenants the directory places there, so a fleet-wide answer names who it is missing.
   */
  async eachCell<T>(fn: (pool: Pool, cell: ResolvedCell) => Promise<T>): Promise<CellsAnswer<T>> {
    const placed = await placementsByCell(this.homePool());
    const out: CellsAnswer<T> = { answered: [], down: [] };
    for (const c of await this.all()) {
      const tenants = placed.get(c.name) ?? [];
      if (!isResolved(c)) {
        out.down.push({ cell: c.name, tenants, why: c.error.message });
        continue;
      }
      try {
        out.answered.push({ cell: c, value: await this.within(c, (pool) => fn(pool, c)) });
      } catch (err) {
        const e = toReconError(err);
        // Only an outage is a cell's own answer; a bug or a refusal fails the whole command.
        if (e.code !== 'cell_unavailable') throw err;
        out.down.push({ cell: c.name, tenants, why: e.message });
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.end().catch(() => undefined)));
    this.pools.clear();
  }
}

export interface CellsAnswer<T> {
  answered: Array<{ cell: ResolvedCell; value: T }>;
  down: Array<{ cell: string; tenants: string[]; why: string }>;
}

export function isResolved(c: ResolvedCell | UnresolvedCell): c is ResolvedCell {
  return 'databaseUrl' in c;
}
