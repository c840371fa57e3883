"""Independent check of a sample run's warehouse, with DuckDB as the reader.

usage: check_sample_output.py WAREHOUSE_DIR SNAPSHOT_DATE

Checks what a BI user relies on: the Hive partition path, column types (DATE,
DECIMAL money, TIMESTAMP WITH TIME ZONE, snapshot_date as a DATE partition),
one row per customer_key, that the rejects equal the generator's ground
truth exactly (extract, file, line, reason), email_marketable recomputed
from the raw communications (read here with Python, not by c360) per the
contract's Permission rule, and that no identifier of a person erased by then
(ground truth suppressions.csv -> identities.csv) appears in customer_360,
identity_map, order_lines or the rejects' raw text.
"""

import gzip
import json
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
check(types.get("email_marketable") == "BOOLEAN", f"email_marketable is BOOLEAN ({types.get('email_marketable')})")
check(types.get("contact_cost") == "DECIMAL(18,2)", f"contact_cost is DECIMAL(18,2) ({types.get('contact_cost')})")

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



def raw_events(raw, rejected):
    """Accepted contact events of the raw extract, with their (file, line) order."""
    import zstandard

    rows = []
    for path in sorted((raw / "communications").glob("dt=*/*.ndjson*")):
        rel = str(path.relative_to(raw))
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        elif path.name.endswith(".zst"):
            data = zstandard.ZstdDecompressor().stream_reader(data).read()
        for line_no, text in enumerate(data.decode("utf-8").split("\n"), start=1):
            if not text.strip() or (rel, line_no) in rejected:
                continue
            e = json.loads(text)
            t = lambda k: (str(e[k]).strip() or None) if e.get(k) is not None else None
            rows.append((rel, line_no, t("event_id"), t("source_system"), t("source_customer_id"),
                         t("email"), t("channel"), t("event_type"), t("event_ts")))
    return rows


# Permission (DATA_CONTRACT.md): golden opt-in true, golden email valid (c360 keeps
# only identifiers, so non-NULL), no bounced email event ever, no unsubscribed or
# complained email event strictly after the opt-in row's updated_at. Events: first
# copy per event_id, UTC date <= D, attributed by source id, else by email.
raw = Path(__file__).resolve().parent.parent / "sample_data" / "raw"
if truth.exists():
    rejected = {(r[1], int(r[2])) for r in con.execute(
        f"SELECT * FROM read_csv('{truth}', all_varchar=true) WHERE extract = 'communications'").fetchall()}
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE raw_events (file VARCHAR, line BIGINT, event_id VARCHAR, source_system VARCHAR, "
                "source_customer_id VARCHAR, email VARCHAR, channel VARCHAR, event_type VARCHAR, event_ts VARCHAR)")
    con.executemany("INSERT INTO raw_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", raw_events(raw, rejected))
    idmap = f"read_parquet('{wh}/identity_map/*/*.parquet', hive_partitioning=true)"
    compared, mismatched, marketable = con.execute(f"""
        WITH firsts AS (
            SELECT * FROM raw_events
            QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY file, line) = 1
        ),
        events AS (
            SELECT COALESCE(s.customer_key, m.customer_key) AS customer_key, f.event_type,
                   f.event_ts::TIMESTAMPTZ AS ts
            FROM firsts f
            LEFT JOIN {idmap} s ON s.id_type = 'source'
                AND s.id_value = f.source_system || ':' || f.source_customer_id
            LEFT JOIN {idmap} m ON m.id_type = 'email'
                AND (f.source_system IS NULL OR f.source_customer_id IS NULL)
                AND m.id_value = lower(f.email)
            WHERE f.channel = 'email' AND f.event_ts::TIMESTAMPTZ::DATE <= DATE '{date}'
        ),
        expected AS (
            SELECT c.customer_key, c.email_marketable AS ours,
                   COALESCE(c.email_opt_in, false) AND c.email IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM events e WHERE e.customer_key = c.customer_key
                                   AND e.event_type = 'bounced')
                   AND NOT EXISTS (SELECT 1 FROM events e WHERE e.customer_key = c.customer_key
                                   AND e.event_type IN ('unsubscribed', 'complained')
                                   AND e.ts > c.email_opt_in_updated_at) AS theirs
            FROM {c360} c
        )
        SELECT count(*), count(*) FILTER (WHERE ours IS DISTINCT FROM theirs),
               count(*) FILTER (WHERE theirs)
        FROM expected
    """).fetchone()
    check(mismatched == 0 and marketable > 0,
          f"email_marketable equals a recomputation from the raw events "
          f"({compared} customers, {marketable} marketable, {mismatched} different)")

# Erasure: requests apply from the UTC date of requested_at.
gt = truth.parent
erased = con.execute(f"""
    SELECT i.id_type, lower(i.id_value) AS id_value, i.person_id
    FROM read_csv('{gt}/identities.csv', all_varchar=true) i
    JOIN read_csv('{gt}/suppressions.csv', all_varchar=true) s USING (person_id)
    WHERE CAST(timezone('UTC', CAST(s.requested_at AS TIMESTAMPTZ)) AS DATE) <= DATE '{date}'
""").fetchall()
people = {p for _, _, p in erased}
check(len(people) == 4, f"{len(people)} people erased by {date} in the ground truth")
con.execute("CREATE TABLE erased (id_type VARCHAR, id_value VARCHAR)")
con.executemany("INSERT INTO erased VALUES (?, ?)", [(t, v) for t, v, _ in erased])
snap = f"snapshot_date={date}"
leaks = {
    "customer_360": f"""SELECT count(*) FROM read_parquet('{wh}/customer_360/{snap}/*.parquet') c
        JOIN erased e ON (e.id_type = 'email' AND lower(c.email) = e.id_value)
                      OR (e.id_type = 'phone' AND c.phone = e.id_value)""",
    "identity_map": f"""SELECT count(*) FROM read_parquet('{wh}/identity_map/{snap}/*.parquet') m
        JOIN erased e ON m.id_type = e.id_type AND lower(m.id_value) = e.id_value""",
    "order_lines": f"""SELECT count(*) FROM read_parquet('{wh}/order_lines/{snap}/*.parquet') o
        JOIN erased e ON (e.id_type = 'source' AND lower(o.source_system || ':' || o.source_customer_id) = e.id_value)
                      OR (e.id_type = 'email' AND lower(trim(o.email)) = e.id_value)""",
    # Raw text: emails anywhere (any case), source ids as their bare id.
    "rejects": f"""SELECT count(*) FROM read_parquet('{wh}/rejects/*/run_date={date}/*.parquet') r
        JOIN erased e ON (e.id_type = 'email' AND contains(lower(r.raw), e.id_value))
                      OR (e.id_type = 'source' AND contains(lower(r.raw), split_part(e.id_value, ':', 2)))
                      OR (e.id_type = 'phone' AND contains(regexp_replace(r.raw, '[^0-9]', '', 'g'), right(e.id_value, 9)))""",
}
for name, sql in leaks.items():
    n = con.execute(sql).fetchone()[0]
    check(n == 0, f"no identifier of an erased person in {name} ({n} found)")
c360_keys = con.execute(f"SELECT count(*) FROM read_parquet('{wh}/customer_360/{snap}/*.parquet')").fetchone()[0]
check(c360_keys == 2000 - len(people), f"customer_360 has 2000 - {len(people)} erased = {c360_keys} rows")

print(f"{len(passed)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
