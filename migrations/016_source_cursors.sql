-- Record and claim sources the night pulls itself (Zendesk, HubSpot, the AI side's PostgreSQL;
-- issue 14). The cursor is written in the transaction that imports the page it covers, so a crash
-- can neither skip nor double a page. The request window makes the API's rate limit durable: a
-- restarted worker, or a retried activity, knows how many requests the window has already used.
create table source_cursors (
  tenant_id         text not null references tenants,
  source            text not null,
  kind              text not null,
  -- The API's own position: Zendesk's after_cursor, HubSpot's window and `after`, a keyset.
  cursor            jsonb,
  pages             bigint not null default 0,
  rows_received     bigint not null default 0,
  last_pull_at      timestamptz,
  window_started_at timestamptz,
  window_requests   integer not null default 0,
  rate_limit_waits  integer not null default 0,
  rate_limit_wait_ms bigint not null default 0,
  last_error        text,
  last_error_at     timestamptz,
  updated_at        timestamptz not null default now(),
  primary key (tenant_id, source)
);

alter table source_cursors enable row level security;
create policy tenant_scope on source_cursors
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));
grant select, insert, update on source_cursors to recon_worker;
grant select on source_cursors to recon_support, recon_finance;
