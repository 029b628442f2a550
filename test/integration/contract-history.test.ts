import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContractCache, applyContract } from '../../src/db/contracts';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { findOutcomeId } from '../../src/reconcile/explain';
import { runReconciliation } from '../../src/temporal/run-client';
import { loadExampleContract, startHarness, uniqueTenant, writeLines, type Harness, reconEnv } from './harness';
import { ROOT, recon } from '../support/recon-cli';
import { HELPDESK_HEADER } from '../support/fixtures';

describe('one contract history', () => {
  let h: Harness;
  const night = (tenant: string, asOf: string) =>
    runReconciliation(h.client, { tenant, asOf: new Date(asOf), taskQueue: h.taskQueue });
  async function seed(tenant: string, name: string, tickets: Array<{ id: string; subject?: string; at: string }>) {
    await importClaimsFile(h.pool, {
      tenant,
      file: await writeLines(
        h.dir,
        `${tenant}-${name}-claims.jsonl`,
        tickets.map((x) =>
          JSON.stringify({
            claim_id: `${x.id}-c`,
            outcome_type: 'resolved_ticket',
            subject_ref: x.subject ?? x.id,
            occurred_at: x.at,
          }),
        ),
      ),
    });
    const rows = tickets.map((x) => `${x.id},solved,${x.at},${x.at},5`);
    await importRecordsFile(h.pool, {
      tenant,
      source: 'helpdesk',
      file: await writeLines(h.dir, `${tenant}-${name}-records.csv`, [HELPDESK_HEADER, ...rows]),
    });
  }
  const charges = async (tenant: string) =>
    (
      await h.pool.query<{ subject_ref: string; amount_minor: string; contract_version: number }>(
        `select subject_ref, amount_minor, contract_version from ledger_entries where tenant_id = $1 and kind = 'charge' order by subject_ref`,
        [tenant],
      )
    ).rows.map((r) => ({ subject: r.subject_ref, amountMinor: Number(r.amount_minor), version: r.contract_version }));

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.stop());

  it('a tenant keeps one currency for life', async () => {
    const tenant = uniqueTenant('cur');
    await applyContract(h.pool, await loadExampleContract(tenant));
    const jpy = await loadExampleContract(tenant, {
      effectiveFrom: '2026-06-01T00:00:00Z',
      currency: 'JPY',
      timezone: 'Asia/Tokyo',
    });
    await expect(
      applyContract(h.pool, {
        ...jpy,
        outcomeTypes: { resolved_ticket: { ...jpy.outcomeTypes.resolved_ticket, unitPrice: '150' } },
      }),
    ).rejects.toMatchObject({
      code: 'currency_change',
      message: expect.stringMatching(/^tenant \S+ bills in USD \(since version 1\); a version in JPY is refused/),
    });
    // applyContract checks the apply-time rules itself, whoever parsed the body.
    const v1 = await loadExampleContract(tenant);
    await expect(
      applyContract(h.pool, {
        ...v1,
        effectiveFrom: '2026-07-01T00:00:00Z',
        outcomeTypes: { resolved_ticket: { ...v1.outcomeTypes.resolved_ticket, unitPrice: '0.001' } },
      }),
    ).rejects.toMatchObject({
      code: 'invalid_contract',
      message: `contract of ${tenant}: outcomeTypes.resolved_ticket.unitPrice: 0.001 USD rounds to 0 in minor units (the smallest amount is 0.01); write "0" to mean free`,
    });
    const { rows } = await h.pool.query<{ n: number }>(
      'select count(*)::int as n from contracts where tenant_id = $1',
      [tenant],
    );
    expect(rows[0].n).toBe(1);
  });

  it('a back-dated version prices later outcomes and never reprices posted lines; a type with outcomes keeps its identity', async () => {
    const tenant = uniqueTenant('back');
    const v1 = await loadExampleContract(tenant);
    await applyContract(h.pool, v1);
    await seed(tenant, 'a', [
      { id: 'T-1', at: '2026-03-01T10:00:00Z' },
      { id: 'T-2', at: '2026-03-01T11:00:00Z' },
    ]);
    await night(tenant, '2026-03-06T07:00:00Z');
    expect(await charges(tenant)).toEqual([
      { subject: 'T-1', amountMinor: 99, version: 1 },
      { subject: 'T-2', amountMinor: 99, version: 1 },
    ]);

    // Effective from February: before both posted successes.
    const v2 = {
      ...v1,
      effectiveFrom: '2026-02-01T00:00:00Z',
      outcomeTypes: { resolved_ticket: { ...v1.outcomeTypes.resolved_ticket, unitPrice: '1.25' } },
    };
    expect(await applyContract(h.pool, v2)).toMatchObject({ version: 2, created: true });
    await seed(tenant, 'b', [{ id: 'T-3', at: '2026-03-02T10:00:00Z' }]);
    await night(tenant, '2026-03-10T07:00:00Z');
    // T-3 succeeded under the back-dated terms; T-1 and T-2 keep the lines they were billed.
    expect(await charges(tenant)).toEqual([
      { subject: 'T-1', amountMinor: 99, version: 1 },
      { subject: 'T-2', amountMinor: 99, version: 1 },
      { subject: 'T-3', amountMinor: 125, version: 2 },
    ]);
    const { rows: entries } = await h.pool.query<{ n: number }>(
      `select count(*)::int as n from ledger_entries where tenant_id = $1`,
      [tenant],
    );
    expect(entries[0].n).toBe(3);

    const renamed = {
      ...v1,
      effectiveFrom: '2026-09-01T00:00:00Z',
      outcomeTypes: { solved_ticket: v1.outcomeTypes.resolved_ticket },
    };
    await expect(applyContract(h.pool, renamed)).rejects.toMatchObject({
      code: 'outcome_type_in_use',
      message: expect.stringContaining('resolved_ticket (3 outcomes): the new version drops it'),
    });
    const caseSensitive = {
      ...v1,
      effectiveFrom: '2026-09-01T00:00:00Z',
      outcomeTypes: {
        resolved_ticket: {
          ...v1.outcomeTypes.resolved_ticket,
          matchKey: { field: 'ticket_id', caseInsensitive: false },
        },
      },
    };
    await expect(applyContract(h.pool, caseSensitive)).rejects.toMatchObject({
      code: 'outcome_type_in_use',
      message: expect.stringContaining('changes its case rule'),
    });
    // Adding a type beside it is fine.
    const added = {
      ...v1,
      effectiveFrom: '2026-09-01T00:00:00Z',
      outcomeTypes: { ...v1.outcomeTypes, closed_ticket: v1.outcomeTypes.resolved_ticket },
    };
    expect(await applyContract(h.pool, added)).toMatchObject({ version: 3, created: true });
  });

  it('lookups find the outcomes that exist, whatever the newest version lists', async () => {
    const tenant = uniqueTenant('look');
    const v1 = await loadExampleContract(tenant);
    await applyContract(h.pool, v1);
    // A future version that renames the type, applied while it had no outcomes yet.
    await applyContract(h.pool, {
      ...v1,
      effectiveFrom: '2026-10-01T00:00:00Z',
      outcomeTypes: { solved_ticket: v1.outcomeTypes.resolved_ticket },
    });
    await seed(tenant, 'a', [{ id: 'L-1', at: '2026-03-01T10:00:00Z' }]);
    await night(tenant, '2026-03-06T07:00:00Z');
    const id = await findOutcomeId(h.pool, { tenant, subject: ' l-1 ' });
    const { rows } = await h.pool.query('select outcome_type, state from outcomes where outcome_id = $1', [id]);
    expect(rows[0]).toEqual({ outcome_type: 'resolved_ticket', state: 'billed' });
    expect(await findOutcomeId(h.pool, { tenant, subject: 'L-1', type: 'resolved_ticket' })).toBe(id);
    await expect(findOutcomeId(h.pool, { tenant, subject: 'L-1', type: 'solved_ticket' })).rejects.toMatchObject({
      code: 'outcome_not_found',
    });
  });

  it('matches a claim subject written in NFD with a record id in NFC', async () => {
    const tenant = uniqueTenant('nfc');
    await applyContract(h.pool, await loadExampleContract(tenant));
    const nfc = 'T-\u00c5ngstr\u00f6m';
    const nfd = nfc.normalize('NFD');
    await seed(tenant, 'a', [{ id: nfc, subject: nfd, at: '2026-03-01T10:00:00Z' }]);
    await night(tenant, '2026-03-06T07:00:00Z');
    const { rows } = await h.pool.query(
      'select subject_key, state, record_id is not null as matched from outcomes where tenant_id = $1',
      [tenant],
    );
    expect(rows).toEqual([{ subject_key: 't-\u00e5ngstr\u00f6m', state: 'billed', matched: true }]);
    const id = await findOutcomeId(h.pool, { tenant, subject: nfd });
    expect(await findOutcomeId(h.pool, { tenant, subject: nfc.toUpperCase() })).toBe(id);
  });

  it('quarantines a claim more than a day after the import time, keeps one within the day', async () => {
    const tenant = uniqueTenant('fut');
    await applyContract(h.pool, await loadExampleContract(tenant));
    const now = new Date('2026-03-05T12:00:00Z');
    const lines = [
      JSON.stringify({
        claim_id: 'f-1',
        outcome_type: 'resolved_ticket',
        subject_ref: 'F-1',
        occurred_at: '2026-03-06T11:59:00Z',
      }),
      JSON.stringify({
        claim_id: 'f-2',
        outcome_type: 'resolved_ticket',
        subject_ref: 'F-2',
        occurred_at: '2026-03-06T12:00:01Z',
      }),
    ];
    const r = await importClaimsFile(h.pool, {
      tenant,
      file: await writeLines(h.dir, `${tenant}-future.jsonl`, lines),
      now,
    });
    expect(r).toMatchObject({ received: 2, accepted: 1, quarantined: 1 });
    const { rows } = await h.pool.query('select code, reason from quarantine where tenant_id = $1', [tenant]);
    expect(rows).toEqual([
      {
        code: 'occurred_in_future',
        reason:
          "field occurred_at: 2026-03-06T12:00:01.000Z is more than a day after this import's time (2026-03-05T12:00:00.000Z); fix the claim's time (and its zone) and send it again",
      },
    ]);
  });

  it("the activities' cache parses a history once and sees a version applied since", async () => {
    const tenant = uniqueTenant('cache');
    const v1 = await loadExampleContract(tenant);
    await applyContract(h.pool, v1);
    const cache = new ContractCache(h.pool);
    const first = await cache.history(tenant);
    expect(await cache.history(tenant)).toBe(first);
    await applyContract(h.pool, { ...v1, effectiveFrom: '2026-06-01T00:00:00Z' });
    const second = await cache.history(tenant);
    expect(second).not.toBe(first);
    expect(second.versions.map((v) => v.version)).toEqual([1, 2]);
    await expect(cache.history('nobody-here')).rejects.toMatchObject({ code: 'unknown_tenant' });
  });

  it('recon contract list, show and diff', async () => {
    const tenant = uniqueTenant('cli');
    const env = reconEnv(h);
    const example = JSON.parse(await readFile(path.join(ROOT, 'examples/contract.acme.json'), 'utf8')) as {
      outcomeTypes: { resolved_ticket: Record<string, unknown> };
    };
    const f1 = path.join(h.dir, `${tenant}-v1.json`);
    const f2 = path.join(h.dir, `${tenant}-v2.json`);
    await writeFile(f1, JSON.stringify({ ...example, tenant }));
    const second = structuredClone({ ...example, tenant, effectiveFrom: '2026-06-01T00:00:00Z' });
    second.outcomeTypes.resolved_ticket.unitPrice = '1.25';
    second.outcomeTypes.resolved_ticket.clawbackWindow = 'P14D';
    await writeFile(f2, JSON.stringify(second));
    expect((await recon(['contract', 'apply', f1], env)).code).toBe(0);
    expect((await recon(['contract', 'apply', f2], env)).code).toBe(0);

    const list = await recon(['--json', 'contract', 'list', '--tenant', tenant], env);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toMatchObject([
      { version: 1, effective_from: '2026-01-01T00:00:00.000Z', currency: 'USD', outcome_types: ['resolved_ticket'] },
      { version: 2, effective_from: '2026-06-01T00:00:00.000Z', currency: 'USD', outcome_types: ['resolved_ticket'] },
    ]);
    const human = await recon(['contract', 'list', '--tenant', tenant], env);
    expect(human.stdout).toMatch(/2026-06-01T00:00:00.000Z/);

    const show = await recon(['--json', 'contract', 'show', '--tenant', tenant, '1'], env);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({
      version: 1,
      body: { tenant, outcomeTypes: { resolved_ticket: { unitPrice: '0.99' } } },
    });
    // Without --json stdout is the body alone: a file `contract apply` takes again (nothing changes).
    const plain = await recon(['contract', 'show', '--tenant', tenant, '1'], env);
    expect(plain.stderr).toMatch(/^tenant \S+: version 1, effective from 2026-01-01T00:00:00.000Z, applied /);
    const again = path.join(h.dir, `${tenant}-again.json`);
    await writeFile(again, plain.stdout);
    expect((await recon(['contract', 'apply', again], env)).stdout).toMatch(/identical to version 1; nothing changed/);
    const at = await recon(['--json', 'contract', 'show', '--tenant', tenant, '--at', '2026-07-01T00:00:00Z'], env);
    expect(JSON.parse(at.stdout)).toMatchObject({ version: 2 });

    const diff = await recon(['--json', 'contract', 'diff', '--tenant', tenant], env);
    expect(diff.code).toBe(0);
    expect(JSON.parse(diff.stdout)).toEqual({
      tenant,
      from: 1,
      to: 2,
      changes: [
        { path: 'effectiveFrom', old: '2026-01-01T00:00:00Z', new: '2026-06-01T00:00:00Z' },
        { path: 'outcomeTypes.resolved_ticket.clawbackWindow', old: 'PT0S', new: 'P14D' },
        { path: 'outcomeTypes.resolved_ticket.unitPrice', old: '0.99', new: '1.25' },
      ],
    });
    const readable = await recon(['contract', 'diff', '--tenant', tenant, '--from', '1', '--to', '2'], env);
    expect(readable.stdout).toContain('outcomeTypes.resolved_ticket.unitPrice: "0.99" → "1.25"');
    const newest = await recon(['contract', 'diff', '--tenant', tenant, '--from', '2'], env);
    expect(newest.code).not.toBe(0);
    expect(newest.stderr).toContain('version 2 is the newest of tenant');

    for (const args of [
      ['contract', 'list', '--tenant', 'nobody-here'],
      ['contract', 'show', '--tenant', 'nobody-here'],
      ['contract', 'diff', '--tenant', 'nobody-here'],
    ]) {
      const r = await recon(args, env);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr).toContain('unknown_tenant');
    }
    const missing = await recon(['contract', 'show', '7', '--tenant', tenant], env);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('unknown_contract_version');
  });
});
