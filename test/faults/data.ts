/**
 * The fault suite's data set: one seeded multi-night story of a helpdesk tenant. Claims arrive in
 * files and from the HTTP claims source, records are solved, reopened, re-solved, some claims are
 * retracted, some delivered twice or doubled by a second claim on the same ticket, two outcomes
 * are disputed. Everything is a pure function of the seed, so every run sees the same bytes.
 */
import { seededRandom } from '../../src/demo/dataset';
import { HOUR } from '../support/fixtures';

/** Nights of the story (06:00 UTC, after midnight in New York); the last one starts a new period. */
export const NIGHTS = [
  '2026-10-05T06:00:00Z',
  '2026-10-08T06:00:00Z',
  '2026-10-12T06:00:00Z',
  '2026-10-19T06:00:00Z',
  '2026-11-02T06:00:00Z',
].map((s) => new Date(s));

const START = Date.parse('2026-10-01T00:00:00Z');

/** The demo's seeded generator: one deterministic source of randomness for every data set. */
export const rng = seededRandom;

export interface Claim {
  claim_id: string;
  outcome_type?: string;
  subject_ref?: string;
  occurred_at?: string;
  retracted?: boolean;
  retracted_at?: string;
}

export interface RecordVersion {
  ticket: string;
  status: string;
  solvedAt: string;
  updatedAt: string;
  csat: number;
}

export interface Delivery<T> {
  /** The first night whose asOf is at or after this item (it cannot be known earlier). */
  night: number;
  via: 'file' | 'http';
  item: T;
}

export interface Dispute {
  ticket: string;
  /** Opened after this night, resolved after the next one. */
  night: number;
  decision: 'uphold' | 'reject';
}

export interface Story {
  claims: Delivery<Claim>[];
  records: Delivery<RecordVersion>[];
  disputes: Dispute[];
  /** The second tenant's story, pulled from Zendesk and the AI side's PostgreSQL (pulled.ts). */
  pulled: PulledStory;
}

const iso = (ms: number) => new Date(ms).toISOString();

function nightOf(ms: number): number {
  const i = NIGHTS.findIndex((n) => n.getTime() >= ms);
  return i < 0 ? NIGHTS.length - 1 : i;
}

export function makeStory(seed: number, tickets: number): Story {
  const r = rng(seed);
  const pick = (p: number) => r() < p;
  const claims: Delivery<Claim>[] = [];
  const records: Delivery<RecordVersion>[] = [];
  const inGrace: string[] = [];
  for (let i = 1; i <= tickets; i++) {
    const ticket = `T-${String(i).padStart(4, '0')}`;
    // Claims are made over the first two weeks, to the minute.
    const at = START + Math.floor(r() * 14 * 24 * 60) * 60_000;
    const via = pick(0.5) ? 'http' : 'file';
    const claim: Claim = {
      claim_id: `${ticket}-c1`,
      outcome_type: 'resolved_ticket',
      subject_ref: ticket,
      occurred_at: iso(at),
    };
    claims.push({ night: nightOf(at), via, item: claim });
    // The same claim again a night later (a redelivery), or a second claim on the same ticket.
    if (pick(0.1))
      claims.push({
        night: Math.min(nightOf(at) + 1, NIGHTS.length - 1),
        via: via === 'http' ? 'file' : 'http',
        item: claim,
      });
    if (pick(0.08)) {
      const later = at + Math.floor(r() * 6 * 60) * 60_000;
      claims.push({
        night: nightOf(later),
        via,
        item: {
          claim_id: `${ticket}-c2`,
          outcome_type: 'resolved_ticket',
          subject_ref: ticket,
          occurred_at: iso(later),
        },
      });
    }
    const retracted = pick(0.06);
    if (retracted) {
      const when = at + Math.floor((1 + r() * 30) * HOUR);
      claims.push({
        night: nightOf(when),
        via,
        item: { claim_id: `${ticket}-c1`, retracted: true, retracted_at: iso(when) },
      });
    }
    if (pick(0.08)) continue; // no record ever: rejected at the evidence deadline
    const solved = at + Math.floor((0.5 + r() * 20) * HOUR);
    const csat = pick(0.1) ? 1 : 2 + Math.floor(r() * 4);
    const version = (status: string, solvedAt: number | null, updatedAt: number): Delivery<RecordVersion> => ({
      night: nightOf(updatedAt),
      via: 'file',
      item: { ticket, status, solvedAt: solvedAt === null ? '' : iso(solvedAt), updatedAt: iso(updatedAt), csat },
    });
    records.push(version('solved', solved, solved));
    if (pick(0.15)) {
      // Reopened: within grace (grace restarts) or after billing (a clawback credit).
      const reopen = solved + Math.floor((4 + r() * 150) * HOUR);
      records.push(version('open', null, reopen));
      if (pick(0.5)) {
        const again = reopen + Math.floor((2 + r() * 48) * HOUR);
        records.push(version('solved', again, again));
      }
    } else if (!retracted && csat > 1 && nightOf(solved) === 1) {
      inGrace.push(ticket);
    }
  }
  // Disputed after night 1 while in grace: upheld (never billed), rejected (billed later).
  const disputes: Dispute[] = inGrace
    .slice(0, 2)
    .map((ticket, k) => ({ ticket, night: 1, decision: k === 0 ? 'uphold' : 'reject' }));
  return { claims, records, disputes, pulled: makePulledStory(seed, Math.max(16, Math.round(tickets / 6))) };
}

const MIN = 60_000;
export type TicketEvent =
  | { at: number; ticket: number; kind: 'create' | 'solve' | 'reopen' | 'delete' }
  | { at: number; ticket: number; kind: 'claim'; claimId: string; subject: string };

export interface PulledStory {
  tickets: number;
  /** In time order; ticket n is the n-th created, which is the id Zendesk gives it. */
  events: TicketEvent[];
}

/** A whole minute in [from, to). */
function minuteIn(r: () => number, from: number, to: number): number {
  return from + Math.floor(r() * Math.max(1, Math.floor((to - from) / MIN))) * MIN;
}

/**
 * Tickets opened and solved in the stretch before each of the first four nights; a few reopened
 * (half of them solved again) or deleted within their 72-hour grace, early in the stretch after
 * their night. Every change keeps an hour clear of a night: the night's pull sees it or not,
 * never depending on how fast the run goes.
 */
export function makePulledStory(seed: number, tickets: number): PulledStory {
  const r = rng(seed * 31 + 7);
  const nights = NIGHTS.map((n) => n.getTime());
  const perNight = Math.max(2, Math.round(tickets / 4));
  const opened: Array<{ at: number; night: number }> = [];
  for (let k = 0; k < 4; k++) {
    const from = (k === 0 ? START : nights[k - 1]) + 2 * HOUR;
    for (let j = 0; j < perNight; j++) opened.push({ at: minuteIn(r, from, nights[k] - 12 * HOUR), night: k });
  }
  opened.sort((a, b) => a.at - b.at);
  const events: TicketEvent[] = [];
  // The first ticket of night 1 is reopened and the first of night 2 deleted, whatever the seed.
  const forced = new Map([
    [opened.findIndex((o) => o.night === 1), 0.1],
    [opened.findIndex((o) => o.night === 2), 0.25],
  ]);
  opened.forEach((o, i) => {
    const ticket = i + 1;
    const night = nights[o.night];
    const roll = r();
    const fate = forced.get(i) ?? roll;
    // Reopened or deleted tickets are solved near their night, so that the change after it is in grace.
    const nearNight = fate < 0.3;
    const solved = nearNight
      ? minuteIn(r, night - 10 * HOUR, night - 2 * HOUR)
      : minuteIn(r, o.at + HOUR, night - 2 * HOUR);
    events.push({ at: o.at, ticket, kind: 'create' }, { at: solved, ticket, kind: 'solve' });
    // One in ten solved tickets is never claimed: no outcome, nothing billed.
    if (r() >= 0.1) events.push({ at: solved, ticket, kind: 'claim', claimId: `z-${ticket}`, subject: String(ticket) });
    const after = minuteIn(r, night + 2 * HOUR, night + 20 * HOUR);
    if (fate < 0.2) {
      events.push({ at: after, ticket, kind: 'reopen' });
      if (r() < 0.5) events.push({ at: minuteIn(r, after + HOUR, after + 30 * HOUR), ticket, kind: 'solve' });
    } else if (fate < 0.3) events.push({ at: after, ticket, kind: 'delete' });
  });
  // A claim whose ticket never exists: awaiting evidence, then rejected at the deadline.
  events.push({ at: nights[0] - 5 * HOUR, ticket: 0, kind: 'claim', claimId: 'z-ghost', subject: '999999' });
  events.sort((a, b) => a.at - b.at || a.ticket - b.ticket);
  return { tickets: opened.length, events };
}
