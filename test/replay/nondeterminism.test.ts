import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HISTORY = fileURLToPath(new URL('../fixtures/histories/reconcile-night-with-charges.json', import.meta.url));
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } as never;

/** The test of the replay test: a workflow change that reorders commands must fail it. */
describe('replay catches a non-deterministic change', () => {
  it('fails when the run workflow schedules its activities in another order', async () => {
    // Inside the project so that the copy resolves the same node_modules.
    const dir = await mkdtemp(path.join(ROOT, 'workflows', '.tmp-nondet-'));
    try {
      for (const f of (await readdir(path.join(ROOT, 'workflows'))).filter((n) => n.endsWith('.ts'))) {
        await copyFile(path.join(ROOT, 'workflows', f), path.join(dir, f));
      }
      const file = path.join(dir, 'reconcile.ts');
      const original = await readFile(file, 'utf8');
      const changed = original.replace(
        'const started = await startRun(',
        'await reportRun({ tenant, runId: 0, asOf, posted: { count: 0, amountMinor: 0 } });\n    const started = await startRun(',
      );
      expect(changed).not.toBe(original);
      await writeFile(file, changed.replace(/from '\.\.\/activities'/g, "from '../../activities'"));
      const bundle = await bundleWorkflowCode({ workflowsPath: path.join(dir, 'index.ts'), logger: quiet });
      const history = historyFromJSON(JSON.parse(await readFile(HISTORY, 'utf8')));
      await expect(Worker.runReplayHistory({ workflowBundle: bundle }, history)).rejects.toThrow(
        /[Nn]ondetermin|DeterminismViolation/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
