import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPool, type Pool } from '../../src/db/pool';
import { SCHEMA_COMMAND, SCHEMA_FILE, renderSchema } from '../../scripts/schema-snapshot';

// The global setup applied every migration to this database; other test files add tenants, rows
// and login roles to it, none of which the snapshot may depend on.
describe('docs/schema.sql', () => {
  let db: Pool;
  beforeAll(() => {
    db = createPool(inject('databaseUrl'), 2);
  });
  afterAll(async () => {
    await db.end();
  });

  it('is the schema the migrations build', async () => {
    const checkedIn = await readFile(SCHEMA_FILE, 'utf8').catch(() => '(missing)');
    expect(await renderSchema(db), `docs/schema.sql is stale: run \`${SCHEMA_COMMAND}\` and commit the result`).toBe(
      checkedIn,
    );
  });

  it('draws every table, policy and trigger of the database', async () => {
    const text = await renderSchema(db);
    const { rows } = await db.query<{ kind: string; name: string }>(
      `select 'table' as kind, relname as name from pg_class where relnamespace = current_schema()::regnamespace and relkind = 'r'
       union all select 'policy', format('%s ON %s', policyname, tablename) from pg_policies where schemaname = current_schema()
       union all select 'trigger', format('%s %s', tgname, tgrelid::regclass) from pg_trigger t where not tgisinternal
         and tgrelid in (select oid from pg_class where relnamespace = current_schema()::regnamespace)`,
    );
    expect(rows.length).toBeGreaterThan(20);
    for (const r of rows) {
      const drawn =
        r.kind === 'table'
          ? `CREATE TABLE ${r.name} (`
          : r.kind === 'policy'
            ? `CREATE POLICY ${r.name} AS`
            : `CREATE TRIGGER ${r.name.split(' ')[0]} `;
      expect(text, `${r.kind} ${r.name}`).toContain(drawn);
    }
  });
});
