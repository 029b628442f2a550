import type { Pool } from '../db/pool';
import { loadContractHistory } from '../db/contracts';
import { pricingOf } from '../domain/contract';
import { tenantTimeZone, versionForStatement } from '../domain/contract-history';
import { formatMinorUnits, formatMoney, priceToMinorUnits } from '../domain/money';
import { periodBounds } from '../domain/periods';
import { projectPeriod } from '../domain/pricing/forecast';
import { listAlerts, type AlertRow } from './alerts';
import { commitmentDrawnMinor, periodTotalsByCurrency, type LedgerLine } from '../ledger';
import { isClosed } from './period-close';

export interface TypeStatement {
  outcomeType: string;
  /** The currency of this type's lines; a type with lines in two currencies has one entry per currency. */
  currency: string;
  includedUsed: number;
  included: number;
  tiers: Array<{ tier: number; unitPrice: string; outcomes: number; subtotalMinor: number }>;
  capped: number;
  credits: { count: number; amountMinor: number };
  usageMinor: number;
  forecast: { projectedOutcomes: number; projectedAmountMinor: number; capReachedOn: string | null } | null;
}

export interface Statement {
  tenant: string;
  period: string;
  closed: boolean;
  /** The contract's currency (the commitment and forecast are in it). */
  currency: string;
  baseFees: Array<{ outcomeType: string; amountMinor: number; currency: string }>;
  types: TypeStatement[];
  trueUps: Array<{ amountMinor: number; reason: string; currency: string }>;
  commitment: {
    amountMinor: number;
    drawnMinor: number;
    balanceMinor: number;
    termStart: string;
    termEnd: string;
    reachedOn: string | null;
  } | null;
  alerts: AlertRow[];
  /** The period's total per currency (never summed across currencies), by currency code. */
  totals: Array<{ currency: string; lines: number; amountMinor: number; amount: string }>;
  /** The total when the period holds one currency (0 when it holds none); null when it holds several (see totals). */
  totalMinor: number | null;
  total: string | null;
}

const DAY = 86_400_000;

/** The tenant's calendar date of an instant (not the UTC date, which is a day off east of UTC). */
function localDate(d: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
}

/**
 * What finance invoices for one period, built from the ledger alone so that its total is the
 * export's total to the minor unit; the forecast runs the period's daily rate so far to its end.
 */
export async function buildStatement(
  pool: Pool,
  args: { tenant: string; period: string; now?: Date },
): Promise<Statement> {
  const history = await loadContractHistory(pool, args.tenant);
  const now = args.now ?? new Date();
  const tz = tenantTimeZone(history);
  const { start, end } = periodBounds(args.period, tz);
  const contract = versionForStatement(history, end, now).body;
  const q = async <T>(sql: string, params: unknown[]) => (await pool.query(sql, params)).rows as T[];
  const grouped = await q<
    Pick<LedgerLine, 'kind' | 'outcome_type' | 'currency' | 'pricing_basis' | 'tier' | 'unit_price'> & {
      n: number;
      amount: number;
    }
  >(
    `select kind, outcome_type, currency, pricing_basis, tier, unit_price, count(*)::int as n, sum(amount_minor)::bigint as amount
       from ledger_entries where tenant_id = $1 and period = $2
      group by kind, outcome_type, currency, pricing_basis, tier, unit_price order by outcome_type, currency, tier, unit_price`,
    [args.tenant, args.period],
  );
  const totals = (await periodTotalsByCurrency(pool, args.tenant, args.period)).map((t) => ({
    ...t,
    amount: formatMinorUnits(t.amountMinor, t.currency),
  }));
  const elapsedDays = Math.max(0, Math.min(now.getTime(), end.getTime()) - start.getTime()) / DAY;
  const periodDays = (end.getTime() - start.getTime()) / DAY;

  const typeKeys = [
    ...new Map(
      grouped
        .filter((g) => g.outcome_type && g.kind !== 'base_fee')
        .map((g) => [`${g.outcome_type}|${g.currency}`, { type: g.outcome_type!, currency: g.currency }]),
    ).values(),
  ].sort((a, b) => a.type.localeCompare(b.type) || a.currency.localeCompare(b.currency));
  const types: TypeStatement[] = typeKeys.map(({ type, currency }) => {
    const rows = grouped.filter((g) => g.outcome_type === type && g.currency === currency);
    const charges = rows.filter((r) => r.kind === 'charge');
    const terms = contract.outcomeTypes[type];
    const pricing = terms ? pricingOf(terms) : null;
    const usage = {
      count: charges.reduce((s, r) => s + r.n, 0),
      usageMinor: charges.reduce((s, r) => s + Number(r.amount), 0),
      capped: charges.filter((r) => r.pricing_basis === 'capped').reduce((s, r) => s + r.n, 0),
    };
    let forecast: TypeStatement['forecast'] = null;
    // The forecast prices in the contract's currency; lines in another currency are not projected.
    if (pricing && currency === contract.currency && elapsedDays > 0 && elapsedDays < periodDays) {
      const p = projectPeriod(pricing, contract.currency, {
        usageSoFar: usage,
        daysElapsed: elapsedDays,
        daysInPeriod: periodDays,
        baseFee: false,
      });
      forecast = {
        projectedOutcomes: p.projectedCount,
        projectedAmountMinor: p.projectedUsageMinor,
        capReachedOn:
          p.capReachedOnDay === null
            ? null
            : localDate(new Date(start.getTime() + (p.capReachedOnDay - 0.5) * DAY), tz),
      };
    }
    const credits = rows.filter((r) => r.kind === 'credit');
    return {
      outcomeType: type,
      currency,
      included: pricing?.included ?? 0,
      includedUsed: charges.filter((r) => r.pricing_basis === 'included').reduce((s, r) => s + r.n, 0),
      tiers: charges
        .filter((r) => r.pricing_basis === 'tier')
        .map((r) => ({ tier: r.tier ?? 1, unitPrice: r.unit_price, outcomes: r.n, subtotalMinor: Number(r.amount) })),
      capped: usage.capped,
      credits: {
        count: credits.reduce((s, r) => s + r.n, 0),
        amountMinor: credits.reduce((s, r) => s + Number(r.amount), 0),
      },
      usageMinor: usage.usageMinor,
      forecast,
    };
  });

  let commitment: Statement['commitment'] = null;
  if (contract.commitment) {
    const c = contract.commitment;
    const amountMinor = priceToMinorUnits(c.amount, contract.currency);
    const until = new Date(Math.min(end.getTime(), Date.parse(c.termEnd)));
    const drawnMinor = await commitmentDrawnMinor(pool, {
      tenant: args.tenant,
      currency: contract.currency,
      from: c.termStart,
      until,
    });
    const termElapsed = (Math.min(now.getTime(), until.getTime()) - Date.parse(c.termStart)) / DAY;
    const rate = termElapsed > 0 ? drawnMinor / termElapsed : 0;
    const reachedMs =
      drawnMinor >= amountMinor ? null : rate > 0 ? Date.parse(c.termStart) + (amountMinor / rate) * DAY : null;
    commitment = {
      amountMinor,
      drawnMinor,
      balanceMinor: amountMinor - drawnMinor,
      termStart: c.termStart,
      termEnd: c.termEnd,
      reachedOn: reachedMs !== null && reachedMs < Date.parse(c.termEnd) ? localDate(new Date(reachedMs), tz) : null,
    };
  }

  return {
    tenant: args.tenant,
    period: args.period,
    closed: await isClosed(pool, args.tenant, args.period),
    currency: contract.currency,
    baseFees: grouped
      .filter((g) => g.kind === 'base_fee')
      .map((g) => ({ outcomeType: g.outcome_type ?? '', amountMinor: Number(g.amount), currency: g.currency })),
    types,
    // insertTrueUp writes every true-up with its reason.
    trueUps: (
      await q<Pick<LedgerLine, 'amount_minor' | 'currency'> & { reason: string }>(
        `select amount_minor, reason, currency from ledger_entries where tenant_id = $1 and period = $2 and kind = 'true_up' order by entry_id`,
        [args.tenant, args.period],
      )
    ).map((t) => ({ amountMinor: Number(t.amount_minor), reason: t.reason, currency: t.currency })),
    commitment,
    alerts: await listAlerts(pool, { tenant: args.tenant, period: args.period }),
    totals,
    totalMinor: totals.length > 1 ? null : (totals[0]?.amountMinor ?? 0),
    total: totals.length > 1 ? null : (totals[0]?.amount ?? formatMinorUnits(0, contract.currency)),
  };
}

export function formatStatement(s: Statement): string {
  const m = (minor: number, currency = s.currency) => formatMoney(minor, currency);
  return [
    `statement · ${s.tenant} · ${s.period}${s.closed ? ' · CLOSED' : ''}`,
    ...s.baseFees.map((b) => `  base fee ${b.outcomeType.padEnd(20)} ${m(b.amountMinor, b.currency)}`),
    ...s.types.flatMap((t) => [
      `  ${t.outcomeType}: included ${t.includedUsed}/${t.included}, capped ${t.capped}, usage ${m(t.usageMinor, t.currency)}`,
      ...t.tiers.map((x) => `    tier ${x.tier}: ${x.outcomes} × ${x.unitPrice} = ${m(x.subtotalMinor, t.currency)}`),
      ...(t.credits.count ? [`    credits: ${t.credits.count}, ${m(t.credits.amountMinor, t.currency)}`] : []),
      ...(t.forecast
        ? [
            `    forecast at period end: ${t.forecast.projectedOutcomes} outcomes, usage ${m(t.forecast.projectedAmountMinor, t.currency)}${t.forecast.capReachedOn ? `, cap reached ${t.forecast.capReachedOn}` : ''}`,
          ]
        : []),
    ]),
    ...s.trueUps.map((t) => `  true-up ${m(t.amountMinor, t.currency)}: ${t.reason}`),
    ...(s.commitment
      ? [
          `  commitment ${m(s.commitment.amountMinor)}: drawn ${m(s.commitment.drawnMinor)}, balance ${m(s.commitment.balanceMinor)}${s.commitment.reachedOn ? `, reached at this rate on ${s.commitment.reachedOn}` : ''}`,
        ]
      : []),
    ...(s.alerts.length
      ? [
          `  alerts: ${s.alerts.map((a) => `${a.outcomeType} ${Math.round(a.threshold * 100)}% of ${a.basis} (${a.crossedAt.slice(0, 10)})`).join(', ')}`,
        ]
      : []),
    s.totals.length === 0
      ? `  total ${m(0)}`
      : `  total ${s.totals.map((t) => m(t.amountMinor, t.currency)).join(' and ')}${s.totals.length > 1 ? ' (one total per currency; never added together)' : ''}`,
  ].join('\n');
}
