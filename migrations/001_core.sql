-- Core schema: contracts, claims, records, outcomes and their history, runs, quarantine, ledger.
-- Every idempotent write is guarded by a unique key here, not by care in the code.

create table tenants (
  tenant_id   text primary key,
  created_at  timestamptz not null default now()
);

create table contracts (
  tenant_id      text not null references tenants,
  version        integer not null,
  effective_from timestamptz not null,
  body           jsonb not null,
  body_sha256    text not null,
  applied_at     timestamptz not null default now(),
  primary key (tenant_id, version),
  unique (tenant_id, effective_from),
  unique (tenant_id, body_sha256)
);

-- One row per file or HTTP page taken in; the counts satisfy received = accepted + redelivered + quarantined.
create table imports (
  import_id    bigserial primary key,
  tenant_id    text not null references tenants,
  kind         text not null check (kind in ('claims', 'records')),
  source       text not null,
  origin       text not null,
  content_sha256 text not null,
  run_id       bigint,
  received     integer not null default 0,
  accepted     integer not null default 0,
  redelivered  integer not null default 0,
  quarantined  integer not null default 0,
  imported_at  timestamptz not null default now(),
  unique (tenant_id, kind, source, content_sha256)
);

create table quarantine (
  quarantine_id bigserial primary key,
  tenant_id     text not null,
  import_id     bigint not null references imports,
  source        text not null,
  origin        text not null,
  line          integer not null,
  row_number    integer not null,
  raw           text not null,
  code          text not null,
  reason        text not null,
  created_at    timestamptz not null default now(),
  unique (import_id, row_number)
);

create table outcomes (
  outcome_id       bigserial primary key,
  tenant_id        text not null references tenants,
  outcome_type     text not null,
  subject_key      text not null,
  subject_ref      text not null,
  state            text not null default 'awaiting_evidence'
                   check (state in ('awaiting_evidence', 'in_grace', 'confirmed', 'billed', 'credited', 'rejected')),
  reject_reason    text check (reject_reason in ('no_evidence', 'not_achieved', 'retracted', 'dispute_upheld')),
  on_hold          boolean not null default false,
  primary_claim_id text,
  claim_count      integer not null default 0,
  match_status     text check (match_status in ('matched', 'none', 'ambiguous')),
  record_id        bigint,
  evidence_version_id bigint,
  created_run_id   bigint,
  success_at       timestamptz,
  grace_ends_at    timestamptz,
  evidence_due_at  timestamptz,
  last_reopened_at timestamptz,
  confirmed_as_of  timestamptz,
  evaluated_as_of  timestamptz,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  unique (tenant_id, outcome_type, subject_key)
);
-- Runs only walk outcomes that can still change; settled history stays out of the way.
create index outcomes_open_idx on outcomes (tenant_id, outcome_id)
  where state in ('awaiting_evidence', 'in_grace', 'confirmed');

create table claims (
  tenant_id      text not null references tenants,
  claim_id       text not null,
  outcome_type   text not null,
  subject_ref    text not null,
  subject_key    text not null,
  occurred_at    timestamptz not null,
  attributes     jsonb not null default '{}',
  content_sha256 text not null,
  retracted_at   timestamptz,
  outcome_id     bigint references outcomes,
  import_id      bigint not null references imports,
  received_at    timestamptz not null default now(),
  primary key (tenant_id, claim_id)
);
create index claims_outcome_idx on claims (outcome_id);
create index claims_unattached_idx on claims (tenant_id) where outcome_id is null;

create table records (
  record_id   bigserial primary key,
  tenant_id   text not null references tenants,
  source      text not null,
  external_id text not null,
  unique (tenant_id, source, external_id)
);

create table record_versions (
  version_id   bigserial primary key,
  record_id    bigint not null references records,
  effective_at timestamptz not null,
  match_key    text not null,
  data         jsonb not null,
  row_sha256   text not null,
  import_id    bigint not null references imports,
  line         integer not null,
  unique (record_id, effective_at, row_sha256)
);
create index record_versions_key_idx on record_versions (match_key, record_id);
create index record_versions_record_idx on record_versions (record_id, effective_at);

create table runs (
  run_id      bigserial primary key,
  tenant_id   text not null references tenants,
  as_of       timestamptz not null,
  workflow_id text not null,
  status      text not null default 'running' check (status in ('running', 'completed', 'failed')),
  attempts    integer not null default 1,
  started_at  timestamptz not null default now(),
  finished_at timestamptz,
  summary     jsonb,
  unique (tenant_id, as_of)
);

create table outcome_events (
  event_id   bigserial primary key,
  outcome_id bigint not null references outcomes,
  run_id     bigint references runs,
  actor      text,
  as_of      timestamptz,
  kind       text not null,
  from_state text,
  to_state   text,
  reason     text,
  details    jsonb not null default '{}',
  created_at timestamptz not null default now()
);
create index outcome_events_outcome_idx on outcome_events (outcome_id, event_id);
-- A retried chunk of the same run must not write the same transition twice.
create unique index outcome_events_run_once on outcome_events (outcome_id, run_id, kind) where run_id is not null;

create table claim_cursors (
  tenant_id  text not null references tenants,
  source     text not null,
  cursor     text,
  pages      integer not null default 0,
  updated_at timestamptz not null default now(),
  primary key (tenant_id, source)
);

create table ledger_entries (
  entry_id          bigserial primary key,
  tenant_id         text not null references tenants,
  idempotency_key   text not null unique,
  kind              text not null check (kind in ('charge', 'credit')),
  outcome_id        bigint not null references outcomes,
  outcome_type      text not null,
  subject_ref       text not null,
  period            text not null check (period ~ '^\d{4}-(0[1-9]|1[0-2])$'),
  currency          text not null,
  unit_price        text not null,
  amount_minor      bigint not null,
  contract_version  integer not null,
  run_id            bigint references runs,
  as_of             timestamptz not null,
  primary_claim_id  text,
  evidence          jsonb not null,
  success_at        timestamptz,
  reverses_entry_id bigint references ledger_entries,
  reason            text,
  created_at        timestamptz not null default now()
);
create index ledger_period_idx on ledger_entries (tenant_id, period, entry_id);

-- The ledger is append-only: corrections are new entries, never edits.
create function ledger_refuse_change() returns trigger language plpgsql as $$
begin
  raise exception 'ledger_entries is append-only: % refused', tg_op using errcode = 'P0001';
end $$;
create trigger ledger_append_only before update or delete on ledger_entries
  for each row execute function ledger_refuse_change();
create trigger ledger_no_truncate before truncate on ledger_entries
  for each statement execute function ledger_refuse_change();
