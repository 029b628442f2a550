-- A dispute's credit names its dispute. Until now a dispute found its credit again by the wording
-- of the credit's reason (`reason like 'dispute N %'`), which any change of that sentence breaks.
alter table ledger_entries add column dispute_id bigint;
-- Only credits come from disputes. No reference to disputes: migration 008 dropped the ledger's
-- references it did not need because each costs a trigger event per inserted row, and every charge
-- of the night would pay it for a column that is null on charges. Disputes are never deleted.
alter table ledger_entries add constraint ledger_dispute_credit check (dispute_id is null or kind = 'credit');

-- Credits written before this migration: the outcome event that recorded each credit names the
-- dispute it came from (details.disputeId, written by the dispute path only). The ledger is
-- append-only and its trigger refuses every update, so it is lifted for this one statement, inside
-- the migration's transaction, and put back before anything else can write.
alter table ledger_entries disable trigger ledger_append_only;
update ledger_entries l
   set dispute_id = (e.details ->> 'disputeId')::bigint
  from outcome_events e
 where e.outcome_id = l.outcome_id and e.kind = 'credited' and e.details ? 'disputeId'
   and (e.details ->> 'entryId')::bigint = l.entry_id and l.kind = 'credit';
alter table ledger_entries enable trigger ledger_append_only;
