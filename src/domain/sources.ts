import { z } from 'zod';
import { isValidTimeZone } from './durations';

/**
 * Where evidence and claims come from, as a contract writes them. Record sources are files (the
 * original kind, written without `kind`), Zendesk or HubSpot; claim sources an HTTP feed or the
 * AI side's own PostgreSQL. An API source maps its objects through a preset, so a Zendesk ticket
 * needs no field mapping; `fields` adds or overrides. Presets are filled in when the contract is
 * parsed, and filling them again changes nothing, so a stored contract reads back as it was
 * applied. Secrets are named by environment variable, never written.
 */

const EnvName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]{0,127}$/, 'expected the name of an environment variable, such as ZENDESK_API_TOKEN');
const TimeZone = z.string().refine(isValidTimeZone, 'expected an IANA time zone such as Europe/Berlin');
const HttpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'expected an http(s) URL')
  .transform((u) => u.replace(/\/+$/, ''));
const FieldName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/);

export const FieldSchema = z.strictObject({
  /** The CSV column, JSON key, or for API sources the dotted path into the object (`properties.amount`). */
  column: z.string().min(1),
  type: z.enum(['string', 'number', 'timestamp', 'boolean']).default('string'),
});
export type FieldDef = z.infer<typeof FieldSchema>;
const Fields = z.record(FieldName, FieldSchema);

const FileRecordSource = z.strictObject({
  kind: z.literal('file').optional(),
  format: z.enum(['csv', 'jsonl']),
  /** Timestamps without an offset are read in this zone (default: the tenant's). */
  timezone: TimeZone.optional(),
  idField: z.string().min(1),
  /** The record's own update time; without it a version takes effect at import time. */
  updatedAtField: z.string().min(1).optional(),
  fields: Fields,
});

/**
 * A Zendesk ticket from the Incremental Ticket Export with `include=metric_sets`: the ticket's
 * own keys, and its metric set's under `metric_set.` (solved_at and reopens live there).
 */
export const ZENDESK_TICKET_PRESET: Record<string, FieldDef> = {
  ticket_id: { column: 'id', type: 'string' },
  status: { column: 'status', type: 'string' },
  solved_at: { column: 'metric_set.solved_at', type: 'timestamp' },
  updated_at: { column: 'updated_at', type: 'timestamp' },
  reopens: { column: 'metric_set.reopens', type: 'number' },
};

/** The keys a preset fills in; a contract may repeat them as filled, nothing else. */
const Filled = {
  format: z.literal('jsonl').optional(),
  idField: z.string().optional(),
  updatedAtField: z.string().optional(),
};

const ZendeskAuth = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('api_token'), emailEnv: EnvName, tokenEnv: EnvName }),
  z.strictObject({ kind: z.literal('oauth'), tokenEnv: EnvName }),
]);

const ZendeskRecordSource = z
  .strictObject({
    kind: z.literal('zendesk'),
    /** https://<subdomain>.zendesk.com, or a proxy or emulator. */
    apiBase: HttpUrl,
    auth: ZendeskAuth,
    /** Where the first pull starts (the export's start_time); later pulls follow the saved cursor. */
    startTime: z.iso.datetime({ offset: true }),
    /** Tickets per page (the API's per_page, at most 1000). */
    pageSize: z.number().int().min(1).max(1000).default(1000),
    timezone: TimeZone.optional(),
    fields: Fields.default({}),
    ...Filled,
  })
  .transform((s) => ({
    ...s,
    format: 'jsonl' as const,
    idField: 'ticket_id',
    updatedAtField: 'updated_at',
    fields: { ...ZENDESK_TICKET_PRESET, ...s.fields },
  }));

/** HubSpot contacts or deals: `id`, and the requested properties under `properties.`. */
export function hubspotPreset(objectType: 'contacts' | 'deals', successStage: string): Record<string, FieldDef> {
  const entered = { column: `properties.hs_v2_date_entered_${successStage}`, type: 'timestamp' as const };
  return objectType === 'deals'
    ? {
        deal_id: { column: 'id', type: 'string' },
        stage: { column: 'properties.dealstage', type: 'string' },
        pipeline: { column: 'properties.pipeline', type: 'string' },
        amount: { column: 'properties.amount', type: 'number' },
        updated_at: { column: 'properties.hs_lastmodifieddate', type: 'timestamp' },
        stage_entered_at: entered,
      }
    : {
        contact_id: { column: 'id', type: 'string' },
        email: { column: 'properties.email', type: 'string' },
        lifecycle_stage: { column: 'properties.lifecyclestage', type: 'string' },
        updated_at: { column: 'properties.lastmodifieddate', type: 'timestamp' },
        stage_entered_at: entered,
      };
}

const HubspotRecordSource = z
  .strictObject({
    kind: z.literal('hubspot'),
    objectType: z.enum(['contacts', 'deals']),
    /** The lifecycle stage (contacts) or deal stage id (deals) that is success; its entered-date is the success time. */
    successStage: z.string().regex(/^[A-Za-z0-9_]{1,100}$/, 'expected a HubSpot stage id such as closedwon'),
    tokenEnv: EnvName,
    apiBase: HttpUrl.default('https://api.hubapi.com'),
    startTime: z.iso.datetime({ offset: true }),
    /** Objects per search page (HubSpot's limit is 200). */
    pageSize: z.number().int().min(1).max(200).default(200),
    timezone: TimeZone.optional(),
    fields: Fields.default({}),
    ...Filled,
  })
  .transform((s) => ({
    ...s,
    format: 'jsonl' as const,
    idField: s.objectType === 'deals' ? 'deal_id' : 'contact_id',
    updatedAtField: 'updated_at',
    fields: { ...hubspotPreset(s.objectType, s.successStage), ...s.fields },
  }));

export const RecordSourceSchema = z.discriminatedUnion('kind', [
  FileRecordSource,
  ZendeskRecordSource,
  HubspotRecordSource,
]);
export type RecordSourceConfig = z.infer<typeof RecordSourceSchema>;
export type ZendeskSourceConfig = z.infer<typeof ZendeskRecordSource>;
export type HubspotSourceConfig = z.infer<typeof HubspotRecordSource>;

/** Record sources the night pulls itself (files are imported by `recon records import`). */
export type PulledRecordSource = ZendeskSourceConfig | HubspotSourceConfig;
export function isPulledRecordSource(s: RecordSourceConfig): s is PulledRecordSource {
  return s.kind === 'zendesk' || s.kind === 'hubspot';
}

export const HttpClaimSourceSchema = z.strictObject({
  kind: z.literal('http'),
  url: z.string().url(),
  pageSize: z.number().int().min(1).max(10_000).default(500),
  /** Pages taken per activity call before the workflow checks in again. */
  pagesPerChunk: z.number().int().min(1).max(1000).default(20),
});

const SqlName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'expected a plain SQL name (letters, digits and _)');

/**
 * The AI side's own PostgreSQL: a table or view with the claim columns (claim_id, outcome_type,
 * subject_ref, occurred_at, and optionally attributes, retracted, retracted_at), read by keyset on
 * (update time, id) in a read-only transaction.
 */
export const PostgresClaimSourceSchema = z.strictObject({
  kind: z.literal('postgres'),
  /** The connection URL's environment variable (it holds a password). */
  urlEnv: EnvName,
  schema: SqlName.default('public'),
  relation: SqlName,
  updatedAtColumn: SqlName.default('updated_at'),
  idColumn: SqlName.default('claim_id'),
  pageSize: z.number().int().min(1).max(10_000).default(1000),
  pagesPerChunk: z.number().int().min(1).max(1000).default(20),
});

export const ClaimSourceSchema = z.discriminatedUnion('kind', [HttpClaimSourceSchema, PostgresClaimSourceSchema]);
export type ClaimSourceConfig = z.infer<typeof ClaimSourceSchema>;
export type PostgresClaimSourceConfig = z.infer<typeof PostgresClaimSourceSchema>;
