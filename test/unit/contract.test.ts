import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ContractSchema,
  type ContractVersion,
  formatZodIssues,
  normaliseMatchKey,
  sourceIsCaseInsensitive,
  StoredContractSchema,
} from '../../src/domain/contract';
import { contractInEffectAt } from '../../src/domain/contract-history';

// The example contract as untyped JSON: tests edit it freely into valid and invalid inputs.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RawContract = Record<string, any>;
const example = JSON.parse(
  readFileSync(new URL('../../examples/contract.acme.json', import.meta.url), 'utf8'),
) as RawContract;

/** A deep copy of the example contract, changed by `edit`. */
function variant(edit: (c: RawContract) => void): RawContract {
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

const ot = (c: RawContract) => c.outcomeTypes.resolved_ticket;

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
  it.each<[string, (c: RawContract) => void, string]>([
    [
      'an unknown record source in an outcome type',
      (c) => (ot(c).recordSource = 'crm'),
      'outcomeTypes.resolved_ticket.recordSource: unknown record source "crm"',
    ],
    [
      'a matchKey field that is not mapped',
      (c) => (ot(c).matchKey.field = 'ticket_number'),
      'outcomeTypes.resolved_ticket.matchKey.field: "ticket_number" is not a field of helpdesk',
    ],
    [
      'a successTimeField that is not a timestamp field',
      (c) => (ot(c).successTimeField = 'status'),
      'outcomeTypes.resolved_ticket.successTimeField: "status" must be a timestamp field of helpdesk',
    ],
    [
      'a successTimeField that is not mapped at all',
      (c) => (ot(c).successTimeField = 'closed_at'),
      'outcomeTypes.resolved_ticket.successTimeField: "closed_at" must be a timestamp field of helpdesk',
    ],
    [
      'a success rule naming an unknown field',
      (c) => ot(c).success.all.push({ eq: ['priority', 'high'] }),
      'outcomeTypes.resolved_ticket.success: unknown field "priority" in the success rule',
    ],
    ['a bad grace window', (c) => (ot(c).graceWindow = 'P3X'), 'outcomeTypes.resolved_ticket.graceWindow: '],
    [
      'a bad evidence deadline',
      (c) => (ot(c).evidenceDeadline = 'P3X'),
      'outcomeTypes.resolved_ticket.evidenceDeadline: ',
    ],
    ['an unknown currency', (c) => (c.currency = 'XYZ'), 'currency: '],
    ['a bad timezone', (c) => (c.timezone = 'Mars/Base'), 'timezone: '],
    [
      'a bad record source timezone',
      (c) => (c.recordSources.helpdesk.timezone = 'Mars/Base'),
      'recordSources.helpdesk.timezone: ',
    ],
    ['a price with a decimal comma', (c) => (ot(c).unitPrice = '0,99'), 'outcomeTypes.resolved_ticket.unitPrice: '],
    ['a negative price', (c) => (ot(c).unitPrice = '-1'), 'outcomeTypes.resolved_ticket.unitPrice: '],
    [
      'an unmapped idField',
      (c) => (c.recordSources.helpdesk.idField = 'id'),
      'recordSources.helpdesk.fields: field "id" is used but not mapped',
    ],
    [
      'an updatedAtField that is not a timestamp',
      (c) => (c.recordSources.helpdesk.updatedAtField = 'status'),
      'recordSources.helpdesk.updatedAtField: must name a timestamp field',
    ],
    ['an effectiveFrom without an offset', (c) => (c.effectiveFrom = '2026-01-01T00:00:00'), 'effectiveFrom: '],
    ['an upper-case tenant', (c) => (c.tenant = 'Acme'), 'tenant: '],
    [
      'an unknown field type',
      (c) => (c.recordSources.helpdesk.fields.csat.type = 'float'),
      'recordSources.helpdesk.fields.csat.type: ',
    ],
    [
      'a malformed success rule',
      (c) => (ot(c).success = { eq: ['status'] }),
      'outcomeTypes.resolved_ticket.success.eq',
    ],
    // Once a TypeError: the field check walked the rule and tripped over the unknown operator.
    [
      'an unknown operator nested in a rule',
      (c) => ot(c).success.all.push({ regex: ['status', '^sol'] }),
      'outcomeTypes.resolved_ticket.success.all.3: unknown operator "regex"',
    ],
    [
      'an unknown operator under not',
      (c) => (ot(c).success = { not: { gt: ['csat', 1] } }),
      'outcomeTypes.resolved_ticket.success.not: unknown operator "gt"',
    ],
  ])('refuses %s', (_what, edit, expected) => {
    const message = refusal(variant(edit));
    expect(message).toContain(expected);
    // One problem, one issue: the path is not buried among unrelated complaints.
    expect(message.split('; ')).toHaveLength(1);
  });

  it('refuses an unknown top-level key (the contract is strict)', () => {
    const message = refusal(variant((c) => (c.gracePeriod = 'PT72H')));
    expect(message).toBe('gracePeriod: unknown key');
  });

  it('refuses two outcome types that share a source with different case rules, at the second one', () => {
    const message = refusal(
      variant((c) => {
        c.outcomeTypes.closed_ticket = {
          ...structuredClone(ot(c)),
          matchKey: { field: 'ticket_id', caseInsensitive: false },
        };
      }),
    );
    expect(message).toBe(
      'outcomeTypes.closed_ticket.matchKey.caseInsensitive: outcome types sharing a record source must use the same case rule',
    );
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
    expect(parts.map((p) => p.slice(0, p.indexOf(':'))).sort()).toEqual([
      'currency',
      'outcomeTypes.resolved_ticket.graceWindow',
    ]);
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
  const body = ContractSchema.parse(example);
  const v = (version: number, effectiveFrom: string): ContractVersion => ({
    version,
    effectiveFrom: new Date(effectiveFrom),
    body,
  });
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
        else expect(once).toBe(s.normalize('NFC').trim());
      }),
    );
  });
});

describe('ContractSchema: strict at every depth', () => {
  it.each<[string, (c: RawContract) => void, string]>([
    [
      'a misspelt dispute block',
      (c) => (ot(c).dispute = { window: 'P10D' }),
      'outcomeTypes.resolved_ticket.dispute: unknown key',
    ],
    [
      'a misspelt key inside disputes',
      (c) => (ot(c).disputes = { windw: 'P10D' }),
      'outcomeTypes.resolved_ticket.disputes.windw: unknown key',
    ],
    [
      'caseinsensitive in lower case',
      (c) => (ot(c).matchKey.caseinsensitive = false),
      'outcomeTypes.resolved_ticket.matchKey.caseinsensitive: unknown key',
    ],
    [
      'clawbackwindow in lower case',
      (c) => (ot(c).clawbackwindow = 'P30D'),
      'outcomeTypes.resolved_ticket.clawbackwindow: unknown key',
    ],
    [
      'updatedAt on a record source',
      (c) => (c.recordSources.helpdesk.updatedAt = 'updated_at'),
      'recordSources.helpdesk.updatedAt: unknown key',
    ],
    [
      'colum on a field',
      (c) => (c.recordSources.helpdesk.fields.csat = { colum: 'CSAT', type: 'number' }),
      'recordSources.helpdesk.fields.csat.column: Invalid input: expected string, received undefined; recordSources.helpdesk.fields.csat.colum: unknown key',
    ],
    [
      'an unknown key in pricing',
      (c) => {
        delete ot(c).unitPrice;
        ot(c).pricing = { tiers: [{ unitPrice: '1' }], discount: '5' };
      },
      'outcomeTypes.resolved_ticket.pricing.discount: unknown key',
    ],
    [
      'an unknown key in a tier',
      (c) => {
        delete ot(c).unitPrice;
        ot(c).pricing = { tiers: [{ unitPrice: '1', upto: 5 }] };
      },
      'outcomeTypes.resolved_ticket.pricing.tiers.0.upto: unknown key',
    ],
    [
      'an unknown key in a cap',
      (c) => {
        delete ot(c).unitPrice;
        ot(c).pricing = { tiers: [{ unitPrice: '1' }], cap: { count: 5, soft: true } };
      },
      'outcomeTypes.resolved_ticket.pricing.cap.soft: unknown key',
    ],
    [
      'an unknown key in the commitment',
      (c) =>
        (c.commitment = {
          amount: '100',
          termStart: '2026-01-01T00:00:00Z',
          termEnd: '2027-01-01T00:00:00Z',
          rollover: true,
        }),
      'commitment.rollover: unknown key',
    ],
    [
      'an unknown key in a claim source',
      (c) => (c.claimSources = { api: { kind: 'http', url: 'https://example.com/claims', pagesize: 10 } }),
      'claimSources.api.pagesize: unknown key',
    ],
    [
      'an unknown operator deep in a rule',
      (c) => ot(c).success.all.push({ not: { regex: ['status', 'x'] } }),
      'outcomeTypes.resolved_ticket.success.all.3.not: unknown operator "regex" (expected one of eq, ne, in, not_in, exists, gte, lte, all, any, not)',
    ],
  ])('refuses %s, naming its path', (_what, edit, message) => {
    expect(refusal(variant(edit))).toBe(message);
  });
});

describe('ContractSchema: rules against field types', () => {
  it.each<[string, unknown, string]>([
    [
      'gte on a text field',
      { gte: ['status', 5] },
      'outcomeTypes.resolved_ticket.success.gte: "gte" needs a number or timestamp field, and "status" is a text field (use eq or in)',
    ],
    [
      'lte on a text field nested',
      { all: [{ exists: 'solved_at' }, { not: { lte: ['ticket_id', 5] } }] },
      'outcomeTypes.resolved_ticket.success.all.1.not.lte: "lte" needs a number or timestamp field, and "ticket_id" is a text field (use eq or in)',
    ],
    [
      'a number field compared with text',
      { gte: ['csat', 'four'] },
      'outcomeTypes.resolved_ticket.success.gte.1: "gte" expects [field, number or time]: value must be a number or an ISO 8601 time such as 2026-03-01T00:00:00Z',
    ],
    [
      'a number field compared with numeric text',
      { eq: ['csat', '5'] },
      'outcomeTypes.resolved_ticket.success.eq.1: "csat" is a number field: compare it with a number, not the text "5"',
    ],
    [
      'a number field in a list with text',
      { in: ['csat', [4, 'five']] },
      'outcomeTypes.resolved_ticket.success.in.1.1: "csat" is a number field: compare it with a number, not the text "five"',
    ],
    [
      'a timestamp compared with a number',
      { gte: ['solved_at', 5] },
      'outcomeTypes.resolved_ticket.success.gte.1: "solved_at" is a timestamp field: compare it with an ISO 8601 time such as 2026-03-01T00:00:00Z, not 5',
    ],
    [
      'a timestamp compared with an impossible date',
      { eq: ['solved_at', '2026-02-30T00:00:00Z'] },
      'outcomeTypes.resolved_ticket.success.eq.1: "solved_at" is a timestamp field: compare it with an ISO 8601 time such as 2026-03-01T00:00:00Z, not "2026-02-30T00:00:00Z"',
    ],
    [
      'a text field compared with a boolean',
      { ne: ['status', true] },
      'outcomeTypes.resolved_ticket.success.ne.1: "status" is a text field: compare it with text, not true',
    ],
  ])('refuses %s', (_what, rule, message) => {
    expect(refusal(variant((c) => (ot(c).success = rule)))).toBe(message);
  });

  it('accepts comparisons that fit the types, and null for any type', () => {
    const rule = {
      all: [
        { gte: ['csat', 3] },
        { lte: ['solved_at', '2030-01-01T00:00:00Z'] },
        { in: ['status', ['solved', null]] },
        { ne: ['csat', null] },
        { eq: ['solved_at', '2026-03-01T00:00:00+01:00'] },
      ],
    };
    expect(ContractSchema.safeParse(variant((c) => (ot(c).success = rule))).success).toBe(true);
  });

  it('a boolean field takes true or false only', () => {
    const withFlag = (rule: unknown) =>
      variant((c) => {
        c.recordSources.helpdesk.fields.vip = { column: 'VIP', type: 'boolean' };
        ot(c).success = rule;
      });
    expect(ContractSchema.safeParse(withFlag({ eq: ['vip', true] })).success).toBe(true);
    expect(refusal(withFlag({ eq: ['vip', 'yes'] }))).toBe(
      'outcomeTypes.resolved_ticket.success.eq.1: "vip" is a boolean field: compare it with true or false, not the text "yes"',
    );
    expect(refusal(withFlag({ gte: ['vip', 1] }))).toBe(
      'outcomeTypes.resolved_ticket.success.gte: "gte" needs a number or timestamp field, and "vip" is a boolean field (use eq or in)',
    );
  });
});

describe('ContractSchema: bounds', () => {
  const hybrid = (pricing: unknown) => (c: RawContract) => {
    delete ot(c).unitPrice;
    ot(c).pricing = pricing;
  };
  it.each<[string, (c: RawContract) => void, string]>([
    [
      'a grace window of 99999999 years',
      (c) => (ot(c).graceWindow = 'P99999999Y'),
      'outcomeTypes.resolved_ticket.graceWindow: must be at most ten years (P10Y)',
    ],
    [
      'an evidence deadline past ten years',
      (c) => (ot(c).evidenceDeadline = 'P3654D'),
      'outcomeTypes.resolved_ticket.evidenceDeadline: must be at most ten years (P10Y)',
    ],
    [
      'a dispute window past ten years',
      (c) => (ot(c).disputes = { window: 'P11Y' }),
      'outcomeTypes.resolved_ticket.disputes.window: must be at most ten years (P10Y)',
    ],
    [
      'a clawback window in hours past ten years',
      (c) => (ot(c).clawbackWindow = 'PT87700H'),
      'outcomeTypes.resolved_ticket.clawbackWindow: must be at most ten years (P10Y)',
    ],
    [
      'effectiveFrom in the year 9999',
      (c) => (c.effectiveFrom = '9999-01-01T00:00:00Z'),
      'effectiveFrom: must lie in the years 2000 to 2100',
    ],
    [
      'effectiveFrom in 1970',
      (c) => (c.effectiveFrom = '1970-01-01T00:00:00Z'),
      'effectiveFrom: must lie in the years 2000 to 2100',
    ],
    [
      'a commitment ending in 2200',
      (c) => (c.commitment = { amount: '100', termStart: '2026-01-01T00:00:00Z', termEnd: '2200-01-01T00:00:00Z' }),
      'commitment.termEnd: must lie in the years 2000 to 2100',
    ],
    ['no outcome types', (c) => (c.outcomeTypes = {}), 'outcomeTypes: name at least one outcome type'],
    [
      'no record sources',
      (c) => {
        c.recordSources = {};
        c.outcomeTypes = {};
      },
      'recordSources: name at least one record source; outcomeTypes: name at least one outcome type',
    ],
    [
      'a price that rounds to zero cents',
      (c) => (ot(c).unitPrice = '0.004'),
      'outcomeTypes.resolved_ticket.unitPrice: 0.004 USD rounds to 0 in minor units (the smallest amount is 0.01); write "0" to mean free',
    ],
    [
      'a yen price below one yen',
      (c) => {
        c.currency = 'JPY';
        ot(c).unitPrice = '0.4';
      },
      'outcomeTypes.resolved_ticket.unitPrice: 0.4 JPY rounds to 0 in minor units (the smallest amount is 1); write "0" to mean free',
    ],
    [
      'a base fee that rounds to zero',
      hybrid({ baseFee: '0.001', tiers: [{ unitPrice: '1' }] }),
      'outcomeTypes.resolved_ticket.pricing.baseFee: 0.001 USD rounds to 0 in minor units (the smallest amount is 0.01); write "0" to mean free',
    ],
    [
      'a unit price beyond the ledger bound',
      (c) => (ot(c).unitPrice = '900719.93'),
      "outcomeTypes.resolved_ticket.unitPrice: 900719.93 USD per outcome is beyond the ledger's bound of 900719.92 USD per outcome (a period may hold 100,000,000 outcomes of a type)",
    ],
    [
      'a tier price the ledger cannot hold at all',
      hybrid({ tiers: [{ upTo: 10, unitPrice: '1' }, { unitPrice: '99999999999999999999' }] }),
      'outcomeTypes.resolved_ticket.pricing.tiers.1.unitPrice: 99999999999999999999 USD is more than the ledger can hold (at most 90071992547409.91 USD)',
    ],
    [
      'a commitment the ledger cannot hold',
      (c) =>
        (c.commitment = {
          amount: '99999999999999999',
          termStart: '2026-01-01T00:00:00Z',
          termEnd: '2027-01-01T00:00:00Z',
        }),
      'commitment.amount: 99999999999999999 USD is more than the ledger can hold (at most 90071992547409.91 USD)',
    ],
  ])('refuses %s', (_what, edit, message) => {
    expect(refusal(variant(edit))).toBe(message);
  });

  it('refuses a contract whose largest period exceeds the ledger even when each price fits', () => {
    const message = refusal(
      variant((c) => {
        ot(c).unitPrice = '900000';
        c.outcomeTypes.closed_ticket = { ...structuredClone(ot(c)), unitPrice: '900000' };
      }),
    );
    expect(message).toMatch(
      /^outcomeTypes: the largest period this contract allows .* totals more than the ledger can hold \(90071992547409\.91 USD\); lower the prices or add a cap$/,
    );
  });

  it('accepts the same prices when a cap bounds the period', () => {
    const capped = variant((c) => {
      delete ot(c).unitPrice;
      ot(c).pricing = { tiers: [{ unitPrice: '900000' }], cap: { amount: '1000000' } };
      c.outcomeTypes.closed_ticket = { ...structuredClone(ot(c)) };
    });
    expect(ContractSchema.safeParse(capped).success).toBe(true);
  });

  it('accepts zero written as zero, the bound itself and ten years exactly', () => {
    for (const edit of [
      (c: RawContract) => (ot(c).unitPrice = '0'),
      (c: RawContract) => (ot(c).unitPrice = '0.000'),
      (c: RawContract) => (ot(c).unitPrice = '900719.92'),
      (c: RawContract) => (ot(c).unitPrice = '0.005'), // rounds half up to one cent
      (c: RawContract) => (ot(c).graceWindow = 'P10Y'),
      (c: RawContract) => (ot(c).clawbackWindow = 'P3652D'),
      (c: RawContract) => (c.effectiveFrom = '2100-12-31T23:59:59Z'),
    ]) {
      const parsed = ContractSchema.safeParse(variant(edit));
      expect(parsed.success, parsed.success ? '' : formatZodIssues(parsed.error)).toBe(true);
    }
  });
});

describe('normaliseMatchKey: Unicode', () => {
  it('makes NFD and NFC spellings one key, with or without case', () => {
    const nfc = 'Ticket-\u00c5ngstr\u00f6m';
    const nfd = nfc.normalize('NFD');
    expect(nfd).not.toBe(nfc);
    expect(normaliseMatchKey(nfd, false)).toBe(nfc);
    expect(normaliseMatchKey(` ${nfd}\u00a0`, true)).toBe(normaliseMatchKey(nfc, true));
    expect(normaliseMatchKey(nfd, true)).toBe('ticket-\u00e5ngstr\u00f6m');
  });

  it('property: any Unicode string and its NFD form give the same key', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.boolean(), (s, ci) => {
        const key = normaliseMatchKey(s, ci);
        expect(normaliseMatchKey(s.normalize('NFD'), ci)).toBe(key);
        expect(key).toBe(key.normalize('NFC'));
        expect(normaliseMatchKey(key, ci)).toBe(key);
      }),
    );
  });
});

describe('StoredContractSchema', () => {
  it('still reads a version stored before the apply-time bounds existed, but applying it again is refused', () => {
    const old = variant((c) => {
      c.effectiveFrom = '9999-01-01T00:00:00Z';
      ot(c).graceWindow = 'P20Y';
      ot(c).success = { gte: ['status', 3] };
    });
    expect(StoredContractSchema.safeParse(old).success).toBe(true);
    expect(refusal(old).split('; ')).toEqual([
      'effectiveFrom: must lie in the years 2000 to 2100',
      'outcomeTypes.resolved_ticket.graceWindow: must be at most ten years (P10Y)',
      'outcomeTypes.resolved_ticket.success.gte: "gte" needs a number or timestamp field, and "status" is a text field (use eq or in)',
    ]);
  });
});
