import { parseArgs } from 'node:util';
import { z } from 'zod';
import { formatRows, runSuite } from './suite';
import { stopEverything } from './stack';

const Args = z.object({
  sigkill: z.coerce.number().int().min(0).default(20),
  temporal: z.coerce.number().int().min(0).default(2),
  postgres: z.coerce.number().int().min(0).default(2),
  drops: z.coerce.number().int().min(0).default(3),
  http: z.coerce.number().int().min(0).default(2),
  disputes: z.coerce.number().int().min(0).default(2),
  sink500: z.coerce.number().int().min(0).default(2),
  sinkAmbiguous: z.coerce.number().int().min(0).default(2),
  sink429: z.coerce.number().int().min(0).default(2),
  sinkDown: z.coerce.number().int().min(0).default(2),
  sinkKill: z.coerce.number().int().min(0).default(10),
  pullKill: z.coerce.number().int().min(0).default(3),
  pull429: z.coerce.number().int().min(0).default(2),
  pgClaimsKill: z.coerce.number().int().min(0).default(2),
  tickets: z.coerce.number().int().min(10).default(120),
  parallel: z.coerce.number().int().min(1).default(12),
  strictBytes: z.boolean().default(false),
});

/** `npm run test:faults [-- --sigkill N --parallel P …]`: the fault-injection suite (issue 6, item 1). */
export async function main(argv: string[]): Promise<number> {
  const opt = { type: 'string' } as const;
  const { values } = parseArgs({
    args: argv,
    options: {
      sigkill: opt,
      temporal: opt,
      postgres: opt,
      drops: opt,
      http: opt,
      disputes: opt,
      sink500: opt,
      sinkAmbiguous: opt,
      sink429: opt,
      sinkDown: opt,
      sinkKill: opt,
      pullKill: opt,
      pull429: opt,
      pgClaimsKill: opt,
      tickets: opt,
      parallel: opt,
      'strict-bytes': { type: 'boolean' },
    },
    strict: true,
  });
  const args = Args.parse({ ...values, strictBytes: values['strict-bytes'] });
  const t0 = Date.now();
  const onSignal = () => void stopEverything().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const log = (m: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
  const r = await runSuite({
    sigkillSeeds: args.sigkill,
    temporalSeeds: args.temporal,
    postgresSeeds: args.postgres,
    dropSeeds: args.drops,
    httpSeeds: args.http,
    disputeSeeds: args.disputes,
    sink500Seeds: args.sink500,
    sinkAmbiguousSeeds: args.sinkAmbiguous,
    sink429Seeds: args.sink429,
    sinkDownSeeds: args.sinkDown,
    sinkKillSeeds: args.sinkKill,
    pullKillSeeds: args.pullKill,
    pull429Seeds: args.pull429,
    pgClaimsKillSeeds: args.pgClaimsKill,
    tickets: args.tickets,
    parallel: args.parallel,
    strictBytes: args.strictBytes,
    log,
  });
  console.log('\n' + formatRows(r.rows));
  console.log(`\nSIGKILL points (seed: aimed at → in flight at the kill):`);
  for (const k of [...r.kills].sort((a, b) => a.seed - b.seed))
    console.log(
      `  ${String(k.seed).padStart(2)}: night ${k.night}, ${k.target} → ${k.pendingAtKill.join(', ') || '(between activities)'}`,
    );
  if (r.drops.length) console.log(`connections dropped: ${r.drops.join(' | ')}`);
  if (r.sinkFaults.length) {
    console.log(`\nSink faults (seed: what struck):`);
    for (const f of [...r.sinkFaults].sort((a, b) => a.seed - b.seed))
      console.log(`  ${String(f.seed).padStart(4)}: ${f.note}`);
  }
  console.log(`\nPulled tenant (reference): ${r.referencePull}`);
  if (r.pullFaults.length) {
    console.log(`Pull faults (seed: what struck):`);
    for (const f of [...r.pullFaults].sort((a, b) => a.seed - b.seed))
      console.log(`  ${String(f.seed).padStart(4)}: ${f.note}`);
  }
  for (const row of r.rows) for (const f of row.failures) console.log(`FAIL ${row.fault}: ${f}`);
  console.log(
    `\n${r.ok ? 'PASS' : 'FAIL'}: reference run ${r.referenceSeconds.toFixed(1)} s, whole suite ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  return r.ok ? 0 : 1;
}
