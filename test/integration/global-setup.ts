import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { createPool } from '../../src/db/pool';
import { migrate } from '../../src/db/migrate';
import { startEmbeddedPostgres } from '../../src/stack/postgres';
import { startTemporalDevServer } from '../../src/stack/temporal-server';
import { bundleWorkflows } from '../../src/temporal/worker';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    temporalAddress: string;
    workflowBundlePath: string;
  }
}

/** Starts a real PostgreSQL and a real Temporal dev server once for all integration tests. */
export default async function setup(project: TestProject) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'recon-it-'));
  const log = (m: string) => console.log(m);
  const t0 = Date.now();
  const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), log });
  const temporal = await startTemporalDevServer({ ui: false, log });
  const pool = createPool(pg.url);
  await migrate(pool);
  await pool.end();
  const bundle = await bundleWorkflows();
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  await writeFile(bundlePath, bundle.code);
  console.log(
    `[it] PostgreSQL ${pg.url.replace(/:[^:@]*@/, ':***@')} and ${temporal.how} at ${temporal.address} ready in ${Date.now() - t0} ms`,
  );
  project.provide('databaseUrl', pg.url);
  project.provide('temporalAddress', temporal.address);
  project.provide('workflowBundlePath', bundlePath);
  return async () => {
    await temporal.stop();
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
