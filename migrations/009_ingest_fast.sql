-- Imports at scale, part two. A foreign key costs a trigger per inserted row, each a query that
-- locks the parent row (FOR KEY SHARE): measured at 100k claims, 17 of the 34 s of the
-- record_versions insert and 6 of the 11 s of the claims insert. These keys guard only rows the
-- import writes itself, whose parents are guaranteed otherwise:
--
-- - claims.tenant_id, records.tenant_id: both are written only by the imports (src/ingest), with
--   the tenant of the import row opened in the same transaction, and imports.tenant_id keeps its
--   key to tenants.
-- - claims.import_id, record_versions.import_id: the id of that same import row, just inserted in
--   the same transaction.
-- - record_versions.record_id: taken from a join with records in the very statement that inserts
--   the versions, after the records were inserted in the same transaction.
--
-- The other side of a foreign key (a parent deleted under its children) cannot happen either:
-- nothing in the product deletes or truncates, and no recon_* role holds DELETE or TRUNCATE on
-- tenants, imports or records (migration 006, checked by test/integration/roles.test.ts). Under a
-- recon_* login the row-level policy on record_versions still requires the parent record.
alter table claims drop constraint claims_tenant_id_fkey;
alter table claims drop constraint claims_import_id_fkey;
alter table records drop constraint records_tenant_id_fkey;
alter table record_versions drop constraint record_versions_record_id_fkey;
alter table record_versions drop constraint record_versions_import_id_fkey;
