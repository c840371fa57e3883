#!/usr/bin/env bash
# The sample job on S3 (raw and warehouse in a bucket) vs on local disk: median of
# three wall-clock runs each. Needs an S3 API (e.g. moto_server on loopback), the
# AWS_* variables pointing at it, a bucket in C360_TEST_S3_BUCKET, and python3 with boto3.
#   bash benchmarks/s3_vs_local.sh [path/to/c360]
set -euo pipefail
c360="${1:-${CARGO_TARGET_DIR:-target}/debug/c360}"
bucket="${C360_TEST_S3_BUCKET:?set C360_TEST_S3_BUCKET}"
python="${PYTHON:-python3}"
prefix="bench-$(date +%s)-$$"
"$python" - "$bucket" "$prefix" <<'PY'
import os, sys, boto3
bucket, prefix = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
for root, _, files in os.walk("sample_data/raw"):
    for f in files:
        path = os.path.join(root, f)
        s3.upload_file(path, bucket, f"{prefix}/raw/{os.path.relpath(path, 'sample_data/raw')}")
PY
local_wh="$(mktemp -d)"
trap 'rm -rf "$local_wh"' EXIT
median() { sort -n | sed -n 2p; }
time_run() {
    local start end
    start=$(date +%s.%N)
    C360_LOG=warn "$c360" run jobs/customer_360.yaml --date 2026-03-01 "$@" > /dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
s3=$(for i in 1 2 3; do time_run --set "raw=s3://$bucket/$prefix/raw" --set "warehouse=s3://$bucket/$prefix/wh$i"; done | median)
local=$(for i in 1 2 3; do time_run --set "warehouse=$local_wh/wh$i"; done | median)
echo "sample job, median of 3: local ${local}s, S3 ${s3}s"
