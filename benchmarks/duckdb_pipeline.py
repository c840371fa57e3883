#!/usr/bin/env python3
"""DuckDB comparison pipeline for the scale benchmark (issue 12).

    python benchmarks/duckdb_pipeline.py RAW OUT DATE [--memory-limit 2GiB] [--threads 2]
    python benchmarks/duckdb_pipeline.py RAW OUT DATE --scan-floor

The first form runs benchmarks/duckdb_pipeline.sql (the customer_360 job written by hand
for DuckDB) over the raw extracts under RAW for logical date DATE and writes
OUT/customer_360/snapshot_date=DATE/ and OUT/identity_map/snapshot_date=DATE/ as zstd
Parquet (a rerun replaces that date's partitions). It prints the rows read, rejected and
written, per-statement seconds and the total. --scan-floor only reads and counts every
raw row of every source (partitions dt <= DATE): the floor source parsing is compared to.
DuckDB spills to OUT/_duckdb_tmp (removed afterwards). Needs the duckdb package (>= 1.1).
"""
import argparse
import datetime
import glob
import os
import re
import shutil
import sys
import time

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "duckdb_pipeline.sql")
# The CSV dialect of the contract, as in the script (every column read as text).
CSV = ("header = true, all_varchar = true, delim = ',', quote = '\"', escape = '\"', "
       "strict_mode = false, null_padding = true")
LINES = ("columns = {'line': 'VARCHAR'}, header = false, auto_detect = false, delim = E'\\x1f', "
         "strict_mode = false, quote = '', escape = ''")


def sql_str(text):
    """`text` as the inside of a SQL string literal."""
    return text.replace("'", "''")


def partition_files(raw, source, date):
    """Files of <raw>/<source>/dt=D/ with D <= date."""
    files = []
    for path in glob.glob(os.path.join(raw, source, "dt=*", "*")):
        m = re.search(r"dt=(\d{4}-\d{2}-\d{2})", path)
        if m and m.group(1) <= date and os.path.isfile(path):
            files.append(path)
    return sorted(files)


def compatible(con, sql):
    """`sql` for this DuckDB: before 1.2 read_csv has no strict_mode (and is not strict)."""
    has_strict = con.execute("SELECT bool_or(list_contains(parameters, 'strict_mode')) "
                             "FROM duckdb_functions() WHERE function_name = 'read_csv'").fetchone()[0]
    return sql if has_strict else re.sub(r"strict_mode = false,\s*", "", sql)


def connect(args, tmp):
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{sql_str(args.memory_limit)}'")
    con.execute(f"SET threads = {int(args.threads)}")
    con.execute(f"SET temp_directory = '{sql_str(tmp)}'")
    # Row order is never relied on (ties go by file name), so let DuckDB stream freely.
    con.execute("SET preserve_insertion_order = false")
    return con


def label(statement):
    """A short name for a statement of the script, or None for setup (SET, macros)."""
    for pattern, fmt in ((r"^\s*CREATE\s+TABLE\s+(\w+)", "table {}"),
                         (r"^\s*DELETE\s+FROM\s+(\w+)", "delete {}"),
                         (r"\)\s*TO\s+'[^']*/(\w+)'", "write {}")):
        m = re.search(pattern, statement, re.S | re.I | re.M)
        if m:
            return fmt.format(m.group(1))
    return None


def statements(con, script):
    """The script split into statements with DuckDB's own parser."""
    try:
        return [s.query for s in con.extract_statements(script)]
    except (AttributeError, duckdb.Error):
        return [script]


def run_pipeline(args, tmp):
    raw, out = os.path.abspath(args.raw), os.path.abspath(args.out)
    suppressions = os.path.join(raw, "suppressions", "*", "*.csv*")
    if not partition_files(raw, "suppressions", "9999-12-31"):  # the extract is optional
        suppressions = os.path.join(tmp, "no_suppressions.csv")
        with open(suppressions, "w") as f:
            f.write("email,source_system,source_customer_id,requested_at\n")
    script = open(SCRIPT).read()
    for key, value in {"raw": raw, "out": out, "date": args.date, "suppressions": suppressions,
                       "max_records": str(int(args.max_records))}.items():
        script = script.replace("{" + key + "}", sql_str(value))
    for table in ("customer_360", "identity_map"):  # a rerun replaces the date's partition
        shutil.rmtree(os.path.join(out, table, f"snapshot_date={args.date}"), ignore_errors=True)

    con = connect(args, tmp)
    start = time.perf_counter()
    timings = []
    for statement in statements(con, compatible(con, script)):
        t0 = time.perf_counter()
        con.execute(statement)
        name = label(statement)
        if name:
            timings.append((name, time.perf_counter() - t0))
    total = time.perf_counter() - start

    print(f"{'extract':<16}{'read':>10}{'rejected':>10}{'accepted':>10}")
    structural = dict(con.execute("SELECT extract, rows FROM rejects WHERE reason = 'wrong_column_count'").fetchall())
    for extract in ("profiles", "transactions", "communications"):
        parsed, accepted = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE reason IS NULL) FROM {extract}").fetchone()
        read = parsed + structural.get(extract, 0)
        print(f"{extract:<16}{read:>10}{read - accepted:>10}{accepted:>10}")
    for extract, reason, rows in con.execute("SELECT * FROM rejects ORDER BY ALL").fetchall():
        print(f"  reject {extract:<15} {reason:<24}{rows:>8}")
    for name in ("order_lines", "events", "links", "identity_map", "measures", "engagement"):
        print(f"  table {name:<16}{con.execute(f'SELECT count(*) FROM {name}').fetchone()[0]:>10} rows")
    for table in ("customer_360", "identity_map"):
        files = os.path.join(out, table, f"snapshot_date={args.date}", "*.parquet")
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{sql_str(files)}')").fetchone()[0]
        print(f"wrote {table:<16}{rows:>10} rows  ({os.path.dirname(files)})")
    for name, secs in timings:
        print(f"  {name:<32}{secs:8.2f} s")
    print(f"total {total:.2f} s")


def scan_floor(args, tmp):
    raw = os.path.abspath(args.raw)
    con = connect(args, tmp)
    sources = [("profiles", CSV), ("transactions", CSV), ("communications", LINES), ("suppressions", CSV)]
    start = time.perf_counter()
    total_rows = 0
    print(f"{'source':<16}{'files':>8}{'rows':>12}{'seconds':>10}")
    for source, options in sources + [("fx_rates", CSV)]:
        files = partition_files(raw, source, args.date) if source != "fx_rates" else \
            glob.glob(os.path.join(raw, "reference", "fx_rates.csv"))
        if not files:
            continue
        paths = "[" + ", ".join(f"'{sql_str(p)}'" for p in files) + "]"
        t0 = time.perf_counter()
        if options is CSV:  # a row too short is padded, one the reader cannot split is stored: count both
            errors = f"{source}_errors"
            rows = con.execute(compatible(con, f"SELECT count(*) FROM read_csv({paths}, {options}, store_rejects = "
                                               f"true, rejects_table = '{errors}', rejects_scan = '{errors}_scans')"
                                          )).fetchall()[0][0]  # fetchall: the reject table is written at the end
            if con.execute(f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{errors}'").fetchone()[0]:
                rows += con.execute(f"SELECT count(DISTINCT (file_id, line)) FROM {errors}").fetchone()[0]
        else:
            rows = con.execute(compatible(con, f"SELECT count(*) FROM read_csv({paths}, {options})")).fetchone()[0]
        secs = time.perf_counter() - t0
        total_rows += rows
        print(f"{source:<16}{len(files):>8}{rows:>12}{secs:>10.2f}")
    print(f"total {total_rows} rows {time.perf_counter() - start:.2f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw", help="raw root: <raw>/<source>/dt=YYYY-MM-DD/part-*")
    parser.add_argument("out", help="output folder")
    parser.add_argument("date", help="logical date YYYY-MM-DD")
    parser.add_argument("--memory-limit", default="2GiB")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-records", type=int, default=50,
                        help="max_records_per_identifier of the job (default 50)")
    parser.add_argument("--scan-floor", action="store_true", help="only read and count every raw row")
    args = parser.parse_args()
    try:
        datetime.date.fromisoformat(args.date)
    except ValueError:
        parser.error(f"DATE must be YYYY-MM-DD, got {args.date!r}")
    if not os.path.isdir(args.raw):
        parser.error(f"RAW {args.raw!r} is not a folder")
    tmp = os.path.join(os.path.abspath(args.out), "_duckdb_tmp")
    os.makedirs(tmp, exist_ok=True)
    try:
        (scan_floor if args.scan_floor else run_pipeline)(args, tmp)
    except duckdb.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
