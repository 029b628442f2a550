import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  describePosition,
  FileRejectedError,
  formatFromPath,
  nulCharacterReason,
  readRows,
  type FileFormat,
  type ReadRowsOptions,
  type RowResult,
} from '../../src/sources/rows';
import { csvCell, csvLine } from '../../src/export/csv';

const dir = mkdtempSync(join(tmpdir(), 'rows-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function fixture(content: string | Buffer, ext = 'csv'): string {
  const path = join(dir, `f${++fileCount}.${ext}`);
  writeFileSync(path, content);
  return path;
}

async function readAll(path: string, format: FileFormat, options?: ReadRowsOptions): Promise<RowResult[]> {
  const out: RowResult[] = [];
  for await (const row of readRows(path, format, options)) out.push(row);
  return out;
}

async function csv(content: string | Buffer, options?: ReadRowsOptions): Promise<RowResult[]> {
  return readAll(fixture(content, 'csv'), 'csv', options);
}

async function jsonl(content: string | Buffer, options?: ReadRowsOptions): Promise<RowResult[]> {
  return readAll(fixture(content, 'jsonl'), 'jsonl', options);
}

async function rejection(promise: Promise<unknown>): Promise<FileRejectedError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FileRejectedError);
  return error as FileRejectedError;
}

function values(rows: RowResult[]): Array<Record<string, unknown>> {
  return rows.map((r) => {
    if (!r.ok) throw new Error(`expected ok row, got ${r.code}: ${r.reason}`);
    return r.values;
  });
}

describe('formatFromPath', () => {
  it('knows csv, jsonl and ndjson in any case', () => {
    expect(formatFromPath('claims.csv')).toBe('csv');
    expect(formatFromPath('/x/Claims.CSV')).toBe('csv');
    expect(formatFromPath('a.jsonl')).toBe('jsonl');
    expect(formatFromPath('a.NDJSON')).toBe('jsonl');
    expect(formatFromPath('a.json')).toBeUndefined();
    expect(formatFromPath('csv')).toBeUndefined();
    expect(formatFromPath('a.csv.gz')).toBeUndefined();
  });
});

describe('describePosition', () => {
  it('names file, line and row', () => {
    expect(describePosition('claims.csv', { line: 12, row: 11 })).toBe('claims.csv line 12 (row 11)');
  });
});

describe('readRows csv', () => {
  it('reads rows keyed by trimmed header names, values untrimmed', async () => {
    const rows = await csv(' id , name\n1, Ada \n2,Bob\n');
    expect(values(rows)).toEqual([
      { id: '1', name: ' Ada ' },
      { id: '2', name: 'Bob' },
    ]);
    expect(rows.map((r) => r.position)).toEqual([
      { line: 2, row: 1 },
      { line: 3, row: 2 },
    ]);
    expect(rows[0].raw).toBe('1, Ada ');
  });

  it('strips a UTF-8 BOM from the first header name only', async () => {
    const rows = await csv('\uFEFFid,name\n1,\uFEFFx\n');
    expect(values(rows)).toEqual([{ id: '1', name: '\uFEFFx' }]);
  });

  it('accepts CRLF without leaving CRs in values or raw', async () => {
    const rows = await csv('id,name\r\n1,Ada\r\n2,Bob\r\n');
    expect(values(rows)).toEqual([
      { id: '1', name: 'Ada' },
      { id: '2', name: 'Bob' },
    ]);
    expect(rows[1].raw).toBe('2,Bob');
    expect(rows[1].position).toEqual({ line: 3, row: 2 });
  });

  it('reads a final line without newline', async () => {
    expect(values(await csv('id,name\n1,Ada\n2,Bob'))).toEqual([
      { id: '1', name: 'Ada' },
      { id: '2', name: 'Bob' },
    ]);
    expect(values(await csv('id,name\r\n1,Ada\r'))).toEqual([{ id: '1', name: 'Ada' }]);
  });

  it('keeps quoted newlines in the value and raw, and counts physical lines', async () => {
    const rows = await csv('id,note\r\n1,"first\r\nsecond\nthird"\r\n2,plain\r\n3,"x"\r\n');
    expect(values(rows)).toEqual([
      { id: '1', note: 'first\r\nsecond\nthird' },
      { id: '2', note: 'plain' },
      { id: '3', note: 'x' },
    ]);
    expect(rows[0].raw).toBe('1,"first\r\nsecond\nthird"');
    expect(rows.map((r) => r.position)).toEqual([
      { line: 2, row: 1 },
      { line: 5, row: 2 },
      { line: 6, row: 3 },
    ]);
  });

  it('undoubles doubled quotes and keeps commas inside quotes', async () => {
    const rows = await csv('a,b\n"say ""hi""","x, y"\n"",""""\n');
    expect(values(rows)).toEqual([
      { a: 'say "hi"', b: 'x, y' },
      { a: '', b: '"' },
    ]);
  });

  it('skips completely empty lines but counts them as lines', async () => {
    const rows = await csv('\n\nid,name\n\n1,Ada\r\n\r\n\n2,Bob\n\n');
    expect(values(rows)).toEqual([
      { id: '1', name: 'Ada' },
      { id: '2', name: 'Bob' },
    ]);
    expect(rows.map((r) => r.position)).toEqual([
      { line: 5, row: 1 },
      { line: 8, row: 2 },
    ]);
  });

  it('reports extra and missing columns per row and goes on', async () => {
    const rows = await csv('a,b,c,d\n1,2,3,4,5\n1,2,3\n1,2,3,4\n,,,\n');
    expect(rows.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['extra_columns', 'missing_columns', 'ok', 'ok']);
    const [extra, missing] = rows;
    if (extra.ok || missing.ok) throw new Error('unreachable');
    expect(extra.reason).toBe('row has 5 cells, header has 4');
    expect(extra.raw).toBe('1,2,3,4,5');
    expect(missing.reason).toBe('row has 3 cells, header has 4');
    expect(missing.position).toEqual({ line: 3, row: 2 });
    expect(rows[3]).toMatchObject({ ok: true, values: { a: '', b: '', c: '', d: '' } });
  });

  it('reports malformed quoting as bad_csv for that row only', async () => {
    const rows = await csv('a,b\n1,5" screen\n2,"x"y\n3,ok\n');
    expect(rows.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['bad_csv', 'bad_csv', 'ok']);
    expect(rows[2].position).toEqual({ line: 4, row: 3 });
    expect(rows[0]).toMatchObject({ reason: 'quote inside unquoted field 2', raw: '1,5" screen' });
  });

  it('reports an unterminated quote at end of file as bad_csv after the good rows', async () => {
    const rows = await csv('a,b\n1,x\n2,"never closed\n3,y\n');
    expect(rows).toHaveLength(2);
    expect(rows[0].ok).toBe(true);
    expect(rows[1]).toMatchObject({ ok: false, code: 'bad_csv', position: { line: 3, row: 2 } });
    expect(rows[1].raw).toBe('2,"never closed\n3,y\n');
  });

  it('keeps a column named __proto__ as a plain value', async () => {
    const [row] = values(await csv('__proto__,b\nx,y\n'));
    expect(Object.keys(row)).toEqual(['__proto__', 'b']);
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
  });

  it('rejects a duplicate header naming the column', async () => {
    const error = await rejection(csv('id,name, id\n1,2,3\n'));
    expect(error.code).toBe('duplicate_header');
    expect(error.message).toContain('"id"');
    expect(error.message).toContain('columns 1 and 3');
  });

  it('rejects an empty file, a blank file and a BOM-only file as missing_header', async () => {
    for (const content of ['', '\n\r\n\n', '\uFEFF']) {
      expect((await rejection(csv(content))).code).toBe('missing_header');
    }
  });

  it('rejects missing required columns naming them', async () => {
    const error = await rejection(csv('id,name\n1,2\n', { requiredColumns: ['id', 'amount', 'currency'] }));
    expect(error.code).toBe('missing_columns');
    expect(error.message).toContain('"amount", "currency"');
    expect(error.message).not.toContain('"id"');
    expect(values(await csv('id,name\n1,2\n', { requiredColumns: ['name'] }))).toHaveLength(1);
  });

  it('rejects a header with an unnamed column', async () => {
    expect((await rejection(csv('id,,name\n1,2,3\n'))).code).toBe('bad_header');
  });

  it('rejects a file that cannot be read', async () => {
    expect((await rejection(readAll(join(dir, 'does-not-exist.csv'), 'csv'))).code).toBe('unreadable_file');
  });

  it('quarantines a row with a NUL byte, naming the column, and reads the next', async () => {
    const rows = await csv(Buffer.from('id,note\n1,a\u0000b\n2,fine\n'));
    expect(rows.map((r) => (r.ok ? 'ok' : `${r.code}: ${r.reason}`))).toEqual([
      'nul_character: column "note": contains a NUL character (U+0000), which cannot be stored',
      'ok',
    ]);
  });

  it('quarantines only the row with invalid UTF-8', async () => {
    const content = Buffer.concat([
      Buffer.from('id,name\n1,Ada\n2,B'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('b\n3,Zoë\n'),
    ]);
    const rows = await csv(content);
    expect(rows.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['ok', 'invalid_utf8', 'ok']);
    expect(rows[1].raw).toBe('2,B\uFFFD\uFFFDb');
    expect(rows[1].position).toEqual({ line: 3, row: 2 });
    expect(rows[2]).toMatchObject({ values: { id: '3', name: 'Zoë' } });
  });

  it('reports a 3 MB row as row_too_large and reads the next row', async () => {
    const huge = 'x'.repeat(3 * 1024 * 1024);
    const rows = await csv(`id,note\n1,a\n2,${huge}\n3,c\n`, { maxRowBytes: 1_000_000 });
    expect(rows.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['ok', 'row_too_large', 'ok']);
    expect(rows[1].raw).toBe(`2,${'x'.repeat(998)}…`);
    expect(rows[1]).toMatchObject({ reason: `row is ${huge.length + 2} bytes, the limit is 1000000` });
    expect(rows[2]).toMatchObject({ position: { line: 4, row: 3 }, values: { id: '3', note: 'c' } });
  });

  it('follows quotes through a discarded huge row', async () => {
    // Newlines and a fake row inside the quoted field must not end the row early.
    const chunk = 'y'.repeat(100_000);
    const huge = `"${chunk}\n9,"",fake\n${chunk}\r\n${chunk}"`;
    const rows = await csv(`id,note\r\n1,${huge}\r\n2,after\r\n`, { maxRowBytes: 50_000 });
    expect(rows.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['row_too_large', 'ok']);
    expect(rows[1]).toMatchObject({ position: { line: 6, row: 2 }, values: { id: '2', note: 'after' } });
  });

  it('accepts a row of exactly maxRowBytes, also with CRLF', async () => {
    const rows = await csv('id\r\n12345\r\n123456\r\n1234\r\n', { maxRowBytes: 5 });
    expect(rows.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['ok', 'row_too_large', 'ok']);
    // Small enough to show whole: the preview is only cut (with …) when longer than 1000 chars.
    expect(rows[1].raw).toBe('123456');
    expect(rows[2].position).toEqual({ line: 4, row: 3 });
  });

  it('reads rows that straddle read-chunk boundaries', async () => {
    // ~1 MB of rows with varying lengths so the 64 KB chunk edges land on CRs, quotes and inside
    // multi-byte characters.
    const pieces = ['a', 'é', '😀', '\r\n', '"', ',', '\n', '日'];
    const expected: Array<{ line: number; values: Record<string, string> }> = [];
    let text = csvLine(['id', 'note']);
    let line = 2;
    for (let i = 0; text.length < 1_000_000; i++) {
      let note = '';
      for (let j = 0; j < (i * 7919) % 900; j++) note += pieces[(i + j * j) % pieces.length];
      const record = csvLine([String(i), note], { formulaSafe: false });
      expected.push({ line, values: { id: String(i), note } });
      line += record.split('\n').length - 1;
      text += record;
    }
    const rows = await csv(text);
    expect(rows.map((r) => ({ line: r.position.line, values: r.ok ? r.values : r.code }))).toEqual(expected);
  });

  it('stops early without error when the consumer breaks', async () => {
    const path = fixture('id\n1\n2\n3\n');
    for await (const row of readRows(path, 'csv')) {
      expect(row.ok).toBe(true);
      break;
    }
  });
});

describe('readRows jsonl', () => {
  it('reads objects, reports bad JSON and non-objects, skips empty lines', async () => {
    const rows = await jsonl('\uFEFF{"id":1}\r\n\r\n{"id":\n[1,2]\n  \n"text"\nnull\n{"id":2,"nested":{"a":[true]}}');
    expect(rows.map((r) => (r.ok ? 'ok' : r.code))).toEqual([
      'ok',
      'bad_json',
      'not_an_object',
      'not_an_object',
      'not_an_object',
      'ok',
    ]);
    expect(rows.map((r) => r.position)).toEqual([
      { line: 1, row: 1 },
      { line: 3, row: 2 },
      { line: 4, row: 3 },
      { line: 6, row: 4 },
      { line: 7, row: 5 },
      { line: 8, row: 6 },
    ]);
    expect(rows[0]).toMatchObject({ raw: '{"id":1}', values: { id: 1 } });
    expect(rows[5]).toMatchObject({ values: { id: 2, nested: { a: [true] } } });
    const bad = rows[1];
    if (bad.ok) throw new Error('unreachable');
    expect(bad.raw).toBe('{"id":');
    expect(bad.reason).toMatch(/^invalid JSON: .+/);
    expect(bad.reason).not.toContain('\n');
    expect(rows[2]).toMatchObject({ reason: 'line holds a JSON array, expected an object' });
  });

  it('quarantines a line holding U+0000 anywhere (PostgreSQL cannot store it), naming the field', async () => {
    const rows = await jsonl('{"a":"x\\u0000y"}\n{"a":{"b":["ok","\\u0000"]}}\n{"\\u0000k":1}\n{"a":"fine"}\n');
    expect(rows.map((r) => (r.ok ? 'ok' : `${r.code}: ${r.reason}`))).toEqual([
      'nul_character: field a: contains a NUL character (U+0000), which cannot be stored',
      'nul_character: field a.b.1: contains a NUL character (U+0000), which cannot be stored',
      'nul_character: field \\0k: contains a NUL character (U+0000), which cannot be stored',
      'ok',
    ]);
    expect(nulCharacterReason({ deep: JSON.parse('['.repeat(50_000) + '"\\u0000"' + ']'.repeat(50_000)) })).toMatch(
      /^field deep\.0\.0/,
    );
  });

  it('quarantines invalid UTF-8 and huge lines, then goes on', async () => {
    const content = Buffer.concat([
      Buffer.from('{"a":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from(`"}\n{"big":"${'z'.repeat(3 * 1024 * 1024)}"}\n{"a":"ok"}\n`),
    ]);
    const rows = await jsonl(content, { maxRowBytes: 1_000_000 });
    expect(rows.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['invalid_utf8', 'row_too_large', 'ok']);
    expect(rows[1].raw).toHaveLength(1001);
    expect(rows[2]).toMatchObject({ position: { line: 3, row: 3 }, values: { a: 'ok' } });
  });
});

describe('csv round trip', () => {
  const char = fc.constantFrom(
    ',',
    '"',
    '\n',
    '\r',
    '\r\n',
    ' ',
    '=',
    '-',
    'a',
    'Z',
    '0',
    'é',
    '日',
    '😀',
    '\uFEFF',
    '\t',
  );
  const cell = fc.oneof(fc.string({ unit: char }), fc.string({ unit: 'grapheme' }));
  const headerName = fc
    .oneof(fc.string({ unit: char, minLength: 1 }), fc.string({ unit: 'grapheme', minLength: 1 }))
    .filter((name) => name.trim() === name && name !== '');
  const table = fc
    .uniqueArray(headerName, { minLength: 1, maxLength: 5 })
    .chain((header) =>
      fc.tuple(
        fc.constant(header),
        fc.array(fc.array(cell, { minLength: header.length, maxLength: header.length }), { maxLength: 8 }),
      ),
    );

  it('reads back what csvCell/csvLine wrote', async () => {
    await fc.assert(
      fc.asyncProperty(table, async ([header, body]) => {
        const text = [header, ...body].map((cells) => csvLine(cells, { formulaSafe: false })).join('');
        const rows = await csv(text);
        expect(values(rows)).toEqual(body.map((cells) => Object.fromEntries(header.map((h, i) => [h, cells[i]]))));
        expect(rows.map((r) => r.raw)).toEqual(
          body.map((cells) => cells.map((c) => csvCell(c, { formulaSafe: false })).join(',') || '""'),
        );
      }),
      { numRuns: 200 },
    );
  });
});

describe('readRows memory', () => {
  it('streams a ~50 MB file in bounded memory', async () => {
    const path = join(dir, 'big.csv');
    const out = createWriteStream(path);
    out.write('id,customer,note,amount\r\n');
    const rowsPerBlock = 10_000;
    let block = '';
    for (let i = 0; i < rowsPerBlock; i++) {
      block += `${i},customer-${i % 97},"note with, comma and ""quotes"" ${'.'.repeat(40)}",${i * 7}\r\n`;
    }
    const blockBytes = Buffer.byteLength(block);
    const blocks = Math.ceil((50 * 1024 * 1024) / blockBytes);
    for (let b = 0; b < blocks; b++) {
      if (!out.write(block)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');

    const before = process.memoryUsage().rss;
    let peak = before;
    let count = 0;
    let bad = 0;
    for await (const row of readRows(path, 'csv')) {
      if (!row.ok) bad++;
      if (++count % 20_000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(bad).toBe(0);
    expect(count).toBe(blocks * rowsPerBlock);
    expect(peak - before).toBeLessThan(100 * 1024 * 1024);
  }, 60_000);
});
