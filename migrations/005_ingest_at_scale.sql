-- Imports at scale. record_versions (record_id, effective_at) is a prefix of the unique key
-- (record_id, effective_at, row_sha256), which serves every lookup it served; one index fewer to
-- maintain on each of the millions of versions a night can bring.
drop index record_versions_record_idx;
