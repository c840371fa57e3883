//! The same job on a Ballista cluster (docs/cluster.md): one scheduler and two
//! executors, started as `c360 cluster …` child processes on loopback, load the
//! bundled sample; every published partition (outputs and rejects) equals the
//! local engine's row for row.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use c360::clock::SystemClock;
use c360::job::EngineChoice;
use c360::run::{RunOptions, run};
use chrono::NaiveDate;

use crate::util::{published_partitions, repo_root};

/// Child processes killed when the test ends, however it ends.
struct Cluster(Vec<Child>);

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn start(args: &[&str], log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_c360"))
        .args(args)
        .env("C360_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("c360 cluster starts")
}

/// Waits until `log` says `needle` `times` times (the processes log their
/// registrations and tasks through tracing).
fn wait_for(log: &Path, needle: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.matches(needle).count() >= times {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no `{needle}` in {}:\n{text}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn load(wh: &str, engine: Option<EngineChoice>) -> c360::run::RunSummary {
    let job = c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap();
    let options = RunOptions {
        date: Some(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()),
        overrides: vec![("warehouse".into(), wh.to_string())],
        memory_limit: None,
        engine,
        clock: Arc::new(SystemClock),
        full_refresh: false,
    };
    run(&job, &options).await.unwrap()
}

/// One scheduler and two executors on loopback, logging into `dir`; returns
/// them, the scheduler's `host:port` and the executors' logs.
fn start_cluster(dir: &Path) -> (Cluster, String, Vec<std::path::PathBuf>) {
    let port = free_port().to_string();
    let scheduler_log = dir.join("scheduler.log");
    let mut cluster = Cluster(vec![start(
        &["cluster", "scheduler", "--port", &port],
        &scheduler_log,
    )]);
    wait_for(&scheduler_log, "Starting QueryStageScheduler", 1);
    let scheduler = format!("localhost:{port}");
    let mut executor_logs = Vec::new();
    for n in 0..2 {
        let (flight, grpc) = (free_port().to_string(), free_port().to_string());
        let work = dir.join(format!("executor{n}"));
        std::fs::create_dir_all(&work).unwrap();
        let log = dir.join(format!("executor{n}.log"));
        let args = [
            "cluster",
            "executor",
            "--scheduler",
            &scheduler,
            "--port",
            &flight,
            "--grpc-port",
            &grpc,
            "--work-dir",
            work.to_str().unwrap(),
            "--concurrent-tasks",
            "2",
            "--memory-limit",
            "1GiB",
        ];
        cluster.0.push(start(&args, &log));
        executor_logs.push(log);
    }
    wait_for(&scheduler_log, "Received register executor request", 2);
    (cluster, scheduler, executor_logs)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sample_job_on_a_ballista_cluster_equals_the_local_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let (cluster, scheduler, executor_logs) = start_cluster(tmp.path());
    let (local, distributed) = (tmp.path().join("local"), tmp.path().join("cluster"));
    load(&local.display().to_string(), None).await;
    let url = format!("ballista://{scheduler}");
    let engine = Some(EngineChoice::Ballista(url.clone()));
    let summary = load(&distributed.display().to_string(), engine).await;
    assert_eq!(summary.engine, Some(url), "the summary names the cluster");

    // The run record names the cluster, and the queries ran on the executors,
    // both of which took part.
    let record = |wh: &Path| -> c360::runlog::RunRecord {
        let runs = crate::util::files_under(&wh.join("_c360/runs"));
        let file = runs
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "json"));
        serde_json::from_slice(&std::fs::read(file.unwrap()).unwrap()).unwrap()
    };
    assert_eq!(
        record(&distributed).engine,
        Some(format!("ballista://{scheduler}"))
    );
    assert_eq!(record(&local).engine, None);
    for log in &executor_logs {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(text.contains("Finished task"), "{}:\n{text}", log.display());
    }
    let want = published_partitions(&local, "2026-03-01");
    let got = published_partitions(&distributed, "2026-03-01");
    let names = |p: &[(std::path::PathBuf, Vec<String>)]| -> Vec<_> {
        p.iter().map(|(d, _)| d.clone()).collect()
    };
    assert_eq!(
        names(&got),
        names(&want),
        "the same partitions are published"
    );
    assert!(want.len() >= 10, "outputs and rejects: {:?}", names(&want));
    for ((dir, got), (_, want)) in got.iter().zip(&want) {
        assert_eq!(got.len(), want.len(), "rows of {}", dir.display());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g, w, "{}", dir.display());
        }
    }
    drop(cluster);
}

#[test]
fn a_run_whose_scheduler_is_not_there_fails_at_once_and_publishes_nothing() {
    let wh = tempfile::tempdir().unwrap();
    let engine = format!("ballista://127.0.0.1:{}", free_port());
    let set_wh = format!("warehouse={}", wh.path().display());
    let out = crate::util::c360(&[
        "run",
        "jobs/customer_360.yaml",
        "--date",
        "2026-03-01",
        "--set",
        &set_wh,
        "--engine",
        &engine,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to the scheduler at {engine}"))
            && stderr.contains("next: start the scheduler and executors"),
        "{stderr}"
    );
    assert!(
        !wh.path().join("customer_360").exists(),
        "nothing published"
    );
}

/// The executors write to the object store the client sees: the same job with its
/// warehouse on S3 (`.ci/run` starts moto and exports `AWS_*`, which the cluster's
/// processes inherit) publishes the local engine's rows.
#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_writes_an_s3_warehouse_with_the_local_engines_rows() {
    let Some(bucket) = crate::s3::test_bucket("a_cluster_writes_an_s3_warehouse") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (cluster, scheduler, _) = start_cluster(tmp.path());
    let s3_wh = format!("s3://{bucket}/{}", crate::s3::unique_prefix("cluster"));
    let engine = Some(EngineChoice::Ballista(format!("ballista://{scheduler}")));
    load(&s3_wh, engine).await;
    let local = tmp.path().join("local");
    load(&local.display().to_string(), None).await;

    let registry = c360::storage::StorageRegistry::new(repo_root(), Default::default());
    let (s3, disk) = (
        registry.resolve(&s3_wh).unwrap(),
        registry.resolve(&local.display().to_string()).unwrap(),
    );
    // Every partition the local run published for the date.
    let partitions = published_partitions(&local, "2026-03-01");
    assert!(partitions.len() >= 10);
    for (dir, want) in partitions {
        let at = |root: &object_store::path::Path| {
            dir.iter()
                .fold(root.clone(), |p, part| p.join(part.to_str().unwrap()))
        };
        let got = crate::s3::committed_rows(&s3.store, &at(&s3.prefix)).await;
        assert_eq!(got, want, "{}", dir.display());
        let again = crate::s3::committed_rows(&disk.store, &at(&disk.prefix)).await;
        assert_eq!(again, want, "{}: read back the same way", dir.display());
    }
    drop(cluster);
}
