-- agentwire store (PostgreSQL), schema version 8: a run is ended in one call.
--
-- Ending a run was five statements from the node (BEGIN, the run's row locked and read, its
-- last events, its status, COMMIT), each a round trip; most of a run's events travel with its
-- end. This function does the same in one statement, committed as the node's call returns.
--
-- The run's row is locked before its status and log are checked, as appends lock it, so an
-- end and an append never interleave. Nothing is written unless the run is in flight with its
-- log at `after_seq`; `outcome` says which: 'ended', 'missing', 'finished' (with its status)
-- or 'moved' (with its log's last seq).
-- Applied once, inside a transaction holding the migration lock, by the runner in
-- src/migrate.rs.

CREATE FUNCTION agentwire_end_run(
    end_run_id text, after_seq bigint, new_status text, new_finished_at bigint,
    seqs bigint[], types text[], payloads text[], created bigint[],
    OUT outcome text, OUT status text, OUT last_seq bigint)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT r.status, r.last_seq INTO status, last_seq
        FROM runs r WHERE r.run_id = end_run_id FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'missing';
        RETURN;
    END IF;
    IF status NOT IN ('accepted', 'running') THEN
        outcome := 'finished';
        RETURN;
    END IF;
    IF last_seq <> after_seq THEN
        outcome := 'moved';
        RETURN;
    END IF;
    -- The trigger raises runs.last_seq.
    INSERT INTO run_events (run_id, seq, event_type, payload, created_at)
        SELECT end_run_id, e.seq, e.event_type, e.payload, e.created_at
        FROM unnest(seqs, types, payloads, created) AS e(seq, event_type, payload, created_at);
    UPDATE runs SET status = new_status, finished_at = new_finished_at
        WHERE run_id = end_run_id;
    outcome := 'ended';
END;
$$;
