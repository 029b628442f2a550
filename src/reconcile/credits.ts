import type { PoolClient } from '../db/pool';
import { billingPeriodOf } from '../domain/periods';
import { insertCredit, tenantOfLine } from '../ledger';
import { openPeriodFor } from './period-close';

export interface CreditRequest {
  chargeEntryId: number;
  reason: string;
  /** The time of the decision: the credit lands in the period open then. */
  at: Date;
  timeZone: string;
  runId?: number | null;
  actor?: string | null;
  /** Set by the dispute path: stored on the credit, so the dispute finds it by id. */
  disputeId?: number | null;
  details?: Record<string, unknown>;
}

/**
 * Reverses a charge with a new ledger entry (never an edit) and marks its outcome credited.
 * `credit:<charge>` as the key and the one-credit-per-charge index make a repeat do nothing.
 * Returns the credit's entry id, or null when the charge was already credited (or is no charge).
 */
export async function creditCharge(db: PoolClient, req: CreditRequest): Promise<number | null> {
  const tenant = await tenantOfLine(db, req.chargeEntryId);
  if (tenant === null) return null;
  // Credits land in the period open at the decision; a closed one passes them to the next open period.
  const period = await openPeriodFor(db, tenant, billingPeriodOf(req.at, req.timeZone));
  const credit = await insertCredit(db, {
    chargeEntryId: req.chargeEntryId,
    period,
    runId: req.runId ?? null,
    at: req.at,
    reason: req.reason,
    disputeId: req.disputeId ?? null,
  });
  if (!credit) return null;
  await db.query(
    `update outcomes set state = 'credited', on_hold = false, updated_at = now() where outcome_id = $1 and state = 'billed'`,
    [credit.outcome_id],
  );
  await db.query(
    `insert into outcome_events (outcome_id, run_id, actor, as_of, kind, from_state, to_state, reason, details)
     values ($1, $2, $3, $4, 'credited', 'billed', 'credited', $5, $6)`,
    [
      credit.outcome_id,
      req.runId ?? null,
      req.actor ?? null,
      req.at,
      `${req.reason}; credited ${-credit.amount_minor} minor units in ${period}`,
      JSON.stringify({
        entryId: credit.entry_id,
        reverses: req.chargeEntryId,
        period,
        ...(req.disputeId != null ? { disputeId: req.disputeId } : {}),
        ...req.details,
      }),
    ],
  );
  return credit.entry_id;
}
