import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SinkSchema, type MetronomeSinkConfig } from '../../src/domain/sinks';
import { MetronomeErrorSchema, MetronomeSearchResponseSchema, metronomeAdapter } from '../../src/sinks/metronome';
import type { Planned, Refusal } from '../../src/sinks/types';
import { creditBatch, sinkBatch } from '../support/sink-batches';

const config = SinkSchema.parse({
  kind: 'metronome',
  ingestAlias: 'acme-prod',
  eventType: 'billable_outcome',
  tokenEnv: 'METRONOME_TOKEN',
}) as MetronomeSinkConfig;
const NOW = new Date('2026-11-20T02:00:00Z');

function planned(p: Planned | Refusal): Planned {
  if ('refuse' in p) throw new Error(`refused: ${p.refuse}`);
  return p;
}

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../fixtures/sinks/${name}`, import.meta.url), 'utf8'));

describe('the Metronome adapter plans', () => {
  it('one usage event per batch, keyed by the batch key', () => {
    const p = planned(metronomeAdapter.plan(sinkBatch(), config, { now: NOW }));
    expect(p.action).toBe('ingest');
    expect(p.payload).toEqual({
      transaction_id: 'acme-charge-1001-1012',
      customer_id: 'acme-prod',
      event_type: 'billable_outcome',
      timestamp: '2026-11-20T00:00:00.000Z',
      properties: {
        kind: 'charge',
        outcome_type: 'resolved_ticket',
        quantity: '12',
        amount_minor: '1188',
        currency: 'EUR',
        unit_price: '0.99',
        tier: '1',
        period: '2026-11',
        run_id: '7',
        first_entry_id: '1001',
        last_entry_id: '1012',
      },
    });
  });

  it('a credit as a negative event with its own transaction id', () => {
    const p = planned(metronomeAdapter.plan(creditBatch(), config, { now: NOW }));
    expect(p.payload.transaction_id).toBe('acme-credit-1020-1021');
    expect(p.payload.properties).toMatchObject({ kind: 'credit', quantity: '-2', amount_minor: '-198' });
  });

  it('leaves out what a line does not have (a true-up has no outcome type, tier or run)', () => {
    const p = planned(
      metronomeAdapter.plan(
        sinkBatch({ kind: 'true_up', outcomeType: null, tier: null, runId: null, lineCount: 1, amountMinor: 50000 }),
        config,
        { now: NOW },
      ),
    );
    const props = p.payload.properties as Record<string, string>;
    expect(Object.keys(props)).not.toContain('outcome_type');
    expect(Object.keys(props)).not.toContain('tier');
    expect(Object.keys(props)).not.toContain('run_id');
    expect(props).toMatchObject({ kind: 'true_up', quantity: '1', amount_minor: '50000' });
  });

  it('names the customer by id when the contract gives an id', () => {
    const byId = SinkSchema.parse({
      kind: 'metronome',
      customerId: 'd7abd0cd-4ae9-4db7-8676-e986a4ebd8dc',
      eventType: 'billable_outcome',
      tokenEnv: 'METRONOME_TOKEN',
    }) as MetronomeSinkConfig;
    expect(planned(metronomeAdapter.plan(sinkBatch(), byId, { now: NOW })).payload.customer_id).toBe(
      'd7abd0cd-4ae9-4db7-8676-e986a4ebd8dc',
    );
  });

  it('refuses, before sending, a timestamp more than 24 hours ahead (Metronome rejects those)', () => {
    const ahead = (ms: number) =>
      metronomeAdapter.plan(sinkBatch({ eventAt: new Date(NOW.getTime() + ms) }), config, { now: NOW });
    expect('refuse' in ahead(24 * 3600_000)).toBe(false);
    expect('refuse' in ahead(24 * 3600_000 + 1)).toBe(true);
  });

  it('states Metronome limits: 100 events a call, 34 days of dedup, any kind of line', () => {
    expect(metronomeAdapter.batchesPerCall(config)).toBe(100);
    expect(metronomeAdapter.dedupWindowMs(config)).toBe(34 * 24 * 3600_000);
    expect(metronomeAdapter.maxAmountPerBatch(config)).toBeNull();
    for (const kind of ['charge', 'credit', 'base_fee', 'true_up'] as const)
      expect(metronomeAdapter.takes(config, kind)).toBe(true);
    // No blind verify: the search API cannot see past the dedup window (see src/sinks/metronome.ts).
    expect('verify' in metronomeAdapter).toBe(false);
    expect(typeof metronomeAdapter['holdings']).toBe('function');
  });

  it('reads the recorded Metronome answers', () => {
    const events = MetronomeSearchResponseSchema.parse(fixture('metronome-search-200.json'));
    expect(events[0]).toMatchObject({ transaction_id: '2021-01-01T00:00:00Z_cluster42', is_duplicate: false });
    expect(MetronomeErrorSchema.parse(fixture('metronome-error-400.json')).message).toMatch(/\S/);
    expect(MetronomeErrorSchema.parse(fixture('metronome-error-401.json')).message).toMatch(/\S/);
  });
});
