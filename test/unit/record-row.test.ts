import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ContractSchema, type RecordSource } from '../../src/domain/contract';
import { sha256Of } from '../../src/ingest/claim-row';
import { mapRecordRow } from '../../src/ingest/record-row';
import { errorOf } from './helpers';

const contract = ContractSchema.parse(
  JSON.parse(readFileSync(new URL('../../examples/contract.acme.json', import.meta.url), 'utf8')),
);
const helpdesk: RecordSource = contract.recordSources.helpdesk;
const opts = { timeZone: contract.timezone, matchField: 'ticket_id', caseInsensitive: true };

const row = {
  'Ticket ID': 'T-1001',
  Status: 'solved',
  'Solved at': '2026-03-02 10:00',
  'Updated at': '2026-03-02T10:05:00-05:00',
  CSAT: '4',
};

const map = (values: Record<string, unknown>, source: RecordSource = helpdesk, o: Partial<typeof opts> = {}) =>
  mapRecordRow(values, source, { ...opts, ...o });

describe('mapRecordRow: types', () => {
  it('maps columns onto fields and converts their types', () => {
    const r = map(row);
    expect(r).toEqual({
      externalId: 'T-1001',
      matchKey: 't-1001',
      updatedAt: '2026-03-02T15:05:00.000Z',
      data: {
        ticket_id: 'T-1001',
        status: 'solved',
        solved_at: '2026-03-02T15:00:00.000Z',
        updated_at: '2026-03-02T15:05:00.000Z',
        csat: 4,
      },
      rowSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it('reads a timestamp without offset in the tenant zone, on either side of the DST change', () => {
    expect(map({ ...row, 'Solved at': '2026-03-02 10:00' }).data.solved_at).toBe('2026-03-02T15:00:00.000Z');
    expect(map({ ...row, 'Solved at': '2026-03-10 10:00' }).data.solved_at).toBe('2026-03-10T14:00:00.000Z');
    // With an offset, the instant as written.
    expect(map({ ...row, 'Solved at': '2026-03-02T10:00:00Z' }).data.solved_at).toBe('2026-03-02T10:00:00.000Z');
  });

  it('prefers the record source\u2019s own timezone over the tenant\u2019s', () => {
    const berlin: RecordSource = { ...helpdesk, timezone: 'Europe/Berlin' };
    expect(map({ ...row, 'Solved at': '2026-03-02 10:00' }, berlin).data.solved_at).toBe('2026-03-02T09:00:00.000Z');
  });

  it('takes JSON numbers and numeric text alike', () => {
    expect(map({ ...row, CSAT: 4 }).data.csat).toBe(4);
    expect(map({ ...row, CSAT: ' 4.5 ' }).data.csat).toBe(4.5);
    expect(map({ ...row, CSAT: '-1' }).data.csat).toBe(-1);
  });

  it('keeps a string field as text, numbers included', () => {
    expect(map({ ...row, Status: 42 }).data.status).toBe('42');
  });

  it('converts boolean fields', () => {
    const withFlag: RecordSource = {
      ...helpdesk,
      fields: { ...helpdesk.fields, escalated: { column: 'Escalated', type: 'boolean' } },
    };
    expect(map({ ...row, Escalated: 'Yes' }, withFlag).data.escalated).toBe(true);
    expect(map({ ...row, Escalated: 'n' }, withFlag).data.escalated).toBe(false);
    expect(map({ ...row, Escalated: false }, withFlag).data.escalated).toBe(false);
    const e = errorOf(() => map({ ...row, Escalated: 'maybe' }, withFlag));
    expect(e.code).toBe('invalid_field');
    expect(e.message).toContain('escalated');
  });
});

describe('mapRecordRow: empty and bad cells', () => {
  it('makes an empty, blank or absent cell null', () => {
    const r = map({ ...row, 'Solved at': '', CSAT: '   ', 'Updated at': undefined });
    expect(r.data.solved_at).toBeNull();
    expect(r.data.csat).toBeNull();
    expect(r.data.updated_at).toBeNull();
    expect(r.updatedAt).toBeNull();
    const { Status: _dropped, ...noStatus } = row;
    expect(map(noStatus).data.status).toBeNull();
    expect(map({ ...row, CSAT: null }).data.csat).toBeNull();
  });

  it.each(['four', '1,5', '4 stars', 'Infinity', 'NaN'])(
    'refuses the number %j as invalid_field, naming the field',
    (text) => {
      const e = errorOf(() => map({ ...row, CSAT: text }));
      expect(e.code).toBe('invalid_field');
      expect(e.message).toContain('csat');
    },
  );

  it('refuses an unreadable timestamp as bad_timestamp, naming the field', () => {
    const e = errorOf(() => map({ ...row, 'Solved at': '03/02/2026 10:00' }));
    expect(e.code).toBe('bad_timestamp');
    expect(e.message).toContain('solved_at');
    expect(errorOf(() => map({ ...row, 'Updated at': '2026-02-30 10:00' })).message).toContain('updated_at');
  });

  it.each<[string, Record<string, unknown>]>([
    ['empty', { ...row, 'Ticket ID': '' }],
    ['blank', { ...row, 'Ticket ID': '   ' }],
    ['absent', { Status: 'solved', CSAT: '4' }],
  ])('refuses a row whose id is %s as missing_field, naming the field', (_what, values) => {
    const e = errorOf(() => map(values));
    expect(e.code).toBe('missing_field');
    expect(e.message).toContain('ticket_id');
    expect(e.message).toContain('Ticket ID');
  });

  it('refuses a row without a match key when the key is its own field', () => {
    const keyed: RecordSource = {
      ...helpdesk,
      fields: { ...helpdesk.fields, external_ref: { column: 'External ref', type: 'string' } },
    };
    const e = errorOf(() => map({ ...row, 'External ref': '' }, keyed, { matchField: 'external_ref' }));
    expect(e.code).toBe('missing_field');
    expect(e.message).toContain('external_ref');
    expect(map({ ...row, 'External ref': ' REF-9 ' }, keyed, { matchField: 'external_ref' })).toMatchObject({
      externalId: 'T-1001',
      matchKey: 'ref-9',
    });
  });
});

describe('mapRecordRow: keys and hashes', () => {
  it('normalises the match key: trimmed, and lowercased when case does not matter', () => {
    expect(map({ ...row, 'Ticket ID': '  T-1001\t' })).toMatchObject({ externalId: 'T-1001', matchKey: 't-1001' });
    expect(map({ ...row, 'Ticket ID': '  T-1001\t' }, helpdesk, { caseInsensitive: false })).toMatchObject({
      externalId: 'T-1001',
      matchKey: 'T-1001',
    });
  });

  it('records no update time when the source has no updatedAtField', () => {
    const { updatedAtField: _none, ...plain } = helpdesk;
    expect(map(row, plain as RecordSource).updatedAt).toBeNull();
  });

  it('gives identical data an identical rowSha256, whatever the column order or unmapped columns', () => {
    const a = map(row);
    const reversed = Object.fromEntries(Object.entries(row).reverse());
    expect(map(reversed).rowSha256).toBe(a.rowSha256);
    expect(map({ ...row, 'Internal note': 'called the customer' }).rowSha256).toBe(a.rowSha256);
    // The same values written differently map to the same data.
    expect(map({ ...row, CSAT: 4, 'Solved at': '2026-03-02T15:00:00Z' }).rowSha256).toBe(a.rowSha256);
  });

  it('gives different data a different rowSha256', () => {
    const a = map(row).rowSha256;
    expect(map({ ...row, Status: 'open' }).rowSha256).not.toBe(a);
    expect(map({ ...row, CSAT: '5' }).rowSha256).not.toBe(a);
    expect(map({ ...row, CSAT: '' }).rowSha256).not.toBe(a);
    expect(map({ ...row, 'Updated at': '2026-03-02T10:06:00-05:00' }).rowSha256).not.toBe(a);
  });

  it('property: rowSha256 equal exactly when the mapped data is equal', () => {
    const cells = fc.record({
      'Ticket ID': fc.constantFrom('T-1', 'T-2'),
      Status: fc.constantFrom('solved', 'open', ''),
      'Solved at': fc.constantFrom('', '2026-03-02 10:00', '2026-03-02T15:00:00Z', '2026-03-03 10:00'),
      'Updated at': fc.constantFrom('', '2026-03-02T10:05:00-05:00'),
      CSAT: fc.constantFrom('', '4', '4.0', 4, '5'),
    });
    fc.assert(
      fc.property(cells, cells, (x, y) => {
        const a = map(x);
        const b = map(y);
        expect(a.rowSha256 === b.rowSha256).toBe(JSON.stringify(a.data) === JSON.stringify(b.data));
      }),
    );
  });
});

describe('mapRecordRow: numbers are plain decimals only', () => {
  for (const bad of [[], [''], [4], '0x10', '0b11', '1_000', 'four']) {
    it(`refuses CSAT ${JSON.stringify(bad)}`, () => {
      expect(errorOf(() => map({ ...row, CSAT: bad })).code).toBe('invalid_field');
    });
  }
  it('accepts signs, decimals and exponents', () => {
    expect(map({ ...row, CSAT: ' -4.5e1 ' }).data.csat).toBe(-45);
  });
});

describe('mapRecordRow: the written-out hash', () => {
  it('is the canonical hash of the data, whatever the cells', () => {
    const cellText = fc.oneof(
      fc.string(),
      fc.constantFrom('', ' ', 'solved', '2026-03-01T10:00:00Z', '3', '1e3', 'é"\\\n'),
    );
    fc.assert(
      fc.property(
        cellText,
        cellText,
        fc.constantFrom('', '2026-03-01T10:00:00Z', '2026-03-01 10:00'),
        fc.constantFrom('', '4', '-0', '2.50'),
        (id, status, at, csat) => {
          let m;
          try {
            m = map({ ...row, 'Ticket ID': id, Status: status, 'Solved at': at, CSAT: csat });
          } catch {
            return;
          }
          expect(m.rowSha256).toBe(sha256Of(m.data));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('takes the general way for a source with a field named __proto__', () => {
    const odd = {
      ...helpdesk,
      fields: JSON.parse(
        JSON.stringify({ ...helpdesk.fields, __proto__x: { column: 'Status', type: 'string' } }).replace(
          '__proto__x',
          '__proto__',
        ),
      ),
    };
    const m = map(row, odd);
    expect(m.rowSha256).toBe(sha256Of(m.data));
  });
});
