import { Context } from '@temporalio/activity';
import type { Pool } from '../src/db/pool';
import { deliverTenant, type AdapterFor, type DeliveryPass } from '../src/sinks/deliver';
import { reconcileSinks, type SinkReconcileReport } from '../src/sinks/reconcile';

export interface SinkActivityDeps {
  pool: Pool;
  adapterFor: AdapterFor;
  /** Sink secrets are read from here (the worker's environment), never from a payload. */
  env?: Record<string, string | undefined>;
  /** Per-call time budget of a delivery pass before it hands back to the workflow. */
  budgetMs?: number;
}

/** Delivery to billing sinks: one pass per call, heartbeating, never failing for a sink's fault. */
export function createSinkActivities(deps: SinkActivityDeps, permanentAware: <T>(fn: () => Promise<T>) => Promise<T>) {
  return {
    async deliverToSinks(input: { tenant: string; only?: string[] }): Promise<DeliveryPass> {
      return permanentAware(() =>
        deliverTenant(
          {
            pool: deps.pool,
            adapterFor: deps.adapterFor,
            env: deps.env ?? process.env,
            now: () => new Date(),
            heartbeat: () => Context.current().heartbeat(),
          },
          { tenant: input.tenant, budgetMs: deps.budgetMs ?? 60_000, only: input.only },
        ),
      );
    },

    /** `recon sink reconcile`: read here, where the sink secrets are, never in the CLI. */
    async reconcileSink(input: { tenant: string; period: string; sink?: string }): Promise<SinkReconcileReport> {
      return permanentAware(() =>
        reconcileSinks(
          { pool: deps.pool, adapterFor: deps.adapterFor, env: deps.env ?? process.env, now: () => new Date() },
          { tenant: input.tenant, period: input.period, only: input.sink },
        ),
      );
    },
  };
}
