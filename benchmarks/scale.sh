#!/usr/bin/env bash
# Scale benchmark (issue 12): generate N customers x D days, then, in one run of this
# script and alternating so machine noise hits all alike, RUNS times each:
#   c360    the full job (jobs/customer_360.yaml) under --memory-limit LIMIT
#   duckdb  the same logical pipeline as one hand-written DuckDB script
#           (benchmarks/duckdb_pipeline.sql), memory_limit LIMIT, 2 threads
#   floor   read and count every raw row (DuckDB), the scan floor
#   nightly c360 on the next day, on the warehouse the full load left: one new raw
#           day on top of D, the rest from the typed staging cache (issue 18)
#   nightly2 the next day again: it folds the day the first night parsed into the
#           incremental steps' carried state, as every later night folds the day
#           before (the steady state; only the new day's parse is missing)
# The extracts hold D + 1 days; the full load and DuckDB run for day D.
# Prints wall, CPU and peak RSS (GNU time) per run and the medians, the ratio
# c360 / DuckDB, and the last c360 run's per-stage and per-step figures.
#   benchmarks/scale.sh [CUSTOMERS] [DAYS] [MEMORY_LIMIT] [RUNS]
#   benchmarks/scale.sh 200000 120 2GiB 3      # the quick preset
#   benchmarks/scale.sh 1000000 365 2GiB 3     # the issue's figure
# DUCKDB_LIMIT gives the DuckDB script another memory_limit (default: LIMIT): at
# 1M x 365 it runs out of memory under 2 GiB, so a ratio there needs more.
# Uses the release binary under $CARGO_TARGET_DIR (default ~/.cache/c360-target), or
# the binary $C360_BIN names (e.g. `cargo build --profile profiling`'s, the release
# build with symbols, on a machine without a release build yet), and the Python in
# $BENCH_PYTHON (default ~/.cache/c360-ci-venv, made with duckdb if absent).
set -euo pipefail
cd "$(dirname "$0")/.."
customers="${1:-200000}"; days="${2:-120}"; limit="${3:-2GiB}"; runs="${4:-3}"
duck_limit="${DUCKDB_LIMIT:-$limit}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/c360-target}"
target="$CARGO_TARGET_DIR"
if [ -n "${C360_BIN:-}" ]; then
    bin="$C360_BIN"
else
    cargo build --release --locked --quiet
    bin="$target/release/c360"
fi
py="${BENCH_PYTHON:-$HOME/.cache/c360-ci-venv/bin/python}"
if ! "$py" -c 'import duckdb' 2>/dev/null; then
    python3 -m venv "$(dirname "$(dirname "$py")")"
    "$(dirname "$py")/pip" install --quiet --disable-pip-version-check "duckdb>=1.1,<2"
fi
work="${BENCH_DIR:-${TMPDIR:-/tmp}/c360-scale-$customers-$days-plus1}"
end_date=$(date -u -d "2026-01-01 + $((days - 1)) days" +%F)
next_date=$(date -u -d "2026-01-01 + $days days" +%F)
mkdir -p "$work"
if [ ! -f "$work/raw/.done" ]; then
    rm -rf "$work/raw"
    /usr/bin/time -f "%e %U %S %M" -o "$work/generate.txt" \
        "$bin" generate --customers "$customers" --days "$((days + 1))" --seed 7 --out "$work/raw" >/dev/null
    touch "$work/raw/.done"
    echo "generated $customers customers x $((days + 1)) days in $(cut -d' ' -f1 "$work/generate.txt") s: $(du -sh "$work/raw" | cut -f1)"
fi

# measure NAME COMMAND...: one timed run, appended to $work/NAME.times as "wall cpu rss_kib".
measure() {
    local name="$1"; shift
    /usr/bin/time -f "%e %U %S %M" -o "$work/time.txt" "$@" >"$work/$name.log" 2>&1 \
        || { echo "$name failed, see $work/$name.log"; tail -5 "$work/$name.log"; exit 1; }
    read -r wall user sys rss < "$work/time.txt"
    cpu=$(echo "$user + $sys" | bc)
    echo "$name run: wall ${wall} s, cpu ${cpu} s, peak RSS $((rss / 1024)) MiB"
    echo "$wall $cpu $rss" >> "$work/$name.times"
}
rm -f "$work"/*.times
for i in $(seq 1 "$runs"); do
    rm -rf "$work/wh" "$work/duck"
    measure c360 "$bin" run jobs/customer_360.yaml --date "$end_date" --memory-limit "$limit" \
        --set raw="$work/raw" --set warehouse="$work/wh"
    cp "$(ls "$work"/wh/_c360/runs/*.json | sort | tail -1)" "$work/full-run.json"
    measure nightly "$bin" run jobs/customer_360.yaml --date "$next_date" --memory-limit "$limit" \
        --set raw="$work/raw" --set warehouse="$work/wh"
    cp "$(ls "$work"/wh/_c360/runs/*.json | sort | tail -1)" "$work/nightly-run.json"
    measure nightly2 "$bin" run jobs/customer_360.yaml --date "$next_date" --memory-limit "$limit" \
        --set raw="$work/raw" --set warehouse="$work/wh"
    cp "$(ls "$work"/wh/_c360/runs/*.json | sort | tail -1)" "$work/nightly2-run.json"
    measure duckdb "$py" benchmarks/duckdb_pipeline.py "$work/raw" "$work/duck" "$end_date" \
        --memory-limit "$duck_limit" --threads "$(nproc)"
    measure floor "$py" benchmarks/duckdb_pipeline.py "$work/raw" "$work/duck" "$end_date" --scan-floor
done

# The median of column $2 of file $1.
median() { cut -d' ' -f"$2" "$1" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo
echo "medians of $runs ($customers customers x $days days, limit $limit, DuckDB limit $duck_limit, $(nproc) cores):"
printf '%-8s %10s %10s %14s\n' "" "wall s" "cpu s" "peak RSS MiB"
for name in c360 duckdb floor nightly nightly2; do
    printf '%-8s %10s %10s %14d\n' "$name" "$(median "$work/$name.times" 1)" \
        "$(median "$work/$name.times" 2)" "$(( $(median "$work/$name.times" 3) / 1024 ))"
done
echo "c360 / duckdb wall: $(echo "scale=2; $(median "$work/c360.times" 1) / $(median "$work/duckdb.times" 1)" | bc)"
for name in nightly nightly2; do
    echo "$name / full c360 wall: $(echo "scale=3; $(median "$work/$name.times" 1) / $(median "$work/c360.times" 1)" | bc)"
done
for which in full nightly nightly2; do
"$py" - "$work/$which-run.json" "$which" <<'PY'
import json, sys
record = json.load(open(sys.argv[1]))
print(f"\nlast c360 {sys.argv[2]} run ({record['logical_date']}), per source: days parsed / reused")
for s in record["sources"]:
    print(f"  {s['name']:<20} {len(s.get('days_parsed', [])):4d} / {len(s.get('days_reused', [])):4d}")
print("per stage (run log):")
for s in record["stages"]:
    rss = s.get("peak_rss_bytes")
    print(f"  {s['stage']:<20} {s['secs']:8.2f} s" + (f"  peak RSS {rss >> 20:>5} MiB" if rss else ""))
print("per step (tables and outputs; incremental: days carried / folded / pending):")
for s in record.get("steps", []):
    inc = s.get("incremental")
    if inc:
        print(f"  {s['name']:<22} incremental {inc['days_carried']} / {inc['days_folded']} / {inc['days_pending']}"
              + (f", rebuilt: {inc['rebuilt']}" if inc.get("rebuilt") else ""))
    if s["materialize"] != "view":
        print(f"  {s['name']:<22} {s['secs']:7.2f} s  {s['join']:<10} rows {s['rows']:>10}  "
              f"pool peak {s['peak_memory_bytes'] >> 20:>5} MiB  RSS peak {(s.get('peak_rss_bytes') or 0) >> 20:>5} MiB  "
              f"spilled {s['spilled_bytes'] >> 20} MiB")
PY
done
