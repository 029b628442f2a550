import type { Client } from '@temporalio/client';
import type { Pool } from '../db/pool';
import type { OutcomeRow } from '../db/rows';
import { chargeKeySql } from '../ledger';
import { openDisputeViaTemporal, resolveDisputeViaTemporal } from '../temporal/dispute-client';
import { disputeWorkflowId } from '../../workflows/dispute-messages';

/**
 * Support works three disputes during the demo: one upheld while in grace, one rejected (its
 * hold holds billing back, then it bills the next night), one on a billed ticket, credited.
 */
export class DisputeStory {
  inGraceUpheld?: { subject: string; outcomeId: number };
  rejected?: { subject: string; outcomeId: number };
  billedUpheld?: { subject: string; outcomeId: number };

  constructor(
    private readonly pool: Pool,
    private readonly client: Client,
    private readonly tenant: string,
    private readonly taskQueue: string,
  ) {}

  private async pick(state: string, skip: number): Promise<{ subject: string; outcomeId: number }> {
    // For a billed one, a charge that cost something (not one of the included outcomes).
    const { rows } = await this.pool.query<Pick<OutcomeRow, 'outcome_id' | 'subject_ref'>>(
      `select o.outcome_id, o.subject_ref from outcomes o where o.tenant_id = $1 and o.state = $2 and o.claim_count = 1
          and ($2 <> 'billed' or exists (select 1 from ledger_entries l where l.idempotency_key = ${chargeKeySql('o.outcome_id')} and l.amount_minor > 0))
        order by o.outcome_id offset $3 limit 1`,
      [this.tenant, state, skip],
    );
    return { subject: rows[0].subject_ref, outcomeId: rows[0].outcome_id };
  }

  private open(o: { subject: string; outcomeId: number }, actor: string, reason: string) {
    return openDisputeViaTemporal(this.client, {
      tenant: this.tenant,
      outcomeId: o.outcomeId,
      actor,
      reason,
      taskQueue: this.taskQueue,
    });
  }

  private resolve(o: { outcomeId: number }, decision: 'uphold' | 'reject', actor: string, note: string) {
    return resolveDisputeViaTemporal(this.client, {
      workflowId: disputeWorkflowId(this.tenant, o.outcomeId),
      decision,
      actor,
      note,
      taskQueue: this.taskQueue,
    });
  }

  /** After the second night: two outcomes in grace are disputed; one is upheld at once. */
  async openInGrace(): Promise<string[]> {
    this.inGraceUpheld = await this.pick('in_grace', 0);
    this.rejected = await this.pick('in_grace', 1);
    const a = await this.open(
      this.inGraceUpheld,
      'sam@support',
      'customer: the ticket was closed by the bot but the issue is not fixed',
    );
    const b = await this.open(this.rejected, 'sam@support', 'customer: we did not get an answer on this one');
    const r = await this.resolve(
      this.inGraceUpheld,
      'uphold',
      'lee@support',
      'customer re-opened the conversation in chat; not a resolution',
    );
    return [
      `dispute ${a.disputeId} opened on ${this.inGraceUpheld.subject} (in grace) → on hold; upheld by lee@support → ${r.resolution?.effect}`,
      `dispute ${b.disputeId} opened on ${this.rejected.subject} (in grace) → on hold while support checks`,
    ];
  }

  /** Later: the second dispute is rejected; the next night bills it. */
  async rejectSecond(): Promise<string> {
    const r = await this.resolve(
      this.rejected!,
      'reject',
      'lee@support',
      'the transcript shows the answer was accepted by the customer',
    );
    return `dispute on ${this.rejected!.subject} rejected by lee@support → ${r.resolution?.effect}`;
  }

  /** After billing: a billed outcome is disputed within the window and credited. */
  async creditBilled(): Promise<string> {
    this.billedUpheld = await this.pick('billed', 3);
    const d = await this.open(
      this.billedUpheld,
      'kim@customer',
      'customer audit: this ticket was solved by a human agent',
    );
    const r = await this.resolve(
      this.billedUpheld,
      'uphold',
      'lee@support',
      'agent log confirms a human solved it; credit',
    );
    return `dispute ${d.disputeId} on billed ${this.billedUpheld.subject} upheld → credit entry ${r.resolution?.creditEntryId}`;
  }
}
