// Messages and shapes shared by the workflows and the client. Deterministic: no Node imports.
import { defineQuery } from '@temporalio/workflow';

export type RunPhase = 'start' | 'pull' | 'attach' | 'evaluate' | 'post' | 'report' | 'done';

export interface ResumeState {
  phase: RunPhase;
  runId: number;
  cursor: number;
  chunksDone: number;
  /** Charges this execution posted (a rerun of a finished asOf posts none). */
  posted?: { count: number; amountMinor: number };
  sources?: Array<{ name: string; kind?: 'http' | 'postgres'; url: string; pageSize: number; pagesPerChunk: number }>;
  /** Record sources pulled from their APIs (Zendesk, HubSpot), and the index of the one being pulled. */
  recordSources?: string[];
  recordCursor?: number;
  /** Set for a small night (settleSmallNight): whether it has sinks to deliver to and an alert webhook. */
  small?: { sinks: boolean; alertWebhook: boolean };
}

export interface ReconcileInput {
  tenant: string;
  /** ISO instant. Absent for scheduled runs: the schedule's nominal time is the business time. */
  asOf?: string;
  /** Set only by continue-as-new. */
  resume?: ResumeState;
}

export interface RunProgress {
  tenant: string;
  asOf: string;
  phase: RunPhase;
  runId: number;
  chunksDone: number;
  outcomesEvaluated: number;
  chargesPosted: number;
  claimPagesPulled: number;
  recordPagesPulled?: number;
}

/**
 * The night's activities in the order reconcileTenant runs them (failRun only on failure;
 * pullRecords only for a contract with a record source pulled from an API). A small night (see
 * settleSmallNight) runs attachClaims to postCharges as that one activity instead, and skips
 * deliverToSinks and deliverAlerts when the tenant has no sink or alert webhook. Tests
 * that drive a night without Temporal follow this list, and a test compares it with a real night's
 * history, so a new step cannot be left out of either.
 */
export const NIGHT_STEPS = [
  'startRun',
  'pullClaims',
  'pullRecords',
  'attachClaims',
  'evaluateOutcomes',
  'reverseCharges',
  'postPeriodLines',
  'postCharges',
  'deliverToSinks',
  'deliverAlerts',
  'reportRun',
] as const;
export type NightStep = (typeof NIGHT_STEPS)[number];

export const progressQuery = defineQuery<RunProgress>('progress');

/** Search attributes the workflows use; registered on the dev server by the local stack. */
export const SEARCH_ATTRIBUTES = { tenant: 'ReconTenant', asOf: 'ReconAsOf' } as const;

export const RUN_WORKFLOW_PREFIX = 'reconcile';

/** Run ids carry the tenant slug and the business time only, never personal data. */
export function runWorkflowId(tenant: string, asOf: string): string {
  return `${RUN_WORKFLOW_PREFIX}-${tenant}-${asOf}`;
}
