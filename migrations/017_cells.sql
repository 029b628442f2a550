-- Tenant cells (issue 15): past one database without a distributed database of our own. A cell is
-- an ordinary PostgreSQL database with its own task queue and workers; a tenant lives in exactly
-- one. This directory is read in the default cell's database (the one DATABASE_URL names), which
-- is itself the cell "default" and never listed here. A tenant with no row lives in the default
-- cell, so a single-server installation has empty tables and nothing changes for it. Every cell
-- carries the same schema (migrations run per cell); only the default cell's copy is used.
create table cells (
  name             text primary key check (name ~ '^[a-z][a-z0-9_-]{0,39}$' and name <> 'default'),
  -- Exactly one of three: a URL (without a password, unless the server is on this machine); the
  -- name of an environment variable that holds it, read by each process that routes there; or the
  -- name of another database on the default cell's server, reached with the same login (the local
  -- stack, whose port changes at each start, and a first split on one server).
  database_url     text,
  database_url_env text check (database_url_env ~ '^[A-Z_][A-Z0-9_]*$'),
  database_name    text check (length(database_name) between 1 and 63),
  task_queue       text not null unique check (length(task_queue) between 1 and 200),
  added_by         text not null default current_user,
  added_at         timestamptz not null default now(),
  check (num_nonnulls(database_url, database_url_env, database_name) = 1)
);

-- No foreign key to tenants: the tenant's rows live in the cell's own database, not here.
create table cell_tenants (
  tenant_id text primary key,
  cell      text not null references cells,
  placed_by text not null default current_user,
  placed_at timestamptz not null default now()
);

-- A placement is never moved or dropped by the product: moving a tenant's data between cells is a
-- deliberate operation (README, "Tenant cells"), not an UPDATE.
create function cell_tenants_fixed() returns trigger language plpgsql as $$
begin
  raise exception 'a tenant''s cell is fixed once placed (tenant %)', old.tenant_id using errcode = 'P0001';
end $$;
create trigger cell_tenants_fixed before update or delete on cell_tenants
  for each row execute function cell_tenants_fixed();

alter table cell_tenants enable row level security;
create policy tenant_scope on cell_tenants
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));
grant select on cells, cell_tenants to recon_worker, recon_support, recon_finance;
