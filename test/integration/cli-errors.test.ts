import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyExample, startHarness, uniqueTenant, writeLines, type Harness, reconEnv } from './harness';
import { recon as runRecon, type ReconResult as Result } from '../support/recon-cli';

const recon = (args: string[], env: NodeJS.ProcessEnv) => runRecon(args, { ...env, RECON_DEBUG: '' });

/** Runs at most `n` at a time: each is a Node process, and the machine is shared. */
async function limited<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

interface Case {
  name: string;
  args: string[];
  code: string;
  exit?: number;
  message?: RegExp;
}

const NOBODY = 'no-such-tenant';
const MISSING = '/nonexistent/dir/file.csv';
const P = ['--period', '2026-03'];

/**
 * Every verb with a missing required option, an unknown tenant and a path that does not exist.
 * `T` stands for a tenant that exists, `DIR` for a directory.
 */
const CASES: Case[] = [
  // A required option missing: commander's parser error, as our one line.
  ...(
    [
      ['claims', 'import', 'f.csv'],
      ['records', 'import', 'f.csv', '--tenant', 'T'],
      ['quarantine', 'list'],
      ['export', ...P],
      ['outcome', 'list'],
      ['dispute', 'open', '--tenant', 'T', '--subject', 's', '--actor', 'a'],
      ['dispute', 'list'],
      ['dispute', 'import', 'f.csv'],
      ['dispute', 'note', '1', '--actor', 'a'],
      ['dispute', 'resolve', '1', '--actor', 'a', '--note', 'n'],
      ['statement', ...P],
      ['period', 'close', '--tenant', 'T', ...P],
      ['alerts', 'list'],
      ['index', 'import', 'f.csv'],
      ['run'],
      ['schedule', 'create'],
      ['schedule', 'describe'],
      ['schedule', 'backfill', '--tenant', 'T', '--from', '2026-03-01T00:00:00Z'],
    ] as string[][]
  ).map((args): Case => ({
    name: `missing option: ${args.slice(0, 2).join(' ')}`,
    args,
    code: 'missing_option',
    message: /required option '--[a-z-]+ <[a-z-]+>' not specified/,
  })),
  // An unknown tenant: an error, never an empty success.
  ...(
    [
      ['claims', 'import', 'CLAIMS'],
      ['records', 'import', 'TICKETS', '--source', 'helpdesk'],
      ['quarantine', 'list'],
      ['export', ...P],
      ['outcome', 'list'],
      ['outcome', 'show', '--subject', 'T-1'],
      ['dispute', 'open', '--subject', 's', '--reason', 'r', '--actor', 'a'],
      ['dispute', 'list'],
      ['dispute', 'import', 'DISPUTES'],
      ['statement', ...P],
      ['period', 'close', ...P, '--actor', 'a'],
      ['alerts', 'list'],
      ['index', 'import', 'INDEX'],
      ['run', '--as-of', '2026-03-06T07:00:00Z'],
      ['schedule', 'create'],
    ] as string[][]
  ).map((args): Case => ({
    name: `unknown tenant: ${args.slice(0, 2).join(' ')}`,
    args: [...args, '--tenant', NOBODY],
    code: 'unknown_tenant',
    message: new RegExp(NOBODY),
  })),
  // Schedule verbs need only Temporal: an unknown tenant has no schedule.
  ...['describe', 'pause', 'unpause', 'trigger', 'delete'].map((verb): Case => ({
    name: `unknown tenant: schedule ${verb}`,
    args: ['schedule', verb, '--tenant', NOBODY],
    code: 'schedule_not_found',
    message: new RegExp(NOBODY),
  })),
  // A file that is not there.
  ...(
    [
      ['claims', 'import', MISSING, '--tenant', 'T'],
      ['records', 'import', MISSING, '--tenant', 'T', '--source', 'helpdesk'],
      ['dispute', 'import', MISSING, '--tenant', 'T'],
      ['index', 'import', MISSING, '--tenant', 'T'],
      ['contract', 'apply', MISSING],
      ['export', '--tenant', 'T', ...P, '--out', MISSING],
    ] as string[][]
  ).map((args): Case => ({
    name: `bad path: ${args.slice(0, 2).join(' ')}`,
    args,
    code: args[0] === 'contract' ? 'invalid_contract' : 'file_not_found',
    message: /nonexistent\/dir\/file\.csv/,
  })),
  {
    name: 'bad path: export --out a directory',
    args: ['export', '--tenant', 'T', ...P, '--out', 'DIR'],
    code: 'is_a_directory',
    message: /is a directory/,
  },
  {
    name: 'bad path: claims import of a directory',
    args: ['claims', 'import', 'DIR', '--tenant', 'T'],
    code: 'file_not_found',
  },
  // The parser's other errors.
  { name: 'unknown command', args: ['frobnicate'], code: 'unknown_command', message: /unknown command 'frobnicate'/ },
  {
    name: 'unknown option',
    args: ['outcome', 'list', '--tenant', 'T', '--colour'],
    code: 'unknown_option',
    message: /unknown option '--colour'/,
  },
  {
    name: 'missing argument',
    args: ['claims', 'import', '--tenant', 'T'],
    code: 'missing_argument',
    message: /missing required argument 'file'/,
  },
  // Values.
  {
    name: 'an --as-of that does not exist',
    args: ['run', '--tenant', 'T', '--as-of', '2026-02-30T07:00:00Z'],
    code: 'bad_input',
    message: /--as-of: no such date or time "2026-02-30T07:00:00Z"/,
  },
  {
    name: 'a malformed tenant id',
    args: ['outcome', 'list', '--tenant', 'Bad Tenant'],
    code: 'bad_input',
    message: /--tenant/,
  },
  { name: 'an unknown dispute', args: ['dispute', 'show', '987654321'], code: 'dispute_not_found' },
  // Files of the wrong shape are refused whole, naming the file.
  {
    name: 'claims CSV without a required column',
    args: ['claims', 'import', 'NO_SUBJECT', '--tenant', 'T'],
    code: 'missing_columns',
    message: /no-subject\.csv line 1: header lacks required column "subject_ref"/,
  },
  {
    name: 'JSON Lines in a .csv claims file',
    args: ['claims', 'import', 'JSONL_AS_CSV', '--tenant', 'T'],
    code: 'wrong_format',
    message: /jsonl-as\.csv line 1: this is not CSV/,
  },
  {
    name: 'CSV in a .jsonl claims file',
    args: ['claims', 'import', 'CSV_AS_JSONL', '--tenant', 'T'],
    code: 'wrong_format',
    message: /csv-as\.jsonl line 1: this is not JSON Lines/,
  },
  {
    name: 'JSON Lines into a CSV record source',
    args: ['records', 'import', 'TICKETS_JSONL', '--tenant', 'T', '--source', 'helpdesk'],
    code: 'wrong_format',
    message: /tickets\.jsonl: record source "helpdesk" takes CSV/,
  },
  // Index import: only the series the contract prices by, only positive multipliers.
  {
    name: 'index import of a series the contract does not use',
    args: ['index', 'import', 'INDEX_OTHER', '--tenant', 'IDX'],
    code: 'unknown_series',
    message: /index-other\.csv line 2: .*"cpu-cost"/,
  },
  {
    name: 'index import of a negative multiplier',
    args: ['index', 'import', 'INDEX_NEGATIVE', '--tenant', 'IDX'],
    code: 'invalid_multiplier',
    message: /index-negative\.csv line 3: multiplier -1\.05 is negative/,
  },
  // Schedules: cron fields, catch-up windows and backfill ranges.
  {
    name: 'a cron minute out of range',
    args: ['schedule', 'create', '--tenant', 'T', '--cron', '61 2 * * *'],
    code: 'invalid_cron',
    message: /minute "61" is not 0-59/,
  },
  {
    name: 'a cron with four fields',
    args: ['schedule', 'create', '--tenant', 'T', '--cron', '0 2 * *'],
    code: 'invalid_cron',
  },
  {
    name: 'a catch-up window that is no duration',
    args: ['schedule', 'create', '--tenant', 'T', '--catchup', 'forever'],
    code: 'invalid_catchup',
  },
  {
    name: 'a backfill into the future',
    args: ['schedule', 'backfill', '--tenant', 'T', '--from', '2026-03-01T00:00:00Z', '--to', '2099-03-01T00:00:00Z'],
    code: 'as_of_in_future',
  },
  {
    name: 'a backfill from after to',
    args: ['schedule', 'backfill', '--tenant', 'T', '--from', '2026-03-02T00:00:00Z', '--to', '2026-03-01T00:00:00Z'],
    code: 'bad_range',
  },
];

describe("every CLI failure is one line with a code and exit 2 for the caller's mistakes", () => {
  let h: Harness;
  let env: NodeJS.ProcessEnv;
  const tenant = uniqueTenant('clierr');
  const indexed = uniqueTenant('clierr-idx');
  const files: Record<string, string> = {};
  let results: Result[] = [];

  beforeAll(async () => {
    h = await startHarness();
    env = reconEnv(h);
    await applyExample(h.pool, tenant);
    const example = await applyExample(h.pool, indexed);
    // A second version priced by an index series (the first has none).
    const terms = example.outcomeTypes.resolved_ticket;
    await applyExample(h.pool, indexed, {
      effectiveFrom: '2026-02-01T00:00:00Z',
      outcomeTypes: {
        resolved_ticket: {
          ...terms,
          unitPrice: undefined,
          pricing: { tiers: [{ unitPrice: '0.99' }], indexSeries: 'gpu-cost' },
        },
      },
    });
    files.NO_SUBJECT = await writeLines(h.dir, 'no-subject.csv', [
      'claim_id,outcome_type,occurred_at',
      'k1,resolved_ticket,2026-03-02T10:00:00Z',
    ]);
    files.JSONL_AS_CSV = await writeLines(h.dir, 'jsonl-as.csv', [
      '{"claim_id":"k1","outcome_type":"resolved_ticket","subject_ref":"T-1","occurred_at":"2026-03-02T10:00:00Z"}',
    ]);
    files.CSV_AS_JSONL = await writeLines(h.dir, 'csv-as.jsonl', [
      'claim_id,outcome_type,subject_ref,occurred_at',
      'k1,resolved_ticket,T-1,2026-03-02T10:00:00Z',
    ]);
    files.TICKETS_JSONL = await writeLines(h.dir, 'tickets.jsonl', ['{"Ticket ID":"T-1","Status":"solved"}']);
    files.INDEX_OTHER = await writeLines(h.dir, 'index-other.csv', [
      'series,effective_from,multiplier',
      'cpu-cost,2026-01-01T00:00:00Z,1.05',
    ]);
    files.INDEX_NEGATIVE = await writeLines(h.dir, 'index-negative.csv', [
      'series,effective_from,multiplier',
      'gpu-cost,2026-01-01T00:00:00Z,1.05',
      'gpu-cost,2026-02-01T00:00:00Z,-1.05',
    ]);
    files.IDX = indexed;
    files.CLAIMS = await writeLines(h.dir, 'claims.csv', [
      'claim_id,outcome_type,subject_ref,occurred_at',
      'k1,resolved_ticket,T-1,2026-03-02T10:00:00Z',
    ]);
    files.TICKETS = await writeLines(h.dir, 'tickets.csv', [
      'Ticket ID,Status,Solved at,Updated at,CSAT',
      'T-1,solved,2026-03-02T11:00:00Z,2026-03-02T11:00:00Z,5',
    ]);
    files.DISPUTES = await writeLines(h.dir, 'disputes.csv', ['subject,reason,actor', 'T-1,wrong,cust']);
    files.INDEX = await writeLines(h.dir, 'index.csv', [
      'series,effective_from,multiplier',
      'gpu-cost,2026-01-01T00:00:00Z,1.05',
    ]);
    files.DIR = path.join(h.dir, 'a-directory');
    await mkdir(files.DIR);
    const resolve = (a: string) => (a === 'T' ? tenant : (files[a] ?? a));
    results = await limited(CASES, 4, (c) => recon(c.args.map(resolve), env));
  }, 600_000);
  afterAll(async () => h?.stop());

  it.each(CASES.map((c, i) => [c.name, i] as const))('%s', (_name, i) => {
    const c = CASES[i];
    const r = results[i];
    // Progress lines of `run` ("  … start: ...") may come before its failure; they are not errors.
    const lines = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('  '));
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^recon: ${c.code}: \\S`));
    if (c.message) expect(lines[0]).toMatch(c.message);
    // No stack trace, no raw SQL error, no SQLSTATE, no commander prefix.
    expect(lines[0]).not.toMatch(
      /\bat \S+ \(|\bat \S+:\d+:\d+|\b[0-9]{2}[0-9A-Z]{3}\b.*SQLSTATE|violates|relation "|syntax error|error: /,
    );
    expect(lines[0]).not.toMatch(/\b(23503|23505|21000|42501|22003)\b/);
    expect(r.code).toBe(c.exit ?? 2);
    expect(r.stdout).toBe('');
  });

  it('with --json the error is one JSON object on stderr', async () => {
    const r = await recon(['--json', 'outcome', 'list', '--tenant', NOBODY], env);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stderr)).toEqual({
      error: { code: 'unknown_tenant', message: expect.stringContaining(NOBODY) },
    });
    const p = await recon(['--json', 'outcome', 'list'], env);
    expect(p.code).toBe(2);
    expect(JSON.parse(p.stderr)).toMatchObject({ error: { code: 'missing_option' } });
  });

  it('help is not an error', async () => {
    const r = await recon(['export', '--help'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--tenant/);
  });
});
