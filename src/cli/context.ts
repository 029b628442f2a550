import type { Client } from '@temporalio/client';
import { resolveSettings, databaseUrlOnly, defaultTaskQueue, type Settings } from '../config';
import type { Pool } from '../db/pool';
import { connectClient } from '../temporal/connection';
import { ReconError, oneLine } from '../domain/errors';
import { CellRouter } from '../cells/router';
import type { ResolvedCell } from '../domain/cells';

/** A failed connection to Temporal, said once for every command: where we looked and what to do. */
export function temporalUnavailable(s: Settings, err: unknown): ReconError {
  if (err instanceof ReconError) return err;
  return new ReconError(
    'temporal_unavailable',
    `cannot reach Temporal at ${s.temporalAddress} (settings from ${s.from}): ${oneLine(err instanceof Error ? err.message : String(err))}; start \`recon dev\` or set TEMPORAL_ADDRESS`,
  );
}

/**
 * Opens what a command needs, once, and closes it when the command ends. A command about one
 * tenant is routed to that tenant's cell before it runs (main.ts): from then on db() is the cell's
 * database and settings().taskQueue the queue its workers poll.
 */
export class CommandContext {
  private client?: Client;
  private settingsCache?: Settings;
  private router?: CellRouter;
  private routed?: ResolvedCell;

  settings(): Settings {
    this.settingsCache ??= resolveSettings();
    return this.routed ? { ...this.settingsCache, taskQueue: this.routed.taskQueue } : this.settingsCache;
  }

  cells(): CellRouter {
    if (!this.router) {
      const url = process.env.DATABASE_URL || this.settingsCache?.databaseUrl || databaseUrlOnly();
      this.router = new CellRouter({
        databaseUrl: url,
        taskQueue: defaultTaskQueue(),
        urlFrom: process.env.DATABASE_URL ? 'DATABASE_URL' : 'recon dev',
      });
    }
    return this.router;
  }

  /** The routed cell's database; the default cell's (which holds the directory) before routing. */
  db(): Pool {
    return this.routed ? this.cells().pool(this.routed) : this.cells().homePool();
  }

  /** The cell the command was routed to (the default cell when none was). */
  cell(): ResolvedCell {
    return this.routed ?? this.cells().defaultCell();
  }

  async routeToTenant(tenant: string): Promise<ResolvedCell> {
    this.routed = await this.cells().cellFor(tenant);
    return this.routed;
  }

  routeToCell(cell: ResolvedCell): void {
    this.routed = cell;
  }

  /**
   * Ids of disputes and outcomes are numbered per database, so with more than one cell the same id
   * names different rows in different cells: the tenant must say which.
   */
  async requireTenantForId(tenant: string | undefined, what: string): Promise<void> {
    if (tenant) return;
    if ((await this.cells().entries()).length > 0)
      throw new ReconError(
        'tenant_required',
        `${what} ids are numbered per cell and this installation has more than one; add --tenant TENANT`,
      );
  }

  async temporal(): Promise<Client> {
    if (!this.client) {
      const s = this.settings();
      this.client = await connectClient(s.temporalAddress, s.namespace).catch((err: unknown) => {
        throw temporalUnavailable(s, err);
      });
    }
    return this.client;
  }

  async close(): Promise<void> {
    await this.client?.connection.close().catch(() => undefined);
    await this.router?.close();
  }
}
