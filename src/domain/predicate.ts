import { z } from 'zod';
import { ReconError } from './errors';
import { parseCustomerTimestamp } from './timestamps';

/**
 * The contract's success rule (DESIGN 4): a JSON object with exactly one operator key.
 * Fields are mapped field names of the record source. Evaluation is a plain interpreter over
 * this tree; rules are data and are never compiled to code.
 */
type Scalar = string | number | boolean | null;

export type Predicate =
  | { eq: [string, Scalar] }
  | { ne: [string, Scalar] }
  | { in: [string, Scalar[]] }
  | { not_in: [string, Scalar[]] }
  | { exists: string }
  // Ordering a boolean or null means nothing, so the rule language does not allow it.
  | { gte: [string, string | number] }
  | { lte: [string, string | number] }
  | { all: Predicate[] }
  | { any: Predicate[] }
  | { not: Predicate };

const OPERATORS = ['eq', 'ne', 'in', 'not_in', 'exists', 'gte', 'lte', 'all', 'any', 'not'] as const;
type Operator = (typeof OPERATORS)[number];

function isOperator(key: string): key is Operator {
  return (OPERATORS as readonly string[]).includes(key);
}

// ---------------------------------------------------------------------------------------------
// Value semantics shared by evaluation and validation

function isMissing(value: unknown): value is null | undefined {
  return value === undefined || value === null;
}

const NUMERIC_STRING = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function numberFromString(text: string): number | undefined {
  const trimmed = text.trim();
  return NUMERIC_STRING.test(trimmed) ? Number(trimmed) : undefined;
}

/**
 * Both sides as numbers when that is meaningful: two numbers, or a number and a numeric string.
 * Customers' CSV exports carry numbers as text, while rules are written with JSON numbers.
 */
function numericPair(a: unknown, b: unknown): [number, number] | undefined {
  if (typeof a === 'number' && typeof b === 'number') return [a, b];
  if (typeof a === 'number' && typeof b === 'string') {
    const n = numberFromString(b);
    return n === undefined ? undefined : [a, n];
  }
  if (typeof a === 'string' && typeof b === 'number') {
    const n = numberFromString(a);
    return n === undefined ? undefined : [n, b];
  }
  return undefined;
}

const LOOKS_LIKE_DATE = /^\s*\d{4}-\d{2}-\d{2}/;

/**
 * A value as an instant, if it is one. Strings go through the same strict reader as customer
 * files; one without an offset is read as UTC (mapped timestamps are normalised to UTC before
 * they get here), so the answer never depends on the process timezone.
 */
function instantOf(value: unknown): number | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.getTime();
  if (typeof value !== 'string' || !LOOKS_LIKE_DATE.test(value)) return undefined;
  try {
    return parseCustomerTimestamp(value, 'UTC').getTime();
  } catch {
    return undefined;
  }
}

function matchesValue(actual: unknown, expected: Scalar): boolean {
  if (isMissing(actual) || expected === null) return false;
  if (typeof actual === typeof expected) return actual === expected;
  const numbers = numericPair(actual, expected);
  return numbers !== undefined && numbers[0] === numbers[1];
}

/** -1, 0 or 1 when `actual` and `expected` are comparable numbers or instants; undefined otherwise. */
function orderOf(actual: unknown, expected: string | number): -1 | 0 | 1 | undefined {
  if (isMissing(actual)) return undefined;
  const pair = numericPair(actual, expected) ?? instantPair(actual, expected);
  if (pair === undefined) return undefined;
  const [a, b] = pair;
  if (a < b) return -1;
  if (a > b) return 1;
  return a === b ? 0 : undefined; // NaN compares with nothing
}

function instantPair(a: unknown, b: unknown): [number, number] | undefined {
  const left = instantOf(a);
  const right = left === undefined ? undefined : instantOf(b);
  return left === undefined || right === undefined ? undefined : [left, right];
}

function isOrderable(value: string): boolean {
  return numberFromString(value) !== undefined || instantOf(value) !== undefined;
}

// ---------------------------------------------------------------------------------------------
// Schema

const FieldSchema = z.string({ error: 'field must be a string' }).min(1, 'field must not be empty');
const ScalarSchema = z.union([z.string(), z.number(), z.boolean(), z.null()], {
  error: 'value must be a string, number, boolean or null',
});
const OrderedValueSchema = z
  .union([z.number(), z.string()], { error: 'value must be a number or a time' })
  .refine((value) => typeof value === 'number' || isOrderable(value), {
    message: 'value must be a number or an ISO 8601 time such as 2026-03-01T00:00:00Z',
  });

export const PredicateSchema: z.ZodType<Predicate> = z.lazy(() => RuleSchema);

const RuleListSchema = z.array(PredicateSchema, { error: 'expects a list of rules' });

const OPERAND_SCHEMAS: Record<Operator, z.ZodType> = {
  eq: z.tuple([FieldSchema, ScalarSchema]),
  ne: z.tuple([FieldSchema, ScalarSchema]),
  in: z.tuple([FieldSchema, z.array(ScalarSchema, { error: 'values must be a list' })]),
  not_in: z.tuple([FieldSchema, z.array(ScalarSchema, { error: 'values must be a list' })]),
  exists: FieldSchema,
  gte: z.tuple([FieldSchema, OrderedValueSchema]),
  lte: z.tuple([FieldSchema, OrderedValueSchema]),
  all: RuleListSchema,
  any: RuleListSchema,
  not: PredicateSchema,
};

// How each leaf operator is written, for error messages. Composite operators report the
// nested rule's own message instead, so a deep mistake is not wrapped once per level.
const LEAF_SHAPES: Partial<Record<Operator, string>> = {
  eq: '[field, value]',
  ne: '[field, value]',
  in: '[field, [values...]]',
  not_in: '[field, [values...]]',
  exists: 'a field name',
  gte: '[field, number or time]',
  lte: '[field, number or time]',
};

const RuleSchema = z
  .record(z.string(), z.unknown(), { error: `a rule must be an object with one operator: ${OPERATORS.join(', ')}` })
  .superRefine((rule, ctx) => {
    const keys = Object.keys(rule);
    if (keys.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          keys.length === 0
            ? `a rule needs exactly one operator: ${OPERATORS.join(', ')}`
            : `a rule has exactly one operator, found ${keys.join(', ')}; combine rules with "all" or "any"`,
      });
      return;
    }
    const operator = keys[0];
    if (!isOperator(operator)) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown operator "${operator}" (expected one of ${OPERATORS.join(', ')})`,
      });
      return;
    }
    const result = OPERAND_SCHEMAS[operator].safeParse(rule[operator]);
    if (result.success) return;
    const shape = LEAF_SHAPES[operator];
    for (const issue of result.error.issues) {
      ctx.addIssue({
        code: 'custom',
        message: shape === undefined ? issue.message : `"${operator}" expects ${shape}: ${issue.message}`,
        path: [operator, ...issue.path],
      });
    }
  })
  .transform((rule) => rule as Predicate);

// ---------------------------------------------------------------------------------------------
// Fields

function collectFields(p: Predicate, into: Set<string>): void {
  if ('exists' in p) into.add(p.exists);
  else if ('all' in p) p.all.forEach((child) => collectFields(child, into));
  else if ('any' in p) p.any.forEach((child) => collectFields(child, into));
  else if ('not' in p) collectFields(p.not, into);
  else into.add(operandOf(p)[0]);
}

function operandOf(
  p: Extract<
    Predicate,
    { eq: unknown } | { ne: unknown } | { in: unknown } | { not_in: unknown } | { gte: unknown } | { lte: unknown }
  >,
): [string, unknown] {
  if ('eq' in p) return p.eq;
  if ('ne' in p) return p.ne;
  if ('in' in p) return p.in;
  if ('not_in' in p) return p.not_in;
  if ('gte' in p) return p.gte;
  return p.lte;
}

/** Every field the rule reads, once each, in code-unit order (stable across locales). */
export function predicateFields(p: Predicate): string[] {
  const fields = new Set<string>();
  collectFields(p, fields);
  return [...fields].sort();
}

export type FieldType = 'string' | 'number' | 'timestamp' | 'boolean';

export interface RuleIssue {
  /** Where in the rule, e.g. ['all', 1, 'gte']. */
  path: (string | number)[];
  message: string;
}

const ARTICLE: Record<FieldType, string> = {
  string: 'a text',
  number: 'a number',
  timestamp: 'a timestamp',
  boolean: 'a boolean',
};

/** Why `value` cannot be compared with a field of `type`, or undefined when it can. */
function valueMismatch(field: string, type: FieldType, value: Scalar): string | undefined {
  // null matches nothing (DESIGN 4): allowed for every type, "exists" is the way to test presence.
  if (value === null) return undefined;
  const ok =
    (type === 'string' && typeof value === 'string') ||
    (type === 'number' && typeof value === 'number') ||
    (type === 'boolean' && typeof value === 'boolean') ||
    (type === 'timestamp' && typeof value === 'string' && instantOf(value) !== undefined);
  if (ok) return undefined;
  const shown = JSON.stringify(value);
  if (type === 'timestamp')
    return `"${field}" is a timestamp field: compare it with an ISO 8601 time such as 2026-03-01T00:00:00Z, not ${shown}`;
  const wanted = type === 'string' ? 'text' : type === 'number' ? 'a number' : 'true or false';
  return `"${field}" is ${ARTICLE[type]} field: compare it with ${wanted}, not ${typeof value === 'string' ? `the text ${shown}` : shown}`;
}

/**
 * Comparisons that can never mean what was written, given the mapped fields' types: ordering a
 * text or boolean field (gte, lte), or comparing a field with a value of another type (a number
 * field with text, a timestamp field with something that is not a valid time). Evaluation would
 * quietly answer false for them; the contract is refused instead. Fields the source does not map
 * are validatePredicateFields' business and skipped here.
 */
export function validatePredicateTypes(p: Predicate, types: ReadonlyMap<string, FieldType>): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const walk = (rule: Predicate, at: (string | number)[]) => {
    if ('all' in rule) return rule.all.forEach((child, i) => walk(child, [...at, 'all', i]));
    if ('any' in rule) return rule.any.forEach((child, i) => walk(child, [...at, 'any', i]));
    if ('not' in rule) return walk(rule.not, [...at, 'not']);
    if ('exists' in rule) return;
    const op = Object.keys(rule)[0] as 'eq' | 'ne' | 'in' | 'not_in' | 'gte' | 'lte';
    const [field, operand] = operandOf(rule);
    const type = types.get(field);
    if (type === undefined) return;
    if ((op === 'gte' || op === 'lte') && (type === 'string' || type === 'boolean')) {
      issues.push({
        path: [...at, op],
        message: `"${op}" needs a number or timestamp field, and "${field}" is ${ARTICLE[type]} field (use eq or in)`,
      });
      return;
    }
    const values = op === 'in' || op === 'not_in' ? (operand as Scalar[]) : [operand as Scalar];
    values.forEach((value, i) => {
      const why = valueMismatch(field, type, value);
      if (why) issues.push({ path: op === 'in' || op === 'not_in' ? [...at, op, 1, i] : [...at, op, 1], message: why });
    });
  };
  walk(p, []);
  return issues;
}

/** Fields the rule reads that the record source does not map; empty when the rule is usable. */
export function validatePredicateFields(p: Predicate, known: Set<string>): string[] {
  return predicateFields(p).filter((field) => !known.has(field));
}

// ---------------------------------------------------------------------------------------------
// Evaluation

function fieldValue(data: Record<string, unknown>, field: string): unknown {
  // Own properties only: a field named "constructor" must not find Object's.
  return Object.hasOwn(data, field) ? data[field] : undefined;
}

/**
 * Whether `data` (one record version, mapped field name → value) satisfies the rule.
 * A field that is absent or null is missing: eq, in, gte, lte and exists are false for it;
 * ne and not_in are true. A null in the rule matches nothing (use "exists" to test presence).
 * Comparisons that make no sense (a word against a number) are false, never an error.
 */
export function evaluatePredicate(p: Predicate, data: Record<string, unknown>): boolean {
  if ('all' in p) return p.all.every((child) => evaluatePredicate(child, data));
  if ('any' in p) return p.any.some((child) => evaluatePredicate(child, data));
  if ('not' in p) return !evaluatePredicate(p.not, data);
  if ('exists' in p) return !isMissing(fieldValue(data, p.exists));
  if ('eq' in p) return matchesValue(fieldValue(data, p.eq[0]), p.eq[1]);
  if ('ne' in p) return !matchesValue(fieldValue(data, p.ne[0]), p.ne[1]);
  if ('in' in p) {
    const actual = fieldValue(data, p.in[0]);
    return p.in[1].some((candidate) => matchesValue(actual, candidate));
  }
  if ('not_in' in p) {
    const actual = fieldValue(data, p.not_in[0]);
    return !p.not_in[1].some((candidate) => matchesValue(actual, candidate));
  }
  if ('gte' in p) {
    const order = orderOf(fieldValue(data, p.gte[0]), p.gte[1]);
    return order === 0 || order === 1;
  }
  if ('lte' in p) {
    const order = orderOf(fieldValue(data, p.lte[0]), p.lte[1]);
    return order === 0 || order === -1;
  }
  // Only reachable with a rule that skipped PredicateSchema; refuse rather than guess.
  const keys = typeof p === 'object' && p !== null ? Object.keys(p).join(', ') : typeof p;
  throw new ReconError('invalid_predicate', `not a predicate rule (found: ${keys})`, { predicate: p });
}
