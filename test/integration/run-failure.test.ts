import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { applyExample, startHarness, uniqueTenant, writeLines, type Harness, reconEnv } from './harness';
import { recon } from '../support/recon-cli';

/** The stderr lines that are not progress (progress lines start with two spaces). */
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('  '));

describe('a permanent error fails the night at once', () => {
  let h: Harness;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    h = await startHarness();
    env = reconEnv(h);
  });
  afterAll(async () => h?.stop());

  /** A tenant with one confirmed outcome to bill, whose stored contract is then damaged by `damage`. */
  async function tenantWithDamagedContract(prefix: string, damage: string, params: unknown[]): Promise<string> {
    const tenant = uniqueTenant(prefix);
    await applyExample(h.pool, tenant);
    const claims = await writeLines(h.dir, `${tenant}-claims.csv`, [
      'claim_id,outcome_type,subject_ref,occurred_at',
      'k1,resolved_ticket,T-1,2026-03-02T10:00:00Z',
    ]);
    await importClaimsFile(h.pool, { tenant, file: claims });
    const records = await writeLines(h.dir, `${tenant}-tickets.csv`, [
      'Ticket ID,Status,Solved at,Updated at,CSAT',
      'T-1,solved,2026-03-02T11:00:00Z,2026-03-02T11:00:00Z,5',
    ]);
    await importRecordsFile(h.pool, { tenant, source: 'helpdesk', file: records });
    // Written past `contract apply` on purpose: a contract stored before today's checks existed.
    await h.pool.query(`update contracts set body = ${damage} where tenant_id = $1`, [tenant, ...params]);
    return tenant;
  }

  async function runRow(tenant: string) {
    const { rows } = await h.pool.query<{
      status: string;
      failure_code: string | null;
      failure_message: string | null;
    }>('select status, failure_code, failure_message from runs where tenant_id = $1', [tenant]);
    return rows;
  }

  it('a unit price the ledger cannot hold: failed within seconds, cause on the run row and printed', async () => {
    const tenant = await tenantWithDamagedContract(
      'huge-price',
      `jsonb_set(body, '{outcomeTypes,resolved_ticket,unitPrice}', to_jsonb($2::text))`,
      ['99999999999999999999'],
    );
    const r = await recon(['run', '--tenant', tenant, '--as-of', '2026-03-06T07:00:00Z'], env);
    expect(r.code).not.toBe(0);
    // Twenty retries took about fifteen minutes; a permanent error takes no retry at all.
    expect(r.ms).toBeLessThan(30_000);
    const lines = errorLines(r.stderr);
    expect(lines).toHaveLength(1);
    const m = /^recon: ([a-z_]+): (.+)$/.exec(lines[0]);
    expect(m, r.stderr).not.toBeNull();
    expect(lines[0]).not.toMatch(/Workflow execution failed|\bat \S+:\d+|\b\d{5}\b/);
    const rows = await runRow(tenant);
    expect(rows).toHaveLength(1);
    expect(rows[0].status).toBe('failed');
    expect(rows[0].failure_code).toBe(m![1]);
    expect(m![2]).toContain(rows[0].failure_message);
  });

  it('a stored contract that no longer reads: the same, with --json an error object', async () => {
    const tenant = await tenantWithDamagedContract('bad-stored', `body - 'currency'`, []);
    const r = await recon(['--json', 'run', '--tenant', tenant, '--as-of', '2026-03-06T07:00:00Z'], env);
    expect(r.code).not.toBe(0);
    expect(r.ms).toBeLessThan(30_000);
    const lines = errorLines(r.stderr);
    expect(lines).toHaveLength(1);
    const e = JSON.parse(lines[0]) as { error: { code: string; message: string } };
    expect(e.error.code).toMatch(/^[a-z_]+$/);
    expect(e.error.message).not.toMatch(/Workflow execution failed/);
    const rows = await runRow(tenant);
    expect(rows.map((x) => [x.status, x.failure_code])).toEqual([['failed', e.error.code]]);
  });

  it('a failing activity that is being retried is shown while waiting, and named when giving up', async () => {
    const tenant = uniqueTenant('retrying');
    // Nothing listens on port 9: the pull fails and is retried (a service may come back).
    await applyExample(h.pool, tenant, {
      claimSources: { crm: { kind: 'http', url: 'http://127.0.0.1:9/claims', pageSize: 100, pagesPerChunk: 1 } },
    } as never);
    const asOf = '2026-03-06T07:00:00Z';
    try {
      const r = await recon(['run', '--tenant', tenant, '--as-of', asOf, '--timeout', '12'], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^ {2}! pullClaims failed \d+ times? and is retrying.*: claims_http_unreachable: /m);
      const last = errorLines(r.stderr).filter((l) => l.startsWith('recon:'));
      expect(last).toEqual([
        expect.stringMatching(
          /^recon: run_timeout: run \S+ still going after 12s; pullClaims failed \d+ times? and is retrying/,
        ),
      ]);
    } finally {
      await h.client.workflow
        .getHandle(`reconcile-${tenant}-${new Date(asOf).toISOString()}`)
        .terminate('test over')
        .catch(() => undefined);
    }
  });

  it('an unknown tenant fails the run at its first step, exit 2', async () => {
    const r = await recon(['run', '--tenant', 'no-such-tenant', '--as-of', '2026-03-06T07:00:00Z'], env);
    expect(r.code).toBe(2);
    expect(r.ms).toBeLessThan(30_000);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/^recon: unknown_tenant: .*no-such-tenant/)]);
  });
});
