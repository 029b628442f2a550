import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyContract } from '../../src/db/contracts';
import { ContractSchema } from '../../src/domain/contract';
import { importClaimsFile } from '../../src/ingest/files';
import { writeExport } from '../../src/export/export';
import { closePeriod } from '../../src/reconcile/period-close';
import { buildStatement } from '../../src/reconcile/statement';
import { runReconciliation } from '../../src/temporal/run-client';
import {
  loadExampleContract,
  startHarness,
  uniqueTenant,
  writeLines,
  type Harness,
  seedSolvedTickets,
} from './harness';

async function exportTotal(h: Harness, tenant: string, period: string): Promise<{ total: number; csv: string }> {
  const chunks: Buffer[] = [];
  const t = await writeExport(h.pool, {
    tenant,
    period,
    format: 'csv',
    out: new Writable({
      write(c, _e, cb) {
        chunks.push(Buffer.from(c));
        cb();
      },
    }),
  });
  return { total: t.amountMinor ?? Number.NaN, csv: Buffer.concat(chunks).toString() };
}

describe('hybrid pricing on real Temporal and Postgres', () => {
  let h: Harness;
  let webhook: http.Server;
  const received: Array<{ threshold: number; alertId: number }> = [];
  const tenant = uniqueTenant('price');
  const night = (asOf: string) => runReconciliation(h.client, { tenant, asOf: new Date(asOf), taskQueue: h.taskQueue });
  const lines = async () =>
    (
      await h.pool.query(
        `select subject_ref, kind, pricing_basis, tier, unit_price, amount_minor, period, corrects_period from ledger_entries where tenant_id = $1 order by entry_id`,
        [tenant],
      )
    ).rows;

  beforeAll(async () => {
    h = await startHarness();
    webhook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => webhook.listen(0, '127.0.0.1', r));
    const base = await loadExampleContract(tenant);
    const { unitPrice: _flat, ...terms } = base.outcomeTypes.resolved_ticket;
    await applyContract(
      h.pool,
      ContractSchema.parse({
        ...base,
        alertWebhook: `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/alerts`,
        outcomeTypes: {
          resolved_ticket: {
            ...terms,
            pricing: {
              baseFee: '10.00',
              included: 2,
              tiers: [{ upTo: 2, unitPrice: '1.00' }, { unitPrice: '0.50' }],
              cap: { amount: '2.50' },
              alerts: [0.5, 0.8, 1],
            },
          },
        },
      }),
    );
    // Solved on four days of September; grace PT72H.
    await seedSolvedTickets(h, tenant, 'seed1', [
      ['P-1', '2026-09-01T10:00:00Z'],
      ['P-2', '2026-09-01T11:00:00Z'],
      ['P-3', '2026-09-02T10:00:00Z'],
      ['P-4', '2026-09-02T11:00:00Z'],
    ]);
    await seedSolvedTickets(h, tenant, 'seed2', [
      ['P-5', '2026-09-03T10:00:00Z'],
      ['P-6', '2026-09-03T11:00:00Z'],
      ['P-7', '2026-09-04T10:00:00Z'],
      ['P-8', '2026-09-04T11:00:00Z'],
    ]);
  });
  afterAll(async () => {
    await h?.stop();
    webhook?.close();
  });

  it('crosses included, two tiers and the cap across nights, with exactly the expected lines', async () => {
    await night('2026-09-05T12:00:00Z'); // P-1..P-4: base fee, 2 included, 2 at tier 1
    await night('2026-09-06T12:00:00Z'); // P-5, P-6: tier 2 up to the cap, then capped
    const third = await night('2026-09-07T12:00:00Z'); // P-7, P-8: capped
    expect(third.ledger.newCharges).toBe(2);
    expect((await lines()).map((l) => [l.subject_ref, l.kind, l.pricing_basis, l.tier, l.amount_minor])).toEqual([
      [null, 'base_fee', 'base_fee', null, 1000],
      ['P-1', 'charge', 'included', null, 0],
      ['P-2', 'charge', 'included', null, 0],
      ['P-3', 'charge', 'tier', 1, 100],
      ['P-4', 'charge', 'tier', 1, 100],
      ['P-5', 'charge', 'tier', 2, 50],
      ['P-6', 'charge', 'capped', null, 0],
      ['P-7', 'charge', 'capped', null, 0],
      ['P-8', 'charge', 'capped', null, 0],
    ]);
  });

  it('fires each alert once and delivers it to the webhook', async () => {
    const { rows } = await h.pool.query(
      `select threshold::float as t, delivered_at is not null as delivered from alerts where tenant_id = $1 order by threshold`,
      [tenant],
    );
    expect(rows).toEqual([
      { t: 0.5, delivered: true },
      { t: 0.8, delivered: true },
      { t: 1, delivered: true },
    ]);
    expect(received.map((r) => r.threshold).sort()).toEqual([0.5, 0.8, 1]);
    await night('2026-09-07T12:00:00Z');
    expect(received).toHaveLength(3);
  });

  it('statement total equals the export total and the ledger sum', async () => {
    const s = await buildStatement(h.pool, { tenant, period: '2026-09', now: new Date('2026-09-07T12:00:00Z') });
    expect(s.baseFees).toEqual([{ outcomeType: 'resolved_ticket', amountMinor: 1000, currency: 'USD' }]);
    expect(s.types[0]).toMatchObject({ includedUsed: 2, included: 2, capped: 3, usageMinor: 250 });
    expect(s.types[0].tiers).toEqual([
      { tier: 1, unitPrice: '1', outcomes: 2, subtotalMinor: 200 },
      { tier: 2, unitPrice: '0.5', outcomes: 1, subtotalMinor: 50 },
    ]);
    expect(s.types[0].forecast).not.toBeNull();
    const { total, csv } = await exportTotal(h, tenant, '2026-09');
    const {
      rows: [ledger],
    } = await h.pool.query(
      `select sum(amount_minor)::int as sum from ledger_entries where tenant_id = $1 and period = '2026-09'`,
      [tenant],
    );
    expect(s.totalMinor).toBe(1250);
    expect(total).toBe(1250);
    expect(ledger.sum).toBe(1250);
    expect(csv.split('\r\n')[0]).toContain(',pricing_basis,tier,corrects_period');
  });

  it('a closed period receives nothing new: a late credit lands in the next open period and names the one it corrects', async () => {
    const c1 = await closePeriod(h.pool, { tenant, period: '2026-09', actor: 'fin@vendor' });
    const c2 = await closePeriod(h.pool, { tenant, period: '2026-09', actor: 'someone-else' });
    expect(c2).toMatchObject({ alreadyClosed: true, closedBy: 'fin@vendor', closedAt: c1.closedAt });
    await importClaimsFile(h.pool, {
      tenant,
      file: await writeLines(h.dir, 'late-retraction.jsonl', [
        JSON.stringify({ claim_id: 'P-3-c', retracted: true, retracted_at: '2026-09-20T00:00:00Z' }),
      ]),
    });
    await night('2026-09-25T12:00:00Z');
    const credit = (await lines()).find((l) => l.kind === 'credit');
    expect(credit).toMatchObject({
      subject_ref: 'P-3',
      amount_minor: -100,
      period: '2026-10',
      corrects_period: '2026-09',
    });
    expect((await buildStatement(h.pool, { tenant, period: '2026-09' })).totalMinor).toBe(1250);
  });
});

describe('effective-dated prices and currencies', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.stop());

  it('a mid-period price change prices each outcome by the version in effect at its success time', async () => {
    const tenant = uniqueTenant('midprice');
    const base = await loadExampleContract(tenant);
    await applyContract(h.pool, base);
    await applyContract(
      h.pool,
      ContractSchema.parse({
        ...base,
        effectiveFrom: '2026-09-15T00:00:00Z',
        outcomeTypes: { resolved_ticket: { ...base.outcomeTypes.resolved_ticket, unitPrice: '1.25' } },
      }),
    );
    await seedSolvedTickets(h, tenant, 'seed3', [
      ['M-1', '2026-09-14T23:00:00Z'],
      ['M-2', '2026-09-15T01:00:00Z'],
    ]);
    await runReconciliation(h.client, { tenant, asOf: new Date('2026-09-20T12:00:00Z'), taskQueue: h.taskQueue });
    const { rows } = await h.pool.query(
      `select subject_ref, unit_price, amount_minor, contract_version from ledger_entries where tenant_id = $1 order by subject_ref`,
      [tenant],
    );
    expect(rows).toEqual([
      { subject_ref: 'M-1', unit_price: '0.99', amount_minor: 99, contract_version: 1 },
      { subject_ref: 'M-2', unit_price: '1.25', amount_minor: 125, contract_version: 2 },
    ]);
  });

  it('a JPY tenant is billed in whole yen', async () => {
    const tenant = uniqueTenant('yen');
    const base = await loadExampleContract(tenant);
    await applyContract(
      h.pool,
      ContractSchema.parse({
        ...base,
        timezone: 'Asia/Tokyo',
        currency: 'JPY',
        outcomeTypes: { resolved_ticket: { ...base.outcomeTypes.resolved_ticket, unitPrice: '120.5' } },
      }),
    );
    await seedSolvedTickets(h, tenant, 'seed4', [['Y-1', '2026-09-01T10:00:00Z']]);
    const s = await runReconciliation(h.client, {
      tenant,
      asOf: new Date('2026-09-30T16:00:00Z'),
      taskQueue: h.taskQueue,
    });
    // 2026-09-30T16:00Z is already October 1st in Tokyo.
    expect(s.period).toBe('2026-10');
    const { rows } = await h.pool.query(
      `select amount_minor, currency, period from ledger_entries where tenant_id = $1`,
      [tenant],
    );
    expect(rows).toEqual([{ amount_minor: 121, currency: 'JPY', period: '2026-10' }]);
    expect((await exportTotal(h, tenant, '2026-10')).csv).toContain(',121,121,JPY,');
  });
});

describe('price index and commitment', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.stop());

  it('scales tier prices by the index multiplier in effect at each success time, rounded once per line', async () => {
    const tenant = uniqueTenant('index');
    const base = await loadExampleContract(tenant);
    const { unitPrice: _flat, ...terms } = base.outcomeTypes.resolved_ticket;
    await applyContract(
      h.pool,
      ContractSchema.parse({
        ...base,
        outcomeTypes: {
          resolved_ticket: { ...terms, pricing: { tiers: [{ unitPrice: '0.99' }], indexSeries: 'gpu-cost' } },
        },
      }),
    );
    const { upsertIndexPoints } = await import('../../src/reconcile/price-index');
    await upsertIndexPoints(h.pool, tenant, [
      { series: 'gpu-cost', effectiveFrom: new Date('2026-09-01T00:00:00Z'), multiplier: '1.10' },
      { series: 'gpu-cost', effectiveFrom: new Date('2026-09-10T00:00:00Z'), multiplier: '0.90' },
    ]);
    await seedSolvedTickets(h, tenant, 'seed5', [
      ['I-1', '2026-08-30T10:00:00Z'],
      ['I-2', '2026-09-05T10:00:00Z'],
      ['I-3', '2026-09-12T10:00:00Z'],
    ]);
    await runReconciliation(h.client, { tenant, asOf: new Date('2026-09-20T12:00:00Z'), taskQueue: h.taskQueue });
    const { rows } = await h.pool.query(
      `select subject_ref, unit_price, amount_minor from ledger_entries where tenant_id = $1 order by subject_ref`,
      [tenant],
    );
    expect(rows).toEqual([
      { subject_ref: 'I-1', unit_price: '0.99', amount_minor: 99 },
      { subject_ref: 'I-2', unit_price: '1.089', amount_minor: 109 },
      { subject_ref: 'I-3', unit_price: '0.891', amount_minor: 89 },
    ]);
  });

  it('draws a commitment down and posts the true-up once after the term ends', async () => {
    const tenant = uniqueTenant('commit');
    const base = await loadExampleContract(tenant);
    await applyContract(
      h.pool,
      ContractSchema.parse({
        ...base,
        commitment: { amount: '5.00', termStart: '2026-09-01T04:00:00Z', termEnd: '2026-09-15T04:00:00Z' },
      }),
    );
    await seedSolvedTickets(h, tenant, 'seed6', [
      ['C-1', '2026-09-02T10:00:00Z'],
      ['C-2', '2026-09-03T10:00:00Z'],
    ]);
    await runReconciliation(h.client, { tenant, asOf: new Date('2026-09-10T12:00:00Z'), taskQueue: h.taskQueue });
    const mid = await buildStatement(h.pool, { tenant, period: '2026-09', now: new Date('2026-09-10T12:00:00Z') });
    expect(mid.commitment).toMatchObject({ amountMinor: 500, drawnMinor: 198, balanceMinor: 302 });
    await runReconciliation(h.client, { tenant, asOf: new Date('2026-09-16T12:00:00Z'), taskQueue: h.taskQueue });
    await runReconciliation(h.client, { tenant, asOf: new Date('2026-09-17T12:00:00Z'), taskQueue: h.taskQueue });
    const { rows } = await h.pool.query(
      `select kind, amount_minor, period from ledger_entries where tenant_id = $1 and kind = 'true_up'`,
      [tenant],
    );
    expect(rows).toEqual([{ kind: 'true_up', amount_minor: 302, period: '2026-09' }]);
    const s = await buildStatement(h.pool, { tenant, period: '2026-09' });
    expect(s.trueUps).toHaveLength(1);
    expect(s.totalMinor).toBe(500);
  });
});
