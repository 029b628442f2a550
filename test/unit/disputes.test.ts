import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DisputeTerms } from '../../src/domain/contract';
import {
  decideDisputeAcceptance,
  disputeDeadlines,
  disputeEffect,
  reopenIsClawedBack,
  type Decision,
} from '../../src/domain/disputes';
import { addIsoDuration } from '../../src/domain/durations';
import type { OutcomeState } from '../../src/domain/lifecycle';
import { codeOf } from './helpers';
import { MINUTE, HOUR, DAY } from '../support/fixtures';

const MS = 1;
const NY = 'America/New_York';
const BERLIN = 'Europe/Berlin';

const terms = (over: Partial<DisputeTerms> = {}): DisputeTerms => ({
  window: 'P30D',
  sla: 'P2D',
  autoResolveAfter: 'P7D',
  defaultDecision: 'uphold',
  ...over,
});
const at = (iso: string) => new Date(iso);
const plus = (d: Date, ms: number) => new Date(d.getTime() + ms);

const ALL_STATES: OutcomeState[] = ['awaiting_evidence', 'in_grace', 'confirmed', 'billed', 'credited', 'rejected'];
const NOT_YET_BILLED: OutcomeState[] = ['awaiting_evidence', 'in_grace', 'confirmed'];
const SETTLED: OutcomeState[] = ['rejected', 'credited'];

const instant = fc.date({
  min: new Date('2000-01-01T00:00:00Z'),
  max: new Date('2040-01-01T00:00:00Z'),
  noInvalidDate: true,
});
const zone = fc.constantFrom('UTC', NY, BERLIN, 'Australia/Sydney', 'Asia/Kolkata', 'America/Sao_Paulo');
/** Windows written in calendar units and in exact units. */
/** Offsets around a boundary, with the boundary itself and its neighbours always in reach. */
const nearBoundary = fc.oneof(fc.constantFrom(0, 1, -1), fc.integer({ min: -3 * DAY, max: 3 * DAY }));
const windowText = fc.oneof(
  fc.integer({ min: 1, max: 90 }).map((n) => `P${n}D`),
  fc.integer({ min: 1, max: 8 }).map((n) => `P${n}W`),
  fc.integer({ min: 1, max: 3 }).map((n) => `P${n}M`),
  fc.integer({ min: 1, max: 2000 }).map((n) => `PT${n}H`),
  fc.integer({ min: 1, max: 30 }).map((n) => `P${n}DT${n}H`),
);

describe('decideDisputeAcceptance', () => {
  it.each(NOT_YET_BILLED)('accepts a dispute on a %s outcome whatever the time and terms', (state) => {
    fc.assert(
      fc.property(instant, fc.option(instant, { nil: null }), windowText, zone, (now, billedAt, window, tz) => {
        expect(decideDisputeAcceptance({ state, billedAt, now, terms: terms({ window }), timeZone: tz })).toEqual({
          ok: true,
        });
      }),
    );
  });

  it.each(SETTLED)('refuses a dispute on a %s outcome as settled, naming the state', (state) => {
    fc.assert(
      fc.property(instant, fc.option(instant, { nil: null }), zone, (now, billedAt, tz) => {
        const r = decideDisputeAcceptance({ state, billedAt, now, terms: terms(), timeZone: tz });
        expect(r.ok).toBe(false);
        if (r.ok) return;
        expect(r.code).toBe('outcome_settled');
        expect(r.message).toContain(state);
      }),
    );
  });

  it('covers every state of the lifecycle', () => {
    expect([...NOT_YET_BILLED, 'billed', ...SETTLED].sort()).toEqual([...ALL_STATES].sort());
  });

  it('refuses a billed outcome without a charge time instead of guessing a window', () => {
    const r = decideDisputeAcceptance({
      state: 'billed',
      billedAt: null,
      now: at('2026-03-02T00:00:00Z'),
      terms: terms(),
      timeZone: NY,
    });
    expect(r).toMatchObject({ ok: false, code: 'outcome_settled' });
    expect(!r.ok && r.message).toMatch(/charge is missing/);
  });

  describe('a billed outcome (P30D window, billed 2026-01-10 12:00 New York)', () => {
    const billedAt = at('2026-01-10T17:00:00Z'); // 12:00 EST
    const end = at('2026-02-09T17:00:00Z'); // no DST change in between: exactly 30 x 24 h
    const decide = (now: Date) =>
      decideDisputeAcceptance({ state: 'billed', billedAt, now, terms: terms({ window: 'P30D' }), timeZone: NY });

    it.each([
      ['right after billing', plus(billedAt, MS)],
      ['at the billing instant', billedAt],
      ['a day before the end', plus(end, -DAY)],
      ['a millisecond before the end', plus(end, -MS)],
      ['exactly at the end', end],
      // A dispute may even be filed with a time before billing (clock skew): not past the end.
      ['before billing', plus(billedAt, -HOUR)],
    ])('accepts %s', (_label, now) => {
      expect(decide(now)).toEqual({ ok: true });
    });

    it.each([
      ['a millisecond after the end', plus(end, MS)],
      ['a day after the end', plus(end, DAY)],
      ['a year later', plus(end, 365 * DAY)],
    ])('refuses %s with the end of the window in the message', (_label, now) => {
      const r = decide(now);
      expect(r).toMatchObject({ ok: false, code: 'dispute_window_closed' });
      if (r.ok) return;
      expect(r.message).toContain('2026-02-09T17:00:00.000Z');
      expect(r.message).toContain('P30D');
      expect(r.message).toContain(billedAt.toISOString());
    });
  });

  it('counts a P30D window on the tenant wall clock across spring-forward (719 hours in New York)', () => {
    const billedAt = at('2026-03-01T17:00:00Z'); // 12:00 EST; DST starts 2026-03-08
    const localEnd = at('2026-03-31T16:00:00Z'); // 12:00 EDT thirty days later
    expect(localEnd.getTime() - billedAt.getTime()).toBe(719 * HOUR);
    const nyAt = (now: Date) =>
      decideDisputeAcceptance({ state: 'billed', billedAt, now, terms: terms(), timeZone: NY });
    const utcAt = (now: Date) =>
      decideDisputeAcceptance({ state: 'billed', billedAt, now, terms: terms(), timeZone: 'UTC' });

    expect(nyAt(localEnd)).toEqual({ ok: true });
    const r = nyAt(plus(localEnd, 30 * MINUTE));
    expect(r).toMatchObject({ ok: false, code: 'dispute_window_closed' });
    expect(!r.ok && r.message).toContain('closed at 2026-03-31T16:00:00.000Z');
    // The same instant is still inside a window counted in UTC (720 hours).
    expect(utcAt(plus(localEnd, 30 * MINUTE))).toEqual({ ok: true });
    const u = utcAt(plus(billedAt, 720 * HOUR + MS));
    expect(!u.ok && u.message).toContain('closed at 2026-03-31T17:00:00.000Z');
  });

  it('counts a P30D window on the tenant wall clock across fall-back (721 hours in New York)', () => {
    const billedAt = at('2026-10-20T16:00:00Z'); // 12:00 EDT; DST ends 2026-11-01
    const localEnd = at('2026-11-19T17:00:00Z'); // 12:00 EST
    expect(localEnd.getTime() - billedAt.getTime()).toBe(721 * HOUR);
    const inside = plus(billedAt, 720 * HOUR + 30 * MINUTE);
    expect(decideDisputeAcceptance({ state: 'billed', billedAt, now: inside, terms: terms(), timeZone: NY })).toEqual({
      ok: true,
    });
    expect(
      decideDisputeAcceptance({ state: 'billed', billedAt, now: inside, terms: terms(), timeZone: 'UTC' }),
    ).toMatchObject({ ok: false, code: 'dispute_window_closed' });
    const r = decideDisputeAcceptance({
      state: 'billed',
      billedAt,
      now: plus(localEnd, MS),
      terms: terms(),
      timeZone: NY,
    });
    expect(!r.ok && r.message).toContain('closed at 2026-11-19T17:00:00.000Z');
  });

  it('an exact-hours window ignores DST: PT720H is 720 elapsed hours in any zone', () => {
    const billedAt = at('2026-03-01T17:00:00Z');
    for (const tz of ['UTC', NY, BERLIN]) {
      const decide = (now: Date) =>
        decideDisputeAcceptance({ state: 'billed', billedAt, now, terms: terms({ window: 'PT720H' }), timeZone: tz });
      expect(decide(plus(billedAt, 720 * HOUR))).toEqual({ ok: true });
      expect(decide(plus(billedAt, 720 * HOUR + MS))).toMatchObject({ ok: false, code: 'dispute_window_closed' });
    }
  });

  it('property: a billed outcome is accepted exactly up to and including the end of the window, and the refusal names that end', () => {
    fc.assert(
      fc.property(instant, windowText, zone, nearBoundary, (billedAt, window, tz, offset) => {
        const end = addIsoDuration(billedAt, window, tz);
        const now = plus(end, offset);
        const r = decideDisputeAcceptance({ state: 'billed', billedAt, now, terms: terms({ window }), timeZone: tz });
        if (offset <= 0) {
          expect(r).toEqual({ ok: true });
        } else {
          expect(r).toMatchObject({ ok: false, code: 'dispute_window_closed' });
          expect(!r.ok && r.message).toContain(end.toISOString());
        }
      }),
    );
  });

  it('property: acceptance is monotone in time (once closed, it stays closed)', () => {
    fc.assert(
      fc.property(
        instant,
        windowText,
        zone,
        fc.integer({ min: 0, max: 200 * DAY }),
        fc.integer({ min: 0, max: 200 * DAY }),
        (billedAt, window, tz, a, b) => {
          const [early, late] = a <= b ? [a, b] : [b, a];
          const ok = (ms: number) =>
            decideDisputeAcceptance({
              state: 'billed',
              billedAt,
              now: plus(billedAt, ms),
              terms: terms({ window }),
              timeZone: tz,
            }).ok;
          if (ok(late)) expect(ok(early)).toBe(true);
        },
      ),
    );
  });

  it('fails loudly on a bad window or time zone rather than accepting', () => {
    const billedAt = at('2026-03-01T17:00:00Z');
    expect(
      codeOf(() =>
        decideDisputeAcceptance({
          state: 'billed',
          billedAt,
          now: billedAt,
          terms: terms({ window: '30 days' }),
          timeZone: NY,
        }),
      ),
    ).toBe('invalid_duration');
    expect(
      codeOf(() =>
        decideDisputeAcceptance({ state: 'billed', billedAt, now: billedAt, terms: terms(), timeZone: 'Mars/Olympus' }),
      ),
    ).toBe('invalid_time_zone');
  });
});

describe('disputeDeadlines', () => {
  it('takes the SLA and the auto-resolution deadline from the opening time with the default terms', () => {
    const openedAt = at('2026-01-12T15:30:00Z');
    expect(disputeDeadlines(openedAt, terms(), NY)).toEqual({
      slaAt: at('2026-01-14T15:30:00Z'),
      autoResolveAt: at('2026-01-19T15:30:00Z'),
    });
  });

  it('counts calendar days on the tenant wall clock across spring-forward: P2D is 47 hours, PT48H is 48', () => {
    const openedAt = at('2026-03-07T15:00:00Z'); // 10:00 EST, the day before DST starts
    const d = disputeDeadlines(openedAt, terms({ sla: 'P2D', autoResolveAfter: 'PT48H' }), NY);
    expect(d.slaAt).toEqual(at('2026-03-09T14:00:00Z')); // 10:00 EDT
    expect(d.slaAt.getTime() - openedAt.getTime()).toBe(47 * HOUR);
    expect(d.autoResolveAt.getTime() - openedAt.getTime()).toBe(48 * HOUR);
  });

  it('counts a P7D deadline across fall-back as 169 hours in New York and 168 in UTC', () => {
    const openedAt = at('2026-10-29T14:00:00Z'); // 10:00 EDT; DST ends 2026-11-01
    expect(disputeDeadlines(openedAt, terms(), NY).autoResolveAt.getTime() - openedAt.getTime()).toBe(169 * HOUR);
    expect(disputeDeadlines(openedAt, terms(), 'UTC').autoResolveAt.getTime() - openedAt.getTime()).toBe(168 * HOUR);
  });

  it('supports windows shorter than a minute (as the integration tests use)', () => {
    const openedAt = at('2026-05-01T00:00:00Z');
    expect(disputeDeadlines(openedAt, terms({ sla: 'PT2S', autoResolveAfter: 'PT5S' }), NY)).toEqual({
      slaAt: plus(openedAt, 2000),
      autoResolveAt: plus(openedAt, 5000),
    });
  });

  it('property: both deadlines are the opening time plus their duration, never before the opening', () => {
    fc.assert(
      fc.property(instant, windowText, windowText, zone, (openedAt, sla, autoResolveAfter, tz) => {
        const d = disputeDeadlines(openedAt, terms({ sla, autoResolveAfter }), tz);
        expect(d.slaAt).toEqual(addIsoDuration(openedAt, sla, tz));
        expect(d.autoResolveAt).toEqual(addIsoDuration(openedAt, autoResolveAfter, tz));
        expect(d.slaAt.getTime()).toBeGreaterThan(openedAt.getTime());
        expect(d.autoResolveAt.getTime()).toBeGreaterThan(openedAt.getTime());
      }),
    );
  });

  it('property: with the same unit, a shorter SLA never falls after the auto-resolution', () => {
    fc.assert(
      fc.property(
        instant,
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 0, max: 60 }),
        zone,
        fc.constantFrom('D', 'W'),
        (openedAt, sla, extra, tz, unit) => {
          const d = disputeDeadlines(
            openedAt,
            terms({ sla: `P${sla}${unit}`, autoResolveAfter: `P${sla + extra}${unit}` }),
            tz,
          );
          expect(d.slaAt.getTime()).toBeLessThanOrEqual(d.autoResolveAt.getTime());
        },
      ),
    );
  });

  it('refuses an unknown time zone', () => {
    expect(codeOf(() => disputeDeadlines(at('2026-05-01T00:00:00Z'), terms(), 'Nowhere/Special'))).toBe(
      'invalid_time_zone',
    );
  });
});

describe('disputeEffect', () => {
  // A dispute cannot be opened on credited or rejected outcomes, but one can settle while its
  // dispute is open (a retraction credits it, its deadline rejects it): then nothing more happens.
  const table: Array<[Decision, OutcomeState, string]> = [
    ['uphold', 'awaiting_evidence', 'reject_outcome'],
    ['uphold', 'in_grace', 'reject_outcome'],
    ['uphold', 'confirmed', 'reject_outcome'],
    ['uphold', 'billed', 'credit_charge'],
    ['reject', 'awaiting_evidence', 'lift_hold'],
    ['reject', 'in_grace', 'lift_hold'],
    ['reject', 'confirmed', 'lift_hold'],
    ['reject', 'billed', 'lift_hold'],
    ['reject', 'credited', 'none'],
    ['reject', 'rejected', 'none'],
    ['uphold', 'credited', 'none'],
    ['uphold', 'rejected', 'none'],
  ];

  it.each(table)('%s on a %s outcome: %s', (decision, state, effect) => {
    expect(disputeEffect(decision, state)).toBe(effect);
  });

  it('a rejected dispute never touches the ledger or the state, whatever the state', () => {
    for (const s of ALL_STATES) expect(['lift_hold', 'none']).toContain(disputeEffect('reject', s));
  });

  it('only an uphold on a billed outcome credits', () => {
    for (const s of ALL_STATES)
      for (const d of ['uphold', 'reject'] as const) {
        expect(disputeEffect(d, s) === 'credit_charge').toBe(d === 'uphold' && s === 'billed');
      }
  });
});

describe('reopenIsClawedBack', () => {
  const billedAt = at('2026-03-06T17:00:00Z'); // 12:00 EST, two days before DST starts in New York
  const claw = (reopenedAt: Date, clawbackWindow: string, timeZone = NY) =>
    reopenIsClawedBack({ billedAt, reopenedAt, clawbackWindow, timeZone });

  it('a zero window (the default) never claws back', () => {
    fc.assert(
      fc.property(
        instant,
        fc.integer({ min: -30 * DAY, max: 30 * DAY }),
        fc.constantFrom('PT0S', 'P0D', 'PT0H', 'P0DT0H0M0S'),
        zone,
        (billed, offset, window, tz) => {
          expect(
            reopenIsClawedBack({
              billedAt: billed,
              reopenedAt: plus(billed, offset),
              clawbackWindow: window,
              timeZone: tz,
            }),
          ).toBe(false);
        },
      ),
    );
    expect(claw(plus(billedAt, MS), 'PT0S')).toBe(false);
  });

  it('a reopen exactly at the end of the window is inside it; a millisecond later is not', () => {
    const end = at('2026-03-08T16:00:00Z'); // 12:00 EDT two days later: 47 hours
    expect(claw(end, 'P2D')).toBe(true);
    expect(claw(plus(end, MS), 'P2D')).toBe(false);
    expect(claw(plus(billedAt, 47 * HOUR + 30 * MINUTE), 'P2D')).toBe(false);
    // Counted in UTC the same window is 48 hours.
    expect(claw(plus(billedAt, 47 * HOUR + 30 * MINUTE), 'P2D', 'UTC')).toBe(true);
    expect(claw(plus(billedAt, 48 * HOUR), 'PT48H')).toBe(true);
    expect(claw(plus(billedAt, 48 * HOUR + MS), 'PT48H')).toBe(false);
  });

  it('a reopen right after billing is inside any non-zero window', () => {
    expect(claw(plus(billedAt, MS), 'PT1S')).toBe(true);
    expect(claw(plus(billedAt, MINUTE), 'P2D')).toBe(true);
  });

  it('a reopen before (or at) billing is not a clawback: the run that billed already saw it', () => {
    expect(claw(billedAt, 'P2D')).toBe(false);
    expect(claw(plus(billedAt, -MS), 'P2D')).toBe(false);
    expect(claw(plus(billedAt, -10 * DAY), 'P30D')).toBe(false);
  });

  it('property: clawed back exactly when billedAt < reopenedAt <= billedAt + window (in the tenant zone)', () => {
    fc.assert(
      fc.property(instant, windowText, zone, nearBoundary, fc.boolean(), (billed, window, tz, offset, fromEnd) => {
        const end = addIsoDuration(billed, window, tz);
        const reopenedAt = plus(fromEnd ? end : billed, offset);
        const expected = reopenedAt.getTime() > billed.getTime() && reopenedAt.getTime() <= end.getTime();
        expect(reopenIsClawedBack({ billedAt: billed, reopenedAt, clawbackWindow: window, timeZone: tz })).toBe(
          expected,
        );
      }),
    );
  });

  it('refuses a bad window rather than deciding', () => {
    expect(codeOf(() => claw(plus(billedAt, HOUR), 'two days'))).toBe('invalid_duration');
  });
});
