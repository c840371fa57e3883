//! Loading steps: their order, builtins, `previous`, deduplicated rows,
//! `incremental:` and `window_days:`.

use super::*;

#[test]
fn duplicate_step_names() {
    let yaml = format!(
        "{BASE}steps:\n  - {{ name: a, builtin: fit_clv, input: orders }}\n  - {{ name: a, builtin: fit_clv, input: orders }}\n  - {{ name: orders, builtin: fit_clv, input: a }}\n"
    );
    assert_eq!(
        Fixture::new().errors(&yaml),
        vec![
            "8:13: duplicate name `a` (first defined at line 7, column 13)",
            "9:13: duplicate name `orders` (first defined at line 5, column 3)",
        ]
    );
}

#[test]
fn cycle_is_named_at_its_first_step() {
    let f = Fixture::new();
    f.sql("a.sql", "SELECT * FROM b");
    f.sql("b.sql", "SELECT * FROM c");
    f.sql("c.sql", "SELECT * FROM a JOIN orders USING (k)");
    let yaml = format!(
        "{BASE}steps:\n  - {{ name: b, sql: b.sql }}\n  - {{ name: a, sql: a.sql }}\n  - {{ name: c, sql: c.sql }}\n"
    );
    assert_eq!(
        f.errors(&yaml),
        vec!["7:13: dependency cycle: b -> c -> a -> b"]
    );
}

#[test]
fn steps_are_ordered_by_dependencies_and_file_order() {
    let f = Fixture::new();
    f.sql(
        "late.sql",
        "WITH x AS (SELECT * FROM early) SELECT * FROM x JOIN stitched USING (k)",
    );
    f.sql("early.sql", "SELECT * FROM orders");
    let yaml = format!(
        "{BASE}steps:\n  - {{ name: late, sql: late.sql }}\n  - {{ name: stitched, builtin: stitch_identities, input: [orders] }}\n  - {{ name: early, sql: early.sql }}\n"
    );
    let job = f.load(&yaml).unwrap();
    let order: Vec<(&str, Vec<&str>)> = job
        .steps
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.depends_on.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![
            ("stitched", vec!["orders"]),
            ("early", vec!["orders"]),
            ("late", vec!["early", "stitched"]),
        ]
    );
}

#[test]
fn stitch_identities_also_defines_its_merges_table() {
    let f = Fixture::new();
    f.sql("merges.sql", "SELECT * FROM ids_merges");
    let yaml = format!(
        "{BASE}steps:\n  - {{ name: merges, sql: merges.sql }}\n  - {{ name: ids, builtin: stitch_identities, input: orders }}\noutputs:\n  ids_merges: {{ path: \"{{warehouse}}/m\" }}\n"
    );
    let job = f.load(&yaml).unwrap();
    let names: Vec<&str> = job.steps.iter().map(|s| s.name.as_str()).collect();
    // Reading the companion table orders the SQL step after the builtin.
    assert_eq!(names, vec!["ids", "merges"]);
    assert_eq!(job.steps[0].also_defines, vec!["ids_merges".to_string()]);
    // A source of that name clashes with it.
    let clash = format!(
        "{BASE}  ids_merges: {{ path: \"{{raw}}/x\", format: csv, schema: transactions }}\nsteps:\n  - {{ name: ids, builtin: stitch_identities, input: orders }}\n"
    );
    let errors = f.load(&clash).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("duplicate name `ids_merges`")),
        "{errors:?}"
    );
}

#[test]
fn builtin_rules() {
    let yaml = format!(
        "{BASE}steps:\n  - {{ name: a, builtin: magic, input: orders }}\n  - {{ name: b, builtin: fit_clv }}\n  - {{ name: c, builtin: fit_clv, input: [orders, nope] }}\n  - {{ name: d }}\n"
    );
    assert_eq!(
        Fixture::new().errors(&yaml),
        vec![
            "7:25: steps[0]: unknown variant `magic`, expected `stitch_identities` or `fit_clv`",
            "8:25: step `b`: builtin `fit_clv` needs `input`",
            "9:41: step `c`: undefined input `nope` (not a source or step of this job)",
            "10:13: step `d`: needs `sql` or `builtin`",
        ]
    );
}

#[test]
fn previous_names_an_output_and_only_on_builtins() {
    let f = Fixture::new();
    f.sql("a.sql", "SELECT * FROM orders");
    let steps =
        "steps:\n  - { name: g, builtin: stitch_identities, input: orders, previous: map }\n";
    let ok = format!(
        "{BASE}{steps}  - {{ name: map, sql: a.sql }}\noutputs:\n  map: {{ path: \"{{warehouse}}/m\" }}\n"
    );
    let job = f.load(&ok).unwrap();
    assert_eq!(job.steps[0].previous.as_deref(), Some("map"));
    assert_eq!(job.steps[1].previous, None);
    let bad = format!("{BASE}{steps}  - {{ name: map, sql: a.sql, previous: map }}\n");
    assert_eq!(
        f.errors(&bad),
        vec![
            "7:69: step `g`: `previous: map` is not an output of this job",
            "8:40: step `map`: `previous` only applies to builtin steps",
        ]
    );
}

#[test]
fn a_keyed_source_defines_its_deduplicated_rows() {
    let f = Fixture::new();
    f.sql("a.sql", "SELECT transaction_id FROM orders_deduped");
    let job = f
        .load(&format!("{BASE}steps:\n  - {{ name: a, sql: a.sql }}\n"))
        .unwrap();
    assert_eq!(job.steps[0].depends_on, vec!["orders_deduped"]);
    // The name is taken: a step cannot define it again.
    let yaml = format!("{BASE}steps:\n  - {{ name: orders_deduped, sql: a.sql }}\n");
    assert_eq!(
        f.errors(&yaml),
        vec!["7:13: duplicate name `orders_deduped` (first defined at line 5, column 3)"]
    );
}

#[test]
fn incremental_reads_only_partitioned_sources_and_merges_a_column() {
    let f = Fixture::new();
    f.sql(
        "a.sql",
        "SELECT email, MIN(order_ts) AS first_ts FROM orders GROUP BY email",
    );
    let partitioned = BASE.replace(
        "schema: transactions",
        "schema: transactions, partitions: [dt]",
    );
    let ok = format!(
        "{partitioned}steps:\n  - {{ name: a, sql: a.sql, incremental: {{ merge: {{ first_ts: min }} }} }}\n"
    );
    let job = f.load(&ok).unwrap();
    let want = Incremental {
        merge: vec![("first_ts".to_string(), Merge::Min)],
    };
    assert_eq!(job.steps[0].incremental, Some(want));
    // Unpartitioned: parsed every run, not in the cache a state folds.
    let unpartitioned = format!(
        "{BASE}steps:\n  - {{ name: a, sql: a.sql, incremental: {{ merge: {{ first_ts: min }} }} }}\n"
    );
    assert_eq!(
        f.errors(&unpartitioned),
        vec![
            "7:41: step `a`: an incremental step reads only partitioned sources (not the erasure requests) and the `_deduped` rows of those where the first copy wins; `orders` is neither"
        ]
    );
    // Deduplicated rows: only where the first copy wins (a later order copy wins).
    f.sql(
        "d.sql",
        "SELECT email, COUNT(*) AS n FROM orders_deduped GROUP BY email",
    );
    let latest_wins = format!(
        "{partitioned}steps:\n  - {{ name: d, sql: d.sql, incremental: {{ merge: {{ n: sum }} }} }}\n"
    );
    assert_eq!(
        f.errors(&latest_wins),
        vec![
            "7:41: step `d`: an incremental step reads only partitioned sources (not the erasure requests) and the `_deduped` rows of those where the first copy wins; `orders_deduped` is neither"
        ]
    );
    f.sql(
        "e.sql",
        "SELECT email, COUNT(*) AS n FROM events_deduped GROUP BY email",
    );
    let first_wins = format!(
        "{partitioned}  events: {{ path: \"{{raw}}/events\", format: ndjson, schema: communications, partitions: [dt] }}\nsteps:\n  - {{ name: e, sql: e.sql, incremental: {{ merge: {{ n: sum }} }} }}\n"
    );
    let job = f.load(&first_wins).unwrap();
    let want = Incremental {
        merge: vec![("n".to_string(), Merge::Sum)],
    };
    assert_eq!(job.steps[0].incremental, Some(want));
    let empty = format!(
        "{partitioned}steps:\n  - {{ name: a, sql: a.sql, incremental: {{ merge: {{}} }} }}\n"
    );
    assert_eq!(
        f.errors(&empty),
        vec!["7:41: step `a`: `incremental.merge` names no column"]
    );
    let bad_fn = format!(
        "{partitioned}steps:\n  - {{ name: a, sql: a.sql, incremental: {{ merge: {{ first_ts: avg }} }} }}\n"
    );
    let errors = f.errors(&bad_fn);
    assert!(errors[0].contains("avg"), "{errors:?}");
    let builtin = format!(
        "{partitioned}steps:\n  - {{ name: g, builtin: stitch_identities, input: orders, incremental: {{ merge: {{ x: max }} }} }}\n"
    );
    let errors = f.errors(&builtin);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`incremental` only applies to SQL steps")),
        "{errors:?}"
    );
}

#[test]
fn window_days_is_a_number_of_days_for_a_sql_step_over_cached_sources() {
    let f = Fixture::new();
    f.sql(
        "a.sql",
        "SELECT email, COUNT(*) AS n FROM orders WHERE order_ts > DATE '{date}' - {days} GROUP BY email",
    );
    let job_with = |window: &str| {
        BASE.replace("params: { cur: EUR }", "params: { cur: EUR, days: 30 }")
            .replace(
                "schema: transactions",
                "schema: transactions, partitions: [dt]",
            )
            + &format!("steps:\n  - {{ name: a, sql: a.sql, window_days: {window} }}\n")
    };
    // A param (kept as text, interpolated by each run) or a number.
    let job = f.load(&job_with("\"{days}\"")).unwrap();
    assert_eq!(job.steps[0].window_days.as_deref(), Some("{days}"));
    let job = f.load(&job_with("14")).unwrap();
    assert_eq!(job.steps[0].window_days.as_deref(), Some("14"));
    assert_eq!(
        f.errors(&job_with("\"{nope}\"")),
        vec!["7:41: step `a`: `window_days`: unknown placeholder `{nope}`"]
    );
    assert_eq!(
        f.errors(&job_with("\"{cur}\"")),
        vec!["7:41: step `a`: `window_days`: `EUR` is not a whole number of days"]
    );
    // Not with `incremental`, not on a builtin, not over an unpartitioned source.
    let both = job_with("30").replace(
        "window_days: 30",
        "window_days: 30, incremental: { merge: { n: sum } }",
    );
    let errors = f.errors(&both);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`window_days` and `incremental` do not go together")),
        "{errors:?}"
    );
    let builtin = job_with("30").replace("sql: a.sql", "builtin: fit_clv, input: orders");
    let errors = f.errors(&builtin);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`window_days` only applies to SQL steps")),
        "{errors:?}"
    );
    let unpartitioned = format!(
        "{}steps:\n  - {{ name: a, sql: a.sql, window_days: 30 }}\n",
        BASE.replace("params: { cur: EUR }", "params: { cur: EUR, days: 30 }")
    );
    assert_eq!(
        f.errors(&unpartitioned),
        vec![
            "7:41: step `a`: a step with `window_days` reads only partitioned sources (not the erasure requests) and the `_deduped` rows of those where the first copy wins; `orders` is neither"
        ]
    );
}
