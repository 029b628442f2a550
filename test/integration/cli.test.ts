import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, uniqueTenant, writeLines, type Harness, reconEnv } from './harness';
import { ROOT, BIN, recon } from '../support/recon-cli';

describe('the recon command against the real stack', () => {
  let h: Harness;
  let env: NodeJS.ProcessEnv;
  const tenant = uniqueTenant('cli');
  let contractFile: string;

  beforeAll(async () => {
    h = await startHarness();
    env = reconEnv(h);
    const example = JSON.parse(await readFile(path.join(ROOT, 'examples/contract.acme.json'), 'utf8'));
    contractFile = path.join(h.dir, 'contract.json');
    await writeFile(contractFile, JSON.stringify({ ...example, tenant }));
  });
  afterAll(async () => h?.stop());

  it('refuses an invalid contract with the path of the bad field, in one line', async () => {
    const example = JSON.parse(await readFile(contractFile, 'utf8'));
    example.outcomeTypes.resolved_ticket.graceWindow = '72 hours';
    const bad = path.join(h.dir, 'bad-contract.json');
    await writeFile(bad, JSON.stringify(example));
    const r = await recon(['contract', 'apply', bad], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/invalid_contract: .*outcomeTypes\.resolved_ticket\.graceWindow/);
  });

  it('applies a contract once; the same file again changes nothing', async () => {
    const first = await recon(['--json', 'contract', 'apply', contractFile], env);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ tenant, version: 1, created: true });
    const again = await recon(['contract', 'apply', contractFile], env);
    expect(again.stdout).toMatch(/nothing changed/);
  });

  it('imports, runs twice, exports identical formula-safe bytes, explains an outcome', async () => {
    const claims = await writeLines(h.dir, 'claims.csv', [
      'claim_id,outcome_type,subject_ref,occurred_at',
      'k1,resolved_ticket,T-1,2026-03-02T10:00:00Z',
      'k2,resolved_ticket,"=HYPERLINK(""x"")",2026-03-02T10:00:00Z',
      'k3,resolved_ticket,T-3,not-a-date',
    ]);
    const imp = await recon(['--json', 'claims', 'import', '--tenant', tenant, claims], env);
    expect(imp.code).toBe(0);
    expect(JSON.parse(imp.stdout)).toMatchObject({ received: 3, accepted: 2, quarantined: 1 });
    const records = await writeLines(h.dir, 'tickets.csv', [
      'Ticket ID,Status,Solved at,Updated at,CSAT',
      'T-1,solved,2026-03-02T11:00:00Z,2026-03-02T11:00:00Z,5',
      '"=HYPERLINK(""x"")",solved,2026-03-02T11:00:00Z,2026-03-02T11:00:00Z,5',
    ]);
    expect((await recon(['records', 'import', '--tenant', tenant, '--source', 'helpdesk', records], env)).code).toBe(0);

    const run1 = await recon(['--json', 'run', '--tenant', tenant, '--as-of', '2026-03-06T07:00:00Z'], env);
    expect(run1.code).toBe(0);
    expect(JSON.parse(run1.stdout).ledger).toMatchObject({ new_charges: 2, new_amount_minor: 198 });
    const run2 = await recon(['run', '--tenant', tenant, '--as-of', '2026-03-06T07:00:00Z'], env);
    expect(run2.code).toBe(0);
    expect(run2.stdout).toMatch(/nothing new: an earlier execution of this asOf wrote these lines/);

    const out1 = path.join(h.dir, 'e1.csv');
    const out2 = path.join(h.dir, 'e2.csv');
    expect((await recon(['export', '--tenant', tenant, '--period', '2026-03', '--out', out1], env)).code).toBe(0);
    expect((await recon(['export', '--tenant', tenant, '--period', '2026-03', '--out', out2], env)).code).toBe(0);
    const [a, b] = [await readFile(out1), await readFile(out2)];
    expect(a.equals(b)).toBe(true);
    expect(a.toString()).toContain(`"'=HYPERLINK(""x"")"`);
    expect(a.toString()).not.toMatch(/,=HYPERLINK/);

    const show = await recon(['--json', 'outcome', 'show', '--tenant', tenant, '--subject', 't-1'], env);
    expect(show.code).toBe(0);
    const story = JSON.parse(show.stdout);
    expect(story.outcome).toMatchObject({ state: 'billed', subject_ref: 'T-1' });
    expect(story.claims[0]).toMatchObject({ claim_id: 'k1', role: 'primary' });
    expect(story.events.map((e: { kind: string }) => e.kind)).toEqual(['matched', 'confirmed', 'billed']);
    expect(story.ledger).toHaveLength(1);

    const q = await recon(['--json', 'quarantine', 'list', '--tenant', tenant], env);
    expect(JSON.parse(q.stdout).items[0]).toMatchObject({ code: 'bad_timestamp', line: 4, file: 'claims.csv' });
  });

  it('support works a dispute from the command line: open, note, resolve, list, show, import', async () => {
    const day = 86_400_000;
    const at = (ms: number) => new Date(Math.floor((Date.now() + ms) / 60_000) * 60_000).toISOString();
    const claims = await writeLines(h.dir, 'recent.jsonl', [
      JSON.stringify({
        claim_id: 'k9',
        outcome_type: 'resolved_ticket',
        subject_ref: 'T-9',
        occurred_at: at(-2 * day),
      }),
    ]);
    const records = await writeLines(h.dir, 'recent.csv', [
      'Ticket ID,Status,Solved at,Updated at,CSAT',
      `T-9,solved,${at(-2 * day)},${at(-2 * day)},5`,
    ]);
    await recon(['claims', 'import', '--tenant', tenant, claims], env);
    await recon(['records', 'import', '--tenant', tenant, '--source', 'helpdesk', records], env);
    expect((await recon(['run', '--tenant', tenant, '--as-of', at(-day)], env)).code).toBe(0);

    const opened = await recon(
      ['--json', 'dispute', 'open', '--tenant', tenant, '--subject', 'T-9', '--reason', 'not fixed', '--actor', 'sam'],
      env,
    );
    expect(opened.code, opened.stderr).toBe(0);
    const id = JSON.parse(opened.stdout).dispute_id;
    expect(
      (await recon(['dispute', 'note', String(id), '--actor', 'sam', '--text', 'called the customer'], env)).code,
    ).toBe(0);
    const list = await recon(['--json', 'dispute', 'list', '--tenant', tenant, '--open'], env);
    expect(JSON.parse(list.stdout).map((d: { dispute_id: number }) => d.dispute_id)).toEqual([id]);
    const bad = await recon(
      ['dispute', 'resolve', String(id), '--decision', 'maybe', '--actor', 'lee', '--note', 'x'],
      env,
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/decision/);
    const resolved = await recon(
      ['dispute', 'resolve', String(id), '--decision', 'uphold', '--actor', 'lee', '--note', 'customer is right'],
      env,
    );
    expect(resolved.stdout).toMatch(/upheld: outcome rejected/);
    const twice = await recon(
      ['dispute', 'resolve', String(id), '--decision', 'reject', '--actor', 'lee', '--note', 'again'],
      env,
    );
    expect(twice.code).not.toBe(0);
    expect(twice.stderr).toMatch(/already_resolved: dispute \d+ was already resolved: upheld by lee/);
    const shown = await recon(['dispute', 'show', String(id)], env);
    expect(shown.stdout).toMatch(/note\s+sam: called the customer/);
    const story = JSON.parse(
      (await recon(['--json', 'outcome', 'show', '--tenant', tenant, '--subject', 'T-9'], env)).stdout,
    );
    expect(story.outcome).toMatchObject({ state: 'rejected', reject_reason: 'dispute_upheld', on_hold: false });
    expect(story.disputes[0]).toMatchObject({ dispute_id: id, status: 'upheld', resolved_by: 'lee' });

    const file = await writeLines(h.dir, 'customer-disputes.csv', [
      'subject,reason,actor',
      'T-404,never heard of it,kim@customer',
      'T-9,,kim@customer',
    ]);
    const imported = await recon(['--json', 'dispute', 'import', '--tenant', tenant, file], env);
    expect(JSON.parse(imported.stdout)).toMatchObject({ received: 2, accepted: 0, quarantined: 2 });
    const q = JSON.parse((await recon(['--json', 'quarantine', 'list', '--tenant', tenant], env)).stdout);
    expect(
      q.items
        .filter((x: { file: string }) => x.file === 'customer-disputes.csv')
        .map((x: { code: string }) => x.code)
        .sort(),
    ).toEqual(['invalid_field', 'outcome_not_found']);
  });

  it('finance: statement equals the export, period close is idempotent, alerts list, index import', async () => {
    const st = await recon(['--json', 'statement', '--tenant', tenant, '--period', '2026-03'], env);
    expect(st.code, st.stderr).toBe(0);
    const statement = JSON.parse(st.stdout);
    const out = path.join(h.dir, 'e3.csv');
    const ex = await recon(['--json', 'export', '--tenant', tenant, '--period', '2026-03', '--out', out], env);
    expect(statement.total_minor).toBe(JSON.parse(ex.stdout).amount_minor);
    const c1 = await recon(
      ['--json', 'period', 'close', '--tenant', tenant, '--period', '2026-03', '--actor', 'fin'],
      env,
    );
    const c2 = await recon(
      ['--json', 'period', 'close', '--tenant', tenant, '--period', '2026-03', '--actor', 'other'],
      env,
    );
    expect(JSON.parse(c2.stdout)).toMatchObject({
      already_closed: true,
      closed_by: 'fin',
      closed_at: JSON.parse(c1.stdout).closed_at,
    });
    expect(JSON.parse((await recon(['--json', 'alerts', 'list', '--tenant', tenant], env)).stdout)).toEqual([]);
    const index = await writeLines(h.dir, 'index.csv', [
      'series,effective_from,multiplier',
      'gpu-cost,2026-03-01T00:00:00Z,1.05',
      'gpu-cost,2026-04-01T00:00:00Z,1.0x',
    ]);
    const bad = await recon(['index', 'import', '--tenant', tenant, index], env);
    expect(bad.code).not.toBe(0);
    // The acme contract prices by no index series: a file of one is refused whole, naming the line.
    expect(bad.stderr).toMatch(
      /^recon: unknown_series: .*index\.csv line 2: tenant \S+ does not use series "gpu-cost"/,
    );
  });

  it('recon worker serves a health check while it polls, and exits non-zero when it cannot connect', async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const child = spawn(process.execPath, [BIN, 'worker', '--health-port', String(port)], {
      cwd: ROOT,
      env: { ...process.env, ...env, TEMPORAL_TASK_QUEUE: `${h.taskQueue}-health` },
      stdio: 'ignore',
    });
    try {
      let health: { ok: boolean; polling: boolean; postgres: boolean } | undefined;
      for (let i = 0; i < 60 && !health?.ok; i++) {
        await new Promise((r) => setTimeout(r, 500));
        health = (await fetch(`http://127.0.0.1:${port}/healthz`).then(
          (r) => r.json(),
          () => undefined,
        )) as typeof health;
      }
      expect(health).toMatchObject({ ok: true, polling: true, postgres: true });
    } finally {
      child.kill('SIGTERM');
    }
    const down = await recon(['worker'], { ...env, DATABASE_URL: 'postgres://nobody:x@127.0.0.1:1/none' });
    expect(down.code).not.toBe(0);
    expect(down.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('every verb answers --help', async () => {
    for (const verb of [
      ['run'],
      ['schedule', 'create'],
      ['export'],
      ['outcome', 'show'],
      ['claims', 'import'],
      ['dev'],
      ['demo'],
      ['worker'],
      ['dispute', 'resolve'],
      ['dispute', 'import'],
      ['statement'],
      ['period', 'close'],
      ['alerts', 'list'],
      ['index', 'import'],
      ['tenant', 'list'],
      ['run', 'list'],
      ['run', 'show'],
      ['outcome', 'list'],
      ['quarantine', 'list'],
    ]) {
      const r = await recon([...verb, '--help'], env);
      expect(r.code, verb.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: recon/);
    }
    // Which options a verb cannot do without (every verb is checked in test/unit/cli-format.test.ts).
    expect((await recon(['run', '--help'], env)).stdout).toMatch(/--tenant <tenant>\s+tenant id \(required\)/);
  });

  it('without settings or a running dev stack, says how to get one', async () => {
    const cwd = await mkdtemp(path.join(os.tmpdir(), 'recon-nostack-'));
    const r = await recon(['run', '--tenant', 'acme'], { DATABASE_URL: '', TEMPORAL_ADDRESS: '' }, cwd);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no_stack: .*recon dev/);
  });

  it('bad options are refused in one line naming the option', async () => {
    const r = await recon(['export', '--tenant', tenant, '--period', '2026-13'], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/period/);
  });
});
