#!/usr/bin/env bash
# Figures for several nodes on one PostgreSQL (docs/deploy.md "Figures"). Not a test: it measures
# and prints. Release build.
#
# 1. The same `agentwire load` against one node on SQLite, then one, two and three nodes on
#    PostgreSQL (sessions spread over the nodes): runs/s, TTFE and TTC p50/p99.
# 2. Two nodes on PostgreSQL (default lease, 30 ms step delay): cross-node follow delay and resume
#    latency, then SIGKILL of one node -> INTERRUPTED seen through the other
#    (crates/check/examples/cross_node.rs).
#
# Needs AGENTWIRE_TEST_POSTGRES_URL: an admin URL of a PostgreSQL you can spare (each
# configuration gets a database of its own, dropped at the end). On 2 cores every node shares the
# CPU with the others and with the load generator: the figures show the cost of the cluster and
# that it is correct under load, not a speed-up.
#
#   AGENTWIRE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres scripts/cluster_bench.sh
#   USERS=200 RUNS_PER_USER=10 AGENT=triage scripts/cluster_bench.sh    # the defaults
set -euo pipefail
cd "$(dirname "$0")/.."

: "${AGENTWIRE_TEST_POSTGRES_URL:?set it to an admin URL of a PostgreSQL you can spare}"
ADMIN=$AGENTWIRE_TEST_POSTGRES_URL
USERS=${USERS:-200}
RUNS_PER_USER=${RUNS_PER_USER:-10}
AGENT=${AGENT:-triage}
RESUME_RUNS=${RESUME_RUNS:-30}

cargo build --release -q -p agentwire -p agentwire-check --example cross_node
BIN=target/release/agentwire
CROSS=target/release/examples/cross_node
export AGENTWIRE_JWT_SECRET
AGENTWIRE_JWT_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')

work=$(mktemp -d)
pids=()
databases=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for db in "${databases[@]}"; do psql "$ADMIN" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A fresh database; prints its URL.
new_database() {
  local name="aw_bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  psql "$ADMIN" -qc "CREATE DATABASE \"$name\"" >/dev/null
  databases+=("$name")
  # The admin URL with its database replaced by the new one.
  echo "$ADMIN" | sed -E "s#^([a-z]+://[^/]+)/[^?]*#\1/$name#"
}

# Starts a node on $1 (database URL) named $2, more flags after; sets NODE_ADDR and NODE_PID.
start_node() {
  local database=$1 name=$2
  shift 2
  local log="$work/$name.log"
  "$BIN" serve --listen 127.0.0.1:0 --database "$database" --demo-data --node-name "$name" "$@" 2>"$log" &
  NODE_PID=$!
  pids+=("$NODE_PID")
  for _ in $(seq 1 200); do
    NODE_ADDR=$(grep -o 'WebSocket at ws://[0-9.:]*' "$log" | head -n 1 | sed 's#.*ws://##') || true
    [ -n "$NODE_ADDR" ] && return 0
    sleep 0.1
  done
  cat "$log" >&2
  echo "node $name did not start" >&2
  exit 1
}

stop_nodes() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

# The load against the given addresses; prints one line of figures.
load() {
  local label=$1
  shift
  local targets=()
  for addr in "$@"; do targets+=(--target "http://$addr"); done
  "$BIN" load "${targets[@]}" --users "$USERS" --runs-per-user "$RUNS_PER_USER" --agent "$AGENT" \
    --completion-timeout 300s --first-event-timeout 120s --duration 600s \
    --no-progress --json "$work/load.json" >"$work/load.txt" || {
      cat "$work/load.txt" >&2
      echo "$label: the load failed (see above)" >&2
    }
  python3 - "$label" "$work/load.json" <<'EOF'
import json, sys
label, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
c, lat = r["counts"], r["latency_ms"]
def p(name, q):
    v = lat.get(name, {}).get(q)
    return "-" if v is None else f"{v:.0f}"
print(f"{label:<24} {c['completed']:>5}/{c['scheduled']:<5} {c['completed'] / r['elapsed_s']:>7.1f} runs/s"
      f"   TTFE p50 {p('ttfe','p50'):>6} p99 {p('ttfe','p99'):>6} ms"
      f"   TTC p50 {p('ttc','p50'):>6} p99 {p('ttc','p99'):>6} ms   failed {c['failed']}")
EOF
}

echo "== load: $USERS users x $RUNS_PER_USER $AGENT runs, the same command on each configuration"
start_node "sqlite://$work/bench.db" sqlite-1
load "SQLite, 1 node" "$NODE_ADDR"
stop_nodes
for nodes in 1 2 3; do
  database=$(new_database)
  addrs=()
  for n in $(seq 1 "$nodes"); do
    start_node "$database" "pg-$n"
    addrs+=("$NODE_ADDR")
  done
  load "PostgreSQL, $nodes node(s)" "${addrs[@]}"
  stop_nodes
done

echo "== across nodes: two nodes on PostgreSQL, default lease, 30 ms step delay"
database=$(new_database)
start_node "$database" cross-a --step-delay-ms 30
a=$NODE_ADDR
a_pid=$NODE_PID
start_node "$database" cross-b --step-delay-ms 30
b=$NODE_ADDR
"$CROSS" --a "$a" --b "$b" --runs "$RESUME_RUNS" --kill-pid "$a_pid"
