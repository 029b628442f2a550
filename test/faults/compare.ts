/** Reads the export's CSV (RFC 4180 quoting, CRLF rows) into records keyed by header. */
export function parseCsv(text: string): Array<Record<string, string>> {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += ch;
  }
  if (cell || row.length) rows.push([...row, cell]);
  const out: Array<Record<string, string>> = [];
  let header: string[] | null = null;
  for (const r of rows) {
    // One export per period, each with its header line.
    if (r[0] === 'entry_id') {
      header = r;
      continue;
    }
    if (!header) throw new Error('export without a header line');
    out.push(Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));
  }
  return out;
}

/** Live charges (not cancelled by a credit) per outcome, keyed by outcome type and subject. */
function liveCharges(rows: Array<Record<string, string>>): Map<string, number> {
  const reversed = new Set(rows.filter((r) => r.reverses_entry_id).map((r) => r.reverses_entry_id));
  const live = new Map<string, number>();
  for (const r of rows) {
    if (r.kind !== 'charge' || !r.subject_ref || reversed.has(r.entry_id)) continue;
    const key = `${r.outcome_type}/${r.subject_ref}`;
    live.set(key, (live.get(key) ?? 0) + 1);
  }
  return live;
}

/**
 * The rows with database-assigned ids (entry_id, outcome_id, reverses_entry_id) replaced by their
 * rank of first appearance: a sequence value burnt by a rolled-back transaction shifts later ids
 * without changing what the ledger says.
 */
export function withoutSurrogateIds(rows: Array<Record<string, string>>): string {
  const entries = new Map<string, number>();
  const outcomes = new Map<string, number>();
  const rank = (m: Map<string, number>, v: string) => {
    if (!v) return '';
    if (!m.has(v)) m.set(v, m.size + 1);
    return `#${m.get(v)}`;
  };
  return rows
    .map((r) =>
      JSON.stringify({
        ...r,
        entry_id: rank(entries, r.entry_id),
        outcome_id: rank(outcomes, r.outcome_id),
        reverses_entry_id: r.reverses_entry_id
          ? entries.has(r.reverses_entry_id)
            ? `#${entries.get(r.reverses_entry_id)}`
            : '?'
          : '',
      }),
    )
    .join('\n');
}

export interface Comparison {
  identical: boolean;
  /** Equal once database-assigned ids are renumbered in order. */
  sameUpToIds: boolean;
  /** Live charges beyond the reference's for the same outcome. */
  duplicates: number;
  /** Outcomes billed in one ledger and not in the other. */
  lost: number;
  summary: string;
}

export function compareLedgers(reference: Buffer, run: Buffer): Comparison {
  const identical = reference.equals(run);
  const a = parseCsv(reference.toString('utf8'));
  const b = parseCsv(run.toString('utf8'));
  const la = liveCharges(a);
  const lb = liveCharges(b);
  let duplicates = 0;
  let lost = 0;
  for (const [k, n] of lb) {
    if (n > (la.get(k) ?? 0) && la.has(k)) duplicates += n - la.get(k)!;
    if (!la.has(k)) lost++;
  }
  for (const k of la.keys()) if (!lb.has(k)) lost++;
  let summary = 'identical';
  if (!identical) {
    const ra = reference.toString('utf8').split('\r\n');
    const rb = run.toString('utf8').split('\r\n');
    const at = ra.findIndex((line, i) => line !== rb[i]);
    summary = `${a.length} vs ${b.length} lines; first difference at line ${at + 1}: ${JSON.stringify(ra[at]?.slice(0, 160))} vs ${JSON.stringify(rb[at]?.slice(0, 160))}`;
  }
  const sameUpToIds = identical || withoutSurrogateIds(a) === withoutSurrogateIds(b);
  return { identical, sameUpToIds, duplicates, lost, summary };
}
