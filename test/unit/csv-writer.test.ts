import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { csvCell, csvLine, CsvWriteError, neutraliseFormula } from '../../src/export/csv';

describe('neutraliseFormula', () => {
  it('prefixes text that a spreadsheet would run as a formula', () => {
    for (const text of ['=1+2', '+1', '-1', '@SUM(A1)', '\tx', '\rx', '=HYPERLINK("http://x")']) {
      expect(neutraliseFormula(text)).toBe(`'${text}`);
    }
  });

  it('leaves other text alone', () => {
    for (const text of ['', 'abc', ' =1', "'=1", '1-2', 'a=b', '12.50', '\nx']) {
      expect(neutraliseFormula(text)).toBe(text);
    }
  });
});

describe('csvCell', () => {
  it('writes null and undefined as empty', () => {
    expect(csvCell(null)).toBe('');
    expect(csvCell(undefined)).toBe('');
    expect(csvCell('')).toBe('');
  });

  it('writes numbers as numbers, never neutralised', () => {
    expect(csvCell(-1250)).toBe('-1250');
    expect(csvCell(12.5)).toBe('12.5');
    expect(csvCell(0)).toBe('0');
    expect(csvCell(-0)).toBe('0');
  });

  it('refuses non-finite numbers with a stable code', () => {
    for (const n of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(() => csvCell(n)).toThrow(CsvWriteError);
      try {
        csvCell(n);
      } catch (error) {
        expect((error as CsvWriteError).code).toBe('non_finite_number');
      }
    }
  });

  it('quotes cells with comma, quote, CR or LF and doubles quotes', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('a\nb')).toBe('"a\nb"');
    expect(csvCell('a\r\nb')).toBe('"a\r\nb"');
    expect(csvCell('a\rb')).toBe('"a\rb"');
    expect(csvCell('"')).toBe('""""');
    expect(csvCell('tab\there')).toBe('tab\there');
  });

  it('neutralises formulas by default, then quotes as needed', () => {
    expect(csvCell('=1+2')).toBe("'=1+2");
    expect(csvCell('-5')).toBe("'-5");
    expect(csvCell('=HYPERLINK("x","y")')).toBe(`"'=HYPERLINK(""x"",""y"")"`);
    expect(csvCell('\rcmd')).toBe(`"'\rcmd"`);
    expect(csvCell('@x', { formulaSafe: true })).toBe("'@x");
  });

  it('writes formulas verbatim when formulaSafe is false', () => {
    expect(csvCell('=1+2', { formulaSafe: false })).toBe('=1+2');
    expect(csvCell('-12.50', { formulaSafe: false })).toBe('-12.50');
    expect(csvCell('=a,b', { formulaSafe: false })).toBe('"=a,b"');
  });

  it('never lets a formula-safe text cell start with a trigger character', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('=', '+', '-', '@', '\t', '\r', '\n', '"', ',', 'a', ' ') }),
        (text) => {
          const cell = csvCell(text);
          const content = cell.startsWith('"') ? cell.slice(1) : cell;
          expect(content).not.toMatch(/^[=+\-@\t\r]/);
        },
      ),
    );
  });
});

describe('csvLine', () => {
  it('joins cells with commas and ends with CRLF', () => {
    expect(csvLine(['a', 1, null, undefined, 'x,y', '=z'])).toBe(`a,1,,,"x,y",'=z\r\n`);
  });

  it('passes options to every cell', () => {
    expect(csvLine(['=a', '-1'], { formulaSafe: false })).toBe('=a,-1\r\n');
  });

  it('writes a record of one empty cell as "" so it does not read as a blank line', () => {
    expect(csvLine([''])).toBe('""\r\n');
    expect(csvLine([null])).toBe('""\r\n');
    expect(csvLine(['', ''])).toBe(',\r\n');
  });
});
