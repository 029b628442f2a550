-- The run refreshes planner statistics after the night's imports (src/reconcile/statistics.ts).
-- ANALYZE needs ownership or, from PostgreSQL 17, the MAINTAIN privilege; without it the worker
-- role gets a warning only and the first chunks are planned on stale figures. Older servers keep
-- relying on autovacuum.
do $$
begin
  if current_setting('server_version_num')::int >= 170000 then
    execute 'grant maintain on claims, outcomes, records, record_versions to recon_worker';
  end if;
end
$$;
