import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { describe, expect, inject, it } from 'vitest';

const DIR = fileURLToPath(new URL('../fixtures/histories/', import.meta.url));

/**
 * Histories recorded from real runs (see test/integration/nightly.test.ts, RECORD_HISTORIES=1)
 * replayed against the current workflow code: a non-deterministic change fails here.
 */
describe('replay of recorded workflow histories', async () => {
  const files = (await readdir(DIR)).filter((f) => f.endsWith('.json')).sort();

  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const file of files) {
    it(`replays ${file}`, async () => {
      const history = historyFromJSON(JSON.parse(await readFile(path.join(DIR, file), 'utf8')));
      await Worker.runReplayHistory(
        { workflowBundle: { codePath: inject('workflowBundlePath') } },
        history,
        path.basename(file, '.json'),
      );
    });
  }
});
