import { z } from 'zod';
import { ReconError } from '../domain/errors';
import { formatZodIssues } from '../domain/contract';

export interface GlobalOpts {
  json?: boolean;
}

/** Validates a command's options at the edge; the message names the option. */
export function parseOptions<T extends z.ZodTypeAny>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw new ReconError('bad_input', formatZodIssues(r.error).replace(/^(\w+):/, '--$1:'));
  return r.data;
}

export const TenantOpt = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'expected a tenant id such as acme');
export const InstantOpt = z
  .string()
  // An offset is required: a bare local time would mean different instants on different machines.
  .refine((s) => !Number.isNaN(Date.parse(s)) && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(s), 'expected an ISO 8601 time with an offset, such as 2026-03-01T07:00:00Z')
  .transform((s) => new Date(s));

// Values whose keys are someone else's names, not ours: a customer's columns (record `data`, claim
// `attributes`), a contract body (whose schema is camelCase and must round-trip into `contract
// apply`), raw event details. Their keys are printed as stored.
const DATA_KEYS = new Set(['data', 'attributes', 'body', 'contract', 'details']);
const keptAsIs = new WeakSet<object>();

/** Marks a value whose keys `emit` prints unchanged (a document with its own schema, such as a contract). */
export function verbatim<T extends object>(value: T): T {
  keptAsIs.add(value);
  return value;
}

/**
 * The one naming style of every --json output and of the JSONL export: snake_case keys. Only
 * lowerCamel keys are ours to rename; keys that are data stay as they are: state and outcome type
 * names (already snake_case), currency codes (EUR), and everything under DATA_KEYS.
 */
export function snakeCaseKeys(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  const v = value as { toJSON?: () => unknown };
  if (typeof v.toJSON === 'function') return v.toJSON();
  if (keptAsIs.has(value)) return value;
  if (Array.isArray(value)) return value.map(snakeCaseKeys);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(value)) {
    const key = /^[a-z][a-zA-Z0-9]*$/.test(k) ? k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : k;
    out[key] = DATA_KEYS.has(k) ? x : snakeCaseKeys(x);
  }
  return out;
}

export function emit(opts: GlobalOpts, value: unknown, human: () => string): void {
  if (opts.json) process.stdout.write(JSON.stringify(snakeCaseKeys(value), null, 2) + '\n');
  else process.stdout.write(human() + '\n');
}
