import { z } from 'zod';
import type { Pool, PoolClient } from '../db/pool';
import { pricingOf, type ContractVersion } from '../domain/contract';
import { priceToMinorUnits } from '../domain/money';
import { alertsToRecord } from '../domain/pricing/alerts';
import type { PeriodUsage } from '../domain/pricing/schema';

export interface AlertRow {
  alertId: number;
  outcomeType: string;
  period: string;
  threshold: number;
  basis: string;
  usageMinor: number;
  limitMinor: number;
  crossedAt: string;
  deliveredAt: string | null;
  attempts: number;
  lastError: string | null;
}

/**
 * Records the alert thresholds a posted chunk crossed, per outcome type, measured against the
 * terms of the run's current contract version. Runs on the posting transaction's client, after
 * the chunk's lines are written, so an alert is committed exactly when the lines that crossed it
 * are; the table's unique (tenant, type, period, threshold) makes a repeat record nothing.
 */
export async function recordAlerts(
  db: PoolClient,
  a: {
    tenant: string;
    runId: number;
    period: string;
    at: Date;
    current: ContractVersion;
    before: Map<string, PeriodUsage>;
    after: Map<string, PeriodUsage>;
  },
): Promise<void> {
  const c = a.current.body;
  const commitmentMinor = c.commitment ? priceToMinorUnits(c.commitment.amount, c.currency) : undefined;
  const crossed: Array<{ type: string; threshold: number; basis: string; usageMinor: number; limitMinor: number }> = [];
  for (const [type, after] of a.after) {
    const terms = c.outcomeTypes[type];
    if (!terms) continue;
    const before = a.before.get(type) ?? { count: 0, usageMinor: 0, capped: 0 };
    for (const alert of alertsToRecord(pricingOf(terms), c.currency, before, after, commitmentMinor))
      crossed.push({ type, ...alert });
  }
  if (crossed.length === 0) return;
  // Ordered by ordinality so alert ids (the delivery order) follow the order crossed.
  await db.query(
    `insert into alerts (tenant_id, outcome_type, period, threshold, basis, usage_minor, limit_minor, run_id, crossed_at)
     select $1, a.outcome_type, $2, a.threshold, a.basis, a.usage_minor, a.limit_minor, $3, $4
       from unnest($5::text[], $6::numeric[], $7::text[], $8::bigint[], $9::bigint[])
            with ordinality as a(outcome_type, threshold, basis, usage_minor, limit_minor, ord)
      order by a.ord
     on conflict do nothing`,
    [
      a.tenant,
      a.period,
      a.runId,
      a.at,
      crossed.map((x) => x.type),
      crossed.map((x) => x.threshold),
      crossed.map((x) => x.basis),
      crossed.map((x) => x.usageMinor),
      crossed.map((x) => x.limitMinor),
    ],
  );
}

/** A row of the alerts table as the queries here read it. */
interface AlertDbRow {
  alert_id: number;
  outcome_type: string;
  period: string;
  threshold: string;
  basis: string;
  usage_minor: number;
  limit_minor: number;
  crossed_at: Date;
  delivered_at: Date | null;
  attempts: number;
  last_error: string | null;
}

export async function listAlerts(pool: Pool, args: { tenant: string; period?: string }): Promise<AlertRow[]> {
  const { rows } = await pool.query<AlertDbRow>(
    `select alert_id, outcome_type, period, threshold, basis, usage_minor, limit_minor, crossed_at, delivered_at, attempts, last_error
       from alerts where tenant_id = $1 and ($2::text is null or period = $2) order by period, outcome_type, threshold`,
    [args.tenant, args.period ?? null],
  );
  return rows.map((r) => ({
    alertId: r.alert_id,
    outcomeType: r.outcome_type,
    period: r.period,
    threshold: Number(r.threshold),
    basis: r.basis,
    usageMinor: Number(r.usage_minor),
    limitMinor: Number(r.limit_minor),
    crossedAt: r.crossed_at.toISOString(),
    deliveredAt: r.delivered_at?.toISOString() ?? null,
    attempts: r.attempts,
    lastError: r.last_error,
  }));
}

const WebhookAnswer = z.object({ status: z.number().int() });

/**
 * POSTs undelivered alerts to the tenant's webhook. A failure is recorded and retried (by the
 * activity's retries within a run, and by every later run), so an alert is never lost.
 */
export async function deliverAlerts(
  pool: Pool,
  args: { tenant: string; webhook: string | undefined; timeoutMs?: number },
): Promise<{ delivered: number; failed: number }> {
  if (!args.webhook) return { delivered: 0, failed: 0 };
  const { rows } = await pool.query<Omit<AlertDbRow, 'delivered_at' | 'attempts' | 'last_error'>>(
    `select alert_id, outcome_type, period, threshold, basis, usage_minor, limit_minor, crossed_at from alerts
      where tenant_id = $1 and delivered_at is null order by alert_id limit 100`,
    [args.tenant],
  );
  let delivered = 0;
  let failed = 0;
  for (const a of rows) {
    const body = {
      tenant: args.tenant,
      alertId: a.alert_id,
      outcomeType: a.outcome_type,
      period: a.period,
      threshold: Number(a.threshold),
      basis: a.basis,
      usageMinor: Number(a.usage_minor),
      limitMinor: Number(a.limit_minor),
      crossedAt: a.crossed_at.toISOString(),
    };
    try {
      const res = await fetch(args.webhook, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `recon-alert-${a.alert_id}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(args.timeoutMs ?? 10_000),
      });
      const { status } = WebhookAnswer.parse({ status: res.status });
      if (status < 200 || status >= 300) throw new Error(`webhook answered ${status}`);
      await pool.query(
        'update alerts set delivered_at = now(), attempts = attempts + 1, last_error = null where alert_id = $1',
        [a.alert_id],
      );
      delivered++;
    } catch (err) {
      await pool.query('update alerts set attempts = attempts + 1, last_error = $2 where alert_id = $1', [
        a.alert_id,
        (err as Error).message.slice(0, 500),
      ]);
      failed++;
    }
  }
  return { delivered, failed };
}
