import type { RecordSource } from '../domain/contract';
import { normaliseMatchKey } from '../domain/contract';
import { ReconError } from '../domain/errors';
import { parseCustomerTimestamp } from '../domain/timestamps';
import { sha256Of } from './claim-row';

export interface MappedRecord {
  externalId: string;
  matchKey: string;
  /** The record's own update time, or null when the source has none (import time applies). */
  updatedAt: string | null;
  data: Record<string, string | number | boolean | null>;
  rowSha256: string;
}

const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const TRUE = new Set(['true', 'yes', 'y', '1', 't']);
const FALSE = new Set(['false', 'no', 'n', '0', 'f']);

function convert(field: string, type: string, raw: unknown, timeZone: string): string | number | boolean | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw === 'string' && raw.trim() === '') return null;
  switch (type) {
    case 'number': {
      // Plain decimals only: Number() would also take [], '0x10' and '1_000' without a word.
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && DECIMAL.test(raw.trim()) ? Number(raw.trim()) : NaN;
      if (!Number.isFinite(n)) throw new ReconError('invalid_field', `field ${field}: expected a number, got ${JSON.stringify(raw).slice(0, 60)}`);
      return n;
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      const t = String(raw).trim().toLowerCase();
      if (TRUE.has(t)) return true;
      if (FALSE.has(t)) return false;
      throw new ReconError('invalid_field', `field ${field}: expected true or false, got ${JSON.stringify(raw).slice(0, 60)}`);
    }
    case 'timestamp':
      try {
        return parseCustomerTimestamp(String(raw), timeZone).toISOString();
      } catch (err) {
        throw new ReconError((err as ReconError).code ?? 'bad_timestamp', `field ${field}: ${(err as Error).message}`);
      }
    default:
      if (typeof raw === 'object') return JSON.stringify(raw);
      return String(raw);
  }
}

/**
 * The CSV columns the contract maps for a source. A file without one of them is refused whole:
 * reading the missing column as empty in every row would silently turn solved tickets into
 * unsolved ones.
 */
export function mappedColumns(source: RecordSource): string[] {
  return [...new Set(Object.values(source.fields).map((f) => f.column))];
}

// The source's fields once per import, not once per row.
const FIELDS = new WeakMap<RecordSource, Array<[string, RecordSource['fields'][string]]>>();
function fieldsOf(source: RecordSource): Array<[string, RecordSource['fields'][string]]> {
  let fields = FIELDS.get(source);
  if (!fields) FIELDS.set(source, (fields = Object.entries(source.fields)));
  return fields;
}

/** Maps one row of the customer's export onto the contract's fields, typed and normalised. */
export function mapRecordRow(values: Record<string, unknown>, source: RecordSource, opts: { timeZone: string; matchField: string; caseInsensitive: boolean }): MappedRecord {
  const data: MappedRecord['data'] = {};
  const timeZone = source.timezone ?? opts.timeZone;
  for (const [name, f] of fieldsOf(source)) data[name] = convert(name, f.type, values[f.column], timeZone);
  const id = data[source.idField];
  if (id === null || id === '') throw new ReconError('missing_field', `field ${source.idField} (column "${source.fields[source.idField].column}"): required`);
  const key = data[opts.matchField];
  if (key === null || key === '') throw new ReconError('missing_field', `field ${opts.matchField} (column "${source.fields[opts.matchField].column}"): required to match claims`);
  const updatedAt = source.updatedAtField ? (data[source.updatedAtField] as string | null) : null;
  return {
    externalId: String(id).trim(),
    matchKey: normaliseMatchKey(String(key), opts.caseInsensitive),
    updatedAt,
    data,
    rowSha256: sha256Of(data),
  };
}
