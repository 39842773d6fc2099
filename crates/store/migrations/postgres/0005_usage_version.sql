-- agentwire store (PostgreSQL), schema version 5: a tenant's usage has a version.
--
-- Each committed usage upload adds one to its tenant's usage_version, in the upload's own
-- commit; admission reads it in the run's own transaction. A node that cached the tenant's
-- records at an older version reloads them before answering, so a run admitted after an
-- upload committed on another node is answered from it even when the upload's notice has not
-- reached this node yet (notices are wake-ups, delivered after the commit, not the truth).
-- Applied once, inside a transaction holding the migration lock, by the runner in
-- src/migrate.rs.

ALTER TABLE tenants ADD COLUMN usage_version BIGINT NOT NULL DEFAULT 0;
