import { describe, expect, it } from 'vitest';
import { Registry } from '../../src/observability/metrics';
import { activityIds, countRunSummary, reconMetrics, reconRegistry } from '../../src/observability/recon-metrics';
import { jsonLogLine } from '../../src/observability/log';
import type { RunSummary } from '../../src/reconcile/runs';

describe('the metrics registry', () => {
  it('writes counters in text format 0.0.4, escaping label values and help', () => {
    const r = new Registry();
    const c = r.counter('x_total', 'Things.\nWith a \\ backslash.', ['kind']);
    c.inc({ kind: 'a "quoted"\nvalue\\' }, 2);
    c.inc({ kind: 'plain' });
    c.inc({ kind: 'plain' }, 0.5);
    expect(r.expose()).toBe(
      [
        '# HELP x_total Things.\\nWith a \\\\ backslash.',
        '# TYPE x_total counter',
        'x_total{kind="a \\"quoted\\"\\nvalue\\\\"} 2',
        'x_total{kind="plain"} 1.5',
        '',
      ].join('\n'),
    );
  });

  it('writes labels in declared order whatever order they are given in', () => {
    const r = new Registry();
    r.counter('y_total', 'y', ['b', 'a']).inc({ a: '1', b: '2' });
    expect(r.expose()).toContain('y_total{b="2",a="1"} 1');
  });

  it('refuses a wrong label set, a negative increment and a duplicate name', () => {
    const r = new Registry();
    const c = r.counter('z_total', 'z', ['kind']);
    expect(() => c.inc({})).toThrow(/labels must be exactly kind/);
    expect(() => c.inc({ kind: 'a', tenant: 't' })).toThrow(/labels must be exactly kind/);
    expect(() => c.inc({ kind: 'a' }, -1)).toThrow(/only goes up/);
    expect(() => r.counter('z_total', 'again')).toThrow(/registered twice/);
    expect(() => r.counter('bad-name', 'x')).toThrow(/invalid metric name/);
  });

  it('writes histograms with cumulative buckets, +Inf, sum and count', () => {
    const r = new Registry();
    const h = r.histogram('d_seconds', 'durations', ['activity'], [1, 0.1, 5]);
    for (const v of [0.05, 0.1, 0.7, 3, 12]) h.observe({ activity: 'post' }, v);
    expect(r.expose()).toBe(
      [
        '# HELP d_seconds durations',
        '# TYPE d_seconds histogram',
        'd_seconds_bucket{activity="post",le="0.1"} 2',
        'd_seconds_bucket{activity="post",le="1"} 3',
        'd_seconds_bucket{activity="post",le="5"} 4',
        'd_seconds_bucket{activity="post",le="+Inf"} 5',
        'd_seconds_sum{activity="post"} 15.85',
        'd_seconds_count{activity="post"} 5',
        '',
      ].join('\n'),
    );
  });

  it('declares no tenant label on any product metric', () => {
    expect(reconRegistry.expose()).not.toMatch(/tenant/);
    for (const m of Object.values(reconMetrics)) expect(m.labelNames).not.toContain('tenant');
  });
});

describe('counting a run summary', () => {
  const group = (o: Partial<RunSummary['ledger']['byPeriod'][number]>) => ({
    period: '2026-03',
    currency: 'EUR',
    corrects: [],
    lines: 4,
    amountMinor: 250,
    amount: '2.50',
    charges: { count: 2, amountMinor: 198, included: 0, capped: 0 },
    baseFees: { count: 1, amountMinor: 100, included: 0 },
    trueUps: { count: 0, amountMinor: 0 },
    credits: { count: 1, amountMinor: -48 },
    newLines: 4,
    newAmountMinor: 250,
    ...o,
  });

  it('counts ledger lines by kind when the execution wrote them all, unattributed when only some', () => {
    const before = (kind: string) => reconMetrics.ledgerLines.get({ kind, currency: 'EUR' });
    const [charges, credits, unattributed] = [before('charge'), before('credit'), before('unattributed')];
    const creditAmount = reconMetrics.ledgerAmount.get({ kind: 'credit', currency: 'EUR' });
    const summary = {
      claims: { received: 5, accepted: 3, redelivered: 1, quarantined: 1, duplicates: 0, retracted: 0 },
      records: { received: 2, accepted: 2, redelivered: 0, quarantined: 0 },
      outcomes: { transitions: { confirmed: 2 } },
      ledger: {
        byPeriod: [group({}), group({ period: '2026-02', newLines: 1, newAmountMinor: 99 }), group({ newLines: 0 })],
      },
    } as unknown as RunSummary;
    countRunSummary(summary);
    expect(before('charge') - charges).toBe(2);
    expect(before('credit') - credits).toBe(1);
    expect(reconMetrics.ledgerAmount.get({ kind: 'credit', currency: 'EUR' }) - creditAmount).toBe(48);
    expect(before('unattributed') - unattributed).toBe(1);
  });

  it('finds the tenant in the input, or in a run workflow id', () => {
    expect(activityIds({ tenant: 'acme', runId: 7 })).toEqual({ tenant: 'acme', runId: 7 });
    expect(activityIds(undefined, 'reconcile-acme-eu-2026-03-06T07:00:00.000Z')).toEqual({ tenant: 'acme-eu' });
    expect(activityIds({}, 'dispute-x')).toEqual({});
  });
});

describe('JSON log lines', () => {
  it('puts time, level and message first and keeps attributes from overwriting them', () => {
    const line = jsonLogLine(
      'INFO',
      'run completed',
      { tenant: 'acme', runId: 3, level: 'x', n: 10n, err: new Error('boom') },
      new Date('2026-03-06T07:00:00Z'),
    );
    expect(line.endsWith('\n')).toBe(true);
    const o = JSON.parse(line) as Record<string, unknown>;
    expect(Object.keys(o).slice(0, 3)).toEqual(['time', 'level', 'message']);
    expect(o).toMatchObject({
      time: '2026-03-06T07:00:00.000Z',
      level: 'INFO',
      message: 'run completed',
      tenant: 'acme',
      runId: 3,
      n: '10',
    });
    expect(o.err).toMatchObject({ name: 'Error', message: 'boom' });
  });
});
