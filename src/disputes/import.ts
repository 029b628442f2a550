import path from 'node:path';
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import type { Pool } from '../db/pool';
import { ReconError } from '../domain/errors';
import { fileSha256 } from '../ingest/files';
import { insertQuarantine, withImport, type ImportSummary, type Quarantined } from '../ingest/staging';
import { findOutcomeId } from '../reconcile/explain';
import { readRows } from '../sources/rows';
import { openDisputeViaTemporal } from '../temporal/dispute-client';

const DisputeRowSchema = z.object({
  subject: z.string().trim().min(1, 'required'),
  reason: z.string().trim().min(1, 'required'),
  actor: z.string().trim().min(1, 'required'),
  outcome_type: z
    .string()
    .trim()
    .optional()
    .transform((v) => (v ? v : undefined)),
});

/**
 * Customer-side disputes in bulk: each row opens a dispute or attaches to the one already open;
 * rows that cannot be taken (unknown subject, window closed, bad fields) are quarantined.
 */
export async function importDisputesFile(
  pool: Pool,
  client: Client,
  args: { tenant: string; file: string; taskQueue: string },
): Promise<ImportSummary> {
  const sha = await fileSha256(args.file);
  const origin = path.basename(args.file);
  const target = { tenant: args.tenant, kind: 'disputes' as const, source: 'customer', origin, contentSha256: sha };
  return withImport(pool, target, async (db, importId) => {
    const counts = { received: 0, accepted: 0, redelivered: 0, quarantined: 0 };
    const bad: Quarantined[] = [];
    for await (const r of readRows(args.file, 'csv', { requiredColumns: ['subject', 'reason', 'actor'] })) {
      counts.received++;
      const pos = { line: r.position.line, row: r.position.row, raw: r.raw };
      if (!r.ok) {
        bad.push({ ...pos, code: r.code, reason: r.reason });
        continue;
      }
      try {
        const parsed = DisputeRowSchema.safeParse(r.values);
        if (!parsed.success) {
          const i = parsed.error.issues[0];
          throw new ReconError('invalid_field', `field ${i.path.join('.')}: ${i.message}`);
        }
        const row = parsed.data;
        const outcomeId = await findOutcomeId(pool, {
          tenant: args.tenant,
          subject: row.subject,
          type: row.outcome_type,
        });
        const view = await openDisputeViaTemporal(client, {
          tenant: args.tenant,
          outcomeId,
          actor: row.actor,
          reason: row.reason,
          channel: 'customer_import',
          taskQueue: args.taskQueue,
        });
        if (view.attached) counts.redelivered++;
        else counts.accepted++;
      } catch (err) {
        if (err instanceof ReconError && err.code === 'no_worker') throw err;
        bad.push({
          ...pos,
          code: err instanceof ReconError ? err.code : 'refused',
          reason: (err as Error).message.split('\n')[0],
        });
      }
    }
    await insertQuarantine(db, importId, args.tenant, 'customer', origin, bad);
    counts.quarantined = bad.length;
    return counts;
  });
}
