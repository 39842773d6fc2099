-- agentwire store (PostgreSQL), schema version 7: a run is admitted in one call.
--
-- Admission was seven statements from the node (BEGIN, the advisory lock, the count, the run,
-- its thread, its first event, COMMIT), each a round trip that waited for the node's async
-- workers and PostgreSQL beside every other run's appends: under a burst of new sessions the
-- round trips, not the work, were what a first event waited for. This function does the same
-- in one statement, committed as the node's call returns.
--
-- The rule is the one the SQLite store applies in its INSERT (crates/store/src/model.rs,
-- `Admission::refusal`): no run of the thread in flight, and fewer than the limit in flight for
-- the user. When the run is not admitted nothing is written, and the figures say why. Each
-- statement of a function reads the database afresh (READ COMMITTED), so the count, made after
-- the lock, sees every run admitted by whoever held it before.
-- Applied once, inside a transaction holding the migration lock, by the runner in
-- src/migrate.rs.

-- A thread is created or touched here for `Store::upsert_thread` and for an admission alike.
-- GREATEST keeps updated_at from moving backwards if a clock steps back.
CREATE FUNCTION agentwire_touch_thread(
    touched_user_id text, touched_thread_id text, touched_tenant_id text, new_title text,
    now_ms bigint)
RETURNS threads
LANGUAGE sql AS $$
    INSERT INTO threads AS th (user_id, thread_id, tenant_id, title, created_at, updated_at)
        VALUES (touched_user_id, touched_thread_id, touched_tenant_id, new_title, now_ms, now_ms)
        ON CONFLICT (tenant_id, user_id, thread_id)
        DO UPDATE SET updated_at = GREATEST(th.updated_at, excluded.updated_at)
        RETURNING th.*;
$$;

CREATE FUNCTION agentwire_admit_run(
    lock_class integer, lock_key text,
    new_run_id text, new_thread_id text, new_user_id text, new_tenant_id text, new_agent text,
    new_user_request text, new_status text, new_created_at bigint, new_finished_at bigint,
    new_last_seq bigint, new_node_id text, max_in_flight bigint,
    thread_title text, now_ms bigint,
    first_seq bigint, first_type text, first_payload text, first_created_at bigint,
    OUT admitted boolean, OUT in_flight bigint, OUT in_thread text, OUT usage bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_class, hashtext(lock_key));
    SELECT count(*), min(r.run_id) FILTER (WHERE r.thread_id = new_thread_id)
        INTO in_flight, in_thread
        FROM runs r
        WHERE r.tenant_id = new_tenant_id AND r.user_id = new_user_id
          AND r.status IN ('accepted', 'running');
    SELECT COALESCE((SELECT t.usage_version FROM tenants t WHERE t.tenant_id = new_tenant_id), 0)
        INTO usage;
    admitted := in_thread IS NULL AND in_flight < max_in_flight;
    IF NOT admitted THEN
        RETURN;
    END IF;
    INSERT INTO runs (run_id, thread_id, user_id, tenant_id, agent, user_request, status,
                      created_at, finished_at, last_seq, node_id)
        VALUES (new_run_id, new_thread_id, new_user_id, new_tenant_id, new_agent,
                new_user_request, new_status, new_created_at, new_finished_at, new_last_seq,
                new_node_id);
    PERFORM agentwire_touch_thread(new_user_id, new_thread_id, new_tenant_id, thread_title,
                                   now_ms);
    IF first_seq IS NOT NULL THEN
        INSERT INTO run_events (run_id, seq, event_type, payload, created_at)
            VALUES (new_run_id, first_seq, first_type, first_payload, first_created_at);
    END IF;
END;
$$;
