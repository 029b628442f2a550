import { inTransaction, type Pool } from '../db/pool';
import { ReconError, oneLine } from '../domain/errors';
import type { BatchRow } from './batches';

/**
 * `recon sink retry`: a person puts batches back in line, or settles them by hand. A refused batch
 * may simply go again (it never landed). A batch set aside as needs_attention may already be at the
 * sink, so it moves only on a person's word that they looked: `resend` (it is not there: a new first
 * send, with a fresh dedup window) or `mark_delivered` (it is there: with a note saying how they know).
 */

export type RetryMode = 'retry' | 'resend' | 'mark_delivered';

export type RetryAction =
  /** failed → pending, due now. */
  | 'requeue'
  /** needs_attention → pending, due now, first_attempt_at cleared: a new first send. */
  | 'resend'
  /** failed or needs_attention → delivered, by a person's word. */
  | 'mark_delivered'
  /** pending and waiting out a backoff: due now. */
  | 'pull_forward'
  /** needs_attention under a plain retry: only a person who checked the sink can move it. */
  | 'leave';

type State = BatchRow['state'];

/**
 * What a retry does to one batch. `named`: the person gave its id (--batch), so a batch the mode
 * cannot move is an error to tell them about, not one to pass over in silence.
 */
export function retryActionFor(
  b: { batchId: number; state: State; key: string },
  mode: RetryMode,
  named: boolean,
): RetryAction | null {
  if (b.state === 'delivered' || b.state === 'skipped') {
    if (named)
      throw new ReconError(
        'batch_not_retryable',
        `batch ${b.batchId} (${b.key}) is ${b.state}; there is nothing to retry`,
      );
    return null;
  }
  if (b.state === 'pending') {
    if (mode === 'mark_delivered')
      throw new ReconError(
        'batch_not_retryable',
        `batch ${b.batchId} (${b.key}) is pending: the delivery loop is still trying it; mark it delivered only once it has failed or been set aside`,
      );
    return 'pull_forward';
  }
  if (mode === 'mark_delivered') return 'mark_delivered';
  if (b.state === 'failed') return 'requeue';
  // needs_attention
  if (mode === 'resend') return 'resend';
  if (named)
    throw new ReconError(
      'needs_person',
      `batch ${b.batchId} needs attention: it may already be at the sink; look for key ${b.key} there, then run again with --resend (it is not there) or --mark-delivered --note TEXT (it is)`,
    );
  return 'leave';
}

export interface RetriedBatch {
  batchId: number;
  sink: string;
  key: string;
  was: State;
  action: RetryAction;
}

export interface RetryResult {
  tenant: string;
  mode: RetryMode;
  batches: RetriedBatch[];
}

/**
 * Applies a retry in one transaction: the batches are locked, decided and updated together, so a
 * delivery pass sees either none of it or all of it. A batch leased by a pass in flight is left to
 * that pass (it will record its answer); pulling it forward would only race it.
 */
export async function retryBatches(
  pool: Pool,
  p: {
    tenant: string;
    sink?: string;
    batchIds?: number[];
    mode: RetryMode;
    actor: string;
    note?: string;
    now: Date;
  },
): Promise<RetryResult> {
  const named = (p.batchIds?.length ?? 0) > 0;
  if (p.mode === 'mark_delivered' && !named)
    throw new ReconError(
      'bad_input',
      '--mark-delivered settles only the batches you checked at the sink: name them with --batch ID',
    );
  if (p.mode === 'mark_delivered' && !p.note?.trim())
    throw new ReconError('bad_input', '--mark-delivered needs --note TEXT saying how you know the sink holds it');
  return inTransaction(pool, async (db) => {
    const { rows } = await db.query<{ batch_id: number; sink: string; batch_key: string; state: State }>(
      `select batch_id, sink, batch_key, state from sink_batches
        where tenant_id = $1 and ($2::text is null or sink = $2)
          and (case when $3::bigint[] is null then state in ('pending', 'failed', 'needs_attention')
                    else batch_id = any ($3) end)
        order by batch_id
          for update`,
      [p.tenant, p.sink ?? null, named ? p.batchIds : null],
    );
    if (named) {
      const found = new Set(rows.map((r) => r.batch_id));
      const missing = p.batchIds!.filter((id) => !found.has(id));
      if (missing.length)
        throw new ReconError(
          'batch_not_found',
          `tenant ${p.tenant}${p.sink ? `, sink ${p.sink}` : ''} has no batch ${missing.join(', ')}; see \`recon sink status --tenant ${p.tenant}\``,
        );
    }
    const decided: RetriedBatch[] = [];
    for (const r of rows) {
      const action = retryActionFor({ batchId: r.batch_id, state: r.state, key: r.batch_key }, p.mode, named);
      if (action) decided.push({ batchId: r.batch_id, sink: r.sink, key: r.batch_key, was: r.state, action });
    }
    const at = p.now.toISOString();
    const why = p.note?.trim() ? `: ${oneLine(p.note)}` : '';
    const ids = (a: RetryAction) => decided.filter((d) => d.action === a).map((d) => d.batchId);
    await db.query(
      `update sink_batches
          set state = 'pending', next_attempt_at = $2, leased_until = null,
              resolution = concat_ws('; ', resolution, $3::text)
        where batch_id = any ($1)`,
      [ids('requeue'), p.now, `retried by ${p.actor} at ${at}${why}`],
    );
    await db.query(
      `update sink_batches
          set state = 'pending', next_attempt_at = $2, leased_until = null, first_attempt_at = null,
              resolution = concat_ws('; ', resolution, $3::text)
        where batch_id = any ($1)`,
      [ids('resend'), p.now, `resent by ${p.actor} at ${at} after checking the sink does not hold it${why}`],
    );
    await db.query(
      `update sink_batches
          set state = 'delivered', delivered_at = $2, leased_until = null,
              resolution = concat_ws('; ', resolution, $3::text)
        where batch_id = any ($1)`,
      [ids('mark_delivered'), p.now, `marked delivered by ${p.actor} at ${at}${why}`],
    );
    await db.query(
      `update sink_batches set next_attempt_at = $2
        where batch_id = any ($1) and next_attempt_at > $2 and (leased_until is null or leased_until < $2)`,
      [ids('pull_forward'), p.now],
    );
    return { tenant: p.tenant, mode: p.mode, batches: decided };
  });
}
