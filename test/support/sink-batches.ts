import type { SinkBatch } from '../../src/sinks/types';

/** A charge batch as the delivery engine hands it to an adapter; override what a test is about. */
export function sinkBatch(over: Partial<SinkBatch> = {}): SinkBatch {
  return {
    batchId: 1,
    tenant: 'acme',
    sink: 'billing',
    key: 'acme-charge-1001-1012',
    kind: 'charge',
    runId: 7,
    outcomeType: 'resolved_ticket',
    period: '2026-11',
    currency: 'EUR',
    unitPrice: '0.99',
    tier: 1,
    lineCount: 12,
    amountMinor: 1188,
    eventAt: new Date('2026-11-20T00:00:00Z'),
    firstEntryId: 1001,
    lastEntryId: 1012,
    reverses: [],
    ...over,
  };
}

/** A credit reversing two lines of the charge batch above. */
export function creditBatch(over: Partial<SinkBatch> = {}): SinkBatch {
  return sinkBatch({
    batchId: 2,
    key: 'acme-credit-1020-1021',
    kind: 'credit',
    lineCount: 2,
    amountMinor: -198,
    firstEntryId: 1020,
    lastEntryId: 1021,
    reverses: [
      {
        key: 'acme-charge-1001-1012',
        lineCount: 12,
        creditedCount: 2,
        deliveredAt: new Date('2026-11-20T01:00:00Z'),
        action: 'ingest',
      },
    ],
    ...over,
  });
}
