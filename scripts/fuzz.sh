#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a set time, one after another, and prints a
# summary: executions, time, corpus size and crashes per target.
#
#   scripts/fuzz.sh                 # 600 s per target
#   scripts/fuzz.sh 60              # 60 s per target
#   TARGETS="jwt" scripts/fuzz.sh   # one target
#
# cargo-fuzz drives libFuzzer and needs nightly-only compiler flags (sanitizer coverage). With a
# nightly toolchain installed it is used; otherwise the stable compiler is told to accept them
# (RUSTC_BOOTSTRAP=1), which is what this machine's CI image does. Install the driver once with
# `cargo install cargo-fuzz`. AddressSanitizer is on (the default) unless SANITIZER=none.
#
# The corpus grows in fuzz/corpus/<target> (not committed), seeded from fuzz/seeds/<target>
# (committed: inputs taken from the tests). Crashes land in fuzz/artifacts/<target>; each one
# found so far has a regression test beside the code it broke. Logs go to fuzz/logs/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-600}
targets=${TARGETS:-"client_message jwt usage_import"}
sanitizer=${SANITIZER:-address}
rss_limit_mb=${RSS_LIMIT_MB:-2048}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
    toolchain="nightly ($(rustup run nightly rustc --version))"
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
    toolchain="stable with RUSTC_BOOTSTRAP=1 ($(rustc --version))"
fi
echo "== fuzzing with ${toolchain}, sanitizer ${sanitizer}, ${seconds} s per target"

mkdir -p logs
summary=()
for target in $targets; do
    mkdir -p "corpus/$target" "artifacts/$target"
    if [ "$target" = usage_import ] && [ -d ../../shared/data ]; then
        # The public data sets are never copied into the project; their first lines seed the
        # (uncommitted) working corpus when they are beside it.
        # The target's first byte picks the importer; give each head to each of them.
        find ../../shared/data -type f \( -name '*.csv' -o -name '*.jsonl' \) | while read -r file; do
            for selector in $(seq 0 15); do
                { printf "\\x$(printf %02x "$selector")"; head -c 4096 "$file"; } \
                    >"corpus/$target/data-$selector-$(basename "$file")"
            done
        done
    fi
    log="logs/$target.log"
    echo "== $target (log: fuzz/$log)"
    "${fuzz[@]}" build --sanitizer "$sanitizer" "$target"
    status=0
    "${fuzz[@]}" run --sanitizer "$sanitizer" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb="$rss_limit_mb" \
        -timeout=10 >"$log" 2>&1 || status=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | awk '{print $2}')
    secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 | awk '{print $5}')
    corpus=$(find "corpus/$target" -type f | wc -l)
    crashes=$(find "artifacts/$target" -type f | wc -l)
    verdict=ok
    [ "$status" -ne 0 ] && verdict="FAILED (exit $status, see fuzz/$log)"
    summary+=("$(printf '%-16s %14s execs %6s s %8s corpus files %4s artifacts  %s' \
        "$target" "${runs:-?}" "${secs:-?}" "$corpus" "$crashes" "$verdict")")
done
echo "== summary"
printf '%s\n' "${summary[@]}"
for line in "${summary[@]}"; do
    case "$line" in *FAILED*) exit 1 ;; esac
done
