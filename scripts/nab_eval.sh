#!/usr/bin/env bash
# The anomaly figures of issue 14, measured through the product: `agentwire analyze FILE --format
# series --json` on every series of the NAB development set (../shared/data/nab/dev) and on
# nyc_taxi, scored against the labelled windows exactly as the issue defines it:
#
#   window recall = labelled windows overlapped by at least one reported anomaly / labelled windows
#   precision     = reported anomalies overlapping a labelled window / reported anomalies
#
# both summed over all series of a set. A reported anomaly is one entry of the report's
# `anomalies` (its `start`..`end`). Also printed: the same figures on the two halves of the dev set
# (files sorted by name, alternating: half A holds the 1st, 3rd, ... file, half B the others), the
# anomalies on each series without a labelled window, and false episodes per 1,000 points outside
# the labelled windows.
#
#   scripts/nab_eval.sh                # debug build
#   PROFILE=release scripts/nab_eval.sh
#   DATA=/path/to/nab scripts/nab_eval.sh
#   BIN=/path/to/agentwire scripts/nab_eval.sh   # an agentwire already built (e.g. an older one)
#
# The JSON reports land in $OUT (default target/nab); per-series rows go to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

data=${DATA:-../shared/data/nab}
out=${OUT:-target/nab}
profile=${PROFILE:-dev}
if [ ! -d "$data/dev" ]; then
  echo "no NAB data at $data/dev (set DATA=...)" >&2
  exit 2
fi
mkdir -p "$out/dev"

if [ -n "${BIN:-}" ]; then
  bin=$BIN
else
  cargo build --quiet --profile "$profile" -p agentwire
  bin_dir=debug
  [ "$profile" = dev ] || bin_dir=$profile
  bin=target/$bin_dir/agentwire
fi

for csv in "$data"/dev/*.csv; do
  "$bin" analyze "$csv" --format series --json > "$out/dev/$(basename "$csv" .csv).json"
done
"$bin" analyze "$data/nyc_taxi.csv" --format series --json > "$out/nyc_taxi.json"

python3 - "$data" "$out" <<'PY'
import json, os, sys
from datetime import datetime, timezone

data, out = sys.argv[1], sys.argv[2]

def label_time(s):
    return datetime.strptime(s, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)

def report_time(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))

def points(csv):
    with open(csv) as f:
        rows = [l.split(",")[0] for l in f.read().splitlines()[1:] if l.strip()]
    return [label_time(r + ".000000") if "." not in r else label_time(r) for r in rows]

def score(csv, report, windows):
    anomalies = [(report_time(a["start"]), report_time(a["end"])) for a in report["anomalies"] or []]
    windows = [(label_time(s), label_time(e)) for s, e in windows]
    overlaps = lambda a, w: a[0] <= w[1] and a[1] >= w[0]
    hit = sum(any(overlaps(a, w) for a in anomalies) for w in windows)
    true = sum(any(overlaps(a, w) for w in windows) for a in anomalies)
    ts = points(csv)
    outside = sum(not any(s <= t <= e for s, e in windows) for t in ts)
    return dict(windows=len(windows), hit=hit, reported=len(anomalies), true=true,
                points=len(ts), outside=outside)

def total(rows):
    t = {k: sum(r[k] for r in rows) for k in ("windows", "hit", "reported", "true", "outside")}
    t["recall"] = t["hit"] / t["windows"] if t["windows"] else float("nan")
    t["precision"] = t["true"] / t["reported"] if t["reported"] else float("nan")
    t["false_per_1000"] = 1000 * (t["reported"] - t["true"]) / t["outside"]
    return t

labels = json.load(open(os.path.join(data, "dev", "windows.json")))
names = sorted(labels)
rows = {}
print(f"{'series':36} {'windows':>7} {'hit':>4} {'reported':>8} {'in window':>9}")
for name in names:
    stem = name[:-4]
    report = json.load(open(os.path.join(out, "dev", stem + ".json")))
    r = score(os.path.join(data, "dev", name), report, labels[name])
    rows[name] = r
    print(f"{stem:36} {r['windows']:7} {r['hit']:4} {r['reported']:8} {r['true']:9}")

def line(title, t):
    print(f"{title:28} recall {t['hit']}/{t['windows']} = {t['recall']:.3f}   precision "
          f"{t['true']}/{t['reported']} = {t['precision']:.3f}   false episodes per 1,000 "
          f"unlabelled points {t['false_per_1000']:.3f}")

print()
line("dev set (28 series)", total(rows.values()))
line("dev half A (1st, 3rd, ...)", total([rows[n] for n in names[0::2]]))
line("dev half B (2nd, 4th, ...)", total([rows[n] for n in names[1::2]]))
quiet = [n for n in names if not labels[n]]
print("no labelled window: " + ", ".join(f"{n[:-4]} {rows[n]['reported']}" for n in quiet))
taxi_labels = json.load(open(os.path.join(data, "nyc_taxi_windows.json")))
taxi = score(os.path.join(data, "nyc_taxi.csv"), json.load(open(os.path.join(out, "nyc_taxi.json"))),
             taxi_labels["realKnownCause/nyc_taxi.csv"])
line("nyc_taxi", total([taxi]))
PY
