import type { Pool, PoolClient } from '../db/pool';
import { inTransaction } from '../db/pool';
import { pricingOf, type ContractVersion } from '../domain/contract';
import { contractHistory, versionForPricing, versionForRun, type ContractHistory } from '../domain/contract-history';
import { billingPeriodOf } from '../domain/periods';
import type { PeriodUsage, PricedLine, Pricing } from '../domain/pricing/schema';
import { priceNextOutcomes } from '../domain/pricing/tiers';
import { recordAlerts } from './alerts';
import { loadPriceIndex, multiplierAt, type IndexPoint } from './price-index';
import { chargeKeySql, type LedgerLine } from '../ledger';
import { openPeriodFor } from './period-close';

export interface PostResult {
  posted: number;
  amountMinor: number;
  lastOutcomeId: number;
  done: boolean;
}

/** A charge the chunk's statement inserted (not one an earlier attempt already wrote). */
type ChargedLine = Pick<LedgerLine, 'entry_id' | 'amount_minor'> & { outcome_id: number };

interface ConfirmedRow {
  outcome_id: number;
  outcome_type: string;
  subject_ref: string;
  primary_claim_id: string;
  success_at: Date;
  evidence_version_id: number | null;
  source: string | null;
  external_id: string | null;
  effective_at: Date | null;
}

/** What the period already holds for each outcome type (credits do not give capacity back): one row per type, kept by a trigger on the ledger. */
async function usageByType(db: PoolClient, tenant: string, period: string): Promise<Map<string, PeriodUsage>> {
  const { rows } = await db.query<{ outcome_type: string; charges: number; usage_minor: number; capped: number }>(
    'select outcome_type, charges, usage_minor, capped from period_usage where tenant_id = $1 and period = $2',
    [tenant, period],
  );
  return new Map(
    rows.map((r) => [r.outcome_type, { count: r.charges, usageMinor: Number(r.usage_minor), capped: r.capped }]),
  );
}

/**
 * Prices the rows in their order, threading each type's usage through. A run of consecutive rows
 * under the same terms (type, contract version, index multiplier) is priced in one call: pricing n
 * outcomes at once gives the same lines as pricing them one by one (the pricing property tests hold
 * it to that), without resolving the terms again for every outcome.
 */
function priceInOrder(
  rows: ConfirmedRow[],
  history: ContractHistory,
  index: IndexPoint[],
  usage: Map<string, PeriodUsage>,
) {
  const pricings = new Map<ContractVersion, Map<string, Pricing>>();
  const termsOf = (r: ConfirmedRow) => {
    const version = versionForPricing(history, r.outcome_type, r.success_at);
    let byType = pricings.get(version);
    if (!byType) pricings.set(version, (byType = new Map<string, Pricing>()));
    let pricing = byType.get(r.outcome_type);
    if (!pricing) byType.set(r.outcome_type, (pricing = pricingOf(version.body.outcomeTypes[r.outcome_type])));
    const multiplier = pricing.indexSeries ? multiplierAt(index, pricing.indexSeries, r.success_at) : undefined;
    return { version, pricing, multiplier };
  };
  const out: Array<{ r: ConfirmedRow; line: PricedLine; version: ContractVersion; currency: string }> = [];
  let i = 0;
  while (i < rows.length) {
    const first = rows[i];
    const { version, pricing, multiplier } = termsOf(first);
    let j = i + 1;
    while (j < rows.length && rows[j].outcome_type === first.outcome_type) {
      const next = termsOf(rows[j]);
      if (next.version !== version || next.multiplier !== multiplier) break;
      j++;
    }
    const currency = version.body.currency;
    const before = usage.get(first.outcome_type) ?? { count: 0, usageMinor: 0, capped: 0 };
    const { lines, after } = priceNextOutcomes(pricing, currency, before, j - i, multiplier);
    usage.set(first.outcome_type, after);
    for (let k = 0; k < lines.length; k++) out.push({ r: rows[i + k], line: lines[k], version, currency });
    i = j;
  }
  return out;
}

type PostArgs = {
  tenant: string;
  runId: number;
  asOf: Date;
  versions: ContractVersion[];
  timeZone: string;
  limit: number;
};

/** What pricing a chunk needs besides its rows and the period's usage; read once per call. */
interface PostTerms {
  history: ContractHistory;
  current: ContractVersion;
  index: IndexPoint[];
}

async function termsFor(pool: Pool, args: PostArgs): Promise<PostTerms> {
  const index = await loadPriceIndex(pool, args.tenant);
  const history = contractHistory(args.tenant, args.versions);
  return { history, current: versionForRun(history, args.asOf), index };
}

/** Where a chunk written behind another starts: after that chunk's last outcome, from the usage it leaves. */
interface Chain {
  period: string;
  usage: Map<string, PeriodUsage>;
  successAt: Date;
  outcomeId: number;
}

type PricedRow = ReturnType<typeof priceInOrder>[number];

interface Plan {
  rows: ConfirmedRow[];
  period: string;
  before: Map<string, PeriodUsage>;
  after: Map<string, PeriodUsage>;
  lines: PricedRow[];
}

const copyUsage = (m: Map<string, PeriodUsage>) => new Map([...m].map(([k, v]) => [k, { ...v }]));

/**
 * The run's next confirmed outcomes in pricing order, locked. Chosen and locked inside the
 * transaction: a dispute opened meanwhile (it locks the same row) either lands first and keeps the
 * outcome out, or waits until it is billed. A chained chunk starts after the chunk before it,
 * whose outcomes are still `confirmed` until that chunk commits.
 */
async function selectConfirmed(db: PoolClient, args: PostArgs, after: Chain | null): Promise<ConfirmedRow[]> {
  const { rows } = await db.query<ConfirmedRow>(
    `select o.outcome_id, o.outcome_type, o.subject_ref, o.primary_claim_id, o.success_at, o.evidence_version_id,
            r.source, r.external_id, v.effective_at
       from outcomes o
       left join record_versions v on v.version_id = o.evidence_version_id
       left join records r on r.record_id = o.record_id
      where o.tenant_id = $1 and o.state = 'confirmed' and not o.on_hold and o.confirmed_as_of = $2
        ${after ? 'and (o.success_at, o.outcome_id) > ($4, $5)' : ''}
      order by o.success_at, o.outcome_id limit $3
      for update of o`,
    after
      ? [args.tenant, args.asOf, args.limit, after.successAt, after.outcomeId]
      : [args.tenant, args.asOf, args.limit],
  );
  return rows;
}

/** The chunk's priced lines as one unnest (`l`), optionally with the entry ids reserved for them ($22). */
const linesCte = (withIds: boolean) => `l as (
       select outcome_id, outcome_type, subject_ref, unit_price, amount_minor, contract_version, primary_claim_id, source, external_id,
              version_id, effective_at, success_at, basis, tier, position, currency${withIds ? ', entry_id' : ''}
         from unnest($6::bigint[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::int[], $12::text[],
                            $13::text[], $14::text[], $15::bigint[], $16::text[],
                            $17::timestamptz[], $18::text[], $19::int[], $20::int[], $21::text[]${withIds ? ', $22::bigint[]' : ''})
            as l(outcome_id, outcome_type, subject_ref, unit_price, amount_minor, contract_version, primary_claim_id,
                 source, external_id, version_id, effective_at,
                 success_at, basis, tier, position, currency${withIds ? ', entry_id' : ''})
     )`;

/** Inserts the lines of `l`; a line whose key exists (an earlier attempt's) is not written again. */
const insertLines = (
  withIds: boolean,
) => `insert into ledger_entries (${withIds ? 'entry_id, ' : ''}tenant_id, idempotency_key, kind, outcome_id, outcome_type, subject_ref, period, currency,
                                   unit_price, amount_minor, contract_version, run_id, as_of, primary_claim_id, evidence, success_at,
                                   pricing_basis, tier, period_position, corrects_period)
       select ${withIds ? 'l.entry_id, ' : ''}$1, ${chargeKeySql('l.outcome_id')}, 'charge', l.outcome_id, l.outcome_type, l.subject_ref, $2, l.currency, l.unit_price,
              l.amount_minor, l.contract_version, $3, $4, l.primary_claim_id,
              jsonb_build_object('source', l.source, 'externalId', l.external_id, 'versionId', l.version_id, 'effectiveAt', l.effective_at),
              l.success_at, l.basis, l.tier, l.position, nullif($5, $2)
         from l
       on conflict (idempotency_key) do nothing
       returning entry_id, outcome_id, amount_minor, pricing_basis`;

/** Marks every picked outcome billed (a charge already posted by an earlier attempt included). */
const BILLED = `update outcomes set state = 'billed', updated_at = now()
        where outcome_id = any($6::bigint[]) and state = 'confirmed'`;

/** The `billed` event of each charge in `c` (entry_id, outcome_id, amount_minor, pricing_basis). */
const billedEvents = (c: string, p = { period: '$2', run: '$3', asOf: '$4' }) =>
  `insert into outcome_events (outcome_id, run_id, as_of, kind, from_state, to_state, reason, details)
       select c.outcome_id, ${p.run}, ${p.asOf}, 'billed', 'confirmed', 'billed',
              'charged ' || c.amount_minor || ' minor units in ' || ${p.period} || ' (' || c.pricing_basis || ')',
              jsonb_build_object('entryId', c.entry_id, 'period', ${p.period}::text, 'basis', c.pricing_basis)
         from ${c} c
       on conflict do nothing`;

function lineParams(args: PostArgs, plan: Plan, entryIds: number[] | null): unknown[] {
  const { lines } = plan;
  return [
    args.tenant,
    plan.period,
    args.runId,
    args.asOf,
    billingPeriodOf(args.asOf, args.timeZone),
    lines.map((l) => l.r.outcome_id),
    lines.map((l) => l.r.outcome_type),
    lines.map((l) => l.r.subject_ref),
    lines.map((l) => l.line.unitPrice),
    lines.map((l) => l.line.amountMinor),
    lines.map((l) => l.version.version),
    lines.map((l) => l.r.primary_claim_id),
    lines.map((l) => l.r.source),
    lines.map((l) => l.r.external_id),
    lines.map((l) => l.r.evidence_version_id),
    lines.map((l) => l.r.effective_at?.toISOString() ?? null),
    lines.map((l) => l.r.success_at),
    lines.map((l) => l.line.basis),
    lines.map((l) => l.line.tier),
    lines.map((l) => l.line.position),
    lines.map((l) => l.currency),
    ...(entryIds ? [entryIds] : []),
  ];
}

type Charged = ChargedLine & { pricing_basis: string };

/**
 * The three writes in one statement: one round trip, and the chunk's lines are read once. The
 * update marks every picked outcome billed; an event is written only for a charge this statement
 * inserted.
 */
async function writeCharges(db: PoolClient, args: PostArgs, plan: Plan): Promise<Charged[]> {
  const { rows } = await db.query<Charged>(
    `with ${linesCte(false)}, charged as (
       ${insertLines(false)}
     ), billed as (
       ${BILLED}
     ), events as (
       ${billedEvents('charged')}
     )
     select entry_id, outcome_id, amount_minor, pricing_basis from charged`,
    lineParams(args, plan, null),
  );
  return rows;
}

/**
 * The same writes in two statements, for a chunk written beside another: first the outcomes and
 * their events, which touch only this chunk's rows, then the ledger lines, whose statement ends in
 * migration 004's trigger that updates (and locks until commit) the period's usage rows. The
 * caller runs the second only once the chunk ahead has run its own, so the usage rows are taken in
 * chunk order and neither chunk waits for a row the other holds. The lines take the entry ids
 * reserved for them, so the events can name them before they exist; an event is written only for
 * a line that will be inserted: one whose key is not in the ledger yet (this transaction holds the
 * outcome, and only its holder writes its charge).
 */
async function markBilled(db: PoolClient, args: PostArgs, plan: Plan, entryIds: number[]): Promise<void> {
  await db.query(
    `with l as (
       select * from unnest($4::bigint[], $5::bigint[], $6::bigint[], $7::text[]) as l(outcome_id, entry_id, amount_minor, pricing_basis)
     ), fresh as (
       select l.* from l
        where not exists (select 1 from ledger_entries e where e.idempotency_key = ${chargeKeySql('l.outcome_id')})
     ), billed as (
       update outcomes set state = 'billed', updated_at = now()
        where outcome_id = any($4::bigint[]) and state = 'confirmed'
     )
     ${billedEvents('fresh', { period: '$1', run: '$2', asOf: '$3' })}`,
    [
      plan.period,
      args.runId,
      args.asOf,
      plan.lines.map((l) => l.r.outcome_id),
      entryIds,
      plan.lines.map((l) => l.line.amountMinor),
      plan.lines.map((l) => l.line.basis),
    ],
  );
}

async function insertCharges(db: PoolClient, args: PostArgs, plan: Plan, entryIds: number[]): Promise<Charged[]> {
  const { rows } = await db.query<Charged>(
    `with ${linesCte(true)} ${insertLines(true)}`,
    lineParams(args, plan, entryIds),
  );
  return rows;
}

/** The alerts a chunk's lines crossed, in the chunk's transaction. */
function recordChunkAlerts(db: PoolClient, args: PostArgs, terms: PostTerms, plan: Plan): Promise<void> {
  return recordAlerts(db, {
    tenant: args.tenant,
    runId: args.runId,
    period: plan.period,
    at: args.asOf,
    current: terms.current,
    before: plan.before,
    after: plan.after,
  });
}

/** One poster per tenant and period at a time: positions in the period must not interleave. */
const pricingLockKey = (tenant: string, period: string) => `pricing:${tenant}:${period}`;

/**
 * Selects, locks and prices a chunk. A first chunk takes the period's pricing lock and reads the
 * period's usage; a chained chunk prices from the usage the chunk before it leaves (checked before
 * it commits, see usageAsPriced). Null when the open period moved since the chunk before.
 */
async function planChunk(db: PoolClient, args: PostArgs, terms: PostTerms, chain: Chain | null): Promise<Plan | null> {
  const rows = await selectConfirmed(db, args, chain);
  if (rows.length === 0) return { rows, period: '', before: new Map(), after: new Map(), lines: [] };
  const period = await openPeriodFor(db, args.tenant, billingPeriodOf(args.asOf, args.timeZone));
  let usage: Map<string, PeriodUsage>;
  if (chain) {
    if (period !== chain.period) return null;
    usage = copyUsage(chain.usage);
  } else {
    await db.query('select pg_advisory_xact_lock(hashtext($1))', [pricingLockKey(args.tenant, period)]);
    usage = await usageByType(db, args.tenant, period);
  }
  const before = copyUsage(usage);
  const lines = priceInOrder(rows, terms.history, terms.index, usage);
  return { rows, period, before, after: usage, lines };
}

/**
 * Whether the period's usage, now that this chunk's lines are counted in it, is exactly the usage
 * the chunk was priced from plus its own lines, for every type it charged. The trigger of migration
 * 004 has updated those rows and this transaction holds them until it commits, so what was
 * committed before it is fixed: equal means no other charge of these types landed between the
 * usage the chunk was priced from and its own (a chunk before it that rolled back, another poster,
 * a line an earlier attempt already wrote), and the chunk's positions are the ones a serial post
 * gives them.
 */
async function usageAsPriced(
  db: PoolClient,
  args: PostArgs,
  plan: Plan,
  inserted: Array<ChargedLine & { pricing_basis: string }>,
): Promise<boolean> {
  const typeOf = new Map(plan.lines.map((l) => [l.r.outcome_id, l.r.outcome_type]));
  const expected = new Map<string, PeriodUsage>();
  for (const c of inserted) {
    const type = typeOf.get(c.outcome_id)!;
    const e = expected.get(type) ?? { ...(plan.before.get(type) ?? { count: 0, usageMinor: 0, capped: 0 }) };
    e.count += 1;
    e.usageMinor += c.amount_minor;
    if (c.pricing_basis === 'capped') e.capped += 1;
    expected.set(type, e);
  }
  if (expected.size === 0) return true;
  const actual = await usageByType(db, args.tenant, plan.period);
  for (const [type, e] of expected) {
    const a = actual.get(type);
    if (!a || a.count !== e.count || a.usageMinor !== e.usageMinor || a.capped !== e.capped) return false;
  }
  return true;
}

/**
 * Entry ids for a chunk's lines, drawn once its outcomes are locked and priced, before the
 * statement that uses them: a chunk behind draws after the chunk ahead, so the ledger's order is
 * the pricing order even while the two statements run together. A chunk that rolls back burns its
 * ids (as a serial post's rolled-back statement burns its sequence values): reusing them for a
 * later chunk could put that chunk ahead of another poster's lines committed meanwhile.
 */
async function drawEntryIds(db: PoolClient, n: number): Promise<number[]> {
  if (n === 0) return [];
  const { rows } = await db.query<{ id: number }>(
    `select nextval('ledger_entries_entry_id_seq') as id from generate_series(1, $1)`,
    [n],
  );
  return rows.map((r) => r.id).sort((a, b) => a - b);
}

type Settled =
  { kind: 'committed'; plan: Plan; inserted: ChargedLine[] } | { kind: 'redo' } | { kind: 'failed'; err: unknown };

interface InFlight {
  client: PoolClient;
  plan: Plan | null;
  /** Resolves once the chunk is planned (null: it failed or must be redone before planning). */
  planned: Promise<Plan | null>;
  /** Resolves once the chunk's ledger statement has returned, or the chunk has settled. */
  written: Promise<void>;
  settled: Promise<Settled>;
  broken: boolean;
}

/**
 * Runs one chunk on `db` in its own transaction. Behind `pred` (the chunk before it, still in
 * flight on the other connection), it commits only after pred has committed, under the pricing
 * lock, and only if the usage it was priced from is what pred left (usageAsPriced); otherwise it
 * rolls back and says `redo`. So what is committed is always a prefix of what a serial post
 * commits, chunk by chunk.
 */
function startChunk(
  db: PoolClient,
  args: PostArgs,
  terms: PostTerms,
  chain: Chain | null,
  pred: InFlight | null,
): InFlight {
  let resolvePlanned!: (p: Plan | null) => void;
  let resolveWritten!: () => void;
  const me: InFlight = {
    client: db,
    plan: null,
    planned: new Promise((r) => (resolvePlanned = r)),
    written: new Promise((r) => (resolveWritten = r)),
    settled: Promise.resolve({ kind: 'redo' }),
    broken: false,
  };
  me.settled = (async (): Promise<Settled> => {
    let taken: number[] = [];
    const undo = async (): Promise<Settled> => {
      await db.query('rollback');
      return { kind: 'redo' };
    };
    try {
      await db.query('begin');
      const plan = await planChunk(db, args, terms, chain);
      if (plan) taken = await drawEntryIds(db, plan.lines.length);
      me.plan = plan;
      resolvePlanned(plan);
      if (!plan) return await undo();
      if (plan.lines.length === 0) {
        await db.query('commit');
        return { kind: 'committed', plan, inserted: [] };
      }
      // The outcomes and events beside the chunk ahead's ledger statement; this chunk's ledger
      // statement after it, so that the usage rows its trigger locks are taken in chunk order.
      await markBilled(db, args, plan, taken);
      if (pred) await pred.written;
      const inserted = await insertCharges(db, args, plan, taken);
      resolveWritten();
      if (pred) {
        const p = await pred.settled;
        if (p.kind !== 'committed') return await undo();
        const {
          rows: [{ locked }],
        } = await db.query<{ locked: boolean }>('select pg_try_advisory_xact_lock(hashtext($1)) as locked', [
          pricingLockKey(args.tenant, plan.period),
        ]);
        // Another poster holds the period: it goes first and this chunk is priced again after it.
        if (!locked || !(await usageAsPriced(db, args, plan, inserted))) return await undo();
      }
      await recordChunkAlerts(db, args, terms, plan);
      await db.query('commit');
      return { kind: 'committed', plan, inserted };
    } catch (err) {
      resolvePlanned(null);
      await db.query('rollback').catch(() => {
        me.broken = true;
      });
      return { kind: 'failed', err };
    } finally {
      resolveWritten();
    }
  })();
  return me;
}

/**
 * A second connection for the chunk behind, when the pool has it to spare now and one more beside
 * it: a post never waits for, or takes the last of, the connections other activities need (a
 * wait longer than the pool's connection timeout fails an activity); it posts one chunk at a time
 * instead.
 */
async function spareConnection(pool: Pool): Promise<PoolClient | null> {
  const free = pool.idleCount + (pool.options.max ?? 10) - pool.totalCount;
  if (free < 2) return null;
  return pool.connect();
}

export interface OverlappedPostResult {
  chunks: number;
  posted: number;
  amountMinor: number;
  lastOutcomeId: number;
  done: boolean;
  /** Chunks rolled back and posted again because their pricing premise did not hold at commit. */
  redone: number;
}

/**
 * Posts up to `maxChunks` chunks as postChunk does, two at a time: while one chunk's ledger lines
 * are written, the next is selected (after the first one's last outcome), priced from the usage the
 * first leaves, and its outcomes marked billed with their events on a second connection. Pricing
 * stays serial (Node prices the chunks in order); the writes overlap. Commits stay in order, and a chunk whose pricing premise no longer
 * holds when it is about to commit is rolled back and redone serially, so the ledger is the one a
 * serial post writes, whatever fails or crashes between the two commits.
 */
export async function postChunksOverlapped(
  pool: Pool,
  args: PostArgs & { maxChunks: number; afterChunk?: (r: PostResult) => Promise<void> },
): Promise<OverlappedPostResult> {
  const terms = await termsFor(pool, args);
  const out: OverlappedPostResult = { chunks: 0, posted: 0, amountMinor: 0, lastOutcomeId: 0, done: false, redone: 0 };
  const state: { failure: { err: unknown } | null } = { failure: null };
  const account = async (s: Settled) => {
    if (s.kind === 'failed') state.failure ??= { err: s.err };
    if (s.kind === 'redo') out.redone++;
    if (s.kind !== 'committed') return;
    out.chunks++;
    const r: PostResult = {
      posted: s.inserted.length,
      amountMinor: s.inserted.reduce((sum, p) => sum + p.amount_minor, 0),
      lastOutcomeId: s.plan.rows.at(-1)?.outcome_id ?? out.lastOutcomeId,
      done: s.plan.rows.length < args.limit,
    };
    out.posted += r.posted;
    out.amountMinor += r.amountMinor;
    out.lastOutcomeId = r.lastOutcomeId;
    if (!state.failure) await args.afterChunk?.(r);
  };

  const first = await pool.connect();
  let second: PoolClient | null | undefined;
  const broken = new Set<PoolClient>();
  // Every chunk started is settled before its connection goes back to the pool, whatever throws;
  // only unsettled ones are kept (a settled chunk's rows and lines are garbage once accounted).
  const unsettled = new Set<InFlight>();
  try {
    let pred: InFlight | null = null;
    let started = 0;
    for (;;) {
      let chain: Chain | null = null;
      let db = first;
      if (pred) {
        const last = pred.plan!.rows.at(-1)!;
        chain = {
          period: pred.plan!.period,
          usage: pred.plan!.after,
          successAt: last.success_at,
          outcomeId: last.outcome_id,
        };
        db = pred.client === first ? second! : first;
      }
      const cur = startChunk(db, args, terms, chain, pred);
      unsettled.add(cur);
      void cur.settled.then(() => {
        if (cur.broken) broken.add(cur.client);
        unsettled.delete(cur);
      });
      started++;
      const plan = await cur.planned;
      let predCommitted = true;
      if (pred) {
        const s = await pred.settled;
        predCommitted = s.kind === 'committed';
        await account(s);
      }
      if (plan && plan.rows.length === args.limit && predCommitted && !state.failure && started < args.maxChunks) {
        if (second === undefined) second = await spareConnection(pool);
        if (second) {
          pred = cur;
          continue;
        }
      }
      const s = await cur.settled;
      await account(s);
      pred = null;
      if (state.failure) throw state.failure.err;
      if (s.kind === 'redo') continue;
      if (s.kind === 'committed' && s.plan.rows.length < args.limit && !chain) {
        // Only a chunk chosen by state, not by the cursor, can tell that nothing is left to post.
        out.done = true;
        break;
      }
      if (started >= args.maxChunks) break;
    }
  } finally {
    await Promise.all([...unsettled].map((f) => f.settled));
    first.release(broken.has(first) ? new Error('connection broken while posting') : undefined);
    second?.release(broken.has(second) ? new Error('connection broken while posting') : undefined);
  }
  return out;
}

/**
 * Posts charges for the next chunk of outcomes this run confirmed and marks them billed, in one
 * transaction. Outcomes are taken in (success_at, outcome id) order within the run, so tiers and
 * caps fall on the same outcomes however often the run is retried; `charge:<outcome>` makes a
 * repeat post nothing, whatever the code does.
 */
export async function postChunk(pool: Pool, args: PostArgs): Promise<PostResult> {
  const terms = await termsFor(pool, args);
  const picked = await inTransaction(pool, async (db) => {
    const plan = (await planChunk(db, args, terms, null))!;
    if (plan.rows.length === 0) return { plan, inserted: [] as ChargedLine[] };
    const inserted = await writeCharges(db, args, plan);
    await recordChunkAlerts(db, args, terms, plan);
    return { plan, inserted };
  });
  const { plan, inserted } = picked;
  if (plan.rows.length === 0) return { posted: 0, amountMinor: 0, lastOutcomeId: 0, done: true };
  return {
    posted: inserted.length,
    amountMinor: inserted.reduce((s, p) => s + p.amount_minor, 0),
    lastOutcomeId: plan.rows[plan.rows.length - 1].outcome_id,
    done: plan.rows.length < args.limit,
  };
}

export type { PricedLine };
