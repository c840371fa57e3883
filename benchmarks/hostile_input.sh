#!/usr/bin/env bash
# Peak memory of c360 on each hostile input of docs/rules.md ("Hostile input"):
# a one-step job over one NDJSON and one CSV source, one hostile file at a time,
# measured with GNU time (`Maximum resident set size`). Files are generated in a
# temp dir and deleted at exit.
#
#   bash benchmarks/hostile_input.sh [path/to/c360]     (default: target/debug/c360)
set -euo pipefail
BIN=$(realpath "${1:-${CARGO_TARGET_DIR:-target}/debug/c360}")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# A fresh project: the job, its SQL, a good fx file and a good events day.
project() {
  rm -rf "$WORK/p" && mkdir -p "$WORK/p/raw/fx" "$WORK/p/raw/communications/dt=2026-01-01"
  cd "$WORK/p"
  cat > job.yaml <<'EOF'
name: hostile
storage: { raw: raw, warehouse: wh }
sources:
  events: { path: "{raw}/communications", format: ndjson, schema: communications,
            partitions: [dt], rejects: { max_fraction: 1 }, limits: { max_decompressed_bytes: 2GiB } }
  fx: { path: "{raw}/fx/fx_rates.csv", format: csv, schema: fx_rates, rejects: { max_fraction: 1 } }
steps:
  - { name: counts, sql: counts.sql }
outputs:
  counts: { path: "{warehouse}/counts" }
EOF
  echo "select (select count(*) from events) as events, (select count(*) from fx) as fx" > counts.sql
  printf 'currency,rate_to_reporting\nEUR,1\n' > raw/fx/fx_rates.csv
  echo '{"event_id":"E1","channel":"email","direction":"outbound","event_type":"sent","event_ts":"2026-01-01T10:00:00Z"}' \
    > raw/communications/dt=2026-01-01/a.ndjson
}

# measure NAME: runs the job, prints the outcome line and the peak memory.
measure() {
  local log="$WORK/time.txt" status=0
  /usr/bin/time -v "$BIN" run job.yaml --date 2026-01-01 > "$WORK/out.txt" 2> "$WORK/err.txt" || status=$?
  # GNU time appends its report to stderr.
  local peak_kb secs outcome
  peak_kb=$(grep 'Maximum resident set size' "$WORK/err.txt" | awk '{print $NF}')
  secs=$(grep 'Elapsed (wall clock)' "$WORK/err.txt" | awk '{print $NF}')
  if [ "$status" = 0 ]; then
    outcome=$(grep -E '^(fx|events) ' "$WORK/out.txt" | tr -s ' ' | paste -sd';')
    outcome="ok: $outcome; rejects: $(python3 -c 'import json,glob;r=json.load(open(sorted(glob.glob("wh/_c360/runs/*.json"))[-1]));print({s["name"]:s["rejects_by_reason"] for s in r["sources"]})')"
  else
    outcome="exit $status: $(grep '^error' "$WORK/err.txt" | head -1)"
  fi
  printf '%-34s %6d MB %8s  %s\n' "$1" $((peak_kb / 1000)) "$secs" "$outcome"
}

project; measure "baseline (two tiny files)"

project
{ printf 'currency,rate_to_reporting\nEUR,1\n"'; head -c $((1 << 30)) /dev/zero | tr '\0' x; printf '",1\nGBP,1\n'; } > raw/fx/fx_rates.csv
measure "CSV field of 1 GiB"

project
{ printf '{"event_id":"E1","channel":"email","direction":"outbound","event_type":"sent","event_ts":"2026-01-01T10:00:00Z","note":"'
  head -c $((1 << 30)) /dev/zero | tr '\0' y; printf '"}\n'; } > raw/communications/dt=2026-01-01/a.ndjson
measure "NDJSON line of 1 GiB"

project
python3 -c 'import sys; sys.stdout.write("currency,rate_to_reporting," + ",".join(f"c{i}" for i in range(1000000)) + "\nEUR,1\n")' > raw/fx/fx_rates.csv
measure "CSV header of 1,000,000 columns"

project
python3 -c 'import sys; sys.stdout.write("{\"event_id\":\"E1\",\"channel\":\"email\",\"direction\":\"outbound\",\"event_type\":\"sent\",\"event_ts\":\"2026-01-01T10:00:00Z\",\"cost\":" + "["*100000 + "1" + "]"*100000 + "}\n")' \
  > raw/communications/dt=2026-01-01/a.ndjson
measure "JSON nested 100,000 deep"

project
python3 -c 'import sys; sys.stdout.write("{" + ",".join(f"\"k{i}\":0" for i in range(500000)) + "}\n")' > raw/communications/dt=2026-01-01/a.ndjson
measure "JSON object of 500,000 fields"

project
printf 'currency,rate_to_reporting\nEUR,1\nG\xffP,1\n' > raw/fx/fx_rates.csv
measure "invalid UTF-8 in a CSV field"

project
printf '{"event_id":"E\xff1","channel":"email","direction":"outbound","event_type":"sent","event_ts":"2026-01-01T10:00:00Z"}\n' \
  > raw/communications/dt=2026-01-01/a.ndjson
measure "invalid UTF-8 in an NDJSON line"

project
head -c $((16 << 20)) /dev/zero | zstd -1 -q -c > "$WORK/frame.zst"
for _ in $(seq 1024); do cat "$WORK/frame.zst"; done > raw/communications/dt=2026-01-01/bomb.ndjson.zst
measure "zstd bomb $(stat -c %s raw/communications/dt=2026-01-01/bomb.ndjson.zst) B -> 16 GiB"

project
head -c $((16 << 20)) /dev/zero | gzip -9 -c > "$WORK/member.gz"
for _ in $(seq 1024); do cat "$WORK/member.gz"; done > raw/communications/dt=2026-01-01/bomb.ndjson.gz
measure "gzip bomb $(stat -c %s raw/communications/dt=2026-01-01/bomb.ndjson.gz) B -> 16 GiB"

project
printf 'currency,rate_to_reporting,note\nEUR,1,"=HYPERLINK(""http://x"",""y"")"\n"=HYPERLINK(""http://x"",""y"")",-1,@SUM(A1)\n' > raw/fx/fx_rates.csv
measure "formula-like text"
