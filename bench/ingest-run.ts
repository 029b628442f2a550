// Import benchmark (issue 5, ingest side): the benchmark's generated claims and helpdesk files
// imported with the product's own file import on a fresh embedded PostgreSQL, phase by phase, with
// wall time and peak RSS. Run: `npx tsx bench/ingest-run.ts --claims 100000 [--data DIR] [--profile] [--statements] [--first-only]`.
// --data keeps the generated files for the next run; --first-only stops after the first two imports;
// --statements prints every statement's duration.
import { copyFile, appendFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createPool, type Pool } from '../src/db/pool';
import { migrate } from '../src/db/migrate';
import { applyContract } from '../src/db/contracts';
import { ContractSchema } from '../src/domain/contract';
import { importClaimsFile, importRecordsFile } from '../src/ingest/files';
import type { ImportSummary } from '../src/ingest/staging';
import { startEmbeddedPostgres } from '../src/stack/postgres';
import { AS_OF, generate } from './generate';
import { postgresCpuSeconds, postmasterPid } from './ingest-cpu';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TENANT = 'bench';
const MB = 1024 * 1024;

/** Peak RSS of this process per phase, sampled every 50 ms and at each phase boundary. */
class Rss {
  peak = 0;
  private timer = setInterval(() => this.sample(), 50);
  constructor() {
    this.timer.unref();
  }
  sample(): number {
    const now = process.memoryUsage().rss / MB;
    this.peak = Math.max(this.peak, now);
    return now;
  }
  reset(): number {
    this.peak = 0;
    return this.sample();
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

/** --profile: every statement slower than 300 ms is printed with its plan (auto_explain, sent to the client). */
function profileStatements(pool: Pool): void {
  pool.on('connect', (client) => {
    client.on('notice', (n) => process.stderr.write(`${n.message}\n`));
    void client.query(`load 'auto_explain'; set auto_explain.log_min_duration = 300; set auto_explain.log_analyze = on;
      set auto_explain.log_nested_statements = on; set client_min_messages = log`);
  });
}

/** --statements: every statement's duration (COPY included), sent to the client. */
function timeStatements(pool: Pool): void {
  pool.on('connect', (client) => {
    client.on('notice', (n) => process.stderr.write(`${(n.message ?? '').replace(/\s+/g, ' ').slice(0, 160)}\n`));
    void client.query(`set log_min_duration_statement = 0; set client_min_messages = log`);
  });
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      claims: { type: 'string', default: '100000' },
      data: { type: 'string' },
      profile: { type: 'boolean', default: false },
      'first-only': { type: 'boolean', default: false },
      statements: { type: 'boolean', default: false },
    },
  });
  const claims = Number(values.claims);
  if (!Number.isInteger(claims) || claims < 100) throw new Error('--claims must be an integer >= 100');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'recon-ingest-'));
  const dataDir = values.data ?? path.join(dir, 'data');
  await mkdir(dataDir, { recursive: true });
  const claimsFile = path.join(dataDir, 'claims.jsonl');
  const recordsFile = path.join(dataDir, 'helpdesk.csv');
  if (!(await exists(claimsFile)) || !(await exists(recordsFile))) {
    process.stderr.write(`[ingest] generating ${claims} claims into ${dataDir}\n`);
    await generate(dataDir, claims);
  }
  // Changed copies (one extra row): a new import whose every other row must be compared with the database.
  const claimsAgain = path.join(dir, 'claims-again.jsonl');
  const recordsAgain = path.join(dir, 'helpdesk-again.csv');
  if (!values['first-only']) {
    await copyFile(claimsFile, claimsAgain);
    await appendFile(
      claimsAgain,
      `${JSON.stringify({ claim_id: 'c-extra', outcome_type: 'resolved_ticket', subject_ref: 'T-extra', occurred_at: '2026-10-20T00:00:00Z' })}\n`,
    );
    await copyFile(recordsFile, recordsAgain);
    await appendFile(recordsAgain, 'T-extra,solved,2026-10-20T00:00:00Z,2026-10-20T00:00:00Z,\r\n');
  }

  const pgServer = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pgdata'),
    log: (m) => process.stderr.write(`${m}\n`),
  });
  const pool = createPool(pgServer.url);
  if (values.profile) profileStatements(pool);
  if (values.statements) timeStatements(pool);
  const pgPid = postmasterPid(pgServer.dataDir);
  const rss = new Rss();
  const lines: string[] = [];
  try {
    await migrate(pool);
    const example = JSON.parse(await readFile(path.join(ROOT, 'examples', 'contract.acme.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    await applyContract(pool, ContractSchema.parse({ ...example, tenant: TENANT }));
    const phase = async (name: string, fn: () => Promise<ImportSummary>) => {
      global.gc?.();
      const before = rss.reset();
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const pgCpu0 = postgresCpuSeconds(pgPid);
      const s = await fn();
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const nodeCpu = (cpu.user + cpu.system) / 1e6;
      const pgCpu = postgresCpuSeconds(pgPid) - pgCpu0;
      rss.sample();
      const line =
        `${name.padEnd(22)} ${seconds.toFixed(2).padStart(8)} s (cpu node ${nodeCpu.toFixed(1)} s, postgres ${pgCpu.toFixed(1)} s)  rss ${before.toFixed(0).padStart(4)} -> peak ${rss.peak.toFixed(0).padStart(4)} MB  ` +
        `received ${s.received} = accepted ${s.accepted} + redelivered ${s.redelivered} + quarantined ${s.quarantined}${s.replayed ? ' (replayed)' : ''}`;
      process.stderr.write(`${line}\n`);
      lines.push(line);
    };
    await phase('import claims', () => importClaimsFile(pool, { tenant: TENANT, file: claimsFile, now: AS_OF }));
    await phase('import records', () =>
      importRecordsFile(pool, { tenant: TENANT, source: 'helpdesk', file: recordsFile, now: AS_OF }),
    );
    // Awaited here: a returned promise would let the finally below end the pool under the report.
    if (values['first-only']) {
      await report();
      return;
    }
    await phase('same records again', () =>
      importRecordsFile(pool, { tenant: TENANT, source: 'helpdesk', file: recordsFile, now: AS_OF }),
    );
    await phase('claims, changed copy', () =>
      importClaimsFile(pool, { tenant: TENANT, file: claimsAgain, now: AS_OF }),
    );
    await phase('records, changed copy', () =>
      importRecordsFile(pool, { tenant: TENANT, source: 'helpdesk', file: recordsAgain, now: AS_OF }),
    );
    await report();
  } finally {
    rss.stop();
    await pool.end();
    await pgServer.stop();
    await rm(dir, { recursive: true, force: true });
  }

  async function report(): Promise<void> {
    const {
      rows: [t],
    } = await pool.query<{ claims: number; versions: number; quarantine: number }>(
      `select (select count(*)::int from claims) as claims, (select count(*)::int from record_versions) as versions, (select count(*)::int from quarantine) as quarantine`,
    );
    console.log(
      `claims ${claims} (${((await stat(claimsFile)).size / MB) | 0} MB claims file, ${((await stat(recordsFile)).size / MB) | 0} MB records file); node ${process.version}`,
    );
    for (const l of lines) console.log(l);
    console.log(
      `tables: ${t.claims} claims, ${t.versions} record versions, ${t.quarantine} quarantined rows; process peak RSS (VmHWM) ${vmHwm()} MB`,
    );
    // What the imports wrote, row for row (ids included, times of writing excluded): equal before
    // and after a change to the import means the change wrote nothing different.
    const {
      rows: [f],
    } = await pool.query<{ claims: string; records: string; versions: string; quarantine: string }>(
      `select (select md5(string_agg(concat_ws('|', claim_id, outcome_type, subject_ref, subject_key, occurred_at, attributes, content_sha256, retracted_at, import_id), E'\\n' order by claim_id)) from claims) as claims,
              (select md5(string_agg(concat_ws('|', record_id, tenant_id, source, external_id), E'\\n' order by record_id)) from records) as records,
              (select md5(string_agg(concat_ws('|', version_id, record_id, effective_at, match_key, data, row_sha256, import_id, line), E'\\n' order by version_id)) from record_versions) as versions,
              (select md5(string_agg(concat_ws('|', import_id, row_number, line, source, origin, raw, code, reason), E'\\n' order by import_id, row_number)) from quarantine) as quarantine`,
    );
    console.log(
      `fingerprint: claims ${f.claims.slice(0, 12)} records ${f.records.slice(0, 12)} versions ${f.versions.slice(0, 12)} quarantine ${f.quarantine.slice(0, 12)}`,
    );
  }
}

function vmHwm(): string {
  return (process.resourceUsage().maxRSS / 1024).toFixed(0);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`ingest-run: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
