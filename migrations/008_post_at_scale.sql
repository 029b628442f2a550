-- Post at scale: every charge the night posts writes a ledger line, moves its outcome to billed and
-- writes an event, so each index on those rows is paid once per charge.

-- One index keeps a run's transitions unique and finds them by run. (run_id, outcome_id, kind) holds
-- the same uniqueness as (outcome_id, run_id, kind) did (the writes say `on conflict do nothing`
-- without naming it) and leads with the run, which is how the run report reads them: every event
-- written, at evaluate and at post, maintains one index fewer. Lookups by outcome keep
-- outcome_events_outcome_idx.
drop index outcome_events_run_idx;
drop index outcome_events_run_once;
create unique index outcome_events_run_once on outcome_events (run_id, outcome_id, kind) where run_id is not null;

-- The checks of references to tenants and runs on the two tables every charge and every transition
-- write to: per row, they were the largest part of posting a chunk (a third of the ledger insert's
-- time, and of the event insert's). Tenants and runs are never deleted (no role has the grant, and
-- the ledger is append-only); the tenant and run of these rows come from the run that writes them.
-- The references to outcomes and between ledger lines stay: they tie a line to what it bills.
alter table ledger_entries drop constraint ledger_entries_tenant_id_fkey;
alter table ledger_entries drop constraint ledger_entries_run_id_fkey;
alter table outcome_events drop constraint outcome_events_run_id_fkey;
