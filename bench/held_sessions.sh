#!/usr/bin/env bash
# What a session costs the server after it has had a run and stays open.
#
#   bench/held_sessions.sh [SERVER_BINARY]     # default target/release/agentwire; build it first
#
# Starts `agentwire serve --demo-data` on a file database in a temporary directory, warms it with
# 50 runs, reads its RSS, then opens 2,000 sessions over 5 s that each ask once at arrival and
# again 20 s later (`--pace 20s --duration 25s`), and reads the RSS at 18 s, when every session
# has had one run and all are open and idle. Prints the difference per session. (The idle row of
# bench/side_by_side.sh is sessions that never ran.)
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
SERVER=${1:-target/release/agentwire}
LOAD=target/release/agentwire
SESSIONS=2000
. bench/fresh_server.sh
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
"$LOAD" load --target "$url" --secret "$secret" --users 50 --runs-per-user 1 --ramp 1s >/dev/null
sleep 1
base=$(rss_kib)
"$LOAD" load --target "$url" --secret "$secret" --users "$SESSIONS" --runs-per-user 0 \
    --pace 20s --ramp 5s --duration 25s --connect-timeout 60s >"$dir/load.txt" 2>&1 &
load_pid=$!
sleep 18
held=$(rss_kib)
wait $load_pid || true
echo "server RSS $((base / 1024)) MiB before, $((held / 1024)) MiB with $SESSIONS sessions held after one run each: $(((held - base) / SESSIONS)) KiB a session"
grep -m 1 'runs:' "$dir/load.txt" || true
