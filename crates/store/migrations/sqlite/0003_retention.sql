-- agentwire store (SQLite), schema version 3: event-log retention.
--
-- Retention deletes finished runs (and, by the cascade on run_events, their events) whose
-- finish time, or creation time when there is none, is older than the retention age, oldest
-- first, a small batch at a time. This index holds finished runs only, in exactly that order,
-- so each batch reads its runs off the front of the index instead of scanning the table. The
-- expression must stay the one the delete uses (src/sqlite/retention.rs). Applied once,
-- inside a transaction, by the runner in src/migrate.rs.

CREATE INDEX runs_finished_by_age ON runs (COALESCE(finished_at, created_at))
    WHERE status IN ('completed', 'failed', 'cancelled');
