#!/usr/bin/env node
// `npm test`: typecheck, dependency check, lint, format check, then unit and integration tests (real
// Temporal and PostgreSQL, started by the test setup). Workers run in UTC on purpose; the unit tests
// also run under another zone.
import { spawnSync } from 'node:child_process';

function step(title, cmd, args, env = {}) {
  console.log(`\n=== ${title} ===`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`\n${title} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}

step('typecheck', 'npx', ['tsc', '--noEmit', '-p', '.']);
step('typecheck bench/', 'npx', ['tsc', '--noEmit', '-p', 'bench']);
step('dependencies (knip: unlisted, unused, unknown binaries)', 'npx', ['knip', '--dependencies']);
step('lint (typescript-eslint, type-checked rules: eslint.config.js)', 'npx', ['eslint', '.']);
step('format (prettier --check: .prettierrc.json)', 'npx', ['prettier', '--check', '.']);
step('Temporal CLI', 'npx', ['tsx', 'scripts/ensure-temporal.ts']);
step(
  'unit tests (TZ=America/New_York: no decision may depend on the process zone)',
  'npx',
  ['vitest', 'run', '--project', 'unit'],
  { TZ: 'America/New_York' },
);
step(
  'integration tests (real Temporal dev server + real PostgreSQL)',
  'npx',
  ['vitest', 'run', '--project', 'integration'],
  { TZ: 'UTC' },
);
