import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  choosePrimaryClaim,
  decideOutcome,
  type ClaimView,
  type LifecycleRules,
  matchRecord,
  type OutcomeDecision,
  type OutcomeSnapshot,
  type OutcomeState,
  readSuccess,
  type VersionView,
} from '../../src/domain/lifecycle';
import { HOUR } from '../support/fixtures';

// ---------------------------------------------------------------------------------------------
// Fixtures

const NY = 'America/New_York';

const rules: LifecycleRules = {
  success: { eq: ['status', 'solved'] },
  successTimeField: 'solved_at',
  graceWindow: 'PT72H',
  evidenceDeadline: 'P7D',
  timeZone: NY,
};

const at = (iso: string) => new Date(iso);
const plus = (d: Date, ms: number) => new Date(d.getTime() + ms);
const iso = (d: Date) => d.toISOString();

const claim = (claimId: string, occurredAt: string | Date, retractedAt: string | Date | null = null): ClaimView => ({
  claimId,
  occurredAt: new Date(occurredAt),
  retractedAt: retractedAt === null ? null : new Date(retractedAt),
});

let nextVersionId = 1;
function version(
  effectiveAt: string | Date,
  data: Record<string, unknown>,
  opts: { recordId?: number; matchKey?: string; versionId?: number } = {},
): VersionView {
  return {
    versionId: opts.versionId ?? nextVersionId++,
    recordId: opts.recordId ?? 1,
    effectiveAt: new Date(effectiveAt),
    matchKey: opts.matchKey ?? 't-1',
    data,
  };
}
/** A version that passes the rule; `solvedAt` is the customer's own "solved at". */
const solved = (effectiveAt: string | Date, solvedAt: string | Date | null, opts?: Parameters<typeof version>[2]) =>
  version(
    effectiveAt,
    solvedAt === null ? { status: 'solved' } : { status: 'solved', solved_at: new Date(solvedAt).toISOString() },
    opts,
  );
/** A version that fails the rule (the ticket is open again). */
const open = (effectiveAt: string | Date, opts?: Parameters<typeof version>[2]) =>
  version(effectiveAt, { status: 'open' }, opts);

const fresh: OutcomeSnapshot = { state: 'awaiting_evidence', onHold: false, recordId: null, successAt: null };

function decide(input: {
  snapshot?: Partial<OutcomeSnapshot>;
  claims: ClaimView[];
  versions?: VersionView[];
  asOf: string | Date;
  subjectKey?: string;
}) {
  return decideOutcome({
    snapshot: { ...fresh, ...input.snapshot },
    claims: input.claims,
    versions: input.versions ?? [],
    subjectKey: input.subjectKey ?? 't-1',
    rules,
    asOf: new Date(input.asOf),
  });
}

function decided(input: Parameters<typeof decide>[0]): OutcomeDecision {
  const d = decide(input);
  if (d === null) throw new Error('expected a decision, got null');
  return d;
}

const kinds = (d: OutcomeDecision) => d.events.map((e) => e.kind);

// A claim at 10:00 EST, six days before New York springs forward (2026-03-08).
const CLAIM_AT = '2026-03-02T15:00:00.000Z';
// P7D later in New York is 10:00 EDT on 2026-03-09: 167 elapsed hours, not 168.
const CLAIM_DUE = '2026-03-09T14:00:00.000Z';

// ---------------------------------------------------------------------------------------------
// Claims

describe('decideOutcome: claims', () => {
  it('returns null when no claim is visible at asOf', () => {
    expect(decide({ claims: [], asOf: '2026-03-10T00:00:00Z' })).toBeNull();
    expect(decide({ claims: [claim('c1', CLAIM_AT)], asOf: plus(at(CLAIM_AT), -1) })).toBeNull();
    // A claim occurring exactly at asOf is visible.
    expect(decide({ claims: [claim('c1', CLAIM_AT)], asOf: CLAIM_AT })).not.toBeNull();
  });

  it('picks the earliest claim by occurred_at, then claim_id, and counts the others as duplicates', () => {
    const claims = [
      claim('c-2', '2026-03-02T12:00:00Z'),
      claim('c-b', '2026-03-02T10:00:00Z'),
      claim('c-a', '2026-03-02T10:00:00Z'),
      claim('a-0', '2026-03-02T11:00:00Z'),
    ];
    const d = decided({ claims, asOf: '2026-03-03T00:00:00Z' });
    expect(d.primaryClaimId).toBe('c-a');
    expect(d.claimCount).toBe(4);
    expect(d.duplicateCount).toBe(3);
    // Time beats id: 'z' occurred first.
    expect(
      decided({
        claims: [claim('a', '2026-03-02T10:00:00Z'), claim('z', '2026-03-02T09:00:00Z')],
        asOf: '2026-03-03T00:00:00Z',
      }).primaryClaimId,
    ).toBe('z');
  });

  it('counts only the claims visible at asOf', () => {
    const claims = [claim('c1', '2026-03-02T10:00:00Z'), claim('c2', '2026-03-04T10:00:00Z')];
    const d = decided({ claims, asOf: '2026-03-03T00:00:00Z' });
    expect(d.claimCount).toBe(1);
    expect(d.duplicateCount).toBe(0);
    expect(decided({ claims, asOf: '2026-03-04T10:00:00Z' })).toMatchObject({
      claimCount: 2,
      duplicateCount: 1,
      primaryClaimId: 'c1',
    });
  });

  it('passes the primary role to the next live claim when the primary is retracted', () => {
    const claims = [
      claim('c1', '2026-03-02T10:00:00Z', '2026-03-03T00:00:00Z'),
      claim('c2', '2026-03-02T11:00:00Z'),
      claim('c3', '2026-03-02T12:00:00Z'),
    ];
    const d = decided({ claims, asOf: '2026-03-04T00:00:00Z' });
    expect(d.state).toBe('awaiting_evidence');
    expect(d.primaryClaimId).toBe('c2');
    expect(d.claimCount).toBe(3);
    expect(d.duplicateCount).toBe(1);
  });

  it('rejects as retracted once every visible claim is retracted at or before asOf', () => {
    const claims = [
      claim('c1', '2026-03-02T10:00:00Z', '2026-03-03T12:00:00Z'),
      claim('c2', '2026-03-02T11:00:00Z', '2026-03-03T13:00:00Z'),
    ];
    // c2's retraction is exactly at asOf: it counts.
    const d = decided({ claims, asOf: '2026-03-03T13:00:00Z' });
    expect(d.state).toBe('rejected');
    expect(d.rejectReason).toBe('retracted');
    expect(d.primaryClaimId).toBe('c1');
    expect(d.claimCount).toBe(2);
    expect(d.events).toHaveLength(1);
    expect(d.events[0]).toMatchObject({
      kind: 'rejected',
      fromState: 'awaiting_evidence',
      toState: 'rejected',
      reason: 'retracted',
    });
    expect(d.events[0].details).toMatchObject({ retractedAt: '2026-03-03T13:00:00.000Z', claims: ['c1', 'c2'] });
  });

  it('does not see a retraction that happens after asOf', () => {
    const claims = [claim('c1', '2026-03-02T10:00:00Z', '2026-03-03T12:00:00Z')];
    const d = decided({ claims, asOf: '2026-03-03T11:59:59.999Z' });
    expect(d.state).toBe('awaiting_evidence');
    expect(d.rejectReason).toBeNull();
    expect(d.primaryClaimId).toBe('c1');
  });

  it('rejects a retracted outcome even while it is in grace with a passing record', () => {
    const d = decided({
      snapshot: { state: 'in_grace', recordId: 1, successAt: at('2026-03-03T10:00:00Z') },
      claims: [claim('c1', '2026-03-02T10:00:00Z', '2026-03-04T00:00:00Z')],
      versions: [solved('2026-03-03T10:00:00Z', '2026-03-03T10:00:00Z')],
      asOf: '2026-03-10T00:00:00Z',
    });
    expect(d).toMatchObject({ state: 'rejected', rejectReason: 'retracted' });
    expect(d.events.map((e) => [e.kind, e.fromState, e.toState])).toEqual([['rejected', 'in_grace', 'rejected']]);
  });
});

describe('choosePrimaryClaim', () => {
  it('separates visible, live and primary claims', () => {
    const asOf = at('2026-03-05T00:00:00Z');
    const claims = [
      claim('late', '2026-03-06T00:00:00Z'),
      claim('gone', '2026-03-01T00:00:00Z', '2026-03-02T00:00:00Z'),
      claim('b', '2026-03-03T00:00:00Z'),
      claim('a', '2026-03-03T00:00:00Z', '2026-03-07T00:00:00Z'),
    ];
    const { primary, live, visible } = choosePrimaryClaim(claims, asOf);
    expect(visible.map((c) => c.claimId)).toEqual(['gone', 'a', 'b']);
    expect(live.map((c) => c.claimId)).toEqual(['a', 'b']);
    expect(primary?.claimId).toBe('a');
  });
});

// ---------------------------------------------------------------------------------------------
// No evidence, not achieved, ambiguity

describe('decideOutcome: evidence deadline', () => {
  const claims = [claim('c1', CLAIM_AT)];

  it('waits for evidence until the deadline, P7D counted on the New York wall clock (167 h across DST)', () => {
    const d = decided({ claims, asOf: '2026-03-05T00:00:00Z' });
    expect(d).toMatchObject({
      state: 'awaiting_evidence',
      match: 'none',
      rejectReason: null,
      recordId: null,
      successAt: null,
      graceEndsAt: null,
    });
    expect(iso(d.evidenceDueAt!)).toBe(CLAIM_DUE);
    expect(d.evidenceDueAt!.getTime() - at(CLAIM_AT).getTime()).toBe(167 * HOUR);
    // A fresh outcome that keeps waiting logs no transition.
    expect(d.events).toEqual([]);
  });

  it('is still awaiting exactly at the deadline', () => {
    expect(decided({ claims, asOf: CLAIM_DUE }).state).toBe('awaiting_evidence');
  });

  it('rejects no_evidence only when asOf is strictly past the deadline', () => {
    const d = decided({ claims, asOf: plus(at(CLAIM_DUE), 1) });
    expect(d).toMatchObject({ state: 'rejected', rejectReason: 'no_evidence', match: 'none' });
    expect(d.events).toHaveLength(1);
    expect(d.events[0]).toMatchObject({ kind: 'rejected', fromState: 'awaiting_evidence', toState: 'rejected' });
    expect(d.events[0].details).toMatchObject({ evidenceDueAt: CLAIM_DUE, match: 'none' });
    // 168 h would be the wrong (elapsed-time) reading of P7D; 167 h + 1 ms is already past it.
    expect(plus(at(CLAIM_AT), 167 * HOUR + 1).getTime()).toBe(at(CLAIM_DUE).getTime() + 1);
  });

  it('rejects not_achieved when a record matched but never met the rule', () => {
    const versions = [open('2026-03-03T10:00:00Z'), version('2026-03-04T10:00:00Z', { status: 'pending' })];
    const before = decided({ claims, versions, asOf: CLAIM_DUE });
    expect(before).toMatchObject({ state: 'awaiting_evidence', match: 'matched', recordId: 1, successAt: null });
    const after = decided({ claims, versions, snapshot: { recordId: 1 }, asOf: plus(at(CLAIM_DUE), 1) });
    expect(after).toMatchObject({ state: 'rejected', rejectReason: 'not_achieved', match: 'matched', recordId: 1 });
    expect(after.evidenceVersionId).toBe(versions[1].versionId);
  });

  it('counts the deadline from the last reopen when that is later than the claim', () => {
    const reopenedAt = '2026-03-05T15:00:00.000Z'; // 10:00 EST
    const versions = [solved('2026-03-03T15:00:00Z', '2026-03-03T15:00:00Z'), open(reopenedAt)];
    // Past the claim's own deadline, but within the reopen's.
    const waiting = decided({ claims, versions, snapshot: { recordId: 1 }, asOf: plus(at(CLAIM_DUE), HOUR) });
    expect(waiting.state).toBe('awaiting_evidence');
    expect(iso(waiting.lastReopenedAt!)).toBe(reopenedAt);
    // 10:00 EDT a week later: 167 h after the reopen.
    expect(iso(waiting.evidenceDueAt!)).toBe('2026-03-12T14:00:00.000Z');
    expect(decided({ claims, versions, snapshot: { recordId: 1 }, asOf: '2026-03-12T14:00:00.000Z' }).state).toBe(
      'awaiting_evidence',
    );
    expect(decided({ claims, versions, snapshot: { recordId: 1 }, asOf: '2026-03-12T14:00:00.001Z' })).toMatchObject({
      state: 'rejected',
      rejectReason: 'not_achieved',
    });
  });

  it('counts the deadline from the claim when the reopen came before it', () => {
    const versions = [solved('2026-02-25T15:00:00Z', '2026-02-25T15:00:00Z'), open('2026-02-26T15:00:00Z')];
    const d = decided({ claims, versions, asOf: '2026-03-03T00:00:00Z' });
    expect(iso(d.evidenceDueAt!)).toBe(CLAIM_DUE);
    expect(iso(d.lastReopenedAt!)).toBe('2026-02-26T15:00:00.000Z');
  });
});

describe('decideOutcome: matching', () => {
  const claims = [claim('c1', CLAIM_AT)];

  it('is ambiguous when two records carry the key in their latest version, and the outcome waits', () => {
    const versions = [
      solved('2026-03-03T10:00:00Z', '2026-03-03T10:00:00Z', { recordId: 1 }),
      solved('2026-03-03T11:00:00Z', '2026-03-03T11:00:00Z', { recordId: 2 }),
    ];
    const d = decided({ claims, versions, asOf: '2026-03-08T00:00:00Z' });
    expect(d).toMatchObject({
      state: 'awaiting_evidence',
      match: 'ambiguous',
      recordId: null,
      successAt: null,
      graceEndsAt: null,
      evidenceVersionId: null,
    });
    expect(kinds(d)).not.toContain('matched');
    expect(matchRecord(versions, 't-1', at('2026-03-08T00:00:00Z'))).toEqual({ status: 'ambiguous', versions: [] });
  });

  it('is not ambiguous when the other record has since moved to another key', () => {
    const versions = [
      solved('2026-03-03T10:00:00Z', '2026-03-03T10:00:00Z', { recordId: 1 }),
      open('2026-03-03T09:00:00Z', { recordId: 2 }),
      open('2026-03-03T12:00:00Z', { recordId: 2, matchKey: 't-2' }),
    ];
    // Before record 2 moved, both carry the key.
    expect(decided({ claims, versions, asOf: '2026-03-03T11:00:00Z' }).match).toBe('ambiguous');
    const d = decided({ claims, versions, asOf: '2026-03-03T12:00:00Z' });
    expect(d).toMatchObject({ match: 'matched', recordId: 1, state: 'in_grace' });
  });

  it('emits a matched event the first time a record is found, and not again', () => {
    const versions = [open('2026-03-03T10:00:00Z', { recordId: 7 })];
    const first = decided({ claims, versions, asOf: '2026-03-04T00:00:00Z' });
    expect(first.state).toBe('awaiting_evidence');
    expect(first.events).toEqual([
      {
        kind: 'matched',
        fromState: 'awaiting_evidence',
        toState: 'awaiting_evidence',
        reason: expect.any(String),
        details: { recordId: 7 },
      },
    ]);
    const again = decided({ claims, versions, snapshot: { recordId: 7 }, asOf: '2026-03-05T00:00:00Z' });
    expect(again.events).toEqual([]);
  });

  it('ignores versions that take effect after asOf', () => {
    const versions = [solved('2026-03-04T10:00:00Z', '2026-03-04T10:00:00Z')];
    const d = decided({ claims, versions, asOf: '2026-03-04T09:59:59.999Z' });
    expect(d).toMatchObject({ state: 'awaiting_evidence', match: 'none', recordId: null });
    expect(d.events).toEqual([]);
    // And a later failing version does not void an earlier-decided confirmation.
    const later = [...versions, open('2026-03-08T10:00:00Z')];
    expect(decided({ claims, versions: later, asOf: '2026-03-07T10:00:00Z' }).state).toBe('confirmed');
    expect(decided({ claims, versions: later, asOf: '2026-03-08T10:00:00Z' }).state).toBe('awaiting_evidence');
  });
});

// ---------------------------------------------------------------------------------------------
// Grace

describe('decideOutcome: grace', () => {
  const claims = [claim('c1', CLAIM_AT)];
  // Solved at 12:00 EST on 2026-03-06; the grace window spans the spring-forward night.
  const SOLVED = '2026-03-06T17:00:00.000Z';
  const GRACE_END = '2026-03-09T17:00:00.000Z'; // exactly 72 elapsed hours later
  const versions = [open('2026-03-03T10:00:00Z'), solved('2026-03-06T17:05:00Z', SOLVED)];

  it('goes in grace from the record\u2019s own success time', () => {
    const d = decided({ claims, versions, asOf: '2026-03-07T00:00:00Z' });
    expect(d).toMatchObject({
      state: 'in_grace',
      match: 'matched',
      recordId: 1,
      rejectReason: null,
      evidenceDueAt: null,
    });
    expect(iso(d.successAt!)).toBe(SOLVED);
    expect(iso(d.graceEndsAt!)).toBe(GRACE_END);
    expect(d.evidenceVersionId).toBe(versions[1].versionId);
    expect(kinds(d)).toEqual(['matched', 'in_grace']);
    expect(d.events[1]).toMatchObject({ fromState: 'awaiting_evidence', toState: 'in_grace' });
    expect(d.events[1].details).toMatchObject({ successAt: SOLVED, graceEndsAt: GRACE_END, match: 'matched' });
  });

  it('PT72H is 72 elapsed hours even across the DST change', () => {
    const d = decided({ claims, versions, asOf: '2026-03-07T00:00:00Z' });
    expect(d.graceEndsAt!.getTime() - d.successAt!.getTime()).toBe(72 * HOUR);
  });

  it('stays in grace until just before success + grace, and is confirmed exactly at it', () => {
    const snapshot = { state: 'in_grace' as const, recordId: 1, successAt: at(SOLVED) };
    const before = decided({ claims, versions, snapshot, asOf: plus(at(GRACE_END), -1) });
    expect(before.state).toBe('in_grace');
    expect(before.events).toEqual([]);
    const atEnd = decided({ claims, versions, snapshot, asOf: GRACE_END });
    expect(atEnd.state).toBe('confirmed');
    expect(atEnd.events).toHaveLength(1);
    expect(atEnd.events[0]).toMatchObject({ kind: 'confirmed', fromState: 'in_grace', toState: 'confirmed' });
  });

  it('is confirmed in one step when first seen after the grace already ended', () => {
    const d = decided({ claims, versions, asOf: '2026-03-12T00:00:00Z' });
    expect(d.state).toBe('confirmed');
    expect(kinds(d)).toEqual(['matched', 'confirmed']);
  });

  it('is not confirmed while on hold', () => {
    const snapshot = { state: 'in_grace' as const, onHold: true, recordId: 1, successAt: at(SOLVED) };
    for (const asOf of [GRACE_END, '2026-04-30T00:00:00Z']) {
      const d = decided({ claims, versions, snapshot, asOf });
      expect(d.state).toBe('in_grace');
      expect(d.events).toEqual([]);
    }
  });

  it('a reopen during grace goes back to awaiting_evidence with a reopened event', () => {
    const reopenedAt = '2026-03-07T15:00:00.000Z';
    const withReopen = [...versions, open(reopenedAt)];
    const d = decided({
      claims,
      versions: withReopen,
      snapshot: { state: 'in_grace', recordId: 1, successAt: at(SOLVED) },
      asOf: '2026-03-08T00:00:00Z',
    });
    expect(d).toMatchObject({ state: 'awaiting_evidence', rejectReason: null, successAt: null, graceEndsAt: null });
    expect(iso(d.lastReopenedAt!)).toBe(reopenedAt);
    // 10:00 EST + P7D = 10:00 EDT on the wall clock.
    expect(iso(d.evidenceDueAt!)).toBe('2026-03-14T14:00:00.000Z');
    expect(d.events).toHaveLength(1);
    expect(d.events[0]).toMatchObject({ kind: 'reopened', fromState: 'in_grace', toState: 'awaiting_evidence' });
    expect(d.events[0].reason).toContain(reopenedAt);
  });

  it('reopened and solved again with a new success time: grace restarts from the new time', () => {
    const resolvedAt = '2026-03-10T14:00:00.000Z';
    const history = [...versions, open('2026-03-07T15:00:00Z'), solved(resolvedAt, resolvedAt)];
    const asOf = '2026-03-11T00:00:00Z';
    // The previous run saw the grace from the old success time.
    const restarted = decided({
      claims,
      versions: history,
      snapshot: { state: 'in_grace', recordId: 1, successAt: at(SOLVED) },
      asOf,
    });
    expect(restarted.state).toBe('in_grace');
    expect(iso(restarted.successAt!)).toBe(resolvedAt);
    expect(iso(restarted.graceEndsAt!)).toBe('2026-03-13T14:00:00.000Z');
    expect(restarted.events).toHaveLength(1);
    expect(restarted.events[0]).toMatchObject({ kind: 'grace_restarted', fromState: 'in_grace', toState: 'in_grace' });
    expect(restarted.events[0].details).toMatchObject({ successAt: resolvedAt });
    // The previous run saw the reopen: an ordinary transition into grace.
    const fromAwaiting = decided({
      claims,
      versions: history,
      snapshot: { state: 'awaiting_evidence', recordId: 1 },
      asOf,
    });
    expect(fromAwaiting.state).toBe('in_grace');
    expect(kinds(fromAwaiting)).toEqual(['in_grace']);
    // Without the old success time in the snapshot there is nothing to restart from.
    expect(
      decided({
        claims,
        versions: history,
        snapshot: { state: 'in_grace', recordId: 1, successAt: at(resolvedAt) },
        asOf,
      }).events,
    ).toEqual([]);
  });

  it('when the customer kept the old success time after a reopen, success runs from when it passed again', () => {
    const passedAgainAt = '2026-03-09T20:00:00.000Z';
    const history = [...versions, open('2026-03-07T15:00:00Z'), solved(passedAgainAt, SOLVED)];
    const d = decided({ claims, versions: history, snapshot: { recordId: 1 }, asOf: '2026-03-10T00:00:00Z' });
    expect(d.state).toBe('in_grace');
    expect(iso(d.successAt!)).toBe(passedAgainAt);
    expect(iso(d.graceEndsAt!)).toBe('2026-03-12T20:00:00.000Z');
    // Not confirmed at the old success time's grace end, which has long passed.
    expect(
      decided({ claims, versions: history, snapshot: { recordId: 1 }, asOf: '2026-03-12T19:59:59.999Z' }).state,
    ).toBe('in_grace');
    expect(
      decided({ claims, versions: history, snapshot: { recordId: 1 }, asOf: '2026-03-12T20:00:00.000Z' }).state,
    ).toBe('confirmed');
    // A further update that still passes (a comment, a CSAT score) does not move the success time.
    const touched = [...history, solved('2026-03-11T09:00:00Z', SOLVED)];
    const t = decided({ claims, versions: touched, snapshot: { recordId: 1 }, asOf: '2026-03-12T20:00:00.000Z' });
    expect(iso(t.successAt!)).toBe(passedAgainAt);
    expect(t.state).toBe('confirmed');
    expect(t.evidenceVersionId).toBe(touched.at(-1)!.versionId);
  });

  it('uses the version\u2019s effective time when the record carries no success time', () => {
    const d = decided({
      claims,
      versions: [solved('2026-03-04T10:00:00Z', null), solved('2026-03-04T18:00:00Z', null)],
      asOf: '2026-03-05T00:00:00Z',
    });
    // From the first version of the passing streak, not the latest.
    expect(iso(d.successAt!)).toBe('2026-03-04T10:00:00.000Z');
  });
});

describe('readSuccess', () => {
  it('marks the first failing version after a pass as the reopen', () => {
    const history = [
      solved('2026-03-01T00:00:00Z', '2026-03-01T00:00:00Z'),
      open('2026-03-02T00:00:00Z'),
      version('2026-03-03T00:00:00Z', { status: 'pending' }),
    ];
    const r = readSuccess(history, rules);
    expect(r.holds).toBe(false);
    expect(r.successAt).toBeNull();
    expect(iso(r.lastReopenedAt!)).toBe('2026-03-02T00:00:00.000Z');
    expect(r.evidence).toBe(history[2]);
  });

  it('does not call a failure before any pass a reopen', () => {
    const r = readSuccess(
      [open('2026-03-01T00:00:00Z'), solved('2026-03-02T00:00:00Z', '2026-03-01T12:00:00Z')],
      rules,
    );
    expect(r.holds).toBe(true);
    expect(r.lastReopenedAt).toBeNull();
    expect(iso(r.successAt!)).toBe('2026-03-01T12:00:00.000Z');
  });

  it('holds nothing for an empty history', () => {
    expect(readSuccess([], rules)).toEqual({ holds: false, successAt: null, lastReopenedAt: null, evidence: null });
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over generated histories

const T0 = at('2026-03-01T00:00:00Z').getTime();
// Times on a coarse grid (quarter hours over 40 days) so that ties and exact boundaries occur.
const QUARTER = 15 * 60_000;
const timeArb = fc.integer({ min: 0, max: 40 * 24 * 4 }).map((q) => new Date(T0 + q * QUARTER));

const claimsArb = fc
  .uniqueArray(
    fc.record({
      id: fc.integer({ min: 0, max: 40 }),
      occurredAt: timeArb,
      retractedAt: fc.option(timeArb, { freq: 3 }),
    }),
    { selector: (c) => c.id, maxLength: 4 },
  )
  .map((cs) =>
    cs.map((c): ClaimView => ({ claimId: `c${c.id}`, occurredAt: c.occurredAt, retractedAt: c.retractedAt })),
  );

const versionSpecArb = fc.record({
  recordId: fc.constantFrom(1, 1, 1, 2),
  matchKey: fc.constantFrom('k', 'k', 'k', 'other'),
  effectiveAt: timeArb,
  passes: fc.boolean(),
  // The customer's own success time: absent, near the version, or anywhere.
  solvedAt: fc.option(
    fc.oneof(
      timeArb,
      fc.integer({ min: -48, max: 2 }).map((h) => h * HOUR),
    ),
    { freq: 5 },
  ),
});

const versionsArb = fc.array(versionSpecArb, { maxLength: 7 }).map((specs) =>
  specs.map((s, i): VersionView => {
    const solvedAt =
      s.solvedAt === null
        ? null
        : typeof s.solvedAt === 'number'
          ? new Date(s.effectiveAt.getTime() + s.solvedAt)
          : s.solvedAt;
    const data: Record<string, unknown> = { status: s.passes ? 'solved' : 'open' };
    if (solvedAt) data.solved_at = solvedAt.toISOString();
    return { versionId: i + 1, recordId: s.recordId, matchKey: s.matchKey, effectiveAt: s.effectiveAt, data };
  }),
);

const snapshotArb: fc.Arbitrary<OutcomeSnapshot> = fc.oneof(
  fc.record({
    state: fc.constant<OutcomeState>('awaiting_evidence'),
    onHold: fc.constantFrom(false, false, false, true),
    recordId: fc.constantFrom(null, 1, 2),
    successAt: fc.constant(null),
  }),
  fc.record({
    state: fc.constant<OutcomeState>('in_grace'),
    onHold: fc.constantFrom(false, false, false, true),
    recordId: fc.constantFrom(1, 2),
    successAt: timeArb,
  }),
);

const asOfArb = fc.integer({ min: 0, max: 50 * 24 * 60 }).map((m) => new Date(T0 + m * 60_000));

const scenarioArb = fc.record({ snapshot: snapshotArb, claims: claimsArb, versions: versionsArb, asOf: asOfArb });
type Scenario = { snapshot: OutcomeSnapshot; claims: ClaimView[]; versions: VersionView[]; asOf: Date };

const run = (s: Scenario, asOf: Date = s.asOf) =>
  decideOutcome({ snapshot: s.snapshot, claims: s.claims, versions: s.versions, subjectKey: 'k', rules, asOf });

/** Independent reading: the latest version in effect of one record, by effective time then id. */
function latestInEffect(versions: VersionView[], recordId: number, asOf: Date): VersionView | undefined {
  return versions
    .filter((v) => v.recordId === recordId && v.effectiveAt.getTime() <= asOf.getTime())
    .sort((a, b) => a.effectiveAt.getTime() - b.effectiveAt.getTime() || a.versionId - b.versionId)
    .at(-1);
}

const isLive = (c: ClaimView, asOf: Date) =>
  c.occurredAt.getTime() <= asOf.getTime() && (c.retractedAt === null || c.retractedAt.getTime() > asOf.getTime());

function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let x = seed | 1;
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('decideOutcome: properties', () => {
  it('(a) is deterministic, and does not depend on the order of its inputs', () => {
    fc.assert(
      fc.property(scenarioArb, fc.integer(), (s, seed) => {
        const once = run(s);
        expect(run(s)).toEqual(once);
        expect(run({ ...s, claims: shuffled(s.claims, seed), versions: shuffled(s.versions, seed + 1) })).toEqual(once);
      }),
      { numRuns: 500 },
    );
  });

  it('(b) billing safety: confirmed only with a passing latest version, grace over, no hold, a live claim', () => {
    let confirmed = 0;
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const d = run(s);
        if (d?.state !== 'confirmed') return;
        confirmed++;
        expect(s.snapshot.onHold).toBe(false);
        expect(s.claims.some((c) => isLive(c, s.asOf))).toBe(true);
        expect(d.recordId).not.toBeNull();
        const latest = latestInEffect(s.versions, d.recordId!, s.asOf);
        expect(latest).toBeDefined();
        expect(latest!.matchKey).toBe('k');
        expect(latest!.data.status).toBe('solved');
        expect(d.evidenceVersionId).toBe(latest!.versionId);
        expect(d.successAt).not.toBeNull();
        expect(d.graceEndsAt!.getTime()).toBe(d.successAt!.getTime() + 72 * HOUR);
        expect(s.asOf.getTime()).toBeGreaterThanOrEqual(d.graceEndsAt!.getTime());
        // DESIGN 4: no version in effect within (success_at, asOf] fails the rule.
        const failingSince = s.versions.filter(
          (v) =>
            v.recordId === d.recordId &&
            v.effectiveAt > d.successAt! &&
            v.effectiveAt.getTime() <= s.asOf.getTime() &&
            v.data.status !== 'solved',
        );
        expect(failingSince).toEqual([]);
        // Exactly one record carries the key in its latest version.
        const carriers = [1, 2].filter((r) => latestInEffect(s.versions, r, s.asOf)?.matchKey === 'k');
        expect(carriers).toEqual([d.recordId]);
      }),
      { numRuns: 1500 },
    );
    // The generator must actually reach the interesting state.
    expect(confirmed).toBeGreaterThan(20);
  });

  it('(c) a confirmation stands at any later time when no version or retraction takes effect in between', () => {
    const withLater = fc.record({
      s: scenarioArb,
      // Bias the latest version towards passing so that confirmations are common.
      extra: fc.option(fc.record({ effectiveAt: timeArb, solvedBack: fc.integer({ min: 0, max: 96 }) }), { freq: 2 }),
      step: fc.integer({ min: 1, max: 60 * 24 * 3_600_000 }),
    });
    let checked = 0;
    fc.assert(
      fc.property(withLater, ({ s, extra, step }) => {
        const versions = extra
          ? [
              ...s.versions,
              {
                versionId: 99,
                recordId: 1,
                matchKey: 'k',
                effectiveAt: extra.effectiveAt,
                data: { status: 'solved', solved_at: iso(plus(extra.effectiveAt, -extra.solvedBack * HOUR)) },
              },
            ]
          : s.versions;
        const scenario = { ...s, versions };
        const t = s.asOf.getTime();
        const d = run(scenario);
        if (d?.state !== 'confirmed') return;
        const nextChange = Math.min(
          ...versions.map((v) => v.effectiveAt.getTime()).filter((e) => e > t),
          ...s.claims.map((c) => c.retractedAt?.getTime() ?? Infinity).filter((r) => r > t),
        );
        const t2 = Math.min(t + step, nextChange - 1);
        if (t2 <= t) return;
        checked++;
        const later = run(scenario, new Date(t2));
        expect(later?.state).toBe('confirmed');
        expect(later?.successAt).toEqual(d.successAt);
        expect(later?.recordId).toBe(d.recordId);
      }),
      { numRuns: 1500 },
    );
    expect(checked).toBeGreaterThan(20);
  });

  it('(d) claimCount is the number of claims occurred at or before asOf; null when there is none', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const visible = s.claims.filter((c) => c.occurredAt.getTime() <= s.asOf.getTime());
        const live = visible.filter((c) => isLive(c, s.asOf));
        const d = run(s);
        if (visible.length === 0) {
          expect(d).toBeNull();
          return;
        }
        expect(d).not.toBeNull();
        expect(d!.claimCount).toBe(visible.length);
        expect(d!.duplicateCount).toBe(Math.max(live.length - 1, 0));
        const earliest = [...(live.length ? live : visible)].sort(
          (a, b) => a.occurredAt.getTime() - b.occurredAt.getTime() || (a.claimId < b.claimId ? -1 : 1),
        )[0];
        expect(d!.primaryClaimId).toBe(earliest.claimId);
        expect(d!.state === 'rejected' && d!.rejectReason === 'retracted').toBe(live.length === 0);
      }),
      { numRuns: 1000 },
    );
  });

  it('(e) events come only with a state change, or are matched / grace_restarted; every change has one', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const d = run(s);
        if (!d) return;
        const from = s.snapshot.state;
        for (const e of d.events) {
          expect(e.fromState).toBe(from);
          if (e.kind === 'matched') {
            expect(e.toState).toBe(from);
            expect(d.recordId).not.toBeNull();
            expect(d.recordId).not.toBe(s.snapshot.recordId);
          } else if (e.kind === 'grace_restarted') {
            expect([from, e.toState, d.state]).toEqual(['in_grace', 'in_grace', 'in_grace']);
            expect(d.successAt!.getTime()).not.toBe(s.snapshot.successAt!.getTime());
          } else {
            expect(d.state).not.toBe(from);
            expect(e.toState).toBe(d.state);
          }
        }
        const transitions = d.events.filter((e) => e.kind !== 'matched' && e.kind !== 'grace_restarted');
        expect(transitions).toHaveLength(d.state === from ? 0 : 1);
        if (d.state !== 'in_grace' && from === 'in_grace' && d.match !== 'matched' && d.rejectReason !== 'retracted')
          expect(transitions[0].kind).toBe('match_lost');
        else if (d.state === 'awaiting_evidence' && from === 'in_grace') expect(transitions[0].kind).toBe('reopened');
        expect(d.events.filter((e) => e.kind === 'matched')).toHaveLength(
          d.recordId !== null && d.recordId !== s.snapshot.recordId ? 1 : 0,
        );
      }),
      { numRuns: 1000 },
    );
  });
});

describe('decideOutcome: a match that is lost', () => {
  const CLAIM = '2026-03-02T10:00:00Z';
  it('an in-grace outcome whose key now has two records waits (match_lost), its deadline restarting at that change', () => {
    const d = decided({
      snapshot: { state: 'in_grace', recordId: 1, successAt: at('2026-03-02T11:00:00Z') },
      claims: [claim('c1', CLAIM)],
      versions: [
        solved('2026-03-02T11:00:00Z', '2026-03-02T11:00:00Z', { recordId: 1, versionId: 1 }),
        open('2026-03-04T00:00:00Z', { recordId: 2, versionId: 2 }),
      ],
      asOf: '2026-03-10T00:00:00Z',
    });
    expect(d).toMatchObject({ state: 'awaiting_evidence', match: 'ambiguous' });
    expect(kinds(d)).toEqual(['match_lost']);
    // P7D in New York across the DST change: 167 hours.
    expect(iso(d.evidenceDueAt!)).toBe('2026-03-10T23:00:00.000Z');
  });

  it('rejects as not_achieved, not no_evidence, when a record matched before', () => {
    const d = decided({
      snapshot: { state: 'awaiting_evidence', recordId: 1 },
      claims: [claim('c1', CLAIM)],
      versions: [
        open('2026-03-02T11:00:00Z', { recordId: 1, versionId: 1 }),
        open('2026-03-02T12:00:00Z', { recordId: 2, versionId: 2 }),
      ],
      asOf: '2026-03-20T00:00:00Z',
    });
    expect(d).toMatchObject({ state: 'rejected', rejectReason: 'not_achieved', match: 'ambiguous' });
  });
});
