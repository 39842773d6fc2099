-- agentwire store (SQLite), schema version 4: threads are keyed by tenant too.
--
-- A principal is a (tenant, user) pair: the same `sub` under two `org_id`s must not share a
-- thread row (the second tenant's runs then had their thread titled, dated and listed under the
-- first), and listing a user's threads in one tenant must be served by the index, before the
-- limit. SQLite cannot change a primary key, so the table is rebuilt. Threads a `sub` used in a
-- second tenant get their own row, titled by the first question asked there (the first 80
-- characters, as the engine titles threads). Applied once, inside a transaction, by the runner
-- in src/migrate.rs.

CREATE TABLE threads_by_tenant (
    user_id    TEXT    NOT NULL,
    thread_id  TEXT    NOT NULL,
    tenant_id  TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id, thread_id)
);

INSERT INTO threads_by_tenant (user_id, thread_id, tenant_id, title, created_at, updated_at)
    SELECT user_id, thread_id, tenant_id, title, created_at, updated_at FROM threads;

INSERT INTO threads_by_tenant (user_id, thread_id, tenant_id, title, created_at, updated_at)
    SELECT r.user_id, r.thread_id, r.tenant_id,
           substr((SELECT f.user_request FROM runs AS f
                   WHERE f.tenant_id = r.tenant_id AND f.user_id = r.user_id
                     AND f.thread_id = r.thread_id
                   ORDER BY f.created_at, f.rowid LIMIT 1), 1, 80),
           MIN(r.created_at), MAX(r.created_at)
    FROM runs AS r
    WHERE NOT EXISTS (SELECT 1 FROM threads_by_tenant AS t
                      WHERE t.tenant_id = r.tenant_id AND t.user_id = r.user_id
                        AND t.thread_id = r.thread_id)
    GROUP BY r.tenant_id, r.user_id, r.thread_id;

DROP TABLE threads;
ALTER TABLE threads_by_tenant RENAME TO threads;

CREATE INDEX threads_user_updated ON threads (tenant_id, user_id, updated_at, thread_id);
