import type { Pool, PoolClient } from '../db/pool';
import { chargeKey, creditKeySql } from './keys';
import type { LedgerLine } from './rows';

/**
 * The ledger's lookups. An outcome's lines are found through their idempotency keys and the
 * unique index on them: the ledger keeps no index on outcome_id (every charge would pay for it),
 * so a `where outcome_id = ...` reads the whole tenant's ledger.
 */

type Db = Pool | PoolClient;

export type ChargeOfOutcome = Pick<LedgerLine, 'entry_id' | 'tenant_id' | 'as_of' | 'amount_minor' | 'period'>;

/** An outcome's charge (it has at most one), or null when it was never billed. */
export async function chargeOfOutcome(db: Db, outcomeId: number): Promise<ChargeOfOutcome | null> {
  const {
    rows: [charge],
  } = await db.query<ChargeOfOutcome>(
    'select entry_id, tenant_id, as_of, amount_minor, period from ledger_entries where idempotency_key = $1',
    [chargeKey(outcomeId)],
  );
  return charge ?? null;
}

/** The tenant of a line, by its entry id. */
export async function tenantOfLine(db: Db, entryId: number): Promise<string | null> {
  const {
    rows: [line],
  } = await db.query<Pick<LedgerLine, 'tenant_id'>>('select tenant_id from ledger_entries where entry_id = $1', [
    entryId,
  ]);
  return line?.tenant_id ?? null;
}

/** The credit a dispute wrote on its outcome's charge, or null when it wrote none. */
export async function creditOfDispute(
  db: Db,
  args: { outcomeId: number; disputeId: number },
): Promise<Pick<LedgerLine, 'entry_id'> | null> {
  const {
    rows: [credit],
  } = await db.query<Pick<LedgerLine, 'entry_id'>>(
    `select cr.entry_id from ledger_entries ch join ledger_entries cr on cr.idempotency_key = ${creditKeySql('ch.entry_id')}
      where ch.idempotency_key = $1 and cr.dispute_id = $2`,
    [chargeKey(args.outcomeId), args.disputeId],
  );
  return credit ?? null;
}

export type OutcomeLine = Pick<
  LedgerLine,
  | 'entry_id'
  | 'kind'
  | 'period'
  | 'amount_minor'
  | 'unit_price'
  | 'currency'
  | 'run_id'
  | 'reason'
  | 'reverses_entry_id'
  | 'dispute_id'
>;

/** An outcome's lines in entry order: its charge and, when there is one, the credit reversing it. */
export async function linesOfOutcome(db: Db, outcomeId: number): Promise<OutcomeLine[]> {
  const cols =
    'entry_id, kind, period, amount_minor, unit_price, currency, run_id, reason, reverses_entry_id, dispute_id';
  const { rows } = await db.query<OutcomeLine>(
    `select ${cols} from ledger_entries where idempotency_key = $1
     union all
     select ${cols} from ledger_entries
      where idempotency_key = (select ${creditKeySql('entry_id')} from ledger_entries where idempotency_key = $1)
     order by entry_id`,
    [chargeKey(outcomeId)],
  );
  return rows;
}

export interface CurrencyLines {
  currency: string;
  lines: number;
  amountMinor: number;
}

/** A period's lines, one total per currency (amounts in different currencies are never added). */
export async function periodTotalsByCurrency(db: Db, tenant: string, period: string): Promise<CurrencyLines[]> {
  const { rows } = await db.query<{ currency: string; lines: number; amount: number }>(
    `select currency, count(*)::int as lines, sum(amount_minor)::bigint as amount from ledger_entries
      where tenant_id = $1 and period = $2 group by currency order by currency`,
    [tenant, period],
  );
  return rows.map((r) => ({ currency: r.currency, lines: r.lines, amountMinor: Number(r.amount) }));
}

/**
 * What a commitment term has drawn so far: charges net of credits in the commitment's currency,
 * by when they were billed (as_of), whatever period they landed in.
 */
export async function commitmentDrawnMinor(
  db: Db,
  args: { tenant: string; currency: string; from: string | Date; until: string | Date },
): Promise<number> {
  const {
    rows: [d],
  } = await db.query<{ drawn: number }>(
    `select coalesce(sum(amount_minor), 0)::bigint as drawn from ledger_entries
      where tenant_id = $1 and kind in ('charge', 'credit') and as_of >= $2 and as_of < $3 and currency = $4`,
    [args.tenant, args.from, args.until, args.currency],
  );
  return Number(d.drawn);
}
