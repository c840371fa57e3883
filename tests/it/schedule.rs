//! `c360 scheduler` and `c360 backfill` as processes: a real SIGTERM during a run
//! that is stuck on storage, and a backfill over the tiny fixture extracts.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::repo_root;

/// The shipped job with its storage roots replaced and a schedule added.
fn job_yaml(raw: &str, warehouse: &Path, schedule: &str) -> String {
    let shipped = std::fs::read_to_string(repo_root().join("jobs/customer_360.yaml")).unwrap();
    let yaml = shipped
        .replace("raw: sample_data/raw", &format!("raw: \"{raw}\""))
        .replace(
            "warehouse: warehouse",
            &format!("warehouse: \"{}\"", warehouse.display()),
        );
    assert_ne!(yaml, shipped, "the shipped job's storage lines changed");
    format!("{yaml}{schedule}")
}

/// Accepts connections and never answers: a store that hangs.
fn stalled_endpoint() -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
            if held.len() > 64 {
                return;
            }
        }
    });
    (url, handle)
}

fn read_status(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_during_a_run_cancels_it_after_the_grace_period_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let (jobs, warehouse) = (tmp.path().join("jobs"), tmp.path().join("warehouse"));
    std::fs::create_dir_all(&jobs).unwrap();
    // The last good snapshot, which a cancelled run must leave as it is.
    let good = warehouse.join("customer_360/snapshot_date=2026-01-01");
    std::fs::create_dir_all(&good).unwrap();
    std::fs::write(good.join("part-00000.parquet"), b"last good").unwrap();
    std::fs::write(good.join("_SUCCESS"), b"{}").unwrap();
    // catchup 2d: the daemon starts yesterday's load at once, no waiting for a tick.
    let schedule = "schedule: { cron: \"0 0 * * *\", catchup: 2d, overlap: skip }\n";
    let yaml = job_yaml("s3://stalled/raw", &warehouse, schedule);
    std::fs::write(jobs.join("customer_360.yaml"), yaml).unwrap();
    let (endpoint, _server) = stalled_endpoint();
    let status_file = tmp.path().join("state/scheduler.json");

    let mut child = Command::new(env!("CARGO_BIN_EXE_c360"))
        .args(["scheduler", jobs.to_str().unwrap(), "--grace", "1s"])
        .args([
            "--heartbeat",
            "1s",
            "--status-file",
            status_file.to_str().unwrap(),
        ])
        .current_dir(repo_root())
        .env("C360_LOG", "info")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        "a running load in the status file",
        Duration::from_secs(30),
        || read_status(&status_file).is_some_and(|s| !s["jobs"][0]["running"].is_null()),
    );
    let status = read_status(&status_file).unwrap();
    assert_eq!(status["state"], "running");
    assert_eq!(status["pid"], child.id());

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut code = None;
    wait_for("the daemon to exit", Duration::from_secs(30), || {
        code = child.try_wait().unwrap().map(|s| s.code());
        code.is_some()
    });
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(code, Some(Some(0)), "{stderr}");
    assert!(stderr.contains("grace period over"), "{stderr}");

    let status = read_status(&status_file).unwrap();
    assert_eq!(status["state"], "stopped");
    assert_eq!(status["jobs"][0]["last"]["outcome"], "cancelled");
    assert_eq!(
        std::fs::read(good.join("part-00000.parquet")).unwrap(),
        b"last good"
    );
    assert!(good.join("_SUCCESS").exists());
    let partitions = std::fs::read_dir(warehouse.join("customer_360"))
        .unwrap()
        .count();
    assert_eq!(partitions, 1, "the cancelled run published nothing");
}

#[test]
fn backfill_runs_each_date_resumes_from_the_run_log_and_refuses_an_empty_range() {
    let tmp = tempfile::tempdir().unwrap();
    let warehouse = tmp.path().join("warehouse");
    let raw = repo_root().join("tests/fixtures/tiny_raw");
    let job = tmp.path().join("job.yaml");
    std::fs::write(&job, job_yaml(raw.to_str().unwrap(), &warehouse, "")).unwrap();
    let backfill = |from: &str, to: &str| {
        Command::new(env!("CARGO_BIN_EXE_c360"))
            .args([
                "backfill",
                job.to_str().unwrap(),
                "--from",
                from,
                "--to",
                to,
            ])
            .current_dir(repo_root())
            .env("C360_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = backfill("2026-02-01", "2026-02-02");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("succeeded (2): 2026-02-01, 2026-02-02"),
        "{stdout}"
    );
    for date in ["2026-02-01", "2026-02-02"] {
        let partition = warehouse.join(format!("customer_360/snapshot_date={date}/_SUCCESS"));
        assert!(partition.exists(), "{}", partition.display());
    }
    // A new process resumes from the run log in the warehouse: the two dates that
    // succeeded are skipped, only the new one runs.
    let out = backfill("2026-02-01", "2026-02-03");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("succeeded (1): 2026-02-03"), "{stdout}");
    assert!(stdout.contains("2026-02-01, 2026-02-02"), "{stdout}");
    let out = backfill("2026-02-02", "2026-02-01");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is after --to"));
}
