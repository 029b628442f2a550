import type { DisputeTerms } from './contract';
import { addIsoDuration } from './durations';
import type { OutcomeState } from './lifecycle';

export type Decision = 'uphold' | 'reject';

export type Acceptance = { ok: true } | { ok: false; code: string; message: string };

/**
 * Whether a dispute may be opened on an outcome now. Anything not yet billed can be disputed; a
 * billed outcome only within the contract's window after billing; settled outcomes cannot.
 */
export function decideDisputeAcceptance(args: {
  state: OutcomeState;
  billedAt: Date | null;
  now: Date;
  terms: DisputeTerms;
  timeZone: string;
}): Acceptance {
  if (args.state === 'rejected' || args.state === 'credited') {
    return {
      ok: false,
      code: 'outcome_settled',
      message: `the outcome is ${args.state}; there is nothing left to dispute`,
    };
  }
  if (args.state === 'billed') {
    if (!args.billedAt)
      return { ok: false, code: 'outcome_settled', message: 'the outcome is billed but its charge is missing' };
    const end = addIsoDuration(args.billedAt, args.terms.window, args.timeZone);
    if (args.now.getTime() > end.getTime()) {
      return {
        ok: false,
        code: 'dispute_window_closed',
        message: `the dispute window for this charge closed at ${end.toISOString()} (${args.terms.window} after billing on ${args.billedAt.toISOString()})`,
      };
    }
  }
  return { ok: true };
}

export function disputeDeadlines(
  openedAt: Date,
  terms: DisputeTerms,
  timeZone: string,
): { slaAt: Date; autoResolveAt: Date } {
  return {
    slaAt: addIsoDuration(openedAt, terms.sla, timeZone),
    autoResolveAt: addIsoDuration(openedAt, terms.autoResolveAfter, timeZone),
  };
}

export type DisputeEffect = 'reject_outcome' | 'credit_charge' | 'lift_hold' | 'none';

/**
 * What a decision does to the outcome: upheld before billing rejects it, upheld after billing
 * credits the charge; rejected only lifts the hold, and the next run bills it if grace allows.
 */
export function disputeEffect(decision: Decision, state: OutcomeState): DisputeEffect {
  // Settled while the dispute was open (credited by a retraction, rejected at its deadline):
  // the decision is recorded, the outcome and its reason stay as they are.
  if (state === 'credited' || state === 'rejected') return 'none';
  if (decision === 'reject') return 'lift_hold';
  return state === 'billed' ? 'credit_charge' : 'reject_outcome';
}

/** A reopen after billing credits the charge only within the clawback window (default zero). */
export function reopenIsClawedBack(args: {
  billedAt: Date;
  reopenedAt: Date;
  clawbackWindow: string;
  timeZone: string;
}): boolean {
  if (args.reopenedAt.getTime() <= args.billedAt.getTime()) return false;
  const end = addIsoDuration(args.billedAt, args.clawbackWindow, args.timeZone);
  return args.reopenedAt.getTime() <= end.getTime();
}
