import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createPool, type Pool } from '../../src/db/pool';
import { importRecordsFile } from '../../src/ingest/files';
import { applyExample, uniqueTenant, writeLines } from './harness';
import { HELPDESK_HEADER } from '../support/fixtures';

// Record versions are written by two statements: one for records that existed before the import
// (ON CONFLICT against the database), one for records new in it (repeats within the file decided
// before the insert, ids drawn as ON CONFLICT draws them). Together they must write exactly what
// one statement over the whole file wrote: the same versions, in the same id order, with the same
// ids. The ids below are offsets from the first version of the tenant; the sequence is shared, so
// nothing else may import while this file runs (integration files run one at a time).

describe('record versions, new and known records in one file', () => {
  let pool: Pool;
  let dir: string;
  beforeAll(async () => {
    pool = createPool(inject('databaseUrl'));
    dir = await mkdtemp(path.join(os.tmpdir(), 'recon-versions-'));
  });
  afterAll(async () => pool?.end());

  const versions = async (tenant: string) => {
    const { rows } = await pool.query<{ v: string }>(
      `select (v.version_id - min(v.version_id) over ())::int || ' ' || r.external_id || '@' ||
              to_char(v.effective_at at time zone 'UTC', 'HH24') || ':' || (v.data->>'status') as v
         from record_versions v join records r using (record_id) where r.tenant_id = $1 order by v.version_id`,
      [tenant],
    );
    return rows.map((r) => r.v);
  };

  it('numbers versions as one ON CONFLICT insert over the whole file would', async () => {
    const tenant = uniqueTenant('imp-versions');
    await applyExample(pool, tenant);
    const row = (id: string, status: string, hour: string) => `${id},${status},,2026-03-01T${hour}:00:00Z,`;
    // All new: T-1's second "new" at 10:00 passes the comparison (it follows "open") but repeats
    // the first: skipped, and it draws an id (3 is missing), as ON CONFLICT's skipped row did.
    const a = await importRecordsFile(pool, {
      tenant,
      source: 'helpdesk',
      file: await writeLines(dir, `${tenant}-1.csv`, [
        HELPDESK_HEADER,
        row('T-1', 'new', '10'),
        row('T-1', 'open', '10'),
        row('T-2', 'solved', '10'),
        row('T-1', 'new', '10'),
        row('T-1', 'closed', '11'),
      ]),
    });
    expect(a).toMatchObject({ received: 5, accepted: 4, redelivered: 1, quarantined: 0 });
    expect(await versions(tenant)).toEqual(['0 T-1@10:new', '1 T-1@10:open', '3 T-1@11:closed', '4 T-2@10:solved']);

    // Known T-1 and new T-4 in one file. T-1's "new" at 10:00 differs from the version in effect
    // then ("open", the later of that time) but repeats the older one: skipped, id 5 drawn. The
    // known record's versions come first (lower record id), then T-4's: a repeat right after
    // itself is no change (no id), a repeat after "open" is skipped with id 9 drawn.
    const b = await importRecordsFile(pool, {
      tenant,
      source: 'helpdesk',
      file: await writeLines(dir, `${tenant}-2.csv`, [
        HELPDESK_HEADER,
        row('T-4', 'new', '10'),
        row('T-1', 'new', '10'),
        row('T-1', 'reopened', '12'),
        row('T-4', 'new', '10'),
        row('T-4', 'open', '10'),
        row('T-4', 'new', '10'),
      ]),
    });
    expect(b).toMatchObject({ received: 6, accepted: 3, redelivered: 3, quarantined: 0 });
    const c = await importRecordsFile(pool, {
      tenant,
      source: 'helpdesk',
      file: await writeLines(dir, `${tenant}-3.csv`, [HELPDESK_HEADER, row('T-5', 'new', '10')]),
    });
    expect(c).toMatchObject({ received: 1, accepted: 1, redelivered: 0 });
    expect(await versions(tenant)).toEqual([
      '0 T-1@10:new',
      '1 T-1@10:open',
      '3 T-1@11:closed',
      '4 T-2@10:solved',
      '6 T-1@12:reopened',
      '7 T-4@10:new',
      '8 T-4@10:open',
      '10 T-5@10:new',
    ]);

    // Mostly known records and one new: the one statement over the whole file, as before.
    const d = await importRecordsFile(pool, {
      tenant,
      source: 'helpdesk',
      file: await writeLines(dir, `${tenant}-4.csv`, [
        HELPDESK_HEADER,
        row('T-6', 'new', '10'),
        row('T-1', 'closed', '11'),
        row('T-2', 'solved', '10'),
        row('T-6', 'open', '10'),
        row('T-6', 'new', '10'),
      ]),
    });
    expect(d).toMatchObject({ received: 5, accepted: 2, redelivered: 3 });
    await importRecordsFile(pool, {
      tenant,
      source: 'helpdesk',
      file: await writeLines(dir, `${tenant}-5.csv`, [HELPDESK_HEADER, row('T-7', 'new', '10')]),
    });
    expect((await versions(tenant)).slice(8)).toEqual(['11 T-6@10:new', '12 T-6@10:open', '14 T-7@10:new']);

    // The same rows again under another name: nothing new, whichever statement they go through.
    const again = await importRecordsFile(pool, {
      tenant,
      source: 'helpdesk',
      file: await writeLines(dir, `${tenant}-2-again.csv`, [
        HELPDESK_HEADER,
        row('T-4', 'new', '10'),
        row('T-1', 'new', '10'),
        row('T-1', 'reopened', '12'),
        row('T-4', 'open', '10'),
        row('T-4', 'new', '10'),
      ]),
    });
    expect(again).toMatchObject({ received: 5, accepted: 0, redelivered: 5, replayed: false });
    expect(await versions(tenant)).toHaveLength(11);
  });

  it('a record new in the file gets the versions it would get split over two files', async () => {
    const tenant = uniqueTenant('imp-versions-split');
    const other = uniqueTenant('imp-versions-whole');
    await applyExample(pool, tenant);
    await applyExample(pool, other);
    const rows = [
      'T-1,new,,2026-03-01T10:00:00Z,',
      'T-1,solved,2026-03-01T12:00:00Z,2026-03-01T12:00:00Z,5',
      'T-1,open,,2026-03-01T11:00:00Z,',
      'T-2,open,,2026-03-01T09:00:00Z,',
      'T-2,open,,2026-03-01T09:00:00Z,',
      'T-1,open,,2026-03-01T11:00:00Z,',
    ];
    await importRecordsFile(pool, {
      tenant: other,
      source: 'helpdesk',
      file: await writeLines(dir, `${other}.csv`, [HELPDESK_HEADER, ...rows]),
    });
    // Later rows first: the first file makes T-1 and T-2 known, the second compares with them.
    await importRecordsFile(pool, {
      tenant,
      source: 'helpdesk',
      file: await writeLines(dir, `${tenant}-b.csv`, [HELPDESK_HEADER, ...rows.slice(3)]),
    });
    await importRecordsFile(pool, {
      tenant,
      source: 'helpdesk',
      file: await writeLines(dir, `${tenant}-a.csv`, [HELPDESK_HEADER, ...rows.slice(0, 3)]),
    });
    const content = async (t: string) => (await versions(t)).map((v) => v.replace(/^\d+ /, '')).sort();
    expect(await content(tenant)).toEqual(await content(other));
    expect(await content(other)).toEqual(['T-1@10:new', 'T-1@11:open', 'T-1@12:solved', 'T-2@09:open']);
  });
});
