import type { Pool } from '../db/pool';
import type { RunRow } from '../db/rows';
import { ReconError } from '../domain/errors';

export interface TenantRow {
  tenant: string;
  /** The contract version in effect now; the first version while none has started yet. */
  contractVersion: number | null;
  versions: number;
  effectiveFrom: string | null;
  currency: string | null;
  timezone: string | null;
  lastRun: { runId: number; asOf: string; status: string; startedAt: string; finishedAt: string | null } | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** A row of listTenants' query: its lateral joins give nulls for a tenant with no contract or no run. */
type TenantListing = {
  tenant_id: string;
  version: number | null;
  effective_from: Date | null;
  currency: string | null;
  timezone: string | null;
  versions: number;
} & ({ run_id: null } | Pick<RunRow, 'run_id' | 'as_of' | 'status' | 'started_at' | 'finished_at'>);

/** A listing of a tenant that does not exist is a mistake to name, never an empty success. */
export async function requireTenant(pool: Pool, tenant: string): Promise<void> {
  const { rowCount } = await pool.query('select 1 from tenants where tenant_id = $1', [tenant]);
  if (!rowCount)
    throw new ReconError(
      'unknown_tenant',
      `no tenant "${tenant}": \`recon tenant list\` shows the tenants; \`recon contract apply FILE\` creates one`,
    );
}

/**
 * Every tenant with the contract version in effect now and the run started last (by wall clock, so
 * a re-run of an old asOf shows up: it is what "did the last run work?" asks about).
 */
export async function listTenants(pool: Pool, now: Date): Promise<TenantRow[]> {
  const { rows } = await pool.query<TenantListing>(
    `select t.tenant_id, c.version, c.effective_from, c.body->>'currency' as currency, c.body->>'timezone' as timezone,
            (select count(*)::int from contracts x where x.tenant_id = t.tenant_id) as versions,
            r.run_id, r.as_of, r.status, r.started_at, r.finished_at
       from tenants t
       left join lateral (
         select version, effective_from, body from contracts c where c.tenant_id = t.tenant_id
          order by (c.effective_from <= $1) desc,
                   case when c.effective_from <= $1 then c.effective_from end desc, c.effective_from
          limit 1) c on true
       left join lateral (
         select run_id, as_of, status, started_at, finished_at from runs r where r.tenant_id = t.tenant_id
          order by r.started_at desc, r.run_id desc limit 1) r on true
      order by t.tenant_id`,
    [now],
  );
  return rows.map((r) => ({
    tenant: r.tenant_id,
    contractVersion: r.version,
    versions: r.versions,
    effectiveFrom: iso(r.effective_from),
    currency: r.currency,
    timezone: r.timezone,
    lastRun:
      r.run_id === null
        ? null
        : {
            runId: Number(r.run_id),
            asOf: r.as_of.toISOString(),
            status: r.status,
            startedAt: r.started_at.toISOString(),
            finishedAt: iso(r.finished_at),
          },
  }));
}
