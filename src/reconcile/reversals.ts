import type { Pool } from '../db/pool';
import { inTransaction } from '../db/pool';
import type { ContractVersion } from '../domain/contract';
import { reopenIsClawedBack } from '../domain/disputes';
import { addIsoDuration, parseIsoDuration } from '../domain/durations';
import { evaluatePredicate } from '../domain/predicate';
import { chargeKeySql, type LedgerLine } from '../ledger';
import { creditCharge } from './credits';

export interface ReversalResult {
  retracted: number;
  reopened: number;
}

const DAY = 86_400_000;

/** How far back a charge can still be clawed back: the longest window, plus DST slack. */
function clawbackHorizon(contract: ContractVersion, asOf: Date): Date | null {
  let longest = 0;
  for (const t of Object.values(contract.body.outcomeTypes)) {
    const d = parseIsoDuration(t.clawbackWindow);
    if (Object.values(d).every((v) => v === 0)) continue;
    longest = Math.max(longest, addIsoDuration(asOf, d, 'UTC').getTime() - asOf.getTime());
  }
  return longest === 0 ? null : new Date(asOf.getTime() - longest - 2 * DAY);
}

/**
 * Credits billed outcomes that lost their footing as of `asOf`: every claim retracted by the AI
 * side, or the record reopened within the contract's clawback window after billing.
 */
export async function reverseSettledCharges(
  pool: Pool,
  args: { tenant: string; runId: number; asOf: Date; contract: ContractVersion },
): Promise<ReversalResult> {
  const { tenant, asOf, contract } = args;
  const tz = contract.body.timezone;
  const { rows: retracted } = await pool.query<Pick<LedgerLine, 'entry_id'> & { last_retraction: Date }>(
    `select l.entry_id, max(c.retracted_at) as last_retraction
       from claims c
       join outcomes o on o.outcome_id = c.outcome_id and o.state = 'billed'
       join ledger_entries l on l.idempotency_key = ${chargeKeySql('o.outcome_id')} -- the charge's unique key: no index on outcome_id
      where c.tenant_id = $1 and c.retracted_at is not null and c.retracted_at <= $2
        and not exists (select 1 from claims k where k.outcome_id = o.outcome_id and k.occurred_at <= $2
                          and (k.retracted_at is null or k.retracted_at > $2))
      group by l.entry_id`,
    [tenant, asOf],
  );
  const reopened: Array<{ entryId: number; at: Date }> = [];
  const horizon = clawbackHorizon(contract, asOf);
  if (horizon) {
    const { rows } = await pool.query<
      Pick<LedgerLine, 'entry_id'> & {
        billed_at: Date;
        outcome_type: string;
        effective_at: Date;
        data: Record<string, unknown>;
      }
    >(
      `select l.entry_id, l.as_of as billed_at, o.outcome_type, v.effective_at, v.data
         from ledger_entries l
         join outcomes o on o.outcome_id = l.outcome_id and o.state = 'billed'
         join record_versions v on v.record_id = o.record_id and v.effective_at > l.as_of and v.effective_at <= $2
        where l.tenant_id = $1 and l.kind = 'charge' and l.as_of >= $3
        order by l.entry_id, v.effective_at, v.version_id`,
      [tenant, asOf, horizon],
    );
    const seen = new Set<number>();
    for (const r of rows) {
      const terms = contract.body.outcomeTypes[r.outcome_type];
      if (!terms || seen.has(r.entry_id) || evaluatePredicate(terms.success, r.data)) continue;
      seen.add(r.entry_id);
      if (
        reopenIsClawedBack({
          billedAt: r.billed_at,
          reopenedAt: r.effective_at,
          clawbackWindow: terms.clawbackWindow,
          timeZone: tz,
        })
      ) {
        reopened.push({ entryId: r.entry_id, at: r.effective_at });
      }
    }
  }
  let retractedCount = 0;
  let reopenedCount = 0;
  await inTransaction(pool, async (db) => {
    for (const r of retracted) {
      const id = await creditCharge(db, {
        chargeEntryId: r.entry_id,
        reason: `retracted: every claim was retracted by the AI side (last at ${r.last_retraction.toISOString()})`,
        at: asOf,
        timeZone: tz,
        runId: args.runId,
      });
      if (id) retractedCount++;
    }
    for (const r of reopened) {
      const id = await creditCharge(db, {
        chargeEntryId: r.entryId,
        reason: `reopened: the customer's record reopened at ${r.at.toISOString()}, within the clawback window`,
        at: asOf,
        timeZone: tz,
        runId: args.runId,
      });
      if (id) reopenedCount++;
    }
  });
  return { retracted: retractedCount, reopened: reopenedCount };
}
