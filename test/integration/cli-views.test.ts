import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, uniqueTenant, writeLines, type Harness, reconEnv } from './harness';
import { ROOT, BIN, spawnResult, recon } from '../support/recon-cli';

/** Every key of a --json value that is ours (not under a key whose value is data) and is not snake_case. */
function camelKeys(value: unknown, at = '$'): string[] {
  if (value === null || typeof value !== 'object') return [];
  if (Array.isArray(value)) return value.flatMap((v, i) => camelKeys(v, `${at}[${i}]`));
  return Object.entries(value).flatMap(([k, v]) => [
    ...(/[a-z][A-Z]/.test(k) ? [`${at}.${k}`] : []),
    ...(['data', 'attributes', 'body', 'contract', 'details'].includes(k) ? [] : camelKeys(v, `${at}.${k}`)),
  ]);
}

describe('the operator views of recon: tenants, past runs, filtered lists, naming, amounts', () => {
  let h: Harness;
  let env: NodeJS.ProcessEnv;
  const tenant = uniqueTenant('views');
  const asOf = '2026-03-06T07:00:00.000Z';
  let runId: number;

  beforeAll(async () => {
    h = await startHarness();
    env = reconEnv(h);
    const example = JSON.parse(await readFile(path.join(ROOT, 'examples/contract.acme.json'), 'utf8'));
    const contractFile = path.join(h.dir, 'contract.json');
    await writeFile(contractFile, JSON.stringify({ ...example, tenant }));
    expect((await recon(['contract', 'apply', contractFile], env)).code).toBe(0);
  });
  afterAll(async () => h?.stop());

  it('recon --version and -V print the package version', async () => {
    const { version } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
    for (const flag of ['--version', '-V']) {
      const r = await recon([flag], env);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    }
  });

  it('tenant list shows a new tenant with its contract and no run yet', async () => {
    const r = await recon(['--json', 'tenant', 'list'], env);
    expect(r.code, r.stderr).toBe(0);
    const row = JSON.parse(r.stdout).find((t: { tenant: string }) => t.tenant === tenant);
    expect(row).toMatchObject({
      contract_version: 1,
      versions: 1,
      currency: 'USD',
      timezone: 'America/New_York',
      last_run: null,
    });
    const human = await recon(['tenant', 'list'], env);
    expect(human.stdout).toMatch(new RegExp(`${tenant}\\s+v1 of 1\\s+USD\\s+America/New_York\\s+never`));
    expect(human.stdout).toMatch(/\d+ tenants?$/m);
  });

  it('imports (progress on a terminal only), runs, and lists and shows the past run', async () => {
    const rows = ['claim_id,outcome_type,subject_ref,occurred_at'];
    for (let i = 1; i <= 2500; i++) rows.push(`c${i},resolved_ticket,T-${i},2026-03-02T10:00:00Z`);
    rows.push('bad1,resolved_ticket,X-1,not-a-date');
    const claims = await writeLines(h.dir, 'claims.csv', rows);
    // `script` gives the command a terminal, as a person at a shell has; its output is that terminal.
    const tty = await spawnResult(
      'script',
      ['-qec', `${process.execPath} ${BIN} claims import --tenant ${tenant} ${claims}`, '/dev/null'],
      env,
    );
    expect(tty.code, tty.stdout).toBe(0);
    expect(tty.stdout).toMatch(/\rclaims\.csv: 1000 rows staged so far/);
    expect(tty.stdout).toMatch(/received 2501 = accepted 2500 \+ redelivered 0 \+ quarantined 1/);
    const records = await writeLines(h.dir, 'tickets.csv', [
      'Ticket ID,Status,Solved at,Updated at,CSAT',
      'T-1,solved,2026-03-02T11:00:00Z,2026-03-02T11:00:00Z,5',
      'T-10,solved,2026-03-02T11:00:00Z,2026-03-02T11:00:00Z,5',
      'T-2,open,,2026-03-02T11:00:00Z,',
      'T-3,solved,yesterday,2026-03-02T11:00:00Z,5',
    ]);
    const piped = await recon(['records', 'import', '--tenant', tenant, '--source', 'helpdesk', records], env);
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stderr).toBe('');

    const run = await recon(['run', '--tenant', tenant, '--as-of', asOf], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/evaluating|chunk/);

    const list = await recon(['--json', 'run', 'list', '--tenant', tenant], env);
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout);
    expect(listed).toMatchObject({
      matching: 1,
      shown: 1,
      items: [{ tenant, as_of: asOf, status: 'completed', attempts: 1 }],
    });
    runId = listed.items[0].run_id;
    expect(listed.items[0].summary).toMatchObject({ run_id: runId, tenant });
    expect((await recon(['run', 'list', '--tenant', tenant], env)).stdout).toMatch(/1 of 1 run$/m);
    // --json may come last too, and run's own options may come before list.
    expect(JSON.parse((await recon(['run', '--tenant', tenant, 'list', '--json'], env)).stdout)).toMatchObject({
      matching: 1,
    });
    expect((await recon(['run', 'list', '--tenant', tenant, '--status', 'failed'], env)).stdout.trim()).toBe(
      '0 of 0 runs',
    );

    for (const args of [['--as-of', asOf], [String(runId)]]) {
      const show = await recon(['run', 'show', '--tenant', tenant, ...args], env);
      expect(show.code, show.stderr).toBe(0);
      expect(show.stdout).toMatch(
        new RegExp(`^run ${runId} · tenant ${tenant} · as of ${asOf} · COMPLETED · 1 attempt · started`),
      );
      expect(show.stdout).toMatch(/claims\s+received 2501/);
    }
    const neither = await recon(['run', 'show', '--tenant', tenant], env);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/^recon: bad_input: give a run id or --as-of/);
    const missing = await recon(['run', 'show', '999999999', '--tenant', tenant], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^recon: run_not_found: /);
    const unknown = await recon(['run', 'list', '--tenant', 'no-such-tenant'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^recon: unknown_tenant: /);

    const tenants = JSON.parse((await recon(['--json', 'tenant', 'list'], env)).stdout);
    expect(tenants.find((t: { tenant: string }) => t.tenant === tenant).last_run).toMatchObject({
      run_id: runId,
      as_of: asOf,
      status: 'completed',
    });
  });

  it('outcome list filters by state, subject or prefix, type, hold and change time, and says N of M', async () => {
    const list = async (...args: string[]) => {
      const r = await recon(['--json', 'outcome', 'list', '--tenant', tenant, ...args], env);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as {
        matching: number;
        shown: number;
        items: Array<{ subject_ref: string; state: string; on_hold: boolean }>;
      };
    };
    expect(await list('--limit', '5')).toMatchObject({ matching: 2500, shown: 5 });
    const billed = await list('--state', 'billed');
    expect(billed.items.map((o) => o.subject_ref).sort()).toEqual(['T-1', 'T-10']);
    expect((await list('--subject', 't-1')).items.map((o) => o.subject_ref)).toEqual(['T-1']);
    const prefix = await list('--subject', 'T-25*');
    expect(prefix.items.map((o) => o.subject_ref).sort()).toEqual([
      'T-25',
      'T-250',
      'T-2500',
      'T-251',
      'T-252',
      'T-253',
      'T-254',
      'T-255',
      'T-256',
      'T-257',
      'T-258',
      'T-259',
    ]);
    expect((await list('--type', 'resolved_ticket', '--subject', 'T-2')).matching).toBe(1);
    expect((await list('--type', 'no_such_type')).matching).toBe(0);

    expect((await list('--on-hold')).matching).toBe(0);
    const before = new Date(Date.now() - 1000).toISOString();
    await h.pool.query(
      `update outcomes set on_hold = true, updated_at = now() where tenant_id = $1 and subject_ref = 'T-2'`,
      [tenant],
    );
    expect((await list('--on-hold')).items.map((o) => o.subject_ref)).toEqual(['T-2']);
    expect((await list('--since', before)).items.map((o) => o.subject_ref)).toEqual(['T-2']);
    expect((await list('--since', '2000-01-01T00:00:00Z', '--limit', '1')).matching).toBe(2500);

    const human = await recon(['outcome', 'list', '--tenant', tenant, '--limit', '3'], env);
    expect(human.stdout).toMatch(/^3 of 2500 outcomes \(raise --limit to see more\)$/m);
    const bad = await recon(['outcome', 'list', '--tenant', tenant, '--state', 'paid'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/state/);
    const unknown = await recon(['outcome', 'list', '--tenant', 'no-such-tenant'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^recon: unknown_tenant: /);
  });

  it('quarantine list filters by file, code and kind, and says N of M', async () => {
    const list = async (...args: string[]) =>
      JSON.parse((await recon(['--json', 'quarantine', 'list', '--tenant', tenant, ...args], env)).stdout) as {
        matching: number;
        items: Array<{ file: string; code: string; kind: string }>;
      };
    const all = await list();
    expect(all.matching).toBe(all.items.length);
    expect(all.items.map((q) => q.kind).sort()).toEqual(['claims', 'records']);
    expect((await list('--file', 'claims.csv')).items).toMatchObject([
      { file: 'claims.csv', code: 'bad_timestamp', kind: 'claims' },
    ]);
    expect((await list('--file', path.join(h.dir, 'tickets.csv'))).items).toMatchObject([
      { file: 'tickets.csv', kind: 'records' },
    ]);
    expect((await list('--kind', 'records')).items).toMatchObject([{ file: 'tickets.csv' }]);
    expect((await list('--kind', 'disputes')).matching).toBe(0);
    expect((await list('--code', 'bad_timestamp', '--kind', 'claims')).matching).toBe(1);
    expect((await list('--code', 'no_such_code')).matching).toBe(0);
    const human = await recon(['quarantine', 'list', '--tenant', tenant, '--limit', '1'], env);
    expect(human.stdout).toMatch(/^1 of 2 quarantined rows \(raise --limit to see more\)$/m);
    const bad = await recon(['quarantine', 'list', '--tenant', tenant, '--kind', 'invoices'], env);
    expect(bad.code).toBe(2);
  });

  it('prints amounts as decimals with the currency, never minor units', async () => {
    const show = await recon(['outcome', 'show', '--tenant', tenant, '--subject', 'T-1'], env);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/entry \d+ charge 0\.99 USD at 0\.99 in 2026-03/);
    expect(show.stdout).toMatch(/billed\s+charged 0\.99 USD in 2026-03/);
    expect(show.stdout).not.toMatch(/minor units/);
    await h.pool.query(
      `insert into alerts (tenant_id, outcome_type, period, threshold, basis, usage_minor, limit_minor, crossed_at) values ($1, 'resolved_ticket', '2026-03', 0.8, 'cap', 8000, 10000, now())`,
      [tenant],
    );
    const alerts = await recon(['alerts', 'list', '--tenant', tenant], env);
    expect(alerts.code, alerts.stderr).toBe(0);
    expect(alerts.stdout).toMatch(/80%.*80\.00 USD\s+100\.00 USD/);
    expect(alerts.stdout).not.toMatch(/[Mm]inor/);
  });

  it('every --json output and the JSONL export name their keys in snake_case', async () => {
    const outputs: Array<[string, string[]]> = [
      ['tenant list', ['tenant', 'list']],
      ['run list', ['run', 'list', '--tenant', tenant]],
      ['run show', ['run', 'show', String(runId), '--tenant', tenant]],
      ['outcome list', ['outcome', 'list', '--tenant', tenant, '--limit', '3']],
      ['outcome show', ['outcome', 'show', '--tenant', tenant, '--subject', 'T-1']],
      ['quarantine list', ['quarantine', 'list', '--tenant', tenant]],
      ['dispute list', ['dispute', 'list', '--tenant', tenant]],
      ['alerts list', ['alerts', 'list', '--tenant', tenant]],
      ['statement', ['statement', '--tenant', tenant, '--period', '2026-03']],
      ['export', ['export', '--tenant', tenant, '--period', '2026-03', '--out', path.join(h.dir, 'e.csv')]],
      ['claims import', ['claims', 'import', '--tenant', tenant, path.join(h.dir, 'claims.csv')]],
    ];
    for (const [name, args] of outputs) {
      const r = await recon(['--json', ...args], env);
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      expect(camelKeys(JSON.parse(r.stdout)), name).toEqual([]);
    }
    const jsonl = await recon(['export', '--tenant', tenant, '--period', '2026-03', '--format', 'jsonl'], env);
    const lines = jsonl.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.length).toBe(2);
    for (const l of lines) expect(Object.keys(l).filter((k) => !/^[a-z0-9_]+$/.test(k))).toEqual([]);
  });
});
