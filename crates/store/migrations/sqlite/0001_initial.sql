-- agentwire store, schema version 1.
--
-- Applied once, inside a transaction, by the runner in src/migrate.rs. Plain CREATE (no
-- IF NOT EXISTS) on purpose: applying a migration twice must fail loudly, never pass silently.
-- Conventions: timestamps are INTEGER unix milliseconds (UTC); counters are INTEGER (i64; the
-- Rust side refuses u64 values above i64::MAX instead of wrapping).

CREATE TABLE tenants (
    tenant_id  TEXT    NOT NULL PRIMARY KEY,
    created_at INTEGER NOT NULL
);

CREATE TABLE usage_records (
    id                       INTEGER PRIMARY KEY,
    tenant_id                TEXT    NOT NULL REFERENCES tenants (tenant_id),
    ts                       INTEGER NOT NULL,
    provider                 TEXT    NOT NULL,
    model                    TEXT    NOT NULL,
    input_tokens             INTEGER NOT NULL,
    output_tokens            INTEGER NOT NULL,
    request_count            INTEGER NOT NULL,
    cache_read_input_tokens  INTEGER,
    cache_write_input_tokens INTEGER,
    reasoning_tokens         INTEGER,
    max_tokens               INTEGER,
    latency_ms               REAL,
    ttft_ms                  REAL,
    cost_usd                 REAL,
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

-- Every usage read is "this tenant, in time order".
CREATE INDEX usage_records_tenant_ts ON usage_records (tenant_id, ts);

-- A thread id is namespaced by its user: two users may pick the same thread id.
CREATE TABLE threads (
    user_id    TEXT    NOT NULL,
    thread_id  TEXT    NOT NULL,
    tenant_id  TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, thread_id)
);

CREATE INDEX threads_user_updated ON threads (user_id, updated_at, thread_id);

-- No foreign key to threads or tenants: the engine may create a run before it touches the
-- thread, and run reads are always scoped by user_id anyway.
CREATE TABLE runs (
    run_id       TEXT    NOT NULL PRIMARY KEY,
    thread_id    TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    tenant_id    TEXT    NOT NULL,
    agent        TEXT    NOT NULL,
    user_request TEXT    NOT NULL,
    status       TEXT    NOT NULL
        CHECK (status IN ('accepted', 'running', 'completed', 'failed', 'cancelled')),
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    last_seq     INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);

CREATE INDEX runs_user_thread ON runs (user_id, thread_id, created_at);

-- Crash recovery at startup looks only for unfinished runs; keep that index small.
CREATE INDEX runs_in_flight ON runs (status) WHERE status IN ('accepted', 'running');

-- The event log. (run_id, seq) is unique: a repeated seq is a bug upstream, never overwritten.
CREATE TABLE run_events (
    run_id     TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    event_type TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- runs.last_seq follows the log inside the appending statement itself, so the event and the
-- counter can never disagree, whoever writes, and an append stays one statement.
CREATE TRIGGER run_events_raise_last_seq AFTER INSERT ON run_events
BEGIN
    UPDATE runs SET last_seq = NEW.seq WHERE run_id = NEW.run_id AND last_seq < NEW.seq;
END;
