import type { DisputeEffect } from '../domain/disputes';
import type { OutcomeState } from '../domain/lifecycle';

/**
 * Rows of the tables around the ledger as the driver returns them (bigint as number, see pool.ts;
 * timestamptz as Date). A query that reads some columns types its rows as `Pick<Row, ...>`, so a
 * renamed or retyped column is found by the compiler in every reader. The ledger's own row is
 * `LedgerLine` in src/ledger/rows.ts.
 */

export interface OutcomeRow {
  outcome_id: number;
  tenant_id: string;
  outcome_type: string;
  subject_key: string;
  subject_ref: string;
  state: OutcomeState;
  reject_reason: 'no_evidence' | 'not_achieved' | 'retracted' | 'dispute_upheld' | null;
  on_hold: boolean;
  primary_claim_id: string | null;
  claim_count: number;
  match_status: 'matched' | 'none' | 'ambiguous' | null;
  record_id: number | null;
  evidence_version_id: number | null;
  created_run_id: number | null;
  success_at: Date | null;
  grace_ends_at: Date | null;
  evidence_due_at: Date | null;
  last_reopened_at: Date | null;
  confirmed_as_of: Date | null;
  evaluated_as_of: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface OutcomeEventRow {
  event_id: number;
  outcome_id: number;
  run_id: number | null;
  actor: string | null;
  as_of: Date | null;
  kind: string;
  from_state: string | null;
  to_state: string | null;
  reason: string | null;
  details: Record<string, unknown>;
  created_at: Date;
}

export type DisputeStatus = 'open' | 'upheld' | 'rejected';

export interface DisputeRow {
  dispute_id: number;
  tenant_id: string;
  outcome_id: number;
  workflow_id: string;
  status: DisputeStatus;
  reason: string;
  channel: 'support' | 'customer_import';
  opened_by: string;
  opened_at: Date;
  outcome_state_at_open: OutcomeState;
  sla_at: Date;
  auto_resolve_at: Date;
  escalated_at: Date | null;
  resolved_at: Date | null;
  resolved_by: string | null;
  resolution_note: string | null;
  auto_resolved: boolean;
  effect: DisputeEffect | null;
}

export interface DisputeEventRow {
  event_id: number;
  dispute_id: number;
  kind: 'opened' | 'attached' | 'note' | 'escalated' | 'resolved';
  actor: string;
  note: string | null;
  at: Date;
  request_id: string;
}

export interface RunRow {
  run_id: number;
  tenant_id: string;
  as_of: Date;
  workflow_id: string;
  status: 'running' | 'completed' | 'failed';
  attempts: number;
  started_at: Date;
  /** When the current attempt took the run's lease (migration 011); null before its first. */
  attempt_started_at: Date | null;
  finished_at: Date | null;
  summary: unknown;
  failure_code: string | null;
  failure_message: string | null;
}
