-- agentwire store (PostgreSQL), schema version 1.
--
-- Applied once, inside a transaction holding the migration lock, by the runner in
-- src/migrate.rs. Plain CREATE (no IF NOT EXISTS) on purpose: applying a migration twice must
-- fail loudly, never pass silently. The same columns and types as the SQLite schema, so one
-- set of Rust conversions serves both: timestamps are BIGINT unix milliseconds (UTC) and
-- counters BIGINT (the Rust side refuses u64 values above i64::MAX instead of wrapping).
-- Times that several nodes must agree on (leases) come from the database's clock.

CREATE TABLE tenants (
    tenant_id  TEXT   NOT NULL PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE usage_records (
    id                       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id                TEXT   NOT NULL REFERENCES tenants (tenant_id),
    ts                       BIGINT NOT NULL,
    provider                 TEXT   NOT NULL,
    model                    TEXT   NOT NULL,
    input_tokens             BIGINT NOT NULL,
    output_tokens            BIGINT NOT NULL,
    request_count            BIGINT NOT NULL,
    cache_read_input_tokens  BIGINT,
    cache_write_input_tokens BIGINT,
    reasoning_tokens         BIGINT,
    max_tokens               BIGINT,
    latency_ms               DOUBLE PRECISION,
    ttft_ms                  DOUBLE PRECISION,
    cost_usd                 DOUBLE PRECISION,
    status                   TEXT,
    service_tier             TEXT,
    user_id                  TEXT,
    team                     TEXT,
    project                  TEXT,
    feature                  TEXT,
    session_id               TEXT,
    prompt_hash              TEXT,
    prefix_hash              TEXT,
    tags                     TEXT
);

-- Every usage read is "this tenant, in time order, then insertion order".
CREATE INDEX usage_records_tenant_ts ON usage_records (tenant_id, ts, id);

-- A thread id is namespaced by its user: two users may pick the same thread id.
CREATE TABLE threads (
    user_id    TEXT   NOT NULL,
    thread_id  TEXT   NOT NULL,
    tenant_id  TEXT   NOT NULL,
    title      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, thread_id)
);

CREATE INDEX threads_user_updated ON threads (user_id, updated_at, thread_id);

-- One row per live node (and per dead node until its sweep is finished). The lease has
-- expired once the database clock reaches lease_expires_at.
CREATE TABLE nodes (
    node_id          TEXT   NOT NULL PRIMARY KEY,
    started_at       BIGINT NOT NULL,
    lease_expires_at BIGINT NOT NULL,
    swept_by         TEXT,
    sweep_claimed_at BIGINT
);

-- No foreign key to threads, tenants or nodes: the engine may create a run before it touches
-- the thread, a swept node's row is deleted while its runs stay, and run reads are always
-- scoped by user_id anyway. run_no orders runs created in the same millisecond by insertion.
CREATE TABLE runs (
    run_id              TEXT   NOT NULL PRIMARY KEY,
    run_no              BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    thread_id           TEXT   NOT NULL,
    user_id             TEXT   NOT NULL,
    tenant_id           TEXT   NOT NULL,
    agent               TEXT   NOT NULL,
    user_request        TEXT   NOT NULL,
    status              TEXT   NOT NULL
        CHECK (status IN ('accepted', 'running', 'completed', 'failed', 'cancelled')),
    created_at          BIGINT NOT NULL,
    finished_at         BIGINT,
    last_seq            BIGINT NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    node_id             TEXT,
    cancel_requested_at BIGINT
);

CREATE INDEX runs_user_thread ON runs (user_id, thread_id, created_at, run_no);

-- Startup recovery (single node) looks only for unfinished runs; keep that index small.
CREATE INDEX runs_in_flight ON runs (created_at, run_no) WHERE status IN ('accepted', 'running');

-- Admission counts a user's runs in flight and looks for one on the thread; both read this.
CREATE INDEX runs_in_flight_by_user ON runs (tenant_id, user_id, thread_id)
    WHERE status IN ('accepted', 'running');

-- The sweeper's "runs of node N still running".
CREATE INDEX runs_in_flight_by_node ON runs (node_id) WHERE status IN ('accepted', 'running');

-- The event log. (run_id, seq) is unique: a repeated seq is a bug upstream, never overwritten.
CREATE TABLE run_events (
    run_id     TEXT   NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL CHECK (seq >= 0),
    event_type TEXT   NOT NULL,
    payload    TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Once per appending statement (a whole group-commit batch): runs.last_seq follows the log in
-- the same transaction, so the event and the counter never disagree whoever writes. The wake-up
-- for other nodes is NOT sent from here: a NOTIFY makes PostgreSQL serialize the commits of all
-- notifying transactions (a database-wide lock held through the WAL flush), which would turn
-- every node's group commits into one flush at a time. The store notifies in a separate, cheap
-- transaction right after the events' commit instead.
CREATE FUNCTION agentwire_run_events_appended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE runs SET last_seq = appended.seq
    FROM (SELECT run_id, max(seq) AS seq FROM new_events GROUP BY run_id) AS appended
    WHERE runs.run_id = appended.run_id AND runs.last_seq < appended.seq;
    RETURN NULL;
END;
$$;

CREATE TRIGGER run_events_appended AFTER INSERT ON run_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION agentwire_run_events_appended();
