//! The typed staging cache (issue 18, README "Nightly loads"): a sequence of
//! daily runs, each reusing the days parsed before, with the raw zone changing
//! between them (a day re-sent with an extra file, that file then rewritten to
//! the same size, a late order and its return in a later day, a deleted day, the
//! generator's erasure requests, late and re-sent rows), ends with every output
//! and every reject equal row for row to a `--full-refresh` run of the last day
//! on a copy of the same warehouse; and the run log says which days each run
//! parsed and which it reused.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use c360::clock::SystemClock;
use c360::generate::{GenerateOptions, generate};
use c360::run::{RunOptions, run};
use c360::runlog::RunRecord;
use chrono::NaiveDate;
use object_store::local::LocalFileSystem;

use crate::util::{engagement_of_email, files_under, published_partitions, repo_root};

const HEADER: &str = "transaction_id,line_no,source_system,source_customer_id,email,order_ts,channel,product_id,category,quantity,unit_price,discount,unit_cost,currency,status";

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

async fn run_on(raw: &Path, wh: &Path, on: &str, full_refresh: bool) -> RunRecord {
    let job = c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap();
    let options = RunOptions {
        date: Some(day(on)),
        overrides: vec![
            ("raw".into(), raw.display().to_string()),
            ("warehouse".into(), wh.display().to_string()),
        ],
        memory_limit: None,
        engine: None,
        clock: Arc::new(SystemClock),
        full_refresh,
    };
    let summary = run(&job, &options).await.unwrap();
    let record = wh
        .join("_c360/runs")
        .join(format!("{}.json", summary.run_id));
    serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap()
}

/// What the incremental step `identity_link_rows` carried in `record`.
fn carried(record: &RunRecord) -> c360::steps::carried::Carried {
    carried_by(record, "identity_link_rows")
}

/// What incremental step `step` carried in `record`.
fn carried_by(record: &RunRecord, step: &str) -> c360::steps::carried::Carried {
    let step = record.steps.iter().find(|s| s.name == step);
    step.and_then(|s| s.incremental.clone()).unwrap()
}

/// The parts of incremental step `step`'s state in `wh`: (base rows, delta rows each).
fn state_parts(wh: &Path, step: &str) -> (u64, Vec<u64>) {
    let manifest = wh.join("_c360/state").join(step).join("manifest.json");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    let rows = |part: &serde_json::Value| part["rows"].as_u64().unwrap();
    let deltas = manifest["deltas"].as_array().unwrap();
    (rows(&manifest["base"]), deltas.iter().map(rows).collect())
}

/// No row of the carried identity rows names a source id whose erasure was
/// requested by `on` (the raw requests, read here as text).
async fn assert_no_erased_rows(raw: &Path, wh: &Path, on: &str) {
    let mut erased = BTreeSet::new();
    for file in files_under(&raw.join("suppressions")) {
        for line in std::fs::read_to_string(file).unwrap().lines().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() == 4 && !fields[2].is_empty() && fields[3][..10] <= *on {
                erased.insert(format!("{}:{}", fields[1], fields[2]));
            }
        }
    }
    assert!(!erased.is_empty());
    let ctx = datafusion::prelude::SessionContext::new();
    // The base and the deltas: every Parquet file of the state.
    let state = wh.join("_c360/state/identity_link_rows");
    let parts: Vec<_> = files_under(&state)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(!parts.is_empty());
    let mut selects = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let options = datafusion::prelude::ParquetReadOptions::default();
        let name = format!("part{i}");
        ctx.register_parquet(&name, part.to_str().unwrap(), options)
            .await
            .unwrap();
        selects.push(format!(
            "SELECT DISTINCT source_system || ':' || source_customer_id AS id FROM {name}"
        ));
    }
    let sql = selects.join(" UNION ");
    let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    let mut ids = BTreeSet::new();
    for batch in &batches {
        let column = datafusion::arrow::compute::cast(
            batch.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let column = column
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>();
        ids.extend(column.unwrap().iter().flatten().map(str::to_string));
    }
    assert!(ids.len() > 100, "{}", ids.len());
    let kept: Vec<_> = erased.intersection(&ids).collect();
    assert!(kept.is_empty(), "{kept:?}");
}

/// `(days parsed, days reused)` of source `name` in `record`.
fn days(record: &RunRecord, name: &str) -> (Vec<NaiveDate>, Vec<NaiveDate>) {
    let source = record.sources.iter().find(|s| s.name == name).unwrap();
    (source.days_parsed.clone(), source.days_reused.clone())
}

/// The `dt=` days of `raw/<source>` up to `until` holding at least one file.
fn raw_days(raw: &Path, source: &str, until: NaiveDate) -> BTreeSet<NaiveDate> {
    files_under(&raw.join(source))
        .iter()
        .filter_map(|f| {
            let folder = f.parent()?.file_name()?.to_str()?;
            NaiveDate::parse_from_str(folder.strip_prefix("dt=")?, "%Y-%m-%d").ok()
        })
        .filter(|d| *d <= until)
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    for file in files_under(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

#[tokio::test]
async fn daily_runs_through_the_cache_equal_a_full_refresh() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    let options = GenerateOptions {
        customers: 300,
        days: 20,
        seed: 11,
        ..GenerateOptions::default()
    };
    std::fs::create_dir_all(&raw).unwrap();
    let store = Arc::new(LocalFileSystem::new_with_prefix(&raw).unwrap());
    generate(&options, store, &object_store::path::Path::from(""))
        .await
        .unwrap();

    // Night 1: everything is parsed.
    let first = run_on(&raw, &wh, "2026-01-06", false).await;
    let (parsed, reused) = days(&first, "transactions");
    let want: Vec<NaiveDate> = raw_days(&raw, "transactions", day("2026-01-06"))
        .into_iter()
        .collect();
    assert_eq!((parsed, reused), (want, vec![]));

    // Between nights: day 3 is re-sent with a late guest order, day 11 will
    // carry its return, and the communications of day 4 are withdrawn.
    let late = raw.join("transactions/dt=2026-01-03/part-0001.csv");
    let order = "T-LATE-1,1,web,,Late.Buyer@Example.com ,2026-01-02T10:00:00+00:00,online,P1,books,2,10.00,,4.00,EUR";
    std::fs::write(&late, format!("{HEADER}\n{order},completed\n")).unwrap();
    std::fs::create_dir_all(raw.join("transactions/dt=2026-01-11")).unwrap();
    std::fs::write(
        raw.join("transactions/dt=2026-01-11/part-0001.csv"),
        format!("{HEADER}\n{order},returned\n"),
    )
    .unwrap();
    assert!(raw.join("communications/dt=2026-01-04").is_dir());
    std::fs::remove_dir_all(raw.join("communications/dt=2026-01-04")).unwrap();
    // A guest known only by email gets a send (with a cost) on day 7; night 5
    // re-sends it changed (the first copy wins) beside an event dated after its
    // date (not counted yet).
    let event = |id: &str, kind: &str, ts: &str, cost: &str| {
        format!(
            r#"{{"event_id":"{id}","source_system":"crm","email":"resent.guest@example.com","channel":"email","direction":"outbound","event_type":"{kind}","event_ts":"{ts}","cost":{cost}}}"#
        )
    };
    let resent = |kind, cost| event("E-RESENT-1", kind, "2026-01-06T09:00:00Z", cost);
    std::fs::write(
        raw.join("communications/dt=2026-01-07/part-0009.ndjson"),
        resent("sent", "0.25") + "\n",
    )
    .unwrap();

    // Night 2 (after the generator's erasure requests of day 8): only the
    // re-sent day and the new days are parsed; the withdrawn day's entry goes.
    let second = run_on(&raw, &wh, "2026-01-10", false).await;
    let present = raw_days(&raw, "transactions", day("2026-01-10"));
    let (parsed, reused) = days(&second, "transactions");
    let new: BTreeSet<NaiveDate> = present
        .iter()
        .copied()
        .filter(|d| *d == day("2026-01-03") || *d > day("2026-01-06"))
        .collect();
    assert_eq!(parsed, new.iter().copied().collect::<Vec<_>>());
    assert_eq!(
        reused,
        present.difference(&new).copied().collect::<Vec<_>>()
    );
    let (parsed, reused) = days(&second, "communications");
    assert!(!parsed.contains(&day("2026-01-04")) && !reused.contains(&day("2026-01-04")));
    // (Object stores have no folders: on local disk an empty one may remain.)
    assert!(files_under(&wh.join("_c360/staging/communications/dt=2026-01-04")).is_empty());
    let erasure = second.erasure.clone().unwrap_or_default();
    assert!(erasure.erased_customers.unwrap_or(0) > 0, "{erasure:?}");
    // The erased people's rows are not kept (docs/rules.md "Erasure"): at the end
    // of the run they were taken out of the entries, whose manifests keep only
    // their raw file and line; the requests themselves are never cached.
    let held: BTreeSet<NaiveDate> = present
        .iter()
        .copied()
        .filter(|d| {
            let manifest = wh.join(format!("_c360/staging/transactions/dt={d}/manifest.json"));
            std::fs::read_to_string(manifest)
                .unwrap()
                .contains("\"held_out\"")
        })
        .collect();
    assert!(!held.is_empty());
    assert!(files_under(&wh.join("_c360/staging/suppressions")).is_empty());

    // The re-sent file is rewritten to the same size: quantity 2 becomes 3.
    let before = std::fs::metadata(&late).unwrap().len();
    let text = std::fs::read_to_string(&late)
        .unwrap()
        .replace(",2,10.00,", ",3,10.00,");
    std::fs::write(&late, text).unwrap();
    assert_eq!(std::fs::metadata(&late).unwrap().len(), before);

    // Night 3: the rewritten day is parsed again, with the days after night 2;
    // the days holding out erased people's rows are reused (their held-out
    // records are read back from the raw files).
    let third = run_on(&raw, &wh, "2026-01-16", false).await;
    let present = raw_days(&raw, "transactions", day("2026-01-16"));
    let (parsed, reused) = days(&third, "transactions");
    let want: Vec<NaiveDate> = present
        .iter()
        .copied()
        .filter(|d| *d == day("2026-01-03") || *d > day("2026-01-10"))
        .collect();
    assert_eq!(parsed, want);
    assert!(
        held.iter()
            .all(|d| reused.contains(d) || *d == day("2026-01-03"))
    );

    // Nights 4 and 5 add a day each. The carried identity rows are read from
    // the state; a day waits, reduced each run, until the end of the run that
    // parsed it has taken erased people's rows out of it, and is folded into the
    // state by the next run.
    let fourth = run_on(&raw, &wh, "2026-01-17", false).await;
    // Night 4 folded the days night 3 parsed (11 to 16) beside the base night 3
    // wrote (a delta, the base untouched)...
    let (base4, deltas4) = state_parts(&wh, "identity_link_rows");
    assert_eq!(deltas4.len(), 1, "{deltas4:?}");
    assert!(
        deltas4[0] > 0 && deltas4[0] * 16 >= base4,
        "{base4} {deltas4:?}"
    );
    let ahead = event("E-AHEAD-1", "sent", "2026-01-19T08:00:00Z", "7.00");
    std::fs::write(
        raw.join("communications/dt=2026-01-18/part-0009.ndjson"),
        format!("{}\n{ahead}\n", resent("clicked", "5.00")),
    )
    .unwrap();
    let fifth = run_on(&raw, &wh, "2026-01-18", false).await;
    // ... and that delta, over 1/16 of the base, was merged into a new base
    // when night 5 folded day 17.
    let (base5, deltas5) = state_parts(&wh, "identity_link_rows");
    assert!(deltas5.is_empty() && base5 > base4, "{base5} {deltas5:?}");
    let sources = ["transactions", "profiles", "communications"];
    let new_days = |on: &str| {
        (sources.iter())
            .filter(|s| raw_days(&raw, s, day(on)).contains(&day(on)))
            .count() as u64
    };
    // Nights 1 to 3 rebuilt the carried state: there was none, then days it
    // folded were withdrawn or parsed again (a min cannot forget a day).
    let rebuilt = |r: &RunRecord| carried(r).rebuilt.unwrap_or_default();
    assert_eq!(rebuilt(&first), "no carried state");
    assert!(
        rebuilt(&second).contains(" was parsed again") || rebuilt(&second).contains(" is gone")
    );
    assert_eq!(
        rebuilt(&third),
        "transactions dt=2026-01-03 was parsed again"
    );
    let (c4, c5) = (carried(&fourth), carried(&fifth));
    assert_eq!(c4.rebuilt, None, "{c4:?}");
    assert_eq!(c5.rebuilt, None, "{c5:?}");
    let all_days: u64 = (sources.iter())
        .map(|s| raw_days(&raw, s, day("2026-01-17")).len() as u64)
        .sum();
    assert!(c4.days_carried > 0, "{c4:?}");
    let read = c4.days_carried + c4.days_folded + c4.days_pending;
    assert_eq!(read, all_days, "{c4:?}");
    assert_eq!(c4.days_pending, new_days("2026-01-17"), "{c4:?}");
    assert_eq!(c5.days_folded, c4.days_pending, "{c5:?}");
    assert_eq!(c5.days_carried, c4.days_carried + c4.days_folded, "{c5:?}");
    assert!(c5.days_pending >= 1, "{c5:?}");
    // The run log has what the joins above it were chosen from: the base and
    // the (fewer) bytes merged into it, the pending days among them.
    assert!(c5.new_bytes > 0 && c5.new_bytes < c5.base_bytes, "{c5:?}");
    // The events' counts are carried alike (one source, communications).
    let (e4, e5) = (
        carried_by(&fourth, "channel_activity_rows"),
        carried_by(&fifth, "channel_activity_rows"),
    );
    assert_eq!(
        (e4.rebuilt.clone(), e5.rebuilt.clone()),
        (None, None),
        "{e4:?}"
    );
    assert_eq!((e4.days_pending, e5.days_folded), (1, 1), "{e4:?} {e5:?}");
    assert_eq!(e5.days_carried, e4.days_carried + e4.days_folded, "{e5:?}");
    assert_no_erased_rows(&raw, &wh, "2026-01-18").await;

    // The same warehouse, refreshed in full for the last night.
    let copy = tmp.path().join("copy");
    copy_dir(&wh, &copy);
    let refreshed = run_on(&raw, &copy, "2026-01-18", true).await;
    assert_eq!(
        carried(&refreshed).rebuilt.as_deref(),
        Some("--full-refresh")
    );
    for source in sources {
        let (parsed, reused) = days(&refreshed, source);
        assert!(reused.is_empty(), "{source}");
        assert_eq!(
            parsed.len(),
            raw_days(&raw, source, day("2026-01-18")).len()
        );
    }
    let got = published_partitions(&wh, "2026-01-18");
    let want = published_partitions(&copy, "2026-01-18");
    assert!(
        got.len() >= 8,
        "{:?}",
        got.iter().map(|g| &g.0).collect::<Vec<_>>()
    );
    assert_eq!(
        got.iter().map(|g| &g.0).collect::<Vec<_>>(),
        want.iter().map(|w| &w.0).collect::<Vec<_>>()
    );
    for ((dir, got), (_, want)) in got.iter().zip(&want) {
        assert_eq!(got.len(), want.len(), "rows of {}", dir.display());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g, w, "{}", dir.display());
        }
    }
    // The late order (quantity 3 after the rewrite) and its return (2) both count.
    let lines = &got
        .iter()
        .find(|(dir, _)| dir.starts_with("order_lines"))
        .unwrap()
        .1;
    let late: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("T-LATE-1|"))
        .collect();
    assert_eq!(late.len(), 2, "{late:?}");
    let line = |status: &str| {
        late.iter()
            .find(|l| l.contains(&format!("|{status}|")))
            .unwrap()
    };
    assert!(line("completed").contains("|3|10.00|"), "{late:?}");
    assert!(line("returned").contains("|2|10.00|"), "{late:?}");
    // The guest's email row: its first send counts (1 sent, no click, cost
    // 0.25); neither the changed copy nor the event dated after the date does.
    let guest = engagement_of_email(&got, "resent.guest@example.com");
    assert_eq!(guest.len(), 1, "{guest:?}");
    let key = guest[0].split('|').next().unwrap();
    assert!(
        guest[0].starts_with(&format!("{key}|email|1|0|0|0|")),
        "{guest:?}"
    );
    assert!(guest[0].ends_with("|0.25"), "{guest:?}");

    // A backfill of an earlier date computes the step in full (the state holds
    // later days) and leaves the state usable: night 5 run again from it still
    // equals the full refresh.
    let backfill = run_on(&raw, &wh, "2026-01-12", false).await;
    let step = backfill
        .steps
        .iter()
        .find(|s| s.name == "identity_link_rows");
    assert_eq!(step.map(|s| s.incremental.clone()), Some(None));
    let again = run_on(&raw, &wh, "2026-01-18", false).await;
    assert_eq!(carried(&again).rebuilt, None, "{:?}", carried(&again));
    // It folded day 18 as a delta beside the base night 5 wrote, and its
    // result (base, delta and read-back rows merged) still equals the refresh.
    let (base, deltas) = state_parts(&wh, "identity_link_rows");
    assert_eq!((base, deltas.len()), (base5, 1), "{deltas:?}");
    assert_eq!(published_partitions(&wh, "2026-01-18"), want);
}
