import type { Pool } from '../db/pool';
import { inTransaction } from '../db/pool';
import { contractInEffectAt, type ContractVersion } from '../domain/contract';
import { priceToMinorUnits } from '../domain/money';
import { billingPeriodOf } from '../domain/periods';

export interface PostResult {
  posted: number;
  amountMinor: number;
  lastOutcomeId: number;
  done: boolean;
}

interface ConfirmedRow {
  outcome_id: number;
  outcome_type: string;
  subject_ref: string;
  primary_claim_id: string;
  success_at: Date;
  evidence_version_id: number | null;
  source: string | null;
  external_id: string | null;
  effective_at: Date | null;
}

/** The ledger price of one outcome: the contract version in effect at its success time. */
export function priceFor(versions: ContractVersion[], outcomeType: string, successAt: Date): { version: ContractVersion; unitPrice: string; amountMinor: number } {
  // Success before the first version: the first version is the earliest terms we can defend.
  const version = contractInEffectAt(versions, successAt) ?? versions[0];
  const terms = version.body.outcomeTypes[outcomeType] ?? versions.map((v) => v.body.outcomeTypes[outcomeType]).find(Boolean);
  if (!terms) throw new Error(`no contract version prices outcome type ${outcomeType}`);
  return { version, unitPrice: terms.unitPrice, amountMinor: priceToMinorUnits(terms.unitPrice, version.body.currency) };
}

/**
 * Posts charges for a chunk of confirmed outcomes and marks them billed, in one transaction.
 * The idempotency key `charge:<outcome>` makes a repeat post nothing, whatever the code does.
 */
export async function postChunk(
  pool: Pool,
  args: { tenant: string; runId: number; asOf: Date; versions: ContractVersion[]; timeZone: string; currency: string; afterOutcomeId: number; limit: number },
): Promise<PostResult> {
  const { rows } = await pool.query<ConfirmedRow>(
    `select o.outcome_id, o.outcome_type, o.subject_ref, o.primary_claim_id, o.success_at, o.evidence_version_id,
            r.source, r.external_id, v.effective_at
       from outcomes o
       left join record_versions v on v.version_id = o.evidence_version_id
       left join records r on r.record_id = o.record_id
      where o.tenant_id = $1 and o.state = 'confirmed' and not o.on_hold and o.outcome_id > $2
        and o.confirmed_as_of = $4
      order by o.outcome_id limit $3`,
    [args.tenant, args.afterOutcomeId, args.limit, args.asOf],
  );
  if (rows.length === 0) return { posted: 0, amountMinor: 0, lastOutcomeId: args.afterOutcomeId, done: true };
  const period = billingPeriodOf(args.asOf, args.timeZone);
  const lines = rows.map((r) => {
    const p = priceFor(args.versions, r.outcome_type, r.success_at);
    return {
      key: `charge:${r.outcome_id}`,
      outcomeId: r.outcome_id,
      outcomeType: r.outcome_type,
      subjectRef: r.subject_ref,
      unitPrice: p.unitPrice,
      amountMinor: p.amountMinor,
      currency: p.version.body.currency,
      contractVersion: p.version.version,
      primaryClaimId: r.primary_claim_id,
      successAt: r.success_at,
      evidence: JSON.stringify({ source: r.source, externalId: r.external_id, versionId: r.evidence_version_id, effectiveAt: r.effective_at?.toISOString() ?? null }),
    };
  });
  const posted = await inTransaction(pool, async (db) => {
    const { rows: inserted } = await db.query<{ entry_id: number; outcome_id: number; amount_minor: number }>(
      `insert into ledger_entries (tenant_id, idempotency_key, kind, outcome_id, outcome_type, subject_ref, period, currency,
                                   unit_price, amount_minor, contract_version, run_id, as_of, primary_claim_id, evidence, success_at)
       select $1, l.key, 'charge', l.outcome_id, l.outcome_type, l.subject_ref, $2, l.currency, l.unit_price, l.amount_minor,
              l.contract_version, $4, $5, l.primary_claim_id, l.evidence, l.success_at
         from unnest($6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::int[], $13::text[], $14::jsonb[], $15::timestamptz[], $3::text[])
              as l(key, outcome_id, outcome_type, subject_ref, unit_price, amount_minor, contract_version, primary_claim_id, evidence, success_at, currency)
       on conflict (idempotency_key) do nothing
       returning entry_id, outcome_id, amount_minor`,
      [
        args.tenant, period, lines.map((l) => l.currency), args.runId, args.asOf,
        lines.map((l) => l.key), lines.map((l) => l.outcomeId), lines.map((l) => l.outcomeType), lines.map((l) => l.subjectRef),
        lines.map((l) => l.unitPrice), lines.map((l) => l.amountMinor), lines.map((l) => l.contractVersion),
        lines.map((l) => l.primaryClaimId), lines.map((l) => l.evidence), lines.map((l) => l.successAt),
      ],
    );
    await db.query(
      `update outcomes set state = 'billed', updated_at = now() where outcome_id = any($1::bigint[]) and state = 'confirmed'`,
      [lines.map((l) => l.outcomeId)],
    );
    await db.query(
      `insert into outcome_events (outcome_id, run_id, as_of, kind, from_state, to_state, reason, details)
       select e.outcome_id, $1, $2, 'billed', 'confirmed', 'billed', 'charged ' || e.amount_minor || ' minor units in ' || $3,
              jsonb_build_object('entryId', e.entry_id, 'period', $3::text)
         from unnest($4::bigint[], $5::bigint[], $6::bigint[]) as e(outcome_id, entry_id, amount_minor)
       on conflict do nothing`,
      [args.runId, args.asOf, period, inserted.map((i) => i.outcome_id), inserted.map((i) => i.entry_id), inserted.map((i) => i.amount_minor)],
    );
    return inserted;
  });
  return {
    posted: posted.length,
    amountMinor: posted.reduce((s, p) => s + p.amount_minor, 0),
    lastOutcomeId: rows[rows.length - 1].outcome_id,
    done: rows.length < args.limit,
  };
}
