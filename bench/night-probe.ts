// Measures the night's database work phase by phase without Temporal: the same attach, evaluate and
// post calls the activities make, on one embedded PostgreSQL, with WAL bytes, PostgreSQL CPU and
// HOT updates per phase. WAL bytes do not depend on what else the machine runs, so a before/after
// comparison holds on a busy machine where wall times do not.
// `npx tsx bench/night-probe.ts --claims 100000 [--existing M] [--explain] [--overlap] [--skip 018_night_writes.sql] [--bare-attach]`
// (--bare-attach: attach creates bare outcomes for evaluate to decide, as before issue 16's fused attach)
process.env.TZ = 'UTC';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pgDriver from 'pg';
import { createPool } from '../src/db/pool';
import { migrate } from '../src/db/migrate';
import { applyContract, loadContractHistory } from '../src/db/contracts';
import { ContractSchema } from '../src/domain/contract';
import { versionForRun } from '../src/domain/contract-history';
import { importClaimsFile, importRecordsFile } from '../src/ingest/files';
import { startEmbeddedPostgres } from '../src/stack/postgres';
import { attachClaimsToOutcomes } from '../src/reconcile/attach';
import { evaluateChunk } from '../src/reconcile/evaluate';
import { postChunk, postChunksOverlapped } from '../src/reconcile/post';
import { startRun } from '../src/reconcile/runs';
import { refreshNightlyStatistics } from '../src/reconcile/statistics';
import { AS_OF, generate } from './generate';
import { cpuSince, cpuSnapshot } from './probes';
import { seedExistingHistory } from './existing';

// Time spent per statement (by its first words), printed per phase: where a phase's waiting goes.
const spent = new Map<string, { ms: number; n: number }>();
const proto = pgDriver.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
const original = proto.query;
proto.query = function (this: unknown, ...a: unknown[]) {
  const text = typeof a[0] === 'string' ? a[0] : ((a[0] as { text?: string })?.text ?? '?');
  const key = text.replace(/\s+/g, ' ').trim().slice(0, 70);
  // With --explain, the fifth run of each of the night's statements runs first under EXPLAIN
  // ANALYZE (which writes) and then as usual (which finds its rows written, as a retry would), so
  // the counts printed after it are off by one chunk; the ledger is the same.
  const seen = (spent.get(key)?.n ?? 0) + 1;
  if (
    explain &&
    seen === 5 &&
    /^(update|insert|with l as|select o\.outcome_id)/.test(key) &&
    typeof a[0] === 'string'
  ) {
    const plan = original.apply(this, [`explain (analyze, buffers, wal) ${a[0]}`, ...a.slice(1)]) as Promise<{
      rows: Array<Record<string, string>>;
    }>;
    void plan.then((p) => console.log(`EXPLAIN ${key}\n${p.rows.map((x) => x['QUERY PLAN']).join('\n')}`));
  }
  const t0 = performance.now();
  const r = original.apply(this, a);
  if (r && typeof (r as Promise<unknown>).then === 'function')
    void (r as Promise<unknown>).then(
      () => {
        const e = spent.get(key) ?? { ms: 0, n: 0 };
        e.ms += performance.now() - t0;
        e.n++;
        spent.set(key, e);
      },
      () => undefined,
    );
  return r;
};
let explain = false;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TENANT = 'bench';
const CHUNK = 2000;

const { values } = parseArgs({
  options: {
    existing: { type: 'string', default: '0' },
    explain: { type: 'boolean', default: false },
    claims: { type: 'string', default: '100000' },
    skip: { type: 'string', multiple: true, default: [] },
    // Post two chunks at a time, as the postCharges activity does (postChunksOverlapped).
    overlap: { type: 'boolean', default: false },
    'bare-attach': { type: 'boolean', default: false },
  },
});
const dir = await mkdtemp(path.join(os.tmpdir(), 'night-probe-'));
const migrations = path.join(dir, 'migrations');
await mkdir(migrations);
for (const f of await readdir(path.join(ROOT, 'migrations')))
  if (!values.skip.includes(f)) await symlink(path.join(ROOT, 'migrations', f), path.join(migrations, f));
await mkdir(path.join(dir, 'data'));
const data = await generate(path.join(dir, 'data'), Number(values.claims));
const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pgdata') });
const pool = createPool(pg.url);
try {
  await migrate(pool, migrations);
  const example = JSON.parse(await readFile(path.join(ROOT, 'examples', 'contract.acme.json'), 'utf8')) as object;
  const contract = ContractSchema.parse({ ...example, tenant: TENANT });
  await applyContract(pool, contract);
  if (Number(values.existing) > 0) await seedExistingHistory(pool, TENANT, Number(values.existing));
  await importClaimsFile(pool, { tenant: TENANT, file: data.claimsFile, now: AS_OF });
  await importRecordsFile(pool, { tenant: TENANT, source: 'helpdesk', file: data.recordsFile, now: AS_OF });
  await pool.query('checkpoint');
  explain = values.explain!;
  const runId = await startRun(pool, { tenant: TENANT, asOf: AS_OF, workflowId: 'probe' });
  const history = await loadContractHistory(pool, TENANT);
  const versions = history.versions;
  const current = versionForRun(history, AS_OF);

  const lsn = async () => (await pool.query<{ l: string }>('select pg_current_wal_lsn()::text as l')).rows[0].l;
  const stats = async () =>
    (
      await pool.query<{ relname: string; upd: string; hot: string; ins: string }>(
        `select relname, n_tup_upd::text as upd, n_tup_hot_upd::text as hot, n_tup_ins::text as ins from pg_stat_user_tables
          where relname in ('outcomes', 'claims', 'outcome_events', 'ledger_entries') order by relname`,
      )
    ).rows;
  const cpu = () => cpuSnapshot({ workerPids: [], pgDataDir: pg.dataDir });
  const phase = async (name: string, fn: () => Promise<unknown>) => {
    await pool.query('select pg_stat_force_next_flush()');
    spent.clear();
    const l0 = await lsn();
    const c0 = cpu();
    const t0 = performance.now();
    await fn();
    const wall = (performance.now() - t0) / 1000;
    const c = cpuSince(c0, cpu());
    const l1 = await lsn();
    const {
      rows: [w],
    } = await pool.query<{ b: string }>('select pg_wal_lsn_diff($1, $2)::bigint::text as b', [l1, l0]);
    for (const [k, v] of [...spent].sort((x, y) => y[1].ms - x[1].ms).slice(0, 6))
      console.log(`    ${(v.ms / 1000).toFixed(2).padStart(6)} s ${String(v.n).padStart(5)}x  ${k}`);
    spent.clear();
    console.log(
      `${name.padEnd(9)} wall ${wall.toFixed(2).padStart(6)} s  pg cpu ${c.postgres.toFixed(2).padStart(6)} s  node cpu ${c.bench.toFixed(2).padStart(5)} s  wal ${(Number(w.b) / 2 ** 20).toFixed(1).padStart(7)} MB`,
    );
  };
  await phase('attach', async () => {
    await refreshNightlyStatistics(pool);
    const fuse = values['bare-attach'] ? undefined : { asOf: AS_OF, contract: current };
    // The chunk sizes the attachClaims activity uses (see attachLimit in activities/index.ts).
    const limit = fuse ? CHUNK * 2 : CHUNK * 5;
    for (;;) if ((await attachClaimsToOutcomes(pool, TENANT, runId, limit, fuse)).done) break;
    await refreshNightlyStatistics(pool, ['outcomes']);
  });
  const evaluateAll = async () => {
    let cursor = 0;
    for (;;) {
      const r = await evaluateChunk(pool, {
        tenant: TENANT,
        runId,
        asOf: AS_OF,
        contract: current,
        afterOutcomeId: cursor,
        limit: CHUNK * 2,
        slices: 2,
      });
      cursor = r.lastOutcomeId;
      if (r.done) break;
    }
  };
  await phase('evaluate', evaluateAll);
  let posted = 0;
  await phase('post', async () => {
    const args = { tenant: TENANT, runId, asOf: AS_OF, versions, timeZone: current.body.timezone, limit: CHUNK };
    if (values.overlap) {
      for (;;) {
        const r = await postChunksOverlapped(pool, { ...args, maxChunks: 50 });
        posted += r.posted;
        if (r.done) return;
      }
    }
    for (;;) {
      const r = await postChunk(pool, {
        tenant: TENANT,
        runId,
        asOf: AS_OF,
        versions,
        timeZone: current.body.timezone,
        limit: CHUNK,
      });
      posted += r.posted;
      if (r.done) break;
    }
  });
  // The outcomes still open (in grace, awaiting evidence) evaluated again at the same asOf, as a
  // retried run does: their state does not change, so these updates can be HOT.
  const hot0 = await stats();
  await phase('re-eval', evaluateAll);
  await pool.query('select pg_stat_force_next_flush()');
  const hot1 = await stats();
  const o0 = hot0.find((s) => s.relname === 'outcomes')!;
  const o1 = hot1.find((s) => s.relname === 'outcomes')!;
  console.log(`re-eval outcomes updated ${Number(o1.upd) - Number(o0.upd)}, HOT ${Number(o1.hot) - Number(o0.hot)}`);
  await pool.query('select pg_stat_force_next_flush()');
  const {
    rows: [ledger],
  } = await pool.query<{ n: number; total: string; md5: string; by_claim: string }>(
    `select count(*)::int as n, sum(amount_minor)::text as total, md5(string_agg(outcome_id::text || ':' || amount_minor, ',' order by outcome_id)) as md5,
            md5(string_agg(primary_claim_id || ':' || amount_minor || ':' || period_position, ',' order by primary_claim_id collate "C")) as by_claim
       from ledger_entries where kind = 'charge'`,
  );
  // Outcome ids follow attach's order (claim id, or subject with the fused attach); the lines by
  // primary claim compare across both.
  console.log(
    `posted ${posted}; ledger ${ledger.n} charges, ${ledger.total} minor units, md5 ${ledger.md5}, by primary claim ${ledger.by_claim}`,
  );
  for (const s of await stats()) console.log(`${s.relname.padEnd(15)} ins ${s.ins} upd ${s.upd} hot ${s.hot}`);
  const { rows: sizes } = await pool.query<{ name: string; mb: string }>(
    `select c.relname as name, round(pg_relation_size(c.oid) / 1048576.0, 1)::text as mb from pg_class c
      where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'i')
        and (c.relname like 'outcome%' or c.relname like 'claims%' or c.relname like 'ledger%') order by 1`,
  );
  console.log(sizes.map((s) => `${s.name} ${s.mb}`).join(', '));
  // The run report's count of the outcomes the run created, through the index on created_run_id.
  const { rows: plan } = await pool.query<{ 'QUERY PLAN': string }>(
    `explain (analyze, buffers) select count(*)::int as n from outcomes where created_run_id = ${runId}`,
  );
  console.log(plan.map((p) => p['QUERY PLAN']).join('\n'));
} finally {
  await pool.end();
  await pg.stop();
  await rm(dir, { recursive: true, force: true });
}
