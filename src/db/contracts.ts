import { createHash } from 'node:crypto';
import type { Pool } from './pool';
import { inTransaction } from './pool';
import { ContractSchema, contractInEffectAt, type Contract, type ContractVersion } from '../domain/contract';
import { ReconError } from '../domain/errors';

export interface ApplyResult {
  tenant: string;
  version: number;
  effectiveFrom: string;
  created: boolean;
}

/** Stores a contract version; applying the same body again is a no-op. */
export async function applyContract(pool: Pool, contract: Contract): Promise<ApplyResult> {
  const body = JSON.stringify(contract);
  const sha = createHash('sha256').update(body).digest('hex');
  return inTransaction(pool, async (db) => {
    await db.query('insert into tenants (tenant_id) values ($1) on conflict do nothing', [contract.tenant]);
    // Versions are numbered per tenant; the lock keeps two concurrent applies from taking one number.
    await db.query('select pg_advisory_xact_lock(hashtext($1))', [`contract:${contract.tenant}`]);
    const same = await db.query<{ version: number; effective_from: Date }>(
      'select version, effective_from from contracts where tenant_id = $1 and body_sha256 = $2',
      [contract.tenant, sha],
    );
    if (same.rows[0]) {
      return { tenant: contract.tenant, version: same.rows[0].version, effectiveFrom: same.rows[0].effective_from.toISOString(), created: false };
    }
    const clash = await db.query('select version from contracts where tenant_id = $1 and effective_from = $2', [contract.tenant, contract.effectiveFrom]);
    if (clash.rows[0]) {
      throw new ReconError('contract_conflict', `tenant ${contract.tenant} already has version ${clash.rows[0].version} effective from ${contract.effectiveFrom}; give the new version a later effectiveFrom`);
    }
    const { rows } = await db.query<{ version: number }>(
      `insert into contracts (tenant_id, version, effective_from, body, body_sha256)
       select $1, coalesce(max(version), 0) + 1, $2, $3, $4 from contracts where tenant_id = $1
       returning version`,
      [contract.tenant, contract.effectiveFrom, body, sha],
    );
    return { tenant: contract.tenant, version: rows[0].version, effectiveFrom: new Date(contract.effectiveFrom).toISOString(), created: true };
  });
}

export async function loadContractVersions(pool: Pool, tenant: string): Promise<ContractVersion[]> {
  const { rows } = await pool.query<{ version: number; effective_from: Date; body: unknown }>(
    'select version, effective_from, body from contracts where tenant_id = $1 order by effective_from',
    [tenant],
  );
  if (rows.length === 0) throw new ReconError('unknown_tenant', `no contract for tenant "${tenant}": apply one with \`recon contract apply FILE\``);
  return rows.map((r) => ({ version: r.version, effectiveFrom: r.effective_from, body: ContractSchema.parse(r.body) }));
}

/** The contract that governs a run as of `asOf`; before the first version, none does. */
export function contractForRun(versions: ContractVersion[], asOf: Date): ContractVersion {
  const v = contractInEffectAt(versions, asOf);
  if (!v) {
    throw new ReconError('no_contract_in_effect', `no contract version is in effect at ${asOf.toISOString()} (the first starts ${versions[0]?.effectiveFrom.toISOString()})`);
  }
  return v;
}

export function latestContract(versions: ContractVersion[]): ContractVersion {
  return versions[versions.length - 1];
}
