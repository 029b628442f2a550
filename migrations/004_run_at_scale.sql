-- The nightly run at scale: every step reads through an index bounded by the night's work, so its
-- cost grows with the new claims and outcomes, not with the settled history behind them.

-- Attach takes unattached claims in claim_id order straight off the index, without sorting them all.
drop index claims_unattached_idx;
create index claims_unattached_idx on claims (tenant_id, claim_id) where outcome_id is null;

-- Post takes the run's confirmed outcomes in pricing order (success_at, outcome_id) straight off the
-- index; billed, held and settled outcomes are not in it.
create index outcomes_to_post_idx on outcomes (tenant_id, confirmed_as_of, success_at, outcome_id)
  where state = 'confirmed' and not on_hold;

-- The run report counts this run's rows only.
create index outcome_events_run_idx on outcome_events (run_id) where run_id is not null;
create index outcomes_created_run_idx on outcomes (created_run_id) where created_run_id is not null;
create index claims_import_idx on claims (import_id);
create index ledger_run_idx on ledger_entries (run_id) where run_id is not null;

-- What each period already holds per outcome type, kept beside the ledger: pricing reads one row
-- instead of summing the period's charges for every chunk it posts. Maintained by a trigger, so
-- every way a charge is written counts; the ledger is append-only, so inserts are all there is.
create table period_usage (
  tenant_id    text not null references tenants,
  period       text not null,
  outcome_type text not null,
  charges      integer not null,
  usage_minor  bigint not null,
  capped       integer not null,
  primary key (tenant_id, period, outcome_type)
);

create function period_usage_add() returns trigger language plpgsql as $$
begin
  insert into period_usage (tenant_id, period, outcome_type, charges, usage_minor, capped)
  select tenant_id, period, outcome_type, count(*), sum(amount_minor), count(*) filter (where pricing_basis = 'capped')
    from new_entries where kind = 'charge' group by tenant_id, period, outcome_type
  on conflict (tenant_id, period, outcome_type) do update
    set charges = period_usage.charges + excluded.charges,
        usage_minor = period_usage.usage_minor + excluded.usage_minor,
        capped = period_usage.capped + excluded.capped;
  return null;
end $$;
create trigger ledger_period_usage after insert on ledger_entries
  referencing new table as new_entries for each statement execute function period_usage_add();

insert into period_usage (tenant_id, period, outcome_type, charges, usage_minor, capped)
select tenant_id, period, outcome_type, count(*), sum(amount_minor), count(*) filter (where pricing_basis = 'capped')
  from ledger_entries where kind = 'charge' group by tenant_id, period, outcome_type;
