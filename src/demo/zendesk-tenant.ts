import { ContractSchema, type Contract } from '../domain/contract';
import type { Pool } from '../db/pool';
import { applyContract } from '../db/contracts';
import { startZendeskEmulator, type ZendeskEmulatorHandle } from '../emulators/zendesk';
import { createPool } from '../db/pool';

/**
 * The demo's second tenant, globex: its evidence is pulled by each night from a (local) Zendesk,
 * and its claims from the AI side's own PostgreSQL (a database of its own on the local server).
 * Nothing is exported to a file. Each day a few tickets are solved in Zendesk and claimed in the AI
 * side's table; one is reopened within grace, one is deleted, and the rest are billed once their
 * grace has passed.
 */

export const GLOBEX = 'globex';
const EMAIL = 'agent@globex.example';
/** Local stand-ins, not secrets: the emulator's token and the AI side's database login. */
const TOKEN = 'zendesk-demo-token';
const PRICE = '1.25';
const GRACE_MS = 72 * 3_600_000;

export const GLOBEX_ENV_NAMES = {
  email: 'RECON_DEMO_ZENDESK_EMAIL',
  token: 'RECON_DEMO_ZENDESK_TOKEN',
  aiDb: 'RECON_DEMO_AI_DB_URL',
} as const;

type Fate = 'billed' | 'reopened' | 'deleted';
interface DemoTicket {
  id: number;
  solvedAt: Date;
  fate: Fate;
}

export class ZendeskTenantStory {
  readonly tickets: DemoTicket[] = [];
  private claimed = 0;

  private constructor(
    readonly zendesk: ZendeskEmulatorHandle,
    private readonly ai: Pool,
    readonly env: Record<string, string>,
    readonly contract: Contract,
  ) {}

  /** The Zendesk emulator, the AI side's database with its claims table, and globex's contract. */
  static async start(p: { pool: Pool; databaseUrl: string; firstNight: Date }): Promise<ZendeskTenantStory> {
    const zendesk = await startZendeskEmulator({ secret: TOKEN, email: EMAIL });
    await p.pool.query('drop database if exists ai_side');
    await p.pool.query('create database ai_side');
    const aiUrl = new URL(p.databaseUrl);
    aiUrl.pathname = '/ai_side';
    const ai = createPool(aiUrl.toString(), 2);
    // The AI side's table: update time set by the database, so a changed row moves forward.
    await ai.query(`create table outcome_claims (
      claim_id text primary key, outcome_type text not null, subject_ref text not null,
      occurred_at timestamptz not null, retracted boolean not null default false,
      updated_at timestamptz not null default clock_timestamp())`);
    const contract = ContractSchema.parse({
      tenant: GLOBEX,
      effectiveFrom: new Date(p.firstNight.getTime() - 30 * 86_400_000).toISOString(),
      timezone: 'Europe/Berlin',
      currency: 'EUR',
      recordSources: {
        helpdesk: {
          kind: 'zendesk',
          apiBase: zendesk.url,
          auth: { kind: 'api_token', emailEnv: GLOBEX_ENV_NAMES.email, tokenEnv: GLOBEX_ENV_NAMES.token },
          startTime: new Date(p.firstNight.getTime() - 7 * 86_400_000).toISOString(),
        },
      },
      claimSources: { 'ai-db': { kind: 'postgres', urlEnv: GLOBEX_ENV_NAMES.aiDb, relation: 'outcome_claims' } },
      outcomeTypes: {
        resolved_ticket: {
          recordSource: 'helpdesk',
          matchKey: { field: 'ticket_id' },
          success: { all: [{ in: ['status', ['solved', 'closed']] }, { exists: 'solved_at' }] },
          successTimeField: 'solved_at',
          graceWindow: 'PT72H',
          evidenceDeadline: 'P7D',
          unitPrice: PRICE,
        },
      },
    });
    await applyContract(p.pool, contract);
    const env = {
      [GLOBEX_ENV_NAMES.email]: EMAIL,
      [GLOBEX_ENV_NAMES.token]: TOKEN,
      [GLOBEX_ENV_NAMES.aiDb]: aiUrl.toString(),
    };
    return new ZendeskTenantStory(zendesk, ai, env, contract);
  }

  /** Zendesk's clock at `at`: tickets changed now carry that time, as they would have that day. */
  private async at<T>(at: Date, fn: () => Promise<T>): Promise<T> {
    this.zendesk.setClockOffset(at.getTime() - Date.now());
    return fn();
  }

  /**
   * The day before night `k`: four tickets solved in Zendesk and claimed on the AI side; on the
   * second day one of the previous day's is reopened (in grace), on the third one is deleted.
   */
  async dayBefore(k: number, night: Date): Promise<string[]> {
    const told: string[] = [];
    for (let i = 0; i < 4; i++) {
      const opened = new Date(night.getTime() - 20 * 3_600_000 + i * 3_600_000);
      const solved = new Date(opened.getTime() + 2 * 3_600_000);
      const t = await this.at(opened, () =>
        this.zendesk.createTicket({ subject: `Order ${k}-${i} late`, comment: { body: 'Where is my order?' } }),
      );
      await this.at(solved, () =>
        this.zendesk.updateTicket(t.id, { status: 'solved', comment: { body: 'Found it.' } }),
      );
      this.tickets.push({ id: t.id, solvedAt: solved, fate: 'billed' });
      await this.ai.query(
        `insert into outcome_claims (claim_id, outcome_type, subject_ref, occurred_at) values ($1, 'resolved_ticket', $2, $3)`,
        [`g-${++this.claimed}`, String(t.id), solved],
      );
    }
    const recent = this.tickets.filter((t) => t.fate === 'billed' && night.getTime() - t.solvedAt.getTime() < GRACE_MS);
    const later = new Date(night.getTime() - 30 * 60_000);
    if (k === 1 && recent[0]) {
      recent[0].fate = 'reopened';
      await this.at(later, () =>
        this.zendesk.updateTicket(recent[0].id, { status: 'open', comment: { body: 'Still missing.' } }),
      );
      told.push(`zendesk: ticket ${recent[0].id} reopened within its grace window`);
    }
    if (k === 2 && recent[1]) {
      recent[1].fate = 'deleted';
      await this.at(later, () => this.zendesk.deleteTicket(recent[1].id));
      told.push(`zendesk: ticket ${recent[1].id} deleted within its grace window`);
    }
    // The night pulls as of its own time: Zendesk serves what changed up to a minute before.
    this.zendesk.setClockOffset(night.getTime() + 2 * 60_000 - Date.now());
    return told;
  }

  /** Outcomes a night at `lastNight` has billed: solved, not reopened or deleted, grace over. */
  expectedBilled(lastNight: Date): number {
    return this.tickets.filter((t) => t.fate === 'billed' && lastNight.getTime() - t.solvedAt.getTime() >= GRACE_MS)
      .length;
  }

  /** The tickets reopened or deleted in grace: none of them may be billed. */
  voided(): string[] {
    return this.tickets.filter((t) => t.fate !== 'billed').map((t) => String(t.id));
  }

  async close(): Promise<void> {
    await this.ai.end().catch(() => undefined);
    await this.zendesk.close();
  }
}
