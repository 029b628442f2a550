import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { seededRandom as prng } from '../src/demo/dataset';

/**
 * The benchmark's data set: one past month of AI claims (JSONL) and the customer's helpdesk export
 * (CSV, columns of examples/contract.acme.json), generated from a fixed seed so every run and every
 * machine reconciles the same bytes.
 */

/** October 2026: its end plus four days (the run's asOf) is past, so the run is allowed and grace (PT72H) is over for it. */
export const MONTH_START = Date.UTC(2026, 9, 1);
export const AS_OF = new Date(Date.UTC(2026, 10, 5));
export const SEED = 20261001;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export type Kind = 'success' | 'reopened' | 'duplicate' | 'retracted' | 'unmatched' | 'malformed' | 'not_achieved';

/** The mix; the last percent fails the success rule (CSAT 1), so "not achieved" is exercised too. */
const MIX: Array<[Kind, number]> = [
  ['success', 0.85],
  ['reopened', 0.05],
  ['duplicate', 0.03],
  ['retracted', 0.02],
  ['unmatched', 0.03],
  ['malformed', 0.01],
  ['not_achieved', 0.01],
];

export interface DataSet {
  claimsFile: string;
  recordsFile: string;
  claimLines: number;
  recordRows: number;
  kinds: Record<Kind, number>;
  /** What the generator itself expects to be billed: a third opinion beside the project and the floor. */
  expectedBilled: number;
}

/** Buffered writer that respects back-pressure, so a million rows never sit in memory at once. */
class Lines {
  private buf: string[] = [];
  private size = 0;
  count = 0;
  constructor(
    private readonly out: WriteStream,
    private readonly eol: string,
  ) {}
  async add(line: string): Promise<void> {
    this.buf.push(line);
    this.size += line.length;
    this.count++;
    if (this.size > 256 * 1024) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.buf.length === 0) return;
    const chunk = this.buf.join(this.eol) + this.eol;
    this.buf = [];
    this.size = 0;
    if (!this.out.write(chunk)) await once(this.out, 'drain');
  }
  async close(): Promise<void> {
    await this.flush();
    this.out.end();
    await once(this.out, 'finish');
  }
}

const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
const pad = (i: number) => String(i).padStart(8, '0');
const csv = (cells: string[]) => cells.join(',');

export async function generate(dir: string, claims: number, seed = SEED): Promise<DataSet> {
  const rand = prng(seed);
  const between = (lo: number, hi: number) => lo + rand() * (hi - lo);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];

  const claimsFile = path.join(dir, 'claims.jsonl');
  const recordsFile = path.join(dir, 'helpdesk.csv');
  const cl = new Lines(createWriteStream(claimsFile), '\n');
  // Helpdesk exports come with CRLF line ends.
  const rec = new Lines(createWriteStream(recordsFile), '\r\n');
  await rec.add(csv(['Ticket ID', 'Status', 'Solved at', 'Updated at', 'CSAT']));

  const kinds = Object.fromEntries(MIX.map(([k]) => [k, 0])) as Record<Kind, number>;
  const successTickets: number[] = [];
  // Retractions arrive after the claims they retract, so they go at the end of the file.
  const retractions: string[] = [];
  let expectedBilled = 0;

  const claimLine = (id: number, subject: string, at: number) =>
    JSON.stringify({
      claim_id: `c-${pad(id)}`,
      outcome_type: 'resolved_ticket',
      subject_ref: subject,
      occurred_at: iso(at),
      attributes: { agent: 'support-ai-v3', confidence: Math.round(between(0.6, 1) * 100) / 100 },
    });

  /** Writes a ticket's versions (oldest first); returns its solve time. */
  const ticket = async (i: number, kind: Kind): Promise<{ solvedAt: number; billed: boolean }> => {
    const id = `T-${pad(i)}`;
    const rows: string[][] = [];
    // Created early enough that the longest story (solve, reopen, solve again) still ends in the month.
    const created = MONTH_START + between(0, 25 * DAY);
    rows.push([id, 'new', '', iso(created), '']);
    if (rand() < 0.5) rows.push([id, 'open', '', iso(created + between(1 * HOUR, 12 * HOUR)), '']);
    const solved = created + between(13 * HOUR, 48 * HOUR);
    rows.push([id, 'solved', iso(solved), iso(solved), '']);
    let billed = kind === 'success';
    if (kind === 'reopened') {
      const reopened = solved + between(2 * HOUR, 60 * HOUR); // inside the 72-hour grace
      rows.push([id, 'open', rand() < 0.5 ? iso(solved) : '', iso(reopened), '']);
      if (rand() < 0.4) {
        // Solved again with the old "Solved at" kept: grace runs from when it passed again.
        const again = reopened + between(1 * HOUR, 24 * HOUR);
        rows.push([id, 'solved', iso(solved), iso(again), '']);
        billed = Math.floor(again / 1000) * 1000 + 72 * HOUR <= AS_OF.getTime();
      }
    } else if (kind === 'not_achieved') {
      rows.push([id, 'closed', iso(solved), iso(solved + between(1 * HOUR, 40 * HOUR)), '1']);
    } else if (rand() < 0.4) {
      rows.push([id, 'closed', iso(solved), iso(solved + between(1 * HOUR, 40 * HOUR)), String(pick([2, 3, 4, 5]))]);
    }
    if (kind === 'retracted') billed = false;
    for (const r of rows) await rec.add(csv(r));
    // Re-exported rows (identical) and rows the customer's system mangled, about 1% each.
    if (rand() < 0.02) await rec.add(csv(rows[rows.length - 1]));
    if (rand() < 0.02) {
      const bad = pick([
        [id, 'solved', '2026-02-30T10:00:00Z', iso(solved + HOUR), ''],
        [id, 'closed', iso(solved), iso(solved + HOUR), 'five'],
        ['', 'solved', iso(solved), iso(solved + HOUR), ''],
        [id, 'solved', iso(solved), 'yesterday', ''],
      ]);
      await rec.add(csv(bad));
    }
    return { solvedAt: solved, billed };
  };

  for (let i = 1; i <= claims; i++) {
    const r = rand();
    let acc = 0;
    let kind: Kind = MIX[MIX.length - 1][0];
    for (const [k, p] of MIX) {
      acc += p;
      if (r < acc) {
        kind = k;
        break;
      }
    }
    if (kind === 'duplicate' && successTickets.length === 0) kind = 'success';
    kinds[kind]++;
    switch (kind) {
      case 'success':
      case 'reopened':
      case 'not_achieved':
      case 'retracted': {
        const t = await ticket(i, kind);
        if (t.billed) expectedBilled++;
        if (kind === 'success') successTickets.push(i);
        const at = t.solvedAt - between(0, 30 * 60_000);
        await cl.add(claimLine(i, `T-${pad(i)}`, at));
        if (kind === 'retracted')
          retractions.push(
            JSON.stringify({
              claim_id: `c-${pad(i)}`,
              retracted: true,
              retracted_at: iso(at + between(HOUR, 48 * HOUR)),
            }),
          );
        break;
      }
      case 'duplicate': {
        // A second claim for a ticket already claimed, its reference in another case or padded.
        const target = `T-${pad(pick(successTickets))}`;
        const subject = pick([target, target.toLowerCase(), ` ${target} `]);
        await cl.add(claimLine(i, subject, MONTH_START + between(0, 28 * DAY)));
        break;
      }
      case 'unmatched':
        await cl.add(claimLine(i, `T-X${pad(i)}`, MONTH_START + between(0, 28 * DAY)));
        break;
      case 'malformed': {
        const good = claimLine(i, `T-${pad(i)}`, MONTH_START + between(0, 28 * DAY));
        const bad = pick([
          good.slice(0, Math.floor(good.length / 2)),
          good.replace(/"subject_ref":"[^"]*",/, ''),
          good.replace(/"occurred_at":"[^"]*"/, '"occurred_at":"2026-02-30T10:00:00Z"'),
          good.replace('"resolved_ticket"', '"resolved_tickets"'),
        ]);
        await cl.add(bad);
        break;
      }
    }
  }
  for (const line of retractions) await cl.add(line);
  await cl.close();
  await rec.close();
  return { claimsFile, recordsFile, claimLines: cl.count, recordRows: rec.count - 1, kinds, expectedBilled };
}
