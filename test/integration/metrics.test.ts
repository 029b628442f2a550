import { spawn, type ChildProcess } from 'node:child_process';
import { inject } from 'vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyExample, seedSolvedTickets, startHarness, uniqueTenant, type Harness, reconEnv } from './harness';
import { BIN, ROOT, recon } from '../support/recon-cli';

/** The value of one sample in Prometheus text, by name and exact label set; 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? '')
      .split(/,(?=[a-zA-Z_]+=")/)
      .filter(Boolean)
      .sort()
      .join(',');
    if (got === want) return Number(m[3]);
  }
  return 0;
}

interface SpawnedWorker {
  child: ChildProcess;
  output: () => { stdout: string; stderr: string };
  stop: () => Promise<void>;
}

/** `recon worker --health-port PORT` as an operator starts it, on a task queue of its own. */
async function spawnWorker(env: NodeJS.ProcessEnv, port: number): Promise<SpawnedWorker> {
  const child = spawn(process.execPath, [BIN, 'worker', '--health-port', String(port)], {
    cwd: ROOT,
    env: { ...process.env, ...env, RECON_WORKFLOW_BUNDLE: inject('workflowBundlePath') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b) => (stdout += b));
  child.stderr.on('data', (b) => (stderr += b));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let ok = false;
  for (let i = 0; i < 120 && !ok && child.exitCode === null; i++) {
    await new Promise((r) => setTimeout(r, 500));
    ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
  }
  if (!ok) {
    child.kill('SIGKILL');
    throw new Error(`the worker did not become healthy: ${stderr}`);
  }
  return {
    child,
    output: () => ({ stdout, stderr }),
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The parts of `recon --json run`'s summary (snake_case) the test compares with the metrics. */
interface JsonSummary {
  run_id: number;
  claims: Record<string, number>;
  records: Record<string, number>;
  outcomes: { transitions: Record<string, number> };
  ledger: {
    currency: string;
    amount_minor: number;
    by_period: Array<Record<'charges' | 'base_fees' | 'true_ups' | 'credits', { count: number }>>;
  };
}

const port = () => 20000 + Math.floor(Math.random() * 20000);

describe('worker metrics and structured logs', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.stop());

  /** A tenant with two billable tickets and one claim row that is quarantined. */
  async function seededTenant(prefix: string): Promise<string> {
    const tenant = uniqueTenant(prefix);
    await applyExample(h.pool, tenant);
    await seedSolvedTickets(h, tenant, 'night', [
      ['T-1', '2026-03-02T11:00:00Z'],
      ['T-2', '2026-03-02T12:00:00Z'],
    ]);
    const bad = `${h.dir}/${tenant}-bad.jsonl`;
    await (
      await import('node:fs/promises')
    ).writeFile(
      bad,
      JSON.stringify({ claim_id: 'x', outcome_type: 'resolved_ticket', subject_ref: 'T-9', occurred_at: 'nope' }) +
        '\n',
    );
    const imp = await recon(['claims', 'import', '--tenant', tenant, bad], reconEnv(h));
    expect(imp.code, imp.stderr).toBe(0);
    return tenant;
  }

  it('serves the SDK and product metrics on the health port, scraped during and after a real night', async () => {
    const tenant = await seededTenant('metrics');
    const p = port();
    const env = { ...reconEnv(h), TEMPORAL_TASK_QUEUE: `${h.taskQueue}-metrics` };
    const worker = await spawnWorker(env, p);
    try {
      const scrape = async () => {
        const r = await fetch(`http://127.0.0.1:${p}/metrics`);
        expect(r.status).toBe(200);
        expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
        return r.text();
      };
      let running = true;
      const night = recon(['--json', 'run', '--tenant', tenant, '--as-of', '2026-03-06T07:00:00Z'], env).finally(
        () => (running = false),
      );
      const during: string[] = [];
      while (running) {
        during.push(await scrape());
        await new Promise((r) => setTimeout(r, 150));
      }
      const run = await night;
      expect(run.code, run.stderr).toBe(0);
      const summary = JSON.parse(run.stdout) as JsonSummary;
      expect(during.length).toBeGreaterThan(0);

      const text = await scrape();
      // The Temporal SDK's own metrics, from its exporter, in the same scrape.
      expect(text).toMatch(/^temporal_worker_task_slots_available\{/m);
      expect(text).toMatch(/^# TYPE recon_runs_total counter$/m);
      // No tenant id in any label (the SDK's workflow_type="reconcileTenant" is a type, not an id).
      expect(text).not.toContain(tenant);

      expect(sample(text, 'recon_runs_total', { status: 'started' })).toBe(1);
      expect(sample(text, 'recon_runs_total', { status: 'completed' })).toBe(1);
      expect(sample(text, 'recon_runs_total', { status: 'failed' })).toBe(0);

      const ledger = summary.ledger;
      const currency: string = ledger.currency;
      const byKind = (field: 'charges' | 'base_fees') => ledger.by_period.reduce((s, g) => s + g[field].count, 0);
      expect(byKind('charges')).toBe(2);
      expect(sample(text, 'recon_ledger_lines_total', { kind: 'charge', currency })).toBe(byKind('charges'));
      expect(sample(text, 'recon_ledger_lines_total', { kind: 'base_fee', currency })).toBe(byKind('base_fees'));
      expect(sample(text, 'recon_ledger_amount_minor_total', { kind: 'charge', currency })).toBe(ledger.amount_minor);

      expect(summary.claims).toMatchObject({ accepted: 2, quarantined: 1 });
      for (const kind of ['claims', 'records'])
        for (const result of ['accepted', 'redelivered', 'quarantined'])
          expect(sample(text, 'recon_import_rows_total', { kind, result }), `${kind} ${result}`).toBe(
            summary[kind as 'claims' | 'records'][result],
          );
      for (const [kind, n] of Object.entries(summary.outcomes.transitions))
        expect(sample(text, 'recon_outcome_transitions_total', { kind })).toBe(n);

      expect(
        sample(text, 'recon_activity_duration_seconds_count', { activity: 'reportRun', result: 'completed' }),
      ).toBe(1);
      expect(
        sample(text, 'recon_activity_duration_seconds_bucket', {
          activity: 'startRun',
          result: 'completed',
          le: '+Inf',
        }),
      ).toBe(1);
    } finally {
      await worker.stop();
    }
  });

  it('LOG_FORMAT=json: every line the worker writes is a JSON object, the run lines carry tenant and run id', async () => {
    const tenant = await seededTenant('jsonlog');
    const env = {
      ...reconEnv(h),
      TEMPORAL_TASK_QUEUE: `${h.taskQueue}-jsonlog`,
      LOG_FORMAT: 'json',
      RECON_LOG_LEVEL: 'INFO',
    };
    const worker = await spawnWorker(env, port());
    let out: { stdout: string; stderr: string };
    let runId: number;
    try {
      const run = await recon(['--json', 'run', '--tenant', tenant, '--as-of', '2026-03-06T07:00:00Z'], {
        ...env,
        LOG_FORMAT: undefined,
      });
      expect(run.code, run.stderr).toBe(0);
      runId = (JSON.parse(run.stdout) as JsonSummary).run_id;
    } finally {
      await worker.stop();
      out = worker.output();
    }
    const lines = (out.stdout + out.stderr).split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBeGreaterThan(2);
    const logs = lines.map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
    });
    for (const l of logs) {
      expect(typeof l.time).toBe('string');
      expect(typeof l.level).toBe('string');
      expect(typeof l.message).toBe('string');
    }
    const completed = logs.find((l) => l.message === 'run completed');
    expect(completed).toMatchObject({ level: 'INFO', tenant, runId, activityType: 'reportRun' });
    expect(completed).not.toHaveProperty('taskToken');
    // The SDK's native core logs are forwarded through the same JSON logger.
    expect(logs.some((l) => l.sdkComponent === 'core')).toBe(true);
    expect(logs.some((l) => String(l.message).startsWith('recon worker: polling'))).toBe(true);
  });
});
