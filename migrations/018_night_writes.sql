-- The night writes every outcome three times (created at attach, decided at evaluate, billed at
-- post), each claim once (attach), and one or two events per outcome. A write that is not HOT
-- (every state change: the state is in the partial indexes' predicates) inserts into every index of
-- the table, and every inserted or updated row that references an outcome checks that reference
-- with an index probe and a row lock on the outcome (a WAL record and a dirtied page per row).

-- The run report counts the outcomes a run created (`created_run_id = $1`), once per run. A b-tree
-- took an entry at the insert and another at each of the two updates that follow; a BRIN index
-- summarises block ranges and takes no entry per row version. A run's outcomes are appended
-- together, so the ranges it finds are the run's own blocks (the last ones of the table).
drop index outcomes_created_run_idx;
create index outcomes_created_run_brin on outcomes using brin (created_run_id);

-- The references from events and claims to outcomes were checked per row. Outcomes are never
-- deleted (no role has the grant; nothing in the product deletes one), and both writers take the id
-- from the outcome row itself: attach from the probe of the subject key just inserted or found in
-- the same transaction, every event writer from the outcome it has just updated or locked. The
-- ledger's reference to outcomes stays: it ties a charge to what it bills, and credits and disputes
-- rely on it.
alter table outcome_events drop constraint outcome_events_outcome_id_fkey;
alter table claims drop constraint claims_outcome_id_fkey;

-- Room on each page for the next version of its rows: a re-evaluation that leaves the state as it
-- was (an outcome still in grace or still awaiting evidence, every night until it settles) changes
-- no indexed column and is HOT when the page has space; a state change stays on its page.
alter table outcomes set (fillfactor = 85);
