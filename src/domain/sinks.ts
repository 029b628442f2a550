import { z } from 'zod';

/**
 * Billing sinks as a contract writes them: where the ledger's lines are posted after each night.
 * A secret is named, never written: the contract holds the name of the environment variable the
 * worker reads it from, so no key enters the database, a Temporal payload or a log line.
 */

const EnvName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]{0,127}$/, 'expected the name of an environment variable, such as STRIPE_API_KEY');
const ApiBase = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'expected an http(s) URL such as https://api.stripe.com')
  .transform((u) => u.replace(/\/+$/, ''));
const OutcomeTypeList = z.array(z.string().min(1)).min(1);

const StripeCommon = {
  kind: z.literal('stripe'),
  /** The Stripe customer (cus_…) the tenant is billed as. */
  customer: z.string().regex(/^cus_[A-Za-z0-9]+$/, 'expected a Stripe customer id such as cus_NffrFeUfNV2Hib'),
  apiKeyEnv: EnvName,
  apiBase: ApiBase.default('https://api.stripe.com'),
  /** Only these outcome types go to this sink (default: every type). */
  outcomeTypes: OutcomeTypeList.optional(),
  /** Calls in flight at once to this sink. */
  concurrency: z.number().int().min(1).max(16).default(4),
};

const StripeMeterSink = z.strictObject({
  ...StripeCommon,
  /** Stripe prices the usage: one meter event per run, type and tier carries the count. */
  mode: z.literal('meter_events'),
  /** The meter's event_name. */
  eventName: z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'expected a Stripe meter event name'),
  /** Base fees and true-ups are not usage: invoice items (default), or left to Stripe's own price. */
  periodLines: z.enum(['invoice_items', 'skip']).default('invoice_items'),
});

const StripeInvoiceItemSink = z.strictObject({
  ...StripeCommon,
  /** We price: each batch of ledger lines becomes an invoice item on the customer's next invoice. */
  mode: z.literal('invoice_items'),
});

const MetronomeSink = z
  .strictObject({
    kind: z.literal('metronome'),
    /** Metronome's customer id, or one of the customer's ingest aliases: give exactly one. */
    customerId: z.string().min(1).max(128).optional(),
    ingestAlias: z.string().min(1).max(128).optional(),
    eventType: z.string().min(1).max(128),
    tokenEnv: EnvName,
    apiBase: ApiBase.default('https://api.metronome.com'),
    outcomeTypes: OutcomeTypeList.optional(),
    concurrency: z.number().int().min(1).max(16).default(4),
  })
  .refine((m) => (m.customerId === undefined) !== (m.ingestAlias === undefined), {
    message: 'give exactly one of customerId or ingestAlias',
    path: ['customerId'],
  });

const WebhookSink = z.strictObject({
  kind: z.literal('webhook'),
  url: z
    .string()
    .url()
    .refine((u) => /^https?:\/\//.test(u), 'expected an http(s) URL'),
  /** A Standard Webhooks secret (whsec_ followed by base64). */
  secretEnv: EnvName,
  outcomeTypes: OutcomeTypeList.optional(),
  /** How long the receiver keeps webhook ids to drop repeats; past it a resend needs a person. */
  dedupWindowHours: z
    .number()
    .int()
    .min(1)
    .max(24 * 90)
    .default(24),
  concurrency: z.number().int().min(1).max(16).default(4),
});

export const SinkSchema = z.discriminatedUnion('kind', [
  z.discriminatedUnion('mode', [StripeMeterSink, StripeInvoiceItemSink]),
  MetronomeSink,
  WebhookSink,
]);
export type SinkConfig = z.infer<typeof SinkSchema>;
export type StripeSinkConfig = z.infer<typeof StripeMeterSink> | z.infer<typeof StripeInvoiceItemSink>;
export type MetronomeSinkConfig = z.infer<typeof MetronomeSink>;
export type WebhookSinkConfig = z.infer<typeof WebhookSink>;

/** The environment variable that holds a sink's secret. */
export function sinkSecretEnv(s: SinkConfig): string {
  return s.kind === 'stripe' ? s.apiKeyEnv : s.kind === 'metronome' ? s.tokenEnv : s.secretEnv;
}
