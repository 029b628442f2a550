// Streaming row readers for CSV and JSONL files produced by other people's systems.
//
// The file is split into rows on raw bytes, never on decoded text: a byte-level split lets one row
// with invalid UTF-8 be quarantined while its neighbours are still read, and lets a huge row be
// skipped without ever holding it in memory. In UTF-8 the ASCII bytes that matter here (LF, CR,
// quote, comma) never occur inside a multi-byte sequence, so scanning bytes is safe.

import { createReadStream } from 'node:fs';
import { extname } from 'node:path';

export type FileFormat = 'csv' | 'jsonl';

/** line: 1-based physical line where the row starts; row: 1-based data row (CSV header not counted). */
export interface RowPosition {
  line: number;
  row: number;
}

export type RowResult =
  | { ok: true; position: RowPosition; raw: string; values: Record<string, unknown> }
  | { ok: false; position: RowPosition; raw: string; code: string; reason: string };

export interface ReadRowsOptions {
  /** Rows with more content bytes than this are reported as row_too_large. Default 1_000_000. */
  maxRowBytes?: number;
  /**
   * CSV only: header columns that must be present, else the whole file is rejected; a function
   * decides from the header (a retraction file needs fewer columns than one with claims).
   */
  requiredColumns?: RequiredColumns;
}

export type RequiredColumns = string[] | ((header: string[]) => string[]);

/** A problem with the whole file (no usable header, unreadable): nothing in it can be imported. */
export class FileRejectedError extends Error {
  override readonly name = 'FileRejectedError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const DEFAULT_MAX_ROW_BYTES = 1_000_000;

const CHUNK_BYTES = 64 * 1024;
const RAW_PREVIEW_CHARS = 1000;
// Enough bytes for RAW_PREVIEW_CHARS characters even if every one takes the maximum 4 bytes.
const PREVIEW_BYTES = RAW_PREVIEW_CHARS * 4;
const REASON_DETAIL_CHARS = 200;

const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const COMMA = 0x2c;

export function formatFromPath(path: string): FileFormat | undefined {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  return undefined;
}

export function describePosition(file: string, p: RowPosition): string {
  return `${file} line ${p.line} (row ${p.row})`;
}

export async function* readRows(
  path: string,
  format: FileFormat,
  options: ReadRowsOptions = {},
): AsyncGenerator<RowResult> {
  const maxRowBytes = options.maxRowBytes ?? DEFAULT_MAX_ROW_BYTES;
  if (!Number.isSafeInteger(maxRowBytes) || maxRowBytes < 1) {
    throw new RangeError(`maxRowBytes must be a positive integer, got ${maxRowBytes}`);
  }
  if (format !== 'csv' && format !== 'jsonl') throw new RangeError(`unknown file format ${String(format)}`);

  const splitter = new RowSplitter(format === 'csv', maxRowBytes);
  const interpreter: RowInterpreter =
    format === 'csv' ? new CsvRows(path, maxRowBytes, options.requiredColumns ?? []) : new JsonlRows(path, maxRowBytes);

  for await (const chunk of withoutBom(readChunks(path))) {
    for (const row of splitter.push(chunk)) {
      const result = interpreter.take(row);
      if (result) yield result;
    }
  }
  const last = splitter.end();
  if (last) {
    const result = interpreter.take(last);
    if (result) yield result;
  }
  interpreter.end();
}

// ---------------------------------------------------------------------------------------------
// Bytes in

async function* readChunks(path: string): AsyncGenerator<Buffer> {
  const stream = createReadStream(path, { highWaterMark: CHUNK_BYTES });
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new FileRejectedError('unreadable_file', `${path}: cannot read file (${detail})`);
  }
}

// Only a BOM at the very start of the file is an encoding marker; anywhere else it is data.
async function* withoutBom(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let head: Buffer = Buffer.alloc(0);
  let checked = false;
  for await (const chunk of chunks) {
    if (checked) {
      yield chunk;
      continue;
    }
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
    if (head.length < 3) continue; // a BOM split across tiny chunks
    checked = true;
    yield hasBom(head) ? head.subarray(3) : head;
  }
  if (!checked && head.length > 0) yield head; // under 3 bytes: cannot hold a whole BOM
}

function hasBom(b: Buffer): boolean {
  return b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;
}

// ---------------------------------------------------------------------------------------------
// Splitting bytes into rows

interface RawRow {
  line: number;
  /** The row's content without its line ending; only a prefix when the row was too large. */
  bytes: Buffer;
  /** bytes holds the whole row. */
  complete: boolean;
  /** Content size in bytes, counted even for the parts that were discarded. */
  size: number;
  tooLarge: boolean;
  /** CSV: the file ended inside a quoted field. */
  unterminated: boolean;
}

// CSV field states, enough to know whether an LF ends the row or sits inside quotes. Malformed
// quoting (a quote inside an unquoted field, text after a closing quote) is deliberately treated as
// plain text here so that it spoils one row only; the cell parser then reports it.
const FIELD_START = 0;
const UNQUOTED = 1;
const QUOTED = 2;
const AFTER_QUOTE = 3;

class RowSplitter {
  private parts: Buffer[] = [];
  private kept = 0;
  private size = 0;
  private oversized = false;
  private lastByte = -1;
  private state = FIELD_START;
  private line = 1;
  private startLine = 1;

  constructor(
    private readonly csv: boolean,
    private readonly maxRowBytes: number,
  ) {}

  push(chunk: Buffer): RawRow[] {
    const rows: RawRow[] = [];
    let from = 0;
    const rowEndsAt = (lf: number): void => {
      this.append(chunk, from, lf);
      const row = this.finish(false);
      if (row) rows.push(row);
      this.line++;
      this.startLine = this.line;
      from = lf + 1;
    };

    if (!this.csv) {
      for (let lf = chunk.indexOf(LF, from); lf >= 0; lf = chunk.indexOf(LF, from)) rowEndsAt(lf);
    } else {
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i];
        if (this.state === QUOTED) {
          if (b === QUOTE) this.state = AFTER_QUOTE;
          else if (b === LF) this.line++;
          continue;
        }
        if (b === QUOTE && this.state !== UNQUOTED) {
          // Opens a quoted field, or (after a closing quote) is the second half of an escaped "".
          this.state = QUOTED;
        } else if (b === COMMA) {
          this.state = FIELD_START;
        } else if (b === LF) {
          rowEndsAt(i);
        } else {
          this.state = UNQUOTED;
        }
      }
    }
    this.append(chunk, from, chunk.length);
    return rows;
  }

  /** The last row when the file does not end with a newline, or ends inside quotes. */
  end(): RawRow | undefined {
    return this.finish(this.csv && this.state === QUOTED);
  }

  private append(chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    this.size += to - from;
    this.lastByte = chunk[to - 1];
    if (this.oversized) {
      // Only a preview is kept; the rest is discarded as it streams past.
      const room = PREVIEW_BYTES - this.kept;
      if (room > 0) this.keep(chunk.subarray(from, Math.min(to, from + room)));
      return;
    }
    this.keep(chunk.subarray(from, to));
    // +1 leaves room for the CR of a CRLF, which is not content.
    if (this.size > this.maxRowBytes + 1) {
      this.oversized = true;
      const preview = Buffer.concat(this.parts, Math.min(this.kept, PREVIEW_BYTES));
      this.parts = [preview];
      this.kept = preview.length;
    }
  }

  private keep(piece: Buffer): void {
    this.parts.push(piece);
    this.kept += piece.length;
  }

  private finish(unterminated: boolean): RawRow | undefined {
    // A CR right before the LF (or before EOF) is the line ending, not content. Inside an
    // unterminated quote every byte is content.
    const endsWithCr = !unterminated && this.size > 0 && this.lastByte === CR;
    const size = this.size - (endsWithCr ? 1 : 0);
    const complete = this.kept === this.size;
    let bytes = Buffer.concat(this.parts, this.kept);
    if (endsWithCr && complete) bytes = bytes.subarray(0, bytes.length - 1);
    const line = this.startLine;

    this.parts = [];
    this.kept = 0;
    this.size = 0;
    this.oversized = false;
    this.lastByte = -1;
    this.state = FIELD_START;

    if (size === 0 && !unterminated) return undefined; // a completely empty line is not a row
    return { line, bytes, complete, size, tooLarge: size > this.maxRowBytes, unterminated };
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding a row

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// ignoreBOM keeps a U+FEFF that starts a row: only the file's first BOM is a marker.
const looseUtf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

type Failure = { code: string; reason: string; raw: string };
type Decoded = { ok: true; text: string } | ({ ok: false } & Failure);

function decodeRow(row: RawRow, maxRowBytes: number): Decoded {
  if (row.unterminated) {
    return {
      ok: false,
      code: 'bad_csv',
      reason: `quoted field is never closed, so the row runs to the end of the file (${row.size} bytes)`,
      raw: preview(row),
    };
  }
  if (row.tooLarge) {
    return {
      ok: false,
      code: 'row_too_large',
      reason: `row is ${row.size} bytes, the limit is ${maxRowBytes}`,
      raw: preview(row),
    };
  }
  try {
    return { ok: true, text: strictUtf8.decode(row.bytes) };
  } catch {
    const raw = looseUtf8.decode(row.bytes);
    const at = raw.indexOf('\uFFFD');
    return {
      ok: false,
      code: 'invalid_utf8',
      reason: `row is not valid UTF-8 (first undecodable byte near character ${at + 1})`,
      raw,
    };
  }
}

function preview(row: RawRow): string {
  const text = looseUtf8.decode(row.bytes);
  if (row.complete && text.length <= RAW_PREVIEW_CHARS) return text;
  return `${cutChars(text, RAW_PREVIEW_CHARS)}…`;
}

// Cut at a character boundary: never leave half a surrogate pair behind.
function cutChars(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  const end = code >= 0xd800 && code <= 0xdbff ? max - 1 : max;
  return text.slice(0, end);
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${cutChars(flat, max)}…`;
}

// ---------------------------------------------------------------------------------------------
// Interpreting rows

interface RowInterpreter {
  take(row: RawRow): RowResult | undefined;
  /** Called once the whole file was read: a place for whole-file checks. */
  end(): void;
}

function failed(position: RowPosition, f: Failure): RowResult {
  return { ok: false, position, raw: f.raw, code: f.code, reason: f.reason };
}

class CsvRows implements RowInterpreter {
  private header: string[] | undefined;
  private headerHasNul = false;
  private rows = 0;

  constructor(
    private readonly file: string,
    private readonly maxRowBytes: number,
    private readonly requiredColumns: RequiredColumns,
  ) {}

  take(row: RawRow): RowResult | undefined {
    if (!this.header) {
      this.header = readHeader(this.file, row, this.maxRowBytes, this.requiredColumns);
      this.headerHasNul = this.header.some((name) => name.includes('\u0000'));
      return undefined;
    }
    const position = { line: row.line, row: ++this.rows };
    const decoded = decodeRow(row, this.maxRowBytes);
    if (!decoded.ok) return failed(position, decoded);
    const raw = decoded.text;
    const cells = parseCsvRecord(raw);
    if (!cells.ok) return failed(position, { code: 'bad_csv', reason: cells.reason, raw });
    const header = this.header;
    const found = cells.cells.length;
    if (found !== header.length) {
      const code = found > header.length ? 'extra_columns' : 'missing_columns';
      return failed(position, {
        code,
        reason: `row has ${found} ${found === 1 ? 'cell' : 'cells'}, header has ${header.length}`,
        raw,
      });
    }
    // fromEntries defines own properties, so a column named "__proto__" stays a plain value.
    const values = Object.fromEntries(header.map((name, i) => [name, cells.cells[i]]));
    // Every cell is a piece of raw: without a NUL in it or in the header there is none to find.
    const nul = this.headerHasNul || raw.includes('\u0000') ? nulField(values) : undefined;
    if (nul !== undefined)
      return failed(position, { code: 'nul_character', reason: nulReason(`column "${nul}"`), raw });
    return { ok: true, position, raw, values };
  }

  end(): void {
    if (!this.header) {
      throw new FileRejectedError('missing_header', `${this.file}: file is empty, expected a CSV header row`);
    }
  }
}

function readHeader(file: string, row: RawRow, maxRowBytes: number, required: RequiredColumns): string[] {
  const where = `${file} line ${row.line}`;
  const decoded = decodeRow(row, maxRowBytes);
  if (!decoded.ok) throw new FileRejectedError('bad_header', `${where}: unusable header: ${decoded.reason}`);
  // A JSON Lines file given where CSV is expected: one line for the file, not a header of "{...".
  if (/^\s*[{[]/.test(decoded.text) && parsesAsJson(decoded.text)) {
    throw new FileRejectedError(
      'wrong_format',
      `${where}: this is not CSV (it reads like JSON Lines); give a .csv file with a header row, or a .jsonl file where JSON Lines are expected`,
    );
  }
  const parsed = parseCsvRecord(decoded.text);
  if (!parsed.ok) throw new FileRejectedError('bad_header', `${where}: unusable header: ${parsed.reason}`);

  const names = parsed.cells.map((name) => name.trim());
  const seen = new Map<string, number>();
  names.forEach((name, i) => {
    if (name === '') {
      throw new FileRejectedError('bad_header', `${where}: header column ${i + 1} has no name`);
    }
    const first = seen.get(name);
    if (first !== undefined) {
      throw new FileRejectedError(
        'duplicate_header',
        // JSON quoting: a control character in a header must not reach the terminal raw.
        `${where}: duplicate header ${JSON.stringify(name)} (columns ${first + 1} and ${i + 1})`,
      );
    }
    seen.set(name, i);
  });

  const missing = (typeof required === 'function' ? required(names) : required).filter((name) => !seen.has(name));
  if (missing.length > 0) {
    throw new FileRejectedError(
      'missing_columns',
      `${where}: header lacks required ${missing.length === 1 ? 'column' : 'columns'} ${missing.map((m) => `"${m}"`).join(', ')}`,
    );
  }
  return names;
}

type ParsedRecord = { ok: true; cells: string[] } | { ok: false; reason: string };

/** One RFC 4180 record (already split off from its neighbours, without line ending) into cells. */
function parseCsvRecord(text: string): ParsedRecord {
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    const field = cells.length + 1;
    if (text.charCodeAt(i) === QUOTE) {
      let value = '';
      let from = i + 1;
      for (;;) {
        const q = text.indexOf('"', from);
        if (q < 0) return { ok: false, reason: `quoted field ${field} is never closed` };
        value += text.slice(from, q);
        if (text.charCodeAt(q + 1) === QUOTE) {
          value += '"';
          from = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      cells.push(value);
      if (i === text.length) return { ok: true, cells };
      if (text.charCodeAt(i) !== COMMA) {
        return { ok: false, reason: `unexpected text after the closing quote of field ${field}` };
      }
      i++;
    } else {
      const comma = text.indexOf(',', i);
      const end = comma < 0 ? text.length : comma;
      const value = text.slice(i, end);
      // RFC 4180: a field containing quotes must be quoted; guessing what was meant could
      // silently shift values between columns.
      if (value.includes('"')) return { ok: false, reason: `quote inside unquoted field ${field}` };
      cells.push(value);
      if (comma < 0) return { ok: true, cells };
      i = comma + 1;
    }
  }
}

class JsonlRows implements RowInterpreter {
  private rows = 0;

  constructor(
    private readonly file: string,
    private readonly maxRowBytes: number,
  ) {}

  take(row: RawRow): RowResult | undefined {
    // JSON ignores whitespace, so a whitespace-only line is as empty as an empty one.
    if (row.complete && isBlank(row.bytes)) return undefined;
    const position = { line: row.line, row: ++this.rows };
    const decoded = decodeRow(row, this.maxRowBytes);
    if (!decoded.ok) return failed(position, decoded);
    const raw = decoded.text;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (error) {
      if (position.row === 1) refuseCsvAsJsonl(this.file, row.line, raw);
      const detail = error instanceof Error ? error.message : String(error);
      return failed(position, {
        code: 'bad_json',
        reason: `invalid JSON: ${oneLine(detail, REASON_DETAIL_CHARS)}`,
        raw,
      });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return failed(position, {
        code: 'not_an_object',
        reason: `line holds a JSON ${jsonKind(parsed)}, expected an object`,
        raw,
      });
    }
    // JSON writes U+0000 only as the escape \u0000 (a raw one is a syntax error): a line without
    // that text holds none, and the walk through every value can be skipped.
    const nul = raw.includes('\\u0000') ? nulCharacterReason(parsed) : undefined;
    if (nul !== undefined) return failed(position, { code: 'nul_character', reason: nul, raw });
    return { ok: true, position, raw, values: parsed as Record<string, unknown> };
  }

  end(): void {}
}

/**
 * A CSV file given where JSON Lines are expected would quarantine every line as bad JSON: its
 * first line (unparseable, not an object, with commas) refuses the whole file instead.
 */
/** A header such as `[id],name` is odd but legal CSV: only a line that is JSON is refused. */
function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function refuseCsvAsJsonl(file: string, line: number, raw: string): void {
  const text = raw.trim();
  if (!text.startsWith('{') && !text.startsWith('[') && text.includes(',')) {
    throw new FileRejectedError(
      'wrong_format',
      `${file} line ${line}: this is not JSON Lines (it reads like a CSV header); give a .jsonl file of JSON objects, or a .csv file where CSV is expected`,
    );
  }
}

function isBlank(bytes: Buffer): boolean {
  for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== CR) return false;
  return true;
}

function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

// PostgreSQL text and jsonb cannot hold U+0000: one such character would fail the whole import's
// transaction, so the row that carries it is refused on its own.
// Iterative, so a pathologically deep JSON line cannot overflow the stack.
function nulField(root: unknown): string | undefined {
  const todo: Array<[unknown, string]> = [[root, '']];
  for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
    const [value, path] = next;
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return path;
    } else if (value !== null && typeof value === 'object') {
      for (const [key, child] of Object.entries(value)) {
        const at = path === '' ? key : `${path}.${key}`;
        if (key.includes('\u0000')) return at;
        todo.push([child, at]);
      }
    }
  }
  return undefined;
}

/** The reason to refuse a JSON row (file line or API item) that holds U+0000, if it does. */
export function nulCharacterReason(value: unknown): string | undefined {
  const field = nulField(value);
  return field === undefined ? undefined : nulReason(`field ${field}`);
}

function nulReason(where: string): string {
  return `${oneLine(where.replace(/\u0000/g, '\\0'), REASON_DETAIL_CHARS)}: contains a NUL character (U+0000), which cannot be stored`;
}
