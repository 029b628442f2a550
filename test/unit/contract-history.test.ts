import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ContractSchema, type Contract, type ContractVersion } from '../../src/domain/contract';
import {
  caseRuleOf,
  caseRules,
  contractHistory,
  diffContracts,
  latestVersion,
  tenantCurrency,
  termsForDispute,
  typeChanges,
  versionForPricing,
  versionForRun,
  versionForStatement,
  versionInEffectAt,
  versionMappingSource,
} from '../../src/domain/contract-history';

// The example contract as untyped JSON: tests edit it freely into valid and invalid inputs.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RawContract = Record<string, any>;
const example = JSON.parse(
  readFileSync(new URL('../../examples/contract.acme.json', import.meta.url), 'utf8'),
) as RawContract;

function body(edit: (c: RawContract) => void = () => {}): Contract {
  const c = structuredClone(example);
  edit(c);
  return ContractSchema.parse(c);
}
const v = (version: number, effectiveFrom: string, b: Contract = body()): ContractVersion => ({
  version,
  effectiveFrom: new Date(effectiveFrom),
  body: b,
});
const at = (s: string) => new Date(s);

// v1 Jan, v2 Mar (a new type "qualified_lead" on the same source, other dispute terms), v3 Jun.
const leadTerms = (c: RawContract) => {
  c.outcomeTypes.qualified_lead = { ...structuredClone(c.outcomeTypes.resolved_ticket), unitPrice: '5.00' };
};
const v1 = v(1, '2026-01-01T00:00:00Z');
const v2 = v(
  2,
  '2026-03-01T00:00:00Z',
  body((c) => {
    leadTerms(c);
    c.outcomeTypes.resolved_ticket.disputes = { window: 'P60D' };
  }),
);
const v3 = v(
  3,
  '2026-06-01T00:00:00Z',
  body((c) => {
    leadTerms(c);
    c.outcomeTypes.resolved_ticket.unitPrice = '1.25';
  }),
);
const h = contractHistory('acme', [v3, v1, v2]);

describe('contract history: which version applies', () => {
  it('keeps the versions in effectiveFrom order whatever the input order', () => {
    expect(h.versions.map((x) => x.version)).toEqual([1, 2, 3]);
    expect(latestVersion(h).version).toBe(3);
  });

  it('refuses a tenant without versions as unknown', () => {
    expect(() => contractHistory('nobody', [])).toThrow(expect.objectContaining({ code: 'unknown_tenant' }));
  });

  it('a run uses the version in effect at its asOf, the boundary included; none before the first', () => {
    expect(versionForRun(h, at('2026-02-28T23:59:59.999Z')).version).toBe(1);
    expect(versionForRun(h, at('2026-03-01T00:00:00Z')).version).toBe(2);
    expect(versionForRun(h, at('2030-01-01T00:00:00Z')).version).toBe(3);
    expect(() => versionForRun(h, at('2025-12-31T00:00:00Z'))).toThrow(
      expect.objectContaining({ code: 'no_contract_in_effect' }),
    );
    expect(versionInEffectAt(h, at('2025-12-31T00:00:00Z'))).toBeUndefined();
  });

  it('pricing follows the success time, not the run', () => {
    expect(versionForPricing(h, 'resolved_ticket', at('2026-05-31T00:00:00Z')).version).toBe(2);
    expect(versionForPricing(h, 'resolved_ticket', at('2026-06-02T00:00:00Z')).version).toBe(3);
  });

  it('a success before the first version is priced by the first version', () => {
    expect(versionForPricing(h, 'resolved_ticket', at('2025-06-01T00:00:00Z')).version).toBe(1);
  });

  it('a type the version in effect does not know is priced by the nearest version that does: earlier first, else later', () => {
    // qualified_lead exists from v2 on; a success in January falls back to v2 (later).
    expect(versionForPricing(h, 'qualified_lead', at('2026-01-15T00:00:00Z')).version).toBe(2);
    const retired = contractHistory('acme', [v1, v2, v(4, '2026-09-01T00:00:00Z')]);
    // Retired again in v4 (possible only while it had no outcomes): the latest earlier version prices it.
    expect(versionForPricing(retired, 'qualified_lead', at('2026-10-01T00:00:00Z')).version).toBe(2);
    expect(() => versionForPricing(h, 'no_such_type', at('2026-04-01T00:00:00Z'))).toThrow(
      expect.objectContaining({ code: 'unknown_outcome_type' }),
    );
  });

  it('disputes use the terms in effect when the dispute is opened or resolved', () => {
    expect(termsForDispute(h, 'resolved_ticket', at('2026-02-01T00:00:00Z')).terms.window).toBe('P30D');
    expect(termsForDispute(h, 'resolved_ticket', at('2026-04-01T00:00:00Z')).terms.window).toBe('P60D');
    expect(termsForDispute(h, 'resolved_ticket', at('2026-04-01T00:00:00Z')).timeZone).toBe('America/New_York');
    expect(termsForDispute(h, 'qualified_lead', at('2026-01-15T00:00:00Z')).version.version).toBe(2);
  });

  it('a statement uses the version in effect at the end of its period, or now while it runs', () => {
    const aprilEnd = at('2026-05-01T04:00:00Z');
    expect(versionForStatement(h, aprilEnd, at('2026-12-01T00:00:00Z')).version).toBe(2);
    // June is still running on 2026-06-10: the version in effect now.
    expect(versionForStatement(h, at('2026-07-01T04:00:00Z'), at('2026-06-10T00:00:00Z')).version).toBe(3);
    // A period before the first version: the first version.
    expect(versionForStatement(h, at('2025-07-01T00:00:00Z'), at('2026-06-10T00:00:00Z')).version).toBe(1);
  });

  it('lookups and imports: case rules from every version, the newest that names a type wins; sources from the newest mapping', () => {
    const caseSensitive = v(
      4,
      '2026-09-01T00:00:00Z',
      body((c) => {
        leadTerms(c);
        c.outcomeTypes.resolved_ticket.matchKey.caseInsensitive = false;
        c.outcomeTypes.qualified_lead.matchKey.caseInsensitive = false;
      }),
    );
    const h4 = contractHistory('acme', [v1, v2, caseSensitive]);
    expect(caseRuleOf(h4, 'resolved_ticket')).toBe(false);
    expect(caseRuleOf(h, 'resolved_ticket')).toBe(true);
    expect(caseRuleOf(h, 'never_named')).toBe(true);
    expect([...caseRules(h).keys()].sort()).toEqual(['qualified_lead', 'resolved_ticket']);
    expect(versionMappingSource(h, 'helpdesk')?.version).toBe(3);
    expect(versionMappingSource(h, 'crm')).toBeUndefined();
  });

  it('the tenant has the currency of its first version', () => {
    expect(tenantCurrency(h)).toBe('USD');
  });
});

describe('typeChanges: what a candidate version does to the known types', () => {
  it('names dropped types and changes of record source, match field and case rule; nothing for a price change', () => {
    expect(
      typeChanges(
        h,
        body((c) => {
          leadTerms(c);
          c.outcomeTypes.resolved_ticket.unitPrice = '9';
        }),
      ),
    ).toEqual([]);
    expect(typeChanges(h, body())).toEqual([{ outcomeType: 'qualified_lead', change: 'drops it' }]);
    const renamed = body((c) => {
      c.outcomeTypes.solved_ticket = c.outcomeTypes.resolved_ticket;
      delete c.outcomeTypes.resolved_ticket;
      leadTerms(c);
      c.outcomeTypes.qualified_lead = {
        ...c.outcomeTypes.solved_ticket,
        matchKey: { field: 'ticket_id', caseInsensitive: true },
      };
    });
    expect(typeChanges(h, renamed)).toEqual([{ outcomeType: 'resolved_ticket', change: 'drops it' }]);
    const caseChanged = body((c) => {
      leadTerms(c);
      c.outcomeTypes.resolved_ticket.matchKey.caseInsensitive = false;
      c.outcomeTypes.qualified_lead.matchKey.caseInsensitive = false;
    });
    expect(typeChanges(h, caseChanged)).toEqual([
      { outcomeType: 'qualified_lead', change: 'changes its case rule to caseInsensitive: false' },
      { outcomeType: 'resolved_ticket', change: 'changes its case rule to caseInsensitive: false' },
    ]);
  });
});

describe('diffContracts', () => {
  it('lists changed paths with old and new values, added and removed keys', () => {
    const changes = diffContracts(v1.body, v3.body);
    expect(changes).toContainEqual({ path: 'outcomeTypes.resolved_ticket.unitPrice', old: '0.99', new: '1.25' });
    expect(changes).toContainEqual({ path: 'outcomeTypes.qualified_lead', new: v3.body.outcomeTypes.qualified_lead });
    expect(diffContracts(v3.body, v1.body)).toContainEqual({
      path: 'outcomeTypes.qualified_lead',
      old: v3.body.outcomeTypes.qualified_lead,
    });
    expect(diffContracts(v1.body, v1.body)).toEqual([]);
  });

  it('compares lists as whole values', () => {
    expect(diffContracts({ tiers: [{ unitPrice: '1' }] }, { tiers: [{ unitPrice: '2' }] })).toEqual([
      { path: 'tiers', old: [{ unitPrice: '1' }], new: [{ unitPrice: '2' }] },
    ]);
  });
});
