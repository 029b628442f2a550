-- Pricing finance can invoice: base fees and true-ups as their own ledger lines, the tier and basis
-- of every charge, closed periods, alerts, and price index series.

alter table ledger_entries alter column outcome_id drop not null;
alter table ledger_entries alter column outcome_type drop not null;
alter table ledger_entries alter column subject_ref drop not null;
alter table ledger_entries drop constraint ledger_entries_kind_check;
alter table ledger_entries add constraint ledger_entries_kind_check check (kind in ('charge', 'credit', 'base_fee', 'true_up'));
alter table ledger_entries add constraint ledger_outcome_lines check ((kind in ('charge', 'credit')) = (outcome_id is not null));
-- included (covered by the base fee), tier (graduated price), capped (past the hard cap), fee, true_up.
alter table ledger_entries add column pricing_basis text not null default 'tier'
  check (pricing_basis in ('included', 'tier', 'capped', 'base_fee', 'true_up', 'credit'));
alter table ledger_entries add column tier integer;
-- The outcome's position in its period (1-based) for its type: tiers are assigned by it.
alter table ledger_entries add column period_position integer;
-- The period a late line corrects, when it had to land in a later open period.
alter table ledger_entries add column corrects_period text;

create table period_closes (
  tenant_id  text not null references tenants,
  period     text not null check (period ~ '^\d{4}-(0[1-9]|1[0-2])$'),
  closed_by  text not null,
  closed_at  timestamptz not null default now(),
  note       text,
  primary key (tenant_id, period)
);

create table alerts (
  alert_id     bigserial primary key,
  tenant_id    text not null references tenants,
  outcome_type text not null,
  period       text not null,
  threshold    numeric not null,
  basis        text not null check (basis in ('cap', 'commitment')),
  usage_minor  bigint not null,
  limit_minor  bigint not null,
  run_id       bigint references runs,
  crossed_at   timestamptz not null,
  delivered_at timestamptz,
  attempts     integer not null default 0,
  last_error   text,
  -- Each threshold fires once per period.
  unique (tenant_id, outcome_type, period, threshold)
);

create table price_index (
  tenant_id      text not null references tenants,
  series         text not null,
  effective_from timestamptz not null,
  multiplier     text not null check (multiplier ~ '^\d+(\.\d+)?$'),
  primary key (tenant_id, series, effective_from)
);

-- What a resolution did, so that a retried resolution answers exactly the same.
alter table disputes add column effect text check (effect in ('reject_outcome', 'credit_charge', 'lift_hold', 'none'));
