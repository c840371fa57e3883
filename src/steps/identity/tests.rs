//! Hand-made identity graphs: linking rules, the cap, phones, and key stability.
//! Expected keys were computed independently in Python (see the first test).

use super::graph::{Components, GraphBuilder, NONE};
use super::intern::Tag;
use super::keys::{self, Assignment, Merge, Previous, derive_key};
use crate::job::StitchSettings;

/// `(record, identifiers)` rows, every row seen on day `day`.
type Rows<'a> = &'a [((Tag, &'a str), &'a [(Tag, &'a str)])];

fn build(rows: Rows, day: i32, rules: StitchSettings) -> Components {
    let mut builder = GraphBuilder::default();
    for (record, identifiers) in rows {
        if identifiers.is_empty() {
            builder.add(*record, None, Some(day)).unwrap();
        }
        for identifier in *identifiers {
            builder.add(*record, Some(*identifier), Some(day)).unwrap();
        }
    }
    builder.finish(&rules)
}

fn comp(graph: &Components, tag: Tag, value: &str) -> u32 {
    graph.component[graph.interner.get(tag, value).unwrap() as usize]
}

fn key_of(graph: &Components, keys: &Assignment, tag: Tag, value: &str) -> String {
    keys.keys[comp(graph, tag, value) as usize].clone()
}

/// The previous map as a run would have published it: every mapped identifier, its key and day.
fn as_previous(old: &Components, old_keys: &Assignment, today: &Components) -> Previous {
    let mut previous = Previous::new(today.interner.len());
    for node in 0..old.interner.len() as u32 {
        let c = old.component[node as usize];
        if c != NONE {
            previous.add(
                &today.interner,
                old.interner.tag(node).name(),
                old.interner.value(node),
                &old_keys.keys[c as usize],
                Some(old.first_seen[node as usize]),
            );
        }
    }
    previous
}

const C1: (Tag, &str) = (Tag::Source, "crm:C1");
const W1: (Tag, &str) = (Tag::Source, "web:W1");
const P1: (Tag, &str) = (Tag::Source, "pos:P1");
const A: (Tag, &str) = (Tag::Email, "a@x.com");
const PHONE: (Tag, &str) = (Tag::Phone, "+442079460958");

#[test]
fn derived_keys_are_fnv1a_128_mixed_by_murmur_fmix64() {
    // Python: h = FNV-1a-128(b"source:crm:C1"); hi = fmix64(h >> 64);
    // lo = fmix64((h & (2**64 - 1)) ^ hi); key = f"{hi:016x}{lo >> 48:04x}"
    assert_eq!(derive_key(Tag::Source, "crm:C1"), "f777b5c02ca0bc480733");
    assert_eq!(derive_key(Tag::Email, "a@x.com"), "68cd0c2c7283088286c7");
}

#[test]
fn links_are_transitive_and_a_guest_order_joins_by_email() {
    // crm email = web email, web phone = pos phone, a guest order with the same email.
    let rows: Rows = &[
        (C1, &[C1, A]),
        (W1, &[W1, A, PHONE]),
        (P1, &[P1, PHONE]),
        ((Tag::Order, "T4"), &[A]),
        ((Tag::Order, "T5"), &[]),
        ((Tag::Source, "crm:C2"), &[(Tag::Source, "crm:C2")]),
    ];
    let graph = build(rows, 20_000, StitchSettings::default());
    assert_eq!(graph.report.components, 2);
    let one = comp(&graph, C1.0, C1.1);
    for (tag, value) in [W1, P1, A, PHONE] {
        assert_eq!(comp(&graph, tag, value), one, "{value}");
    }
    assert_eq!(graph.report.identifiers, 6);
    // T5 has no identifier: unattributed; records are never in the map.
    assert_eq!(graph.report.unattributed_orders, 1);
    assert_eq!(comp(&graph, Tag::Order, "T4"), NONE);
    let keys = keys::assign(&graph, None).unwrap();
    // Smallest identifier: sources before emails and phones, then text: crm:C1.
    assert_eq!(key_of(&graph, &keys, C1.0, C1.1), "f777b5c02ca0bc480733");
}

fn cap(max: u32) -> StitchSettings {
    StitchSettings {
        max_records_per_identifier: max,
        ..StitchSettings::default()
    }
}

#[test]
fn an_identifier_over_the_cap_links_nothing_and_is_reported() {
    let shared = (Tag::Email, "noemail@store.com");
    let p2 = (Tag::Source, "pos:P2");
    let rows: Rows = &[
        (C1, &[C1, shared]),
        (W1, &[W1, shared]),
        (P1, &[P1, shared]),
        ((Tag::Order, "T1"), &[shared]),
        (p2, &[p2, shared]),
    ];
    let graph = build(rows, 20_000, cap(3));
    // Four source records carry it, one over the cap of three; the guest order
    // is reported beside them but does not count.
    assert_eq!(graph.capped.len(), 1);
    assert_eq!(
        (graph.capped[0].records, graph.capped[0].guest_records),
        (4, 1)
    );
    assert_eq!(comp(&graph, shared.0, shared.1), NONE);
    assert_eq!(graph.report.components, 4);
    assert_eq!(graph.report.unattributed_orders, 1);
    // Three source records and the guest order: at the cap it still links all four.
    let graph = build(&rows[..4], 20_000, cap(3));
    assert!(graph.capped.is_empty());
    assert_eq!(graph.report.components, 1);
    assert_eq!(graph.report.unattributed_orders, 0);
}

/// A record and the identifiers it carries, as owned text.
type OwnedRow = ((Tag, String), Vec<(Tag, String)>);

/// `n` rows of `record(k)`, each carrying `identifiers(k)`.
fn many(
    n: usize,
    record: impl Fn(usize) -> (Tag, String),
    ids: impl Fn(usize) -> Vec<(Tag, String)>,
) -> Vec<OwnedRow> {
    (0..n).map(|k| (record(k), ids(k))).collect()
}

fn build_owned(rows: &[OwnedRow], rules: StitchSettings) -> Components {
    let mut builder = GraphBuilder::default();
    for ((tag, record), ids) in rows {
        for (id_tag, id) in ids {
            builder
                .add((*tag, record), Some((*id_tag, id)), Some(20_000))
                .unwrap();
        }
    }
    builder.finish(&rules)
}

#[test]
fn guest_orders_never_count_towards_the_cap() {
    let email = || vec![(Tag::Email, "daan@x.com".to_string())];
    // A guest with 60 orders under one email (cap 50): one customer, no order unattributed.
    let guest = many(60, |k| (Tag::Order, format!("T{k}")), |_| email());
    let graph = build_owned(&guest, StitchSettings::default());
    assert!(graph.capped.is_empty());
    assert_eq!(graph.report.components, 1);
    assert_eq!(graph.report.unattributed_orders, 0);

    // A profile and 60 guest orders under the profile's email: still one customer.
    let mut with_profile = guest.clone();
    let c = (Tag::Source, "crm:C1".to_string());
    with_profile.push((c.clone(), vec![c, (Tag::Email, "daan@x.com".to_string())]));
    let graph = build_owned(&with_profile, StitchSettings::default());
    assert_eq!(graph.report.components, 1);
    assert_eq!(
        comp(&graph, Tag::Email, "daan@x.com"),
        comp(&graph, C1.0, C1.1)
    );
    assert_eq!(graph.report.unattributed_orders, 0);

    // A placeholder on 60 till records: links nothing, 60 customers of their own.
    let till = many(
        60,
        |k| (Tag::Source, format!("pos:P{k}")),
        |k| {
            vec![
                (Tag::Source, format!("pos:P{k}")),
                (Tag::Email, "noemail@store.com".to_string()),
            ]
        },
    );
    let graph = build_owned(&till, StitchSettings::default());
    assert_eq!(graph.capped.len(), 1);
    assert_eq!(
        (graph.capped[0].records, graph.capped[0].guest_records),
        (60, 0)
    );
    assert_eq!(graph.report.components, 60);
}

#[test]
fn a_placeholder_under_the_cap_links_and_is_reported_until_excluded() {
    // Guest orders of different people typed in with `none@shop.de`.
    let rows = many(
        30,
        |k| (Tag::Order, format!("T{k}")),
        |_| vec![(Tag::Email, "none@shop.de".to_string())],
    );
    let graph = build_owned(&rows, StitchSettings::default());
    assert_eq!(graph.report.components, 1);
    assert_eq!(graph.suspects.len(), 1);
    assert_eq!(
        (
            graph.suspects[0].id_value.as_str(),
            graph.suspects[0].records,
            graph.suspects[0].guest_records
        ),
        ("none@shop.de", 0, 30)
    );
    // The job excludes it: no customer, every order unattributed, nothing suspected.
    let rules = StitchSettings {
        exclude_identifiers: Some(regex::Regex::new("^(none|noemail)@").unwrap()),
        ..StitchSettings::default()
    };
    let graph = build_owned(&rows, rules);
    assert_eq!(graph.report.components, 0);
    assert_eq!(graph.report.excluded_count, 1);
    assert_eq!(graph.excluded[0].guest_records, 30);
    assert!(graph.suspects.is_empty());
    assert_eq!(graph.report.unattributed_orders, 30);
}

#[test]
fn without_phone_linking_a_shared_household_phone_joins_nobody() {
    let rows: Rows = &[
        (C1, &[C1, PHONE]),
        ((Tag::Source, "crm:C2"), &[(Tag::Source, "crm:C2"), PHONE]),
        (W1, &[W1, (Tag::Phone, "+14155550100")]),
    ];
    let linked = build(rows, 20_000, StitchSettings::default());
    assert_eq!(linked.report.components, 2);
    let rules = StitchSettings {
        link_by_phone: false,
        ..StitchSettings::default()
    };
    let graph = build(rows, 20_000, rules);
    assert_eq!(graph.report.components, 3);
    // The shared phone belongs to neither; the other phone still maps to its customer.
    assert_eq!(comp(&graph, PHONE.0, PHONE.1), NONE);
    assert_eq!(graph.report.ambiguous_phones, 1);
    assert_eq!(
        comp(&graph, Tag::Phone, "+14155550100"),
        comp(&graph, W1.0, W1.1)
    );
}

#[test]
fn merge_keeps_the_older_key_and_a_rerun_gives_the_same_keys() {
    // Day 1 (day 20000): C1 with email a. Day 2 (20001): W1 with phone, new.
    let day1 = build(&[(C1, &[C1, A])], 20_000, StitchSettings::default());
    let keys1 = keys::assign(&day1, None).unwrap();
    let mut builder = GraphBuilder::default();
    builder.add(C1, Some(C1), Some(20_000)).unwrap();
    builder.add(C1, Some(A), Some(20_000)).unwrap();
    builder.add(W1, Some(W1), Some(20_001)).unwrap();
    builder.add(W1, Some(PHONE), Some(20_001)).unwrap();
    let day2 = builder.finish(&StitchSettings::default());
    let keys2 = keys::assign(&day2, Some(&as_previous(&day1, &keys1, &day2))).unwrap();
    let k_c1 = key_of(&day2, &keys2, C1.0, C1.1);
    let k_w1 = key_of(&day2, &keys2, W1.0, W1.1);
    assert_eq!(k_c1, "f777b5c02ca0bc480733");
    assert_eq!(k_w1, "2632c973656e2729cd8f");
    assert_eq!((keys2.report.kept, keys2.report.new), (1, 1));

    // Day 3: a web record carrying email a bridges them; C1's key is older (day 20000).
    let mut builder = GraphBuilder::default();
    builder.add(C1, Some(C1), Some(20_000)).unwrap();
    builder.add(C1, Some(A), Some(20_000)).unwrap();
    builder.add(W1, Some(W1), Some(20_001)).unwrap();
    builder.add(W1, Some(PHONE), Some(20_001)).unwrap();
    builder.add(W1, Some(A), Some(20_002)).unwrap();
    let day3 = builder.finish(&StitchSettings::default());
    let previous = as_previous(&day2, &keys2, &day3);
    let keys3 = keys::assign(&day3, Some(&previous)).unwrap();
    assert_eq!(day3.report.components, 1);
    assert_eq!(keys3.keys, vec![k_c1.clone()]);
    assert_eq!(
        keys3.merges,
        vec![Merge {
            merged_key: k_w1.clone(),
            surviving_key: k_c1.clone()
        }]
    );
    // A rerun of day 3 reads the same previous map (day 2's) and gives the same result.
    let again = keys::assign(&day3, Some(&previous)).unwrap();
    assert_eq!(
        (again.keys, again.merges),
        (keys3.keys.clone(), keys3.merges.clone())
    );

    // Day 4: the bridge is gone (split). C1's part holds the founding identifier crm:C1
    // and keeps the key; W1's part gets its own derived key again.
    let day4 = build(
        &[(C1, &[C1, A]), (W1, &[W1, PHONE])],
        20_000,
        StitchSettings::default(),
    );
    let keys4 = keys::assign(&day4, Some(&as_previous(&day3, &keys3, &day4))).unwrap();
    assert_eq!(key_of(&day4, &keys4, C1.0, C1.1), k_c1);
    assert_eq!(key_of(&day4, &keys4, W1.0, W1.1), k_w1);
    assert_eq!((keys4.report.split, keys4.report.new), (1, 1));
    assert!(keys4.merges.is_empty());
}

#[test]
fn the_oldest_key_survives_even_when_it_is_not_the_smallest() {
    // web:W1 was seen first (day 19000), crm:C1 later (day 20000): W1's key survives.
    let mut builder = GraphBuilder::default();
    builder.add(W1, Some(W1), Some(19_000)).unwrap();
    builder.add(C1, Some(C1), Some(20_000)).unwrap();
    let day1 = builder.finish(&StitchSettings::default());
    let keys1 = keys::assign(&day1, None).unwrap();
    let mut builder = GraphBuilder::default();
    builder.add(W1, Some(W1), Some(19_000)).unwrap();
    builder.add(W1, Some(A), Some(20_001)).unwrap();
    builder.add(C1, Some(C1), Some(20_000)).unwrap();
    builder.add(C1, Some(A), Some(20_001)).unwrap();
    let day2 = builder.finish(&StitchSettings::default());
    let keys2 = keys::assign(&day2, Some(&as_previous(&day1, &keys1, &day2))).unwrap();
    assert_eq!(keys2.keys, vec!["2632c973656e2729cd8f".to_string()]);
    assert_eq!(keys2.merges[0].merged_key, "f777b5c02ca0bc480733");
}

mod errors {
    use std::sync::Arc;

    use datafusion::arrow::array::{RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::super::{GraphBuilder, add_links};

    #[test]
    fn a_links_table_without_the_contract_columns_is_an_input_error() {
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let schema = Arc::new(Schema::new(vec![text("record_type"), text("record_id")]));
        let column = Arc::new(StringArray::from(vec!["source"]));
        let batch = RecordBatch::try_new(schema, vec![column.clone(), column]).unwrap();
        let error = add_links(&mut GraphBuilder::default(), &batch).unwrap_err();
        assert_eq!(
            error.to_string(),
            "input: the links table has no column `id_type`"
        );
    }
}
