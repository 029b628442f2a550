import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createPool, type Pool } from '../../src/db/pool';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { applyExample, loadExampleContract, uniqueTenant, writeLines } from './harness';
import { HELPDESK_HEADER } from '../support/fixtures';

// What every import promises, row by row, on the real database: each row ends as exactly one of
// accepted, redelivered or quarantined; the same file again changes nothing.

const claim = (id: string, subject: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    claim_id: id,
    outcome_type: 'resolved_ticket',
    subject_ref: subject,
    occurred_at: '2026-03-02T10:00:00Z',
    ...extra,
  });
const retract = (id: string, at: string) => JSON.stringify({ claim_id: id, retracted: true, retracted_at: at });

describe('imports on real Postgres', () => {
  let pool: Pool;
  let dir: string;
  beforeAll(async () => {
    pool = createPool(inject('databaseUrl'));
    dir = await mkdtemp(path.join(os.tmpdir(), 'recon-imports-'));
  });
  afterAll(async () => pool?.end());

  const claimsOf = async (tenant: string) => {
    const { rows } = await pool.query(
      `select claim_id, subject_ref, retracted_at is not null as retracted, to_char(retracted_at at time zone 'UTC', 'HH24:MI') as at
         from claims where tenant_id = $1 order by claim_id`,
      [tenant],
    );
    return rows;
  };
  const quarantineOf = async (tenant: string) => {
    const { rows } = await pool.query(
      'select origin, line, code from quarantine where tenant_id = $1 order by origin, line',
      [tenant],
    );
    return rows.map((r) => `${r.origin}:${r.line}:${r.code}`);
  };

  it('claims: redeliveries, conflicts and retractions, each row counted once', async () => {
    const tenant = uniqueTenant('imp-claims');
    await applyExample(pool, tenant);
    const first = await writeLines(dir, `${tenant}-1.jsonl`, [
      claim('c1', 'T-1'),
      claim('c1', 'T-1'), // same content: redelivered
      claim('c1', 'T-9'), // same id, other content: quarantined, the first stays
      retract('c2', '2026-03-03T01:00:00Z'), // retracts c2, whose content comes on the next line
      claim('c2', 'T-2'),
      retract('c3', '2026-03-03T02:00:00Z'), // never received: quarantined
      claim('c4', 'T-4', { retracted: true, retracted_at: '2026-03-03T03:00:00Z' }), // new and retracted at once
      retract('c4', '2026-03-03T04:00:00Z'), // already retracted: redelivered
      '{"claim_id": "broken", ',
      claim('c5', 'T-5'),
      retract('c5', '2026-03-03T05:00:00Z'), // the first retraction takes effect
      retract('c5', '2026-03-03T06:00:00Z'), // later ones are redeliveries
    ]);
    const a = await importClaimsFile(pool, { tenant, file: first, now: new Date('2026-03-03T00:00:00Z') });
    expect(a).toMatchObject({ received: 12, accepted: 6, redelivered: 3, quarantined: 3, replayed: false });
    expect(await claimsOf(tenant)).toEqual([
      { claim_id: 'c1', subject_ref: 'T-1', retracted: false, at: null },
      { claim_id: 'c2', subject_ref: 'T-2', retracted: true, at: '01:00' },
      { claim_id: 'c4', subject_ref: 'T-4', retracted: true, at: '03:00' },
      { claim_id: 'c5', subject_ref: 'T-5', retracted: true, at: '05:00' },
    ]);
    const name = path.basename(first);
    expect(await quarantineOf(tenant)).toEqual([
      `${name}:3:conflicting_redelivery`,
      `${name}:6:unknown_claim`,
      `${name}:9:bad_json`,
    ]);
    const {
      rows: [conflict],
    } = await pool.query(`select reason, raw from quarantine where tenant_id = $1 and line = 3`, [tenant]);
    expect(conflict.reason).toMatch(/^claim c1 was delivered before with a different/);
    expect(JSON.parse(conflict.raw)).toMatchObject({ claim_id: 'c1', subject_ref: 'T-9' });

    // The same bytes again: the earlier import's counts, nothing new anywhere.
    const again = await importClaimsFile(pool, { tenant, file: first });
    expect(again).toMatchObject({ received: 12, accepted: 6, redelivered: 3, quarantined: 3, replayed: true });
    expect(await quarantineOf(tenant)).toHaveLength(3);

    // A later file compares with what the database holds.
    const second = await writeLines(dir, `${tenant}-2.jsonl`, [
      claim('c1', 'T-1'),
      claim('c1', 'T-8'),
      retract('c1', '2026-03-04T01:00:00Z'),
      retract('c2', '2026-03-04T02:00:00Z'),
      claim('c6', 'T-6'),
    ]);
    const b = await importClaimsFile(pool, { tenant, file: second });
    expect(b).toMatchObject({ received: 5, accepted: 2, redelivered: 2, quarantined: 1 });
    expect((await claimsOf(tenant)).map((c) => `${c.claim_id}:${c.at}`)).toEqual([
      'c1:01:00',
      'c2:01:00',
      'c4:03:00',
      'c5:05:00',
      'c6:null',
    ]);
  });

  it('records: each row compares with the row before it in the file, the first with the database', async () => {
    const tenant = uniqueTenant('imp-records');
    await applyExample(pool, tenant);
    const versions = async () => {
      const { rows } = await pool.query(
        `select r.external_id || '@' || to_char(v.effective_at at time zone 'UTC', 'DD HH24:MI') || ':' || (v.data->>'status') as v
           from record_versions v join records r using (record_id) where r.tenant_id = $1 order by r.external_id, v.effective_at, v.version_id`,
        [tenant],
      );
      return rows.map((r) => r.v);
    };
    const first = await writeLines(dir, `${tenant}-1.csv`, [
      HELPDESK_HEADER,
      'T-1,new,,2026-03-01T10:00:00Z,',
      'T-2,solved,2026-03-01T10:00:00Z,2026-03-01T10:00:00Z,5',
      'T-1,open,,2026-03-01T11:00:00Z,',
      'T-1,new,,2026-03-01T10:00:00Z,', // identical to the row before it in time order: redelivered
      'T-1,open,,2026-03-01T11:00:00Z,', // the same again
      'T-3,solved,not a date,2026-03-01T10:00:00Z,',
    ]);
    expect(await importRecordsFile(pool, { tenant, source: 'helpdesk', file: first })).toMatchObject({
      received: 6,
      accepted: 3,
      redelivered: 2,
      quarantined: 1,
    });
    expect(await versions()).toEqual(['T-1@01 10:00:new', 'T-1@01 11:00:open', 'T-2@01 10:00:solved']);

    const second = await writeLines(dir, `${tenant}-2.csv`, [
      HELPDESK_HEADER,
      'T-1,open,,2026-03-01T11:00:00Z,', // the version in effect in the database: redelivered
      'T-1,solved,2026-03-01T12:00:00Z,2026-03-01T12:00:00Z,4',
      'T-2,closed,2026-03-01T10:00:00Z,2026-03-01T13:00:00Z,5',
      'T-2,closed,2026-03-01T10:00:00Z,2026-03-01T13:00:00Z,5',
    ]);
    expect(await importRecordsFile(pool, { tenant, source: 'helpdesk', file: second })).toMatchObject({
      received: 4,
      accepted: 2,
      redelivered: 2,
      quarantined: 0,
    });
    expect(await versions()).toEqual([
      'T-1@01 10:00:new',
      'T-1@01 11:00:open',
      'T-1@01 12:00:solved',
      'T-2@01 10:00:solved',
      'T-2@01 13:00:closed',
    ]);
    expect(await importRecordsFile(pool, { tenant, source: 'helpdesk', file: second })).toMatchObject({
      received: 4,
      accepted: 2,
      replayed: true,
    });
    expect(await versions()).toHaveLength(5);
  });

  it('records without an update time: versions take the import time, and A, B, A compares each with the one before', async () => {
    const tenant = uniqueTenant('imp-noupdate');
    const example = await loadExampleContract(tenant);
    const { updatedAtField: _dropped, ...helpdesk } = example.recordSources.helpdesk;
    await applyExample(pool, tenant, {
      recordSources: { helpdesk: helpdesk as typeof example.recordSources.helpdesk },
    });
    const rows = (statuses: string[]) => [HELPDESK_HEADER, ...statuses.map((s) => `T-1,${s},,2026-03-01T10:00:00Z,`)];
    const day1 = new Date('2026-03-02T00:00:00Z');
    const a = await importRecordsFile(pool, {
      tenant,
      source: 'helpdesk',
      file: await writeLines(dir, `${tenant}-1.csv`, rows(['new', 'open', 'new'])),
      now: day1,
    });
    // The third row is a change from the second but the same version as the first at the same time.
    expect(a).toMatchObject({ received: 3, accepted: 2, redelivered: 1 });
    // The next day "new" differs from the latest version of day 1 ("open", the later row): a new version.
    const b = await importRecordsFile(pool, {
      tenant,
      source: 'helpdesk',
      file: await writeLines(dir, `${tenant}-2.csv`, rows(['new', 'new'])),
      now: new Date('2026-03-03T00:00:00Z'),
    });
    expect(b).toMatchObject({ received: 2, accepted: 1, redelivered: 1 });
    const { rows: v } = await pool.query(
      `select to_char(v.effective_at at time zone 'UTC', 'DD') || ':' || (v.data->>'status') as v
         from record_versions v join records r using (record_id) where r.tenant_id = $1 order by v.effective_at, v.version_id`,
      [tenant],
    );
    expect(v.map((r) => r.v)).toEqual(['02:new', '02:open', '03:new']);
  });

  it('text with tabs, line ends and backslashes arrives exactly as sent', async () => {
    const tenant = uniqueTenant('imp-text');
    await applyExample(pool, tenant);
    const attributes = { note: 'tab\there\\back\nline\r\nend', path: 'C:\\new\\table', empty: '', quote: '"\\N"' };
    // Control characters are refused in ids and subjects (one-line reasons), so the tab travels in attributes.
    const file = await writeLines(dir, `${tenant}.jsonl`, [claim('c\\1', 'T\\1 2', { attributes })]);
    expect(await importClaimsFile(pool, { tenant, file })).toMatchObject({ received: 1, accepted: 1 });
    const { rows } = await pool.query('select claim_id, subject_ref, attributes from claims where tenant_id = $1', [
      tenant,
    ]);
    expect(rows).toEqual([{ claim_id: 'c\\1', subject_ref: 'T\\1 2', attributes }]);
  });

  it('a file refused as a whole leaves nothing behind and the connection serves the next import', async () => {
    const tenant = uniqueTenant('imp-refused');
    await applyExample(pool, tenant);
    const noId = await writeLines(dir, `${tenant}.csv`, ['outcome_type,subject_ref', 'resolved_ticket,T-1']);
    for (let i = 0; i < 6; i++) {
      await expect(importClaimsFile(pool, { tenant, file: noId })).rejects.toMatchObject({ code: expect.any(String) });
    }
    const {
      rows: [n],
    } = await pool.query<{ n: number }>('select count(*)::int as n from imports where tenant_id = $1', [tenant]);
    expect(n.n).toBe(0);
    const ok = await importClaimsFile(pool, {
      tenant,
      file: await writeLines(dir, `${tenant}.jsonl`, [claim('c1', 'T-1')]),
    });
    expect(ok).toMatchObject({ received: 1, accepted: 1 });
  });
});
