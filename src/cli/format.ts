import { Help, type Option } from 'commander';
import { formatMoney } from '../domain/money';
import type { RunSummary } from '../reconcile/runs';
import type { OutcomeStory } from '../reconcile/explain';
import type { ImportSummary } from '../ingest/staging';

const n = (x: number | undefined) => String(x ?? 0);

/** "1 charge", "2 charges", "0 charges"; `many` for words that do not just take an s. */
export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}

/** "3 of 120 outcomes": how many rows a listing shows of how many match its filters. */
export function formatShown(shown: number, matching: number, noun: string, many?: string): string {
  return `${shown} of ${plural(matching, noun, many)}${shown < matching ? ' (raise --limit to see more)' : ''}`;
}

export interface ProgressLine {
  /** Replaces the line; calls closer together than the refresh interval only keep the latest text. */
  update(text: string): void;
  /** Clears the line, so that what follows starts on a clean one. */
  done(): void;
}

/**
 * One line of progress that rewrites itself on a terminal. Only a terminal gets it: on a pipe or in
 * a file it would be noise between the results, so there (and with --json) the caller gets none.
 */
export function terminalProgress(
  stream: { isTTY?: boolean; write(s: string): unknown } = process.stderr,
  refreshMs = 100,
): ProgressLine | undefined {
  if (!stream.isTTY) return undefined;
  let shown = '';
  let last = 0;
  return {
    update(text) {
      const now = Date.now();
      if (text === shown || now - last < refreshMs) return;
      shown = text;
      last = now;
      stream.write(`\r${text}\x1b[K`);
    },
    done() {
      if (shown) stream.write('\r\x1b[K');
      shown = '';
    },
  };
}

const PHASES: Record<string, string> = {
  start: 'starting',
  pull: 'pulling claims',
  attach: 'attaching claims to outcomes',
  evaluate: 'evaluating outcomes',
  post: 'posting charges',
  report: 'writing the summary',
  done: 'done',
};

/** What a run is doing, in words: "evaluating outcomes · 12 chunks · 24000 outcomes evaluated · 23 charges posted". */
export function formatRunProgress(p: {
  phase: string;
  chunksDone: number;
  outcomesEvaluated: number;
  chargesPosted: number;
  claimPagesPulled?: number;
}): string {
  return [
    `run: ${PHASES[p.phase] ?? p.phase}`,
    plural(p.chunksDone, 'chunk'),
    ...(p.claimPagesPulled ? [plural(p.claimPagesPulled, 'page') + ' of claims pulled'] : []),
    `${plural(p.outcomesEvaluated, 'outcome')} evaluated`,
    `${plural(p.chargesPosted, 'charge')} posted`,
  ].join(' · ');
}

/**
 * `--help` says which options a verb cannot do without. Commander prints defaults and choices but
 * not "required", so the description of every requiredOption gets it here, for every verb at once.
 */
export const markRequiredOptions = {
  optionDescription(this: Help, option: Option): string {
    const text = Help.prototype.optionDescription.call(this, option);
    return option.mandatory ? `${text} (required)` : text;
  },
};

export function formatImport(kind: string, s: ImportSummary): string {
  const head = s.replayed
    ? `${kind} ${s.origin}: identical to an earlier import (${s.sameAs ?? s.origin}, import ${s.importId}); nothing changed`
    : `${kind} ${s.origin}: received ${s.received} = accepted ${s.accepted} + redelivered ${s.redelivered} + quarantined ${s.quarantined}`;
  const problems = s.problems
    .slice(0, 10)
    .map((p) => `  quarantined line ${p.line} (row ${p.row}): ${p.code}: ${p.reason}`);
  const more = s.quarantined - problems.length;
  return [
    head,
    ...problems,
    ...(more > 0
      ? [`  … and ${plural(more, 'more row')}: \`recon quarantine list --tenant TENANT --file ${s.origin}\``]
      : []),
  ].join('\n');
}

/** One line per period landed in and currency: every line the run wrote, by kind. */
function formatLedger(l: RunSummary['ledger']): string[] {
  // Summaries stored before byPeriod existed carry only the charge counts.
  if (!l.byPeriod) {
    return [
      `  ledger   ${plural(l.charges, 'charge')}, ${formatMoney(l.amountMinor, l.currency)}${l.credits ? `; ${plural(l.credits, 'credit')}, ${formatMoney(l.creditsMinor, l.currency)}` : ''}`,
    ];
  }
  if (l.byPeriod.length === 0 && !l.outsideRuns) return ['  ledger   no lines'];
  const out = l.byPeriod.map((g, i) => {
    const m = (x: number) => formatMoney(x, g.currency);
    const c = g.charges;
    const held = [c.included ? `${c.included} included` : '', c.capped ? `${c.capped} capped` : '']
      .filter(Boolean)
      .join(', ');
    const parts = [
      `${plural(c.count, 'charge')}${held ? ` (${held})` : ''} ${m(c.amountMinor)}`,
      ...(g.baseFees.count ? [`${plural(g.baseFees.count, 'base fee')} ${m(g.baseFees.amountMinor)}`] : []),
      ...(g.trueUps.count ? [`${plural(g.trueUps.count, 'true-up')} ${m(g.trueUps.amountMinor)}`] : []),
      ...(g.credits.count ? [`${plural(g.credits.count, 'credit')} ${m(g.credits.amountMinor)}`] : []),
    ];
    const corrects = g.corrects.length ? ` (corrections of closed ${g.corrects.join(', ')})` : '';
    return `  ${i === 0 ? 'ledger  ' : '        '} ${g.period}${corrects}: ${m(g.amountMinor)} in ${plural(g.lines, 'line')}: ${parts.join(', ')}`;
  });
  for (const o of l.outsideRuns?.byPeriod ?? []) {
    out.push(
      `  between  ${o.period}: ${formatMoney(o.amountMinor, o.currency)} in ${plural(o.lines, 'line')} that support's disputes posted since the ${l.outsideRuns!.since ? 'previous run' : 'start'}`,
    );
  }
  const fresh = l.byPeriod.filter((g) => g.newLines > 0);
  out.push(
    fresh.length === 0
      ? '           nothing new: an earlier execution of this asOf wrote these lines'
      : `           this execution added ${fresh.map((g) => `${plural(g.newLines, 'line')} ${formatMoney(g.newAmountMinor, g.currency)} in ${g.period}`).join(', ')}`,
  );
  return out;
}

/** One line per sink: every line the tenant owes it, by state (`recon sink status` for the detail). */
function formatSinkLines(totals: NonNullable<RunSummary['sinks']>): string[] {
  const bySink = new Map<string, string[]>();
  for (const t of totals) {
    const parts = bySink.get(t.sink) ?? [];
    parts.push(`${t.state.replace('_', ' ')} ${n(t.lines)} (${formatMoney(t.amountMinor, t.currency)})`);
    bySink.set(t.sink, parts);
  }
  return [...bySink].map(([sink, parts]) => `  sink     ${sink}: ${parts.join(', ')}`);
}

export function formatSummary(s: RunSummary): string {
  const t = s.outcomes.transitions;
  const rejected =
    Object.entries(s.outcomes.rejected)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none';
  const byState =
    Object.entries(s.outcomes.byState)
      .sort()
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none';
  const openAt = s.outcomes.openCountedAt
    ? `open now (counted at ${s.outcomes.openCountedAt}, when the run reported, not as of its asOf; on hold included)`
    : 'open now';
  return [
    `run ${s.runId} · tenant ${s.tenant} · as of ${s.asOf} · period ${s.period}`,
    `  claims   received ${n(s.claims.received)}, accepted ${n(s.claims.accepted)}, redelivered ${n(s.claims.redelivered)}, quarantined ${n(s.claims.quarantined)}, duplicates ${n(s.claims.duplicates)}, retracted ${n(s.claims.retracted)}`,
    `  records  received ${n(s.records.received)}, accepted ${n(s.records.accepted)}, redelivered ${n(s.records.redelivered)}, quarantined ${n(s.records.quarantined)}`,
    `  tonight  new outcomes ${n(s.outcomes.created)}, into grace ${n(t.in_grace)}, reopened ${n(t.reopened)}, grace restarted ${n(t.grace_restarted)}, confirmed ${n(t.confirmed)}, billed ${n(t.billed)}, rejected: ${rejected}`,
    `  ${openAt}: ${byState}${s.outcomes.ambiguous ? `; ambiguous matches waiting ${s.outcomes.ambiguous}` : ''}`,
    ...formatLedger(s.ledger),
    ...(s.alerts?.length
      ? [
          `  alerts   ${s.alerts.map((a) => `${a.outcomeType} ${Math.round(a.threshold * 100)}% of ${a.basis}${a.delivered ? ' (delivered)' : ''}`).join(', ')}`,
        ]
      : []),
    ...formatSinkLines(s.sinks ?? []),
    ...(s.backdated
      ? [
          `  earlier  this asOf is before the tenant's last completed run (as of ${s.backdated.latestCompletedAsOf})`,
          ...s.backdated.canChange.map((x) => `           it could still change: ${x}`),
          ...s.backdated.cannotChange.map((x) => `           it cannot change: ${x}`),
        ]
      : []),
  ].join('\n');
}

/**
 * Posting and crediting write their reason with the amount in minor units ("charged 99 minor units
 * in 2026-03"), and rows already stored keep that text; people read it as "charged 0.99 EUR".
 */
export function decimalReason(reason: string, currency: string): string {
  return reason.replace(/(-?\d+) minor units/g, (_m, minor: string) => formatMoney(minor, currency));
}

/** One line's delivery to one sink, in words: where it went, as what, and what is wrong if it did not. */
export function formatDelivery(d: OutcomeStory['ledger'][number]['deliveries'][number]): string {
  if (d.batchId === null) return 'owed, not yet in a batch (the next delivery pass sends it)';
  const batch = `batch ${d.batchId} (${d.batchKey})`;
  switch (d.state) {
    case 'delivered':
      return `delivered in ${batch} at ${d.deliveredAt ?? '-'}`;
    case 'skipped':
      return `skipped: the sink does not take this kind of line (${batch})`;
    case 'pending':
      return `pending in ${batch}${d.lastError ? `; last error: ${d.lastError}` : ''}`;
    default:
      return `${d.state.replace('_', ' ')} in ${batch}: ${d.lastError ?? 'no error recorded'}`;
  }
}

export function formatStory(s: OutcomeStory): string {
  const o = s.outcome;
  // An outcome's lines all carry the tenant's one currency.
  const currency = s.ledger[0]?.currency;
  const lines = [
    `outcome ${o.outcomeId} · ${o.outcomeType} · subject ${o.subjectRef} · ${o.state}${o.rejectReason ? ` (${o.rejectReason})` : ''}${o.onHold ? ' · ON HOLD' : ''}`,
    `  success at ${o.successAt ?? '-'} · grace ends ${o.graceEndsAt ?? '-'} · evidence due ${o.evidenceDueAt ?? '-'}${o.lastReopenedAt ? ` · last reopened ${o.lastReopenedAt}` : ''}`,
    'claims:',
    ...s.claims.map(
      (c) =>
        `  ${c.claimId.padEnd(14)} ${c.role.padEnd(9)} occurred ${c.occurredAt}${c.retractedAt ? ` retracted ${c.retractedAt}` : ''} (from ${c.origin})`,
    ),
    s.record ? `customer record ${s.record.source}/${s.record.externalId}:` : 'customer record: none matched',
    ...(s.record?.versions ?? []).map(
      (v) => `  ${v.usedAsEvidence ? '*' : ' '} in effect ${v.effectiveAt}  ${JSON.stringify(v.data)}`,
    ),
    'history:',
    ...s.events.map(
      (e) =>
        `  ${(e.asOf ?? e.at).padEnd(24)} ${e.kind.padEnd(17)} ${currency ? decimalReason(e.reason ?? '', currency) : (e.reason ?? '')}${e.runId ? ` [run ${e.runId}]` : ''}${e.actor ? ` [${e.actor}]` : ''}`,
    ),
    ...(s.disputes.length ? ['disputes:'] : []),
    ...s.disputes.flatMap((d) => [
      `  dispute ${d.disputeId} ${d.status} · opened by ${d.openedBy} ${d.openedAt}: ${d.reason}${d.resolvedAt ? ` · ${d.status} by ${d.resolvedBy} ${d.resolvedAt}: ${d.resolutionNote}` : ''}`,
      ...d.events
        .filter((e) => e.kind === 'note' || e.kind === 'escalated')
        .map((e) => `    ${e.at} ${e.kind} ${e.actor}: ${e.note ?? ''}`),
    ]),
    'ledger:',
    ...(s.ledger.length
      ? s.ledger.flatMap((l) => [
          `  entry ${l.entryId} ${l.kind} ${formatMoney(l.amountMinor, l.currency)} at ${l.unitPrice} in ${l.period}${l.reason ? ` (${decimalReason(l.reason, l.currency)})` : ''}`,
          ...l.deliveries.map((d) => `    to ${d.sink}: ${formatDelivery(d)}`),
        ])
      : ['  none']),
  ];
  return lines.join('\n');
}

export function formatTable(rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return '(none)';
  const cols = Object.keys(rows[0]);
  // Cells are query columns and summary fields (strings, numbers, bigints, Dates): String() is their display.
  // eslint-disable-next-line @typescript-eslint/no-base-to-string
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : String(v));
  const widths = cols.map((c) => Math.min(40, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.slice(0, 40).padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(cols), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}
