import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createPool, type Pool } from '../../src/db/pool';
import type { PostgresClaimSourceConfig } from '../../src/domain/sources';
import { startEmbeddedPostgres, type LocalPostgres } from '../../src/stack/postgres';

/**
 * The AI side's own database for tests: a second embedded PostgreSQL on its own data directory
 * and port, with a login that may only read (as a customer would give us).
 */
export interface AiDatabase {
  admin: Pool;
  /** The superuser's URL (it could write, were it not for the read-only transaction). */
  adminUrl: string;
  /** The read-only login's URL. */
  readerUrl: string;
  readerPassword: string;
  port: number;
  /** Creates schema `ai`'s table `name` of claims, readable by the read-only login. */
  createClaimTable(name: string): Promise<void>;
  stop(): Promise<void>;
}

export const READER_PASSWORD = 'reader-s3cret-pw';

export async function startAiDatabase(): Promise<AiDatabase> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'recon-ai-pg-'));
  const pg: LocalPostgres = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg') });
  const admin = createPool(pg.url, 2);
  await admin.query(`create schema if not exists ai`);
  await admin.query(`do $$ begin
      if not exists (select 1 from pg_roles where rolname = 'recon_reader') then
        create role recon_reader login password '${READER_PASSWORD}';
      end if; end $$`);
  await admin.query(`grant usage on schema ai to recon_reader`);
  const reader = new URL(pg.url);
  reader.username = 'recon_reader';
  reader.password = READER_PASSWORD;
  return {
    admin,
    adminUrl: pg.url,
    readerUrl: reader.toString(),
    readerPassword: READER_PASSWORD,
    port: pg.port,
    async createClaimTable(name) {
      await admin.query(`create table ai.${name} (
        claim_id     text primary key,
        outcome_type text not null,
        subject_ref  text not null,
        occurred_at  timestamptz not null,
        attributes   jsonb not null default '{}',
        retracted    boolean not null default false,
        retracted_at timestamptz,
        updated_at   timestamptz not null default clock_timestamp())`);
      await admin.query(`grant select on ai.${name} to recon_reader`);
    },
    async stop() {
      await admin.end();
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A contract's postgres claim source reading `ai.<relation>` with the URL from AI_CLAIMS_URL. */
export function aiSource(relation: string, pageSize = 1000): PostgresClaimSourceConfig {
  return {
    kind: 'postgres',
    urlEnv: 'AI_CLAIMS_URL',
    schema: 'ai',
    relation,
    updatedAtColumn: 'updated_at',
    idColumn: 'claim_id',
    pageSize,
    pagesPerChunk: 20,
  };
}
