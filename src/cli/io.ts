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

export function emit(opts: GlobalOpts, value: unknown, human: () => string): void {
  if (opts.json) process.stdout.write(JSON.stringify(value, null, 2) + '\n');
  else process.stdout.write(human() + '\n');
}
