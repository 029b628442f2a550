import { evaluatePredicate, type Predicate } from './predicate';
import { addIsoDuration } from './durations';

export type OutcomeState = 'awaiting_evidence' | 'in_grace' | 'confirmed' | 'billed' | 'credited' | 'rejected';
export type RejectReason = 'no_evidence' | 'not_achieved' | 'retracted' | 'dispute_upheld';
export type MatchStatus = 'matched' | 'none' | 'ambiguous';

/** States a run may still move; billed, credited and rejected are settled. */
export const OPEN_STATES: OutcomeState[] = ['awaiting_evidence', 'in_grace', 'confirmed'];

export interface ClaimView {
  claimId: string;
  occurredAt: Date;
  retractedAt: Date | null;
}

export interface VersionView {
  versionId: number;
  recordId: number;
  effectiveAt: Date;
  matchKey: string;
  data: Record<string, unknown>;
}

export interface OutcomeSnapshot {
  state: OutcomeState;
  onHold: boolean;
  recordId: number | null;
  successAt: Date | null;
}

export interface LifecycleRules {
  success: Predicate;
  successTimeField: string;
  graceWindow: string;
  evidenceDeadline: string;
  timeZone: string;
}

export interface LifecycleEvent {
  kind: string;
  fromState: OutcomeState;
  toState: OutcomeState;
  reason: string;
  details: Record<string, unknown>;
}

export interface OutcomeDecision {
  state: OutcomeState;
  rejectReason: RejectReason | null;
  match: MatchStatus;
  primaryClaimId: string;
  claimCount: number;
  duplicateCount: number;
  recordId: number | null;
  evidenceVersionId: number | null;
  successAt: Date | null;
  graceEndsAt: Date | null;
  evidenceDueAt: Date | null;
  lastReopenedAt: Date | null;
  events: LifecycleEvent[];
}

const byTimeThenId = (a: ClaimView, b: ClaimView) =>
  a.occurredAt.getTime() - b.occurredAt.getTime() || (a.claimId < b.claimId ? -1 : a.claimId > b.claimId ? 1 : 0);

const byEffective = (a: VersionView, b: VersionView) =>
  a.effectiveAt.getTime() - b.effectiveAt.getTime() || a.versionId - b.versionId;

/** The earliest live claim (by occurred_at, then claim_id) is primary; the others are duplicates. */
export function choosePrimaryClaim(
  claims: ClaimView[],
  asOf: Date,
): { primary: ClaimView | null; live: ClaimView[]; visible: ClaimView[] } {
  const visible = claims.filter((c) => c.occurredAt.getTime() <= asOf.getTime()).sort(byTimeThenId);
  const live = visible.filter((c) => !c.retractedAt || c.retractedAt.getTime() > asOf.getTime());
  return { primary: live[0] ?? null, live, visible };
}

/**
 * Several records may carry the subject's key. A record counts by its latest version in effect;
 * more than one such record is ambiguous and the outcome waits.
 */
export function matchRecord(
  versions: VersionView[],
  subjectKey: string,
  asOf: Date,
): { status: MatchStatus; versions: VersionView[] } {
  const byRecord = new Map<number, VersionView[]>();
  for (const v of versions) {
    if (v.effectiveAt.getTime() > asOf.getTime()) continue;
    const list = byRecord.get(v.recordId) ?? [];
    list.push(v);
    byRecord.set(v.recordId, list);
  }
  const matches: VersionView[][] = [];
  for (const list of byRecord.values()) {
    list.sort(byEffective);
    if (list[list.length - 1].matchKey === subjectKey) matches.push(list);
  }
  if (matches.length === 0) return { status: 'none', versions: [] };
  if (matches.length > 1) return { status: 'ambiguous', versions: [] };
  return { status: 'matched', versions: matches[0] };
}

function timeField(data: Record<string, unknown>, field: string): Date | null {
  const v = data[field];
  if (typeof v !== 'string') return null;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? null : new Date(ms);
}

export interface SuccessReading {
  holds: boolean;
  successAt: Date | null;
  lastReopenedAt: Date | null;
  evidence: VersionView | null;
}

/**
 * Reads a record's history (versions in effect, oldest first) against the success rule.
 * A failing version after a passing one is a reopen. When the latest version passes, success
 * runs from the record's own success time, unless a failing version took effect after that time
 * (the customer's system kept the old "solved at"): then from when the record passed again.
 */
export function readSuccess(
  history: VersionView[],
  rules: Pick<LifecycleRules, 'success' | 'successTimeField'>,
): SuccessReading {
  let lastReopenedAt: Date | null = null;
  let lastFailAt: Date | null = null;
  let streakStart: VersionView | null = null;
  let passedBefore = false;
  for (const v of history) {
    const passes = evaluatePredicate(rules.success, v.data);
    if (passes) {
      if (!streakStart) streakStart = v;
      passedBefore = true;
    } else {
      if (passedBefore && streakStart) lastReopenedAt = v.effectiveAt;
      lastFailAt = v.effectiveAt;
      streakStart = null;
    }
  }
  const latest = history[history.length - 1] ?? null;
  if (!latest || !streakStart) return { holds: false, successAt: null, lastReopenedAt, evidence: latest };
  const own = timeField(latest.data, rules.successTimeField);
  const successAt = own && !(lastFailAt && lastFailAt.getTime() > own.getTime()) ? own : streakStart.effectiveAt;
  return { holds: true, successAt, lastReopenedAt, evidence: latest };
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** The last time a record took or dropped a key (its first version, or a version whose key changed). */
function lastKeyChange(versions: VersionView[], asOf: Date): Date | null {
  const byRecord = new Map<number, VersionView[]>();
  for (const v of versions)
    if (v.effectiveAt <= asOf) byRecord.set(v.recordId, [...(byRecord.get(v.recordId) ?? []), v]);
  let latest: Date | null = null;
  for (const list of byRecord.values()) {
    list.sort(byEffective);
    list.forEach((v, i) => {
      const changed = i === 0 || list[i - 1].matchKey !== v.matchKey;
      if (changed && (!latest || v.effectiveAt > latest)) latest = v.effectiveAt;
    });
  }
  return latest;
}

/**
 * Decides where one open outcome stands as of `asOf`, from its claims and the matching record's
 * history. Pure: the same inputs always give the same decision, which is what makes reruns safe.
 * Returns null when no claim is visible yet at `asOf`.
 */
export function decideOutcome(input: {
  snapshot: OutcomeSnapshot;
  claims: ClaimView[];
  versions: VersionView[];
  subjectKey: string;
  rules: LifecycleRules;
  asOf: Date;
}): OutcomeDecision | null {
  const { snapshot, rules, asOf } = input;
  const { primary, live, visible } = choosePrimaryClaim(input.claims, asOf);
  if (visible.length === 0) return null;
  const from = snapshot.state;
  const base = {
    claimCount: visible.length,
    duplicateCount: Math.max(live.length - 1, 0),
    events: [] as LifecycleEvent[],
  };

  if (!primary) {
    const lastRetraction = visible.reduce((m, c) => Math.max(m, c.retractedAt?.getTime() ?? 0), 0);
    return {
      ...base,
      state: 'rejected',
      rejectReason: 'retracted',
      match: 'none',
      primaryClaimId: visible[0].claimId,
      recordId: snapshot.recordId,
      evidenceVersionId: null,
      successAt: snapshot.successAt,
      graceEndsAt: null,
      evidenceDueAt: null,
      lastReopenedAt: null,
      events: [
        {
          kind: 'rejected',
          fromState: from,
          toState: 'rejected',
          reason: 'retracted',
          details: { retractedAt: new Date(lastRetraction).toISOString(), claims: visible.map((c) => c.claimId) },
        },
      ],
    };
  }

  const match = matchRecord(input.versions, input.subjectKey, asOf);
  const reading = match.status === 'matched' ? readSuccess(match.versions, rules) : null;
  const recordId = match.status === 'matched' ? match.versions[0].recordId : null;
  const events: LifecycleEvent[] = [];
  if (recordId !== null && snapshot.recordId !== recordId) {
    events.push({
      kind: 'matched',
      fromState: from,
      toState: from,
      reason: 'customer record found',
      details: { recordId },
    });
  }

  let state: OutcomeState;
  let rejectReason: RejectReason | null = null;
  let graceEndsAt: Date | null = null;
  let evidenceDueAt: Date | null = null;
  const lastReopenedAt = reading?.lastReopenedAt ?? null;

  if (reading?.holds && reading.successAt) {
    graceEndsAt = addIsoDuration(reading.successAt, rules.graceWindow, rules.timeZone);
    const graceOver = asOf.getTime() >= graceEndsAt.getTime();
    state = graceOver && !snapshot.onHold ? 'confirmed' : 'in_grace';
  } else {
    // The deadline restarts with the last reopen, and with the last change to the records carrying
    // this key while none matches uniquely (a re-keyed record, a second record with the key).
    const keyChangedAt = match.status === 'matched' ? null : lastKeyChange(input.versions, asOf);
    const since = [primary.occurredAt, lastReopenedAt, keyChangedAt].reduce<Date>(
      (m, d) => (d && d > m ? d : m),
      primary.occurredAt,
    );
    evidenceDueAt = addIsoDuration(since, rules.evidenceDeadline, rules.timeZone);
    if (asOf.getTime() > evidenceDueAt.getTime()) {
      state = 'rejected';
      // no_evidence only when no record ever matched; a record that matched once and failed is not_achieved.
      rejectReason = match.status === 'matched' || snapshot.recordId !== null ? 'not_achieved' : 'no_evidence';
    } else {
      state = 'awaiting_evidence';
    }
  }

  const successAt = reading?.holds ? reading.successAt : null;
  const details = {
    successAt: iso(successAt),
    graceEndsAt: iso(graceEndsAt),
    evidenceDueAt: iso(evidenceDueAt),
    evidenceVersionId: reading?.evidence?.versionId ?? null,
    match: match.status,
  };
  // A confirmed outcome not yet posted is re-decided too: it may have reopened since.
  const wasSucceeding = from === 'in_grace' || from === 'confirmed';
  if (wasSucceeding && state !== 'in_grace' && state !== 'confirmed' && match.status !== 'matched') {
    events.push({
      kind: 'match_lost',
      fromState: from,
      toState: state,
      reason:
        match.status === 'ambiguous'
          ? 'more than one customer record now carries this key'
          : 'no customer record carries this key any more',
      details,
    });
  } else if (wasSucceeding && state === 'awaiting_evidence') {
    events.push({
      kind: 'reopened',
      fromState: from,
      toState: state,
      reason: `record stopped meeting the success rule at ${iso(lastReopenedAt)}`,
      details,
    });
  } else if (
    from === 'in_grace' &&
    state === 'in_grace' &&
    snapshot.successAt &&
    successAt &&
    snapshot.successAt.getTime() !== successAt.getTime()
  ) {
    events.push({
      kind: 'grace_restarted',
      fromState: from,
      toState: state,
      reason: `reopened and succeeded again at ${iso(successAt)}`,
      details,
    });
  } else if (state !== from) {
    const reason =
      state === 'in_grace'
        ? `success at ${iso(successAt)}, grace until ${iso(graceEndsAt)}`
        : state === 'confirmed'
          ? `grace ended ${iso(graceEndsAt)} with the success rule still met`
          : state === 'rejected'
            ? `${rejectReason}: no success by the evidence deadline ${iso(evidenceDueAt)}`
            : match.status === 'ambiguous'
              ? 'more than one customer record carries this key'
              : 'waiting for evidence';
    events.push({ kind: state, fromState: from, toState: state, reason, details });
  }

  return {
    ...base,
    state,
    rejectReason,
    match: match.status,
    primaryClaimId: primary.claimId,
    recordId,
    evidenceVersionId: reading?.evidence?.versionId ?? null,
    successAt,
    graceEndsAt,
    evidenceDueAt,
    lastReopenedAt,
    events,
  };
}
