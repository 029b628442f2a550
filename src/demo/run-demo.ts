import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { createPool } from '../db/pool';
import type { OutcomeRow } from '../db/rows';
import { chargeOfOutcome, linesOfOutcome } from '../ledger';
import { applyContract } from '../db/contracts';
import { ContractSchema } from '../domain/contract';
import { importRecordsFile } from '../ingest/files';
import { startClaimsServer } from '../sources/claims-server';
import { startLocalStack } from '../stack/local-stack';
import { connectClient, connectWorker } from '../temporal/connection';
import { createWorker } from '../temporal/worker';
import { installRuntime } from '../temporal/runtime';
import { runReconciliation } from '../temporal/run-client';
import { describeTotals, ledgerTotals, writeExport } from '../export/export';
import { explainOutcome, findOutcomeId } from '../reconcile/explain';
import { formatImport, formatStory, formatSummary, plural } from '../cli/format';
import { formatMoney } from '../domain/money';
import { buildStatement, formatStatement } from '../reconcile/statement';
import { buildDemoDataset, demoFirstNight, recordExportFor } from './dataset';
import { DisputeStory } from './dispute-story';
import { mkdtemp, rm } from 'node:fs/promises';
import { startStripeEmulator } from '../emulators/stripe';
import { GLOBEX, ZendeskTenantStory } from './zendesk-tenant';
import { sourceStatus } from '../sources/source-status';
import { formatSourceStatus } from '../cli/commands/source';
import { tenantSinkStatus } from '../sinks/status';
import { reconcileSinksViaTemporal, wakeDeliveryLoop } from '../temporal/sink-client';
import { formatReconcile, formatSinkStatus } from '../cli/commands/sink';

const DEMO_STRIPE_KEY_ENV = 'RECON_DEMO_STRIPE_KEY';
/** The emulator's key: a local stand-in, not a secret. */
const DEMO_STRIPE_KEY = 'sk_test_recon_demo';
const DEMO_CUSTOMER = 'cus_acmedemo';

const EXAMPLE = fileURLToPath(new URL('../../examples/contract.acme-hybrid.json', import.meta.url));

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`demo check failed: ${what}`);
  console.log(`  ✓ ${what}`);
}

/**
 * The seeded end-to-end story on the local stack: nine nights of tickets, claims pulled from a
 * local claims API, customer exports imported, runs on Temporal, an export checked to the cent.
 */
export async function runDemo(opts: { outDir: string; log: (m: string) => void }): Promise<void> {
  const { log } = opts;
  installRuntime();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'recon-demo-'));
  const stack = await startLocalStack({ dir, persistent: false, ui: true, log });
  const claimsApi = await startClaimsServer();
  // The demo tenant bills through Stripe: a local emulator stands in for it, with acme's customer.
  const stripe = await startStripeEmulator({ secret: DEMO_STRIPE_KEY, customers: [DEMO_CUSTOMER] });
  const pool = createPool(stack.databaseUrl);
  const connection = await connectWorker(stack.temporalAddress);
  const client = await connectClient(stack.temporalAddress, 'default');
  let worker: Worker | undefined;
  let globex: ZendeskTenantStory | undefined;
  let globexBilled = 0;
  let running: Promise<void> | undefined;
  try {
    console.log(
      ['', 'local stack:', ...stack.describe.map((d) => `  ${d}`), `  claims API (demo): ${claimsApi.url}`].join('\n'),
    );
    if (stack.uiUrl)
      console.log(
        `\nWatch the runs in the Temporal Web UI while the demo runs: ${stack.uiUrl}/namespaces/default/workflows\n`,
      );
    const taskQueue = 'recon-demo';
    const firstNight = demoFirstNight(new Date(), 10);
    // The second tenant's evidence is pulled from Zendesk and its claims from the AI side's database.
    globex = await ZendeskTenantStory.start({ pool, databaseUrl: stack.databaseUrl, firstNight });
    console.log(
      `second tenant: ${GLOBEX} (Europe/Berlin, EUR): tickets pulled from Zendesk (local emulator at ${globex.zendesk.url}), claims read from the AI side's PostgreSQL (database ai_side)`,
    );
    worker = await createWorker({
      connection,
      namespace: 'default',
      taskQueue,
      deps: { pool, chunkSize: 100, sinkEnv: { [DEMO_STRIPE_KEY_ENV]: DEMO_STRIPE_KEY }, sourceEnv: globex.env },
    });
    running = worker.run();

    const example = JSON.parse(await readFile(EXAMPLE, 'utf8')) as Record<string, unknown>;
    const tenant = 'acme';
    const contract = ContractSchema.parse({
      ...example,
      tenant,
      claimSources: { 'fin-api': { kind: 'http', url: claimsApi.url, pageSize: 50 } },
      sinks: {
        stripe: {
          kind: 'stripe',
          mode: 'invoice_items',
          customer: DEMO_CUSTOMER,
          apiKeyEnv: DEMO_STRIPE_KEY_ENV,
          apiBase: stripe.url,
        },
      },
    });
    const applied = await applyContract(pool, contract);
    const terms = contract.outcomeTypes.resolved_ticket;
    const p = terms.pricing!;
    console.log(`billing sink: Stripe (local emulator at ${stripe.url}), invoice items for customer ${DEMO_CUSTOMER}`);
    console.log(
      `contract: tenant ${tenant} v${applied.version} (${contract.timezone}, ${contract.currency}): grace ${terms.graceWindow}, evidence deadline ${terms.evidenceDeadline}; ` +
        `base fee ${p.baseFee} with ${p.included} resolutions included, then ${p.tiers.map((t) => `${t.unitPrice}${t.upTo ? ` up to ${t.upTo}` : ''}`).join(', then ')}, capped at ${p.cap && 'amount' in p.cap ? p.cap.amount : '-'} a month`,
    );

    // The story is the last nine nights, so that today's dispute decisions fall in their windows.
    const ds = buildDemoDataset({ firstNight });
    const story = new DisputeStory(pool, client, tenant, taskQueue);
    const inputs = path.join(dir, 'inputs');
    await mkdir(inputs, { recursive: true });
    let published = 0;
    const totals = { reopened: 0, quarantined: 0, duplicates: 0 };
    // What the nights' summaries say they wrote, per period landed in and currency.
    const summarised = new Map<string, number>();
    let baseFeesSummarised = 0;
    let creditsSummarised = 0;
    for (let k = 0; k < ds.nights.length; k++) {
      const asOf = ds.nights[k];
      const due = ds.claims.filter((c) => c.publishAt.getTime() <= asOf.getTime()).slice(published);
      claimsApi.publish(due.map((c) => c.claim));
      published += due.length;
      const file = path.join(inputs, `helpdesk-${k + 1}.csv`);
      await writeFile(file, recordExportFor(ds, k).join('\r\n') + '\r\n');
      const rec = await importRecordsFile(pool, { tenant, source: 'helpdesk', file, now: asOf });
      console.log(`\n── night ${k + 1}: ${asOf.toISOString()} ──`);
      console.log(formatImport('records', rec));
      const summary = await runReconciliation(client, { tenant, asOf, taskQueue });
      console.log(formatSummary(summary));
      for (const g of summary.ledger.byPeriod) {
        summarised.set(`${g.period} ${g.currency}`, (summarised.get(`${g.period} ${g.currency}`) ?? 0) + g.amountMinor);
        baseFeesSummarised += g.baseFees.count;
        creditsSummarised += g.credits.count;
      }
      // Support's dispute credits are posted between nights; the next night's report shows them.
      for (const o of summary.ledger.outsideRuns?.byPeriod ?? []) {
        summarised.set(`${o.period} ${o.currency}`, (summarised.get(`${o.period} ${o.currency}`) ?? 0) + o.amountMinor);
        creditsSummarised += o.lines;
      }
      totals.reopened += summary.outcomes.transitions.reopened ?? 0;
      totals.quarantined += summary.claims.quarantined + summary.records.quarantined;
      totals.duplicates += summary.claims.duplicates;
      const told =
        k === 1
          ? await story.openInGrace()
          : k === 4
            ? [await story.rejectSecond()]
            : k === 5
              ? [await story.creditBilled()]
              : [];
      for (const line of told) console.log(`  support: ${line}`);

      for (const line of await globex.dayBefore(k, asOf)) console.log(`  ${line}`);
      const other = await runReconciliation(client, { tenant: GLOBEX, asOf, taskQueue });
      console.log(formatSummary(other));
      globexBilled += other.ledger.newCharges;
    }

    await mkdir(opts.outDir, { recursive: true });
    const { rows: periods } = await pool.query<{ period: string }>(
      'select distinct period from ledger_entries where tenant_id = $1 order by period',
      [tenant],
    );
    const exports: Array<{
      file: string;
      period: string;
      fileTotals: string;
      exported: string;
      ledger: string;
      statement: string;
    }> = [];
    const key = (xs: Array<{ currency: string; amountMinor: number }>) =>
      [...xs]
        .sort((a, b) => a.currency.localeCompare(b.currency))
        .map((x) => formatMoney(x.amountMinor, x.currency))
        .join(', ') || 'none';
    for (const { period } of periods) {
      const exportFile = path.join(opts.outDir, `${tenant}-${period}.csv`);
      const out = createWriteStream(exportFile);
      const exported = await writeExport(pool, { tenant, period, format: 'csv', out });
      await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
      // Per currency, from the file itself (amount_minor and currency columns).
      const fileSums = new Map<string, number>();
      for (const line of (await readFile(exportFile, 'utf8')).trimEnd().split('\r\n').slice(1)) {
        const cells = line.split(',');
        fileSums.set(cells[15], (fileSums.get(cells[15]) ?? 0) + Number(cells[13]));
      }
      const ledger = await ledgerTotals(pool, tenant, period);
      const statement = await buildStatement(pool, { tenant, period });
      exports.push({
        file: exportFile,
        period,
        fileTotals: key([...fileSums].map(([currency, amountMinor]) => ({ currency, amountMinor }))),
        exported: key(exported.byCurrency),
        ledger: key(ledger.byCurrency),
        statement: key(statement.totals),
      });
      console.log(
        `\nfinance export: ${exportFile}: ${plural(exported.lines, 'line')} (${plural(exported.charges, 'charge')}, ${plural(exported.credits, 'credit')}), total ${describeTotals(exported.byCurrency)}`,
      );
      console.log(`\n${formatStatement(statement)}`);
    }

    const {
      rows: [dup],
    } = await pool.query<{ charges: number; outcomes: number }>(
      `select count(*)::int as charges, count(distinct outcome_id)::int as outcomes from ledger_entries where tenant_id = $1 and kind = 'charge'`,
      [tenant],
    );
    const reopened = [...ds.kinds.entries()].find(([, k]) => k === 'reopened_resolved')![0];
    console.log(`\nwhy was ${reopened} billed? (recon outcome show --tenant ${tenant} --subject ${reopened})`);
    console.log(formatStory(await explainOutcome(pool, await findOutcomeId(pool, { tenant, subject: reopened }))));
    console.log(
      `\nand the credited one? (recon outcome show --tenant ${tenant} --subject ${story.billedUpheld!.subject})`,
    );
    console.log(formatStory(await explainOutcome(pool, story.billedUpheld!.outcomeId)));
    // An outcome's lines through its charge's key (the ledger has no index on outcome_id).
    const states = async (o: { outcomeId: number }) => {
      const {
        rows: [row],
      } = await pool.query<Pick<OutcomeRow, 'state' | 'reject_reason'>>(
        'select state, reject_reason from outcomes where outcome_id = $1',
        [o.outcomeId],
      );
      const charge = await chargeOfOutcome(pool, o.outcomeId);
      const net = (await linesOfOutcome(pool, o.outcomeId)).reduce((sum, l) => sum + l.amount_minor, 0);
      return { ...row, net, charged_at: charge?.as_of ?? null };
    };
    const [upheld, rejected, credited] = [
      await states(story.inGraceUpheld!),
      await states(story.rejected!),
      await states(story.billedUpheld!),
    ];

    // Support's last credit came after the last night: the delivery loop the night leaves behind,
    // or `recon sink retry`, would send it; the demo asks the loop to finish before it compares.
    const loop = await wakeDeliveryLoop(client, { tenant, taskQueue, waitMs: 60_000 });
    if (loop.state !== 'finished') throw new Error(`demo: the delivery loop did not finish (${loop.state})`);
    const sinkStatus = await tenantSinkStatus(pool, { tenant });
    console.log(`\nwhat Stripe holds (recon sink status --tenant ${tenant}):`);
    console.log(formatSinkStatus(sinkStatus));
    const reconciled = [];
    for (const { period } of periods) {
      const report = await reconcileSinksViaTemporal(client, { tenant, period, taskQueue, timeoutMs: 60_000 });
      console.log(`\nrecon sink reconcile --tenant ${tenant} --period ${period}`);
      console.log(formatReconcile(report));
      reconciled.push(report);
    }
    const invoiced = stripe.invoiceItems().reduce((n, i) => n + i.amount, 0);
    const { rows: ledgerSum } = await pool.query<{ amount: number; lines: number }>(
      'select coalesce(sum(amount_minor), 0)::bigint as amount, count(*)::int as lines from ledger_entries where tenant_id = $1',
      [tenant],
    );

    const { rows: globexRecords } = await pool.query<{ imports: number; from_files: number; versions: number }>(
      `select count(*)::int as imports, count(*) filter (where origin not like 'helpdesk@%')::int as from_files,
              coalesce(sum(accepted), 0)::int as versions
         from imports where tenant_id = $1 and kind = 'records'`,
      [GLOBEX],
    );
    const { rows: voidedBilled } = await pool.query<{ n: number }>(
      `select count(*)::int as n from outcomes where tenant_id = $1 and subject_ref = any($2) and state = 'billed'`,
      [GLOBEX, globex.voided()],
    );
    console.log(`\nrecon source status --tenant ${GLOBEX}`);
    console.log(formatSourceStatus(GLOBEX, await sourceStatus(pool, GLOBEX)));

    console.log('\nchecks:');
    check(totals.reopened > 0, `reopens voided ${totals.reopened} outcomes in grace`);
    check(
      totals.duplicates > 0 && dup.charges === dup.outcomes,
      `${totals.duplicates} duplicate claims, no outcome billed twice (${dup.charges} charges for ${dup.outcomes} outcomes)`,
    );
    check(totals.quarantined > 0, `${totals.quarantined} malformed rows quarantined, the good rows landed`);
    for (const e of exports) {
      check(
        e.fileTotals === e.ledger && e.exported === e.ledger && e.statement === e.ledger,
        `${path.basename(e.file)}: export total ${e.fileTotals} = statement total ${e.statement} = ledger total ${e.ledger} (per currency, to the minor unit)`,
      );
      const fromSummaries = [...summarised]
        .filter(([k]) => k.startsWith(`${e.period} `))
        .map(([k, amountMinor]) => ({ currency: k.slice(8), amountMinor }));
      check(
        key(fromSummaries) === e.statement,
        `${e.period}: the nightly summaries (base fee, charges, support's credits between nights) = statement total ${e.statement}`,
      );
    }
    check(
      baseFeesSummarised > 0 && creditsSummarised > 0,
      `the nightly summaries show the base fee and the credits the statement shows (${plural(baseFeesSummarised, 'base fee line')}, ${plural(creditsSummarised, 'credit')})`,
    );
    check(
      upheld.state === 'rejected' && upheld.reject_reason === 'dispute_upheld' && upheld.net === 0,
      `${story.inGraceUpheld!.subject}: disputed in grace, upheld, never billed`,
    );
    check(
      rejected.state === 'billed' && rejected.charged_at?.getTime() === ds.nights[5].getTime(),
      `${story.rejected!.subject}: held while disputed, rejected, billed the next night`,
    );
    check(
      credited.state === 'credited' && credited.net === 0,
      `${story.billedUpheld!.subject}: billed, disputed, upheld, credited: net 0`,
    );
    const delivered = sinkStatus.sinks[0]?.states.delivered;
    check(
      delivered?.lines === ledgerSum[0].lines && invoiced === Number(ledgerSum[0].amount),
      `Stripe holds every ledger line once: ${stripe.invoiceItems().length} invoice items for ${ledgerSum[0].lines} lines, ${formatMoney(invoiced, contract.currency)} = the ledger's ${formatMoney(Number(ledgerSum[0].amount), contract.currency)}`,
    );
    check(
      globexBilled === globex.expectedBilled(ds.nights[ds.nights.length - 1]) &&
        globexRecords[0].from_files === 0 &&
        globex.voided().length === 2 &&
        voidedBilled[0].n === 0,
      `${GLOBEX}: ${globexBilled} outcomes billed from ${globexRecords[0].versions} ticket versions pulled from Zendesk in ${globexRecords[0].imports} pages, none exported to a file; the reopened and the deleted ticket were not billed`,
    );
    check(
      reconciled.every((r) => r.differences.length === 0),
      `recon sink reconcile: 0 differences in ${plural(reconciled.length, 'period')}`,
    );
  } finally {
    worker?.shutdown();
    await running?.catch(() => undefined);
    await connection.close().catch(() => undefined);
    await client.connection.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await claimsApi.close();
    await stripe.close();
    await globex?.close();
    await stack.stop();
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    log('[demo] stopped the local stack');
  }
}
