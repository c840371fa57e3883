#!/usr/bin/env bash
# Cluster benchmark (issue 14): the full job on N customers x D days, alternating RUNS
# times, on the local engine and on a local Ballista cluster (docs/cluster.md): one
# `c360 cluster scheduler` and two `c360 cluster executor`s on loopback, each executor
# with one task at a time and MEMORY_LIMIT, the client under --memory-limit MEMORY_LIMIT.
# Both write into fresh warehouses from the same typed staging cache state (none: a
# full load parses every raw day). Prints wall and peak RSS (GNU time) of each client
# run, the executors' and scheduler's peak RSS over all cluster runs, the medians and
# the ratio cluster / local, and the last cluster run's per-step figures.
#   benchmarks/cluster.sh [CUSTOMERS] [DAYS] [MEMORY_LIMIT] [RUNS]
#   benchmarks/cluster.sh 1000000 365 2GiB 1     # the issue's figure
# The raw extracts are shared with benchmarks/scale.sh (same folder, same generator).
set -euo pipefail
cd "$(dirname "$0")/.."
customers="${1:-200000}"; days="${2:-120}"; limit="${3:-2GiB}"; runs="${4:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/c360-target}"
cargo build --release --locked --quiet
bin="$CARGO_TARGET_DIR/release/c360"
work="${BENCH_DIR:-${TMPDIR:-/tmp}/c360-scale-$customers-$days-plus1}"
end_date=$(date -u -d "2026-01-01 + $((days - 1)) days" +%F)
mkdir -p "$work"
if [ ! -f "$work/raw/.done" ]; then
    rm -rf "$work/raw"
    "$bin" generate --customers "$customers" --days "$((days + 1))" --seed 7 --out "$work/raw" >/dev/null
    touch "$work/raw/.done"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sched_port=$(free_port)
# Stops the cluster's processes (GNU time then writes their peak RSS).
# The pattern matches the c360 processes only, not the `time` that waits for each.
cleanup() { pkill -TERM -f "^$bin cluster .*$sched_port" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
rm -rf "$work/cluster" && mkdir -p "$work/cluster"
/usr/bin/time -f "%M" -o "$work/cluster/scheduler.rss" \
    "$bin" cluster scheduler --port "$sched_port" > "$work/cluster/scheduler.log" 2>&1 &
sleep 1
for n in 1 2; do
    mkdir -p "$work/cluster/executor$n"
    /usr/bin/time -f "%M" -o "$work/cluster/executor$n.rss" \
        "$bin" cluster executor --scheduler "localhost:$sched_port" --port "$(free_port)" \
        --grpc-port "$(free_port)" --work-dir "$work/cluster/executor$n" --concurrent-tasks 1 \
        --memory-limit "$limit" > "$work/cluster/executor$n.log" 2>&1 &
done
for _ in $(seq 1 100); do
    [ "$(grep -c 'Received register executor request' "$work/cluster/scheduler.log")" -ge 2 ] && break
    sleep 0.2
done

measure() {
    local name="$1"; shift
    /usr/bin/time -f "%e %U %S %M" -o "$work/time.txt" "$@" >"$work/$name.log" 2>&1 \
        || { echo "$name failed, see $work/$name.log"; tail -5 "$work/$name.log"; exit 1; }
    read -r wall user sys rss < "$work/time.txt"
    echo "$name run: wall ${wall} s, cpu $(echo "$user + $sys" | bc) s, peak RSS $((rss / 1024)) MiB"
    echo "$wall $rss" >> "$work/$name.times"
}
rm -f "$work/local.times" "$work/cluster.times"
for _ in $(seq 1 "$runs"); do
    rm -rf "$work/wh-local" "$work/wh-cluster"
    measure local "$bin" run jobs/customer_360.yaml --date "$end_date" --memory-limit "$limit" \
        --set raw="$work/raw" --set warehouse="$work/wh-local"
    measure cluster "$bin" run jobs/customer_360.yaml --date "$end_date" --memory-limit "$limit" \
        --set raw="$work/raw" --set warehouse="$work/wh-cluster" --engine "ballista://localhost:$sched_port"
done
cleanup
median() { cut -d' ' -f"$2" "$1" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo
echo "medians of $runs ($customers customers x $days days, limit $limit, $(nproc) cores):"
for name in local cluster; do
    printf '%-8s wall %8s s  client peak RSS %6d MiB\n' "$name" "$(median "$work/$name.times" 1)" \
        "$(( $(median "$work/$name.times" 2) / 1024 ))"
done
for p in scheduler executor1 executor2; do
    echo "$p peak RSS: $(( $(tail -n 1 "$work/cluster/$p.rss") / 1024 )) MiB"
done
echo "cluster / local wall: $(echo "scale=2; $(median "$work/cluster.times" 1) / $(median "$work/local.times" 1)" | bc)"
python3 - "$work/wh-cluster" <<'PY'
import glob, json, sys
record = json.load(open(sorted(glob.glob(sys.argv[1] + "/_c360/runs/*.json"))[-1]))
print("last cluster run, per stage:")
for s in record["stages"]:
    print(f"  {s['stage']:<20} {s['secs']:8.2f} s")
print("per step (tables and outputs; client pool and RSS):")
for s in record.get("steps", []):
    if s["materialize"] != "view":
        print(f"  {s['name']:<22} {s['secs']:7.2f} s  rows {s['rows']:>10}  "
              f"pool peak {s['peak_memory_bytes'] >> 20:>5} MiB  RSS peak {(s.get('peak_rss_bytes') or 0) >> 20:>5} MiB")
PY
