import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { inTransaction, type Pool } from '../db/pool';
import { formatMinorUnits, formatMoney } from '../domain/money';
import { csvCell, csvLine } from './csv';
import { ReconError } from '../domain/errors';
import { periodTotalsByCurrency, type LedgerLine } from '../ledger';

export const EXPORT_COLUMNS = [
  'entry_id',
  'kind',
  'period',
  'outcome_type',
  'subject_ref',
  'outcome_id',
  'primary_claim_id',
  'evidence_source',
  'evidence_external_id',
  'evidence_version_time',
  'success_at',
  'billed_at',
  'unit_price',
  'amount_minor',
  'amount',
  'currency',
  'reverses_entry_id',
  'reason',
  'pricing_basis',
  'tier',
  'corrects_period',
] as const;

/** One currency's lines of a period: amounts are only ever summed within a currency. */
export interface CurrencyTotals {
  currency: string;
  lines: number;
  charges: number;
  credits: number;
  amountMinor: number;
  amount: string;
}

export interface ExportTotals {
  tenant: string;
  period: string;
  lines: number;
  charges: number;
  credits: number;
  /** The total when the period holds one currency (or none: 0); null when it holds several (see byCurrency). */
  amountMinor: number | null;
  amount: string | null;
  /** The period's one currency; null when it has no lines or several currencies. */
  currency: string | null;
  /** One total per currency, by currency code. */
  byCurrency: CurrencyTotals[];
}

/** The columns the export reads: its cursor selects exactly these. */
type LedgerRow = Pick<
  LedgerLine,
  | 'entry_id'
  | 'kind'
  | 'period'
  | 'outcome_type'
  | 'subject_ref'
  | 'outcome_id'
  | 'primary_claim_id'
  | 'evidence'
  | 'success_at'
  | 'as_of'
  | 'unit_price'
  | 'amount_minor'
  | 'currency'
  | 'reverses_entry_id'
  | 'reason'
  | 'pricing_basis'
  | 'tier'
  | 'corrects_period'
>;

const PAGE = 5000;

function toRecord(r: LedgerRow): Record<(typeof EXPORT_COLUMNS)[number], string | number | null> {
  return {
    entry_id: r.entry_id,
    kind: r.kind,
    period: r.period,
    outcome_type: r.outcome_type,
    subject_ref: r.subject_ref,
    outcome_id: r.outcome_id,
    primary_claim_id: r.primary_claim_id,
    evidence_source: r.evidence.source ?? null,
    evidence_external_id: r.evidence.externalId ?? null,
    evidence_version_time: r.evidence.effectiveAt ?? null,
    success_at: r.success_at?.toISOString() ?? null,
    billed_at: r.as_of.toISOString(),
    unit_price: r.unit_price,
    amount_minor: r.amount_minor,
    amount: formatMinorUnits(r.amount_minor, r.currency),
    currency: r.currency,
    reverses_entry_id: r.reverses_entry_id,
    reason: r.reason,
    pricing_basis: r.pricing_basis,
    tier: r.tier,
    corrects_period: r.corrects_period,
  };
}

/**
 * Streams every ledger entry of a period in entry order through a server-side cursor, a page at
 * a time, waiting whenever `out` is full: memory stays flat however long the ledger. The cursor
 * reads one snapshot, so a run posting meanwhile is either wholly in the export or wholly out.
 * Entries never change, so the same period always exports the same bytes.
 */
export async function writeExport(
  pool: Pool,
  args: {
    tenant: string;
    period: string;
    format: 'csv' | 'jsonl';
    out: Writable;
    /**
     * Sinks whose delivery state each line gets, one column per sink (delivery_<sink>): a state a
     * spreadsheet filters on. Empty where the line is not owed to that sink. Delivery states change,
     * so an export with them is a snapshot, not the same bytes every time.
     */
    deliverySinks?: string[];
  },
): Promise<ExportTotals> {
  const sinks = args.deliverySinks ?? [];
  const columns: string[] = [...EXPORT_COLUMNS, ...sinks.map((s) => `delivery_${s}`)];
  const write = async (s: string) => {
    // One listener per wait, removed when it resolves (no listener leak on a long export).
    if (!args.out.write(s)) await once(args.out, 'drain');
  };
  const totals: ExportTotals = {
    tenant: args.tenant,
    period: args.period,
    lines: 0,
    charges: 0,
    credits: 0,
    amountMinor: 0,
    amount: '0',
    currency: null,
    byCurrency: [],
  };
  const byCurrency = new Map<string, CurrencyTotals>();
  await inTransaction(
    pool,
    async (db) => {
      await db.query(
        `declare ledger_export no scroll cursor for
       select entry_id, kind, period, outcome_type, subject_ref, outcome_id, primary_claim_id, evidence, success_at, as_of,
              unit_price, amount_minor, currency, reverses_entry_id, reason, pricing_basis, tier, corrects_period${
                sinks.length
                  ? `,
              (select jsonb_object_agg(d.sink, coalesce(b.state, 'owed'))
                 from sink_deliveries d left join sink_batches b on b.batch_id = d.batch_id
                where d.entry_id = l.entry_id) as deliveries`
                  : ''
              }
         from ledger_entries l where tenant_id = $1 and period = $2 order by entry_id`,
        [args.tenant, args.period],
      );
      if (args.format === 'csv') await write(csvLine(columns));
      for (;;) {
        const { rows } = await db.query<LedgerRow & { deliveries?: Record<string, string> | null }>(
          `fetch ${PAGE} from ledger_export`,
        );
        let text = '';
        for (const r of rows) {
          const rec: Record<string, string | number | null> = toRecord(r);
          for (const s of sinks) rec[`delivery_${s}`] = r.deliveries?.[s] ?? null;
          if (args.format === 'csv') {
            // Text from outside goes through the formula guard; the amount is our own decimal
            // (e.g. -0.99 on a credit) and must stay a number to a spreadsheet.
            text += columns.map((c) => csvCell(rec[c], { formulaSafe: c !== 'amount' })).join(',') + '\r\n';
          } else {
            text += JSON.stringify(rec) + '\n';
          }
          let c = byCurrency.get(r.currency);
          if (!c)
            byCurrency.set(
              r.currency,
              (c = { currency: r.currency, lines: 0, charges: 0, credits: 0, amountMinor: 0, amount: '0' }),
            );
          totals.lines++;
          c.lines++;
          if (r.kind === 'charge') {
            totals.charges++;
            c.charges++;
          } else if (r.kind === 'credit') {
            totals.credits++;
            c.credits++;
          }
          c.amountMinor += Number(r.amount_minor);
        }
        if (text) await write(text);
        if (rows.length < PAGE) break;
      }
    },
    'begin isolation level repeatable read read only',
  );
  totals.byCurrency = [...byCurrency.values()].sort((a, b) => a.currency.localeCompare(b.currency));
  for (const c of totals.byCurrency) c.amount = formatMinorUnits(c.amountMinor, c.currency);
  if (totals.byCurrency.length === 1) {
    const [only] = totals.byCurrency;
    Object.assign(totals, { amountMinor: only.amountMinor, amount: only.amount, currency: only.currency });
  } else if (totals.byCurrency.length > 1) {
    Object.assign(totals, { amountMinor: null, amount: null, currency: null });
  }
  return totals;
}

/** The ledger's own per-currency sums for a period, to check an export or a statement against. */
export async function ledgerTotals(
  pool: Pool,
  tenant: string,
  period: string,
): Promise<{ lines: number; byCurrency: Array<{ currency: string; lines: number; amountMinor: number }> }> {
  const byCurrency = await periodTotalsByCurrency(pool, tenant, period);
  return { lines: byCurrency.reduce((s, c) => s + c.lines, 0), byCurrency };
}

/** Whether an export's per-currency totals are the ledger's, currency by currency, to the minor unit. */
export function sameTotals(exported: ExportTotals, ledger: Awaited<ReturnType<typeof ledgerTotals>>): boolean {
  const a = exported.byCurrency.map((c) => `${c.currency}:${c.lines}:${c.amountMinor}`).join('|');
  const b = ledger.byCurrency.map((c) => `${c.currency}:${c.lines}:${c.amountMinor}`).join('|');
  return a === b && exported.lines === ledger.lines;
}

/** Per-currency amounts for people: "12.50 EUR and 1500 JPY"; "0" for none. */
export function describeTotals(byCurrency: Array<{ currency: string; amountMinor: number }>): string {
  if (byCurrency.length === 0) return '0';
  return byCurrency.map((c) => formatMoney(c.amountMinor, c.currency)).join(' and ');
}

/**
 * The ledger's sum for a period that holds one currency. A period with several currencies has no
 * single sum: it is refused (mixed_currencies) rather than added up; use ledgerTotals.
 */
export async function ledgerTotal(
  pool: Pool,
  tenant: string,
  period: string,
): Promise<{ lines: number; amountMinor: number }> {
  const t = await ledgerTotals(pool, tenant, period);
  if (t.byCurrency.length > 1) {
    throw new ReconError(
      'mixed_currencies',
      `period ${period} of tenant ${tenant} holds ${t.byCurrency.map((c) => c.currency).join(' and ')}: amounts in different currencies are never added; read the totals per currency`,
    );
  }
  return { lines: t.lines, amountMinor: t.byCurrency[0]?.amountMinor ?? 0 };
}
