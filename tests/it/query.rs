//! `c360 query` over a warehouse the sample job loaded: the latest committed
//! snapshot by default, an earlier one with `--date`, only files `_SUCCESS`
//! lists, and each output format. The order-line count of 2026-03-01, 17117,
//! is the one `tests/independent_order_lines.py` recomputes from the raw files
//! in Python (`.ci/run` prints it).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::{c360, read_partition};

fn load(wh: &Path, date: &str) {
    let set = format!("--set=warehouse={}", wh.display());
    let out = c360(&["run", "jobs/customer_360.yaml", "--date", date, &set]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn query(wh: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let wh = wh.display().to_string();
    let mut args = vec!["query", "--warehouse", wh.as_str()];
    args.extend_from_slice(extra);
    let out = c360(&args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn query_reads_committed_snapshots_in_every_format() {
    let wh = tempfile::tempdir().unwrap();
    load(wh.path(), "2026-02-01");
    load(wh.path(), "2026-03-01");
    let count = "SELECT COUNT(*) AS n FROM order_lines";

    // The latest snapshot, as CSV.
    let (code, out, err) = query(wh.path(), &[count, "--format", "csv"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "n\n17117\n");

    // An earlier snapshot: the one of 2026-02-01, as the parquet crate reads it.
    let february = wh.path().join("order_lines/snapshot_date=2026-02-01");
    let rows: usize = read_partition(&february).iter().map(|b| b.num_rows()).sum();
    assert!(rows > 0 && rows < 17117, "{rows}");
    let (code, out, err) = query(
        wh.path(),
        &[count, "--format", "csv", "--date", "2026-02-15"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, format!("n\n{rows}\n"));

    // A file that no `_SUCCESS` lists (a crashed run's leftover) is not read.
    let latest = wh.path().join("order_lines/snapshot_date=2026-03-01");
    let part = std::fs::read_dir(&latest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    std::fs::copy(&part, latest.join("part-99999-stray.parquet")).unwrap();
    let (_, out, _) = query(wh.path(), &[count, "--format", "csv"]);
    assert_eq!(out, "n\n17117\n");

    // JSON lines and the table.
    let two =
        "SELECT transaction_id, line_no FROM order_lines ORDER BY transaction_id, line_no LIMIT 2";
    let (code, out, err) = query(wh.path(), &[two, "--format", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0]["transaction_id"].as_str().unwrap()
            <= lines[1]["transaction_id"].as_str().unwrap()
    );
    let (code, out, _) = query(wh.path(), &[count]);
    assert_eq!(code, Some(0));
    assert!(out.contains("| 17117 |"), "{out}");

    // Parquet on stdout reads back with the parquet crate.
    let (code, out, err) = {
        let wh_s = wh.path().display().to_string();
        let o = Command::new(env!("CARGO_BIN_EXE_c360"))
            .args(["query", count, "--warehouse", &wh_s, "--format", "parquet"])
            .output()
            .unwrap();
        (
            o.status.code(),
            o.stdout,
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(0), "{err}");
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(out),
        )
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    let n = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, 17117);

    // SQL on stdin when it is not a terminal; a mistake is exit 1 with the reason.
    let wh_s = wh.path().display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_c360"))
        .args(["query", "--warehouse", &wh_s, "--format", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT COUNT(*) AS people FROM customer_360 WHERE customer_key IS NOT NULL")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("people\n"));
    let (code, _, err) = query(wh.path(), &["SELECT * FROM no_such_output"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no_such_output"), "{err}");
}
