import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Client } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { createPool, type Pool } from '../../src/db/pool';
import { migrate } from '../../src/db/migrate';
import { createLogin, databaseUrlAs, dropLogin, tenantScope, type GroupRole } from '../../src/db/roles';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { importDisputesFile } from '../../src/disputes/import';
import { showDispute } from '../../src/disputes/views';
import { writeExport, ledgerTotal } from '../../src/export/export';
import { explainOutcome, findOutcomeId } from '../../src/reconcile/explain';
import { buildStatement } from '../../src/reconcile/statement';
import { listAlerts } from '../../src/reconcile/alerts';
import { upsertIndexPoints } from '../../src/reconcile/price-index';
import { runReconciliation } from '../../src/temporal/run-client';
import { openDisputeViaTemporal, resolveDisputeViaTemporal } from '../../src/temporal/dispute-client';
import { connectClient, connectWorker } from '../../src/temporal/connection';
import { createWorker } from '../../src/temporal/worker';
import { installRuntime } from '../../src/temporal/runtime';
import { disputeWorkflowId } from '../../workflows/dispute-messages';
import { applyExample, uniqueTenant, writeLines } from './harness';
import { startWebhookReceiver, type WebhookReceiverHandle } from '../../src/emulators/webhook-receiver';

const HOOK_SECRET = 'whsec_' + Buffer.from('the roles test webhook secret, 32+ bytes').toString('base64');
import { recon as runRecon } from '../support/recon-cli';
import { HELPDESK_HEADER, HOUR, DAY } from '../support/fixtures';
import { textSink } from '../support/sink';

/**
 * The tenants here are placed in a cell whose URL is read from ROLES_CELL_URL (see the finance
 * test's fixture): it names the same database, under the same login, so routing keeps the role.
 */
const recon = (args: string[], databaseUrl: string) =>
  runRecon(args, { DATABASE_URL: databaseUrl, ROLES_CELL_URL: databaseUrl });

const NOW = Date.now();
const t = (offsetMs: number) => new Date(Math.floor((NOW + offsetMs) / 60_000) * 60_000);

/**
 * The tenant a row belongs to, per table, as SQL over alias `t`. Every table of the schema must
 * be here (the guard test checks it), so a new table cannot escape the isolation test.
 */
const TENANT_OF: Record<string, string> = {
  tenants: 't.tenant_id',
  contracts: 't.tenant_id',
  imports: 't.tenant_id',
  quarantine: 't.tenant_id',
  outcomes: 't.tenant_id',
  claims: 't.tenant_id',
  records: 't.tenant_id',
  runs: 't.tenant_id',
  claim_cursors: 't.tenant_id',
  ledger_entries: 't.tenant_id',
  disputes: 't.tenant_id',
  period_closes: 't.tenant_id',
  alerts: 't.tenant_id',
  price_index: 't.tenant_id',
  record_versions: '(select p.tenant_id from records p where p.record_id = t.record_id)',
  outcome_events: '(select p.tenant_id from outcomes p where p.outcome_id = t.outcome_id)',
  dispute_events: '(select p.tenant_id from disputes p where p.dispute_id = t.dispute_id)',
  tenant_access: 't.tenant_id',
  // Added by migration 004 on another branch (kept by a trigger on ledger inserts).
  period_usage: 't.tenant_id',
  // Migrations 011 and 012 of branch money: period close/reopen history, one run at a time per tenant.
  period_events: 't.tenant_id',
  run_leases: 't.tenant_id',
  // Migration 015: the billing sinks' outbox.
  sink_batches: 't.tenant_id',
  sink_deliveries: 't.tenant_id',
  // Migration 016: cursors of the sources a night pulls itself.
  source_cursors: 't.tenant_id',
  // Migration 017: which cell each tenant lives in.
  cell_tenants: 't.tenant_id',
};
/** Tables without tenant data: only the owner writes them (cells: the cell directory's servers). */
const NO_TENANT_DATA = ['schema_migrations', 'cells'];

/** The recon command, connected as whoever DATABASE_URL names. */

interface Login {
  login: string;
  password: string;
  pool: Pool;
}

/** Postgres error codes: insufficient_privilege (also raised for a row-level security violation), raise_exception. */
const DENIED = { code: '42501' };

describe('database roles and tenant isolation, connecting as each role', () => {
  const suffix = randomBytes(4).toString('hex');
  const A = uniqueTenant('roles-a');
  const B = uniqueTenant('roles-b');
  let owner: Pool;
  const logins: Login[] = [];
  let worker: Login;
  let workerA: Login;
  let supportA: Login;
  let financeA: Login;
  let supportB: Login;
  let client: Client;
  let connection: NativeConnection;
  let receiver: WebhookReceiverHandle | undefined;
  let temporalWorker: Worker;
  let running: Promise<void>;
  const taskQueue = `it-roles-${randomUUID()}`;
  let dir: string;

  async function login(name: string, group: GroupRole, tenants: 'all' | string[]): Promise<Login> {
    const l = { login: `it_${name}_${suffix}`, password: randomBytes(18).toString('base64url') };
    await createLogin(owner, { ...l, group, tenants });
    const made = { ...l, pool: createPool(databaseUrlAs(inject('databaseUrl'), l.login, l.password), 3) };
    logins.push(made);
    return made;
  }

  async function seed(pool: Pool, tenant: string, prefix: string) {
    const tickets = [`${prefix}-1`, `${prefix}-2`, `${prefix}-3`];
    const claims = await writeLines(dir, `${tenant}-claims.jsonl`, [
      ...tickets.map((id) =>
        JSON.stringify({
          claim_id: `${id}-c`,
          outcome_type: 'resolved_ticket',
          subject_ref: id,
          occurred_at: t(-5 * DAY).toISOString(),
        }),
      ),
      '{"claim_id": "broken", ',
    ]);
    expect(await importClaimsFile(pool, { tenant, file: claims })).toMatchObject({ accepted: 3, quarantined: 1 });
    const records = await writeLines(dir, `${tenant}-tickets.csv`, [
      HELPDESK_HEADER,
      ...tickets.map((id) => `${id},solved,${t(-5 * DAY + HOUR).toISOString()},${t(-5 * DAY + HOUR).toISOString()},5`),
    ]);
    expect(await importRecordsFile(pool, { tenant, source: 'helpdesk', file: records })).toMatchObject({ accepted: 3 });
  }

  beforeAll(async () => {
    installRuntime('WARN');
    dir = await mkdtemp(path.join(os.tmpdir(), 'recon-roles-'));
    owner = createPool(inject('databaseUrl'));
    // Contracts are the owner's to apply: they set prices and create tenants.
    // Both tenants deliver to a webhook: the outbox's rows are written and sent as the worker login.
    receiver = await startWebhookReceiver({ secret: HOOK_SECRET });
    const sinks = { books: { kind: 'webhook', url: receiver.url, secretEnv: 'RECON_ROLES_HOOK_SECRET' } } as const;
    await applyExample(owner, A, { sinks } as never);
    await applyExample(owner, B, { sinks } as never);
    // The pulled sources' cursors: a row of each tenant, as a night's pull would leave it.
    for (const tenant of [A, B])
      await owner.query(
        `insert into source_cursors (tenant_id, source, kind, cursor, pages) values ($1, 'crm', 'hubspot', '{}', 1)`,
        [tenant],
      );
    worker = await login('worker', 'recon_worker', 'all');
    workerA = await login('worker_a', 'recon_worker', [A]);
    supportA = await login('support_a', 'recon_support', [A]);
    financeA = await login('finance_a', 'recon_finance', [A]);
    supportB = await login('support_b', 'recon_support', [B]);
    client = await connectClient(inject('temporalAddress'), 'default');
    connection = await connectWorker(inject('temporalAddress'));
    // The production shape: a worker whose every activity connects as the recon_worker login.
    temporalWorker = await createWorker({
      connection,
      namespace: 'default',
      taskQueue,
      deps: { pool: worker.pool, sinkEnv: { RECON_ROLES_HOOK_SECRET: HOOK_SECRET } },
      bundle: { codePath: inject('workflowBundlePath') },
    });
    running = temporalWorker.run();
  });

  afterAll(async () => {
    temporalWorker?.shutdown();
    await running;
    await connection?.close();
    await client?.connection.close();
    for (const l of logins) {
      await l.pool.end();
      await dropLogin(owner, l.login);
    }
    // The database is shared with the other test files: a listed cell would route their tenants
    // and make ids ambiguous. Placements are fixed by a trigger, which replica mode skips.
    await owner?.query(`begin;
      set local session_replication_role = replica;
      delete from cell_tenants where cell = 'roles-cell';
      delete from cells where name = 'roles-cell';
      commit`);
    await owner?.end();
    await receiver?.close();
  });

  it('the worker login runs real nights through Temporal, and cannot update, delete or truncate the ledger', async () => {
    await seed(worker.pool, A, 'A');
    await seed(worker.pool, B, 'B');
    for (const tenant of [A, B]) {
      const night = await runReconciliation(client, { tenant, asOf: t(-DAY), taskQueue });
      expect(night.ledger).toMatchObject({ charges: 3, newCharges: 3, amountMinor: 297 });
      // A rerun as the same login posts nothing new: the unique keys hold for it too.
      expect((await runReconciliation(client, { tenant, asOf: t(-DAY), taskQueue })).ledger).toMatchObject({
        charges: 3,
        newCharges: 0,
      });
      expect(
        await upsertIndexPoints(worker.pool, tenant, [
          { series: 'gpu-cost', effectiveFrom: t(-30 * DAY), multiplier: '1.05' },
        ]),
      ).toBe(1);
    }
    const { rows } = await owner.query(
      'select tenant_id, count(*)::int as n from ledger_entries where tenant_id = any($1) group by tenant_id order by tenant_id',
      [[A, B]],
    );
    expect(rows).toEqual([
      { tenant_id: A, n: 3 },
      { tenant_id: B, n: 3 },
    ]);

    // Refused by the grants, before the trigger (the second wall) is even reached.
    await expect(
      worker.pool.query('update ledger_entries set amount_minor = 0 where tenant_id = $1', [A]),
    ).rejects.toMatchObject({ ...DENIED, message: 'permission denied for table ledger_entries' });
    await expect(worker.pool.query('delete from ledger_entries where tenant_id = $1', [A])).rejects.toMatchObject(
      DENIED,
    );
    await expect(worker.pool.query('truncate ledger_entries')).rejects.toMatchObject(DENIED);
    // The second wall still stands for the owner.
    await expect(owner.query('update ledger_entries set amount_minor = 0 where tenant_id = $1', [A])).rejects.toThrow(
      /append-only/,
    );
    // The run's ANALYZE of the nightly tables takes effect for the worker (MAINTAIN, PostgreSQL 17+).
    const {
      rows: [maintain],
    } = await owner.query(
      `select bool_and(has_table_privilege('recon_worker', t, 'MAINTAIN')) as ok from unnest(array['claims', 'outcomes', 'records', 'record_versions']) t`,
    );
    expect(maintain.ok).toBe(true);
  });

  it('support reads an outcome story and resolves a dispute through the workflow, but writes no ledger and sees no other tenant', async () => {
    const a1 = await findOutcomeId(supportA.pool, { tenant: A, subject: 'A-1' });
    const story = await explainOutcome(supportA.pool, a1);
    expect(story.outcome).toMatchObject({ tenant: A, state: 'billed' });
    expect(story.claims).toHaveLength(1);
    expect(story.record?.versions).toHaveLength(1);
    expect(story.ledger).toMatchObject([{ kind: 'charge', amountMinor: 99 }]);

    // Support decides; the dispute workflow's activities (connected as the worker) write it down.
    const opened = await openDisputeViaTemporal(client, {
      tenant: A,
      outcomeId: a1,
      actor: 'sam',
      reason: 'customer says A-1 is still open',
      taskQueue,
    });
    expect(opened.status).toBe('open');
    const resolved = await resolveDisputeViaTemporal(client, {
      workflowId: disputeWorkflowId(A, a1),
      decision: 'uphold',
      actor: 'lee',
      note: 'ticket reopened by the customer',
      taskQueue,
    });
    expect(resolved.resolution).toMatchObject({ effect: 'credit_charge' });
    const detail = await showDispute(supportA.pool, resolved.disputeId!);
    expect(detail).toMatchObject({ tenant: A, status: 'upheld', resolvedBy: 'lee' });
    expect(detail.events.map((e) => e.kind)).toEqual(['opened', 'resolved']);
    expect((await explainOutcome(supportA.pool, a1)).ledger.map((l) => [l.kind, l.amountMinor])).toEqual([
      ['charge', 99],
      ['credit', -99],
    ]);

    // Customer disputes in bulk, imported by support: the unknown ticket is quarantined.
    const csv = await writeLines(dir, 'customer-disputes.csv', [
      'subject,reason,actor',
      'A-2,not resolved,customer',
      'A-9,no such ticket,customer',
    ]);
    const bulk = await importDisputesFile(supportA.pool, client, { tenant: A, file: csv, taskQueue });
    expect(bulk).toMatchObject({ received: 2, accepted: 1, quarantined: 1 });
    expect(bulk.problems).toMatchObject([{ code: 'outcome_not_found' }]);

    // What support cannot do: write the ledger, edit outcomes or disputes behind the workflow's back.
    await expect(
      supportA.pool.query(
        `insert into ledger_entries (tenant_id, idempotency_key, kind, period, currency, unit_price, amount_minor, contract_version, as_of, evidence)
      values ($1, $2, 'base_fee', '2026-01', 'USD', '1', 100, 1, now(), '{}')`,
        [A, `forged:${randomUUID()}`],
      ),
    ).rejects.toMatchObject(DENIED);
    await expect(
      supportA.pool.query('update ledger_entries set reason = $2 where tenant_id = $1', [A, 'x']),
    ).rejects.toMatchObject(DENIED);
    await expect(
      supportA.pool.query(`update outcomes set state = 'rejected' where tenant_id = $1`, [A]),
    ).rejects.toMatchObject(DENIED);
    await expect(
      supportA.pool.query(`update disputes set status = 'rejected' where tenant_id = $1`, [A]),
    ).rejects.toMatchObject(DENIED);
    // Its import rights cover customer disputes only, and only of its tenant.
    await expect(
      supportA.pool.query(
        `insert into imports (tenant_id, kind, source, origin, content_sha256) values ($1, 'claims', 'x', 'x', $2)`,
        [A, randomUUID()],
      ),
    ).rejects.toMatchObject({ ...DENIED, message: expect.stringMatching(/row-level security/) });
    await expect(
      supportA.pool.query(
        `insert into imports (tenant_id, kind, source, origin, content_sha256) values ($1, 'disputes', 'x', 'x', $2)`,
        [B, randomUUID()],
      ),
    ).rejects.toMatchObject({ ...DENIED, message: expect.stringMatching(/row-level security/) });

    // Tenant B does not exist for support A, whichever way it asks.
    await expect(findOutcomeId(supportA.pool, { tenant: B, subject: 'B-1' })).rejects.toMatchObject({
      code: 'unknown_tenant',
    });
    const b1 = await findOutcomeId(owner, { tenant: B, subject: 'B-1' });
    await expect(explainOutcome(supportA.pool, b1)).rejects.toMatchObject({ code: 'outcome_not_found' });
    const openedB = await openDisputeViaTemporal(client, {
      tenant: B,
      outcomeId: b1,
      actor: 'kim',
      reason: 'a dispute of tenant B',
      taskQueue,
    });
    await expect(showDispute(supportA.pool, openedB.disputeId!)).rejects.toMatchObject({ code: 'dispute_not_found' });
    expect(await showDispute(owner, openedB.disputeId!)).toMatchObject({ tenant: B, status: 'open' });
  });

  it('finance reads the ledger, export, statement and alerts of its tenant only, and writes nothing', async () => {
    for (const tenant of [A, B]) {
      await owner.query(
        `insert into alerts (tenant_id, outcome_type, period, threshold, basis, usage_minor, limit_minor, crossed_at) values ($1, 'resolved_ticket', '2026-01', 0.5, 'cap', 50, 100, now())`,
        [tenant],
      );
      await owner.query(`insert into period_closes (tenant_id, period, closed_by) values ($1, '2025-12', 'owner')`, [
        tenant,
      ]);
      await owner.query(
        `insert into period_events (tenant_id, period, action, actor) values ($1, '2025-12', 'close', 'owner')`,
        [tenant],
      );
      await owner.query(`insert into claim_cursors (tenant_id, source, cursor) values ($1, 'api', 'c-1')`, [tenant]);
      // The cell directory's placements are tenant rows like any other (migration 017).
      await owner.query(
        `insert into cells (name, database_url_env, task_queue) values ('roles-cell', 'ROLES_CELL_URL', 'roles-cell-queue')
           on conflict do nothing`,
      );
      await owner.query(`insert into cell_tenants (tenant_id, cell) values ($1, 'roles-cell')`, [tenant]);
    }
    const { rows: periods } = await owner.query<{ period: string }>(
      'select distinct period from ledger_entries where tenant_id = $1 order by period',
      [A],
    );
    expect(periods.length).toBeGreaterThan(0);
    let bLines = 0;
    for (const { period } of periods) {
      const ledger = await ledgerTotal(owner, A, period);
      const csv = textSink();
      const totals = await writeExport(financeA.pool, { tenant: A, period, format: 'csv', out: csv.out });
      expect({ lines: totals.lines, amountMinor: totals.amountMinor }).toEqual(ledger);
      expect(csv.text().trimEnd().split('\r\n')).toHaveLength(ledger.lines + 1);
      expect((await buildStatement(financeA.pool, { tenant: A, period })).totalMinor).toBe(ledger.amountMinor);
      // Finance A exports none of tenant B's lines, which share these periods.
      bLines += (await ledgerTotal(owner, B, period)).lines;
      expect(await writeExport(financeA.pool, { tenant: B, period, format: 'csv', out: textSink().out })).toMatchObject(
        {
          lines: 0,
          amountMinor: 0,
        },
      );
      expect(await ledgerTotal(financeA.pool, B, period)).toEqual({ lines: 0, amountMinor: 0 });
      await expect(buildStatement(financeA.pool, { tenant: B, period })).rejects.toMatchObject({
        code: 'unknown_tenant',
      });
    }
    expect(bLines).toBeGreaterThan(0);
    expect(await listAlerts(financeA.pool, { tenant: A })).toHaveLength(1);
    expect(await listAlerts(financeA.pool, { tenant: B })).toEqual([]);

    const writes = [
      [`insert into period_closes (tenant_id, period, closed_by) values ($1, '2026-01', 'finance')`, [A]],
      [`update ledger_entries set reason = 'x' where tenant_id = $1`, [A]],
      [`delete from ledger_entries where tenant_id = $1`, [A]],
      [`update alerts set delivered_at = now() where tenant_id = $1`, [A]],
      [
        `insert into contracts (tenant_id, version, effective_from, body, body_sha256) values ($1, 99, now(), '{}', $2)`,
        [A, randomUUID()],
      ],
      [`insert into tenant_access (login, tenant_id) values (session_user::text::regrole, $1)`, [B]],
    ] as const;
    for (const [sql, params] of writes)
      await expect(financeA.pool.query(sql, [...params])).rejects.toMatchObject(DENIED);
    // Read-only means the ledger and what the export and statement read: not outcomes or claims.
    await expect(financeA.pool.query('select count(*) from outcomes')).rejects.toMatchObject(DENIED);
    await expect(financeA.pool.query('select count(*) from claims')).rejects.toMatchObject(DENIED);
  });

  it('recon connects as a role through DATABASE_URL: finance gets its statement and may not import', async () => {
    const url = databaseUrlAs(inject('databaseUrl'), financeA.login, financeA.password);
    const {
      rows: [{ period }],
    } = await owner.query<{ period: string }>('select min(period) as period from ledger_entries where tenant_id = $1', [
      A,
    ]);
    const statement = await recon(['statement', '--tenant', A, '--period', period, '--json'], url);
    expect(statement.stderr).toBe('');
    expect(JSON.parse(statement.stdout)).toMatchObject({
      tenant: A,
      period,
      total_minor: (await ledgerTotal(owner, A, period)).amountMinor,
    });
    const claims = await writeLines(dir, 'finance-claims.jsonl', [
      JSON.stringify({
        claim_id: 'f-1',
        outcome_type: 'resolved_ticket',
        subject_ref: 'A-7',
        occurred_at: t(-DAY).toISOString(),
      }),
    ]);
    const refused = await recon(['claims', 'import', '--tenant', A, claims], url);
    expect(refused.code).not.toBe(0);
    // The SQLSTATE stays out of the line; the table it was refused on is named.
    expect(refused.stderr).toMatch(/^recon: permission_denied: this database login has no permission on imports; /);
  });

  it('a connection scoped to one tenant sees exactly its own rows in every table, none of the other', async () => {
    const { rows: present } = await owner.query<{ name: string }>(
      `select relname as name from pg_class where relnamespace = current_schema()::regnamespace and relkind in ('r', 'p')`,
    );
    const tables = Object.entries(TENANT_OF).filter(([table]) => present.some((p) => p.name === table));
    expect(tables.length).toBeGreaterThanOrEqual(18);
    for (const [table, tenantOf] of tables) {
      // Both tenants have rows in every table, so an empty answer proves nothing by accident.
      const {
        rows: [n],
      } = await owner.query(
        `select count(*) filter (where ${tenantOf} = $1)::int as a, count(*) filter (where ${tenantOf} = $2)::int as b from ${table} t`,
        [A, B],
      );
      expect(n.a > 0 && n.b > 0, `${table} has rows of both tenants: ${JSON.stringify(n)}`).toBe(true);

      for (const [l, tenant] of [
        [workerA, A],
        [supportA, A],
        [financeA, A],
        [supportB, B],
      ] as const) {
        // tenant_access shows a login its own grants only.
        const mine =
          table === 'tenant_access' ? 'and t.login::oid = (select oid from pg_roles where rolname = $2)' : '';
        const { rows: expected } = await owner.query(
          `select t.ctid::text as id from ${table} t where ${tenantOf} = $1 ${mine} order by 1`,
          table === 'tenant_access' ? [tenant, l.login] : [tenant],
        );
        let seen: string[];
        try {
          seen = (await l.pool.query(`select t.ctid::text as id from ${table} t order by 1`)).rows.map((r) => r.id);
        } catch (err) {
          expect(err, `${l.login} on ${table}`).toMatchObject({
            ...DENIED,
            message: `permission denied for table ${table}`,
          });
          continue;
        }
        expect(seen, `${l.login} reads ${table}`).toEqual(expected.map((r) => r.id));
        expect(seen.length, `${l.login} reads its own rows of ${table}`).toBeGreaterThan(0);
      }
    }
  });

  it("a connection scoped to tenant A cannot write tenant B's rows", async () => {
    const {
      rows: [b],
    } = await owner.query(
      `select o.outcome_id, r.record_id, i.import_id from outcomes o, records r, imports i
        where o.tenant_id = $1 and not o.on_hold and r.tenant_id = $1 and i.tenant_id = $1 limit 1`,
      [B],
    );
    const rls = { ...DENIED, message: expect.stringMatching(/row-level security/) };
    await expect(
      workerA.pool.query(
        `insert into claims (tenant_id, claim_id, outcome_type, subject_ref, subject_key, occurred_at, content_sha256, import_id)
      values ($1, 'forged', 'resolved_ticket', 'B-9', 'b-9', now(), 'x', $2)`,
        [B, b.import_id],
      ),
    ).rejects.toMatchObject(rls);
    await expect(
      workerA.pool.query(`insert into outcome_events (outcome_id, kind) values ($1, 'forged')`, [b.outcome_id]),
    ).rejects.toMatchObject(rls);
    await expect(
      workerA.pool.query(
        `insert into record_versions (record_id, effective_at, match_key, data, row_sha256, import_id, line)
      values ($1, now(), 'b-9', '{}', 'x', $2, 1)`,
        [b.record_id, b.import_id],
      ),
    ).rejects.toMatchObject(rls);
    await expect(
      workerA.pool.query(
        `insert into ledger_entries (tenant_id, idempotency_key, kind, period, currency, unit_price, amount_minor, contract_version, as_of, evidence)
      values ($1, $2, 'base_fee', '2026-01', 'USD', '1', 100, 1, now(), '{}')`,
        [B, `forged:${randomUUID()}`],
      ),
    ).rejects.toMatchObject(rls);
    // Moving its own row to tenant B is refused too (the check applies to the new row).
    await expect(
      workerA.pool.query(`update outcomes set tenant_id = $2 where tenant_id = $1`, [A, B]),
    ).rejects.toMatchObject(rls);
    // B's rows are simply not there to update.
    expect(
      (await workerA.pool.query(`update outcomes set on_hold = true where outcome_id = $1`, [b.outcome_id])).rowCount,
    ).toBe(0);
    expect(
      (await owner.query('select on_hold from outcomes where outcome_id = $1', [b.outcome_id])).rows[0].on_hold,
    ).toBe(false);
  });

  it('a login cannot widen its own scope from inside its session', async () => {
    expect(await tenantScope(supportA.pool)).toEqual({ allTenants: false, tenants: [A] });
    expect(await tenantScope(worker.pool)).toEqual({ allTenants: true, tenants: [] });
    const db = await supportA.pool.connect();
    try {
      const visible = async () =>
        (
          await db.query<{ tenant_id: string }>(
            'select tenant_id from outcomes where tenant_id = any($1) group by 1 order by 1',
            [[A, B]],
          )
        ).rows.map((r) => r.tenant_id);
      expect(await visible()).toEqual([A]);
      // A temporary table named like the grants table: the scope functions never look in pg_temp.
      await db.query('create temp table tenant_access (login regrole, tenant_id text)');
      await db.query(
        'insert into pg_temp.tenant_access values (session_user::text::regrole, null), (session_user::text::regrole, $1)',
        [B],
      );
      expect(await visible()).toEqual([A]);
      // SET ROLE to the group changes current_user, not the login the scope follows.
      await db.query('set role recon_support');
      expect(await visible()).toEqual([A]);
      await db.query('reset role');
      await expect(
        db.query('insert into public.tenant_access (login, tenant_id) values (session_user::text::regrole, $1)', [B]),
      ).rejects.toMatchObject(DENIED);
      await expect(db.query('alter table outcomes disable row level security')).rejects.toMatchObject(DENIED);
      await expect(db.query('set role recon_worker')).rejects.toMatchObject(DENIED);
      // Turning row security off makes reading a protected table an error, not a bypass.
      await db.query('set row_security = off');
      await expect(db.query('select count(*) from outcomes')).rejects.toMatchObject({
        ...DENIED,
        message: expect.stringMatching(/row-level security/),
      });
    } finally {
      db.release(true);
    }
  });

  it('guard: every table of the schema is under row level security with a policy, and no role may delete', async () => {
    const { rows: tables } = await owner.query<{ name: string; rls: boolean; policies: number }>(
      `select c.relname as name, c.relrowsecurity as rls, (select count(*)::int from pg_policy p where p.polrelid = c.oid) as policies
         from pg_class c where c.relnamespace = current_schema()::regnamespace and c.relkind in ('r', 'p') order by 1`,
    );
    const guarded = tables.filter((x) => !NO_TENANT_DATA.includes(x.name));
    for (const x of guarded)
      expect(
        x,
        `${x.name}: enable row level security and add a tenant policy (migrations/006_roles.sql)`,
      ).toMatchObject({ rls: true, policies: expect.any(Number) });
    expect(guarded.filter((x) => x.policies === 0).map((x) => x.name)).toEqual([]);
    // Each table is also in this test's TENANT_OF, so the isolation test above reads it.
    expect(guarded.map((x) => x.name).filter((name) => !(name in TENANT_OF))).toEqual([]);

    // A view or a definer function runs with its owner's rights and would read past the policies.
    const { rows: views } = await owner.query(
      `select relname from pg_class where relnamespace = current_schema()::regnamespace and relkind in ('v', 'm')
          and not coalesce('security_invoker=true' = any(reloptions), false)`,
    );
    expect(views).toEqual([]);
    const { rows: definers } = await owner.query(
      `select proname from pg_proc where pronamespace = current_schema()::regnamespace and prosecdef order by 1`,
    );
    expect(definers.map((d) => d.proname)).toEqual(['recon_sees_all_tenants', 'recon_visible_tenants']);

    // Nothing in the product deletes or truncates; the ledger takes no update; finance writes nothing.
    const { rows: grants } = await owner.query<{ role: string; table: string; privilege: string }>(
      `select grantee as role, table_name as table, privilege_type as privilege from information_schema.role_table_grants
        where grantee in ('recon_worker', 'recon_support', 'recon_finance') and table_schema = current_schema()`,
    );
    expect(grants.filter((g) => ['DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'].includes(g.privilege))).toEqual([]);
    expect(
      grants.filter(
        (g) =>
          g.table === 'ledger_entries' &&
          g.privilege !== 'SELECT' &&
          !(g.role === 'recon_worker' && g.privilege === 'INSERT'),
      ),
    ).toEqual([]);
    expect(grants.filter((g) => g.role === 'recon_finance' && g.privilege !== 'SELECT')).toEqual([]);
    expect(grants.filter((g) => g.table === 'tenant_access' && g.privilege !== 'SELECT')).toEqual([]);
  });

  it('only the owner migrates; a login is created whole or not at all', async () => {
    await expect(migrate(worker.pool)).rejects.toMatchObject({
      code: 'migrate_not_permitted',
      message: expect.stringMatching(/as the owner of the schema/),
    });
    const name = `it_orphan_${suffix}`;
    await expect(
      createLogin(owner, {
        login: name,
        password: randomBytes(18).toString('hex'),
        group: 'recon_support',
        tenants: [A, 'no-such-tenant'],
      }),
    ).rejects.toMatchObject({ code: 'unknown_tenant' });
    expect((await owner.query('select 1 from pg_roles where rolname = $1', [name])).rows).toEqual([]);
    await expect(
      createLogin(owner, {
        login: supportA.login,
        password: randomBytes(18).toString('hex'),
        group: 'recon_support',
        tenants: [A],
      }),
    ).rejects.toMatchObject({ code: 'login_exists' });
    await expect(
      createLogin(owner, { login: 'Bad Name', password: 'short', group: 'recon_support', tenants: [A] }),
    ).rejects.toMatchObject({ code: 'invalid_login' });
  });

  it('a second database in the same cluster migrates with the roles already there', async () => {
    const name = `recon_roles_${suffix}`;
    await owner.query(`create database ${name}`);
    const url = new URL(inject('databaseUrl'));
    url.pathname = `/${name}`;
    const other = createPool(url.toString());
    try {
      const m = await migrate(other);
      expect(m.applied).toContain('006_roles.sql');
      const { rows } = await other.query(
        `select has_table_privilege('recon_worker', 'ledger_entries', 'INSERT') as ins, has_table_privilege('recon_worker', 'ledger_entries', 'UPDATE') as upd`,
      );
      expect(rows[0]).toEqual({ ins: true, upd: false });
    } finally {
      await other.end();
      await owner.query(`drop database ${name}`);
    }
  });
});
