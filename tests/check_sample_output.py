"""Independent check of a sample run's warehouse, with DuckDB as the reader.

usage: check_sample_output.py WAREHOUSE_DIR SNAPSHOT_DATE

Checks what a BI user relies on: the Hive partition path, column types (DATE,
DECIMAL money, TIMESTAMP WITH TIME ZONE, snapshot_date as a DATE partition),
one row per customer_key, and that the rejects equal the generator's ground
truth exactly (extract, file, line, reason).
"""

import sys
from pathlib import Path

import duckdb

wh = Path(sys.argv[1])
date = sys.argv[2]
truth = Path(__file__).resolve().parent.parent / "sample_data" / "raw" / "_ground_truth" / "rejects.csv"
failures = []


passed = []


def check(ok, message):
    print(("ok   " if ok else "FAIL ") + message)
    (passed if ok else failures).append(message)


con = duckdb.connect()
c360 = f"read_parquet('{wh}/customer_360/*/*.parquet', hive_partitioning=true)"
types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {c360}").fetchall()}
check(types.get("snapshot_date") == "DATE", f"snapshot_date is a DATE partition ({types.get('snapshot_date')})")
check(types.get("monetary") == "DECIMAL(18,2)", f"monetary is DECIMAL(18,2) ({types.get('monetary')})")
check(types.get("first_purchase_date") == "DATE", f"first_purchase_date is DATE ({types.get('first_purchase_date')})")
check(types.get("signup_ts") == "TIMESTAMP WITH TIME ZONE", f"signup_ts is TIMESTAMPTZ ({types.get('signup_ts')})")
check(types.get("frequency") == "BIGINT", f"frequency is BIGINT ({types.get('frequency')})")

rows, keys, dates = con.execute(
    f"SELECT count(*), count(DISTINCT customer_key), list(DISTINCT snapshot_date::VARCHAR) FROM {c360}"
).fetchone()
check(rows > 1000, f"customer_360 has {rows} rows")
check(rows == keys, f"customer_key is unique ({keys} distinct of {rows})")
check(dates == [date], f"one snapshot partition {dates}")
check((wh / "customer_360" / f"snapshot_date={date}" / "_SUCCESS").exists(), "_SUCCESS marker written")

if truth.exists():
    ours = f"read_parquet('{wh}/rejects/*/*/*.parquet', hive_partitioning=true)"
    missing, extra = con.execute(f"""
        WITH o AS (SELECT extract, file, line::BIGINT AS line, reason FROM {ours}),
             t AS (SELECT extract, file, line::BIGINT AS line, reason FROM read_csv('{truth}', all_varchar=true))
        SELECT (SELECT count(*) FROM (SELECT * FROM t EXCEPT ALL SELECT * FROM o)),
               (SELECT count(*) FROM (SELECT * FROM o EXCEPT ALL SELECT * FROM t))
    """).fetchone()
    total = con.execute(f"SELECT count(*) FROM read_csv('{truth}', all_varchar=true)").fetchone()[0]
    check(missing == 0 and extra == 0,
          f"rejects equal ground truth ({total} expected, {missing} missing, {extra} unexpected)")
else:
    check(False, f"ground truth {truth} exists")

print(f"{len(passed)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
