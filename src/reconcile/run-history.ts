import type { Pool } from '../db/pool';
import type { RunRow } from '../db/rows';
import { ReconError } from '../domain/errors';
import { pageAndCount, sqlFilters } from './explain';
import type { RunSummary } from './runs';

export interface RunRecord {
  runId: number;
  tenant: string;
  asOf: string;
  status: string;
  attempts: number;
  startedAt: string;
  finishedAt: string | null;
  workflowId: string;
  /** As the run stored it; null while it runs or when it failed before reporting. */
  summary: RunSummary | null;
}

const RUN_COLUMNS = 'run_id, tenant_id, as_of, status, attempts, started_at, finished_at, workflow_id, summary';

type RunRecordRow = Pick<
  RunRow,
  'run_id' | 'tenant_id' | 'as_of' | 'status' | 'attempts' | 'started_at' | 'finished_at' | 'workflow_id'
> & { summary: RunSummary | null };

function toRecord(r: RunRecordRow): RunRecord {
  return {
    runId: Number(r.run_id),
    tenant: r.tenant_id,
    asOf: r.as_of.toISOString(),
    status: r.status,
    attempts: r.attempts,
    startedAt: r.started_at.toISOString(),
    finishedAt: r.finished_at?.toISOString() ?? null,
    workflowId: r.workflow_id,
    summary: r.summary,
  };
}

/** A tenant's runs, latest business time first (the runs' unique (tenant_id, as_of) index), with how many match. */
export async function listRuns(
  pool: Pool,
  args: { tenant: string; status?: string; limit: number },
): Promise<{ matching: number; items: RunRecord[] }> {
  const f = sqlFilters([
    [(p) => `tenant_id = ${p}`, args.tenant],
    args.status !== undefined && [(p) => `status = ${p}`, args.status],
  ]);
  const r = await pageAndCount<RunRecordRow>(
    pool,
    {
      sql: (where, limit) => `select ${RUN_COLUMNS} from runs where ${where} order by as_of desc limit ${limit}`,
      count: (where) => `select count(*)::int as n from runs where ${where}`,
    },
    f,
    args.limit,
  );
  return { matching: r.matching, items: r.rows.map(toRecord) };
}

/** One run of a tenant, by its id or by its asOf. */
export async function showRun(pool: Pool, args: { tenant: string; runId?: number; asOf?: Date }): Promise<RunRecord> {
  const {
    rows: [r],
  } = await pool.query<RunRecordRow>(
    `select ${RUN_COLUMNS} from runs where tenant_id = $1 and ($2::bigint is null or run_id = $2) and ($3::timestamptz is null or as_of = $3)`,
    [args.tenant, args.runId ?? null, args.asOf ?? null],
  );
  if (!r) {
    const which = args.runId !== undefined ? `run ${args.runId}` : `a run as of ${args.asOf?.toISOString()}`;
    throw new ReconError(
      'run_not_found',
      `tenant ${args.tenant} has no ${which}; \`recon run list --tenant ${args.tenant}\` shows its runs`,
    );
  }
  return toRecord(r);
}
