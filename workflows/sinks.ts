import { condition, continueAsNew, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { ReconActivities } from '../activities';
import { sinkLoopQuery, wakeSignal, type DeliverSinksInput, type SinkLoopView } from './sink-messages';

const { deliverToSinks } = proxyActivities<ReconActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

const SHORTEST_WAIT_MS = 5_000;
const LONGEST_WAIT_MS = 60 * 60_000;
const PASSES_PER_EXECUTION = 200;

/**
 * A tenant's delivery loop: a pass, then a durable wait until the earliest batch is due again (a
 * sink's Retry-After or backoff, which the pass wrote down), until nothing is owed. The night
 * starts it when it leaves work behind; `recon sink retry` wakes it. A sink down for days is
 * tried hourly for as long as it takes: the ledger never forgets a debt.
 */
export async function deliverSinks(input: DeliverSinksInput): Promise<SinkLoopView> {
  const view: SinkLoopView = {
    tenant: input.tenant,
    passes: input.passes ?? 0,
    pending: 0,
    sleepingUntil: null,
    heldUp: [],
  };
  let woken = false;
  setHandler(wakeSignal, () => {
    woken = true;
  });
  setHandler(sinkLoopQuery, () => view);
  for (let n = 0; ; n++) {
    if (n >= PASSES_PER_EXECUTION || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof deliverSinks>({ tenant: input.tenant, passes: view.passes });
    }
    woken = false;
    const pass = await deliverToSinks({ tenant: input.tenant });
    view.passes++;
    view.pending = pass.pending;
    view.heldUp = pass.sinks.filter((s) => s.heldUp).map((s) => `${s.sink}: ${s.heldUp}`);
    if (pass.pending === 0) return view;
    if (!pass.done) continue;
    const dueIn = pass.nextDueAt ? Date.parse(pass.nextDueAt) - Date.now() : LONGEST_WAIT_MS;
    const waitMs = Math.min(LONGEST_WAIT_MS, Math.max(SHORTEST_WAIT_MS, dueIn));
    view.sleepingUntil = new Date(Date.now() + waitMs).toISOString();
    await condition(() => woken, waitMs);
    view.sleepingUntil = null;
  }
}
