// Export benchmark (issue 5: "one million ledger lines export in constant memory"): seeds N ledger
// lines of one period straight in SQL on a fresh embedded PostgreSQL, exports them with the
// product's own export to a file, and prints wall time and this process's peak RSS.
// Run: `npx tsx bench/export-run.ts --lines 1000000 [--format csv|jsonl]`. Peak RSS alone says little
// (V8 collects lazily); `node --max-old-space-size=64 --import tsx bench/export-run.ts --lines 1000000`
// shows the export needs no more heap for a million lines than for a thousand.
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createPool, inTransaction } from '../src/db/pool';
import { chargeKeySql, creditKeySql } from '../src/ledger/keys';
import { migrate } from '../src/db/migrate';
import { ledgerTotal, writeExport } from '../src/export/export';
import { startEmbeddedPostgres } from '../src/stack/postgres';
import { postgresCpuSeconds, postmasterPid } from './ingest-cpu';

const TENANT = 'bench';
const PERIOD = '2026-10';
const MB = 1024 * 1024;

/** N lines: one charge per outcome, and a credit reversing every twentieth charge (about 5%). */
async function seed(pool: ReturnType<typeof createPool>, lines: number): Promise<void> {
  const charges = Math.ceil(lines / 1.05);
  const credits = lines - charges;
  await inTransaction(pool, async (db) => {
    await db.query(`insert into tenants (tenant_id) values ($1)`, [TENANT]);
    const {
      rows: [run],
    } = await db.query<{ run_id: number }>(
      `insert into runs (tenant_id, as_of, workflow_id, status) values ($1, '2026-11-05', 'bench-export', 'completed') returning run_id`,
      [TENANT],
    );
    await db.query(
      `insert into outcomes (tenant_id, outcome_type, subject_key, subject_ref, state, primary_claim_id, claim_count, match_status, success_at)
       select $1, 'resolved_ticket', 't-' || lpad(i::text, 8, '0'),
              -- every hundredth subject starts like a formula, as hostile data would
              case when i % 100 = 0 then '=T-' else 'T-' end || lpad(i::text, 8, '0'),
              'billed', 'c-' || lpad(i::text, 8, '0'), 1, 'matched', timestamptz '2026-10-01' + i * interval '1 second'
         from generate_series(1, $2::int) i`,
      [TENANT, charges],
    );
    await db.query(
      `insert into ledger_entries (tenant_id, idempotency_key, kind, outcome_id, outcome_type, subject_ref, period, currency, unit_price,
                                   amount_minor, contract_version, run_id, as_of, primary_claim_id, evidence, success_at, pricing_basis, tier, period_position)
       select $1, ${chargeKeySql('outcome_id')}, 'charge', outcome_id, outcome_type, subject_ref, $2, 'USD', '0.99', 99, 1, $3, '2026-11-05',
              primary_claim_id, jsonb_build_object('source', 'helpdesk', 'externalId', subject_ref, 'versionId', outcome_id, 'effectiveAt', success_at),
              success_at, 'tier', 1, row_number() over (order by outcome_id)
         from outcomes where tenant_id = $1 order by outcome_id`,
      [TENANT, PERIOD, run.run_id],
    );
    await db.query(
      `insert into ledger_entries (tenant_id, idempotency_key, kind, outcome_id, outcome_type, subject_ref, period, currency, unit_price,
                                   amount_minor, contract_version, run_id, as_of, primary_claim_id, evidence, success_at, pricing_basis,
                                   reverses_entry_id, reason)
       select tenant_id, ${creditKeySql('entry_id')}, 'credit', outcome_id, outcome_type, subject_ref, period, currency, unit_price, -amount_minor,
              contract_version, run_id, as_of, primary_claim_id, evidence, success_at, 'credit', entry_id, 'dispute upheld: "customer says, not solved"'
         from ledger_entries where tenant_id = $1 and kind = 'charge' and entry_id % 20 = 0 order by entry_id limit $2`,
      [TENANT, credits],
    );
  });
  await pool.query('analyze ledger_entries');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { lines: { type: 'string', default: '100000' }, format: { type: 'string', default: 'csv' } },
  });
  const lines = Number(values.lines);
  const format = values.format as 'csv' | 'jsonl';
  if (!Number.isInteger(lines) || lines < 1) throw new Error('--lines must be a positive integer');
  if (format !== 'csv' && format !== 'jsonl') throw new Error('--format must be csv or jsonl');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'recon-export-'));
  const server = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pgdata'),
    log: (m) => process.stderr.write(`${m}\n`),
  });
  const pool = createPool(server.url);
  try {
    await migrate(pool);
    let t0 = performance.now();
    await seed(pool, lines);
    process.stderr.write(
      `[export] seeded ${lines} ledger lines in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    );

    global.gc?.();
    const before = process.memoryUsage().rss / MB;
    let peak = before;
    let heapPeak = 0;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.rss / MB);
      heapPeak = Math.max(heapPeak, m.heapUsed / MB);
    }, 20);
    const file = path.join(dir, `export.${format}`);
    const pgPid = postmasterPid(server.dataDir);
    const pgCpu0 = postgresCpuSeconds(pgPid);
    const cpu0 = process.cpuUsage();
    t0 = performance.now();
    const out = createWriteStream(file);
    const totals = await writeExport(pool, { tenant: TENANT, period: PERIOD, format, out });
    out.end();
    await once(out, 'finish');
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const pgCpu = postgresCpuSeconds(pgPid) - pgCpu0;
    clearInterval(sampler);
    const ledger = await ledgerTotal(pool, TENANT, PERIOD);
    if (ledger.lines !== totals.lines || ledger.amountMinor !== totals.amountMinor) {
      throw new Error(
        `export ${totals.lines} lines / ${totals.amountMinor} != ledger ${ledger.lines} lines / ${ledger.amountMinor}`,
      );
    }
    const size = (await stat(file)).size / MB;
    console.log(
      `export ${format}: ${totals.lines} lines (${totals.charges} charges, ${totals.credits} credits), ${size.toFixed(0)} MB in ${seconds.toFixed(2)} s ` +
        `(cpu node ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s, postgres ${pgCpu.toFixed(1)} s) ` +
        `(${Math.round(totals.lines / seconds)} lines/s); rss ${before.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB (+${(peak - before).toFixed(0)}), ` +
        `heap peak ${heapPeak.toFixed(0)} MB; totals agree with the ledger (${totals.amount} ${totals.currency}); node ${process.version}`,
    );
  } finally {
    await pool.end();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`export-run: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
