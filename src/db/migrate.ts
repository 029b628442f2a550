import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Pool } from './pool';
import { ReconError } from '../domain/errors';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

export interface MigrationResult {
  applied: string[];
  alreadyApplied: number;
}

/** Applies numbered plain-SQL migrations in order, each in its own transaction. */
export async function migrate(pool: Pool, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  try {
    return await applyMigrations(pool, dir);
  } catch (err) {
    // A recon_* login (or any role but the owner) may not change the schema: say who may.
    if ((err as { code?: string }).code === '42501') {
      throw new ReconError(
        'migrate_not_permitted',
        `${(err as Error).message}: run \`recon migrate\` as the owner of the schema (the first time in a cluster it also needs CREATEROLE to create the recon_* roles)`,
      );
    }
    throw err;
  }
}

async function applyMigrations(pool: Pool, dir: string): Promise<MigrationResult> {
  const files = (await readdir(dir)).filter((f) => /^\d{3}_.+\.sql$/.test(f)).sort();
  const client = await pool.connect();
  try {
    // Serialises concurrent migrators (two workers starting at once).
    await client.query('select pg_advisory_lock(724001)');
    await client.query(`create table if not exists schema_migrations (
      version integer primary key, name text not null, applied_at timestamptz not null default now())`);
    const done = new Set(
      (await client.query<{ version: number }>('select version from schema_migrations')).rows.map((r) => r.version),
    );
    const applied: string[] = [];
    for (const file of files) {
      const version = Number(file.slice(0, 3));
      if (done.has(version)) continue;
      const sql = await readFile(path.join(dir, file), 'utf8');
      await client.query('begin');
      try {
        await client.query(sql);
        await client.query('insert into schema_migrations (version, name) values ($1, $2)', [version, file]);
        await client.query('commit');
      } catch (err) {
        await client.query('rollback');
        throw Object.assign(new Error(`migration ${file} failed: ${(err as Error).message}`), {
          code: (err as { code?: string }).code,
        });
      }
      applied.push(file);
    }
    return { applied, alreadyApplied: done.size };
  } finally {
    await client.query('select pg_advisory_unlock(724001)').catch(() => undefined);
    client.release();
  }
}
