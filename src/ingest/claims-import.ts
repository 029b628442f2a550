import type { Pool, PoolClient } from '../db/pool';
import { loadContractVersions } from '../db/contracts';
import { normaliseMatchKey, type ContractVersion } from '../domain/contract';
import { ReconError } from '../domain/errors';
import type { RowResult } from '../sources/rows';
import { checkRowTenant, stageClaimRow } from './claim-row';
import { insertQuarantine, quarantinedCount, stageRows, withImport, type ImportSummary } from './staging';

export interface ClaimImportArgs {
  tenant: string;
  source: string;
  origin: string;
  contentSha256: string;
  rows: AsyncIterable<RowResult>;
  receivedAt: Date;
  /** Runs inside the import's transaction, e.g. to save an HTTP cursor with the claims it covers. */
  beforeCommit?: (db: PoolClient) => Promise<void>;
}

interface StageRow {
  row: number;
  line: number;
  raw: string;
  claimId: string;
  outcomeType: string | null;
  subjectRef: string | null;
  subjectKey: string | null;
  occurredAt: string | null;
  attributes: string;
  sha: string | null;
  retract: boolean;
  retractedAt: string | null;
}

/** Case rules per outcome type, from every contract version (a type may be retired later). */
function caseRules(versions: ContractVersion[]): Map<string, boolean> {
  const rules = new Map<string, boolean>();
  for (const v of versions) for (const [t, ot] of Object.entries(v.body.outcomeTypes)) rules.set(t, ot.matchKey.caseInsensitive);
  return rules;
}

async function stageBatch(db: PoolClient, batch: StageRow[]): Promise<void> {
  const col = <K extends keyof StageRow>(k: K) => batch.map((r) => r[k]);
  await db.query(
    `insert into stage_claims (row_number, line, raw, claim_id, outcome_type, subject_ref, subject_key, occurred_at, attributes, content_sha256, retract, retracted_at)
     select * from unnest($1::int[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::jsonb[], $10::text[], $11::bool[], $12::timestamptz[])`,
    [col('row'), col('line'), col('raw'), col('claimId'), col('outcomeType'), col('subjectRef'), col('subjectKey'), col('occurredAt'), col('attributes'), col('sha'), col('retract'), col('retractedAt')],
  );
}

/**
 * Takes in one file or page of claims in a single transaction. Every row ends as exactly one of
 * accepted (new claim or a retraction applied), redelivered (nothing new) or quarantined.
 */
export async function importClaimRows(pool: Pool, args: ClaimImportArgs): Promise<ImportSummary> {
  const rules = caseRules(await loadContractVersions(pool, args.tenant));
  const target = { tenant: args.tenant, kind: 'claims' as const, source: args.source, origin: args.origin, contentSha256: args.contentSha256, beforeCommit: args.beforeCommit };
  return withImport(pool, target, async (db, importId) => {
    await db.query(`create temp table stage_claims (
      row_number int primary key, line int, raw text, claim_id text, outcome_type text, subject_ref text, subject_key text,
      occurred_at timestamptz, attributes jsonb, content_sha256 text, retract bool, retracted_at timestamptz,
      status text, code text, reason text, is_first bool not null default false,
      first_retraction bool not null default false) on commit drop`);
    const received = await stageRows(
      args.rows,
      (r): StageRow => {
        checkRowTenant(r.values, args.tenant);
        const c = stageClaimRow(r.values, args.receivedAt);
        let subjectKey: string | null = null;
        if (c.outcomeType !== null) {
          const caseInsensitive = rules.get(c.outcomeType);
          if (caseInsensitive === undefined) throw new ReconError('unknown_outcome_type', `field outcome_type: "${c.outcomeType}" is not in the contract of ${args.tenant}`);
          subjectKey = normaliseMatchKey(c.subjectRef ?? '', caseInsensitive);
        }
        return { row: r.position.row, line: r.position.line, raw: r.raw, claimId: c.claimId, outcomeType: c.outcomeType, subjectRef: c.subjectRef, subjectKey, occurredAt: c.occurredAt, attributes: JSON.stringify(c.attributes), sha: c.contentSha256, retract: c.retract, retractedAt: c.retractedAt };
      },
      { stage: (b) => stageBatch(db, b), quarantine: (bad) => insertQuarantine(db, importId, args.tenant, args.source, args.origin, bad) },
    );
    await mergeStagedClaims(db, args.tenant, importId);
    await db.query(
      `insert into quarantine (tenant_id, import_id, source, origin, line, row_number, raw, code, reason)
       select $1, $2, $3, $4, line, row_number, raw, code, reason from stage_claims where status = 'quarantined'
       on conflict (import_id, row_number) do nothing`,
      [args.tenant, importId, args.source, args.origin],
    );
    const { rows: counts } = await db.query<{ status: string; n: number }>('select status, count(*)::int as n from stage_claims group by status');
    const count = (s: string) => counts.find((c) => c.status === s)?.n ?? 0;
    return { received, accepted: count('accepted'), redelivered: count('redelivered'), quarantined: await quarantinedCount(db, importId) };
  });
}

/**
 * Classifies every staged row and applies it: set-based, a handful of statements per file. Each
 * step joins through primary keys only (stage row number, claim id), never through the rows a
 * CTE returned: the planner cannot size those and would loop over them.
 */
async function mergeStagedClaims(db: PoolClient, tenant: string, importId: number): Promise<void> {
  await db.query('create index on stage_claims (claim_id)');
  await db.query('analyze stage_claims');
  // New claims: the first row of each id with content.
  await db.query(
    `update stage_claims s set is_first = true
       from (select distinct on (claim_id) row_number from stage_claims where content_sha256 is not null order by claim_id, row_number) f
      where s.row_number = f.row_number`,
  );
  await db.query(
    `insert into claims (tenant_id, claim_id, outcome_type, subject_ref, subject_key, occurred_at, attributes, content_sha256, retracted_at, import_id)
     select $1, claim_id, outcome_type, subject_ref, subject_key, occurred_at, attributes, content_sha256, retracted_at, $2
       from stage_claims where is_first
     on conflict (tenant_id, claim_id) do nothing`,
    [tenant, importId],
  );
  await db.query(
    `update stage_claims s set status = 'accepted'
       from claims c where s.is_first and c.tenant_id = $1 and c.claim_id = s.claim_id and c.import_id = $2`,
    [tenant, importId],
  );
  // Same id, other content: never overwrite what was accepted; quarantine the newcomer. A
  // retraction is the exception: it retracts the claim whatever else it carries.
  await db.query(
    `update stage_claims s set status = 'quarantined', code = 'conflicting_redelivery',
            reason = 'claim ' || s.claim_id || ' was delivered before with a different ' || coalesce(nullif(concat_ws(', ',
              case when c.outcome_type is distinct from s.outcome_type then 'outcome_type' end,
              case when c.subject_ref is distinct from s.subject_ref then 'subject_ref' end,
              case when c.occurred_at is distinct from s.occurred_at then 'occurred_at' end,
              case when c.attributes is distinct from s.attributes then 'attributes' end), ''), 'content')
       from claims c where s.status is null and s.content_sha256 is not null and not s.retract
        and c.tenant_id = $1 and c.claim_id = s.claim_id and c.content_sha256 <> s.content_sha256`,
    [tenant],
  );
  // Retractions of known claims: the first one per claim takes effect.
  await db.query(
    `update stage_claims s set first_retraction = true
       from (select distinct on (r.claim_id) r.row_number from stage_claims r
               join claims c on c.tenant_id = $1 and c.claim_id = r.claim_id and c.retracted_at is null
              where r.status is null and r.retract order by r.claim_id, r.row_number) f
      where s.row_number = f.row_number`,
    [tenant],
  );
  await db.query(
    `update claims c set retracted_at = s.retracted_at from stage_claims s
      where s.first_retraction and c.tenant_id = $1 and c.claim_id = s.claim_id`,
    [tenant],
  );
  await db.query(`update stage_claims set status = 'accepted' where first_retraction`);
  await db.query(
    `update stage_claims s set status = 'redelivered'
       from claims c where s.status is null and c.tenant_id = $1 and c.claim_id = s.claim_id`,
    [tenant],
  );
  await db.query(
    `update stage_claims set status = 'quarantined', code = 'unknown_claim',
            reason = 'retraction of claim ' || claim_id || ', which was never received'
      where status is null`,
  );
}
