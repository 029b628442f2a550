import { z } from 'zod';
import type { Pool } from './pool';
import { inTransaction } from './pool';
import { ReconError } from '../domain/errors';

/** The NOLOGIN group roles of migration 006; a login is a member of one of them. */
export const GROUP_ROLES = ['recon_worker', 'recon_support', 'recon_finance'] as const;
export type GroupRole = (typeof GROUP_ROLES)[number];

export const LoginSpecSchema = z.object({
  // Lower case only: the name is used unquoted in psql and connection strings without surprises.
  login: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a role name such as acme_finance'),
  password: z.string().min(12, 'at least 12 characters'),
  group: z.enum(GROUP_ROLES),
  /** 'all': every tenant, for the multi-tenant worker; otherwise the tenants this login may see. */
  tenants: z.union([z.literal('all'), z.array(z.string().min(1)).min(1)]),
});
export type LoginSpec = z.infer<typeof LoginSpecSchema>;

/**
 * Creates a login role in one group and grants it its tenants, in one transaction. Needs the
 * owner (or a role with CREATEROLE that owns tenant_access); the login itself can change nothing
 * of this. The password travels in the statement: keep statement logging off while it runs.
 */
export async function createLogin(pool: Pool, spec: LoginSpec): Promise<void> {
  const parsed = LoginSpecSchema.safeParse(spec);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new ReconError('invalid_login', `field ${i.path.join('.')}: ${i.message}`);
  }
  const s = parsed.data;
  await inTransaction(pool, async (db) => {
    const { rows } = await db.query('select 1 from pg_roles where rolname = $1', [s.login]);
    if (rows.length)
      throw new ReconError(
        'login_exists',
        `a role named ${s.login} already exists in this cluster; pick another name or grant it tenants with tenant_access`,
      );
    await db.query(
      `create role ${db.escapeIdentifier(s.login)} login password ${db.escapeLiteral(s.password)} in role ${db.escapeIdentifier(s.group)}`,
    );
    const tenants = s.tenants === 'all' ? [null] : s.tenants;
    try {
      await db.query(
        'insert into tenant_access (login, tenant_id) select $1::regrole, t from unnest($2::text[]) as t',
        [s.login, tenants],
      );
    } catch (err) {
      if ((err as { code?: string }).code === '23503') {
        throw new ReconError(
          'unknown_tenant',
          `cannot grant ${s.login} tenants ${tenants.join(', ')}: apply each tenant's contract first`,
        );
      }
      throw err;
    }
  });
}

/** Removes a login and its tenant grants. */
export async function dropLogin(pool: Pool, login: string): Promise<void> {
  await inTransaction(pool, async (db) => {
    await db.query('delete from tenant_access where login::oid = (select oid from pg_roles where rolname = $1)', [
      login,
    ]);
    await db.query(`drop role if exists ${db.escapeIdentifier(login)}`);
  });
}

/** What the connected login may see: every tenant, or these. */
export async function tenantScope(pool: Pool): Promise<{ allTenants: boolean; tenants: string[] }> {
  const {
    rows: [r],
  } = await pool.query<{ all: boolean; tenants: string[] }>(
    'select recon_sees_all_tenants() as all, recon_visible_tenants() as tenants',
  );
  return { allTenants: r.all, tenants: r.tenants };
}

/** The same database as `url`, connecting as another login. */
export function databaseUrlAs(url: string, login: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(login);
  u.password = encodeURIComponent(password);
  return u.toString();
}
