// RFC 4180 CSV writing for the finance export. The file is opened by people in spreadsheets, so
// text cells are neutralised against formula injection by default.

export type CsvValue = string | number | null | undefined;

export interface CsvCellOptions {
  /** Neutralise text that a spreadsheet would run as a formula. Default true. */
  formulaSafe?: boolean;
}

/** A value that cannot be written faithfully; a stable code lets callers tell it apart. */
export class CsvWriteError extends Error {
  override readonly name = 'CsvWriteError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

// Spreadsheets treat a cell starting with these as a formula (OWASP "CSV injection"); tab and CR
// matter because some importers strip them and then see the formula behind.
const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/**
 * Prefixes a text cell with `'` when a spreadsheet would otherwise execute it.
 *
 * Only for text. Numeric cells are written by the caller as numbers (csvCell never neutralises a
 * number) and must not be passed through this: a negative amount would turn into the text
 * "'-12". A decimal string the export built itself from an integer amount (e.g. "-12.50") is safe
 * by construction and may be written with `{ formulaSafe: false }`.
 */
export function neutraliseFormula(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}

export function csvCell(value: CsvValue, opts: CsvCellOptions = {}): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') {
    // NaN or Infinity in a finance file means a bug upstream; writing "NaN" would hide it.
    if (!Number.isFinite(value)) throw new CsvWriteError('non_finite_number', `cannot write ${value} as a CSV number`);
    return String(value);
  }
  const text = opts.formulaSafe === false ? value : neutraliseFormula(value);
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One record with the RFC 4180 line ending. */
export function csvLine(cells: CsvValue[], opts: CsvCellOptions = {}): string {
  const line = cells.map((cell) => csvCell(cell, opts)).join(',');
  // A record that is a single empty cell would be a blank line, which readers skip as no record.
  return `${line === '' && cells.length === 1 ? '""' : line}\r\n`;
}
