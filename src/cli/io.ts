import type { WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { z } from 'zod';
import { ReconError } from '../domain/errors';
import { formatZodIssues } from '../domain/contract';
import { parseCustomerTimestamp } from '../domain/timestamps';

export interface GlobalOpts {
  json?: boolean;
}

/** Validates a command's options at the edge; the message names the option. */
export function parseOptions<T extends z.ZodTypeAny>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) {
    // Issues name the option as the person typed it: asOf is --as-of.
    throw new ReconError(
      'bad_input',
      formatZodIssues(r.error).replace(
        /^(\w+):/,
        (_m, name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}:`,
      ),
    );
  }
  return r.data;
}

export const TenantOpt = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'expected a tenant id such as acme');
const INSTANT_EXAMPLE = 'expected an ISO 8601 time with an offset, such as 2026-03-01T07:00:00Z';

/**
 * A time given on the command line: read by the same strict parser as a customer's file, so
 * 2026-02-30 is refused here as it is there (Date.parse would roll it over to March 2). An offset
 * is required: a bare local time would mean different instants on different machines.
 */
export const InstantOpt = z.string().transform((s, ctx) => {
  const text = s.trim();
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text)) {
    ctx.addIssue({ code: 'custom', message: INSTANT_EXAMPLE });
    return z.NEVER;
  }
  try {
    return parseCustomerTimestamp(text, 'UTC');
  } catch (err) {
    const e = err as ReconError;
    ctx.addIssue({
      code: 'custom',
      message: e.code === 'bad_timestamp' ? `no such date or time "${text}"; ${INSTANT_EXAMPLE}` : e.message,
    });
    return z.NEVER;
  }
});

/**
 * A file to write, opened before anything is written: a directory, a missing folder or a
 * read-only path is an error the command reports (is_a_directory, file_not_found,
 * permission_denied), not an 'error' event nobody listens to that ends the process with a trace.
 */
export async function openOutputFile(file: string): Promise<WriteStream> {
  return (await open(file, 'w')).createWriteStream();
}

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
