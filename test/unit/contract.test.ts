import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Contract,
  ContractSchema,
  type ContractVersion,
  contractInEffectAt,
  formatZodIssues,
  normaliseMatchKey,
  sourceIsCaseInsensitive,
} from '../../src/domain/contract';

const example = JSON.parse(readFileSync(new URL('../../examples/contract.acme.json', import.meta.url), 'utf8')) as Record<string, any>;

/** A deep copy of the example contract, changed by `edit`. */
function variant(edit: (c: Record<string, any>) => void): Record<string, any> {
  const c = structuredClone(example);
  edit(c);
  return c;
}

/** The one-line refusal formatZodIssues gives, or a failure when the contract is accepted. */
function refusal(input: unknown): string {
  const parsed = ContractSchema.safeParse(input);
  if (parsed.success) throw new Error('expected the contract to be refused');
  return formatZodIssues(parsed.error);
}

const ot = (c: Record<string, any>) => c.outcomeTypes.resolved_ticket;

describe('ContractSchema: the example contract', () => {
  it('parses, with defaults filled in', () => {
    const c = ContractSchema.parse(example);
    expect(c.tenant).toBe('acme');
    expect(c.timezone).toBe('America/New_York');
    expect(c.currency).toBe('USD');
    expect(c.claimSources).toEqual({});
    expect(c.recordSources.helpdesk.fields.solved_at).toEqual({ column: 'Solved at', type: 'timestamp' });
    expect(c.outcomeTypes.resolved_ticket).toMatchObject({
      recordSource: 'helpdesk',
      matchKey: { field: 'ticket_id', caseInsensitive: true },
      successTimeField: 'solved_at',
      graceWindow: 'PT72H',
      evidenceDeadline: 'P7D',
      unitPrice: '0.99',
    });
  });

  it('fills in the string field type and the case rule when omitted', () => {
    const c = ContractSchema.parse(
      variant((x) => {
        x.recordSources.helpdesk.fields.status = { column: 'Status' };
        delete ot(x).matchKey.caseInsensitive;
      }),
    );
    expect(c.recordSources.helpdesk.fields.status.type).toBe('string');
    expect(c.outcomeTypes.resolved_ticket.matchKey.caseInsensitive).toBe(true);
  });
});

describe('ContractSchema: refusals name the bad field', () => {
  it.each<[string, (c: Record<string, any>) => void, string]>([
    ['an unknown record source in an outcome type', (c) => (ot(c).recordSource = 'crm'), 'outcomeTypes.resolved_ticket.recordSource: unknown record source "crm"'],
    ['a matchKey field that is not mapped', (c) => (ot(c).matchKey.field = 'ticket_number'), 'outcomeTypes.resolved_ticket.matchKey.field: "ticket_number" is not a field of helpdesk'],
    ['a successTimeField that is not a timestamp field', (c) => (ot(c).successTimeField = 'status'), 'outcomeTypes.resolved_ticket.successTimeField: "status" must be a timestamp field of helpdesk'],
    ['a successTimeField that is not mapped at all', (c) => (ot(c).successTimeField = 'closed_at'), 'outcomeTypes.resolved_ticket.successTimeField: "closed_at" must be a timestamp field of helpdesk'],
    ['a success rule naming an unknown field', (c) => (ot(c).success.all.push({ eq: ['priority', 'high'] })), 'outcomeTypes.resolved_ticket.success: unknown field "priority" in the success rule'],
    ['a bad grace window', (c) => (ot(c).graceWindow = 'P3X'), 'outcomeTypes.resolved_ticket.graceWindow: '],
    ['a bad evidence deadline', (c) => (ot(c).evidenceDeadline = 'P3X'), 'outcomeTypes.resolved_ticket.evidenceDeadline: '],
    ['an unknown currency', (c) => (c.currency = 'XYZ'), 'currency: '],
    ['a bad timezone', (c) => (c.timezone = 'Mars/Base'), 'timezone: '],
    ['a bad record source timezone', (c) => (c.recordSources.helpdesk.timezone = 'Mars/Base'), 'recordSources.helpdesk.timezone: '],
    ['a price with a decimal comma', (c) => (ot(c).unitPrice = '0,99'), 'outcomeTypes.resolved_ticket.unitPrice: '],
    ['a negative price', (c) => (ot(c).unitPrice = '-1'), 'outcomeTypes.resolved_ticket.unitPrice: '],
    ['an unmapped idField', (c) => (c.recordSources.helpdesk.idField = 'id'), 'recordSources.helpdesk.fields: field "id" is used but not mapped'],
    ['an updatedAtField that is not a timestamp', (c) => (c.recordSources.helpdesk.updatedAtField = 'status'), 'recordSources.helpdesk.updatedAtField: must name a timestamp field'],
    ['an effectiveFrom without an offset', (c) => (c.effectiveFrom = '2026-01-01T00:00:00'), 'effectiveFrom: '],
    ['an upper-case tenant', (c) => (c.tenant = 'Acme'), 'tenant: '],
    ['an unknown field type', (c) => (c.recordSources.helpdesk.fields.csat.type = 'float'), 'recordSources.helpdesk.fields.csat.type: '],
    ['a malformed success rule', (c) => (ot(c).success = { eq: ['status'] }), 'outcomeTypes.resolved_ticket.success.eq'],
    // Once a TypeError: the field check walked the rule and tripped over the unknown operator.
    ['an unknown operator nested in a rule', (c) => ot(c).success.all.push({ regex: ['status', '^sol'] }), 'outcomeTypes.resolved_ticket.success.all.3: unknown operator "regex"'],
    ['an unknown operator under not', (c) => (ot(c).success = { not: { gt: ['csat', 1] } }), 'outcomeTypes.resolved_ticket.success.not: unknown operator "gt"'],
  ])('refuses %s', (_what, edit, expected) => {
    const message = refusal(variant(edit));
    expect(message).toContain(expected);
    // One problem, one issue: the path is not buried among unrelated complaints.
    expect(message.split('; ')).toHaveLength(1);
  });

  it('refuses an unknown top-level key (the contract is strict)', () => {
    const message = refusal(variant((c) => (c.gracePeriod = 'PT72H')));
    expect(message).toMatch(/^\(root\): .*gracePeriod/);
  });

  it('refuses two outcome types that share a source with different case rules, at the second one', () => {
    const message = refusal(
      variant((c) => {
        c.outcomeTypes.closed_ticket = { ...structuredClone(ot(c)), matchKey: { field: 'ticket_id', caseInsensitive: false } };
      }),
    );
    expect(message).toBe('outcomeTypes.closed_ticket.matchKey.caseInsensitive: outcome types sharing a record source must use the same case rule');
  });

  it('accepts two outcome types sharing a source with the same (defaulted) case rule', () => {
    const c = variant((x) => {
      x.outcomeTypes.closed_ticket = { ...structuredClone(ot(x)), matchKey: { field: 'ticket_id' } };
    });
    const parsed = ContractSchema.parse(c);
    expect(sourceIsCaseInsensitive(parsed, 'helpdesk')).toBe(true);
  });

  it('reports every problem, each with its own path, joined by "; "', () => {
    const message = refusal(
      variant((c) => {
        c.currency = 'XYZ';
        ot(c).graceWindow = 'P3X';
      }),
    );
    const parts = message.split('; ');
    expect(parts).toHaveLength(2);
    expect(parts.map((p) => p.slice(0, p.indexOf(':'))).sort()).toEqual(['currency', 'outcomeTypes.resolved_ticket.graceWindow']);
  });

  it('accepts a valid duration, currency and timezone of other shapes', () => {
    const c = variant((x) => {
      x.currency = 'JPY';
      x.timezone = 'Asia/Tokyo';
      ot(x).graceWindow = 'P1DT12H';
      ot(x).evidenceDeadline = 'P2W';
      ot(x).unitPrice = '12';
    });
    expect(ContractSchema.safeParse(c).success).toBe(true);
  });
});

describe('contractInEffectAt', () => {
  const body = ContractSchema.parse(example) as Contract;
  const v = (version: number, effectiveFrom: string): ContractVersion => ({ version, effectiveFrom: new Date(effectiveFrom), body });
  const versions = [v(3, '2026-06-01T00:00:00Z'), v(1, '2026-01-01T00:00:00Z'), v(2, '2026-03-01T00:00:00Z')];

  it('picks the latest version not after the time, whatever the input order', () => {
    expect(contractInEffectAt(versions, new Date('2026-02-15T00:00:00Z'))?.version).toBe(1);
    expect(contractInEffectAt(versions, new Date('2026-03-01T00:00:00Z'))?.version).toBe(2);
    expect(contractInEffectAt(versions, new Date('2026-02-28T23:59:59.999Z'))?.version).toBe(1);
    expect(contractInEffectAt(versions, new Date('2027-01-01T00:00:00Z'))?.version).toBe(3);
  });

  it('has no version before the first one takes effect', () => {
    expect(contractInEffectAt(versions, new Date('2025-12-31T23:59:59.999Z'))).toBeUndefined();
    expect(contractInEffectAt([], new Date('2026-03-01T00:00:00Z'))).toBeUndefined();
  });

  it('property: the answer takes effect not after the time, and no other version is later and not after it', () => {
    const day = 86_400_000;
    const base = Date.parse('2026-01-01T00:00:00Z');
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 365 }), { maxLength: 8 }),
        fc.integer({ min: -10, max: 400 }),
        (days, atDay) => {
          const vs = days.map((d, i) => v(i + 1, new Date(base + d * day).toISOString()));
          const atTime = new Date(base + atDay * day);
          const found = contractInEffectAt(vs, atTime);
          const eligible = days.filter((d) => d <= atDay);
          if (eligible.length === 0) {
            expect(found).toBeUndefined();
            return;
          }
          expect(found).toBeDefined();
          expect(found!.effectiveFrom.getTime()).toBe(base + Math.max(...eligible) * day);
        },
      ),
    );
  });
});

describe('normaliseMatchKey', () => {
  it('trims, and lowercases only when the contract says case does not matter', () => {
    expect(normaliseMatchKey('  T-1001\t', true)).toBe('t-1001');
    expect(normaliseMatchKey('  T-1001\t', false)).toBe('T-1001');
    expect(normaliseMatchKey('Ab Cd', true)).toBe('ab cd');
    expect(normaliseMatchKey('Ab Cd', false)).toBe('Ab Cd');
    expect(normaliseMatchKey('   ', true)).toBe('');
  });

  it('property: idempotent, and case-insensitive keys agree whatever the case', () => {
    fc.assert(
      fc.property(fc.string(), fc.boolean(), (s, ci) => {
        const once = normaliseMatchKey(s, ci);
        expect(normaliseMatchKey(once, ci)).toBe(once);
        expect(once).toBe(once.trim());
        if (ci) expect(normaliseMatchKey(s.toUpperCase(), true)).toBe(normaliseMatchKey(s.toLowerCase(), true));
        else expect(once).toBe(s.trim());
      }),
    );
  });
});
