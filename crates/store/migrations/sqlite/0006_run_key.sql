-- agentwire store (SQLite), schema version 6: the event log is keyed by an integer per run.
--
-- The log's primary key was (run_id, seq), with run_id a random 36-character text: every
-- append put an entry of ~50 bytes at a random place of that index, so a commit holding the
-- events of many runs at once dirtied nearly as many index pages as it had events, and each
-- dirtied page is 4 KiB more to write to the WAL and sync. Keyed by `runs.run_key` (an
-- INTEGER PRIMARY KEY, so the rowid itself, stable across VACUUM, and growing with each new
-- run) the entries are ~12 bytes and the runs in flight sit together at the end of the index.
-- A replay of one 1,000-run burst's 48,000 appends (bench/replay_appends.py) takes a little
-- over half the time it took before (docs/benchmarks.md, the sixth pass, has the figures).
--
-- SQLite cannot add a primary key to a table, so `runs` and `run_events` are rebuilt; a run's
-- key is its old rowid, so everything ordered by rowid keeps its order. `runs_new` is renamed
-- last: the rename rewrites the log's reference to it. Applied once, inside a transaction, by
-- the runner in src/migrate.rs.

CREATE TABLE runs_new (
    run_key             INTEGER PRIMARY KEY,
    run_id              TEXT    NOT NULL UNIQUE,
    thread_id           TEXT    NOT NULL,
    user_id             TEXT    NOT NULL,
    tenant_id           TEXT    NOT NULL,
    agent               TEXT    NOT NULL,
    user_request        TEXT    NOT NULL,
    status              TEXT    NOT NULL
        CHECK (status IN ('accepted', 'running', 'completed', 'failed', 'cancelled')),
    created_at          INTEGER NOT NULL,
    finished_at         INTEGER,
    last_seq            INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    node_id             TEXT,
    cancel_requested_at INTEGER
);

INSERT INTO runs_new (run_key, run_id, thread_id, user_id, tenant_id, agent, user_request,
                      status, created_at, finished_at, last_seq, node_id, cancel_requested_at)
    SELECT rowid, run_id, thread_id, user_id, tenant_id, agent, user_request,
           status, created_at, finished_at, last_seq, node_id, cancel_requested_at
    FROM runs;

CREATE TABLE run_events_new (
    run_key    INTEGER NOT NULL REFERENCES runs_new (run_key) ON DELETE CASCADE,
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    event_type TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (run_key, seq)
);

INSERT INTO run_events_new (run_key, seq, event_type, payload, created_at)
    SELECT r.rowid, e.seq, e.event_type, e.payload, e.created_at
    FROM run_events AS e JOIN runs AS r ON r.run_id = e.run_id
    ORDER BY e.rowid;

DROP TABLE run_events;
DROP TABLE runs;
ALTER TABLE run_events_new RENAME TO run_events;
ALTER TABLE runs_new RENAME TO runs;

CREATE INDEX runs_user_thread ON runs (user_id, thread_id, created_at);
CREATE INDEX runs_in_flight ON runs (status) WHERE status IN ('accepted', 'running');
CREATE INDEX runs_in_flight_by_user ON runs (tenant_id, user_id, thread_id)
    WHERE status IN ('accepted', 'running');
CREATE INDEX runs_in_flight_by_node ON runs (node_id)
    WHERE status IN ('accepted', 'running');
CREATE INDEX runs_finished_by_age ON runs (COALESCE(finished_at, created_at))
    WHERE status IN ('completed', 'failed', 'cancelled');

-- runs.last_seq follows the log inside the appending statement itself, so the event and the
-- counter can never disagree, whoever writes, and an append stays one statement.
CREATE TRIGGER run_events_raise_last_seq AFTER INSERT ON run_events
BEGIN
    UPDATE runs SET last_seq = NEW.seq WHERE run_key = NEW.run_key AND last_seq < NEW.seq;
END;
