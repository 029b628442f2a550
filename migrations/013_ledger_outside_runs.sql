-- The nightly summary reports the lines no run wrote (support's dispute credits) since the
-- tenant's previous run. Those are few; a partial index finds them without reading the ledger.
create index ledger_outside_runs on ledger_entries (tenant_id, created_at) where run_id is null;
