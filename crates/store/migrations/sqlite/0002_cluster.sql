-- agentwire store (SQLite), schema version 2: the cluster primitives.
--
-- The same shape as the PostgreSQL schema (crates/store/migrations/postgres), so both backends
-- answer the same calls the same way; on SQLite there is only ever one node. Applied once,
-- inside a transaction, by the runner in src/migrate.rs.

-- The node executing the run (NULL for runs created without admission, e.g. by an older
-- build) and when a cancel was asked for (so a node that missed the wake-up still finds it).
ALTER TABLE runs ADD COLUMN node_id TEXT;
ALTER TABLE runs ADD COLUMN cancel_requested_at INTEGER;

-- One row per live node (and per dead node until its sweep is finished). Times are unix
-- milliseconds; the lease has expired once the clock reaches lease_expires_at.
CREATE TABLE nodes (
    node_id          TEXT    NOT NULL PRIMARY KEY,
    started_at       INTEGER NOT NULL,
    lease_expires_at INTEGER NOT NULL,
    swept_by         TEXT,
    sweep_claimed_at INTEGER
);

-- Admission counts a user's runs in flight and looks for one on the thread; both read this.
CREATE INDEX runs_in_flight_by_user ON runs (tenant_id, user_id, thread_id)
    WHERE status IN ('accepted', 'running');

-- The sweeper's "runs of node N still running".
CREATE INDEX runs_in_flight_by_node ON runs (node_id)
    WHERE status IN ('accepted', 'running');
