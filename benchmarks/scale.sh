#!/usr/bin/env bash
# Scale benchmark (issue 12): generate N customers x D days, run the full job under
# a memory limit, report wall, CPU and peak RSS (GNU time), median of RUNS runs.
#   benchmarks/scale.sh [CUSTOMERS] [DAYS] [MEMORY_LIMIT] [RUNS]
#   benchmarks/scale.sh 200000 120 2GiB 3      # the quick preset
# Uses the release binary under $CARGO_TARGET_DIR (default ~/.cache/c360-target).
# Not yet here: the DuckDB script of the same pipeline and the scan floor.
set -euo pipefail
cd "$(dirname "$0")/.."
customers="${1:-200000}"; days="${2:-120}"; limit="${3:-2GiB}"; runs="${4:-3}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/c360-target}"
cargo build --release --locked --quiet
bin="$target/release/c360"
work="${BENCH_DIR:-${TMPDIR:-/tmp}/c360-scale-$customers-$days}"
end_date=$(date -u -d "2026-01-01 + $((days - 1)) days" +%F)
if [ ! -f "$work/raw/.done" ]; then
    rm -rf "$work/raw"
    "$bin" generate --customers "$customers" --days "$days" --seed 7 --out "$work/raw" >/dev/null
    touch "$work/raw/.done"
fi
results=()
for i in $(seq 1 "$runs"); do
    rm -rf "$work/wh"
    /usr/bin/time -f "%e %U %S %M" -o "$work/time.txt" \
        "$bin" run jobs/customer_360.yaml --date "$end_date" --memory-limit "$limit" \
        --set raw="$work/raw" --set warehouse="$work/wh" >"$work/run.log" 2>&1
    read -r wall user sys rss < "$work/time.txt"
    echo "run $i: wall ${wall}s user ${user}s sys ${sys}s peak RSS $((rss / 1024)) MiB"
    results+=("$wall $user $sys $rss")
done
printf '%s\n' "${results[@]}" | sort -n | awk -v n="$runs" 'NR == int((n + 1) / 2) {
    printf "median: wall %ss cpu %ss peak RSS %d MiB\n", $1, $2 + $3, $4 / 1024 }'
python3 - "$work/wh" <<'PY'
import glob, json, sys
record = json.load(open(sorted(glob.glob(sys.argv[1] + "/_c360/runs/*.json"))[-1]))
for s in record["stages"]:
    print(f"stage {s['stage']:<20} {s['secs']:8.2f} s")
for s in record.get("steps", []):
    if s["materialize"] != "view":
        print(f"step  {s['name']:<20} {s['secs']:8.2f} s  {s['materialize']:<6} {s['join']:<10} "
              f"rows {s['rows']}  pool peak {s['peak_memory_bytes'] >> 20} MiB  spilled {s['spilled_bytes'] >> 20} MiB")
PY
