//! One test per validation rule, on small job files written to a temp dir.

mod steps;

use super::*;
use std::fs;
use tempfile::TempDir;

/// A minimal valid job; tests append or replace lines to break one rule each.
const BASE: &str = "\
name: t
storage: { raw: r, warehouse: w }
params: { cur: EUR }
sources:
  orders: { path: \"{raw}/orders\", format: csv, schema: transactions }
";

struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn sql(&self, name: &str, text: &str) -> &Self {
        fs::write(self.dir.path().join(name), text).unwrap();
        self
    }

    fn load(&self, yaml: &str) -> Result<Job, Vec<String>> {
        let path = self.dir.path().join("job.yaml");
        fs::write(&path, yaml).unwrap();
        load_with_base(&path, self.dir.path()).map_err(|d| {
            d.0.iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect()
        })
    }

    fn errors(&self, yaml: &str) -> Vec<String> {
        match self.load(yaml) {
            Ok(job) => panic!("expected errors, loaded {}", job.name),
            Err(e) => e,
        }
    }
}

#[test]
fn minimal_job_loads_with_defaults() {
    let job = Fixture::new().load(BASE).unwrap();
    assert_eq!(job.name, "t");
    assert_eq!(job.timezone, chrono_tz::UTC);
    assert_eq!(job.params.get("cur").map(String::as_str), Some("EUR"));
    assert_eq!(job.sources[0].rejects, RejectBudget::default());
    assert_eq!(job.sources[0].limits, SourceLimits::default());
    assert!(job.schedule.is_none());
}

#[test]
fn source_limits_parse_as_sizes_and_bad_ones_are_located() {
    let good = format!(
        "{BASE}  fx: {{ path: p, format: csv, schema: fx_rates, limits: {{ max_field_bytes: 64KiB, max_record_bytes: 1048576, max_decompressed_bytes: 2GB, max_columns: 40 }} }}\n"
    );
    let job = Fixture::new().load(&good).unwrap();
    let expected = SourceLimits {
        max_field_bytes: 65_536,
        max_record_bytes: 1_048_576,
        max_decompressed_bytes: 2_000_000_000,
        max_columns: 40,
    };
    assert_eq!(job.sources[1].limits, expected);
    // The defaults: 1 MiB, 8 MiB, 16 GiB, 1000 (docs/rules.md).
    let defaults = SourceLimits::default();
    let sizes = (defaults.max_field_bytes, defaults.max_record_bytes);
    assert_eq!(sizes, (1_048_576, 8_388_608));
    assert_eq!(defaults.max_decompressed_bytes, 17_179_869_184);
    assert_eq!(defaults.max_columns, 1000);
    let bad = format!(
        "{BASE}  fx: {{ path: p, format: csv, schema: fx_rates, limits: {{ max_field_bytes: 1mb, max_record_bytes: 0, max_columns: 0, max_rows: 3 }} }}\n"
    );
    assert_eq!(
        Fixture::new().errors(&bad),
        vec![
            "6:118: sources.fx: unknown field `max_rows`, expected one of `max_field_bytes`, `max_record_bytes`, `max_decompressed_bytes`, `max_columns`",
        ]
    );
    let bad = format!(
        "{BASE}  fx: {{ path: p, format: csv, schema: fx_rates, limits: {{ max_field_bytes: 1mb, max_record_bytes: 0, max_columns: 0 }} }}\n"
    );
    assert_eq!(
        Fixture::new().errors(&bad),
        vec![
            "6:76: sources.fx.limits.max_field_bytes: invalid size `1mb`: expected e.g. `512MiB`, `4GiB`, `2GB`",
            "6:99: sources.fx.limits.max_record_bytes: must be more than 0",
            "6:115: sources.fx.limits.max_columns: must be more than 0",
        ]
    );
}

#[test]
fn yaml_syntax_error_is_located() {
    let errors = Fixture::new().errors("name: t\nsources: { a: [1, }\n");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("2:"), "{errors:?}");
}

#[test]
fn unknown_top_level_and_entry_keys() {
    let yaml = format!(
        "{BASE}  fx: {{ path: p, fromat: csv, format: csv, schema: fx_rates }}\nsetps: []\n"
    );
    assert_eq!(
        Fixture::new().errors(&yaml),
        vec![
            "6:18: sources.fx: unknown field `fromat`, expected one of `path`, `format`, `schema`, `partitions`, `rejects`, `limits`, `currencies`, `optional`",
            "7:1: unknown key `setps`, expected one of name, timezone, schedule, params, storage, engine, sources, steps, erasure, checks, outputs, report",
        ]
    );
}

#[test]
fn bad_enum_and_missing_key() {
    let yaml = format!(
        "{BASE}  fx: {{ path: p, format: xlsx, schema: fx_rates }}\n  p: {{ format: csv, schema: profiles }}\n"
    );
    assert_eq!(
        Fixture::new().errors(&yaml),
        vec![
            "6:26: sources.fx: unknown variant `xlsx`, expected one of `csv`, `ndjson`, `parquet`",
            "7:6: sources.p: missing field `path`",
        ]
    );
}

#[test]
fn missing_sql_file_points_at_sql_value() {
    let yaml = format!("{BASE}steps:\n  - {{ name: a, sql: nope.sql }}\n");
    let errors = Fixture::new().errors(&yaml);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("7:21: cannot read SQL file `nope.sql`"),
        "{errors:?}"
    );
}

#[test]
fn undefined_table_points_into_sql_file() {
    let f = Fixture::new();
    f.sql(
        "a.sql",
        "SELECT *\nFROM orders o\n  JOIN  customers c ON o.k = c.k\n",
    );
    let yaml = format!("{BASE}steps:\n  - {{ name: a, sql: a.sql }}\n");
    let path = f.dir.path().join("job.yaml");
    fs::write(&path, yaml).unwrap();
    let d = load_with_base(&path, f.dir.path()).unwrap_err();
    assert_eq!(
        d.to_string(),
        "a.sql:3:9: undefined table `customers` (not a source or step of this job)"
    );
}

#[test]
fn sql_parse_error_position_maps_back_through_placeholders() {
    // `{cur}` becomes `EUR` (5 chars -> 3), so the parser's column must be shifted back.
    let f = Fixture::new();
    f.sql("a.sql", "SELECT '{cur}' AS c, ) FROM orders\n");
    let yaml = format!("{BASE}steps:\n  - {{ name: a, sql: a.sql }}\n");
    let errors = f.errors(&yaml);
    assert_eq!(
        errors,
        vec!["1:22: SQL does not parse: Expected: end of statement, found: )"]
    );
}

#[test]
fn unknown_placeholders_in_paths_and_sql() {
    let f = Fixture::new();
    f.sql("a.sql", "SELECT * FROM orders\nWHERE c = '{currency}'\n");
    let yaml = format!(
        "{BASE}steps:\n  - {{ name: a, sql: a.sql }}\noutputs:\n  a: {{ path: \"{{warehouse}}/{{nme}}\" }}\n"
    );
    assert_eq!(
        f.errors(&yaml),
        vec![
            "9:14: outputs.a.path: unknown placeholder `{nme}`",
            "2:12: unknown placeholder `{currency}`",
        ]
    );
}

#[test]
fn timezones_must_agree_and_exist() {
    let yaml = format!(
        "{BASE}timezone: Europe/Paris\nschedule: {{ cron: \"0 30 2 * * *\", timezone: Europe/London }}\n"
    );
    assert_eq!(
        Fixture::new().errors(&yaml),
        vec!["6:11: timezone `Europe/Paris` disagrees with schedule.timezone `Europe/London`"]
    );
    let yaml = format!("{BASE}timezone: Mars/Olympus\n");
    assert_eq!(
        Fixture::new().errors(&yaml),
        vec![
            "6:11: timezone: unknown time zone `Mars/Olympus` (use an IANA name like `Europe/London`)"
        ]
    );
}

#[test]
fn schedule_is_parsed_and_kept() {
    let yaml = format!(
        "{BASE}engine: {{ memory_limit: 2GiB }}\nschedule: {{ cron: \"0 30 2 * * *\", timezone: Europe/London, catchup: 3d, overlap: queue,\n  retries: {{ attempts: 3, backoff: 2m }} }}\n"
    );
    let job = Fixture::new().load(&yaml).unwrap();
    assert_eq!(job.timezone, chrono_tz::Europe::London);
    assert_eq!(job.engine.memory_limit, Some(2 * 1024 * 1024 * 1024));
    assert_eq!(
        job.schedule,
        Some(ScheduleSpec {
            cron: "0 30 2 * * *".into(),
            catchup: std::time::Duration::from_secs(3 * 86_400),
            overlap: Overlap::Queue,
            retries: RetryPolicy {
                attempts: 3,
                backoff: std::time::Duration::from_secs(120)
            },
            max_runtime: None,
        })
    );
}

#[test]
fn schedule_takes_five_field_cron_replace_and_max_runtime() {
    let yaml =
        format!("{BASE}schedule: {{ cron: \"30 2 * * *\", overlap: replace, max_runtime: 2h }}\n");
    let schedule = Fixture::new().load(&yaml).unwrap().schedule.unwrap();
    assert_eq!(schedule.cron, "30 2 * * *");
    assert_eq!(schedule.overlap, Overlap::Replace);
    assert_eq!(
        schedule.max_runtime,
        Some(std::time::Duration::from_secs(7200))
    );
}

#[test]
fn schedule_errors_point_at_the_value() {
    let yaml =
        format!("{BASE}schedule: {{ cron: \"2 * * *\", max_runtime: soon, overlap: parallel }}\n");
    assert_eq!(
        Fixture::new().errors(&yaml),
        vec![
            "6:58: schedule: unknown variant `parallel`, expected one of `skip`, `queue`, `replace`",
        ]
    );
    let yaml = format!("{BASE}schedule: {{ cron: \"2 * * *\", max_runtime: soon }}\n");
    assert_eq!(
        Fixture::new().errors(&yaml),
        vec![
            "6:19: schedule.cron: expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, found 4",
            "6:43: schedule.max_runtime: invalid duration `soon`: expected e.g. `90s`, `1m`, `2h`, `3d`",
        ]
    );
}

#[test]
fn check_and_output_references() {
    let yaml = format!(
        "{BASE}checks:\n  customers: {{ unique: [k] }}\n  orders:\n    relationships: {{ column: k, to: people, field: k }}\noutputs:\n  nothing: {{ path: \"{{warehouse}}/x\", compression: lz4 }}\n  orders: {{ path: \"{{warehouse}}/o\" }}\n"
    );
    assert_eq!(
        Fixture::new().errors(&yaml),
        vec![
            "7:3: checks: undefined table `customers` (not a source or step of this job)",
            "9:37: checks.orders.relationships.to: undefined table `people` (not a source or step of this job)",
            "11:50: outputs.nothing: unknown variant `lz4`, expected one of `zstd`, `snappy`, `none`",
        ]
    );
}

#[test]
fn currencies_must_name_an_fx_rates_source() {
    let yaml = "name: t\nstorage: { raw: r, warehouse: w }\nsources:\n  o: { path: p, format: csv, schema: transactions, currencies: p }\n  p: { path: q, format: csv, schema: profiles, currencies: o }\n";
    assert_eq!(
        Fixture::new().errors(yaml),
        vec![
            "4:64: sources.o.currencies: `p` does not have schema fx_rates",
            "5:60: sources.p.currencies: `currencies` only applies to schema transactions",
        ]
    );
}

#[test]
fn missing_required_top_level_keys() {
    assert_eq!(
        Fixture::new().errors("sources: {}\n"),
        vec!["1:1: missing key `name`", "1:1: missing key `storage`"]
    );
}

#[test]
fn storage_retry_defaults_and_values() {
    let job = Fixture::new().load(BASE).unwrap();
    assert_eq!(job.storage.retry, StorageRetry::default());
    let yaml = BASE.replace(
        "storage: { raw: r, warehouse: w }",
        "storage: { raw: r, warehouse: w, retry: { max_retries: 0, timeout: 2m } }",
    );
    let job = Fixture::new().load(&yaml).unwrap();
    assert_eq!(
        job.storage.retry,
        StorageRetry {
            max_retries: 0,
            timeout: std::time::Duration::from_secs(120),
        }
    );
}

#[test]
fn storage_retry_errors_point_at_the_value() {
    let yaml = BASE.replace(
        "storage: { raw: r, warehouse: w }",
        "storage: { raw: r, warehouse: w, retry: { max_retries: 21, timeout: 0 } }",
    );
    assert_eq!(
        Fixture::new().errors(&yaml),
        vec![
            "2:56: storage.retry.max_retries: 21 is more than 20",
            "2:69: storage.retry.timeout: must be more than 0",
        ]
    );
    let yaml = BASE.replace(
        "storage: { raw: r, warehouse: w }",
        "storage: { raw: r, warehouse: w, retry: { tries: 3 } }",
    );
    let errors = Fixture::new().errors(&yaml);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("unknown field `tries`"), "{errors:?}");
}

#[test]
fn output_file_layout_is_parsed_with_defaults_and_sizes_are_checked() {
    let yaml = format!(
        "{BASE}outputs:\n  orders: {{ path: \"{{warehouse}}/o\", target_file_size: 64MiB, row_group_size: 8MiB, bloom_filter: [transaction_id] }}\n"
    );
    let job = Fixture::new().load(&yaml).unwrap();
    assert_eq!(
        job.outputs[0].layout,
        FileLayout {
            target_file_bytes: 64 << 20,
            row_group_bytes: 8 << 20,
            bloom_filter: vec!["transaction_id".into()],
            column_statistics: true,
        }
    );
    let yaml = format!("{BASE}outputs:\n  orders: {{ path: \"{{warehouse}}/o\" }}\n");
    let job = Fixture::new().load(&yaml).unwrap();
    assert_eq!(job.outputs[0].layout, FileLayout::default());
    assert_eq!(job.outputs[0].layout.row_group_bytes, 128 << 20);

    let yaml = format!(
        "{BASE}outputs:\n  orders:\n    path: \"{{warehouse}}/o\"\n    row_group_size: lots\n    target_file_size: 0\n"
    );
    assert_eq!(
        Fixture::new().errors(&yaml),
        vec![
            "9:21: outputs.orders.row_group_size: invalid size `lots`: expected e.g. `512MiB`, `4GiB`, `2GB`",
            "10:23: outputs.orders.target_file_size: must be more than 0",
        ]
    );
}

#[test]
fn erasure_rewrite_history_is_off_unless_set_and_must_be_a_boolean() {
    let steps = "steps:\n  - { name: r, sql: r.sql }\n";
    let fixture = Fixture::new();
    fixture.sql(
        "r.sql",
        "SELECT 'email' AS id_type, 'x' AS id_value, 'k' AS customer_key",
    );
    let section = "erasure: { requests: r, customers: r, identifiers: r";
    let job = fixture
        .load(&format!("{BASE}{steps}{section} }}\n"))
        .unwrap();
    assert!(!job.erasure.unwrap().rewrite_history);
    let job = fixture
        .load(&format!(
            "{BASE}{steps}{section}, rewrite_history: true }}\n"
        ))
        .unwrap();
    assert!(job.erasure.unwrap().rewrite_history);
    let errors = fixture.errors(&format!(
        "{BASE}{steps}{section}, rewrite_history: maybe }}\n"
    ));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("8:") && errors[0].contains("erasure"),
        "{errors:?}"
    );
}

#[test]
fn engine_cluster_is_a_ballista_url_and_a_bad_one_is_located() {
    let load = |value: &str| format!("{BASE}engine: {{ cluster: \"{value}\" }}\n");
    let job = Fixture::new()
        .load(&load("ballista://sched.internal"))
        .unwrap();
    assert_eq!(
        job.engine.cluster.as_deref(),
        Some("ballista://sched.internal:50050"),
        "the scheduler's default port"
    );
    let job = Fixture::new()
        .load(&load("ballista://10.0.0.5:6000"))
        .unwrap();
    assert_eq!(
        job.engine.cluster.as_deref(),
        Some("ballista://10.0.0.5:6000")
    );
    assert_eq!(
        Fixture::new().load(&load("local")).unwrap().engine.cluster,
        None
    );
    let line = BASE.lines().count() + 1;
    for bad in [
        "http://sched:50050",
        "ballista://",
        "ballista://h:1/x",
        "sched:50050",
    ] {
        let errors = Fixture::new().errors(&load(bad));
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert!(
            errors[0].starts_with(&format!("{line}:"))
                && errors[0].contains("engine.cluster: expected `local` or `ballista://HOST:PORT`"),
            "{bad}: {errors:?}"
        );
    }
}
