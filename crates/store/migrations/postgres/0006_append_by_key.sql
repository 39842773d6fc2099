-- agentwire store (PostgreSQL), schema version 6: an append costs the same however many runs
-- are kept, and compressing large events costs less CPU.
--
-- The append trigger raised each appended run's last_seq in one UPDATE joined to the batch.
-- PL/pgSQL plans that statement once per connection, and planned while `runs` was new (a fresh
-- database, until its first ANALYZE) it was a hash join over a scan of every run: each later
-- append on that connection read the whole table, for as long as the connection lived. Each run
-- is now updated by its primary key, which no plan turns into a scan.
--
-- Payloads past ~2 KB (tool results, answers) are compressed by PostgreSQL. Its default, pglz,
-- was the largest single cost in PostgreSQL's CPU under a sustained load of runs (8% of the
-- machine); lz4 keeps the same size on disk (35.3 against 34.7 KB a run) at a small part of
-- the CPU. A server built without lz4 (or older than 14) keeps pglz. Rows already stored keep
-- the compression they were written with.
-- Applied once, inside a transaction holding the migration lock, by the runner in
-- src/migrate.rs.

CREATE OR REPLACE FUNCTION agentwire_run_events_appended() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    appended record;
BEGIN
    FOR appended IN SELECT run_id, max(seq) AS seq FROM new_events GROUP BY run_id LOOP
        UPDATE runs SET last_seq = appended.seq
        WHERE run_id = appended.run_id AND last_seq < appended.seq;
    END LOOP;
    RETURN NULL;
END;
$$;

DO $$
BEGIN
    -- pg_settings lists lz4 only on a server built with it; before 14 it has no such setting.
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        -- EXECUTE: a server before 14 could not even parse the statement.
        EXECUTE 'ALTER TABLE run_events ALTER COLUMN payload SET COMPRESSION lz4';
    END IF;
END;
$$;
