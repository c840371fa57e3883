"""Independent recomputation of the clean order lines of a sample run.

usage: independent_order_lines.py RAW_DIR WAREHOUSE_DIR SNAPSHOT_DATE

Written from DATA_CONTRACT.md alone, sharing no code with c360: it reads the raw
transaction files itself (Python csv, gzip, zstandard), drops the rows the
generator's ground truth lists as malformed and the lines of people erased by
then (ground truth suppressions.csv -> identities.csv: their source ids and
emails), applies the contract's duplicate, date and money rules with Python's Decimal, and compares every line amount and
every per-customer total with c360's `order_lines` output (read with DuckDB).
"""

import csv
import gzip
import io
import sys
from collections import defaultdict
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import zstandard

raw, wh, snapshot = Path(sys.argv[1]), Path(sys.argv[2]), date.fromisoformat(sys.argv[3])

rejected = set()
with open(raw / "_ground_truth" / "rejects.csv", newline="") as f:
    for row in csv.DictReader(f):
        if row["extract"] == "transactions":
            rejected.add((row["file"], int(row["line"])))

# Erasure: a request applies from the UTC date of requested_at; the person's
# lines (by source id, or by any of their emails) are in no output.
erased_people = set()
with open(raw / "_ground_truth" / "suppressions.csv", newline="") as f:
    for row in csv.DictReader(f):
        at = datetime.fromisoformat(row["requested_at"].replace("Z", "+00:00"))
        if at.astimezone(timezone.utc).date() <= snapshot:
            erased_people.add(row["person_id"])
erased_ids = set()
with open(raw / "_ground_truth" / "identities.csv", newline="") as f:
    for row in csv.DictReader(f):
        if row["person_id"] in erased_people:
            erased_ids.add((row["id_type"], row["id_value"]))

rates = {}
with open(raw / "reference" / "fx_rates.csv", newline="", encoding="utf-8-sig") as f:
    for row in csv.DictReader(f):
        rates[row["currency"].strip().upper()] = Decimal(row["rate_to_reporting"].strip())


def open_text(path):
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return io.StringIO(data.decode("utf-8-sig"), newline="")


# Files in (dt, file name) order; partitions after the snapshot are not read.
files = sorted(
    p for p in (raw / "transactions").glob("dt=*/*")
    if p.parent.name[3:] <= snapshot.isoformat() and ".csv" in p.name
)
latest = {}  # (transaction_id, line_no, status) -> row; later files (and lines) win
for order, path in enumerate(files):
    rel = path.relative_to(raw).as_posix()
    reader = csv.reader(open_text(path))
    header = [h.strip() for h in next(reader)]
    start = reader.line_num + 1
    for fields in reader:
        line, start = start, reader.line_num + 1
        if (rel, line) in rejected or not fields:
            continue
        row = {k: v.strip() for k, v in zip(header, fields)}
        key = (row["transaction_id"], int(row["line_no"]), row["status"])
        latest[key] = row

ours = {}
erased_lines = 0
for key, row in latest.items():
    if row["status"] not in ("completed", "returned"):
        continue
    ts = datetime.fromisoformat(row["order_ts"].replace("Z", "+00:00"))
    if ts.astimezone(timezone.utc).date() > snapshot:
        continue
    source = ("source", f'{row["source_system"]}:{row["source_customer_id"]}')
    if source in erased_ids or ("email", row["email"].strip().lower()) in erased_ids:
        erased_lines += 1
        continue
    discount = Decimal(row["discount"] or "0")
    amount = (int(row["quantity"]) * Decimal(row["unit_price"]) - discount) * rates[row["currency"].upper()]
    ours[key] = (row["source_system"], row["source_customer_id"] or None, amount)

con = duckdb.connect()
theirs = {
    (t, int(n), s): (sys_, cid, Decimal(str(a)))
    for t, n, s, sys_, cid, a in con.execute(
        f"SELECT transaction_id, line_no, status, source_system, source_customer_id, amount "
        f"FROM read_parquet('{wh}/order_lines/snapshot_date={snapshot}/*.parquet')"
    ).fetchall()
}

failures = []
missing = set(ours) - set(theirs)
extra = set(theirs) - set(ours)
different = [k for k in set(ours) & set(theirs) if ours[k] != theirs[k]]
for label, items in (("missing", missing), ("unexpected", extra), ("different", different)):
    if items:
        failures.append(f"{len(items)} {label} lines, e.g. {sorted(items)[:3]}")

totals = defaultdict(Decimal)
for key, (system, cid, amount) in ours.items():
    totals[(system, cid)] += -amount if key[2] == "returned" else amount
print(f"{len(erased_people)} people erased, {erased_lines} of their lines left out")
print(f"{len(ours)} order lines, {len(totals)} buyers (incl. guests), "
      f"net revenue {sum(totals.values()).quantize(Decimal('0.01'), ROUND_HALF_UP)} in the reporting currency")

checks = 3  # no missing, no unexpected, no different lines
for failure in failures:
    print("FAIL " + failure)
print(f"{checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
