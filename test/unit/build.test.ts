import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface BuildModule {
  build: () => Promise<{ file: string; sources: number }>;
  freshBuild: () => string | null;
}

// scripts/build.mjs is plain JavaScript (it runs before anything is compiled): no types to import.
const load = async () => (await import(pathToFileURL(path.join(ROOT, 'scripts', 'build.mjs')).href)) as BuildModule;

describe('the compiled recon (scripts/build.mjs)', () => {
  it('is fresh right after a build, and records every source it compiled', async () => {
    const { build, freshBuild } = await load();
    const { file } = await build();
    expect(freshBuild()).toBe(file);
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'dist', 'recon.json'), 'utf8')) as { inputs: string[] };
    for (const f of [
      'src/cli/main.ts',
      'src/temporal/worker.ts',
      'src/db/migrate.ts',
      'activities/index.ts',
      'package-lock.json',
      'scripts/build.mjs',
    ]) {
      expect(manifest.inputs).toContain(f);
    }
  }, 60_000);

  it('finds migrations, examples and workflows beside the sources, wherever the clone lives', async () => {
    const { build } = await load();
    const code = readFileSync((await build()).file, 'utf8');
    // Each module's import.meta.url is its source file, relative to the bundle: no absolute path.
    expect(code).not.toContain(ROOT);
    expect(code).toContain('new URL("../src/db/migrate.ts", import.meta.url)');
    expect(code).toContain('new URL("../src/temporal/worker.ts", import.meta.url)');
  }, 60_000);
});
