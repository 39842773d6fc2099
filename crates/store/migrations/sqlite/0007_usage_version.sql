-- agentwire store (SQLite), schema version 7: a tenant's usage has a version.
--
-- Each committed usage upload adds one to its tenant's usage_version, in the upload's own
-- commit; admission reads it in the run's own transaction. A node that cached the tenant's
-- records at an older version reloads them before answering, so a run admitted after an
-- upload committed (on any node, whether or not that node's notice has arrived yet) is
-- answered from it. Applied once, inside a transaction, by the runner in src/migrate.rs.

ALTER TABLE tenants ADD COLUMN usage_version INTEGER NOT NULL DEFAULT 0;
