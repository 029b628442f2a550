/**
 * The row of `ledger_entries` as the driver returns it (bigint columns come back as numbers, see
 * src/db/pool.ts). A query that reads some columns types its rows as `Pick<LedgerLine, ...>`, so a
 * renamed or retyped column is found by the compiler in every reader.
 */
export interface LedgerLine {
  entry_id: number;
  tenant_id: string;
  idempotency_key: string;
  kind: LedgerKind;
  /** Set on charges and credits, null on period lines (base fees, true-ups). */
  outcome_id: number | null;
  outcome_type: string | null;
  subject_ref: string | null;
  /** The period the line is booked in: the open one when it was written. */
  period: string;
  currency: string;
  unit_price: string;
  amount_minor: number;
  contract_version: number;
  /** Null for lines written outside a run (support's dispute credits). */
  run_id: number | null;
  as_of: Date;
  primary_claim_id: string | null;
  evidence: LedgerEvidence;
  success_at: Date | null;
  /** A credit's charge. */
  reverses_entry_id: number | null;
  reason: string | null;
  pricing_basis: string;
  tier: number | null;
  period_position: number | null;
  /** The closed period a late line corrects, when it landed in a later one. */
  corrects_period: string | null;
  /** The dispute a credit comes from (migration 014); null for every other line. */
  dispute_id: number | null;
  created_at: Date;
}

export type LedgerKind = 'charge' | 'credit' | 'base_fee' | 'true_up';

/** What a charge (and its credit) says it was billed on; period lines hold `{}` or the true-up's figures. */
export interface LedgerEvidence {
  source?: string | null;
  externalId?: string | null;
  versionId?: number | null;
  effectiveAt?: string | null;
}
