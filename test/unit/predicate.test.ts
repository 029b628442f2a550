import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReconError } from '../../src/domain/errors';
import {
  evaluatePredicate,
  type Predicate,
  PredicateSchema,
  predicateFields,
  validatePredicateFields,
  validatePredicateTypes,
  type FieldType,
} from '../../src/domain/predicate';

const ticket = {
  status: 'solved',
  priority: 3,
  csat: '5',
  escalated: false,
  reopened_at: null,
  solved_at: '2026-03-01T10:00:00Z',
  created_at: '2026-02-27',
};

const holds = (p: Predicate, data: Record<string, unknown> = ticket) => evaluatePredicate(p, data);

describe('evaluatePredicate: each operator', () => {
  it('eq compares strings case-sensitively, numbers numerically, booleans exactly', () => {
    expect(holds({ eq: ['status', 'solved'] })).toBe(true);
    expect(holds({ eq: ['status', 'Solved'] })).toBe(false);
    expect(holds({ eq: ['priority', 3] })).toBe(true);
    expect(holds({ eq: ['priority', 3.0] })).toBe(true);
    expect(holds({ eq: ['priority', 4] })).toBe(false);
    expect(holds({ eq: ['escalated', false] })).toBe(true);
    expect(holds({ eq: ['escalated', true] })).toBe(false);
  });

  it('eq treats a numeric string and a number as numbers, but never mixes booleans', () => {
    expect(holds({ eq: ['csat', 5] })).toBe(true);
    expect(holds({ eq: ['csat', 5.0] })).toBe(true);
    expect(holds({ eq: ['priority', '3'] })).toBe(true);
    expect(holds({ eq: ['csat', '5.0'] })).toBe(false); // two strings compare as text
    expect(holds({ eq: ['escalated', 'false'] })).toBe(false);
    expect(holds({ eq: ['escalated', 0] })).toBe(false);
    expect(holds({ eq: ['flag', true] }, { flag: 1 })).toBe(false);
  });

  it('ne is the complement of eq on present fields', () => {
    expect(holds({ ne: ['status', 'open'] })).toBe(true);
    expect(holds({ ne: ['status', 'solved'] })).toBe(false);
    expect(holds({ ne: ['csat', 5] })).toBe(false);
  });

  it('in and not_in test membership', () => {
    expect(holds({ in: ['status', ['solved', 'closed']] })).toBe(true);
    expect(holds({ in: ['status', ['open', 'pending']] })).toBe(false);
    expect(holds({ in: ['priority', [1, 2, 3]] })).toBe(true);
    expect(holds({ in: ['status', []] })).toBe(false);
    expect(holds({ not_in: ['status', ['open', 'pending']] })).toBe(true);
    expect(holds({ not_in: ['status', ['solved']] })).toBe(false);
    expect(holds({ not_in: ['status', []] })).toBe(true);
  });

  it('exists is true for any present non-null value, including false, 0 and ""', () => {
    expect(holds({ exists: 'status' })).toBe(true);
    expect(holds({ exists: 'escalated' })).toBe(true);
    expect(holds({ exists: 'n' }, { n: 0 })).toBe(true);
    expect(holds({ exists: 's' }, { s: '' })).toBe(true);
    expect(holds({ exists: 'reopened_at' })).toBe(false);
    expect(holds({ exists: 'nope' })).toBe(false);
  });

  it('gte and lte compare numbers, including numeric strings against numbers', () => {
    expect(holds({ gte: ['priority', 3] })).toBe(true);
    expect(holds({ gte: ['priority', 4] })).toBe(false);
    expect(holds({ lte: ['priority', 3] })).toBe(true);
    expect(holds({ lte: ['priority', 2.5] })).toBe(false);
    expect(holds({ gte: ['csat', 4] })).toBe(true);
    expect(holds({ lte: ['csat', 4] })).toBe(false);
    expect(holds({ gte: ['priority', '2'] })).toBe(true);
    expect(holds({ gte: ['n', -1] }, { n: ' -0.5 ' })).toBe(true);
    expect(holds({ gte: ['n', 1] }, { n: '1e3' })).toBe(true);
  });

  it('gte and lte compare ISO 8601 times as instants, whatever their offsets', () => {
    expect(holds({ gte: ['solved_at', '2026-03-01T10:00:00Z'] })).toBe(true);
    expect(holds({ lte: ['solved_at', '2026-03-01T10:00:00Z'] })).toBe(true);
    expect(holds({ gte: ['solved_at', '2026-03-01T11:30:00+02:00'] })).toBe(true); // 09:30Z
    expect(holds({ gte: ['solved_at', '2026-03-01T11:30:00+01:00'] })).toBe(false); // 10:30Z
    expect(holds({ gte: ['solved_at', '2026-03-01'] })).toBe(true);
    expect(holds({ lte: ['created_at', '2026-02-27T00:00:00.000Z'] })).toBe(true);
    expect(holds({ gte: ['t', '2026-03-01T09:00:00Z'] }, { t: new Date('2026-03-01T10:00:00Z') })).toBe(true);
    expect(holds({ lte: ['t', '2026-03-01 10:00:00Z'] }, { t: '2026-03-01T10:00:00.000Z' })).toBe(true);
  });

  it('reads a time without an offset as UTC, never in the process timezone', () => {
    expect(holds({ gte: ['t', '2026-03-01T10:00:00Z'] }, { t: '2026-03-01T10:00' })).toBe(true);
    expect(holds({ lte: ['t', '2026-03-01T10:00:00Z'] }, { t: '2026-03-01T10:00' })).toBe(true);
  });

  it('is false, never an error, when the two sides are not comparable', () => {
    expect(holds({ gte: ['solved_at', 5] })).toBe(false); // time vs number
    expect(holds({ lte: ['priority', '2026-03-01'] })).toBe(false); // number vs time
    expect(holds({ gte: ['status', 1] })).toBe(false);
    expect(holds({ gte: ['escalated', 0] })).toBe(false);
    expect(holds({ gte: ['t', '2026-03-01'] }, { t: '2026-02-30' })).toBe(false); // no such day
    expect(holds({ gte: ['t', '2026-03-01'] }, { t: { nested: true } })).toBe(false);
    expect(holds({ gte: ['t', 1] }, { t: Number.NaN })).toBe(false);
    expect(holds({ lte: ['t', 1] }, { t: Number.NaN })).toBe(false);
    // Two numeric strings are text, and text has no order in this language.
    expect(holds({ gte: ['csat', '4'] })).toBe(false);
  });
});

describe('evaluatePredicate: missing fields', () => {
  const missingValues: Record<string, unknown>[] = [{}, { f: null }, { f: undefined }];

  it.each(missingValues)('undefined and null are missing (%j)', (data) => {
    expect(holds({ eq: ['f', 'x'] }, data)).toBe(false);
    expect(holds({ in: ['f', ['x']] }, data)).toBe(false);
    expect(holds({ gte: ['f', 0] }, data)).toBe(false);
    expect(holds({ lte: ['f', 0] }, data)).toBe(false);
    expect(holds({ exists: 'f' }, data)).toBe(false);
    expect(holds({ ne: ['f', 'x'] }, data)).toBe(true);
    expect(holds({ not_in: ['f', ['x']] }, data)).toBe(true);
  });

  it('a null in the rule matches nothing, not even a missing field', () => {
    expect(holds({ eq: ['f', null] }, {})).toBe(false);
    expect(holds({ eq: ['f', null] }, { f: null })).toBe(false);
    expect(holds({ ne: ['f', null] }, { f: 'x' })).toBe(true);
  });

  it('does not find inherited properties such as "constructor"', () => {
    expect(holds({ exists: 'constructor' }, {})).toBe(false);
    expect(holds({ exists: 'toString' }, {})).toBe(false);
    expect(holds({ exists: '__proto__' }, {})).toBe(false);
  });
});

describe('evaluatePredicate: composition', () => {
  it('all([]) is true and any([]) is false', () => {
    expect(holds({ all: [] })).toBe(true);
    expect(holds({ any: [] })).toBe(false);
  });

  it('evaluates nested rules', () => {
    const resolvedNotEscalated: Predicate = {
      all: [
        { in: ['status', ['solved', 'closed']] },
        { not: { eq: ['escalated', true] } },
        { any: [{ gte: ['csat', 4] }, { not: { exists: 'csat' } }] },
        { not: { exists: 'reopened_at' } },
      ],
    };
    expect(holds(resolvedNotEscalated)).toBe(true);
    expect(holds(resolvedNotEscalated, { ...ticket, csat: '2' })).toBe(false);
    expect(holds(resolvedNotEscalated, { ...ticket, csat: undefined })).toBe(true);
    expect(holds(resolvedNotEscalated, { ...ticket, reopened_at: '2026-03-02T00:00:00Z' })).toBe(false);
    expect(holds(resolvedNotEscalated, { ...ticket, escalated: true })).toBe(false);
  });

  it('refuses a rule that never went through the schema', () => {
    const bogus = { gt: ['priority', 1] } as unknown as Predicate;
    expect(() => holds(bogus)).toThrowError(ReconError);
    try {
      holds(bogus);
    } catch (error) {
      expect((error as ReconError).code).toBe('invalid_predicate');
    }
  });
});

describe('predicateFields and validatePredicateFields', () => {
  const rule: Predicate = {
    all: [
      { eq: ['status', 'solved'] },
      { not: { exists: 'reopened_at' } },
      { any: [{ gte: ['csat', 4] }, { lte: ['csat', 1] }, { in: ['channel', ['chat']] }] },
      { not_in: ['status', ['spam']] },
      { ne: ['assignee', null] },
    ],
  };

  it('lists each referenced field once, sorted', () => {
    expect(predicateFields(rule)).toEqual(['assignee', 'channel', 'csat', 'reopened_at', 'status']);
    expect(predicateFields({ all: [] })).toEqual([]);
  });

  it('reports the fields the record source does not map', () => {
    expect(validatePredicateFields(rule, new Set(['status', 'csat', 'assignee']))).toEqual(['channel', 'reopened_at']);
    expect(validatePredicateFields(rule, new Set(predicateFields(rule)))).toEqual([]);
  });
});

describe('PredicateSchema', () => {
  it('accepts every operator and nesting, unchanged', () => {
    const rule = {
      all: [
        { eq: ['a', 'x'] },
        { ne: ['b', 1] },
        { in: ['c', ['x', 1, true, null]] },
        { not_in: ['d', []] },
        { exists: 'e' },
        { gte: ['f', 2] },
        { lte: ['g', '2026-03-01T00:00:00Z'] },
        { gte: ['h', '2026-03-01'] },
        { lte: ['h', '10'] },
        { any: [{ not: { eq: ['i', false] } }] },
      ],
    };
    expect(PredicateSchema.parse(rule)).toEqual(rule);
  });

  function issuesOf(input: unknown): { path: string; message: string }[] {
    const result = PredicateSchema.safeParse(input);
    expect(result.success).toBe(false);
    return result.success ? [] : result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  }

  it('rejects an unknown operator, naming it and the path', () => {
    const [issue] = issuesOf({ all: [{ eq: ['a', 1] }, { any: [{ gt: ['b', 1] }] }] });
    expect(issue.path).toBe('all.1.any.0');
    expect(issue.message).toContain('unknown operator "gt"');
  });

  it('rejects a rule with more than one operator or none', () => {
    const [two] = issuesOf({ eq: ['a', 1], ne: ['b', 2] });
    expect(two.message).toContain('exactly one operator, found eq, ne');
    const [none] = issuesOf({ not: {} });
    expect(none.path).toBe('not');
    expect(none.message).toContain('exactly one operator');
  });

  it('rejects non-objects', () => {
    for (const input of [null, [], 'eq', 42, [{ eq: ['a', 1] }]]) {
      expect(issuesOf(input)[0].message).toContain('a rule must be an object');
    }
  });

  it('rejects malformed operands with the path into the operand', () => {
    expect(issuesOf({ eq: ['a'] })[0]).toMatchObject({
      path: 'eq',
      message: expect.stringContaining('"eq" expects [field, value]'),
    });
    expect(issuesOf({ eq: ['a', 1, 2] })[0].path).toBe('eq');
    expect(issuesOf({ eq: [1, 1] })[0].path).toBe('eq.0');
    expect(issuesOf({ eq: ['', 1] })[0].message).toContain('field must not be empty');
    expect(issuesOf({ eq: ['a', { x: 1 }] })[0].path).toBe('eq.1');
    expect(issuesOf({ in: ['a', 'x'] })[0]).toMatchObject({
      path: 'in.1',
      message: expect.stringContaining('must be a list'),
    });
    expect(issuesOf({ exists: ['a'] })[0].path).toBe('exists');
    expect(issuesOf({ all: { eq: ['a', 1] } })[0]).toMatchObject({ path: 'all', message: 'expects a list of rules' });
  });

  it('rejects orderings that could never hold', () => {
    expect(issuesOf({ gte: ['a', true] })[0].path).toBe('gte.1');
    expect(issuesOf({ lte: ['a', null] })[0].path).toBe('lte.1');
    expect(issuesOf({ not: { gte: ['a', 'high'] } })[0]).toMatchObject({
      path: 'not.gte.1',
      message: expect.stringContaining('number or an ISO 8601 time'),
    });
    expect(issuesOf({ lte: ['a', '2026-02-30'] })[0].path).toBe('lte.1');
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const fieldArb = fc.constantFrom('a', 'b', 'c', 'd');
const scalarArb = fc.oneof(
  fc.constantFrom('x', 'y', 'X', '3', '2026-03-01T00:00:00Z'),
  fc.integer({ min: -3, max: 3 }),
  fc.boolean(),
  fc.constant(null),
);
const orderedArb = fc.oneof(
  fc.integer({ min: -3, max: 3 }),
  fc.constantFrom('2', '2026-02-01', '2026-03-01T00:00:00Z'),
);

const { predicate: predicateArb } = fc.letrec<{ predicate: Predicate }>((tie) => ({
  predicate: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ eq: fc.tuple(fieldArb, scalarArb) }),
    fc.record({ ne: fc.tuple(fieldArb, scalarArb) }),
    fc.record({ in: fc.tuple(fieldArb, fc.array(scalarArb, { maxLength: 3 })) }),
    fc.record({ not_in: fc.tuple(fieldArb, fc.array(scalarArb, { maxLength: 3 })) }),
    fc.record({ exists: fieldArb }),
    fc.record({ gte: fc.tuple(fieldArb, orderedArb) }),
    fc.record({ lte: fc.tuple(fieldArb, orderedArb) }),
    fc.record({ all: fc.array(tie('predicate'), { maxLength: 3 }) }),
    fc.record({ any: fc.array(tie('predicate'), { maxLength: 3 }) }),
    fc.record({ not: tie('predicate') }),
  ),
}));

const dataArb = fc.dictionary(
  fieldArb,
  fc.oneof(scalarArb, fc.constant(undefined), fc.constantFrom('2026-02-15T12:00:00+01:00', '-1', new Date(0))),
);

describe('predicate properties', () => {
  it('not(p) is the negation of p', () => {
    fc.assert(
      fc.property(
        predicateArb,
        dataArb,
        (p, data) => evaluatePredicate({ not: p }, data) === !evaluatePredicate(p, data),
      ),
    );
  });

  it('follows De Morgan: not(all[p, q]) = any[not p, not q]', () => {
    fc.assert(
      fc.property(predicateArb, predicateArb, dataArb, (p, q, data) => {
        const left = evaluatePredicate({ not: { all: [p, q] } }, data);
        const right = evaluatePredicate({ any: [{ not: p }, { not: q }] }, data);
        return left === right;
      }),
    );
  });

  it('ne is not(eq) and not_in is not(in), for any data', () => {
    fc.assert(
      fc.property(fieldArb, scalarArb, fc.array(scalarArb, { maxLength: 3 }), dataArb, (f, v, vs, data) => {
        expect(evaluatePredicate({ ne: [f, v] }, data)).toBe(!evaluatePredicate({ eq: [f, v] }, data));
        expect(evaluatePredicate({ not_in: [f, vs] }, data)).toBe(!evaluatePredicate({ in: [f, vs] }, data));
      }),
    );
  });

  it('every generated rule survives JSON and the schema unchanged, and never throws on evaluation', () => {
    fc.assert(
      fc.property(predicateArb, dataArb, (p, data) => {
        const parsed = PredicateSchema.parse(JSON.parse(JSON.stringify(p)));
        expect(parsed).toEqual(p);
        expect(typeof evaluatePredicate(parsed, data)).toBe('boolean');
      }),
    );
  });

  it('a rule only reads the fields predicateFields lists', () => {
    fc.assert(
      fc.property(predicateArb, dataArb, dataArb, (p, data, noise) => {
        const fields = predicateFields(p);
        expect([...fields].sort()).toEqual(fields);
        expect(new Set(fields).size).toBe(fields.length);
        // Changing fields the rule does not mention changes nothing.
        const mixed = { ...noise };
        for (const f of fields) {
          if (Object.hasOwn(data, f)) mixed[f] = data[f];
          else delete mixed[f];
        }
        expect(evaluatePredicate(p, mixed)).toBe(evaluatePredicate(p, data));
      }),
    );
  });
});

describe('validatePredicateTypes', () => {
  const types = new Map<string, FieldType>([
    ['status', 'string'],
    ['csat', 'number'],
    ['solved_at', 'timestamp'],
    ['vip', 'boolean'],
  ]);
  const issues = (rule: unknown) => validatePredicateTypes(PredicateSchema.parse(rule), types);

  it('accepts values of the field type, null anywhere, and fields it does not know', () => {
    expect(
      issues({
        all: [
          { eq: ['status', 'solved'] },
          { gte: ['csat', 3] },
          { lte: ['solved_at', '2026-03-01T00:00:00Z'] },
          { eq: ['vip', false] },
          { ne: ['csat', null] },
          { eq: ['unmapped', 1] },
          { exists: 'vip' },
        ],
      }),
    ).toEqual([]);
  });

  it('refuses ordering a text or boolean field, with the path inside the rule', () => {
    expect(issues({ any: [{ exists: 'status' }, { not: { gte: ['status', 3] } }] })).toEqual([
      {
        path: ['any', 1, 'not', 'gte'],
        message: '"gte" needs a number or timestamp field, and "status" is a text field (use eq or in)',
      },
    ]);
    expect(issues({ lte: ['vip', 1] })[0].message).toBe(
      '"lte" needs a number or timestamp field, and "vip" is a boolean field (use eq or in)',
    );
  });

  it('refuses values of another type, each list member on its own path', () => {
    expect(issues({ not_in: ['csat', [1, '2', true]] })).toEqual([
      { path: ['not_in', 1, 1], message: '"csat" is a number field: compare it with a number, not the text "2"' },
      { path: ['not_in', 1, 2], message: '"csat" is a number field: compare it with a number, not true' },
    ]);
    expect(issues({ eq: ['solved_at', 'yesterday'] })[0].path).toEqual(['eq', 1]);
    expect(issues({ gte: ['solved_at', 20260301] })[0].message).toMatch(/^"solved_at" is a timestamp field/);
  });
});
