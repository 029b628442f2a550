import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readContractFile } from '../../src/cli/commands/contract';
import { writeExport } from '../../src/export/export';
import { importClaimsFile, importRecordsFile } from '../../src/ingest/files';
import type { ImportSummary } from '../../src/ingest/staging';
import { runReconciliation } from '../../src/temporal/run-client';
import { writeHugeClaimsCsv, writeHugeClaimsJsonl } from '../fixtures/bad/huge-line';
import { applyExample, startHarness, type Harness } from './harness';

// The hostile-input corpus (DESIGN 6, issue 6 item 2): each file goes through the product's own
// import functions into the real database. Every refused row must be in quarantine with one line
// naming file, row and field; every good row must land; nothing may be dropped.

const BAD = fileURLToPath(new URL('../fixtures/bad/', import.meta.url));
const fixture = (name: string) => path.join(BAD, name);

interface Imported {
  summary: ImportSummary;
  /** `file line L (row R): code: reason`, in row order. */
  quarantine: string[];
  /** What this import added: claim ids, or record external ids with a new version. */
  landed: string[];
}

describe('hostile input corpus on real Postgres', () => {
  let h: Harness;
  // Fixed, because claims-tenants.csv names it; the database is fresh for every test run.
  const tenant = 'hostile';

  beforeAll(async () => {
    h = await startHarness();
    await applyExample(h.pool, tenant);
  });
  afterAll(async () => h?.stop());

  async function checked(summary: ImportSummary, kind: 'claims' | 'records'): Promise<Imported> {
    const { received, accepted, redelivered, quarantined } = summary;
    expect(received).toBe(accepted + redelivered + quarantined);
    // The counts stored with the import agree with what the caller was told.
    const { rows: stored } = await h.pool.query(
      'select received, accepted, redelivered, quarantined from imports where import_id = $1',
      [summary.importId],
    );
    expect(stored[0]).toEqual({ received, accepted, redelivered, quarantined });
    const { rows: q } = await h.pool.query(
      'select origin, line, row_number, code, reason from quarantine where import_id = $1 order by row_number',
      [summary.importId],
    );
    expect(q).toHaveLength(quarantined);
    const landed =
      kind === 'claims'
        ? (
            await h.pool.query(
              'select claim_id as id from claims where tenant_id = $1 and import_id = $2 order by claim_id',
              [tenant, summary.importId],
            )
          ).rows
        : (
            await h.pool.query(
              'select distinct r.external_id as id from record_versions v join records r using (record_id) where v.import_id = $1 order by 1',
              [summary.importId],
            )
          ).rows;
    return {
      summary,
      quarantine: q.map((r) => `${r.origin} line ${r.line} (row ${r.row_number}): ${r.code}: ${r.reason}`),
      landed: landed.map((r) => r.id as string),
    };
  }

  const claims = async (file: string) => checked(await importClaimsFile(h.pool, { tenant, file }), 'claims');
  const records = async (file: string) =>
    checked(await importRecordsFile(h.pool, { tenant, source: 'helpdesk', file }), 'records');
  const counts = (i: Imported) => {
    const { received, accepted, redelivered, quarantined } = i.summary;
    return { received, accepted, redelivered, quarantined };
  };

  it('reads a BOM and CRLF line ends, with a quoted newline inside a cell', async () => {
    const r = await claims(fixture('claims-bom-crlf.csv'));
    expect(counts(r)).toEqual({ received: 3, accepted: 3, redelivered: 0, quarantined: 0 });
    expect(r.landed).toEqual(['bom-1', 'bom-2', 'bom-3']);
    const { rows } = await h.pool.query(
      `select claim_id, occurred_at, attributes from claims where tenant_id = $1 and claim_id like 'bom-%' order by claim_id`,
      [tenant],
    );
    // No stray CR in any value; the BOM did not become part of the first column's name.
    expect(rows.map((x) => [x.claim_id, x.occurred_at.toISOString(), x.attributes])).toEqual([
      ['bom-1', '2026-03-01T10:00:00.000Z', {}],
      ['bom-2', '2026-03-01T11:00:00.000Z', { note: 'two lines follow', lines: 2 }],
      ['bom-3', '2026-03-01T11:00:00.000Z', { agent: 'fin, v2' }],
    ]);

    const rec = await records(fixture('records-bom-crlf.csv'));
    expect(counts(rec)).toEqual({ received: 3, accepted: 3, redelivered: 0, quarantined: 0 });
    expect(rec.landed).toEqual(['T-100', 'T-101', 'T-102']);
    const { rows: v } = await h.pool.query(
      `select r.external_id, v.data from record_versions v join records r using (record_id) where v.import_id = $1 order by r.external_id`,
      [rec.summary.importId],
    );
    // "2026-03-01 12:00" has no offset: read in the tenant's zone (America/New_York).
    expect(v[0].data).toEqual({
      ticket_id: 'T-100',
      status: 'solved',
      solved_at: '2026-03-01T17:00:00.000Z',
      updated_at: '2026-03-01T17:00:00.000Z',
      csat: 5,
    });
    expect(v[2].data).toEqual({
      ticket_id: 'T-102',
      status: 'open',
      solved_at: null,
      updated_at: '2026-03-01T13:00:00.000Z',
      csat: null,
    });
  });

  it('quarantines broken quoting and ragged rows one by one', async () => {
    const r = await claims(fixture('claims-quoting.csv'));
    expect(counts(r)).toEqual({ received: 7, accepted: 1, redelivered: 0, quarantined: 6 });
    expect(r.landed).toEqual(['q-6']);
    expect(r.quarantine).toEqual([
      'claims-quoting.csv line 2 (row 1): invalid_field: field attributes: not valid JSON (Bad control character in string literal in JSON at position 28)',
      'claims-quoting.csv line 5 (row 2): bad_csv: unexpected text after the closing quote of field 5',
      'claims-quoting.csv line 6 (row 3): bad_csv: quote inside unquoted field 3',
      'claims-quoting.csv line 7 (row 4): extra_columns: row has 6 cells, header has 5',
      'claims-quoting.csv line 8 (row 5): missing_columns: row has 3 cells, header has 5',
      'claims-quoting.csv line 10 (row 7): bad_csv: quoted field is never closed, so the row runs to the end of the file (74 bytes)',
    ]);
  });

  it('keeps every reason on one line: control characters are refused in ids and escaped in quoted values', async () => {
    const r = await claims(fixture('claims-control-chars.csv'));
    expect(counts(r)).toEqual({ received: 5, accepted: 2, redelivered: 0, quarantined: 3 });
    expect(r.landed).toEqual(['cc-1', 'cc-5']);
    expect(r.quarantine).toEqual([
      'claims-control-chars.csv line 3 (row 2): invalid_field: field subject_ref: contains a control character (a line break, tab or escape), got text "T-601\\u001b[2J\\u001b[31mPAID"',
      'claims-control-chars.csv line 4 (row 3): bad_timestamp: field occurred_at: unreadable timestamp "2026-03-04\\u000a09:00:00Z" (expected ISO 8601, e.g. 2026-03-01T10:00:00Z)',
      'claims-control-chars.csv line 6 (row 4): invalid_field: field claim_id: contains a control character (a line break, tab or escape), got text "cc-4\\ttab"',
    ]);
    for (const line of r.quarantine) expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });

  it('refuses a whole file with a duplicated, missing or absent header, naming it, and imports nothing', async () => {
    const refusals: Array<[string, 'claims' | 'records', string, string]> = [
      [
        'claims-duplicate-header.csv',
        'claims',
        'duplicate_header',
        ' line 1: duplicate header "claim_id" (columns 1 and 5)',
      ],
      // A first data row read as the header lacks every column a claim needs.
      [
        'claims-missing-header.csv',
        'claims',
        'missing_columns',
        ' line 1: header lacks required columns "claim_id", "outcome_type", "subject_ref", "occurred_at"',
      ],
      ['claims-empty.csv', 'claims', 'missing_header', ': file is empty, expected a CSV header row'],
      [
        'records-duplicate-header.csv',
        'records',
        'duplicate_header',
        ' line 1: duplicate header "Status" (columns 2 and 6)',
      ],
      // A mapped column absent from the file would otherwise read as empty in every row.
      ['records-missing-column.csv', 'records', 'missing_columns', ' line 1: header lacks required column "Solved at"'],
    ];
    for (const [name, kind, code, message] of refusals) {
      const file = fixture(name);
      const run =
        kind === 'claims'
          ? importClaimsFile(h.pool, { tenant, file })
          : importRecordsFile(h.pool, { tenant, source: 'helpdesk', file });
      await expect(run, name).rejects.toMatchObject({ code, message: `${file}${message}` });
      const { rows } = await h.pool.query(
        'select count(*)::int as n from imports where tenant_id = $1 and origin = $2',
        [tenant, name],
      );
      expect(rows[0].n, name).toBe(0);
    }
  });

  it('quarantines wrong types and shapes, naming the field', async () => {
    const r = await claims(fixture('claims-wrong-types.jsonl'));
    expect(counts(r)).toEqual({ received: 11, accepted: 2, redelivered: 0, quarantined: 9 });
    expect(r.landed).toEqual(['wt-1', 'wt-11']);
    expect(r.quarantine).toEqual([
      'claims-wrong-types.jsonl line 2 (row 2): invalid_field: field claim_id: expected text, got the number 141',
      'claims-wrong-types.jsonl line 3 (row 3): invalid_field: field occurred_at: expected an ISO 8601 time as text, got the number 1772614800',
      'claims-wrong-types.jsonl line 4 (row 4): invalid_field: field attributes: expected a JSON object, got a list ["email"]',
      'claims-wrong-types.jsonl line 5 (row 5): invalid_field: field retracted: expected true or false, got text "maybe"',
      'claims-wrong-types.jsonl line 6 (row 6): missing_field: field subject_ref: required',
      'claims-wrong-types.jsonl line 7 (row 7): missing_field: field claim_id: required',
      'claims-wrong-types.jsonl line 8 (row 8): not_an_object: line holds a JSON array, expected an object',
      'claims-wrong-types.jsonl line 9 (row 9): bad_json: invalid JSON: Expected double-quoted property name in JSON at position 118',
      'claims-wrong-types.jsonl line 10 (row 10): not_an_object: line holds a JSON string, expected an object',
    ]);

    const rec = await records(fixture('records-wrong-types.csv'));
    expect(counts(rec)).toEqual({ received: 12, accepted: 3, redelivered: 0, quarantined: 9 });
    // T-305: a wall time in the spring-forward gap moves forward; T-307: the last second of 9999.
    expect(rec.landed).toEqual(['T-300', 'T-305', 'T-307']);
    expect(rec.quarantine).toEqual([
      'records-wrong-types.csv line 3 (row 2): invalid_field: field csat: expected a number, got "five"',
      'records-wrong-types.csv line 4 (row 3): invalid_field: field csat: expected a number, got "0x10"',
      'records-wrong-types.csv line 5 (row 4): bad_timestamp: field solved_at: unreadable timestamp "31/12/2026" (expected ISO 8601, e.g. 2026-03-01T10:00:00Z)',
      'records-wrong-types.csv line 6 (row 5): bad_timestamp: field updated_at: unreadable timestamp "02/03/2026 10:00" (expected ISO 8601, e.g. 2026-03-01T10:00:00Z)',
      'records-wrong-types.csv line 8 (row 7): timestamp_out_of_range: field solved_at: timestamp "1900-01-01T00:00:00Z" is outside the supported years 1970-9999',
      'records-wrong-types.csv line 10 (row 9): timestamp_out_of_range: field updated_at: timestamp "12026-03-02T10:00:00Z" is outside the supported years 1970-9999',
      'records-wrong-types.csv line 11 (row 10): missing_field: field ticket_id (column "Ticket ID"): required',
      'records-wrong-types.csv line 12 (row 11): invalid_field: field csat: expected a number, got "1e400"',
      'records-wrong-types.csv line 13 (row 12): invalid_field: field csat: expected a number, got "4,5"',
    ]);
    const { rows } = await h.pool.query(
      `select r.external_id, v.data->>'solved_at' as solved_at from record_versions v join records r using (record_id) where v.import_id = $1 and r.external_id = 'T-305'`,
      [rec.summary.importId],
    );
    expect(rows[0].solved_at).toBe('2026-03-08T07:30:00.000Z'); // 03:30 EDT
  });

  it('quarantines bad, ambiguous and out-of-range dates, and reads the good ones exactly', async () => {
    const r = await claims(fixture('claims-dates.csv'));
    expect(counts(r)).toEqual({ received: 16, accepted: 4, redelivered: 0, quarantined: 12 });
    expect(r.landed).toEqual(['d-1', 'd-12', 'd-13', 'd-15']);
    const iso = '(expected ISO 8601, e.g. 2026-03-01T10:00:00Z)';
    expect(r.quarantine).toEqual([
      `claims-dates.csv line 3 (row 2): bad_timestamp: field occurred_at: unreadable timestamp "2026-02-30T09:00:00Z" ${iso}`,
      `claims-dates.csv line 4 (row 3): bad_timestamp: field occurred_at: unreadable timestamp "03/04/2026" ${iso}`,
      `claims-dates.csv line 5 (row 4): bad_timestamp: field occurred_at: unreadable timestamp "04.03.2026 09:00" ${iso}`,
      `claims-dates.csv line 6 (row 5): bad_timestamp: field occurred_at: unreadable timestamp "yesterday" ${iso}`,
      `claims-dates.csv line 7 (row 6): bad_timestamp: field occurred_at: unreadable timestamp "2026-03-05T24:00:00Z" ${iso}`,
      `claims-dates.csv line 8 (row 7): bad_timestamp: field occurred_at: unreadable timestamp "2026-03-05T23:59:60Z" ${iso}`,
      `claims-dates.csv line 9 (row 8): bad_timestamp: field occurred_at: unreadable timestamp "2026-03-05T09:00:00+25:00" ${iso}`,
      'claims-dates.csv line 10 (row 9): timestamp_out_of_range: field occurred_at: timestamp "1969-12-31T23:59:59Z" is outside the supported years 1970-9999',
      'claims-dates.csv line 11 (row 10): timestamp_out_of_range: field occurred_at: timestamp "10000-01-01T00:00:00Z" is outside the supported years 1970-9999',
      'claims-dates.csv line 12 (row 11): timestamp_out_of_range: field occurred_at: timestamp "0000-01-01" is outside the supported years 1970-9999',
      // Written in 9999, but in the year 10000 in UTC: once it failed the whole file in PostgreSQL.
      'claims-dates.csv line 15 (row 14): timestamp_out_of_range: field occurred_at: timestamp "9999-12-31T23:30:00-05:00" is after the end of year 9999 in UTC',
      // A valid time, but decades after the import: quarantined rather than kept waiting forever.
      expect.stringMatching(
        /^claims-dates\.csv line 17 \(row 16\): occurred_in_future: field occurred_at: 2099-01-01T00:00:00\.000Z is more than a day after this import's time \(\S+\); fix the claim's time \(and its zone\) and send it again$/,
      ),
    ]);
    const { rows } = await h.pool.query(
      `select claim_id, occurred_at from claims where tenant_id = $1 and import_id = $2 order by claim_id`,
      [tenant, r.summary.importId],
    );
    expect(rows.map((x) => [x.claim_id, x.occurred_at.toISOString()])).toEqual([
      ['d-1', '2026-03-05T09:00:00.000Z'],
      ['d-12', '2026-03-05T00:00:00.000Z'],
      ['d-13', '2026-03-05T07:00:00.123Z'],
      ['d-15', '1969-12-31T23:30:00.000Z'],
    ]);
  });

  it('quarantines only the rows with invalid UTF-8 or a NUL character', async () => {
    const csv = await claims(fixture('claims-invalid-utf8.csv'));
    expect(counts(csv)).toEqual({ received: 5, accepted: 3, redelivered: 0, quarantined: 2 });
    expect(csv.landed).toEqual(['u-1', 'u-3', 'u-5']);
    expect(csv.quarantine).toEqual([
      'claims-invalid-utf8.csv line 3 (row 2): invalid_utf8: row is not valid UTF-8 (first undecodable byte near character 25)',
      'claims-invalid-utf8.csv line 5 (row 4): invalid_utf8: row is not valid UTF-8 (first undecodable byte near character 30)',
    ]);
    const { rows } = await h.pool.query(`select subject_ref from claims where tenant_id = $1 and claim_id = 'u-3'`, [
      tenant,
    ]);
    expect(rows[0].subject_ref).toBe('T-182 café');

    // A NUL (U+0000) cannot be stored in PostgreSQL text: once it failed the whole file.
    const jsonl = await claims(fixture('claims-invalid-utf8.jsonl'));
    expect(counts(jsonl)).toEqual({ received: 5, accepted: 2, redelivered: 0, quarantined: 3 });
    expect(jsonl.landed).toEqual(['uj-1', 'uj-5']);
    expect(jsonl.quarantine).toEqual([
      'claims-invalid-utf8.jsonl line 2 (row 2): invalid_utf8: row is not valid UTF-8 (first undecodable byte near character 77)',
      'claims-invalid-utf8.jsonl line 3 (row 3): nul_character: field subject_ref: contains a NUL character (U+0000), which cannot be stored',
      'claims-invalid-utf8.jsonl line 4 (row 4): nul_character: field attributes.x: contains a NUL character (U+0000), which cannot be stored',
    ]);

    const rec = await records(fixture('records-invalid-utf8.csv'));
    expect(counts(rec)).toEqual({ received: 4, accepted: 2, redelivered: 0, quarantined: 2 });
    expect(rec.landed).toEqual(['T-340', 'T-343']);
    expect(rec.quarantine).toEqual([
      'records-invalid-utf8.csv line 3 (row 2): invalid_utf8: row is not valid UTF-8 (first undecodable byte near character 61)',
      'records-invalid-utf8.csv line 4 (row 3): nul_character: column "Status": contains a NUL character (U+0000), which cannot be stored',
    ]);
    // The raw row is kept for support, with the NUL made visible.
    const { rows: raw } = await h.pool.query('select raw from quarantine where import_id = $1 and row_number = 3', [
      rec.summary.importId,
    ]);
    expect(raw[0].raw).toBe('T-342,sol\\0ved,2026-03-02T10:00:00Z,2026-03-02T10:00:00Z,5,nul byte in status');
  });

  it('quarantines a 10 MB line and reads the rows around it (CSV and JSONL)', async () => {
    for (const make of [writeHugeClaimsCsv, writeHugeClaimsJsonl]) {
      const { file, rowBytes } = await make(h.dir);
      const name = path.basename(file);
      const r = await claims(file);
      expect(counts(r), name).toEqual({ received: 3, accepted: 2, redelivered: 0, quarantined: 1 });
      expect(r.quarantine).toEqual([
        `${name} line ${name.endsWith('.csv') ? 3 : 2} (row 2): row_too_large: row is ${rowBytes} bytes, the limit is 1000000`,
      ]);
      const { rows } = await h.pool.query('select length(raw)::int as n from quarantine where import_id = $1', [
        r.summary.importId,
      ]);
      expect(rows[0].n).toBe(1001); // a 1000-character preview and an ellipsis, not 10 MB
    }
    const { rows } = await h.pool.query(
      `select claim_id from claims where tenant_id = $1 and claim_id in ('hl-1','hl-3','hj-1','hj-3') order by claim_id`,
      [tenant],
    );
    expect(rows.map((x) => x.claim_id)).toEqual(['hj-1', 'hj-3', 'hl-1', 'hl-3']);
  });

  it('refuses an unknown tenant and record source whole, and quarantines unknown outcome types', async () => {
    await expect(
      importClaimsFile(h.pool, { tenant: 'no-such-tenant', file: fixture('claims-first-delivery.jsonl') }),
    ).rejects.toMatchObject({
      code: 'unknown_tenant',
      message: 'no contract for tenant "no-such-tenant": apply one with `recon contract apply FILE`',
    });
    await expect(
      importRecordsFile(h.pool, { tenant, source: 'crm', file: fixture('records-bom-crlf.csv') }),
    ).rejects.toMatchObject({
      code: 'unknown_source',
      message: `record source "crm" is not in the contract of ${tenant} (known: helpdesk)`,
    });
    const r = await claims(fixture('claims-unknown-type.jsonl'));
    expect(counts(r)).toEqual({ received: 3, accepted: 1, redelivered: 0, quarantined: 2 });
    expect(r.landed).toEqual(['ut-1']);
    expect(r.quarantine).toEqual([
      `claims-unknown-type.jsonl line 2 (row 2): unknown_outcome_type: field outcome_type: "qualified_lead" is not in the contract of ${tenant}`,
      `claims-unknown-type.jsonl line 3 (row 3): unknown_outcome_type: field outcome_type: "Resolved_Ticket" is not in the contract of ${tenant}`,
    ]);
  });

  it('quarantines claims rows that name another tenant (a multi-tenant export must not bill the wrong customer)', async () => {
    const r = await claims(fixture('claims-tenants.csv'));
    expect(counts(r)).toEqual({ received: 5, accepted: 3, redelivered: 0, quarantined: 2 });
    expect(r.landed).toEqual(['tn-1', 'tn-2', 'tn-5']);
    expect(r.quarantine).toEqual([
      'claims-tenants.csv line 4 (row 3): wrong_tenant: field tenant: the row is for tenant "globex", this import is for hostile',
      'claims-tenants.csv line 5 (row 4): wrong_tenant: field tenant: the row is for tenant "Hostile", this import is for hostile',
    ]);
  });

  it('tells redeliveries from conflicts, and a repeated file changes nothing', async () => {
    const first = await claims(fixture('claims-first-delivery.jsonl'));
    expect(counts(first)).toEqual({ received: 3, accepted: 3, redelivered: 0, quarantined: 0 });
    const before = (
      await h.pool.query(
        `select claim_id, subject_ref, occurred_at, content_sha256, retracted_at from claims where tenant_id = $1 and claim_id like 'rd-%' order by claim_id`,
        [tenant],
      )
    ).rows;

    const r = await claims(fixture('claims-redelivery.jsonl'));
    // rd-1 twice (the second written with another offset: same instant, same content), the
    // second retraction of rd-3: redelivered. rd-3's first retraction and the new rd-4: accepted.
    expect(counts(r)).toEqual({ received: 8, accepted: 2, redelivered: 3, quarantined: 3 });
    expect(r.landed).toEqual(['rd-4']);
    expect(r.quarantine).toEqual([
      'claims-redelivery.jsonl line 3 (row 3): conflicting_redelivery: claim rd-2 was delivered before with a different subject_ref',
      'claims-redelivery.jsonl line 6 (row 6): unknown_claim: retraction of claim rd-9, which was never received',
      'claims-redelivery.jsonl line 8 (row 8): conflicting_redelivery: claim rd-4 was delivered before with a different occurred_at',
    ]);
    const after = (
      await h.pool.query(
        `select claim_id, subject_ref, occurred_at, content_sha256, retracted_at from claims where tenant_id = $1 and claim_id like 'rd-%' order by claim_id`,
        [tenant],
      )
    ).rows;
    // The conflicting rd-2 did not overwrite what was accepted; only rd-3's retraction changed.
    expect(after.slice(0, 3)).toEqual([
      before[0],
      before[1],
      { ...before[2], retracted_at: new Date('2026-03-09T08:00:00Z') },
    ]);
    expect(after[3]).toMatchObject({
      claim_id: 'rd-4',
      subject_ref: 'T-214',
      occurred_at: new Date('2026-03-08T09:00:00Z'),
    });

    const again = await importClaimsFile(h.pool, { tenant, file: fixture('claims-redelivery.jsonl') });
    expect(again).toMatchObject({
      replayed: true,
      importId: r.summary.importId,
      received: 8,
      accepted: 2,
      redelivered: 3,
      quarantined: 3,
    });
    const { rows } = await h.pool.query(
      'select count(*)::int as n from quarantine where tenant_id = $1 and origin = $2',
      [tenant, 'claims-redelivery.jsonl'],
    );
    expect(rows[0].n).toBe(3);
  });

  it('stores formula-injection text verbatim and exports it formula-safe', async () => {
    const c = await claims(fixture('claims-formula.jsonl'));
    expect(counts(c)).toEqual({ received: 3, accepted: 3, redelivered: 0, quarantined: 0 });
    const rec = await records(fixture('records-formula.csv'));
    expect(counts(rec)).toEqual({ received: 2, accepted: 2, redelivered: 0, quarantined: 0 });
    const { rows: stored } = await h.pool.query(
      `select claim_id, subject_ref, attributes from claims where tenant_id = $1 and import_id = $2 order by claim_id`,
      [tenant, c.summary.importId],
    );
    expect(stored).toEqual([
      { claim_id: '-f-2', subject_ref: '+T-351', attributes: {} },
      { claim_id: '=1+2', subject_ref: '=HYPERLINK(A1)', attributes: { note: "=cmd|' /C calc'!A0" } },
      { claim_id: '@f-3', subject_ref: '@T-352', attributes: {} },
    ]);
    const { rows: versions } = await h.pool.query(
      `select data->>'ticket_id' as id from record_versions where import_id = $1 order by 1`,
      [rec.summary.importId],
    );
    expect(versions.map((v) => v.id)).toEqual(['+T-351', '=HYPERLINK(A1)']);

    // Solved 2026-03-02T10:00Z, grace PT72H: billed by the night of March 6.
    await runReconciliation(h.client, { tenant, asOf: new Date('2026-03-06T00:00:00Z'), taskQueue: h.taskQueue });
    const chunks: Buffer[] = [];
    const out = new Writable({
      write(chunk, _enc, done) {
        chunks.push(Buffer.from(chunk));
        done();
      },
    });
    await writeExport(h.pool, { tenant, period: '2026-03', format: 'csv', out });
    const table = parseCsv<Record<string, string>>(Buffer.concat(chunks).toString('utf8'), { columns: true });
    const bySubject = new Map(table.map((row) => [row.subject_ref, row]));
    expect(bySubject.get("'=HYPERLINK(A1)")).toMatchObject({
      primary_claim_id: "'=1+2",
      evidence_external_id: "'=HYPERLINK(A1)",
      kind: 'charge',
    });
    expect(bySubject.get("'+T-351")).toMatchObject({
      primary_claim_id: "'-f-2",
      evidence_external_id: "'+T-351",
      kind: 'charge',
    });
    // No text cell of the export can start a formula in a spreadsheet.
    for (const row of table) {
      for (const [column, cell] of Object.entries(row)) {
        if (/^-?\d+(\.\d+)?$/.test(cell)) continue; // amounts are numbers, not text
        expect(cell, `${column} = ${cell}`).not.toMatch(/^[=+\-@\t\r]/);
      }
    }
  });
});

describe('invalid contracts from the corpus', async () => {
  const dir = path.join(BAD, 'contracts');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  // Each is refused with code invalid_contract and the path of the bad field.
  const expected: Record<string, string> = {
    'bad-duration.json':
      'outcomeTypes.resolved_ticket.graceWindow: expected an ISO 8601 duration such as PT72H or P14D',
    'bad-timezone.json': 'timezone: expected an IANA time zone such as Europe/Berlin',
    'both-prices.json':
      'outcomeTypes.resolved_ticket.unitPrice: give exactly one of unitPrice (flat) or pricing (hybrid)',
    'effective-without-offset.json': 'effectiveFrom: Invalid ISO datetime',
    'gte-on-boolean.json':
      'outcomeTypes.resolved_ticket.success.gte.1: "gte" expects [field, number or time]: value must be a number or a time',
    'negative-price.json':
      'outcomeTypes.resolved_ticket.unitPrice: expected a non-negative decimal price in major units with at most 12 decimals, e.g. "0.99"',
    'not-json.json': 'not valid JSON: Expected double-quoted property name in JSON at position 64',
    'operator-arity.json':
      'outcomeTypes.resolved_ticket.success.eq: "eq" expects [field, value]: Too small: expected array to have >=2 items',
    'success-time-not-timestamp.json':
      'outcomeTypes.resolved_ticket.successTimeField: "status" must be a timestamp field of helpdesk',
    'two-operators.json':
      'outcomeTypes.resolved_ticket.success: a rule has exactly one operator, found eq, exists; combine rules with "all" or "any"',
    'unknown-field-in-rule.json':
      'outcomeTypes.resolved_ticket.success: unknown field "resolved_on" in the success rule',
    'unknown-key.json': 'discount: unknown key',
    // This one used to crash the validator with a TypeError instead of naming the operator.
    'unknown-operator.json':
      'outcomeTypes.resolved_ticket.success.all.1: unknown operator "regex" (expected one of eq, ne, in, not_in, exists, gte, lte, all, any, not)',
    'unknown-record-source.json': 'outcomeTypes.resolved_ticket.recordSource: unknown record source "crm"',
    // Unknown keys at every depth, by their JSON path.
    'misspelt-dispute-block.json': 'outcomeTypes.resolved_ticket.dispute: unknown key',
    'lowercase-case-insensitive.json': 'outcomeTypes.resolved_ticket.matchKey.caseinsensitive: unknown key',
    'lowercase-clawback-window.json': 'outcomeTypes.resolved_ticket.clawbackwindow: unknown key',
    'updated-at-key.json': 'recordSources.helpdesk.updatedAt: unknown key',
    'misspelt-column.json':
      'recordSources.helpdesk.fields.csat.column: Invalid input: expected string, received undefined; recordSources.helpdesk.fields.csat.colum: unknown key',
    'misspelt-tier-key.json':
      'outcomeTypes.resolved_ticket.pricing.tiers.0.upto: unknown key; outcomeTypes.resolved_ticket.pricing.tiers.0.upTo: only the last tier may omit upTo: every other tier must say where it ends',
    // Rules against the fields' types.
    'gte-on-text.json':
      'outcomeTypes.resolved_ticket.success.all.1.gte: "gte" needs a number or timestamp field, and "status" is a text field (use eq or in)',
    'number-field-vs-text.json':
      'outcomeTypes.resolved_ticket.success.in.1.0: "csat" is a number field: compare it with a number, not the text "4"; outcomeTypes.resolved_ticket.success.in.1.1: "csat" is a number field: compare it with a number, not the text "5"',
    'timestamp-vs-bad-time.json':
      'outcomeTypes.resolved_ticket.success.gte.1: "gte" expects [field, number or time]: value must be a number or an ISO 8601 time such as 2026-03-01T00:00:00Z',
    // Amounts the ledger cannot hold or that round to nothing; durations, dates and emptiness.
    'price-beyond-ledger.json':
      "outcomeTypes.resolved_ticket.unitPrice: 1000000000 USD per outcome is beyond the ledger's bound of 900719.92 USD per outcome (a period may hold 100,000,000 outcomes of a type)",
    'price-rounds-to-zero.json':
      'outcomeTypes.resolved_ticket.unitPrice: 0.001 USD rounds to 0 in minor units (the smallest amount is 0.01); write "0" to mean free',
    'grace-99999999-years.json': 'outcomeTypes.resolved_ticket.graceWindow: must be at most ten years (P10Y)',
    'effective-year-9999.json': 'effectiveFrom: must lie in the years 2000 to 2100',
    'no-outcome-types.json': 'outcomeTypes: name at least one outcome type',
  };

  it('has an expectation for every contract in the corpus', () => {
    expect(files).toEqual(Object.keys(expected).sort());
  });

  it.each(files)('%s is refused with the path of the bad field', async (name) => {
    const file = path.join(dir, name);
    await expect(readContractFile(file)).rejects.toMatchObject({
      code: 'invalid_contract',
      message: `${file}: ${expected[name]}`,
    });
  });
});
