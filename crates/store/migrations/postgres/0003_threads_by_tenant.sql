-- agentwire store (PostgreSQL), schema version 3: threads are keyed by tenant too.
--
-- A principal is a (tenant, user) pair: the same `sub` under two `org_id`s must not share a
-- thread row (the second tenant's runs then had their thread titled, dated and listed under the
-- first), and listing a user's threads in one tenant must be served by the index, before the
-- limit. Threads a `sub` used in a second tenant get their own row, titled by the first
-- question asked there (the first 80 characters, as the engine titles threads). Applied once,
-- inside a transaction holding the migration lock, by the runner in src/migrate.rs; it locks
-- the threads table while the key is rebuilt (once, at the upgrade).

ALTER TABLE threads DROP CONSTRAINT threads_pkey;
ALTER TABLE threads ADD PRIMARY KEY (tenant_id, user_id, thread_id);

INSERT INTO threads (user_id, thread_id, tenant_id, title, created_at, updated_at)
    SELECT r.user_id, r.thread_id, r.tenant_id,
           left((SELECT f.user_request FROM runs AS f
                 WHERE f.tenant_id = r.tenant_id AND f.user_id = r.user_id
                   AND f.thread_id = r.thread_id
                 ORDER BY f.created_at, f.run_no LIMIT 1), 80),
           min(r.created_at), max(r.created_at)
    FROM runs AS r
    WHERE NOT EXISTS (SELECT 1 FROM threads AS t
                      WHERE t.tenant_id = r.tenant_id AND t.user_id = r.user_id
                        AND t.thread_id = r.thread_id)
    GROUP BY r.tenant_id, r.user_id, r.thread_id;

DROP INDEX threads_user_updated;
CREATE INDEX threads_user_updated ON threads (tenant_id, user_id, updated_at, thread_id);
