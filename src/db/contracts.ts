import { createHash } from 'node:crypto';
import type { Pool } from './pool';
import { inTransaction } from './pool';
import {
  ContractSchema,
  StoredContractSchema,
  formatZodIssues,
  type Contract,
  type ContractVersion,
} from '../domain/contract';
import {
  contractHistory,
  tenantCurrency,
  typeChanges,
  versionForRun,
  latestVersion,
  type ContractHistory,
} from '../domain/contract-history';
import { ReconError } from '../domain/errors';

export interface ApplyResult {
  tenant: string;
  version: number;
  effectiveFrom: string;
  created: boolean;
}

/**
 * Stores a contract version; applying the same body again is a no-op. Refused: a contract that
 * does not meet ContractSchema (invalid_contract), another effectiveFrom's twin
 * (contract_conflict), another currency than the tenant's (currency_change), and a version that
 * drops or re-identifies an outcome type that already has outcomes (outcome_type_in_use).
 */
export async function applyContract(pool: Pool, contract: Contract): Promise<ApplyResult> {
  // Callers may hand in a body parsed by another schema (or none): the rules are checked here too.
  const checked = ContractSchema.safeParse(contract);
  if (!checked.success)
    throw new ReconError(
      'invalid_contract',
      `contract of ${String(contract?.tenant)}: ${formatZodIssues(checked.error)}`,
    );
  const body = JSON.stringify(contract);
  const sha = createHash('sha256').update(body).digest('hex');
  return inTransaction(pool, async (db) => {
    await db.query('insert into tenants (tenant_id) values ($1) on conflict do nothing', [contract.tenant]);
    // Versions are numbered per tenant; the lock keeps two concurrent applies from taking one number.
    await db.query('select pg_advisory_xact_lock(hashtext($1))', [`contract:${contract.tenant}`]);
    // jsonb equality ignores key order: the body `contract show` prints (in jsonb's order) is
    // the same contract as the file it was applied from.
    const same = await db.query<{ version: number; effective_from: Date }>(
      'select version, effective_from from contracts where tenant_id = $1 and (body_sha256 = $2 or body = $3::jsonb) order by version limit 1',
      [contract.tenant, sha, body],
    );
    if (same.rows[0]) {
      return {
        tenant: contract.tenant,
        version: same.rows[0].version,
        effectiveFrom: same.rows[0].effective_from.toISOString(),
        created: false,
      };
    }
    const clash = await db.query<{ version: number }>(
      'select version from contracts where tenant_id = $1 and effective_from = $2',
      [contract.tenant, contract.effectiveFrom],
    );
    if (clash.rows[0]) {
      throw new ReconError(
        'contract_conflict',
        `tenant ${contract.tenant} already has version ${clash.rows[0].version} effective from ${contract.effectiveFrom}; give the new version a later effectiveFrom`,
      );
    }
    const existing = await readVersions(db, contract.tenant);
    if (existing.length > 0) {
      const history = contractHistory(contract.tenant, existing);
      const currency = tenantCurrency(history);
      if (contract.currency !== currency) {
        throw new ReconError(
          'currency_change',
          `tenant ${contract.tenant} bills in ${currency} (since version ${history.versions[0].version}); a version in ${contract.currency} is refused: a tenant keeps one currency for life, so set "currency": "${currency}" or onboard a new tenant`,
        );
      }
      await refuseTypeChangesInUse(db, history, contract);
    }
    const { rows } = await db.query<{ version: number }>(
      `insert into contracts (tenant_id, version, effective_from, body, body_sha256)
       select $1, coalesce(max(version), 0) + 1, $2, $3, $4 from contracts where tenant_id = $1
       returning version`,
      [contract.tenant, contract.effectiveFrom, body, sha],
    );
    return {
      tenant: contract.tenant,
      version: rows[0].version,
      effectiveFrom: new Date(contract.effectiveFrom).toISOString(),
      created: true,
    };
  });
}

/** Outcomes are keyed by type and subject key: a type that has some keeps its name, source and match key. */
async function refuseTypeChangesInUse(
  db: Pick<Pool, 'query'>,
  history: ContractHistory,
  contract: Contract,
): Promise<void> {
  const changes = typeChanges(history, contract);
  if (changes.length === 0) return;
  // Only the changed types are counted: a count over all of a large tenant's outcomes is not needed.
  const { rows } = await db.query<{ outcome_type: string; n: string }>(
    'select outcome_type, count(*) as n from outcomes where tenant_id = $1 and outcome_type = any($2::text[]) group by outcome_type',
    [contract.tenant, changes.map((c) => c.outcomeType)],
  );
  const counts = new Map(rows.map((r) => [r.outcome_type, Number(r.n)]));
  const inUse = changes.filter((c) => (counts.get(c.outcomeType) ?? 0) > 0);
  if (inUse.length === 0) return;
  const what = inUse
    .map(
      (c) =>
        `${c.outcomeType} (${counts.get(c.outcomeType)} outcome${counts.get(c.outcomeType) === 1 ? '' : 's'}): the new version ${c.change}`,
    )
    .join('; ');
  throw new ReconError(
    'outcome_type_in_use',
    `tenant ${contract.tenant}: ${what}; outcome types with outcomes must keep their name, record source and match key in every later version (add a new type instead)`,
  );
}

interface VersionRow {
  version: number;
  effective_from: Date;
  applied_at: Date;
  body: unknown;
}

async function readVersions(db: Pick<Pool, 'query'>, tenant: string): Promise<ContractVersion[]> {
  const { rows } = await db.query<VersionRow>(
    'select version, effective_from, applied_at, body from contracts where tenant_id = $1 order by effective_from',
    [tenant],
  );
  return rows.map((r) => ({
    version: r.version,
    effectiveFrom: r.effective_from,
    appliedAt: r.applied_at,
    body: StoredContractSchema.parse(r.body),
  }));
}

/** Every version of the tenant's contract; unknown_tenant when it has none. */
export async function loadContractHistory(pool: Pool, tenant: string): Promise<ContractHistory> {
  return contractHistory(tenant, await readVersions(pool, tenant));
}

/** @deprecated The versions of a tenant, ascending by effectiveFrom; use loadContractHistory. */
export async function loadContractVersions(pool: Pool, tenant: string): Promise<ContractVersion[]> {
  return (await loadContractHistory(pool, tenant)).versions;
}

/** The contract that governs a run as of `asOf`; before the first version, none does. */
export function contractForRun(versions: ContractVersion[], asOf: Date): ContractVersion {
  return versionForRun(contractHistory('(tenant)', versions), asOf);
}

export function latestContract(versions: ContractVersion[]): ContractVersion {
  return latestVersion(contractHistory('(tenant)', versions));
}

/**
 * Parsed contract histories, reused while the tenant's newest version number is unchanged.
 * Versions are never updated or deleted, only added, so (tenant, newest version) identifies the
 * whole history: an activity pays one index probe instead of reading and validating every
 * version again, and a version applied mid-run is seen by the next activity call.
 */
export class ContractCache {
  private readonly entries = new Map<string, { newest: number; history: ContractHistory }>();

  constructor(private readonly pool: Pool) {}

  async history(tenant: string): Promise<ContractHistory> {
    const { rows } = await this.pool.query<{ newest: number | null }>(
      'select max(version) as newest from contracts where tenant_id = $1',
      [tenant],
    );
    const newest = rows[0]?.newest ?? null;
    const cached = this.entries.get(tenant);
    if (cached && newest !== null && cached.newest === newest) return cached.history;
    const history = await loadContractHistory(this.pool, tenant);
    this.entries.set(tenant, { newest: Math.max(...history.versions.map((v) => v.version)), history });
    return history;
  }
}

export interface ContractVersionSummary {
  version: number;
  effectiveFrom: string;
  appliedAt: string;
  currency: string;
  timezone: string;
  outcomeTypes: string[];
}

/** The versions for `recon contract list`, ascending by version number. */
export async function listContractVersions(pool: Pool, tenant: string): Promise<ContractVersionSummary[]> {
  const h = await loadContractHistory(pool, tenant);
  return [...h.versions]
    .sort((a, b) => a.version - b.version)
    .map((v) => ({
      version: v.version,
      effectiveFrom: v.effectiveFrom.toISOString(),
      appliedAt: (v.appliedAt ?? v.effectiveFrom).toISOString(),
      currency: v.body.currency,
      timezone: v.body.timezone,
      outcomeTypes: Object.keys(v.body.outcomeTypes).sort(),
    }));
}
