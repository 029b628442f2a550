import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullClaimPage, readCursor } from '../../src/sources/http-claims';
import { startClaimsServer, type ClaimsServer } from '../../src/sources/claims-server';
import { runReconciliation } from '../../src/temporal/run-client';
import { NIGHT_STEPS, runWorkflowId } from '../../workflows/messages';
import { applyExample, startHarness, uniqueTenant, type Harness } from './harness';

const claim = (i: number) => ({
  claim_id: `h-${i}`,
  outcome_type: 'resolved_ticket',
  subject_ref: `T-${i}`,
  occurred_at: '2026-03-02T10:00:00Z',
});

describe('HTTP claims source with a cursor', () => {
  let h: Harness;
  let api: ClaimsServer;
  const tenant = uniqueTenant('http');

  beforeAll(async () => {
    h = await startHarness();
    api = await startClaimsServer();
    await applyExample(h.pool, tenant, {
      claimSources: { 'fin-api': { kind: 'http', url: api.url, pageSize: 3, pagesPerChunk: 1 } },
    });
  });
  afterAll(async () => {
    await api?.close();
    await h?.stop();
  });

  it('pulls every page during the run, retrying through server errors, with bad items quarantined', async () => {
    api.publish([
      claim(1),
      claim(2),
      claim(3),
      claim(4),
      { claim_id: 'h-bad', outcome_type: 'resolved_ticket', occurred_at: '2026-03-02T10:00:00Z' },
      'not an object',
    ]);
    api.failNext(2, 503);
    const s = await runReconciliation(h.client, {
      tenant,
      asOf: new Date('2026-03-03T07:00:00Z'),
      taskQueue: h.taskQueue,
    });
    expect(s.claims).toMatchObject({ received: 6, accepted: 4, redelivered: 0, quarantined: 2 });
    expect(s.outcomes.created).toBe(4);
    expect(await readCursor(h.pool, tenant, 'fin-api')).toBe('6');
    const { rows } = await h.pool.query<{ code: string }>(
      `select code from quarantine where tenant_id = $1 order by code`,
      [tenant],
    );
    expect(rows.map((r) => r.code)).toEqual(['missing_field', 'not_an_object']);
  });

  it('the night runs its activities in the order NIGHT_STEPS gives, the list tests drive nights by', async () => {
    const history = await h.client.workflow.getHandle(runWorkflowId(tenant, '2026-03-03T07:00:00.000Z')).fetchHistory();
    const scheduled = (history.events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
      .filter((n): n is string => !!n);
    // Chunked steps are scheduled again until done: each step once, in order.
    const steps = scheduled.filter((n, i) => n !== scheduled[i - 1]);
    // This contract's records come from files: the night has no API record source to pull.
    expect(steps).toEqual(NIGHT_STEPS.filter((s) => s !== 'pullRecords'));
  });

  it('a page fetched twice (cursor lost after a crash) adds nothing', async () => {
    await h.pool.query(`update claim_cursors set cursor = '3' where tenant_id = $1`, [tenant]);
    const again = await pullClaimPage(h.pool, {
      tenant,
      source: 'fin-api',
      url: api.url,
      pageSize: 3,
      now: new Date(),
    });
    expect(again.import.replayed).toBe(true);
    expect(again.cursor).toBe('6');
    const { rows } = await h.pool.query<{ n: number }>(`select count(*)::int as n from claims where tenant_id = $1`, [
      tenant,
    ]);
    expect(rows[0].n).toBe(4);
  });

  it('the same claims served again under another cursor are redeliveries', async () => {
    api.publish([claim(1), claim(2), claim(5)]);
    const s = await runReconciliation(h.client, {
      tenant,
      asOf: new Date('2026-03-04T07:00:00Z'),
      taskQueue: h.taskQueue,
    });
    expect(s.claims).toMatchObject({ received: 3, accepted: 1, redelivered: 2, quarantined: 0 });
  });

  it('a truncated page is retried, never half-imported', async () => {
    const before = await readCursor(h.pool, tenant, 'fin-api');
    await expect(
      pullClaimPage(h.pool, {
        tenant,
        source: 'fin-api',
        url: api.url.replace('/claims', '/nope'),
        pageSize: 3,
        now: new Date(),
      }),
    ).rejects.toThrow(/answered 404/);
    expect(await readCursor(h.pool, tenant, 'fin-api')).toBe(before);
  });
});
