import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ClaimInputSchema,
  checkRowTenant,
  fastClaimInput,
  sha256Of,
  stageClaimRow,
  FUTURE_TOLERANCE_MS,
} from '../../src/ingest/claim-row';
import { errorOf } from './helpers';

const RECEIVED = new Date('2026-03-05T06:00:00.000Z');

const good = {
  claim_id: 'c-1001',
  outcome_type: 'resolved_ticket',
  subject_ref: 'T-1001',
  occurred_at: '2026-03-01T10:00:00Z',
  attributes: { channel: 'chat', model: { name: 'fin', version: 3 } },
};

/** The same claim as a CSV row: every cell a string, empty where the AI side sent nothing. */
const goodCsv = {
  claim_id: 'c-1001',
  outcome_type: 'resolved_ticket',
  subject_ref: 'T-1001',
  occurred_at: '2026-03-01T10:00:00Z',
  attributes: '{"model":{"version":3,"name":"fin"},"channel":"chat"}',
  retracted: '',
  retracted_at: '',
};

const stage = (values: Record<string, unknown>) => stageClaimRow(values, RECEIVED);

const without = (key: string, row: Record<string, unknown> = good) =>
  Object.fromEntries(Object.entries(row).filter(([k]) => k !== key));

describe('stageClaimRow: a good row', () => {
  it('stages every field, with times normalised to UTC', () => {
    const c = stage({ ...good, claim_id: ' c-1001 ', occurred_at: '2026-03-01T11:00:00+01:00' });
    expect(c).toEqual({
      claimId: 'c-1001',
      outcomeType: 'resolved_ticket',
      subjectRef: 'T-1001',
      occurredAt: '2026-03-01T10:00:00.000Z',
      attributes: good.attributes,
      contentSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      retract: false,
      retractedAt: null,
    });
  });

  it('reads an occurred_at without offset as UTC', () => {
    expect(stage({ ...good, occurred_at: '2026-03-01 10:00' }).occurredAt).toBe('2026-03-01T10:00:00.000Z');
  });

  it('has empty attributes when there are none', () => {
    expect(stage(without('attributes')).attributes).toEqual({});
    expect(stage({ ...good, attributes: '' }).attributes).toEqual({});
  });

  it('takes a CSV row with attributes as a JSON string, hashing it like the JSONL object', () => {
    const csv = stage(goodCsv);
    expect(csv.attributes).toEqual(good.attributes);
    expect(csv.retract).toBe(false);
    expect(csv.retractedAt).toBeNull();
    expect(csv.contentSha256).toBe(stage(good).contentSha256);
  });
});

describe('stageClaimRow: refusals', () => {
  it.each(['outcome_type', 'subject_ref', 'occurred_at'])('a row without %s is missing_field, naming it', (field) => {
    const e = errorOf(() => stage(without(field)));
    expect(e.code).toBe('missing_field');
    expect(e.message).toContain(field);
  });

  it('a row without claim_id, or with a blank one, is missing_field, naming it', () => {
    for (const row of [without('claim_id'), { ...good, claim_id: '   ' }, { ...good, claim_id: null }]) {
      const e = errorOf(() => stage(row));
      expect(e.code).toBe('missing_field');
      expect(e.message).toBe('field claim_id: required');
    }
  });

  it.each<[Record<string, unknown>, string]>([
    [{ ...good, claim_id: 141 }, 'field claim_id: expected text, got the number 141'],
    [
      { ...good, occurred_at: 1772614800 },
      'field occurred_at: expected an ISO 8601 time as text, got the number 1772614800',
    ],
    [{ ...good, attributes: ['email'] }, 'field attributes: expected a JSON object, got a list ["email"]'],
    [{ ...goodCsv, attributes: '[1,2]' }, 'field attributes: expected a JSON object, got a list [1,2]'],
    [
      { ...goodCsv, attributes: '{"a": 1,}' },
      'field attributes: not valid JSON (Expected double-quoted property name in JSON at position 8)',
    ],
    [{ ...good, retracted: 'maybe' }, 'field retracted: expected true or false, got text "maybe"'],
    [
      { ...good, subject_ref: 'x'.repeat(513) },
      `field subject_ref: longer than 512 characters, got text "${'x'.repeat(59)}…`,
    ],
  ])('a wrong type says which field, what was expected and what came: %#', (row, message) => {
    const e = errorOf(() => stage(row));
    expect(e.code).toBe('invalid_field');
    expect(e.message).toBe(message);
  });

  it.each(['yesterday', '2026-02-30T10:00:00Z', '2026-03-01T24:00:00Z', '01/03/2026 10:00'])(
    'occurred_at %j is bad_timestamp, naming the field',
    (text) => {
      const e = errorOf(() => stage({ ...good, occurred_at: text }));
      expect(e.code).toBe('bad_timestamp');
      expect(e.message).toContain('occurred_at');
    },
  );

  it('a bad retracted_at is bad_timestamp, naming the field', () => {
    const e = errorOf(() => stage({ claim_id: 'c-1001', retracted: true, retracted_at: 'soon' }));
    expect(e.code).toBe('bad_timestamp');
    expect(e.message).toContain('retracted_at');
  });

  it.each(['{not json', '[1,2]', '"text"', '42', 'null'])('attributes %j is invalid_field', (text) => {
    const e = errorOf(() => stage({ ...goodCsv, attributes: text }));
    expect(e.code).toBe('invalid_field');
    expect(e.message).toContain('attributes');
  });

  it('an unreadable retracted flag is invalid_field, naming it', () => {
    const e = errorOf(() => stage({ ...good, retracted: 'maybe' }));
    expect(e.code).toBe('invalid_field');
    expect(e.message).toContain('retracted');
  });

  it('a row with only claim_id that is not a retraction is missing_field', () => {
    expect(errorOf(() => stage({ claim_id: 'c-1001' })).code).toBe('missing_field');
    expect(errorOf(() => stage({ claim_id: 'c-1001', retracted: false })).code).toBe('missing_field');
  });
});

describe('stageClaimRow: retractions', () => {
  it('a retraction with only claim_id works and is retracted at receivedAt', () => {
    const c = stage({ claim_id: 'c-1001', retracted: true });
    expect(c).toEqual({
      claimId: 'c-1001',
      outcomeType: null,
      subjectRef: null,
      occurredAt: null,
      attributes: {},
      contentSha256: null,
      retract: true,
      retractedAt: RECEIVED.toISOString(),
    });
  });

  it('a retraction that carries some content must carry all of it', () => {
    const e = errorOf(() => stage({ claim_id: 'c-1001', subject_ref: 'T-1001', retracted: true }));
    expect(e.code).toBe('missing_field');
    expect(e.message).toContain('outcome_type');
  });

  it.each(['true', 'TRUE', '1', 'yes'])('reads the retracted flag %j', (flag) => {
    expect(stage({ claim_id: 'c-1001', retracted: flag }).retract).toBe(true);
  });

  it.each(['false', 'FALSE', '0', 'no', ''])('reads %j as not retracted', (flag) => {
    expect(stage({ ...good, retracted: flag }).retract).toBe(false);
  });

  it('uses the given retracted_at, normalised to UTC', () => {
    expect(stage({ claim_id: 'c-1001', retracted: true, retracted_at: '2026-03-03T12:00:00-05:00' }).retractedAt).toBe(
      '2026-03-03T17:00:00.000Z',
    );
  });

  it('the retracted flag does not change the content hash', () => {
    const plain = stage(good);
    const retracted = stage({ ...good, retracted: true, retracted_at: '2026-03-04T00:00:00Z' });
    expect(retracted.retract).toBe(true);
    expect(retracted.retractedAt).toBe('2026-03-04T00:00:00.000Z');
    expect(retracted.contentSha256).toBe(plain.contentSha256);
    expect(stage({ ...goodCsv, retracted: 'true' }).contentSha256).toBe(plain.contentSha256);
  });
});

describe('stageClaimRow: content hash', () => {
  it('identical content gives an identical hash', () => {
    expect(stage(good).contentSha256).toBe(stage(structuredClone(good)).contentSha256);
  });

  it('does not depend on the spelling of the same instant or on padding', () => {
    const base = stage(good).contentSha256;
    expect(stage({ ...good, occurred_at: '2026-03-01T11:00:00.000+01:00' }).contentSha256).toBe(base);
    expect(stage({ ...good, subject_ref: '  T-1001 ' }).contentSha256).toBe(base);
  });

  it('does not depend on attribute key order, at any depth', () => {
    const reordered = { ...good, attributes: { model: { version: 3, name: 'fin' }, channel: 'chat' } };
    expect(stage(reordered).contentSha256).toBe(stage(good).contentSha256);
  });

  it.each<[string, Record<string, unknown>]>([
    ['subject_ref', { subject_ref: 'T-1002' }],
    ['outcome_type', { outcome_type: 'qualified_lead' }],
    ['occurred_at', { occurred_at: '2026-03-01T10:00:01Z' }],
    ['an attribute value', { attributes: { channel: 'email', model: { name: 'fin', version: 3 } } }],
    ['a nested attribute value', { attributes: { channel: 'chat', model: { name: 'fin', version: '3' } } }],
    ['an extra attribute', { attributes: { ...good.attributes, extra: null } }],
  ])('changes when %s changes', (_what, change) => {
    expect(stage({ ...good, ...change }).contentSha256).not.toBe(stage(good).contentSha256);
  });

  it('property: any key order of any JSON attributes gives the same hash', () => {
    const attributes = fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.jsonValue({ maxDepth: 3 }), {
      maxKeys: 6,
    });
    fc.assert(
      fc.property(attributes, fc.integer(), (attrs, seed) => {
        const reorder = (v: unknown, s: number): unknown => {
          if (Array.isArray(v)) return v.map((x) => reorder(x, s + 1));
          if (v && typeof v === 'object') {
            const entries = Object.entries(v as Record<string, unknown>);
            const rotated = entries.length
              ? [
                  ...entries.slice(Math.abs(s) % entries.length),
                  ...entries.slice(0, Math.abs(s) % entries.length),
                ].reverse()
              : entries;
            return Object.fromEntries(rotated.map(([k, x]) => [k, reorder(x, s + 7)]));
          }
          return v;
        };
        const a = stage({ ...good, attributes: attrs });
        const b = stage({ ...good, attributes: reorder(attrs, seed) });
        const viaCsv = stage({ ...goodCsv, attributes: JSON.stringify(reorder(attrs, seed + 1)) });
        expect(b.contentSha256).toBe(a.contentSha256);
        expect(viaCsv.contentSha256).toBe(a.contentSha256);
      }),
    );
  });
});

describe('stageClaimRow: CSV rows with empty cells', () => {
  it('reads a retraction-only CSV row (empty content cells) as a retraction', () => {
    const c = stageClaimRow(
      {
        claim_id: 'c1',
        outcome_type: '',
        subject_ref: '',
        occurred_at: '',
        attributes: '',
        retracted: 'true',
        retracted_at: '',
      },
      RECEIVED,
    );
    expect(c).toMatchObject({ claimId: 'c1', retract: true, retractedAt: RECEIVED.toISOString(), contentSha256: null });
  });

  it('an empty subject_ref cell is missing_field, as a missing JSONL key is', () => {
    expect(() => stageClaimRow({ ...good, subject_ref: '  ' }, RECEIVED)).toThrow(
      expect.objectContaining({ code: 'missing_field', message: 'field subject_ref: required' }),
    );
  });
});

describe('checkRowTenant', () => {
  it('accepts rows without a tenant, with an empty one, or with the import tenant (trimmed)', () => {
    for (const values of [
      {},
      { tenant: '' },
      { tenant_id: null },
      { tenant: ' acme ' },
      { tenant: 'acme', tenant_id: 'acme' },
    ]) {
      expect(() => checkRowTenant(values, 'acme')).not.toThrow();
    }
  });

  it.each<[Record<string, unknown>, string]>([
    [{ tenant: 'globex' }, 'field tenant: the row is for tenant "globex", this import is for acme'],
    [{ tenant: 'ACME' }, 'field tenant: the row is for tenant "ACME", this import is for acme'],
    [
      { tenant: 'acme', tenant_id: 'globex' },
      'field tenant_id: the row is for tenant "globex", this import is for acme',
    ],
    [{ tenant_id: 42 }, 'field tenant_id: the row is for tenant the number 42, this import is for acme'],
  ])('refuses a row for another tenant as wrong_tenant: %j', (values, message) => {
    const e = errorOf(() => checkRowTenant(values, 'acme'));
    expect(e.code).toBe('wrong_tenant');
    expect(e.message).toBe(message);
  });
});

describe('the fast path agrees with the schema', () => {
  const cell = fc.oneof(
    fc.constantFrom(
      undefined,
      null,
      '',
      '  ',
      'x',
      ' padded ',
      'a\tb',
      'a\u0085b',
      'x'.repeat(512),
      ` ${'y'.repeat(512)} `,
      'z'.repeat(513),
    ),
    fc.constantFrom('true', 'TRUE', '1', 'yes', 'false', 'FALSE', '0', 'no', 'True', ' true', true, false, 1, 0),
    fc.constantFrom('2026-03-01T10:00:00Z', '{"a":1}', '[1]'),
    fc.string(),
    fc.integer(),
    fc.constantFrom({}, { a: 1 }, [], [1], JSON.parse('{"__proto__":{"a":1}}'), Object.create(null), new Date(0)),
  );
  const keys = [
    'claim_id',
    'outcome_type',
    'subject_ref',
    'occurred_at',
    'attributes',
    'retracted',
    'retracted_at',
    'tenant',
    'other',
  ];
  it('gives what the schema gives for every row it takes, and leaves the rest to the schema', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...keys), cell), (values) => {
        const present = Object.fromEntries(
          Object.entries(values).filter(([, v]) => !(typeof v === 'string' && v.trim() === '') && v !== null),
        );
        const parsed = ClaimInputSchema.safeParse(present);
        const fast = present.claim_id === undefined ? undefined : fastClaimInput(values);
        if (fast === undefined) return;
        expect(parsed.success).toBe(true);
        const strip = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
        expect(strip(fast)).toEqual(strip(parsed.data!));
        expect(JSON.stringify(fast.attributes)).toEqual(JSON.stringify(parsed.data!.attributes));
      }),
      { numRuns: 3000 },
    );
  });

  it('hashes content as sorted canonical JSON', () => {
    expect(sha256Of({ b: [1, { d: null, c: 'x' }], a: undefined, é: true })).toBe(
      createHash('sha256').update('{"a":null,"b":[1,{"c":"x","d":null}],"é":true}').digest('hex'),
    );
  });
});

describe('stageClaimRow: occurred_at in the future', () => {
  const base = { claim_id: 'c-f', outcome_type: 'resolved_ticket', subject_ref: 'T-1' };
  const at = (ms: number) => new Date(RECEIVED.getTime() + ms).toISOString();

  it('keeps a claim up to a day after the import time, refuses one beyond it, on the fast and the schema path alike', () => {
    expect(stageClaimRow({ ...base, occurred_at: at(FUTURE_TOLERANCE_MS) }, RECEIVED).occurredAt).toBe(
      at(FUTURE_TOLERANCE_MS),
    );
    const late = { ...base, occurred_at: at(FUTURE_TOLERANCE_MS + 1) };
    expect(() => stageClaimRow(late, RECEIVED)).toThrow(expect.objectContaining({ code: 'occurred_in_future' }));
    // Attributes without Object's prototype are left to the schema: the same verdict there.
    const schemaPath = { ...late, attributes: Object.assign(Object.create(null), { channel: 'chat' }) };
    expect(fastClaimInput(schemaPath)).toBeUndefined();
    expect(() => stageClaimRow(schemaPath, RECEIVED)).toThrow(expect.objectContaining({ code: 'occurred_in_future' }));
  });

  it('a retraction of a future claim with its content is refused too', () => {
    expect(() =>
      stageClaimRow({ ...base, occurred_at: at(2 * FUTURE_TOLERANCE_MS), retracted: true }, RECEIVED),
    ).toThrow(expect.objectContaining({ code: 'occurred_in_future' }));
  });
});
