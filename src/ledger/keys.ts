/**
 * The idempotency key of every kind of ledger line, in one place. The unique index on
 * `idempotency_key` is what makes a repeated post, credit or period line write nothing, so these
 * formats are part of the data: rows already written and replayed runs depend on their exact bytes.
 * Never change one; a new kind of line gets a new prefix.
 *
 * Each key that set-based SQL builds from a column also has a SQL form; both are written beside
 * each other so that they cannot drift apart, and test/unit/ledger-keys.test.ts pins the bytes.
 */

/** An outcome's one charge: at most one per outcome, however often a run is retried. */
export const chargeKey = (outcomeId: number): string => `charge:${outcomeId}`;
/** The same key computed in SQL from an expression holding the outcome id (a bigint renders as its decimal digits, as in JS). */
export const chargeKeySql = (outcomeIdExpr: string): string => `'charge:' || ${outcomeIdExpr}`;

/** The credit that reverses a charge, keyed by the charge's entry id (the one-credit-per-charge index is the second wall). */
export const creditKey = (chargeEntryId: number): string => `credit:${chargeEntryId}`;
export const creditKeySql = (chargeEntryIdExpr: string): string => `'credit:' || ${chargeEntryIdExpr}`;

/** An outcome type's base fee, once per tenant and the period it is for (not the open period it lands in). */
export const baseFeeKey = (tenant: string, outcomeType: string, ownPeriod: string): string =>
  `base:${tenant}:${outcomeType}:${ownPeriod}`;

/** A commitment's true-up, once per tenant and commitment term (named by its start). */
export const trueUpKey = (tenant: string, termStart: string): string => `trueup:${tenant}:${termStart}`;
