-- agentwire store (PostgreSQL), schema version 4: usage uploads committed in chunks.
--
-- A large usage upload is written a chunk at a time, each chunk in its own short transaction
-- (src/postgres/usage.rs), so no transaction spans the whole upload. Its rows carry the
-- upload's id and stay invisible to readers while the upload has a row in usage_uploads; the
-- final commit deletes that one row, which makes all of them visible at once. A failed,
-- abandoned or crashed upload is undone by deleting its rows (by the index below) before its
-- usage_uploads row. Rows written before this version have upload_id 0, which no upload ever
-- gets (identity values start at 1 and are never handed out twice). touched_at is the
-- database's clock, so nodes with skewed clocks agree on which uploads are abandoned.
-- Applied once, inside a transaction, by the runner in src/migrate.rs.

CREATE TABLE usage_uploads (
    upload_id  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  TEXT   NOT NULL,
    state      TEXT   NOT NULL CHECK (state IN ('open', 'aborting')),
    rows       BIGINT NOT NULL DEFAULT 0,
    started_at BIGINT NOT NULL,
    touched_at BIGINT NOT NULL
);

ALTER TABLE usage_records ADD COLUMN upload_id BIGINT NOT NULL DEFAULT 0;

-- Finds an upload's records to delete them, and lets a tenant's count skip pending uploads
-- without reading the table.
CREATE INDEX usage_records_tenant_upload ON usage_records (tenant_id, upload_id);
