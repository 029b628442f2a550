-- Disputes: one open dispute per outcome at a time, every action recorded with actor, time and note.

create table disputes (
  dispute_id      bigserial primary key,
  tenant_id       text not null references tenants,
  outcome_id      bigint not null references outcomes,
  workflow_id     text not null,
  status          text not null default 'open' check (status in ('open', 'upheld', 'rejected')),
  reason          text not null,
  channel         text not null default 'support' check (channel in ('support', 'customer_import')),
  opened_by       text not null,
  opened_at       timestamptz not null,
  outcome_state_at_open text not null,
  sla_at          timestamptz not null,
  auto_resolve_at timestamptz not null,
  escalated_at    timestamptz,
  resolved_at     timestamptz,
  resolved_by     text,
  resolution_note text,
  auto_resolved   boolean not null default false
);
-- A second open on the same outcome attaches to this one instead of creating another.
create unique index disputes_one_open_per_outcome on disputes (outcome_id) where status = 'open';
create index disputes_tenant_idx on disputes (tenant_id, dispute_id);

create table dispute_events (
  event_id   bigserial primary key,
  dispute_id bigint not null references disputes,
  kind       text not null check (kind in ('opened', 'attached', 'note', 'escalated', 'resolved')),
  actor      text not null,
  note       text,
  at         timestamptz not null,
  -- The client's request id: a retried activity or a repeated update writes nothing twice.
  request_id text not null,
  unique (dispute_id, request_id)
);

alter table imports drop constraint imports_kind_check;
alter table imports add constraint imports_kind_check check (kind in ('claims', 'records', 'disputes'));

-- Exactly one credit can ever reverse a charge.
create unique index ledger_one_credit_per_charge on ledger_entries (reverses_entry_id) where kind = 'credit';

-- Runs look for charges to reverse among recent charges and retracted claims only.
create index ledger_charges_by_time on ledger_entries (tenant_id, as_of) where kind = 'charge';
create index claims_retracted_idx on claims (tenant_id, retracted_at) where retracted_at is not null;
