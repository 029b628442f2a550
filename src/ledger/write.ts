import type { PoolClient } from '../db/pool';
import { baseFeeKey, creditKeySql, trueUpKey } from './keys';
import type { LedgerLine } from './rows';

/**
 * The ledger's writers other than the nightly charge, which post.ts writes in one statement with
 * its outcomes and events (see chargeKeySql). Every insert names its key's conflict and does
 * nothing on a repeat: the database, not the caller, makes a line exist at most once.
 */

export interface CreditLine {
  chargeEntryId: number;
  /** The open period the credit lands in. */
  period: string;
  runId: number | null;
  at: Date;
  reason: string;
  /** The dispute the credit comes from, so the dispute finds it again by id rather than by its wording. */
  disputeId: number | null;
}

/**
 * Reverses a charge with a new line carrying the charge's terms and the opposite amount. Returns
 * the new line, or null when the charge was already credited (key `credit:<charge>` and the
 * one-credit-per-charge index) or the entry is not a charge.
 */
export async function insertCredit(
  db: PoolClient,
  c: CreditLine,
): Promise<(Pick<LedgerLine, 'entry_id' | 'amount_minor'> & { outcome_id: number }) | null> {
  const {
    rows: [credit],
  } = await db.query<Pick<LedgerLine, 'entry_id' | 'amount_minor'> & { outcome_id: number }>(
    `insert into ledger_entries (tenant_id, idempotency_key, kind, outcome_id, outcome_type, subject_ref, period, currency,
                                 unit_price, amount_minor, contract_version, run_id, as_of, primary_claim_id, evidence,
                                 success_at, reverses_entry_id, reason, pricing_basis, tier, corrects_period, dispute_id)
     select c.tenant_id, ${creditKeySql('c.entry_id')}, 'credit', c.outcome_id, c.outcome_type, c.subject_ref, $2, c.currency,
            c.unit_price, -c.amount_minor, c.contract_version, $3, $4, c.primary_claim_id, c.evidence, c.success_at, c.entry_id, $5,
            'credit', c.tier, nullif(c.period, $2), $6
       from ledger_entries c where c.entry_id = $1 and c.kind = 'charge'
     on conflict do nothing
     returning entry_id, outcome_id, amount_minor`,
    [c.chargeEntryId, c.period, c.runId, c.at, c.reason, c.disputeId],
  );
  return credit ?? null;
}

export interface BaseFeeLine {
  tenant: string;
  outcomeType: string;
  /** The period the fee is for; `period` is the open one it lands in (later, when that one is closed). */
  ownPeriod: string;
  period: string;
  currency: string;
  unitPrice: string;
  amountMinor: number;
  contractVersion: number;
  runId: number;
  asOf: Date;
  reason: string;
}

/** An outcome type's base fee for its period; false when that period's fee was already written. */
export async function insertBaseFee(db: PoolClient, f: BaseFeeLine): Promise<boolean> {
  const { rowCount } = await db.query(
    `insert into ledger_entries (tenant_id, idempotency_key, kind, outcome_type, period, currency, unit_price, amount_minor,
                                 contract_version, run_id, as_of, evidence, pricing_basis, reason, corrects_period)
     values ($1, $2, 'base_fee', $3, $4, $5, $6, $7, $8, $9, $10, '{}', 'base_fee', $11, nullif($12, $4))
     on conflict (idempotency_key) do nothing`,
    [
      f.tenant,
      baseFeeKey(f.tenant, f.outcomeType, f.ownPeriod),
      f.outcomeType,
      f.period,
      f.currency,
      f.unitPrice,
      f.amountMinor,
      f.contractVersion,
      f.runId,
      f.asOf,
      f.reason,
      f.ownPeriod,
    ],
  );
  return (rowCount ?? 0) > 0;
}

export interface TrueUpLine {
  tenant: string;
  period: string;
  currency: string;
  /** The commitment's amount as the contract writes it. */
  unitPrice: string;
  amountMinor: number;
  contractVersion: number;
  runId: number;
  asOf: Date;
  termStart: string;
  evidence: Record<string, unknown>;
  reason: string;
}

/** A commitment term's true-up; false when that term's was already written. */
export async function insertTrueUp(db: PoolClient, t: TrueUpLine): Promise<boolean> {
  const { rowCount } = await db.query(
    `insert into ledger_entries (tenant_id, idempotency_key, kind, period, currency, unit_price, amount_minor, contract_version,
                                 run_id, as_of, evidence, pricing_basis, reason)
     values ($1, $2, 'true_up', $3, $4, $5, $6, $7, $8, $9, $10, 'true_up', $11)
     on conflict (idempotency_key) do nothing`,
    [
      t.tenant,
      trueUpKey(t.tenant, t.termStart),
      t.period,
      t.currency,
      t.unitPrice,
      t.amountMinor,
      t.contractVersion,
      t.runId,
      t.asOf,
      JSON.stringify(t.evidence),
      t.reason,
    ],
  );
  return (rowCount ?? 0) > 0;
}
