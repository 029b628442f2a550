-- Billing sinks (issue 13): a transactional outbox. Every ledger line owes one delivery to each
-- sink its contract version names; the row that records the debt is written by a trigger in the
-- statement that writes the line, so no writer can forget it and no line exists without it.

-- One sink call's worth of lines (one meter event, invoice item, Metronome event or webhook).
-- The key is the idempotency value sent; the payload is fixed at the first attempt, so every
-- resend is the same request.
create table sink_batches (
  batch_id         bigserial primary key,
  tenant_id        text not null,
  sink             text not null,
  batch_key        text not null,
  kind             text not null check (kind in ('charge', 'credit', 'base_fee', 'true_up')),
  run_id           bigint,
  outcome_type     text,
  period           text not null,
  currency         text not null,
  unit_price       text not null,
  tier             integer,
  line_count       integer not null check (line_count > 0),
  amount_minor     bigint not null,
  event_at         timestamptz not null,
  first_entry_id   bigint not null,
  last_entry_id    bigint not null,
  -- pending: owed and not yet confirmed; delivered: the sink holds it (or said it already did);
  -- failed: the sink refused it, or would (caught before sending); needs_attention: it may or may
  -- not have landed and nothing can tell any more; skipped: this sink does not take this kind.
  state            text not null default 'pending'
                   check (state in ('pending', 'delivered', 'failed', 'needs_attention', 'skipped')),
  action           text,
  payload          jsonb,
  attempts         integer not null default 0,
  first_attempt_at timestamptz,
  last_attempt_at  timestamptz,
  next_attempt_at  timestamptz not null default now(),
  leased_until     timestamptz,
  delivered_at     timestamptz,
  sink_ref         text,
  last_error       text,
  -- Who set it delivered or resent it by hand, and why (recon sink retry).
  resolution       text,
  created_at       timestamptz not null default now(),
  unique (tenant_id, sink, batch_key)
);
create index sink_batches_due on sink_batches (tenant_id, sink, next_attempt_at) where state = 'pending';
create index sink_batches_period on sink_batches (tenant_id, period);

create table sink_deliveries (
  entry_id    bigint not null references ledger_entries,
  sink        text not null,
  tenant_id   text not null,
  batch_id    bigint references sink_batches,
  created_at  timestamptz not null default now(),
  primary key (entry_id, sink)
);
create index sink_deliveries_unbatched on sink_deliveries (tenant_id, sink, entry_id) where batch_id is null;
create index sink_deliveries_batch on sink_deliveries (batch_id);

-- Statement-level, over the statement's new lines: a night's chunk of charges costs one join, not
-- a trigger call per line. A sink may name the outcome types it takes; period lines (no type) go
-- to every sink. Credits carry their charge's contract version, so they follow their charge.
create function ledger_sink_deliveries() returns trigger language plpgsql as $$
begin
  insert into sink_deliveries (entry_id, sink, tenant_id)
  select n.entry_id, s.key, n.tenant_id
    from new_lines n
    join contracts c on c.tenant_id = n.tenant_id and c.version = n.contract_version
    cross join lateral jsonb_each(c.body -> 'sinks') s
   where n.outcome_type is null
      or not (s.value ? 'outcomeTypes')
      or (s.value -> 'outcomeTypes') ? n.outcome_type;
  return null;
end $$;
create trigger ledger_sink_outbox after insert on ledger_entries
  referencing new table as new_lines for each statement execute function ledger_sink_deliveries();

-- A debt to a sink is never forgotten: no delivery row or batch is deleted, and a delivery row's
-- line and sink never change.
create function sink_refuse_delete() returns trigger language plpgsql as $$
begin
  raise exception 'sink deliveries are never deleted (%)', tg_table_name using errcode = 'P0001';
end $$;
create trigger sink_batches_keep before delete on sink_batches for each row execute function sink_refuse_delete();
create trigger sink_deliveries_keep before delete on sink_deliveries for each row execute function sink_refuse_delete();
create trigger sink_batches_no_truncate before truncate on sink_batches for each statement execute function sink_refuse_delete();
create trigger sink_deliveries_no_truncate before truncate on sink_deliveries for each statement execute function sink_refuse_delete();

create function sink_delivery_fixed() returns trigger language plpgsql as $$
begin
  if new.entry_id <> old.entry_id or new.sink <> old.sink or new.tenant_id <> old.tenant_id
     or (old.batch_id is not null and new.batch_id is distinct from old.batch_id) then
    raise exception 'a delivery keeps its line, sink and batch' using errcode = 'P0001';
  end if;
  return new;
end $$;
create trigger sink_deliveries_fixed before update on sink_deliveries for each row execute function sink_delivery_fixed();

alter table sink_batches enable row level security;
create policy tenant_scope on sink_batches
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));
alter table sink_deliveries enable row level security;
create policy tenant_scope on sink_deliveries
  using ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]))
  with check ((select recon_sees_all_tenants()) or tenant_id = any ((select recon_visible_tenants())::text[]));

grant select, insert, update on sink_batches, sink_deliveries to recon_worker;
grant usage on sequence sink_batches_batch_id_seq to recon_worker;
grant select on sink_batches, sink_deliveries to recon_support, recon_finance;
