import type { RecordSource } from '../domain/contract';
import { normaliseMatchKey } from '../domain/contract';
import { ReconError } from '../domain/errors';
import { parseCustomerTimestamp } from '../domain/timestamps';
import { hash } from 'node:crypto';
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

/**
 * A field as the text a boolean or timestamp is read from. A JSON array or object gives its
 * String() form as it always has (['yes'] reads 'yes'; an object '[object Object]', refused).
 */
function asText(raw: unknown): string {
  return String(raw);
}

function convert(field: string, type: string, raw: unknown, timeZone: string): string | number | boolean | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw === 'string' && raw.trim() === '') return null;
  switch (type) {
    case 'number': {
      // Plain decimals only: Number() would also take [], '0x10' and '1_000' without a word.
      const n =
        typeof raw === 'number' ? raw : typeof raw === 'string' && DECIMAL.test(raw.trim()) ? Number(raw.trim()) : NaN;
      if (!Number.isFinite(n))
        throw new ReconError(
          'invalid_field',
          `field ${field}: expected a number, got ${JSON.stringify(raw).slice(0, 60)}`,
        );
      return n;
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      const t = asText(raw).trim().toLowerCase();
      if (TRUE.has(t)) return true;
      if (FALSE.has(t)) return false;
      throw new ReconError(
        'invalid_field',
        `field ${field}: expected true or false, got ${JSON.stringify(raw).slice(0, 60)}`,
      );
    }
    case 'timestamp':
      try {
        return parseCustomerTimestamp(asText(raw), timeZone).toISOString();
      } catch (err) {
        throw new ReconError((err as ReconError).code ?? 'bad_timestamp', `field ${field}: ${(err as Error).message}`);
      }
    default:
      if (typeof raw === 'object') return JSON.stringify(raw);
      return asText(raw);
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

type Field = RecordSource['fields'][string];
interface SourceShape {
  fields: Array<[string, Field]>;
  /** The field names in canonical JSON order, each with its quoted key: `"name":`. */
  canonical: Array<[string, string]>;
  /** A field named __proto__ would not be an own key of data: such a source takes the general way. */
  general: boolean;
}

// The source's fields once per import, not once per row.
const SHAPES = new WeakMap<RecordSource, SourceShape>();
function shapeOf(source: RecordSource): SourceShape {
  let shape = SHAPES.get(source);
  if (!shape) {
    const fields = Object.entries(source.fields);
    const canonical = fields
      .map(([name]) => name)
      .sort()
      .map((name, i): [string, string] => [name, `${i === 0 ? '{' : ','}${JSON.stringify(name)}:`]);
    SHAPES.set(
      source,
      (shape = { fields, canonical, general: canonical.length === 0 || fields.some(([name]) => name === '__proto__') }),
    );
  }
  return shape;
}

/**
 * sha256Of(data) for a row's data, whose keys are the source's fields and values plain: the
 * canonical JSON written out in the precomputed key order.
 */
function rowSha256(data: MappedRecord['data'], shape: SourceShape): string {
  if (shape.general) return sha256Of(data);
  let text = '';
  for (const [name, key] of shape.canonical) text += key + JSON.stringify(data[name] ?? null);
  return hash('sha256', `${text}}`, 'hex');
}

/** Maps one row of the customer's export onto the contract's fields, typed and normalised. */
export function mapRecordRow(
  values: Record<string, unknown>,
  source: RecordSource,
  opts: { timeZone: string; matchField: string; caseInsensitive: boolean },
): MappedRecord {
  const data: MappedRecord['data'] = {};
  const timeZone = source.timezone ?? opts.timeZone;
  const shape = shapeOf(source);
  for (const [name, f] of shape.fields) data[name] = convert(name, f.type, values[f.column], timeZone);
  const id = data[source.idField];
  if (id === null || id === '')
    throw new ReconError(
      'missing_field',
      `field ${source.idField} (column "${source.fields[source.idField].column}"): required`,
    );
  const key = data[opts.matchField];
  if (key === null || key === '')
    throw new ReconError(
      'missing_field',
      `field ${opts.matchField} (column "${source.fields[opts.matchField].column}"): required to match claims`,
    );
  const updatedAt = source.updatedAtField ? (data[source.updatedAtField] as string | null) : null;
  return {
    externalId: String(id).trim(),
    matchKey: normaliseMatchKey(String(key), opts.caseInsensitive),
    updatedAt,
    data,
    rowSha256: rowSha256(data, shape),
  };
}
