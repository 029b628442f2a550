import type { Client } from '@temporalio/client';
import { resolveSettings, databaseUrlOnly, type Settings } from '../config';
import { createPool, type Pool } from '../db/pool';
import { connectClient } from '../temporal/connection';
import { ReconError, oneLine } from '../domain/errors';

/** A failed connection to Temporal, said once for every command: where we looked and what to do. */
export function temporalUnavailable(s: Settings, err: unknown): ReconError {
  if (err instanceof ReconError) return err;
  return new ReconError(
    'temporal_unavailable',
    `cannot reach Temporal at ${s.temporalAddress} (settings from ${s.from}): ${oneLine(err instanceof Error ? err.message : String(err))}; start \`recon dev\` or set TEMPORAL_ADDRESS`,
  );
}

/** Opens what a command needs, once, and closes it when the command ends. */
export class CommandContext {
  private pool?: Pool;
  private client?: Client;
  private settingsCache?: Settings;

  settings(): Settings {
    this.settingsCache ??= resolveSettings();
    return this.settingsCache;
  }

  db(): Pool {
    this.pool ??= createPool(process.env.DATABASE_URL || this.settingsCache?.databaseUrl || databaseUrlOnly());
    return this.pool;
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
    await this.pool?.end().catch(() => undefined);
  }
}
