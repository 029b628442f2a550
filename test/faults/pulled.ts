/**
 * The fault suite's second tenant: nothing reaches it through a file. Its evidence is pulled by
 * each night from a Zendesk emulator of the run's own (the Incremental Ticket Export, a small
 * page size so that a night's pull takes several pages), its claims from the AI side's own
 * PostgreSQL (a database of its own on the run's server, read by keyset). A seeded story of
 * tickets over the same nights as the file tenant: solves, reopens in grace (some solved again),
 * deletions in grace, solved tickets nobody claimed, a claim whose ticket never exists. Tickets
 * carry the time they were changed at: the emulator's clock is set to that time for each change.
 */
import pg from 'pg';
import { ContractSchema } from '../../src/domain/contract';
import { startZendeskEmulator, type ZendeskEmulatorHandle } from '../../src/emulators/zendesk';
import type { Pool } from '../../src/db/pool';
import { NIGHTS, type PulledStory } from './data';

export const RECORD_SOURCE = 'helpdesk';
export const CLAIM_SOURCE = 'ai-db';
/** Tickets per export page: a night's pull is several pages. */
export const ZENDESK_PAGE_SIZE = 3;
const EMAIL = 'agent@faults.example';
/** A stand-in for the run's own emulator, never a real token. */
const TOKEN = 'zendesk-faults-token';
const ENV = {
  email: 'RECON_FAULTS_ZENDESK_EMAIL',
  token: 'RECON_FAULTS_ZENDESK_TOKEN',
  aiDb: 'RECON_FAULTS_AI_DB_URL',
} as const;

const MIN = 60_000;
const START = Date.parse('2026-10-01T00:00:00Z');

export interface PulledTenant {
  tenant: string;
  zendesk: ZendeskEmulatorHandle;
  /** Listeners to the emulator's request log (a fault watches for its own lines). */
  listeners: Set<(line: string) => void>;
  /** The AI side's database (name and URL) on the run's server. */
  aiDatabase: string;
  aiUrl: string;
  /** The worker's environment additions (credentials and the AI side's URL). */
  env: Record<string, string>;
  contract: ReturnType<typeof ContractSchema.parse>;
  /** Applies the story's changes up to night `k`, then sets Zendesk's clock to just after that night. */
  seedNight(k: number): Promise<void>;
  close(): Promise<void>;
}

/** The Zendesk emulator, the AI side's database with its claims table, and the tenant's contract. */
export async function startPulledTenant(p: {
  tenant: string;
  story: PulledStory;
  adminUrl: string;
  aiDatabase: string;
}): Promise<PulledTenant> {
  const listeners = new Set<(line: string) => void>();
  const zendesk = await startZendeskEmulator({
    secret: TOKEN,
    email: EMAIL,
    log: (line) => {
      for (const l of listeners) l(line);
    },
  });
  let ai: pg.Pool | null = null;
  try {
    const admin = new pg.Client({ connectionString: p.adminUrl });
    await admin.connect();
    try {
      await admin.query(`drop database if exists "${p.aiDatabase}" with (force)`);
      await admin.query(`create database "${p.aiDatabase}"`);
    } finally {
      await admin.end();
    }
    const url = new URL(p.adminUrl);
    url.pathname = `/${p.aiDatabase}`;
    const aiUrl = url.toString();
    const pool = new pg.Pool({ connectionString: aiUrl, max: 2 });
    pool.on('error', () => undefined);
    ai = pool;
    // The AI side's table: its update time set by the database, as the demo's is.
    await pool.query(`create table outcome_claims (
      claim_id text primary key, outcome_type text not null, subject_ref text not null,
      occurred_at timestamptz not null, retracted boolean not null default false,
      updated_at timestamptz not null default clock_timestamp())`);
    const contract = ContractSchema.parse({
      tenant: p.tenant,
      effectiveFrom: new Date(START - 30 * 86_400_000).toISOString(),
      timezone: 'America/New_York',
      currency: 'USD',
      recordSources: {
        [RECORD_SOURCE]: {
          kind: 'zendesk',
          apiBase: zendesk.url,
          auth: { kind: 'api_token', emailEnv: ENV.email, tokenEnv: ENV.token },
          startTime: new Date(START - 86_400_000).toISOString(),
          pageSize: ZENDESK_PAGE_SIZE,
        },
      },
      claimSources: {
        [CLAIM_SOURCE]: {
          kind: 'postgres',
          urlEnv: ENV.aiDb,
          relation: 'outcome_claims',
          pageSize: 4,
          pagesPerChunk: 2,
        },
      },
      outcomeTypes: {
        resolved_ticket: {
          recordSource: RECORD_SOURCE,
          matchKey: { field: 'ticket_id' },
          success: { all: [{ in: ['status', ['solved', 'closed']] }, { exists: 'solved_at' }] },
          successTimeField: 'solved_at',
          graceWindow: 'PT72H',
          evidenceDeadline: 'P7D',
          unitPrice: '1.25',
        },
      },
    });
    const env = { [ENV.email]: EMAIL, [ENV.token]: TOKEN, [ENV.aiDb]: aiUrl };
    let applied = 0;
    const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
    // Zendesk's clock at the change's time, set just before it: tickets carry their own times
    // (whole seconds). A change that took a second or more to reach the emulator would carry
    // another time and the ledger would differ from the reference's: said loudly.
    const at = async <T>(ms: number, fn: () => Promise<T>): Promise<T> => {
      zendesk.setClockOffset(ms - Date.now());
      return fn();
    };
    const expectTime = (what: string, got: string, ms: number) => {
      if (got !== iso(ms)) throw new Error(`seeding drifted: ${what} carries ${got}, not ${iso(ms)}`);
    };
    return {
      tenant: p.tenant,
      zendesk,
      listeners,
      aiDatabase: p.aiDatabase,
      aiUrl,
      env,
      contract,
      async seedNight(k) {
        const night = NIGHTS[k].getTime();
        const { events } = p.story;
        for (; applied < events.length && events[applied].at <= night; applied++) {
          const e = events[applied];
          if (e.kind === 'claim') {
            await pool.query(
              `insert into outcome_claims (claim_id, outcome_type, subject_ref, occurred_at) values ($1, 'resolved_ticket', $2, $3)`,
              [e.claimId, e.subject, new Date(e.at)],
            );
          } else if (e.kind === 'create') {
            const t = await at(e.at, () =>
              zendesk.createTicket({ subject: `Order ${e.ticket} late`, comment: { body: 'Where is my order?' } }),
            );
            if (t.id !== e.ticket) throw new Error(`Zendesk gave ticket ${t.id} where the story expects ${e.ticket}`);
            expectTime(`ticket ${t.id}`, t.updated_at, e.at);
          } else if (e.kind === 'delete') {
            await at(e.at, () => zendesk.deleteTicket(e.ticket));
          } else {
            const status = e.kind === 'solve' ? 'solved' : 'open';
            const t = await at(e.at, () =>
              zendesk.updateTicket(e.ticket, {
                status,
                comment: { body: e.kind === 'solve' ? 'Found it.' : 'Still missing.' },
              }),
            );
            expectTime(`ticket ${t.id} ${e.kind}`, t.updated_at, e.at);
          }
        }
        // The night pulls as of its own time: Zendesk serves what changed up to a minute before.
        zendesk.setClockOffset(night + 2 * MIN - Date.now());
      },
      async close() {
        await pool.end().catch(() => undefined);
        await zendesk.close();
      },
    };
  } catch (err) {
    await ai?.end().catch(() => undefined);
    await zendesk.close();
    throw err;
  }
}

/** What the tenant's pulls left behind: equal to the reference's when no page was skipped or doubled. */
export interface PullCounts {
  /** Record versions of the tenant. */
  versions: number;
  /** Imports that carried rows (an empty end-of-stream page asked again after a crash adds an empty one). */
  recordImports: number;
  recordRows: number;
  claimImports: number;
  claimRows: number;
  claims: number;
  rateLimitWaits: number;
  rateLimitWaitMs: number;
}

export async function pullCounts(pool: Pool, tenant: string): Promise<PullCounts> {
  const { rows } = await pool.query<Record<keyof PullCounts, string>>(
    `select
       (select count(*) from record_versions v join records r using (record_id) where r.tenant_id = $1) as versions,
       (select count(*) from imports where tenant_id = $1 and kind = 'records' and received > 0) as "recordImports",
       (select coalesce(sum(received), 0) from imports where tenant_id = $1 and kind = 'records') as "recordRows",
       (select count(*) from imports where tenant_id = $1 and kind = 'claims' and received > 0) as "claimImports",
       (select coalesce(sum(received), 0) from imports where tenant_id = $1 and kind = 'claims') as "claimRows",
       (select count(*) from claims where tenant_id = $1) as claims,
       (select coalesce(sum(rate_limit_waits), 0) from source_cursors where tenant_id = $1) as "rateLimitWaits",
       (select coalesce(sum(rate_limit_wait_ms), 0) from source_cursors where tenant_id = $1) as "rateLimitWaitMs"`,
    [tenant],
  );
  return Object.fromEntries(Object.entries(rows[0]).map(([k, v]) => [k, Number(v)])) as unknown as PullCounts;
}

/** The counts that must equal the reference's (the rate-limit waits are the fault's, not the ledger's). */
export function pullCountDifferences(reference: PullCounts, run: PullCounts): string[] {
  const keys = ['versions', 'recordImports', 'recordRows', 'claimImports', 'claimRows', 'claims'] as const;
  return keys.filter((k) => reference[k] !== run[k]).map((k) => `${k} ${run[k]} (reference ${reference[k]})`);
}
