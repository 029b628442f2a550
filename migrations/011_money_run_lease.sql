-- One run at a time per tenant. The run's first activity takes the tenant's lease; every
-- activity of the run refreshes heartbeat_at; the run's report (or its failure) releases it.
-- A lease whose heartbeat is old belongs to a run that crashed or was terminated: the next run
-- takes it over. Released leases stay (released_at set): no role deletes rows.
create table run_leases (
  tenant_id    text primary key references tenants,
  run_id       bigint not null,
  workflow_id  text not null,
  as_of        timestamptz not null,
  taken_at     timestamptz not null default now(),
  heartbeat_at timestamptz not null default now(),
  released_at  timestamptz
);

alter table run_leases enable row level security;
create policy tenant_scope on run_leases
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

grant select, insert, update on run_leases to recon_worker;

-- When the current execution of a run began: the summary counts what this execution added.
alter table runs add column attempt_started_at timestamptz;
