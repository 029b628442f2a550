-- New outcomes are created already evaluated (issue 16): attach takes a subject's unattached claims
-- together, in subject order, decides the outcome it creates as evaluate would, and inserts it once
-- with its decision and events, instead of a bare insert that evaluate updates.

-- Attach reads unattached claims in (outcome type, subject key, claim id) order straight off this
-- index and extends a chunk to the last claim of its last subject by the same index. It replaces
-- the (tenant_id, claim_id) index, so imports keep the same number of indexes to maintain; the
-- other readers of unattached claims (the night-size count, attach's "any left" test) need only
-- its leading tenant_id.
drop index claims_unattached_idx;
create index claims_unattached_idx on claims (tenant_id, outcome_type, subject_key, claim_id) where outcome_id is null;

-- The run attempt (runs.attempts of created_run_id) whose attach created the outcome already
-- evaluated; evaluate of that same attempt skips it. Cleared when the outcome gains a claim later
-- in the run; a rerun of the asOf is another attempt, so it evaluates the outcome as it does all.
-- In no index, so it never keeps an update from being HOT.
alter table outcomes add column attach_evaluated_attempt integer;
