"""Every output of a sample run read by three independent readers: DuckDB,
pyarrow and polars (issue 16, "interop proven").

usage: interop_outputs.py WAREHOUSE_DIR SNAPSHOT_DATE

For each output: the three readers see the same rows as the partition's
_SUCCESS marker says, with the Hive partition column snapshot_date read as a
DATE; money is DECIMAL(18,2), timestamps are UTC instants, strings are plain
strings (not views, not large strings), in every reader. A few values agree
across readers, and the order-line count equals the one
tests/independent_order_lines.py recomputes from the raw files (17117 on
2026-03-01).
"""

import json
import sys
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

wh = Path(sys.argv[1])
date = sys.argv[2]
failures = []


def check(ok, message):
    print(("ok   " if ok else "FAIL ") + message)
    if not ok:
        failures.append(message)


OUTPUTS = ["customer_360", "identity_map", "identity_merges", "order_lines",
           "segment_summary", "clv_model", "channel_engagement"]
partitioning = ds.partitioning(pa.schema([("snapshot_date", pa.date32())]), flavor="hive")
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")

for name in OUTPUTS:
    root = wh / name
    marker = json.loads((root / f"snapshot_date={date}" / "_SUCCESS").read_text())
    glob = f"{root}/*/*.parquet"
    duck = con.execute(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning=true)").fetchone()[0]
    arrow = ds.dataset(str(root), format="parquet", partitioning=partitioning).to_table()
    polars = pl.scan_parquet(glob, hive_partitioning=True).collect()
    check(duck == arrow.num_rows == polars.height == marker["rows"],
          f"{name}: {marker['rows']} rows in _SUCCESS, DuckDB {duck}, pyarrow {arrow.num_rows}, polars {polars.height}")
    check(arrow.schema.field("snapshot_date").type == pa.date32(),
          f"{name}: pyarrow reads snapshot_date as date32 ({arrow.schema.field('snapshot_date').type})")
    check(polars.schema["snapshot_date"] == pl.Date,
          f"{name}: polars reads snapshot_date as Date ({polars.schema['snapshot_date']})")
    odd = [f"{f.name}: {f.type}" for f in arrow.schema
           if pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type)
           or (pa.types.is_timestamp(f.type) and f.type.tz not in ("UTC", "+00:00"))]
    check(not odd, f"{name}: strings are plain utf8 and timestamps UTC in pyarrow {odd}")

c360 = ds.dataset(str(wh / "customer_360"), format="parquet", partitioning=partitioning).to_table()
check(c360.schema.field("monetary").type == pa.decimal128(18, 2),
      f"customer_360.monetary is decimal128(18, 2) in pyarrow ({c360.schema.field('monetary').type})")
check(pa.types.is_timestamp(c360.schema.field("signup_ts").type),
      f"customer_360.signup_ts is a timestamp in pyarrow ({c360.schema.field('signup_ts').type})")
check(c360.schema.field("first_purchase_date").type == pa.date32(),
      f"customer_360.first_purchase_date is date32 ({c360.schema.field('first_purchase_date').type})")
frame = pl.read_parquet(f"{wh}/customer_360/*/*.parquet", hive_partitioning=True)
check(frame.schema["monetary"] == pl.Decimal(18, 2),
      f"customer_360.monetary is Decimal(18, 2) in polars ({frame.schema['monetary']})")
check(frame.schema["signup_ts"] == pl.Datetime(time_unit=frame.schema["signup_ts"].time_unit, time_zone="UTC"),
      f"customer_360.signup_ts is a UTC Datetime in polars ({frame.schema['signup_ts']})")
check(frame.schema["customer_key"] == pl.String,
      f"customer_360.customer_key is a String in polars ({frame.schema['customer_key']})")

# The same numbers whoever reads them.
duck_sum = con.execute(
    f"SELECT sum(monetary)::VARCHAR FROM read_parquet('{wh}/customer_360/*/*.parquet')").fetchone()[0]
arrow_sum = str(pa.compute.sum(c360.column("monetary")).as_py())
polars_sum = str(frame["monetary"].sum())
check(duck_sum == arrow_sum == polars_sum,
      f"sum(customer_360.monetary): DuckDB {duck_sum}, pyarrow {arrow_sum}, polars {polars_sum}")
keys = set(frame["customer_key"].to_list())
check(len(keys) == frame.height, f"customer_key unique in polars ({len(keys)} of {frame.height})")
lines = pl.scan_parquet(f"{wh}/order_lines/*/*.parquet").select(pl.len()).collect().item()
if date == "2026-03-01":
    check(lines == 17117, f"order_lines has the independently recomputed 17117 rows ({lines})")

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
