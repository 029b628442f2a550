/**
 * What the delivery engine (src/sinks/deliver.ts) and a billing sink's adapter (stripe.ts,
 * metronome.ts, webhook.ts) say to each other. The engine owns the database: it groups ledger
 * lines into batches, leases them, records every attempt and its result. An adapter owns the wire:
 * it turns a batch into the sink's request, sends it, and says what the answer means. Adapters
 * never touch the database, and never put a secret into an error, a payload or a log line.
 */
import type { LedgerKind } from '../ledger/rows';

/** One sink call's worth of ledger lines of the same kind, run, outcome type, tier, price and currency. */
export interface SinkBatch {
  batchId: number;
  tenant: string;
  /** The sink's name in the contract. */
  sink: string;
  /**
   * The idempotency value sent with the batch (Stripe `identifier` and `Idempotency-Key`, Metronome
   * `transaction_id`, the webhook id). Derived from the ledger: the tenant, the kind and the first and
   * last ledger entry ids the batch carries, so a resend of the same lines is recognisable. At most 80
   * characters of [A-Za-z0-9_-].
   */
  key: string;
  kind: LedgerKind;
  runId: number | null;
  /** Null on true-ups. */
  outcomeType: string | null;
  /** The period the lines are booked in (YYYY-MM). */
  period: string;
  currency: string;
  /** The unit price as the ledger writes it (a decimal string in major units). */
  unitPrice: string;
  tier: number | null;
  /** How many ledger lines the batch carries: the usage quantity for charges and credits. */
  lineCount: number;
  /** Sum of the lines' amounts in minor units; negative for credits. */
  amountMinor: number;
  /** The business time of the lines: the run's asOf, or a support credit's time. */
  eventAt: Date;
  firstEntryId: number;
  lastEntryId: number;
  /** For credits: the charge batches on the same sink whose lines this batch reverses. */
  reverses: ReversedBatch[];
}

export interface ReversedBatch {
  key: string;
  /** Lines of that charge batch, and how many of them credits (this one included) have reversed. */
  lineCount: number;
  creditedCount: number;
  deliveredAt: Date | null;
  /** What the charge batch's call was (see Planned.action), so a credit can undo it in kind. */
  action: string | null;
}

/** A batch turned into the sink's request, fixed at its first attempt: every resend sends the same. */
export interface Planned {
  /** e.g. 'meter_event', 'meter_event_cancel', 'invoice_item', 'ingest', 'webhook'. */
  action: string;
  /** The request as the sink receives it, without credentials. Stored in sink_batches.payload (jsonb). */
  payload: Record<string, unknown>;
}

/** A batch the sink would refuse, caught before sending (Stripe: a timestamp outside its window). */
export interface Refusal {
  refuse: string;
}

export type SendResult =
  /** Accepted now, or recognised as a duplicate of an earlier accepted send. `ref`: the sink's id. */
  | { status: 'delivered'; ref?: string; duplicate?: boolean }
  /** 429, 5xx, a timeout or a dropped connection: send again later (the idempotency value makes that safe). */
  | { status: 'retry'; error: string; retryAfterMs?: number }
  /** 401 or 403: the credentials are wrong; nothing of this sink can go until someone fixes them. */
  | { status: 'auth'; error: string }
  /** Any other 4xx: the sink will never take this request as it is. */
  | { status: 'refused'; error: string };

export interface SinkContext {
  /** The decision time (the engine's clock); adapters never read the wall clock themselves. */
  now: Date;
  /** The secret named in the contract, read from the environment by the engine. */
  secret: string;
  /** Per-request timeout. */
  timeoutMs: number;
}

/** What the sink holds of one batch key, as its read API reports it (for verify and reconcile). */
export interface Holding {
  key: string;
  /** Usage quantity the sink holds for the key (meter events, Metronome events), when it says. */
  quantity?: number;
  /** Amount in minor units the sink holds for the key (invoice items), when it says. */
  amountMinor?: number;
  /** The sink's own id of the object. */
  ref?: string;
}

export interface SinkAdapter<C> {
  kind: 'stripe' | 'metronome' | 'webhook';
  /** How long the sink remembers an idempotency value; past it a resend could count twice. */
  dedupWindowMs(config: C): number;
  /** Most lines one batch may carry (webhooks list every line; counts need no limit). */
  maxLinesPerBatch(config: C): number;
  /** Largest absolute amount one batch may carry (Stripe invoice items), or null. */
  maxAmountPerBatch(config: C): number | null;
  /** How many batches go in one call (Metronome: up to 100 events). */
  batchesPerCall(config: C): number;
  /** Whether this sink takes lines of this kind at all (meter events take charges and credits). */
  takes(config: C, kind: LedgerKind): boolean;
  /** Pure: the request for a batch, or why the sink would refuse it. */
  plan(batch: SinkBatch, config: C, ctx: Pick<SinkContext, 'now'>): Planned | Refusal;
  /** Sends up to batchesPerCall planned batches; one result per batch, in order. Never throws. */
  send(batches: Array<{ batch: SinkBatch; planned: Planned }>, config: C, ctx: SinkContext): Promise<SendResult[]>;
  /**
   * Looks batches up through the sink's read API, for sends older than the dedup window: a key in
   * the map is held by the sink. Absent when the sink has no read API that can tell (the engine
   * then sets such a batch aside as needs_attention). Throws a ReconError when the read fails.
   */
  /**
   * Whether verify() can see a batch sent as `planned` (Stripe can read invoice items back, not
   * meter events): a key absent from verify's answer means "not held" only for these. Absent: all.
   */
  verifiable?(planned: Planned): boolean;
  verify?(
    batches: Array<{ batch: SinkBatch; planned: Planned }>,
    config: C,
    ctx: SinkContext,
  ): Promise<Map<string, Holding>>;
  /**
   * Everything the sink holds that we sent for this tenant in [from, to) of business time, for
   * `recon sink reconcile`. Absent when the sink has no read API (webhooks).
   */
  holdings?(
    scope: { tenant: string; from: Date; to: Date; keys: string[] },
    config: C,
    ctx: SinkContext,
  ): Promise<Holding[]>;
}
