import { mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { bundleWorkflows } from '../../src/temporal/worker';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('workflow bundle', () => {
  it('bundles the real workflows (no Node or database imports)', async () => {
    const bundle = await bundleWorkflows();
    expect(bundle.code).toContain('reconcileTenant');
    expect(bundle.code).not.toMatch(/require\(["']pg["']\)/);
  });

  it('fails on a forbidden import, so such a change breaks CI rather than production', async () => {
    const dir = await mkdtemp(path.join(ROOT, 'workflows', '.tmp-'));
    const file = path.join(dir, 'index.ts');
    await writeFile(file, `import pg from 'pg';\nexport async function bad(): Promise<string> { return typeof pg; }\n`);
    try {
      await expect(
        bundleWorkflowCode({
          workflowsPath: file,
          logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
        }),
      ).rejects.toThrow();
    } finally {
      const { rm } = await import('node:fs/promises');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
