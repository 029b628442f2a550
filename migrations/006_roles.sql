-- Database roles and tenant isolation. Three NOLOGIN group roles carry the privileges; people and
-- processes log in as their own login roles, members of one group, and see only the tenants that
-- tenant_access grants their login. The owner (who runs migrations) bypasses row level security.

-- Roles are cluster-wide: another database of the same cluster may have created them already, or
-- be creating them at this very moment (then CREATE ROLE fails on the unique role name).
do $$
declare
  r text;
begin
  foreach r in array array['recon_worker', 'recon_support', 'recon_finance'] loop
    if not exists (select 1 from pg_roles where rolname = r) then
      begin
        execute format('create role %I nologin', r);
      exception when duplicate_object or unique_violation then
        null;
      end;
    end if;
  end loop;
end $$;

-- Which tenants a login may see. tenant_id null: every tenant (the multi-tenant worker). Keyed on
-- the role's oid, so a role dropped and created again under the same name inherits nothing.
create table tenant_access (
  login      regrole not null,
  tenant_id  text references tenants,
  granted_by text not null default current_user,
  granted_at timestamptz not null default now(),
  unique (login, tenant_id)
);
create unique index tenant_access_all_once on tenant_access (login) where tenant_id is null;

-- The definer functions below must find tenant_access in this schema, never a temporary table of
-- the same name that the caller created: pg_temp goes last (pg_catalog, unlisted, is searched
-- first). `set search_path from current` pins this path in each function.
select set_config('search_path', format('%I, pg_temp', current_schema()), true);

-- The scope follows the login (session_user), not current_user: SET ROLE cannot widen it, and the
-- functions run as their owner because the callers have no privilege on tenant_access rows of others.
create function recon_sees_all_tenants() returns boolean
  language sql stable security definer set search_path from current
  as $$
    select exists (select 1 from tenant_access a
                    where a.login::oid = (select r.oid from pg_roles r where r.rolname = session_user)
                      and a.tenant_id is null)
  $$;

create function recon_visible_tenants() returns text[]
  language sql stable security definer set search_path from current
  as $$
    select coalesce(array_agg(a.tenant_id order by a.tenant_id), '{}')
      from tenant_access a
     where a.login::oid = (select r.oid from pg_roles r where r.rolname = session_user)
       and a.tenant_id is not null
  $$;

revoke execute on function recon_sees_all_tenants(), recon_visible_tenants() from public;
grant execute on function recon_sees_all_tenants(), recon_visible_tenants() to recon_worker, recon_support, recon_finance;

-- Policies call the functions inside (select …): evaluated once per statement, not once per row.
-- One policy per table, for every command, with the same test on the rows read and written.
alter table tenants enable row level security;
create policy tenant_scope on tenants
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

alter table contracts enable row level security;
create policy tenant_scope on contracts
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

alter table imports enable row level security;
create policy tenant_scope on imports
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

alter table quarantine enable row level security;
create policy tenant_scope on quarantine
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

alter table outcomes enable row level security;
create policy tenant_scope on outcomes
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

alter table claims enable row level security;
create policy tenant_scope on claims
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

alter table records enable row level security;
create policy tenant_scope on records
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

alter table runs enable row level security;
create policy tenant_scope on runs
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

alter table claim_cursors enable row level security;
create policy tenant_scope on claim_cursors
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

alter table ledger_entries enable row level security;
create policy tenant_scope on ledger_entries
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

alter table disputes enable row level security;
create policy tenant_scope on disputes
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

alter table period_closes enable row level security;
create policy tenant_scope on period_closes
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

alter table alerts enable row level security;
create policy tenant_scope on alerts
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

alter table price_index enable row level security;
create policy tenant_scope on price_index
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

-- Tables without a tenant_id belong to the tenant of their parent row.
alter table record_versions enable row level security;
create policy tenant_scope on record_versions
  using ((select recon_sees_all_tenants()) or exists (
    select 1 from records p where p.record_id = record_versions.record_id and p.tenant_id = any ((select recon_visible_tenants())::text[])))
  with check ((select recon_sees_all_tenants()) or exists (
    select 1 from records p where p.record_id = record_versions.record_id and p.tenant_id = any ((select recon_visible_tenants())::text[])));

alter table outcome_events enable row level security;
create policy tenant_scope on outcome_events
  using ((select recon_sees_all_tenants()) or exists (
    select 1 from outcomes p where p.outcome_id = outcome_events.outcome_id and p.tenant_id = any ((select recon_visible_tenants())::text[])))
  with check ((select recon_sees_all_tenants()) or exists (
    select 1 from outcomes p where p.outcome_id = outcome_events.outcome_id and p.tenant_id = any ((select recon_visible_tenants())::text[])));

alter table dispute_events enable row level security;
create policy tenant_scope on dispute_events
  using ((select recon_sees_all_tenants()) or exists (
    select 1 from disputes p where p.dispute_id = dispute_events.dispute_id and p.tenant_id = any ((select recon_visible_tenants())::text[])))
  with check ((select recon_sees_all_tenants()) or exists (
    select 1 from disputes p where p.dispute_id = dispute_events.dispute_id and p.tenant_id = any ((select recon_visible_tenants())::text[])));

-- period_usage (migration 004, when present): per-period totals kept by a trigger on ledger
-- inserts, which runs as the worker that inserts.
do $$
begin
  if to_regclass('period_usage') is not null then
    alter table period_usage enable row level security;
    create policy tenant_scope on period_usage
      using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
      with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));
    grant select, insert, update on period_usage to recon_worker;
    grant select on period_usage to recon_finance;
  end if;
end $$;

-- A login reads its own grants (to tell what it can see) and nobody else's; only the owner writes.
alter table tenant_access enable row level security;
create policy own_rows on tenant_access
  using (login::oid = (select r.oid from pg_roles r where r.rolname = session_user));

-- Support imports customer disputes in bulk (imports of kind 'disputes'); it reads every import of
-- its tenant (an outcome's story names the file of each claim) but writes no other kind.
create policy support_writes_dispute_imports on imports as restrictive for insert to recon_support
  with check (kind = 'disputes');
create policy support_updates_dispute_imports on imports as restrictive for update to recon_support
  using (kind = 'disputes') with check (kind = 'disputes');

do $$
begin
  execute format('grant usage on schema %I to recon_worker, recon_support, recon_finance', current_schema());
end $$;

-- recon_worker: the nightly run, file and HTTP imports, dispute activities. The ledger takes
-- INSERT only: no UPDATE, DELETE or TRUNCATE (and the trigger of 001 refuses them for anyone).
grant select on tenants, contracts, period_closes to recon_worker;
grant select, insert, update on imports, outcomes, claims, runs, claim_cursors, disputes, alerts, price_index to recon_worker;
grant select, insert on quarantine, records, record_versions, outcome_events, dispute_events, ledger_entries to recon_worker;
grant select on tenant_access to recon_worker;
grant usage on sequence imports_import_id_seq, quarantine_quarantine_id_seq, outcomes_outcome_id_seq, records_record_id_seq,
  record_versions_version_id_seq, runs_run_id_seq, outcome_events_event_id_seq, ledger_entries_entry_id_seq,
  disputes_dispute_id_seq, dispute_events_event_id_seq, alerts_alert_id_seq to recon_worker;

-- recon_support: reads an outcome's whole story (claims, evidence, history, its ledger lines,
-- disputes) and imports customer disputes. Opening, noting and resolving go through the dispute
-- workflow, whose activities run as the worker: support cannot edit a dispute or an outcome directly.
grant select on tenants, contracts, outcomes, claims, records, record_versions, outcome_events,
  disputes, dispute_events, ledger_entries to recon_support;
grant select, insert, update on imports to recon_support;
grant select, insert on quarantine to recon_support;
grant select on tenant_access to recon_support;
grant usage on sequence imports_import_id_seq, quarantine_quarantine_id_seq to recon_support;

-- recon_finance: read-only; the export, the statement and the alerts list read these and nothing else.
grant select on tenants, contracts, ledger_entries, period_closes, alerts to recon_finance;
grant select on tenant_access to recon_finance;
