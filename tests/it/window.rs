//! `window_days` (docs/job-file.md): the job's `recent_contacts` step reads only
//! the communications days within `fatigue_days` of the date, and every output
//! equals a run of the same job reading every day. The raw zone holds the case
//! the window has to get right: a contact dated within `fatigue_days` whose file
//! arrived long before (dated after its arrival), counted from the carried rows.

use std::path::Path;
use std::sync::Arc;

use c360::clock::SystemClock;
use c360::generate::{GenerateOptions, generate};
use c360::job::Job;
use c360::run::{RunOptions, run};
use c360::runlog::RunRecord;
use chrono::NaiveDate;
use object_store::local::LocalFileSystem;

use crate::util::{engagement_of_email, published_partitions, repo_root};

const DATE: &str = "2026-01-12";

async fn run_job(job: &Job, raw: &Path, wh: &Path) -> RunRecord {
    let options = RunOptions {
        date: NaiveDate::parse_from_str(DATE, "%Y-%m-%d").ok(),
        overrides: vec![
            ("raw".into(), raw.display().to_string()),
            ("warehouse".into(), wh.display().to_string()),
            ("fatigue_days".into(), "3".into()),
        ],
        memory_limit: None,
        engine: None,
        clock: Arc::new(SystemClock),
        full_refresh: false,
    };
    let summary = run(job, &options).await.unwrap();
    let record = wh
        .join("_c360/runs")
        .join(format!("{}.json", summary.run_id));
    serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap()
}

fn window_days_read(record: &RunRecord) -> Option<u64> {
    let step = record.steps.iter().find(|s| s.name == "recent_contacts");
    step.and_then(|s| s.window_days_read)
}

#[tokio::test]
async fn reading_the_last_days_gives_what_reading_every_day_gives() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    std::fs::create_dir_all(&raw).unwrap();
    let options = GenerateOptions {
        customers: 150,
        days: 12,
        seed: 5,
        ..GenerateOptions::default()
    };
    let store = Arc::new(LocalFileSystem::new_with_prefix(&raw).unwrap());
    generate(&options, store, &object_store::path::Path::from(""))
        .await
        .unwrap();
    // A guest known only by email, three sends. With fatigue_days = 3 on
    // 2026-01-12, the window is the days 01-09 to 01-12:
    // - W-1, dated 01-11 but in the file of 01-02 (dated after its arrival,
    //   outside the window): 1 day ago, a recent contact;
    // - W-2, dated 01-05 in the same file: 7 days ago, not recent;
    // - W-3, dated 01-10 in the file of 01-11: 2 days ago, recent.
    let send = |id: &str, ts: &str| {
        format!(
            r#"{{"event_id":"{id}","source_system":"crm","email":"window.guest@example.com","channel":"email","direction":"outbound","event_type":"sent","event_ts":"{ts}","cost":0.10}}"#
        )
    };
    let write = |dt: &str, lines: &[String]| {
        let path = raw.join(format!("communications/dt={dt}/part-0009.ndjson"));
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    };
    write(
        "2026-01-02",
        &[
            send("W-1", "2026-01-11T09:00:00Z"),
            send("W-2", "2026-01-05T09:00:00Z"),
        ],
    );
    write("2026-01-11", &[send("W-3", "2026-01-10T09:00:00Z")]);

    let windowed = c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap();
    let mut every_day = windowed.clone();
    let step = every_day
        .steps
        .iter_mut()
        .find(|s| s.name == "recent_contacts");
    step.unwrap().window_days = None;
    let (wh_a, wh_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let a = run_job(&windowed, &raw, &wh_a).await;
    let b = run_job(&every_day, &raw, &wh_b).await;
    assert_eq!(window_days_read(&a), Some(4));
    assert_eq!(window_days_read(&b), None);

    let got = published_partitions(&wh_a, DATE);
    let want = published_partitions(&wh_b, DATE);
    let names = |p: &[(std::path::PathBuf, Vec<String>)]| {
        p.iter().map(|(dir, _)| dir.clone()).collect::<Vec<_>>()
    };
    assert!(got.len() >= 8, "{:?}", names(&got));
    assert_eq!(names(&got), names(&want));
    for ((dir, got), (_, want)) in got.iter().zip(&want) {
        assert_eq!(got, want, "{}", dir.display());
    }

    // The guest: 3 sends, 2 of them contacts within fatigue_days (W-1, W-3).
    let guest = engagement_of_email(&got, "window.guest@example.com");
    assert_eq!(guest.len(), 1, "{guest:?}");
    let cells: Vec<&str> = guest[0].split('|').collect();
    // customer_key, channel, sent, ..., contacts_last_30d (19th), contact_cost.
    assert_eq!(
        (cells[1], cells[2], cells[18], cells[19]),
        ("email", "3", "2", "0.30"),
        "{guest:?}"
    );
}
