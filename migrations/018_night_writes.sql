-- The night writes every outcome three times (created at attach, decided at evaluate, billed at
-- post), each claim once (attach), and one or two events per outcome. A write that is not HOT
-- (every state change: the state is in the partial indexes' predicates) inserts into every index of
-- the table, and every inserted or updated row that references an outcome checks that reference
-- with an index probe and a row lock on the outcome (a WAL record and a dirtied page per row).
-- No fill factor: the night's own state changes (not HOT) use up any room left on a page before an
-- unchanged re-evaluation could use it (measured: 11 of ~1,050 HOT at fillfactor 85 and at 100).

-- The run report counts the outcomes a run created (`created_run_id = $1`), once per run. A b-tree
-- took an entry at the insert and another at each of the two updates that follow; a BRIN index
-- summarises block ranges and takes no entry per row version. A run's outcomes are appended
-- together, so the ranges it finds are the run's own blocks (the last ones of the table).
drop index outcomes_created_run_idx;
create index outcomes_created_run_brin on outcomes using brin (created_run_id);

-- The references to outcomes from the rows the night writes for them (claims at attach, events at
-- evaluate and post), and from outcomes to their tenant, were checked per row:
-- EXPLAIN ANALYZE of a 10,000-claim
-- attach the outcome's tenant check 28 of 116 ms. Outcomes and tenants are never deleted (no role
-- has the grant, nothing in the product deletes one, and the ledger is append-only), and each
-- writer takes the id from the parent row itself: attach from the claim's own tenant (its import
-- checked it) and from the probe of the subject key in the same transaction; events, charges and
-- credits from the outcome or charge they have just updated, locked or read. The ledger keeps its
-- references (a line to its outcome, a credit to its charge): a billed line that points at nothing
-- could not be explained, and the ledger is the one table whose integrity we do not trade for speed.
alter table outcome_events drop constraint outcome_events_outcome_id_fkey;
alter table claims drop constraint claims_outcome_id_fkey;
alter table outcomes drop constraint outcomes_tenant_id_fkey;
