-- agentwire store (PostgreSQL), schema version 2: event-log retention.
--
-- Retention deletes finished runs (and, by the cascade on run_events, their events) whose
-- finish time, or creation time when there is none, is older than the retention age, oldest
-- first, a small batch at a time. This index holds finished runs only, in exactly that order,
-- so each batch reads its runs off the front of the index instead of scanning the table. The
-- expression must stay the one the delete uses (src/postgres/retention.rs). Applied once,
-- inside a transaction holding the migration lock, by the runner in src/migrate.rs; building
-- it blocks writes to runs for as long as the build takes (once, at the upgrade).

CREATE INDEX runs_finished_by_age ON runs (COALESCE(finished_at, created_at))
    WHERE status IN ('completed', 'failed', 'cancelled');
