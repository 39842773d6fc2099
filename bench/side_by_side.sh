#!/usr/bin/env bash
# agentwire and the Python peer (../shared/bench/python_peer.py), side by side, with the same
# `agentwire load` commands in one run; writes the table to bench/latest.md (or $OUT).
#
#   bench/side_by_side.sh              # build release, run everything (about 7 minutes)
#   QUICK=1 bench/side_by_side.sh      # only 20x10, 100x4, 1,000x1 and 1,000x1 held open (--hold)
#   PROFILE=1 bench/side_by_side.sh    # also a CPU profile (perf, cpu-clock) of agentwire during
#                                      # the sustained mix, summarised to bench/profile.txt
#   AGENTWIRE_BIN=path/to/agentwire    # measure that binary instead of building one
#
# The peer is set up in a temporary venv from PyPI (fastapi, uvicorn[standard], pyjwt). Both
# servers listen on loopback only and are stopped when the script exits. Everything the script
# measures comes from `agentwire load --json` reports and /proc (peak RSS, idle connection memory).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
OUT=${OUT:-$ROOT/bench/latest.md}
PROFILE_OUT=${PROFILE_OUT:-$ROOT/bench/profile.txt}
QUESTIONS=${QUESTIONS:-$ROOT/bench/questions.txt}
TMP=$(mktemp -d /tmp/agentwire-bench.XXXXXX)
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [[ -z "${AGENTWIRE_BIN:-}" ]]; then
    (cd "$ROOT" && cargo build --release --locked -p agentwire >&2)
    AGENTWIRE_BIN=$ROOT/target/release/agentwire
fi
BIN=$AGENTWIRE_BIN

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_healthy PORT LOG: waits for /health; on failure shows the server's log (the temporary
# directory is removed on exit).
wait_healthy() {
    for _ in $(seq 1 200); do
        curl -fsS "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server on port $1 did not become healthy; the end of its log:" >&2
    tail -n 20 "$2" >&2
    return 1
}

echo "setting up the Python peer in $TMP/venv" >&2
python3 -m venv "$TMP/venv"
"$TMP/venv/bin/pip" install -q --disable-pip-version-check fastapi 'uvicorn[standard]' pyjwt >&2

start_agentwire() {
    AW_PORT=$(free_port)
    "$BIN" serve --demo-data --listen "127.0.0.1:$AW_PORT" --database "sqlite://$TMP/aw-$AW_PORT.db" \
        --jwt-secret "$SECRET" >"$TMP/aw-$AW_PORT.log" 2>&1 &
    AW_PID=$!
    PIDS+=("$AW_PID")
    wait_healthy "$AW_PORT" "$TMP/aw-$AW_PORT.log"
}

start_peer() {
    PY_PORT=$(free_port)
    "$TMP/venv/bin/python" "$SHARED/bench/python_peer.py" "$PY_PORT" "$SECRET" >"$TMP/peer.log" 2>&1 &
    PY_PID=$!
    PIDS+=("$PY_PID")
    wait_healthy "$PY_PORT" "$TMP/peer.log"
}

has_questions=0
"$BIN" load --help | grep -q -- '--questions' && has_questions=1

# load NAME PORT ARGS...: one `agentwire load`, its JSON report kept as $TMP/NAME.json.
load() {
    local name=$1 port=$2
    shift 2
    echo "load $name: $*  (load average: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    "$BIN" load --target "http://127.0.0.1:$port" --secret "$SECRET" --no-progress \
        --json "$TMP/$name.json" "$@" >"$TMP/$name.txt" 2>&1 || true
    cut -d' ' -f1 /proc/loadavg >"$TMP/$name.loadavg"
}

# from_send NAME: "p50 / p99" of a load report's TTFE counted from each request's send.
from_send() {
    python3 - "$TMP/$1.json" <<'EOF'
import json, sys
try:
    t = json.load(open(sys.argv[1]))["latency_ms"]["ttfe_from_send"]
    print(f"{t['p50']:.2f} / {t['p99']:.2f}")
except Exception:
    print("-")
EOF
}

# row LABEL NAME: a Markdown table row from a load report.
row() {
    python3 - "$1" "$TMP/$2.json" "$(cat "$TMP/$2.loadavg" 2>/dev/null || echo '?')" <<'EOF'
import json, sys
label, path, loadavg = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    r = json.load(open(path))
except Exception as e:
    print(f"| {label} | no report ({e}) |"); sys.exit()
c, lat = r["counts"], r["latency_ms"]
def p(name, q):
    v = lat.get(name, {}).get(q)
    return "-" if v is None else (f"{v:.1f}" if v < 100 else f"{v:,.0f}")
rate = c["completed"] / r["elapsed_s"] if r["elapsed_s"] else 0
fails = ", ".join(f"{k}: {v}" for k, v in r["failures"].items()) or "none"
peaks = f"{c.get('peak_connected', 0):,} / {c.get('peak_in_flight', 0):,}"
print(f"| {label} | {c['completed']:,}/{c['started']:,} | {rate:,.0f} | {peaks} | {p('ttfe','p50')} / {p('ttfe','p99')} "
      f"| {p('ttc','p50')} / {p('ttc','p99')} | {c['violations']} | {c['leaks']} | {fails} | {loadavg} |")
EOF
}

# profile_summary PERF_DATA BINARY: self time by function and by crate. perf does not symbolize
# this Rust binary by itself (it prints bare addresses), so addresses in it go through addr2line.
profile_summary() {
    python3 - "$1" "$2" <<'EOF'
import collections, re, subprocess, sys
data, binary = sys.argv[1], sys.argv[2]
out = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,symbol", "--stdio",
                      "--percent-limit", "0"], capture_output=True, text=True).stdout
rows = []
for line in out.splitlines():
    m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*$", line)
    if m:
        rows.append((float(m.group(1)), m.group(2), m.group(4).split("  ")[0]))
base = binary.split("/")[-1]
hexes = sorted({s for _, d, s in rows if d == base and s.startswith("0x")})
names = {}
if hexes:
    res = subprocess.run(["addr2line", "-f", "-C", "-e", binary] + hexes, capture_output=True, text=True).stdout.splitlines()
    names = dict(zip(hexes, res[0::2]))
by_fn, by_crate = collections.Counter(), collections.Counter()
for pct, dso, sym in rows:
    name = names.get(sym, sym) if dso == base else f"{sym} [{dso}]"
    by_fn[name[:110]] += pct
    m = re.match(r"<?(agentwire_\w+|sqlx_\w+|sqlx|tokio|serde_json|serde|tungstenite|hyper|axum|core|alloc|std|chrono|hashbrown|bytes|futures_\w+)", name)
    if dso != base:
        crate = "kernel" if "kernel" in dso else dso
    elif m:
        crate = m.group(1)
    elif "::" not in name and name.islower():
        crate = "sqlite (C)"
    else:
        crate = "other"
    by_crate[crate] += pct
print("self time by function (top 25):")
for name, p in by_fn.most_common(25):
    print(f"  {p:6.2f}%  {name}")
print("self time by crate / library:")
for name, p in by_crate.most_common(12):
    print(f"  {p:6.2f}%  {name}")
EOF
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

# Idle connection memory: the server's RSS before and after N authenticated sockets that only stay
# open, divided by N.
idle_memory() {
    local pid=$1 port=$2 n=$3
    local before after
    before=$(rss_kib "$pid")
    "$TMP/venv/bin/python" - "$port" "$SECRET" "$n" "$pid" <<'EOF' >"$TMP/idle.txt"
import asyncio, sys, time, jwt, websockets
port, secret, n, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"): return int(line.split()[1])
async def one(i):
    tok = jwt.encode({"sub": f"idle-{i}", "exp": int(time.time()) + 3600}, secret, algorithm="HS256")
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws", additional_headers={"Authorization": f"Bearer {tok}"},
                                  subprotocols=["agentwire.v1"], open_timeout=30, max_size=None)
    await ws.recv()  # connection_established
    return ws
async def main():
    socks = []
    for start in range(0, n, 200):
        socks += await asyncio.gather(*(one(i) for i in range(start, min(n, start + 200))))
    await asyncio.sleep(3)
    print(rss())
    for s in socks: await s.close()
asyncio.run(main())
EOF
    after=$(tail -1 "$TMP/idle.txt")
    echo $(((after - before) * 1024 / n))
}

AW=()
PY=()
specs=("20x10:--users 20 --runs-per-user 10 --ramp 1s"
       "100x4:--users 100 --runs-per-user 4 --ramp 1s"
       "1000x1:--users 1000 --runs-per-user 1 --ramp 1s"
       "1000x1-held:--users 1000 --runs-per-user 1 --ramp 1s --hold")

start_agentwire
start_peer
# Warm both (first run generates the demo data set, the peer's imports warm up).
load warm-aw "$AW_PORT" --users 4 --runs-per-user 2
load warm-py "$PY_PORT" --users 4 --runs-per-user 2

for spec in "${specs[@]}"; do
    name=${spec%%:*}
    # shellcheck disable=SC2086
    load "aw-$name" "$AW_PORT" ${spec#*:}
    # shellcheck disable=SC2086
    load "py-$name" "$PY_PORT" ${spec#*:}
done

if [[ -z "${QUICK:-}" ]]; then
    # 1,000 sockets open at once, each asking every 5 s: 200 runs/s, below saturation, so TTFE
    # is what a run's first event costs with 1,000 sessions held, not a queue's length.
    open=(--users 1000 --runs-per-user 0 --pace 5s --ramp 5s --duration 20s)
    if [[ $has_questions == 1 ]]; then
        open+=(--questions "$QUESTIONS" --seed 7)
    fi
    load aw-open "$AW_PORT" "${open[@]}"
    load py-open "$PY_PORT" "${open[@]}"

    mix=(--users 200 --runs-per-user 0 --duration 60s --ramp 1s)
    if [[ $has_questions == 1 ]]; then
        mix+=(--questions "$QUESTIONS" --seed 7)
    fi
    if [[ -n "${PROFILE:-}" ]] && perf record -e cpu-clock -o /dev/null -- true 2>/dev/null; then
        perf record -e cpu-clock -F 499 -o "$TMP/perf.data" -p "$AW_PID" -- sleep 30 >/dev/null 2>&1 &
        PERF_PID=$!
    fi
    load aw-mix "$AW_PORT" "${mix[@]}"
    if [[ -n "${PERF_PID:-}" ]]; then
        wait "$PERF_PID" || true
        {
            echo "perf record -e cpu-clock -F 499 -p <agentwire> -- sleep 30, during the sustained mix"
            echo "(load average then: $(cut -d' ' -f1-3 /proc/loadavg)); addresses resolved with addr2line."
            profile_summary "$TMP/perf.data" "$(readlink -f "$BIN")"
        } >"$PROFILE_OUT"
        echo "profile written to $PROFILE_OUT" >&2
    fi
    load py-mix "$PY_PORT" "${mix[@]}"

    # 10,000 concurrent sessions, one supervisor run each, on a fresh server; held, so that all
    # 10,000 sockets are open at once (each would close after its run otherwise).
    kill "$AW_PID"; wait "$AW_PID" 2>/dev/null || true
    start_agentwire
    load warm-aw2 "$AW_PORT" --users 2 --runs-per-user 1
    load aw-10k "$AW_PORT" --users 10000 --runs-per-user 1 --ramp 10s --duration 30s \
        --connect-timeout 60s --first-event-timeout 120s --completion-timeout 170s --hold
    PEAK_RSS_MIB=$(( $(hwm_kib "$AW_PID") / 1024 ))
    AW_AFTER_10K_RSS_MIB=$(( $(rss_kib "$AW_PID") / 1024 ))
    AW_METRICS_ACTIVE=$(curl -fsS "http://127.0.0.1:$AW_PORT/metrics" | awk '/^agentwire_runs_active / {print $2}')

    # Idle connection memory, on a fresh server.
    kill "$AW_PID"; wait "$AW_PID" 2>/dev/null || true
    start_agentwire
    IDLE_BYTES=$(idle_memory "$AW_PID" "$AW_PORT" 2000)
fi

{
    echo "# agentwire vs the Python peer, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)."
    echo "agentwire: \`$BIN serve --demo-data\` (release, SQLite); peer: python_peer.py on $("$TMP/venv/bin/python" --version 2>&1)."
    echo "Each row: \`agentwire load --users U --runs-per-user R --ramp 1s --secret S\` against each server; runs/s = completed / elapsed; sockets / runs in flight at the peak: the most the load had open at once (a session closes after its runs unless held with `--hold`)."
    echo
    echo "| load | completed/started | runs/s | sockets / runs in flight at the peak | TTFE p50 / p99 ms | TTC p50 / p99 ms | grammar violations | leaks | failures | load avg |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for spec in "${specs[@]}"; do
        name=${spec%%:*}
        row "agentwire $name" "aw-$name"
        row "python peer $name" "py-$name"
    done
    if [[ -z "${QUICK:-}" ]]; then
        row "agentwire 1,000 open sessions, 200 runs/s" aw-open
        row "python peer 1,000 open sessions, 200 runs/s" py-open
        row "agentwire 60 s mix (200 users)" aw-mix
        row "python peer 60 s mix (200 users)" py-mix
        row "agentwire 10,000 sessions, ramp 10 s, held open" aw-10k
        echo
        echo "- agentwire peak RSS (VmHWM) during the 10,000-session run: ${PEAK_RSS_MIB} MiB; RSS after it: ${AW_AFTER_10K_RSS_MIB} MiB; runs still active after it: ${AW_METRICS_ACTIVE:-?}."
        echo "- Idle connection memory (2,000 authenticated idle sockets, RSS delta / 2,000): $((IDLE_BYTES / 1024)).$(((IDLE_BYTES % 1024) * 10 / 1024)) KiB each."
        echo "- 1,000 open sessions: \`--users 1000 --runs-per-user 0 --pace 5s --ramp 5s --duration 20s\`; TTFE from the request's send, p50 / p99 ms: agentwire $(from_send aw-open), python peer $(from_send py-open)."
        if [[ $has_questions == 1 ]]; then
            echo "- The mix draws from \`bench/questions.txt\` with \`--seed 7\`."
        fi
        echo
        echo "Server metrics after the mix (from \`agentwire load\`'s report):"
        echo
        echo '```'
        grep -A12 -i 'server metrics' "$TMP/aw-mix.txt" || echo "(this load version does not read /metrics)"
        echo '```'
    fi
} >"$OUT"
cat "$OUT"
