import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { ReconActivities } from '../activities';
import {
  NoteArgsSchema,
  OpenDisputeArgsSchema,
  ResolveArgsSchema,
  disputeStateQuery,
  firstIssue,
  noteDisputeUpdate,
  openDisputeUpdate,
  resolveDisputeUpdate,
  type DisputeView,
} from './dispute-messages';

const acts = proxyActivities<ReconActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10 },
});

export interface DisputeInput {
  tenant: string;
  outcomeId: number;
  /** Set only by continue-as-new. */
  carried?: DisputeView & { handled: number };
}

/** An update carries so many events; well before Temporal's per-run limits we start afresh. */
const UPDATES_PER_RUN = 500;
/** An open that never arrives (the client gave up before a worker took it) ends the workflow. */
const OPEN_WAIT = '10 minutes';

const nowIso = () => new Date(Date.now()).toISOString();

/**
 * An update refused by its validator, with a catalogue code the client turns into the CLI's
 * `recon: <code>: <message>` line: the same codes the activities refuse with.
 */
function rejected(
  code: 'bad_input' | 'already_resolved' | 'dispute_not_open' | 'dispute_closed',
  message: string,
): never {
  throw ApplicationFailure.create({ type: code, message, nonRetryable: true });
}

/** The activity's own failure (a refusal with a stable code) reaches the client as the update's error. */
function refusal(err: unknown): never {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure)
    throw ApplicationFailure.create({ type: cause.type ?? 'refused', message: cause.message, nonRetryable: true });
  throw err;
}

/**
 * One dispute on one outcome: opened, annotated and resolved by support through updates, with an
 * SLA escalation and an automatic resolution by the contract's default when nobody acts.
 */
export async function disputeWorkflow(input: DisputeInput): Promise<DisputeView> {
  const view: DisputeView = input.carried ?? {
    tenant: input.tenant,
    outcomeId: input.outcomeId,
    disputeId: null,
    status: 'opening',
    defaultDecision: null,
    slaAt: null,
    autoResolveAt: null,
    escalated: false,
    notes: 0,
    resolution: null,
  };
  let handled = input.carried?.handled ?? 0;
  let resolving = false;
  const resolved = () => view.resolution !== null;

  setHandler(disputeStateQuery, () => view);

  setHandler(
    openDisputeUpdate,
    async (raw) => {
      handled++;
      const args = OpenDisputeArgsSchema.parse(raw);
      try {
        const r = await acts.openDisputeRecord({
          tenant: input.tenant,
          outcomeId: input.outcomeId,
          workflowId: workflowInfo().workflowId,
          actor: args.actor,
          reason: args.reason,
          channel: args.channel,
          requestId: args.requestId,
          at: nowIso(),
        });
        if (view.disputeId === null) {
          view.disputeId = r.disputeId;
          view.status = 'open';
          view.slaAt = r.slaAt;
          view.autoResolveAt = r.autoResolveAt;
          view.defaultDecision = r.defaultDecision;
        }
        return { ...view, attached: r.attached };
      } catch (err) {
        if (view.disputeId === null) view.status = 'refused';
        return refusal(err);
      }
    },
    {
      validator: (raw) => {
        const r = OpenDisputeArgsSchema.safeParse(raw);
        if (!r.success) rejected('bad_input', firstIssue(r.error));
        if (resolved())
          rejected(
            'already_resolved',
            `dispute ${view.disputeId} on this outcome was just resolved; open a new one in a moment`,
          );
      },
    },
  );

  setHandler(
    noteDisputeUpdate,
    async (raw) => {
      handled++;
      const args = NoteArgsSchema.parse(raw);
      await acts
        .noteDisputeRecord({
          disputeId: view.disputeId!,
          actor: args.actor,
          text: args.text,
          requestId: args.requestId,
          at: nowIso(),
        })
        .catch(refusal);
      view.notes++;
      return view;
    },
    {
      validator: (raw) => {
        const r = NoteArgsSchema.safeParse(raw);
        if (!r.success) rejected('bad_input', firstIssue(r.error));
        if (view.disputeId === null) rejected('dispute_not_open', 'the dispute is not open yet; try again in a moment');
        if (resolved()) rejected('dispute_closed', `dispute ${view.disputeId} is resolved; notes are closed`);
      },
    },
  );

  const resolve = async (args: {
    decision: 'uphold' | 'reject';
    actor: string;
    note: string;
    requestId: string;
    auto: boolean;
  }) => {
    // Set before the first await: a second resolution arriving in the same task sees it.
    resolving = true;
    try {
      const r = await acts.resolveDisputeRecord({
        disputeId: view.disputeId!,
        decision: args.decision,
        actor: args.actor,
        note: args.note,
        requestId: args.requestId,
        at: nowIso(),
        auto: args.auto,
      });
      view.resolution = {
        decision: r.decision,
        by: r.resolvedBy,
        at: r.resolvedAt,
        effect: r.effect,
        creditEntryId: r.creditEntryId,
        auto: args.auto,
      };
      view.status = r.decision === 'uphold' ? 'upheld' : 'rejected';
    } finally {
      resolving = false;
    }
  };

  setHandler(
    resolveDisputeUpdate,
    async (raw) => {
      handled++;
      const args = ResolveArgsSchema.parse(raw);
      if (resolved() || resolving)
        throw ApplicationFailure.create({
          type: 'already_resolved',
          message: alreadyResolved(view),
          nonRetryable: true,
        });
      await resolve({ ...args, auto: false }).catch(refusal);
      return view;
    },
    {
      validator: (raw) => {
        const r = ResolveArgsSchema.safeParse(raw);
        if (!r.success) rejected('bad_input', firstIssue(r.error));
        if (view.disputeId === null) rejected('dispute_not_open', 'the dispute is not open yet; try again in a moment');
        if (resolved() || resolving) rejected('already_resolved', alreadyResolved(view));
      },
    },
  );

  if (view.disputeId === null) {
    const opened = await condition(() => view.disputeId !== null || view.status === 'refused', OPEN_WAIT);
    if (!opened || view.disputeId === null) {
      await condition(allHandlersFinished);
      return view;
    }
  }

  const rollOver = () => workflowInfo().continueAsNewSuggested || handled >= UPDATES_PER_RUN;
  while (!resolved()) {
    if (rollOver() && !resolving) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof disputeWorkflow>({
        tenant: input.tenant,
        outcomeId: input.outcomeId,
        carried: { ...view, handled: 0 },
      });
    }
    const due = view.escalated ? view.autoResolveAt! : view.slaAt!;
    const wait = Date.parse(due) - Date.now();
    if (wait > 0 && (await condition(() => resolved() || rollOver(), wait))) continue;
    if (resolved() || resolving) {
      await condition(() => !resolving);
      continue;
    }
    if (!view.escalated) {
      await acts.escalateDisputeRecord({ disputeId: view.disputeId, at: nowIso() });
      view.escalated = true;
    } else {
      await resolve({
        decision: view.defaultDecision ?? 'uphold',
        actor: 'system:auto-resolution',
        note: `unresolved at the deadline ${view.autoResolveAt}; contract default applies`,
        requestId: 'auto-resolution',
        auto: true,
      }).catch((err) => {
        // A person resolved it while the default was being applied: theirs stands.
        if (!(err instanceof ActivityFailure)) throw err;
      });
    }
  }
  await condition(allHandlersFinished);
  return view;
}

function alreadyResolved(view: DisputeView): string {
  const r = view.resolution;
  return r
    ? `dispute ${view.disputeId} was already resolved: ${r.decision === 'uphold' ? 'upheld' : 'rejected'} by ${r.by} at ${r.at}`
    : `dispute ${view.disputeId} is being resolved right now`;
}
