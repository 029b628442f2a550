import type { RunSummary } from '../reconcile/runs';
import { formatMinorUnits } from '../domain/money';
import type { OutcomeStory } from '../reconcile/explain';
import type { ImportSummary } from '../ingest/staging';

const n = (x: number | undefined) => String(x ?? 0);

export function formatImport(kind: string, s: ImportSummary): string {
  const head = s.replayed
    ? `${kind} ${s.origin}: identical to an earlier import (${s.sameAs ?? s.origin}, import ${s.importId}); nothing changed`
    : `${kind} ${s.origin}: received ${s.received} = accepted ${s.accepted} + redelivered ${s.redelivered} + quarantined ${s.quarantined}`;
  const problems = s.problems.slice(0, 10).map((p) => `  quarantined line ${p.line} (row ${p.row}): ${p.code}: ${p.reason}`);
  return [head, ...problems, ...(s.quarantined > 10 ? [`  … see \`recon quarantine list\``] : [])].join('\n');
}

const money = (amountMinor: number, currency: string) => `${formatMinorUnits(amountMinor, currency)} ${currency}`;
const count = (x: number, one: string, many = `${one}s`) => `${x} ${x === 1 ? one : many}`;

/** One line per period landed in and currency: every line the run wrote, by kind. */
function formatLedger(l: RunSummary['ledger']): string[] {
  // Summaries stored before byPeriod existed carry only the charge counts.
  if (!l.byPeriod) {
    return [`  ledger   ${count(l.charges, 'charge')}, ${money(l.amountMinor, l.currency)}${l.credits ? `; ${count(l.credits, 'credit')}, ${money(l.creditsMinor, l.currency)}` : ''}`];
  }
  if (l.byPeriod.length === 0) return ['  ledger   no lines'];
  const out = l.byPeriod.map((g, i) => {
    const m = (x: number) => money(x, g.currency);
    const c = g.charges;
    const held = [c.included ? `${c.included} included` : '', c.capped ? `${c.capped} capped` : ''].filter(Boolean).join(', ');
    const parts = [
      `${count(c.count, 'charge')}${held ? ` (${held})` : ''} ${m(c.amountMinor)}`,
      ...(g.baseFees.count ? [`${count(g.baseFees.count, 'base fee')} ${m(g.baseFees.amountMinor)}`] : []),
      ...(g.trueUps.count ? [`${count(g.trueUps.count, 'true-up')} ${m(g.trueUps.amountMinor)}`] : []),
      ...(g.credits.count ? [`${count(g.credits.count, 'credit')} ${m(g.credits.amountMinor)}`] : []),
    ];
    const corrects = g.corrects.length ? ` (corrections of closed ${g.corrects.join(', ')})` : '';
    return `  ${i === 0 ? 'ledger  ' : '        '} ${g.period}${corrects}: ${m(g.amountMinor)} in ${count(g.lines, 'line')}: ${parts.join(', ')}`;
  });
  const fresh = l.byPeriod.filter((g) => g.newLines > 0);
  out.push(fresh.length === 0
    ? '           nothing new: an earlier execution of this asOf wrote these lines'
    : `           this execution added ${fresh.map((g) => `${count(g.newLines, 'line')} ${money(g.newAmountMinor, g.currency)} in ${g.period}`).join(', ')}`);
  return out;
}

export function formatSummary(s: RunSummary): string {
  const t = s.outcomes.transitions;
  const rejected = Object.entries(s.outcomes.rejected).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const byState = Object.entries(s.outcomes.byState).sort().map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const openAt = s.outcomes.openCountedAt ? `open now (counted at ${s.outcomes.openCountedAt}, when the run reported, not as of its asOf; on hold included)` : 'open now';
  return [
    `run ${s.runId} · tenant ${s.tenant} · as of ${s.asOf} · period ${s.period}`,
    `  claims   received ${n(s.claims.received)}, accepted ${n(s.claims.accepted)}, redelivered ${n(s.claims.redelivered)}, quarantined ${n(s.claims.quarantined)}, duplicates ${n(s.claims.duplicates)}, retracted ${n(s.claims.retracted)}`,
    `  records  received ${n(s.records.received)}, accepted ${n(s.records.accepted)}, redelivered ${n(s.records.redelivered)}, quarantined ${n(s.records.quarantined)}`,
    `  tonight  new outcomes ${n(s.outcomes.created)}, into grace ${n(t.in_grace)}, reopened ${n(t.reopened)}, grace restarted ${n(t.grace_restarted)}, confirmed ${n(t.confirmed)}, billed ${n(t.billed)}, rejected: ${rejected}`,
    `  ${openAt}: ${byState}${s.outcomes.ambiguous ? `; ambiguous matches waiting ${s.outcomes.ambiguous}` : ''}`,
    ...formatLedger(s.ledger),
    ...(s.alerts?.length ? [`  alerts   ${s.alerts.map((a) => `${a.outcomeType} ${Math.round(a.threshold * 100)}% of ${a.basis}${a.delivered ? ' (delivered)' : ''}`).join(', ')}`] : []),
    ...(s.backdated ? [
      `  earlier  this asOf is before the tenant's last completed run (as of ${s.backdated.latestCompletedAsOf})`,
      ...s.backdated.canChange.map((x) => `           it could still change: ${x}`),
      ...s.backdated.cannotChange.map((x) => `           it cannot change: ${x}`),
    ] : []),
  ].join('\n');
}

export function formatStory(s: OutcomeStory): string {
  const o = s.outcome;
  const lines = [
    `outcome ${o.outcomeId} · ${o.outcomeType} · subject ${o.subjectRef} · ${o.state}${o.rejectReason ? ` (${o.rejectReason})` : ''}${o.onHold ? ' · ON HOLD' : ''}`,
    `  success at ${o.successAt ?? '-'} · grace ends ${o.graceEndsAt ?? '-'} · evidence due ${o.evidenceDueAt ?? '-'}${o.lastReopenedAt ? ` · last reopened ${o.lastReopenedAt}` : ''}`,
    'claims:',
    ...s.claims.map((c) => `  ${c.claimId.padEnd(14)} ${c.role.padEnd(9)} occurred ${c.occurredAt}${c.retractedAt ? ` retracted ${c.retractedAt}` : ''} (from ${c.origin})`),
    s.record ? `customer record ${s.record.source}/${s.record.externalId}:` : 'customer record: none matched',
    ...(s.record?.versions ?? []).map((v) => `  ${v.usedAsEvidence ? '*' : ' '} in effect ${v.effectiveAt}  ${JSON.stringify(v.data)}`),
    'history:',
    ...s.events.map((e) => `  ${(e.asOf ?? e.at).padEnd(24)} ${e.kind.padEnd(17)} ${e.reason ?? ''}${e.runId ? ` [run ${e.runId}]` : ''}${e.actor ? ` [${e.actor}]` : ''}`),
    ...(s.disputes.length ? ['disputes:'] : []),
    ...s.disputes.flatMap((d) => [
      `  dispute ${d.disputeId} ${d.status} · opened by ${d.openedBy} ${d.openedAt}: ${d.reason}${d.resolvedAt ? ` · ${d.status} by ${d.resolvedBy} ${d.resolvedAt}: ${d.resolutionNote}` : ''}`,
      ...d.events.filter((e) => e.kind === 'note' || e.kind === 'escalated').map((e) => `    ${e.at} ${e.kind} ${e.actor}: ${e.note ?? ''}`),
    ]),
    'ledger:',
    ...(s.ledger.length ? s.ledger.map((l) => `  entry ${l.entryId} ${l.kind} ${l.amountMinor} ${l.currency} minor units at ${l.unitPrice} in ${l.period}${l.reason ? ` (${l.reason})` : ''}`) : ['  none']),
  ];
  return lines.join('\n');
}

export function formatTable(rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return '(none)';
  const cols = Object.keys(rows[0]);
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : String(v));
  const widths = cols.map((c) => Math.min(40, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const line = (vals: string[]) => vals.map((v, i) => v.slice(0, 40).padEnd(widths[i])).join('  ').trimEnd();
  return [line(cols), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}
