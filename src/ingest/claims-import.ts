import type { Pool, PoolClient } from '../db/pool';
import { loadContractHistory } from '../db/contracts';
import { normaliseMatchKey } from '../domain/contract';
import { caseRules } from '../domain/contract-history';
import { ReconError } from '../domain/errors';
import type { RowResult } from '../sources/rows';
import { checkRowTenant, stageClaimRow } from './claim-row';
import { mapRow, quarantineStaged, quarantinedCount, stageRows, withImport, type ImportSummary } from './staging';

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

/**
 * Takes in one file or page of claims in a single transaction. Every row ends as exactly one of
 * accepted (new claim or a retraction applied), redelivered (nothing new) or quarantined.
 */
export async function importClaimRows(pool: Pool, args: ClaimImportArgs): Promise<ImportSummary> {
  // Every version's types (a type may be retired later), each with its newest case rule.
  const rules = caseRules(await loadContractHistory(pool, args.tenant));
  const target = {
    tenant: args.tenant,
    kind: 'claims' as const,
    source: args.source,
    origin: args.origin,
    contentSha256: args.contentSha256,
    beforeCommit: args.beforeCommit,
  };
  return withImport(pool, target, async (db, importId) => {
    // One claims import per tenant at a time: each row is classified against the claims as they
    // stand, and a concurrent import must not add claims between that and the insert.
    await db.query('select pg_advisory_xact_lock(hashtext($1))', [`claims-import:${args.tenant}`]);
    // Bad rows are staged too (code and reason set), so one COPY carries the whole file or page.
    await db.query(`create temp table stage_claims (
      row_number int not null, line int not null, raw text, claim_id text, outcome_type text, subject_ref text, subject_key text,
      occurred_at timestamptz, attributes jsonb, content_sha256 text, retract bool, retracted_at timestamptz,
      code text, reason text) on commit drop`);
    const received = await stageRows(
      db,
      `copy stage_claims (row_number, line, raw, claim_id, outcome_type, subject_ref, subject_key, occurred_at, attributes,
                          content_sha256, retract, retracted_at, code, reason) from stdin`,
      args.rows,
      (r) => {
        const m = mapRow(r, (g) => {
          checkRowTenant(g.values, args.tenant);
          const c = stageClaimRow(g.values, args.receivedAt);
          let subjectKey: string | null = null;
          if (c.outcomeType !== null) {
            const caseInsensitive = rules.get(c.outcomeType);
            if (caseInsensitive === undefined)
              throw new ReconError(
                'unknown_outcome_type',
                `field outcome_type: "${c.outcomeType}" is not in the contract of ${args.tenant}`,
              );
            subjectKey = normaliseMatchKey(c.subjectRef ?? '', caseInsensitive);
          }
          return { ...c, subjectKey };
        });
        if (!m.ok)
          return [
            m.bad.row,
            m.bad.line,
            m.bad.raw,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            m.bad.code,
            m.bad.reason,
          ];
        const c = m.value;
        return [
          r.position.row,
          r.position.line,
          r.raw,
          c.claimId,
          c.outcomeType,
          c.subjectRef,
          c.subjectKey,
          c.occurredAt,
          JSON.stringify(c.attributes),
          c.contentSha256,
          c.retract,
          c.retractedAt,
          null,
          null,
        ];
      },
    );
    await quarantineStaged(db, 'stage_claims', importId, args.tenant, args.source, args.origin);
    const decided = await mergeStagedClaims(db, args.tenant, importId);
    // The few rows quarantined here are the outer side, each probing the claim by its key: a join
    // on the constant tenant would let the planner start from the tenant's claims, whose count it
    // may not know yet (claims inserted by this very import).
    await db.query(
      `with decided as materialized (
         select $1::text as tenant_id, s.line, s.row_number, s.raw, d.decision, s.claim_id, s.outcome_type, s.subject_ref,
                s.occurred_at, s.attributes
           from claim_decisions d join stage_claims s using (row_number)
          where d.decision in ('conflicting_redelivery', 'unknown_claim'))
       insert into quarantine (tenant_id, import_id, source, origin, line, row_number, raw, code, reason)
       select $1, $2, $3, $4, s.line, s.row_number, s.raw, s.decision,
              case s.decision
                when 'conflicting_redelivery' then 'claim ' || s.claim_id || ' was delivered before with a different ' || coalesce(nullif(concat_ws(', ',
                  case when c.outcome_type is distinct from s.outcome_type then 'outcome_type' end,
                  case when c.subject_ref is distinct from s.subject_ref then 'subject_ref' end,
                  case when c.occurred_at is distinct from s.occurred_at then 'occurred_at' end,
                  case when c.attributes is distinct from s.attributes then 'attributes' end), ''), 'content')
                else 'retraction of claim ' || s.claim_id || ', which was never received' end
         from decided s left join claims c on c.tenant_id = s.tenant_id and c.claim_id = s.claim_id
       on conflict (import_id, row_number) do nothing`,
      [args.tenant, importId, args.source, args.origin],
    );
    return {
      received,
      accepted: (decided.get('new') ?? 0) + (decided.get('retraction') ?? 0),
      redelivered: decided.get('redelivered') ?? 0,
      quarantined: await quarantinedCount(db, importId),
    };
  });
}

/**
 * Decides every staged row in one statement against the claims as they stand, then applies the
 * decisions: set-based, a handful of statements per file whatever its size.
 *
 * - The first row with content of a claim id we do not know creates the claim (new).
 * - Any other row with content and no retraction: same content is a redelivery, other content
 *   is quarantined (we never overwrite what was accepted).
 * - A retraction retracts the claim whatever else it carries: the first one of a live claim takes
 *   effect, later ones are redeliveries, one for a claim never received is quarantined.
 */
async function mergeStagedClaims(db: PoolClient, tenant: string, importId: number): Promise<Map<string, number>> {
  // A temp table has no statistics until analysed; without them the planner guesses tiny.
  await db.query('analyze stage_claims (claim_id, code)');
  // The window's sort holds the whole file: in the default 4 MB it spills to disk in runs. Local
  // to this import's transaction.
  await db.query(`set local work_mem = '256MB'`);
  await db.query(
    `create temp table claim_decisions on commit drop as
     with rows as (
       select s.row_number, s.claim_id, s.content_sha256, s.retract, s.retracted_at,
              c.claim_id is not null as known, c.content_sha256 as known_sha, c.retracted_at is null as known_live,
              first_value(s.row_number) over first_content as first_row,
              first_value(s.content_sha256) over first_content as first_sha,
              first_value(s.retract) over first_content as first_retract
         from stage_claims s left join claims c on c.tenant_id = $1 and c.claim_id = s.claim_id
        where s.code is null
       window first_content as (partition by s.claim_id collate "C" order by s.content_sha256 is null, s.row_number)),
     claimed as (
       select r.*,
              not r.known and r.content_sha256 is not null and r.row_number = r.first_row as is_new,
              r.known or r.first_sha is not null as exists,
              case when r.known then r.known_sha else r.first_sha end as claim_sha,
              case when r.known then r.known_live else not r.first_retract end as live
         from rows r),
     retractions as (
       select c.*, min(c.row_number) filter (where c.retract and not c.is_new) over (partition by c.claim_id collate "C") as first_retraction_row
         from claimed c)
     select row_number, claim_id, known, decision, case when decision = 'retraction' then retracted_at end as retracted_at
       from (select r.*,
                    case when is_new then 'new'
                         when not retract and content_sha256 is distinct from claim_sha then 'conflicting_redelivery'
                         when not retract then 'redelivered'
                         when not exists then 'unknown_claim'
                         when live and row_number = first_retraction_row then 'retraction'
                         else 'redelivered' end as decision
               from retractions r) decided`,
    [tenant],
  );
  await db.query('analyze claim_decisions');
  // A claim new in this file and retracted further on in it is inserted retracted (the retraction
  // row's time), so only claims known before this import are updated. No ON CONFLICT: under the
  // lock above no other import adds claims of this tenant, so a duplicate key is a race to report,
  // not a row to skip (and the speculative insertion ON CONFLICT needs costs on every row).
  let inserted: number | null;
  try {
    ({ rowCount: inserted } = await db.query(
      `insert into claims (tenant_id, claim_id, outcome_type, subject_ref, subject_key, occurred_at, attributes, content_sha256, retracted_at, import_id)
       select $1, s.claim_id, s.outcome_type, s.subject_ref, s.subject_key, s.occurred_at, s.attributes, s.content_sha256,
              coalesce(s.retracted_at, r.retracted_at), $2
         from claim_decisions d join stage_claims s using (row_number)
         left join claim_decisions r on r.claim_id = d.claim_id and r.decision = 'retraction' and not r.known
        where d.decision = 'new'`,
      [tenant, importId],
    ));
  } catch (err) {
    // Cannot happen while claims imports of a tenant take the lock above; if it does, retrying is safe.
    if ((err as { code?: string }).code === '23505')
      throw new ReconError(
        'import_raced',
        `claims import ${importId}: another import added some of the same new claims meanwhile; retry the import`,
      );
    throw err;
  }
  // The retracted claims, few, are the outer side and probe each claim by its key: a join on the
  // constant tenant would let the planner start from the tenant's claims, whose count it does not
  // know when they were inserted since the last ANALYZE (a nested loop over all of them).
  await db.query(
    `with retracted as materialized (
       select $1::text as tenant_id, claim_id, retracted_at from claim_decisions where decision = 'retraction' and known)
     update claims c set retracted_at = r.retracted_at
       from retracted r where c.tenant_id = r.tenant_id and c.claim_id = r.claim_id`,
    [tenant],
  );
  const { rows } = await db.query<{ decision: string; n: number }>(
    'select decision, count(*)::int as n from claim_decisions group by decision',
  );
  const decided = new Map(rows.map((r) => [r.decision, r.n]));
  if ((inserted ?? 0) !== (decided.get('new') ?? 0)) {
    // Cannot happen while claims imports of a tenant take the lock above; if it does, retrying is safe.
    throw new ReconError(
      'import_raced',
      `claims import ${importId}: ${decided.get('new') ?? 0} new claims decided but ${inserted} inserted; another import added claims meanwhile, retry`,
    );
  }
  return decided;
}
