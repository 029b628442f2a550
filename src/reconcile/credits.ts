import type { PoolClient } from '../db/pool';
import { billingPeriodOf } from '../domain/periods';
import { openPeriodFor } from './period-close';

export interface CreditRequest {
  chargeEntryId: number;
  reason: string;
  /** The time of the decision: the credit lands in the period open then. */
  at: Date;
  timeZone: string;
  runId?: number | null;
  actor?: string | null;
  details?: Record<string, unknown>;
}

/**
 * Reverses a charge with a new ledger entry (never an edit) and marks its outcome credited.
 * `credit:<charge>` as the key and the one-credit-per-charge index make a repeat do nothing.
 * Returns the credit's entry id, or null when the charge was already credited.
 */
export async function creditCharge(db: PoolClient, req: CreditRequest): Promise<number | null> {
  const { rows: [tenantRow] } = await db.query<{ tenant_id: string }>('select tenant_id from ledger_entries where entry_id = $1', [req.chargeEntryId]);
  // Credits land in the period open at the decision; a closed one passes them to the next open period.
  const period = await openPeriodFor(db, tenantRow.tenant_id, billingPeriodOf(req.at, req.timeZone));
  const { rows } = await db.query<{ entry_id: number; outcome_id: number; amount_minor: number }>(
    `insert into ledger_entries (tenant_id, idempotency_key, kind, outcome_id, outcome_type, subject_ref, period, currency,
                                 unit_price, amount_minor, contract_version, run_id, as_of, primary_claim_id, evidence,
                                 success_at, reverses_entry_id, reason, pricing_basis, tier, corrects_period)
     select c.tenant_id, 'credit:' || c.entry_id, 'credit', c.outcome_id, c.outcome_type, c.subject_ref, $2, c.currency,
            c.unit_price, -c.amount_minor, c.contract_version, $3, $4, c.primary_claim_id, c.evidence, c.success_at, c.entry_id, $5,
            'credit', c.tier, nullif(c.period, $2)
       from ledger_entries c where c.entry_id = $1 and c.kind = 'charge'
     on conflict do nothing
     returning entry_id, outcome_id, amount_minor`,
    [req.chargeEntryId, period, req.runId ?? null, req.at, req.reason],
  );
  const credit = rows[0];
  if (!credit) return null;
  await db.query(`update outcomes set state = 'credited', on_hold = false, updated_at = now() where outcome_id = $1 and state = 'billed'`, [credit.outcome_id]);
  await db.query(
    `insert into outcome_events (outcome_id, run_id, actor, as_of, kind, from_state, to_state, reason, details)
     values ($1, $2, $3, $4, 'credited', 'billed', 'credited', $5, $6)`,
    [credit.outcome_id, req.runId ?? null, req.actor ?? null, req.at, `${req.reason}; credited ${-credit.amount_minor} minor units in ${period}`, JSON.stringify({ entryId: credit.entry_id, reverses: req.chargeEntryId, period, ...req.details })],
  );
  return credit.entry_id;
}
