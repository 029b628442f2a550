-- Every claim is imported without an outcome (attach sets it later), so the index on claims by
-- outcome took a NULL entry for each imported claim that no query reads: every reader asks for
-- given outcomes (`outcome_id = $1`, `= any($1)`, `k.outcome_id = o.outcome_id`), which implies
-- NOT NULL, so the partial index serves them all (EXPLAIN of each, generic plans included).
-- Measured on 300,000 claims: the insert of an import takes about 8% less server CPU. Attach is
-- unchanged: setting outcome_id already added an entry for the new row version.
drop index claims_outcome_idx;
create index claims_outcome_idx on claims (outcome_id) where outcome_id is not null;
