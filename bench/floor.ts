import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

/**
 * The raw-SQL floor: the least work a hand-written script needs for the same night on the same
 * data. COPY both files into staging tables, one statement that builds and evaluates every outcome,
 * one that posts the ledger. The success rule is the example contract's, written by hand in SQL;
 * the parsing is strict enough to drop exactly the rows the product quarantines in this data set.
 */

export interface FloorInput {
  claimsFile: string;
  recordsFile: string;
  asOf: Date;
  /** When the files arrived: stands in for a missing retraction or update time, as in the product. */
  importedAt: Date;
  timeZone: string;
  period: string;
  unitPrice: string;
  unitMinor: number;
  graceHours: number;
  existing: number;
}

export interface LedgerCheck {
  count: number;
  totalMinor: number;
  /** md5 of the billed primary claim ids in code-unit order: the same outcomes, not just as many. */
  fingerprint: string;
}

export interface FloorResult {
  phases: Array<{ name: string; seconds: number }>;
  outcomes: number;
  ledger: LedgerCheck;
}

const SCHEMA = `
  create unlogged table claims_raw (n bigint generated always as identity, line text);
  create unlogged table records_raw (n bigint generated always as identity, ticket_id text, status text, solved_at text, updated_at text, csat text);
  create table outcomes (
    outcome_id bigserial primary key, outcome_type text not null, subject_key text not null, subject_ref text not null,
    state text not null, primary_claim_id text, claim_count int not null, record_external_id text, evidence_at timestamptz,
    success_at timestamptz, grace_ends_at timestamptz, evidence_due_at timestamptz, unique (outcome_type, subject_key));
  -- The same shortcut the product has (outcomes_open_idx): posting never scans settled history.
  create index outcomes_confirmed_idx on outcomes (outcome_id) where state = 'confirmed';
  create table ledger (
    entry_id bigserial primary key, idempotency_key text not null unique, outcome_id bigint not null references outcomes,
    subject_ref text not null, primary_claim_id text not null, period text not null, unit_price text not null,
    amount_minor bigint not null, as_of timestamptz not null, success_at timestamptz, evidence jsonb not null, period_position int not null);
  create index ledger_period_idx on ledger (period, entry_id);`;

/** Settled history from earlier months, so an incremental night has the same tables to live beside. */
const SEED_EXISTING = [
  `insert into outcomes (outcome_type, subject_key, subject_ref, state, primary_claim_id, claim_count, record_external_id, success_at)
   select 'resolved_ticket', 'h-' || lpad(i::text, 9, '0'), 'H-' || lpad(i::text, 9, '0'), 'billed', 'h-' || lpad(i::text, 9, '0'), 1,
          'H-' || lpad(i::text, 9, '0'), timestamptz '2026-09-01' + (i % 2000000) * interval '1 second'
     from generate_series(1, $1::int) i`,
  `insert into ledger (idempotency_key, outcome_id, subject_ref, primary_claim_id, period, unit_price, amount_minor, as_of, success_at, evidence, period_position)
   select 'charge:' || outcome_id, outcome_id, subject_ref, primary_claim_id, '2026-09', '0.99', 99, timestamptz '2026-10-01', success_at, '{}', outcome_id
     from outcomes where state = 'billed'`,
];

// Only the ISO 8601 forms the generator writes (with an offset); anything else is bad, as in the product.
const ISO = `'^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$'`;
const DECIMAL = `'^[+-]?(\\d+(\\.\\d*)?|\\.\\d+)([eE][+-]?\\d+)?$'`;
// Casts sit inside CASE so that no plan order can evaluate one on a bad value.
const ts = (x: string) =>
  `(case when ${x} ~ ${ISO} and pg_input_is_valid(${x}, 'timestamptz') then ${x}::timestamptz end)`;
const blank = (x: string) => `coalesce(btrim(${x}), '') = ''`;

/** Builds every outcome of the night and decides it: match, latest version in effect, success rule, grace. */
const EVALUATE = `
insert into outcomes (outcome_type, subject_key, subject_ref, state, primary_claim_id, claim_count, record_external_id,
                      evidence_at, success_at, grace_ends_at, evidence_due_at)
with parsed as materialized (
  -- Materialized so each line is parsed once, not once per field read from it.
  select n, case when pg_input_is_valid(line, 'jsonb') then line::jsonb end as j from claims_raw
), lines as (
  select n, btrim(j->>'claim_id') as claim_id, btrim(j->>'outcome_type') as outcome_type, btrim(j->>'subject_ref') as subject_ref,
         j->>'occurred_at' as occurred_text, ${ts(`(j->>'occurred_at')`)} as occurred_at,
         coalesce(j->>'retracted', 'false') in ('true', 'TRUE', '1', 'yes') as retract,
         j->>'retracted_at' as retracted_text, ${ts(`(j->>'retracted_at')`)} as retracted_at
    from parsed where jsonb_typeof(j) = 'object' and not ${blank(`j->>'claim_id'`)}
), claims as (
  -- The first good row of each claim id wins; later ones are redeliveries or conflicts.
  select distinct on (claim_id) claim_id, outcome_type, subject_ref, lower(subject_ref) as subject_key, occurred_at
    from lines where not retract and outcome_type = 'resolved_ticket' and subject_ref <> '' and occurred_at is not null
   order by claim_id, n
), retractions as (
  select distinct on (claim_id) claim_id, coalesce(retracted_at, $2::timestamptz) as retracted_at
    from lines where retract and (retracted_text is null or retracted_at is not null)
   order by claim_id, n
), visible as (
  select c.*, (r.retracted_at is null or r.retracted_at > $1) as live
    from claims c left join retractions r using (claim_id) where c.occurred_at <= $1
), subjects as (
  select outcome_type, subject_key, count(*)::int as claim_count,
         (array_agg(subject_ref order by occurred_at, claim_id collate "C"))[1] as subject_ref,
         (array_agg(claim_id order by occurred_at, claim_id collate "C") filter (where live))[1] as primary_claim_id,
         (array_agg(claim_id order by occurred_at, claim_id collate "C"))[1] as first_claim_id,
         min(occurred_at) filter (where live) as primary_at
    from visible group by outcome_type, subject_key
), typed as materialized (
  -- Each cell converted once; a row with any bad cell is dropped below, as the product quarantines it.
  select n, btrim(ticket_id) as external_id, status, solved_at as solved_text, ${ts('btrim(solved_at)')} as solved_at,
         updated_at as updated_text, ${ts('btrim(updated_at)')} as updated_at,
         csat as csat_text, case when btrim(csat) ~ ${DECIMAL} then btrim(csat)::numeric end as csat
    from records_raw
), recs as (
  select n, external_id, lower(external_id) as match_key, status, solved_at, coalesce(updated_at, $2::timestamptz) as effective_at, csat
    from typed
   where coalesce(external_id, '') <> ''
     and (${blank('solved_text')} or solved_at is not null)
     and (${blank('updated_text')} or updated_at is not null)
     and (${blank('csat_text')} or csat is not null)
), versions as (
  -- The example contract's rule: status in (solved, closed), solved_at exists, not csat <= 1.
  select external_id, match_key, effective_at, solved_at, n,
         coalesce(status in ('solved', 'closed') and solved_at is not null and not coalesce(csat <= 1, false), false) as passes
    from recs where effective_at <= $1
), ordered as (
  select v.*, row_number() over (partition by external_id order by effective_at desc, n desc) as recency,
         max(effective_at) filter (where not passes) over (partition by external_id) as last_fail_at
    from versions v
), records as (
  select external_id,
         max(match_key) filter (where recency = 1) as match_key,
         bool_or(passes) filter (where recency = 1) as holds,
         max(solved_at) filter (where recency = 1) as own_success_at,
         max(effective_at) filter (where recency = 1) as evidence_at,
         max(last_fail_at) as last_fail_at,
         -- The current passing streak: it began after the last failing version.
         min(effective_at) filter (where passes and (last_fail_at is null or effective_at > last_fail_at)) as streak_at
    from ordered group by external_id
), matched as (
  -- A key carried by two records is ambiguous: the outcome waits.
  select match_key, count(*) as records, min(external_id) as external_id, bool_and(holds) as holds, min(evidence_at) as evidence_at,
         min(last_fail_at) as last_fail_at,
         min(case when last_fail_at > own_success_at then streak_at else own_success_at end) as success_at
    from records group by match_key
), decided as (
  select s.*, m.external_id, m.evidence_at,
         case when m.records = 1 and m.holds then m.success_at end as success_at,
         case when m.records = 1 and m.holds then m.success_at + make_interval(hours => $3) end as grace_ends_at,
         -- Approximates the product's last reopen by the last failing version; billing does not depend on it.
         ((greatest(s.primary_at, m.last_fail_at) at time zone $4) + interval '7 days') at time zone $4 as due_at
    from subjects s left join matched m on m.match_key = s.subject_key and m.records = 1
)
select outcome_type, subject_key, subject_ref,
       case when primary_claim_id is null then 'rejected'
            when grace_ends_at <= $1 then 'confirmed'
            when grace_ends_at is not null then 'in_grace'
            when due_at < $1 then 'rejected'
            else 'awaiting_evidence' end,
       coalesce(primary_claim_id, first_claim_id), claim_count, external_id, evidence_at, success_at, grace_ends_at,
       case when grace_ends_at is null then due_at end
  from decided
on conflict (outcome_type, subject_key) do nothing`;

/** Charges every confirmed outcome once (the key makes a repeat nothing) and marks it billed. */
const POST = `
with due as (
  select outcome_id, subject_ref, primary_claim_id, success_at, record_external_id, evidence_at,
         row_number() over (order by success_at, outcome_id) as position
    from outcomes where state = 'confirmed'
), posted as (
  insert into ledger (idempotency_key, outcome_id, subject_ref, primary_claim_id, period, unit_price, amount_minor, as_of, success_at, evidence, period_position)
  select 'charge:' || outcome_id, outcome_id, subject_ref, primary_claim_id, $2, $3, $4, $1, success_at,
         jsonb_build_object('source', 'helpdesk', 'externalId', record_external_id, 'effectiveAt', evidence_at), position
    from due
  on conflict (idempotency_key) do nothing
  returning outcome_id)
update outcomes o set state = 'billed' from posted p where o.outcome_id = p.outcome_id`;

async function timed(phases: FloorResult['phases'], name: string, fn: () => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  await fn();
  phases.push({ name, seconds: (performance.now() - t0) / 1000 });
}

/** Creates `database` next to the project's on the same server and runs the floor there. */
export async function runFloor(serverUrl: string, database: string, input: FloorInput): Promise<FloorResult> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${database}`);
    await admin.query(`create database ${database}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  try {
    await db.query(`set timezone = 'UTC'`);
    // Staged JSON and CSV text has no useful statistics: the planner guesses one row per CTE and
    // picks nested loops, which go quadratic (150 s instead of 4 s at 20k claims). Every join here
    // is a bulk join, and a hand-written batch script may say so.
    await db.query('set enable_nestloop = off');
    await db.query(SCHEMA);
    if (input.existing > 0) {
      await db.query(SEED_EXISTING[0], [input.existing]);
      await db.query(SEED_EXISTING[1]);
      // As the project's seed (bench/existing.ts): vacuumed, analyzed and checkpointed.
      await db.query('vacuum analyze');
      await db.query('checkpoint');
    }
    const phases: FloorResult['phases'] = [];
    // Raw lines: \x01 and \x02 never occur in the JSONL, so CSV mode passes each line through untouched.
    await timed(phases, 'copy claims', () =>
      pipeline(
        createReadStream(input.claimsFile),
        db.query(copyFrom(`copy claims_raw (line) from stdin with (format csv, delimiter e'\\x01', quote e'\\x02')`)),
      ),
    );
    await timed(phases, 'copy records', () =>
      pipeline(
        createReadStream(input.recordsFile),
        db.query(
          copyFrom(
            `copy records_raw (ticket_id, status, solved_at, updated_at, csat) from stdin with (format csv, header true)`,
          ),
        ),
      ),
    );
    let outcomes = 0;
    await timed(phases, 'evaluate', async () => {
      outcomes =
        (await db.query(EVALUATE, [input.asOf, input.importedAt, input.graceHours, input.timeZone])).rowCount ?? 0;
    });
    await timed(phases, 'post', () => db.query(POST, [input.asOf, input.period, input.unitPrice, input.unitMinor]));
    const {
      rows: [l],
    } = await db.query<{ count: number; total: string; fingerprint: string }>(
      `select count(*)::int as count, coalesce(sum(amount_minor), 0)::text as total,
              coalesce(md5(string_agg(primary_claim_id, ',' order by primary_claim_id collate "C")), '') as fingerprint
         from ledger where as_of = $1`,
      [input.asOf],
    );
    return { phases, outcomes, ledger: { count: l.count, totalMinor: Number(l.total), fingerprint: l.fingerprint } };
  } finally {
    await db.end();
  }
}
