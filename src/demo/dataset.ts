import { addIsoDuration } from '../domain/durations';
import { parseCustomerTimestamp } from '../domain/timestamps';
import { localTime } from '../domain/periods';

/** Deterministic: the same seed tells the same story on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type TicketKind =
  | 'solved'
  | 'reopened'
  | 'reopened_resolved'
  | 'duplicate'
  | 'retracted'
  | 'no_record'
  | 'pending'
  | 'unhappy'
  | 'late_record';

export interface DemoClaim {
  claim_id: string;
  outcome_type: string;
  subject_ref: string;
  occurred_at: string;
  attributes?: Record<string, unknown>;
  retracted?: boolean;
  retracted_at?: string;
}

export interface DemoVersion {
  ticketId: string;
  status: string;
  solvedAtLocal: string;
  updatedAt: Date;
  csat: string;
  /** When the customer's export first carries this row (late records arrive nights later). */
  exportedAfter: Date;
}

export interface DemoDataset {
  nights: Date[];
  claims: Array<{ publishAt: Date; claim: DemoClaim | Record<string, unknown> }>;
  versions: DemoVersion[];
  malformedRecordRows: Array<{ night: number; line: string }>;
  kinds: Map<string, TicketKind>;
}

const H = 3600_000;
const TZ = 'America/New_York';

/** Local wall time in New York, written the way a helpdesk export writes it (no offset). */
function localText(d: Date): string {
  // localTime gives "YYYY-MM-DD HH:MM <zone>"; an export leaves the zone out.
  return localTime(d, TZ).slice(0, 16);
}

function pickKind(r: number): TicketKind {
  if (r < 0.74) return 'solved';
  if (r < 0.77) return 'reopened';
  if (r < 0.8) return 'reopened_resolved';
  if (r < 0.84) return 'duplicate';
  if (r < 0.87) return 'retracted';
  if (r < 0.91) return 'no_record';
  if (r < 0.94) return 'pending';
  if (r < 0.96) return 'unhappy';
  return 'late_record';
}

/** 01:00 New York time, `daysAgo` calendar days before `now`: the demo tells the story of the last nights. */
export function demoFirstNight(now: Date, daysAgo: number): Date {
  const [y, m, d] = new Intl.DateTimeFormat('en-CA', {
    timeZone: TZ,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  })
    .format(now)
    .split('-')
    .map(Number);
  const day = new Date(Date.UTC(y, m - 1, d - daysAgo)).toISOString().slice(0, 10);
  return parseCustomerTimestamp(`${day} 01:00`, TZ);
}

/**
 * A few hundred support tickets over nine nights, nightly at 01:00 New York time: most solved and billed after grace, some reopened within grace,
 * duplicates, retractions, tickets the customer never had, late exports and malformed rows.
 */
export function buildDemoDataset(opts: { firstNight: Date; tickets?: number; seed?: number }): DemoDataset {
  const rand = seededRandom(opts.seed ?? 20260302);
  const count = opts.tickets ?? 300;
  const nights = Array.from({ length: 9 }, (_, k) => addIsoDuration(opts.firstNight, `P${k}D`, TZ));
  const start = opts.firstNight.getTime() - 17 * H;
  const claims: DemoDataset['claims'] = [];
  const versions: DemoVersion[] = [];
  const kinds = new Map<string, TicketKind>();
  const at = (ms: number) => new Date(Math.round(ms / 60_000) * 60_000);

  for (let i = 0; i < count; i++) {
    const ticketId = `T-${1001 + i}`;
    const kind = pickKind(rand());
    kinds.set(ticketId, kind);
    const claimAt = at(start + rand() * 60 * H);
    const claim: DemoClaim = {
      claim_id: `fin-${100001 + i}`,
      outcome_type: 'resolved_ticket',
      subject_ref: ticketId,
      occurred_at: claimAt.toISOString(),
      attributes: { channel: rand() < 0.5 ? 'chat' : 'email' },
    };
    claims.push({ publishAt: claimAt, claim });
    if (kind === 'duplicate') {
      const again = at(claimAt.getTime() + (1 + rand() * 3) * H);
      // The AI side sends a second claim for the same ticket, with the subject written differently.
      claims.push({
        publishAt: again,
        claim: {
          ...claim,
          claim_id: `fin-${100001 + i}-b`,
          subject_ref: ` ${ticketId.toLowerCase()} `,
          occurred_at: again.toISOString(),
        },
      });
    }
    if (kind === 'retracted') {
      const retractAt = at(claimAt.getTime() + 20 * H);
      claims.push({
        publishAt: retractAt,
        claim: { claim_id: claim.claim_id, retracted: true, retracted_at: retractAt.toISOString() },
      });
    }
    if (kind === 'no_record') continue;

    const created = at(claimAt.getTime() - 2 * H);
    const solvedAt = at(claimAt.getTime() - 10 * 60_000);
    const csat = rand() < 0.3 ? '' : String(3 + Math.floor(rand() * 3));
    const exportDelay = kind === 'late_record' ? 48 * H : 0;
    const v = (status: string, solved: Date | null, updated: Date, score = csat): DemoVersion => ({
      ticketId,
      status,
      solvedAtLocal: solved ? localText(solved) : '',
      updatedAt: updated,
      csat: score,
      exportedAfter: new Date(updated.getTime() + exportDelay),
    });
    versions.push(v('open', null, created, ''));
    if (kind === 'pending') continue;
    versions.push(v('solved', solvedAt, solvedAt, kind === 'unhappy' ? '1' : csat));
    if (kind === 'reopened' || kind === 'reopened_resolved') {
      const reopenAt = at(solvedAt.getTime() + (20 + rand() * 30) * H);
      versions.push(v('open', solvedAt, reopenAt));
      if (kind === 'reopened_resolved') {
        const again = at(reopenAt.getTime() + (5 + rand() * 20) * H);
        versions.push(v('solved', again, again));
      }
    }
  }
  // Messy input, as it comes from other people's systems.
  const bad = (publishAt: Date, c: Record<string, unknown>) => claims.push({ publishAt, claim: c });
  bad(new Date(start), { claim_id: 'fin-bad-1', outcome_type: 'resolved_ticket', occurred_at: '2026-03-02T14:00:00Z' });
  bad(new Date(start), {
    claim_id: 'fin-bad-2',
    outcome_type: 'resolved_ticket',
    subject_ref: 'T-1001',
    occurred_at: '02/03/2026',
  });
  bad(new Date(start), {
    claim_id: 'fin-bad-3',
    outcome_type: 'qualified_lead',
    subject_ref: 'L-1',
    occurred_at: '2026-03-02T14:00:00Z',
  });
  const first = claims.find((c) => (c.claim as DemoClaim).claim_id === 'fin-100001')!.claim as DemoClaim;
  bad(nights[1], { ...first }); // redelivered unchanged: no-op
  bad(nights[1], { ...first, subject_ref: 'T-9999' }); // same id, other content: conflict
  return {
    nights,
    claims: claims.sort((a, b) => a.publishAt.getTime() - b.publishAt.getTime()),
    versions,
    malformedRecordRows: [
      { night: 0, line: 'T-5001,solved,yesterday,2026-03-02T20:00:00Z,4' },
      { night: 0, line: ',solved,2026-03-02 10:00,2026-03-02T20:00:00Z,4' },
      { night: 1, line: 'T-5002,solved,2026-03-02 10:00,2026-03-02T20:00:00Z,4,extra' },
      { night: 2, line: 'T-5003,solved,2026-03-02 10:00,2026-03-02T20:00:00Z,five' },
    ],
    kinds,
  };
}

export const DEMO_RECORD_HEADER = 'Ticket ID,Status,Solved at,Updated at,CSAT';

/** The customer's nightly export: rows that changed since the previous export. */
export function recordExportFor(ds: DemoDataset, night: number): string[] {
  const until = ds.nights[night].getTime();
  const since = night === 0 ? -Infinity : ds.nights[night - 1].getTime();
  const rows = ds.versions
    .filter((v) => v.exportedAfter.getTime() > since && v.exportedAfter.getTime() <= until)
    .map((v) => `${v.ticketId},${v.status},${v.solvedAtLocal},${v.updatedAt.toISOString()},${v.csat}`);
  const bad = ds.malformedRecordRows.filter((r) => r.night === night).map((r) => r.line);
  return [DEMO_RECORD_HEADER, ...rows, ...bad];
}
