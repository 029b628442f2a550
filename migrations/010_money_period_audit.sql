-- Every close and reopen of a billing period: who, when and why. period_closes holds the current
-- state (a row while closed); this history is never edited. Closes made before this migration are
-- carried over as the first event of their period.
create table period_events (
  event_id  bigserial primary key,
  tenant_id text not null references tenants,
  period    text not null check (period ~ '^\d{4}-(0[1-9]|1[0-2])$'),
  action    text not null check (action in ('close', 'reopen')),
  actor     text not null,
  note      text,
  at        timestamptz not null default now()
);
create index period_events_by_period on period_events (tenant_id, period, event_id);

insert into period_events (tenant_id, period, action, actor, note, at)
select tenant_id, period, 'close', closed_by, note, closed_at from period_closes order by closed_at;

alter table period_events enable row level security;
create policy tenant_scope on period_events
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

-- Closing and reopening are the owner's (like contracts); finance reads the history with the list.
grant select on period_events to recon_finance;
