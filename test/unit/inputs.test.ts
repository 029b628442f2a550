import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { InstantOpt, parseOptions } from '../../src/cli/io';
import { claimColumnsRequired } from '../../src/ingest/files';
import { FileRejectedError, readRows, type FileFormat } from '../../src/sources/rows';
import { checkBackfillRange, checkCatchupWindow, checkCron } from '../../src/temporal/schedules';
import { codeOf } from './helpers';

const dir = mkdtempSync(join(tmpdir(), 'inputs-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function readFile(
  name: string,
  content: string,
  format: FileFormat,
  requiredColumns?: string[] | ((h: string[]) => string[]),
) {
  const path = join(dir, name);
  writeFileSync(path, content);
  const rows = [];
  for await (const r of readRows(path, format, { requiredColumns })) rows.push(r);
  return rows;
}

async function rejection(p: Promise<unknown>): Promise<FileRejectedError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof FileRejectedError) return err;
    throw err;
  }
  throw new Error('expected the file to be rejected');
}

describe('--as-of and other times on the command line', () => {
  const asOf = (v: string) => parseOptions(z.object({ asOf: InstantOpt }), { asOf: v }).asOf;

  it('reads an instant with an offset', () => {
    expect(asOf('2026-03-01T07:00:00Z').toISOString()).toBe('2026-03-01T07:00:00.000Z');
    expect(asOf('2026-03-01T07:00:00+02:00').toISOString()).toBe('2026-03-01T05:00:00.000Z');
    expect(asOf('2028-02-29T00:00:00Z').toISOString()).toBe('2028-02-29T00:00:00.000Z');
  });

  it('refuses a date that does not exist, as a file would, instead of rolling it over', () => {
    for (const v of [
      '2026-02-30T00:00:00Z',
      '2026-02-29T00:00:00Z',
      '2026-04-31T10:00:00Z',
      '2026-03-01T24:00:00Z',
      '2026-03-01T10:60:00Z',
    ]) {
      expect(() => asOf(v), v).toThrow(/^--as-of: no such date or time/);
    }
    expect(codeOf(() => asOf('2026-02-30T00:00:00Z'))).toBe('bad_input');
  });

  it('still requires an offset', () => {
    expect(() => asOf('2026-03-01T07:00:00')).toThrow(/--as-of: expected an ISO 8601 time with an offset/);
    expect(() => asOf('2026-03-01')).toThrow(/with an offset/);
  });
});

describe('schedule inputs', () => {
  it('accepts the cron forms Temporal reads', () => {
    for (const c of [
      '0 2 * * *',
      '*/15 * * * *',
      '0 2 1-5 * MON-FRI',
      '30 23 * JAN,jul 0',
      '0 0 * * 7',
      '5,35 1-3/2 * * *',
    ])
      expect(() => checkCron(c), c).not.toThrow();
  });

  it('refuses fields out of range, the wrong number of fields and backwards ranges', () => {
    const cases: Array<[string, RegExp]> = [
      ['61 2 * * *', /minute "61" is not 0-59/],
      ['0 24 * * *', /hour "24" is not 0-23/],
      ['0 2 0 * *', /day of month "0" is not 1-31/],
      ['0 2 * 13 *', /month "13" is not 1-12 or JAN-DEC/],
      ['0 2 * * 8', /day of week "8" is not 0-7/],
      ['0 2 * *', /4 fields/],
      ['0 2 * * * *', /6 fields/],
      ['0 5-2 * * *', /hour range "5-2" runs backwards/],
      ['*/0 * * * *', /step "\/0"/],
      ['x 2 * * *', /minute "x"/],
    ];
    for (const [c, m] of cases) {
      expect(() => checkCron(c), c).toThrow(m);
      expect(codeOf(() => checkCron(c))).toBe('invalid_cron');
    }
  });

  it('reads catch-up windows between a minute and a year', () => {
    expect(checkCatchupWindow('1 day')).toBe(86_400_000);
    expect(checkCatchupWindow('90m')).toBe(5_400_000);
    for (const c of ['forever', '', '-1 day', '10s', '400 days'])
      expect(
        codeOf(() => checkCatchupWindow(c)),
        c,
      ).toBe('invalid_catchup');
  });

  it('backfills only nights that have passed, from before to', () => {
    const now = new Date('2026-06-01T00:00:00Z');
    expect(() =>
      checkBackfillRange(new Date('2026-05-01T00:00:00Z'), new Date('2026-05-10T00:00:00Z'), now),
    ).not.toThrow();
    expect(
      codeOf(() => checkBackfillRange(new Date('2026-05-10T00:00:00Z'), new Date('2026-05-01T00:00:00Z'), now)),
    ).toBe('bad_range');
    expect(
      codeOf(() => checkBackfillRange(new Date('2026-05-10T00:00:00Z'), new Date('2026-05-10T00:00:00Z'), now)),
    ).toBe('bad_range');
    expect(
      codeOf(() => checkBackfillRange(new Date('2026-05-10T00:00:00Z'), new Date('2026-07-01T00:00:00Z'), now)),
    ).toBe('as_of_in_future');
  });
});

describe('files of the wrong format are refused whole', () => {
  it('JSON Lines where CSV is expected', async () => {
    const e = await rejection(readFile('a.csv', '{"claim_id":"k1"}\n{"claim_id":"k2"}\n', 'csv'));
    expect(e.code).toBe('wrong_format');
    expect(e.message).toMatch(/a\.csv line 1: this is not CSV/);
  });

  it('CSV where JSON Lines are expected; a JSONL file with a bad first line is still read row by row', async () => {
    const e = await rejection(readFile('b.jsonl', 'claim_id,subject_ref\nk1,T-1\n', 'jsonl'));
    expect(e.code).toBe('wrong_format');
    expect(e.message).toMatch(/b\.jsonl line 1: this is not JSON Lines/);
    const rows = await readFile('c.jsonl', '{"id":\n{"id":2}\n', 'jsonl');
    expect(rows.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['bad_json', 'ok']);
  });

  it('a claims CSV must have the columns of a claim; a retraction file needs only the id', async () => {
    expect(claimColumnsRequired(['claim_id', 'outcome_type', 'subject_ref', 'occurred_at'])).toEqual([
      'claim_id',
      'outcome_type',
      'subject_ref',
      'occurred_at',
    ]);
    expect(claimColumnsRequired(['claim_id', 'retracted'])).toEqual(['claim_id']);
    const e = await rejection(
      readFile('d.csv', 'claim_id,outcome_type,occurred_at\nk1,t,2026-03-01T00:00:00Z\n', 'csv', claimColumnsRequired),
    );
    expect(e.code).toBe('missing_columns');
    expect(e.message).toBe(`${join(dir, 'd.csv')} line 1: header lacks required column "subject_ref"`);
    expect(await readFile('e.csv', 'claim_id,retracted\nk1,true\n', 'csv', claimColumnsRequired)).toHaveLength(1);
  });
});
