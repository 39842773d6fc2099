#!/usr/bin/env bash
# One 1,000x1 burst against a fresh `agentwire serve --demo-data`, and where the server's CPU went.
#
#   bench/burst.sh [SERVER_BINARY]     # default target/release/agentwire; build it first
#   PERF=perf.data bench/burst.sh      # also record the server's CPU profile during the burst
#   MIX=20s bench/burst.sh             # instead of the burst, a sustained mix that long: 200 users
#                                      # asking in turn, drawn from bench/questions.txt, seed 7
#   HELD=2s bench/burst.sh             # instead of the burst, 1,000 sessions held open for 20 s
#                                      # (ramp 5 s), each asking once every 2 s: 500 runs/s
#                                      # offered (runs/s printed counts the ramp too: ~460)
#   POSTGRES=URL bench/burst.sh        # any of the above on a new PostgreSQL database made from
#                                      # URL (see bench/fresh_server.sh) instead of a SQLite file
#
# Starts the server on a file database in a temporary directory, warms it with 50 runs, then runs
# `agentwire load --users 1000 --runs-per-user 1 --ramp 1s` (the load generator is always this
# checkout's release build, so two servers are compared with the same client) and prints runs/s
# (completed / elapsed), TTFE and TTC, and the server's CPU time and context switches per thread
# name over the load, from /proc/<pid>/task/*/{schedstat,status}, and how many of the load's
# first events the server wrote within 1 / 2.5 / 5 / 10 / 25 ms of reading their request (its
# agentwire_time_to_first_event_seconds histogram, read from /metrics before and after).
# Alternate two binaries to compare them: one burst is noisy, several alternated are not.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
SERVER=${1:-target/release/agentwire}
LOAD=target/release/agentwire
. bench/fresh_server.sh
threads() {
    for task in /proc/$pid/task/*; do
        echo "$(tr ' ' _ <"$task/comm") $(cut -d' ' -f1 "$task/schedstat") \
            $(awk '/ctxt_switches/ {s += $2} END {print s}' "$task/status")"
    done
}
"$LOAD" load --target "$url" --secret "$secret" --users 50 --runs-per-user 1 --ramp 1s >/dev/null
threads >"$dir/before"
curl -s "$url/metrics" >"$dir/metrics.before"
if [[ -n "${PERF:-}" ]]; then
    perf record -e cpu-clock -F 999 -g -o "$PERF" -p $pid >/dev/null 2>&1 &
    perf_pid=$!
    sleep 0.5
fi
if [[ -n "${MIX:-}" ]]; then
    shape=(--users 200 --runs-per-user 0 --duration "$MIX" --ramp 1s
           --questions bench/questions.txt --seed 7)
elif [[ -n "${HELD:-}" ]]; then
    shape=(--users 1000 --runs-per-user 0 --pace "$HELD" --ramp 5s --duration 20s)
else
    shape=(--users 1000 --runs-per-user 1 --ramp 1s)
fi
"$LOAD" load --target "$url" --secret "$secret" "${shape[@]}" \
    --json "$dir/report.json" >/dev/null || true
threads >"$dir/after"
curl -s "$url/metrics" >"$dir/metrics.after"
if [[ -n "${PERF:-}" ]]; then
    kill -INT $perf_pid
    wait $perf_pid || true
fi
python3 - "$dir" <<'PY'
import collections, json, sys
d = sys.argv[1]
report = json.load(open(f"{d}/report.json"))
latency = report["latency_ms"]
completed = report["counts"]["completed"]
print(f"{completed / report['elapsed_s']:.0f} runs/s ({completed} completed in {report['elapsed_s']:.2f} s); "
      f"TTFE p50 / p99 {latency['ttfe']['p50']:.1f} / {latency['ttfe']['p99']:.1f} ms; "
      f"TTC p50 / p99 {latency['ttc']['p50']:.0f} / {latency['ttc']['p99']:.0f} ms; "
      f"TTFE from the send p50 / p99 {latency['ttfe_from_send']['p50']:.1f} / "
      f"{latency['ttfe_from_send']['p99']:.1f} ms")
def first_events(name):
    buckets = {}
    for line in open(f"{d}/{name}"):
        if line.startswith("agentwire_time_to_first_event_seconds_bucket{le=\""):
            bound, count = line.split('"')[1], line.split()[-1]
            buckets[bound] = int(count)
    return buckets
before, after = first_events("metrics.before"), first_events("metrics.after")
within = [(bound, after.get(bound, 0) - before.get(bound, 0))
          for bound in ("0.001", "0.0025", "0.005", "0.01", "0.025")]
print("server wrote the first event within " +
      ", ".join(f"{float(bound) * 1000:g} ms: {count}" for bound, count in within) +
      f" (of {after.get('+Inf', 0) - before.get('+Inf', 0)})")
def read(name):
    cpu, switches = collections.Counter(), collections.Counter()
    for line in open(f"{d}/{name}"):
        thread, ns, cs = line.split()
        cpu[thread] += int(ns)
        switches[thread] += int(cs)
    return cpu, switches
(cpu0, cs0), (cpu1, cs1) = read("before"), read("after")
cpu = {t: (cpu1[t] - cpu0[t]) / 1e6 for t in cpu1}
print(f"server CPU over the load: {sum(cpu.values()):.0f} ms, {sum(cpu.values()) / completed:.2f} ms a run")
for thread, ms in sorted(cpu.items(), key=lambda kv: -kv[1]):
    if ms >= 1:
        print(f"  {thread:<16} {ms:6.0f} ms  {cs1[thread] - cs0[thread]:6} context switches")
PY
