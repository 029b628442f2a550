import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createPool, type Pool } from '../../src/db/pool';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import { applyExample, uniqueTenant, writeLines } from './harness';
import { HELPDESK_HEADER } from '../support/fixtures';

// Imports of one tenant's claims, or of one tenant's record source, run one at a time (an advisory
// lock): their inserts rely on it instead of ON CONFLICT. Two at once must end as the same two
// one after the other would, in either order, and never fail on a duplicate key.

const claim = (id: string, subject: string) =>
  JSON.stringify({
    claim_id: id,
    outcome_type: 'resolved_ticket',
    subject_ref: subject,
    occurred_at: '2026-03-02T10:00:00Z',
  });
const retract = (id: string, at: string) => JSON.stringify({ claim_id: id, retracted: true, retracted_at: at });

describe('imports of the same tenant at once', () => {
  let pool: Pool;
  let dir: string;
  beforeAll(async () => {
    pool = createPool(inject('databaseUrl'));
    dir = await mkdtemp(path.join(os.tmpdir(), 'recon-imports-concurrent-'));
  });
  afterAll(async () => pool?.end());

  it('claims: two files with the same new claims, each claim stored once', async () => {
    const tenant = uniqueTenant('imp-conc-claims');
    await applyExample(pool, tenant);
    const ids = Array.from({ length: 300 }, (_, i) => `c${i}`);
    const a = await writeLines(dir, `${tenant}-a.jsonl`, [
      ...ids.map((id) => claim(id, `T-${id}`)),
      retract('c1', '2026-03-03T01:00:00Z'),
    ]);
    const b = await writeLines(dir, `${tenant}-b.jsonl`, [
      ...ids.map((id) => claim(id, `T-${id}`)),
      claim('c-only-b', 'T-b'),
      retract('c2', '2026-03-03T02:00:00Z'),
    ]);
    const [ra, rb] = await Promise.all([
      importClaimsFile(pool, { tenant, file: a, now: new Date('2026-03-03T00:00:00Z') }),
      importClaimsFile(pool, { tenant, file: b, now: new Date('2026-03-03T00:00:00Z') }),
    ]);
    // Whichever came first took the 300 claims; the other redelivered them. Both retractions apply.
    expect(ra.accepted + rb.accepted).toBe(300 + 1 + 2);
    expect(ra.redelivered + rb.redelivered).toBe(300);
    expect(ra.quarantined + rb.quarantined).toBe(0);
    const { rows } = await pool.query<{ n: number; retracted: string[] }>(
      `select count(*)::int as n, array_agg(claim_id order by claim_id) filter (where retracted_at is not null) as retracted
         from claims where tenant_id = $1`,
      [tenant],
    );
    expect(rows[0]).toEqual({ n: 301, retracted: ['c1', 'c2'] });
  });

  it('records: two files of one source with the same new records, each version stored once', async () => {
    const tenant = uniqueTenant('imp-conc-records');
    await applyExample(pool, tenant);
    const tickets = Array.from({ length: 300 }, (_, i) => `T-${i}`);
    const a = await writeLines(dir, `${tenant}-a.csv`, [
      HELPDESK_HEADER,
      ...tickets.map((t) => `${t},new,,2026-03-01T10:00:00Z,`),
    ]);
    const b = await writeLines(dir, `${tenant}-b.csv`, [
      HELPDESK_HEADER,
      ...tickets.map((t) => `${t},new,,2026-03-01T10:00:00Z,`),
      ...tickets.map((t) => `${t},solved,2026-03-01T11:00:00Z,2026-03-01T11:00:00Z,5`),
    ]);
    const [ra, rb] = await Promise.all([
      importRecordsFile(pool, { tenant, source: 'helpdesk', file: a }),
      importRecordsFile(pool, { tenant, source: 'helpdesk', file: b }),
    ]);
    expect(ra.accepted + rb.accepted).toBe(600);
    expect(ra.redelivered + rb.redelivered).toBe(300);
    const { rows } = await pool.query<{ records: number; versions: number }>(
      `select count(distinct r.record_id)::int as records, count(*)::int as versions
         from records r join record_versions v using (record_id) where r.tenant_id = $1`,
      [tenant],
    );
    expect(rows[0]).toEqual({ records: 300, versions: 600 });
  });
});
