#!/usr/bin/env python3
"""Replays the event appends of a 1,000-run burst against agentwire's SQLite schema, without agentwire.

It measures what the schema costs the one writer, apart from the server: a fresh database in DIR
brought to schema version 5 (the log keyed by run id) or 6 (keyed by an integer per run) from
crates/store/migrations/sqlite, 1,000 runs in flight, then their events interleaved as a burst
writes them (the k-th event of every run, then the (k+1)-th, ...), in commits of BATCH events, each
one multi-row statement of the shape the append had when the schema changed (with `RETURNING`;
since e96a139 the server's common append returns nothing, see crates/store/src/sqlite/events.rs,
so that both versions are replayed with the same statement), in WAL mode with synchronous=FULL
as the server runs. Sizes follow a supervisor run on
the default question (about 80 KB in 48 events: 4 tool results of ~8 KB, an answer of 24 KB, the
rest a few hundred bytes). Prints the seconds the appends took, best of REPEAT.

    python3 bench/replay_appends.py --version 5 --dir /tmp
    python3 bench/replay_appends.py --version 6 --dir /tmp
"""
import argparse
import os
import sqlite3
import tempfile
import time
import uuid

MIGRATIONS = os.path.join(os.path.dirname(__file__), "..", "crates", "store", "migrations", "sqlite")

APPEND = {
    5: "INSERT INTO run_events (run_id, seq, event_type, payload, created_at) "
    "SELECT e.column1, e.column2, e.column3, e.column4, e.column5 FROM (VALUES {values}) AS e "
    "WHERE EXISTS (SELECT 1 FROM runs r WHERE r.run_id = e.column1 "
    "AND r.status IN ('accepted', 'running')) ON CONFLICT DO NOTHING RETURNING run_id, seq",
    6: "INSERT INTO run_events (run_key, seq, event_type, payload, created_at) "
    "SELECT r.run_key, e.column2, e.column3, e.column4, e.column5 FROM (VALUES {values}) AS e "
    "JOIN runs AS r ON r.run_id = e.column1 WHERE r.status IN ('accepted', 'running') "
    "ON CONFLICT DO NOTHING "
    "RETURNING (SELECT run_id FROM runs WHERE runs.run_key = run_events.run_key), seq",
}


def sizes(events):
    """Payload sizes of one run's events, in order."""
    out = [300] * events
    for i in (events // 5, 2 * events // 5, 3 * events // 5, 4 * events // 5):
        out[i] = 8_000
    out[-1] = 24_000
    return out


def replay(version, directory, runs, events, batch):
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        db = sqlite3.connect(os.path.join(tmp, "replay.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        for name in sorted(os.listdir(MIGRATIONS))[:version]:
            with open(os.path.join(MIGRATIONS, name)) as f:
                db.executescript(f.read())
        db.execute("INSERT INTO tenants VALUES ('t', 0)")
        ids = [str(uuid.uuid4()) for _ in range(runs)]
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO runs (run_id, thread_id, user_id, tenant_id, agent, user_request, status, "
            "created_at) VALUES (?, ?, 'u', 't', 'supervisor', 'q', 'running', 0)",
            ((run_id, run_id) for run_id in ids),
        )
        db.execute("COMMIT")
        payloads = [("x" * n) for n in sizes(events)]
        rows = [
            (run_id, seq + 1, "agent_thinking", payloads[seq], 0)
            for seq in range(events)
            for run_id in ids
        ]
        start = time.perf_counter()
        for i in range(0, len(rows), batch):
            chunk = rows[i : i + batch]
            sql = APPEND[version].format(values=",".join(["(?,?,?,?,?)"] * len(chunk)))
            db.execute("BEGIN")
            db.execute(sql, [value for row in chunk for value in row]).fetchall()
            db.execute("COMMIT")
        elapsed = time.perf_counter() - start
        db.close()
        return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", type=int, choices=sorted(APPEND), required=True)
    parser.add_argument("--dir", default=None, help="where the database goes (default: the system's temp dir)")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--events", type=int, default=48)
    parser.add_argument("--batch", type=int, default=120, help="events per commit")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    best = min(replay(args.version, args.dir, args.runs, args.events, args.batch) for _ in range(args.repeat))
    print(f"schema version {args.version}: {args.runs * args.events} appends in {best:.2f} s "
          f"(best of {args.repeat}, {args.batch} events a commit)")


if __name__ == "__main__":
    main()
