#!/usr/bin/env bash
# Soak test (issue 5): a release `agentwire serve` under steady load for a set time (default 30
# minutes), with cancels and reconnects mixed in, on 127.0.0.1 only. It stops by itself.
#
#   scripts/soak.sh                 # 1800 s
#   scripts/soak.sh 300             # 5 minutes
#   RATE=8 CHAOS_RATE=1 scripts/soak.sh 1800
#
# Traffic:
#   - `agentwire load --rate $RATE`: a steady open-model stream of supervisor runs, each on a fresh
#     socket (connections come and go all the time); every run checked against the grammar and
#     for cross-user leaks;
#   - the `soak_chaos` example (crates/check/examples), at $CHAOS_RATE iterations per second:
#     alternately cancels a run after its first events, and drops a socket mid-run then
#     reconnects and resumes from the last seq (no gap, no duplicate).
#
# Reports: runs completed and failed, grammar violations and leaks (from load's JSON summary),
# the chaos counts, and the server's RSS and open file descriptors (from /proc/PID) after the
# warm-up and at the end, with the growth; samples every $SAMPLE_S seconds go to samples.csv.
# Everything lands in $OUT (default target/soak/<date>).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-1800}
rate=${RATE:-5}
chaos_rate=${CHAOS_RATE:-0.5}
warmup=${WARMUP_S:-300}
sample_s=${SAMPLE_S:-60}
out=${OUT:-target/soak/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"

echo "== building (release)"
cargo build --release -q -p agentwire
cargo build --release -q -p agentwire-check --example soak_chaos
bin=target/release/agentwire
chaos=target/release/examples/soak_chaos

secret=$(openssl rand -hex 32)
export AGENTWIRE_JWT_SECRET=$secret
db="sqlite://$PWD/$out/soak.db"

echo "== starting the server (log: $out/server.log)"
RUST_LOG=info "$bin" serve --listen 127.0.0.1:0 --database "$db" --demo-data \
    >"$out/server.log" 2>&1 &
server=$!
cleanup() {
    kill "$server" 2>/dev/null || true
    [ -n "${load_pid:-}" ] && kill "$load_pid" 2>/dev/null || true
    [ -n "${chaos_pid:-}" ] && kill "$chaos_pid" 2>/dev/null || true
}
trap cleanup EXIT
addr=""
for _ in $(seq 1 100); do
    addr=$(grep -o 'ws://[0-9.]*:[0-9]*' "$out/server.log" | head -1 | sed 's|ws://||') || true
    [ -n "$addr" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$out/server.log"; exit 2; }
    sleep 0.1
done
[ -n "$addr" ] || { echo "the server did not start" >&2; exit 2; }
echo "   pid $server at $addr"

sample() { # prints "rss_kib fds"
    local rss fds
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$server/status")
    fds=$(find "/proc/$server/fd" -mindepth 1 -maxdepth 1 | wc -l)
    echo "$rss $fds"
}
echo "elapsed_s,rss_kib,open_fds" >"$out/samples.csv"
read -r rss0 fds0 < <(sample)
echo "0,$rss0,$fds0" >>"$out/samples.csv"

echo "== load: $rate runs/s and chaos: $chaos_rate iterations/s for $duration s"
# The secret travels in the environment (AGENTWIRE_JWT_SECRET), not on command lines `ps` shows.
timeout $((duration + 600)) "$bin" load --target "http://$addr" --org soak \
    --rate "$rate" --duration "${duration}s" --max-in-flight 200 --no-progress \
    --json "$out/load.json" >"$out/load.txt" 2>&1 &
load_pid=$!
timeout $((duration + 600)) "$chaos" --target "$addr" \
    --duration-s "$duration" --per-second "$chaos_rate" >"$out/chaos.json" 2>"$out/chaos.log" &
chaos_pid=$!

started=$(date +%s)
rss_warm=""; fds_warm=""; rss_mid=""
while kill -0 "$load_pid" 2>/dev/null || kill -0 "$chaos_pid" 2>/dev/null; do
    sleep "$sample_s"
    elapsed=$(($(date +%s) - started))
    read -r rss fds < <(sample)
    echo "$elapsed,$rss,$fds" >>"$out/samples.csv"
    if [ -z "$rss_warm" ] && [ "$elapsed" -ge "$warmup" ]; then
        rss_warm=$rss; fds_warm=$fds
    fi
    if [ -z "$rss_mid" ] && [ "$elapsed" -ge $((duration / 2)) ]; then
        rss_mid=$rss
    fi
    if [ "$elapsed" -gt $((duration + 600)) ]; then
        echo "the traffic did not stop in time" >&2
        break
    fi
done
load_status=0; wait "$load_pid" || load_status=$?
chaos_status=0; wait "$chaos_pid" || chaos_status=$?
load_pid=""; chaos_pid=""
read -r rss_end fds_end < <(sample)
echo "$(($(date +%s) - started)),$rss_end,$fds_end" >>"$out/samples.csv"
# Idle again: every socket closed, so the fds back at their resting number.
sleep 5
read -r rss_idle fds_idle < <(sample)

echo "== stopping the server (SIGTERM)"
kill -TERM "$server"
server_status=0; wait "$server" || server_status=$?
trap - EXIT

[ -n "$rss_warm" ] || { rss_warm=$rss0; fds_warm=$fds0; }
[ -n "$rss_mid" ] || rss_mid=$rss_warm
growth=$(awk -v a="$rss_warm" -v b="$rss_end" 'BEGIN { printf "%.1f", (b - a) * 100 / a }')
# SQLite's page caches (six connections) fill while the event log grows, so RSS approaches its
# plateau over minutes; the second half's growth shows whether it keeps climbing.
growth_mid=$(awk -v a="$rss_mid" -v b="$rss_end" 'BEGIN { printf "%.1f", (b - a) * 100 / a }')
echo "== soak summary ($duration s, load $rate runs/s, chaos $chaos_rate/s; files in $out)"
jq -r '"load: \(.counts.completed) runs completed, \(.counts.failed) failed, \(.counts.violations) grammar violations, \(.counts.leaks) leaks, \(.counts.late) late starts; failures: \(.failures)"' "$out/load.json" 2>/dev/null \
    || { echo "load: no JSON summary (exit $load_status)"; tail -5 "$out/load.txt"; }
jq -r '"latency: ttfe p50 \(.latency_ms.ttfe.p50 // "?") ms p99 \(.latency_ms.ttfe.p99 // "?") ms; ttc p50 \(.latency_ms.ttc.p50 // "?") ms p99 \(.latency_ms.ttc.p99 // "?") ms"' "$out/load.json" 2>/dev/null || true
jq -r '"chaos: \(.iterations) iterations, \(.cancelled) cancelled, \(.completed_before_cancel) completed before the cancel, \(.resumed_whole) resumed whole, \(.failures) failures \(.first_failures)"' "$out/chaos.json" 2>/dev/null \
    || { echo "chaos: no summary (exit $chaos_status)"; tail -5 "$out/chaos.log"; }
echo "server RSS: start ${rss0} KiB, after ${warmup} s warm-up ${rss_warm} KiB, half-way ${rss_mid} KiB, end ${rss_end} KiB (growth after warm-up ${growth}%, over the second half ${growth_mid}%), idle ${rss_idle} KiB"
echo "server open fds: start ${fds0}, after warm-up ${fds_warm}, end of traffic ${fds_end}, idle ${fds_idle}"
echo "exit codes: load $load_status, chaos $chaos_status, server $server_status"
[ "$load_status" -eq 0 ] && [ "$chaos_status" -eq 0 ] && [ "$server_status" -eq 0 ]
