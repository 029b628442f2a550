import type { Contract, ContractVersion, OutcomeTypeTerms } from './contract';
import { ReconError } from './errors';

/**
 * Which contract version applies: decided here and nowhere else.
 *
 * A tenant's contract is a list of versions, each in effect from its `effectiveFrom` until the
 * next one's (the version "in effect at t" is the one with the latest effectiveFrom <= t). The
 * questions the product asks, and the answers:
 *
 * - A run as of `asOf` (evaluation, grace and evidence windows, reversals and clawback, base
 *   fees, true-ups, alerts' webhook, the run's period): the version in effect at asOf. Before the
 *   first version there is none, and the run is refused (no_contract_in_effect).
 * - Pricing an outcome: the version in effect at the outcome's success time, so a price change
 *   applies to successes from its effectiveFrom on, whenever they are billed. A success before
 *   the first version is priced by the first version (the earliest terms there are). Should that
 *   version not know the type (a type added later), the nearest version that does: the latest
 *   before it, else the earliest after it.
 * - A dispute opened or resolved at `at`: the dispute terms of the version in effect at `at`,
 *   falling back like pricing when that version does not know the outcome's type (or `at` is
 *   before the first version).
 * - A statement of a period: the version in effect at the last instant the statement describes
 *   (the period's end, or now while the period is running), else the first version.
 * - Lookups (outcome show --subject, dispute open, dispute import) and claim imports: the types
 *   that exist are the outcomes' and claims' own; the case rule of a type is that of the newest
 *   version that names it. The latest version's list of types is never what decides a lookup.
 * - Record imports: the mapping of the newest version that maps the source, so a file may be
 *   imported in the layout a version applied ahead of its effectiveFrom describes.
 *
 * Applying a version cannot change what these answers mean for history already written: a
 * tenant keeps one currency for life, and a type with outcomes keeps its name, record source and
 * match key (db/contracts.ts refuses such a version). Lines already posted are never repriced:
 * a back-dated version applies only to what is priced, evaluated or disputed after it is applied.
 */
export interface ContractHistory {
  tenant: string;
  /** Every version, ascending by effectiveFrom (never empty). */
  versions: ContractVersion[];
}

export function contractHistory(tenant: string, versions: ContractVersion[]): ContractHistory {
  if (versions.length === 0) {
    throw new ReconError(
      'unknown_tenant',
      `no contract for tenant "${tenant}": apply one with \`recon contract apply FILE\``,
    );
  }
  const sorted = [...versions].sort(
    (a, b) => a.effectiveFrom.getTime() - b.effectiveFrom.getTime() || a.version - b.version,
  );
  return { tenant, versions: sorted };
}

/** The version in effect at `at`: the latest whose effectiveFrom is not after it; undefined before the first. */
export function versionInEffectAt(h: ContractHistory, at: Date): ContractVersion | undefined {
  let found: ContractVersion | undefined;
  for (const v of h.versions) {
    if (v.effectiveFrom.getTime() <= at.getTime()) found = v;
    else break;
  }
  return found;
}

/** versionInEffectAt over a plain list of versions in any order; undefined for none. */
export function contractInEffectAt(versions: ContractVersion[], at: Date): ContractVersion | undefined {
  return versions.length === 0 ? undefined : versionInEffectAt(contractHistory('(tenant)', versions), at);
}

/** The version governing a run as of `asOf`; refused before the first version. */
export function versionForRun(h: ContractHistory, asOf: Date): ContractVersion {
  const v = versionInEffectAt(h, asOf);
  if (!v) {
    throw new ReconError(
      'no_contract_in_effect',
      `no contract version of ${h.tenant} is in effect at ${asOf.toISOString()} (the first starts ${h.versions[0].effectiveFrom.toISOString()}); run with a later --as-of`,
    );
  }
  return v;
}

/** The version in effect at `at` if it knows `outcomeType`, else the nearest that does (earlier first). */
function versionKnowing(h: ContractHistory, outcomeType: string, at: Date): ContractVersion | undefined {
  const inEffect = versionInEffectAt(h, at) ?? h.versions[0];
  if (inEffect.body.outcomeTypes[outcomeType]) return inEffect;
  const i = h.versions.indexOf(inEffect);
  for (let k = i - 1; k >= 0; k--) if (h.versions[k].body.outcomeTypes[outcomeType]) return h.versions[k];
  for (let k = i + 1; k < h.versions.length; k++)
    if (h.versions[k].body.outcomeTypes[outcomeType]) return h.versions[k];
  return undefined;
}

function unknownType(h: ContractHistory, outcomeType: string): ReconError {
  return new ReconError(
    'unknown_outcome_type',
    `outcome type ${outcomeType} is in no contract version of ${h.tenant}; check the type with \`recon contract list --tenant ${h.tenant}\``,
  );
}

/** The version that prices an outcome of `outcomeType` that succeeded at `successAt`. */
export function versionForPricing(h: ContractHistory, outcomeType: string, successAt: Date): ContractVersion {
  const v = versionKnowing(h, outcomeType, successAt);
  if (!v) throw unknownType(h, outcomeType);
  return v;
}

/** The dispute terms (and the version's time zone) for an outcome of `outcomeType`, disputed at `at`. */
export function termsForDispute(
  h: ContractHistory,
  outcomeType: string,
  at: Date,
): { version: ContractVersion; terms: OutcomeTypeTerms['disputes']; timeZone: string } {
  const v = versionKnowing(h, outcomeType, at);
  if (!v) throw unknownType(h, outcomeType);
  return { version: v, terms: v.body.outcomeTypes[outcomeType].disputes, timeZone: v.body.timezone };
}

/** The version a statement of a period describes: in effect at min(period end - 1 ms, now), else the first. */
export function versionForStatement(h: ContractHistory, periodEnd: Date, now: Date): ContractVersion {
  const last = new Date(Math.min(periodEnd.getTime() - 1, now.getTime()));
  return versionInEffectAt(h, last) ?? h.versions[0];
}

/** The newest version by effectiveFrom. */
export function latestVersion(h: ContractHistory): ContractVersion {
  return h.versions[h.versions.length - 1];
}

/** The tenant's currency: one for life (applying a version in another is refused). */
export function tenantCurrency(h: ContractHistory): string {
  return h.versions[0].body.currency;
}

/**
 * The tenant's time zone for periods that no single run decides (statements, schedules): the
 * newest version's.
 */
export function tenantTimeZone(h: ContractHistory): string {
  return latestVersion(h).body.timezone;
}

/** The newest version that maps record source `source`, for importing its files. */
export function versionMappingSource(h: ContractHistory, source: string): ContractVersion | undefined {
  for (let k = h.versions.length - 1; k >= 0; k--) if (h.versions[k].body.recordSources[source]) return h.versions[k];
  return undefined;
}

/** Whether match keys of `outcomeType` ignore case: the rule of the newest version naming it (true when none does). */
export function caseRuleOf(h: ContractHistory, outcomeType: string): boolean {
  for (let k = h.versions.length - 1; k >= 0; k--) {
    const t = h.versions[k].body.outcomeTypes[outcomeType];
    if (t) return t.matchKey.caseInsensitive;
  }
  return true;
}

/** Case rules of every type any version names, for classifying claims. */
export function caseRules(h: ContractHistory): Map<string, boolean> {
  const rules = new Map<string, boolean>();
  for (const v of h.versions)
    for (const [t, ot] of Object.entries(v.body.outcomeTypes)) rules.set(t, ot.matchKey.caseInsensitive);
  return rules;
}

/** What identifies an outcome type's outcomes: a version may not change it once the type has outcomes. */
export interface TypeIdentity {
  recordSource: string;
  matchField: string;
  caseInsensitive: boolean;
}

function identityOf(t: OutcomeTypeTerms): TypeIdentity {
  return { recordSource: t.recordSource, matchField: t.matchKey.field, caseInsensitive: t.matchKey.caseInsensitive };
}

/**
 * How a candidate version would change the types of the history: for each type the newest
 * existing version names, whether the candidate drops it or changes what identifies its
 * outcomes (record source, match field, case rule). The caller refuses those that have outcomes.
 */
export function typeChanges(h: ContractHistory, candidate: Contract): Array<{ outcomeType: string; change: string }> {
  const known = new Map<string, TypeIdentity>();
  for (const v of h.versions) for (const [t, ot] of Object.entries(v.body.outcomeTypes)) known.set(t, identityOf(ot));
  const changes: Array<{ outcomeType: string; change: string }> = [];
  for (const [type, was] of [...known].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const next = candidate.outcomeTypes[type];
    if (!next) {
      changes.push({ outcomeType: type, change: 'drops it' });
      continue;
    }
    const now = identityOf(next);
    if (now.recordSource !== was.recordSource)
      changes.push({
        outcomeType: type,
        change: `moves it from record source ${was.recordSource} to ${now.recordSource}`,
      });
    else if (now.matchField !== was.matchField)
      changes.push({
        outcomeType: type,
        change: `changes its match key field from ${was.matchField} to ${now.matchField}`,
      });
    else if (now.caseInsensitive !== was.caseInsensitive)
      changes.push({ outcomeType: type, change: `changes its case rule to caseInsensitive: ${now.caseInsensitive}` });
  }
  return changes;
}

export interface ContractChange {
  /** JSON path of the changed value, e.g. outcomeTypes.resolved_ticket.unitPrice. */
  path: string;
  /** undefined: the key is new (added) or gone (removed). */
  old?: unknown;
  new?: unknown;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * What changed from one contract body to another, as the paths of the values that differ, in
 * key order. Objects are compared key by key; lists and scalars as whole values (a changed tier
 * list shows once, old and new side by side, which reads better than index-wise changes).
 */
export function diffContracts(from: unknown, to: unknown, at: string[] = []): ContractChange[] {
  if (isPlainObject(from) && isPlainObject(to)) {
    const keys = [...new Set([...Object.keys(from), ...Object.keys(to)])].sort();
    return keys.flatMap((k) => {
      if (!Object.hasOwn(to, k)) return [{ path: [...at, k].join('.'), old: from[k] }];
      if (!Object.hasOwn(from, k)) return [{ path: [...at, k].join('.'), new: to[k] }];
      return diffContracts(from[k], to[k], [...at, k]);
    });
  }
  if (JSON.stringify(from) === JSON.stringify(to)) return [];
  return [{ path: at.length ? at.join('.') : '(root)', old: from, new: to }];
}
