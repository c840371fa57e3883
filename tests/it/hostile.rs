//! Hostile extracts through the `c360` binary (docs/rules.md, "Hostile input"):
//! each gives a reject or a clear error, in bounded memory, without a panic.
//! The files are generated in a temp dir on each run (never committed). The
//! memory bound is the `sources` stage's `peak_rss_bytes` in the run record
//! (recorded also when the stage fails the run; `wait4`'s figure would carry
//! the test process's own size over the fork): a tiny run peaks at about
//! 95 MB there (debug build), so 160 MiB catches any reader that holds an
//! 80 MiB field or line, or a decompressed bomb, in memory.
//! Parser-level cases (nesting, invalid UTF-8, formula text, gzip bomb) are in
//! `source/hostile.rs`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::util::c360_in;

/// Bytes of the oversize field and line: more than the 64 MiB a raw object may
/// have to be read whole, so the files stream, as a real 1 GB one would.
const HUGE: usize = 80 << 20;

/// The most the sources stage may take: see the module doc.
const PEAK_BOUND: u64 = 160 << 20;

/// A project folder with a one-step job over an NDJSON and a CSV source.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// `limits` is put in both sources' settings (`{}` for the defaults).
    fn new(limits: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let job = format!(
            "name: hostile
storage: {{ raw: raw, warehouse: wh }}
sources:
  events: {{ path: \"{{raw}}/communications\", format: ndjson, schema: communications,
            partitions: [dt], rejects: {{ max_fraction: 1 }}, limits: {limits} }}
  fx: {{ path: \"{{raw}}/fx/fx_rates.csv\", format: csv, schema: fx_rates,
        rejects: {{ max_fraction: 1 }}, limits: {limits} }}
steps:
  - {{ name: counts, sql: counts.sql }}
outputs:
  counts: {{ path: \"{{warehouse}}/counts\" }}
"
        );
        std::fs::write(dir.path().join("job.yaml"), job).unwrap();
        let sql = "select (select count(*) from events) as events, (select count(*) from fx) as fx";
        std::fs::write(dir.path().join("counts.sql"), sql).unwrap();
        let project = Self { dir };
        project.write("fx/fx_rates.csv", b"currency,rate_to_reporting\nEUR,1\n");
        project.write(
            "communications/dt=2026-01-01/a.ndjson",
            br#"{"event_id":"E1","channel":"email","direction":"outbound","event_type":"sent","event_ts":"2026-01-01T10:00:00Z"}
"#,
        );
        project
    }

    fn raw(&self, rel: &str) -> PathBuf {
        let path = self.dir.path().join("raw").join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        path
    }

    fn write(&self, rel: &str, bytes: &[u8]) {
        std::fs::write(self.raw(rel), bytes).unwrap();
    }

    /// Runs the job for `date`: the exit code, stderr and the run's record.
    fn run(&self, date: &str) -> Run {
        let out = c360_in(self.dir.path(), &["run", "job.yaml", "--date", date]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        // The newest record: run ids of one second sort by their random part.
        let runs = self.dir.path().join("wh/_c360/runs");
        let record = std::fs::read_dir(&runs)
            .unwrap()
            .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
            .max_by_key(|r: &serde_json::Value| r["started_at"].as_str().unwrap().to_string())
            .expect("a run record");
        Run {
            code: out.status.code(),
            stderr,
            record,
        }
    }

    fn wh(&self) -> &Path {
        self.dir.path()
    }
}

/// One run of the binary.
struct Run {
    code: Option<i32>,
    stderr: String,
    record: serde_json::Value,
}

impl Run {
    /// Fails when the sources stage held more than [`PEAK_BOUND`].
    fn assert_bounded(&self) {
        let peak = self.record["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == "sources")
            .and_then(|s| s["peak_rss_bytes"].as_u64())
            .expect("the sources stage has a peak (Linux)");
        // Shown with `--nocapture`.
        eprintln!("sources stage peak resident memory: {peak} bytes");
        assert!(
            peak < PEAK_BOUND,
            "the sources stage peaked at {peak} bytes"
        );
    }
}

fn source<'r>(record: &'r serde_json::Value, name: &str) -> &'r serde_json::Value {
    let sources = record["sources"].as_array().unwrap();
    sources.iter().find(|s| s["name"] == name).unwrap()
}

/// (line, reason, raw) of the published rejects of `extract`.
fn published_rejects(p: &Project, extract: &str, date: &str) -> Vec<(i64, String, String)> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;
    let dir = p
        .wh()
        .join(format!("wh/rejects/extract={extract}/run_date={date}"));
    let mut rows = Vec::new();
    for b in crate::util::read_partition(&dir) {
        let col = |n: &str| b.column_by_name(n).unwrap().clone();
        let (line, reason, raw) = (col("line"), col("reason"), col("raw"));
        let line = line.as_primitive::<Int64Type>();
        let (reason, raw) = (reason.as_string::<i32>(), raw.as_string::<i32>());
        for i in 0..b.num_rows() {
            let text = if raw.is_valid(i) { raw.value(i) } else { "" };
            rows.push((line.value(i), reason.value(i).into(), text.into()));
        }
    }
    rows.sort();
    rows
}

#[test]
fn a_huge_csv_field_is_field_too_large_with_a_prefix_in_bounded_memory() {
    let p = Project::new("{}");
    let mut file = std::fs::File::create(p.raw("fx/fx_rates.csv")).unwrap();
    file.write_all(b"currency,rate_to_reporting\nEUR,1\n\"")
        .unwrap();
    for _ in 0..HUGE >> 20 {
        file.write_all(&[b'x'; 1 << 20]).unwrap();
    }
    file.write_all(b"\",1\nGBP,1\n").unwrap();
    drop(file);
    let run = p.run("2026-01-01");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let fx = source(&run.record, "fx");
    assert_eq!(
        (&fx["rows_read"], &fx["rows_accepted"]),
        (&3.into(), &2.into())
    );
    assert_eq!(
        fx["rejects_by_reason"],
        serde_json::json!({"field_too_large": 1})
    );
    let rejects = published_rejects(&p, "fx", "2026-01-01");
    assert_eq!(
        (rejects[0].0, rejects[0].1.as_str()),
        (3, "field_too_large")
    );
    // The first 4096 bytes as written: the opening quote and 4095 x.
    assert_eq!(rejects[0].2, format!("\"{}", "x".repeat(4095)));
    run.assert_bounded();
}

#[test]
fn a_huge_ndjson_line_is_record_too_large_in_bounded_memory() {
    let p = Project::new("{}");
    let path = p.raw("communications/dt=2026-01-01/a.ndjson");
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(br#"{"event_id":"E1","channel":"email","direction":"outbound","event_type":"sent","event_ts":"2026-01-01T10:00:00Z","note":""#).unwrap();
    for _ in 0..HUGE >> 20 {
        file.write_all(&[b'y'; 1 << 20]).unwrap();
    }
    file.write_all(b"\"}\n{\"event_id\":\"E2\",\"channel\":\"sms\",\"direction\":\"inbound\",\"event_type\":\"replied\",\"event_ts\":\"2026-01-01T11:00:00Z\"}\n").unwrap();
    drop(file);
    let run = p.run("2026-01-01");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let events = source(&run.record, "events");
    assert_eq!(
        (&events["rows_read"], &events["rows_accepted"]),
        (&2.into(), &1.into())
    );
    assert_eq!(
        events["rejects_by_reason"],
        serde_json::json!({"record_too_large": 1})
    );
    let rejects = published_rejects(&p, "events", "2026-01-01");
    assert_eq!(
        (rejects[0].0, rejects[0].1.as_str(), rejects[0].2.len()),
        (1, "record_too_large", 4096)
    );
    run.assert_bounded();
}

#[test]
fn a_header_of_a_million_columns_fails_the_run_naming_file_and_limit() {
    let p = Project::new("{}");
    let mut header = String::from("currency,rate_to_reporting");
    for i in 0..1_000_000 {
        header.push_str(&format!(",c{i}"));
    }
    p.write("fx/fx_rates.csv", format!("{header}\nEUR,1\n").as_bytes());
    let run = p.run("2026-01-01");
    let stderr = &run.stderr;
    assert_eq!(run.code, Some(1), "{stderr}");
    assert!(
        stderr.contains("raw/fx/fx_rates.csv:1: header has more than 1000 columns, the source's limits.max_columns"),
        "{stderr}"
    );
    assert!(
        stderr.contains("raise `sources.fx.limits.max_columns`"),
        "{stderr}"
    );
    assert_eq!(run.record["status"], "failed");
    // Nothing published.
    assert!(!p.wh().join("wh/counts").exists());
    run.assert_bounded();
}

/// `frames` zstd frames of 16 MiB of zeros each, concatenated: a valid file of
/// `frames * 16` MiB that takes a few KiB on disk.
fn zstd_bomb(frames: usize) -> Vec<u8> {
    let frame = zstd::encode_all(std::io::repeat(0).take(16 << 20), 1).unwrap();
    frame.repeat(frames)
}

use std::io::Read as _;

#[test]
fn a_zstd_bomb_fails_the_run_at_the_limit_and_the_last_output_stays() {
    let p = Project::new("{ max_decompressed_bytes: 64MiB }");
    let run = p.run("2026-01-01");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let published = std::fs::read(p.wh().join("wh/counts/part-00000.parquet")).unwrap();
    // 1 GiB once decompressed, 64 MiB allowed.
    let bomb = zstd_bomb(64);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    p.write("communications/dt=2026-01-02/bomb.ndjson.zst", &bomb);
    let run = p.run("2026-01-02");
    let stderr = &run.stderr;
    assert_eq!(run.code, Some(1), "{stderr}");
    assert!(
        stderr.contains("communications/dt=2026-01-02/bomb.ndjson.zst: holds more than 64 MiB once decompressed, the source's limits.max_decompressed_bytes"),
        "{stderr}"
    );
    assert_eq!(run.record["status"], "failed");
    let now = std::fs::read(p.wh().join("wh/counts/part-00000.parquet")).unwrap();
    assert_eq!(now, published, "the last good output is untouched");
    run.assert_bounded();
}
