//! SQL-level tests of the c360 UDFs. Expected values are worked out by hand from
//! the contract's identifier rule (emails) and from libphonenumber's metadata
//! (phones: `020 7946 xxxx` is a London fixed-line range; the US metadata has no
//! exclusion for 555 exchanges, so `(415) 555-0100` is valid; Ofcom's drama
//! mobile range `07700 900xxx` is excluded from GB mobiles).

use std::time::Instant;

use c360::udf::{email::normalize_email, phone::normalize_phone, register_all};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;

fn context() -> SessionContext {
    let ctx = SessionContext::new();
    register_all(&ctx);
    ctx
}

/// Runs a one-column query and returns its values (None for NULL) in row order.
async fn column(ctx: &SessionContext, sql: &str) -> Vec<Option<String>> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for batch in batches {
        let utf8 = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8).unwrap();
        let strings = utf8.as_string::<i32>();
        for i in 0..strings.len() {
            out.push(strings.is_valid(i).then(|| strings.value(i).to_string()));
        }
    }
    out
}

async fn one(sql: &str) -> Option<String> {
    let values = column(&context(), sql).await;
    assert_eq!(values.len(), 1, "{sql}");
    values.into_iter().next().flatten()
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[tokio::test]
async fn email_is_trimmed_and_lowercased_when_valid() {
    assert_eq!(
        one("SELECT normalize_email(' Ann.Lee@Example.COM ')").await,
        some("ann.lee@example.com")
    );
    assert_eq!(
        one("SELECT normalize_email('A_b%c+tag-1@Sub-1.Example.co.UK')").await,
        some("a_b%c+tag-1@sub-1.example.co.uk")
    );
}

#[test]
fn email_trim_removes_unicode_white_space_and_lower_is_unicode() {
    assert_eq!(normalize_email("\t BOB@X.IO\r\n\u{a0}"), some("bob@x.io"));
    // U+212A KELVIN SIGN lowercases to ASCII `k`, as SQL lower() does.
    assert_eq!(normalize_email("\u{212A}@x.com"), some("k@x.com"));
}

#[test]
fn email_follows_the_character_classes_literally() {
    // Dots anywhere in the local part and hyphens at label ends are in the classes.
    assert_eq!(normalize_email(".a..b.@x.com"), some(".a..b.@x.com"));
    assert_eq!(normalize_email("a@-x-.com"), some("a@-x-.com"));
    assert_eq!(normalize_email("1@2.3.io"), some("1@2.3.io"));
}

#[test]
fn email_without_a_valid_domain_and_tld_is_not_an_identifier() {
    for junk in [
        "a@example",      // no tld
        "a@example.c",    // tld of one letter
        "a@example.c0m",  // digit in tld
        "a@.example.com", // empty first label
        "a@example..com", // empty middle label
        "a@example.com.", // trailing dot: empty tld
        "a@.com",         // only a tld
        "a@exa_mple.com", // `_` is not a label character
    ] {
        assert_eq!(normalize_email(junk), None, "{junk}");
    }
}

#[test]
fn email_with_a_bad_local_part_or_shape_is_not_an_identifier() {
    for junk in [
        "",
        "   ",
        "@x.com",
        "a@",
        "plainaddress",
        "a b@x.com",
        "a@b@x.com",
        "o'brien@x.com",
        "\"a\"@x.com",
        "josé@x.com",
        "a@exämple.com",
    ] {
        assert_eq!(normalize_email(junk), None, "{junk:?}");
    }
}

#[tokio::test]
async fn email_null_and_column_inputs() {
    assert_eq!(one("SELECT normalize_email(NULL)").await, None);
    let got = column(
        &context(),
        "SELECT normalize_email(e) FROM (VALUES (' X@Y.ORG'), (NULL), ('bad@'), ('z@w.fr')) AS t(e)",
    )
    .await;
    assert_eq!(got, vec![some("x@y.org"), None, None, some("z@w.fr")]);
}

#[tokio::test]
async fn email_accepts_every_arrow_string_type() {
    for ty in ["Utf8", "LargeUtf8", "Utf8View"] {
        let sql = format!("SELECT normalize_email(arrow_cast(' Q@R.IO ', '{ty}'))");
        assert_eq!(one(&sql).await, some("q@r.io"), "{ty}");
        let sql = format!(
            "SELECT normalize_email(arrow_cast(e, '{ty}')) FROM (VALUES ('Q@R.IO'), ('no')) AS t(e)"
        );
        assert_eq!(
            column(&context(), &sql).await,
            vec![some("q@r.io"), None],
            "{ty}"
        );
    }
}

#[tokio::test]
async fn phone_national_numbers_use_the_default_region() {
    assert_eq!(
        one("SELECT normalize_phone('020 7946 0958', 'GB')").await,
        some("+442079460958")
    );
    // Region in any case, with stray spaces.
    assert_eq!(
        one("SELECT normalize_phone('(415) 555-0100', ' us ')").await,
        some("+14155550100")
    );
    assert_eq!(
        one("SELECT normalize_phone('650-253-0000', 'US')").await,
        some("+16502530000")
    );
}

#[tokio::test]
async fn phone_international_numbers_ignore_the_default_region() {
    assert_eq!(
        one("SELECT normalize_phone('+44 20 7946 0958', 'US')").await,
        some("+442079460958")
    );
    assert_eq!(
        one("SELECT normalize_phone('+44 (0)20 7946 0958', NULL)").await,
        some("+442079460958")
    );
    assert_eq!(
        normalize_phone("tel:+1-650-253-0000", Some("XX")),
        some("+16502530000")
    );
    // The GB international call prefix 00 works with GB as region.
    assert_eq!(
        normalize_phone("0044 20 7946 0958", Some("gb")),
        some("+442079460958")
    );
}

#[tokio::test]
async fn phone_national_number_with_a_wrong_or_unknown_region_is_null() {
    // 02079460958 is 11 digits: no valid US number.
    assert_eq!(
        one("SELECT normalize_phone('020 7946 0958', 'US')").await,
        None
    );
    for region in ["'XX'", "''", "NULL", "'GBR'", "'G1'"] {
        let sql = format!("SELECT normalize_phone('020 7946 0958', {region})");
        assert_eq!(one(&sql).await, None, "{region}");
    }
}

#[test]
fn phone_junk_and_invalid_ranges_are_null() {
    for junk in [
        "",
        "  ",
        "not a phone",
        "12",
        "+44",
        "+44 20 7946 09581234",
        "07700 900123",
    ] {
        assert_eq!(normalize_phone(junk, Some("GB")), None, "{junk:?}");
    }
}

/// Inputs on which the `phonenumber` crate (c360's phone library until
/// 2026-12-06) and Google's libphonenumber disagree. Expected values from Google's
/// Python port, `phonenumbers` 9.0.43: `parse(text, region)`, `is_valid_number`,
/// `format_number(.., E164)`.
#[test]
fn phone_follows_googles_libphonenumber_where_ports_disagree() {
    let cases = [
        // An international call prefix (00 from Japan) then a number too short for +61.
        ("00619890743", "JP", None),
        // Full-width digits and plus sign are digits to libphonenumber.
        ("＋４４２０７９４６０９５８", "SE", Some("+442079460958")),
        // An RFC 3966 extension is dropped, as E.164 has none.
        ("+49595589788;ext=5", "US", Some("+49595589788")),
        // A NANP area code cannot start with 0.
        ("+1 (046) 383-47396", "SE", None),
        // Too long for an Italian number.
        ("062140427985", "IT", None),
        // India's national prefix 0 after the country code is dropped.
        ("+91 09399531511", "IT", Some("+919399531511")),
    ];
    for (text, region, expected) in cases {
        assert_eq!(
            normalize_phone(text, Some(region)).as_deref(),
            expected,
            "{text:?} in {region}"
        );
    }
}

#[tokio::test]
async fn phone_drops_extensions_and_handles_columns_with_mixed_regions() {
    let got = column(
        &context(),
        "SELECT normalize_phone(p, c) FROM (VALUES \
           ('020 7946 0958 ext. 12', 'GB'), \
           ('(415) 555-0100', 'US'), \
           ('(415) 555-0100', 'GB'), \
           (NULL, 'GB'), \
           ('020 7946 0958', NULL), \
           ('020 7946 0958', 'gb')) AS t(p, c)",
    )
    .await;
    assert_eq!(
        got,
        vec![
            some("+442079460958"),
            some("+14155550100"),
            None,
            None,
            None,
            some("+442079460958")
        ]
    );
}

#[tokio::test]
async fn phone_accepts_mixed_string_types_and_a_scalar_region() {
    let got = column(
        &context(),
        "SELECT normalize_phone(arrow_cast(p, 'Utf8View'), arrow_cast('GB', 'LargeUtf8')) \
         FROM (VALUES ('020 7946 0958'), ('junk')) AS t(p)",
    )
    .await;
    assert_eq!(got, vec![some("+442079460958"), None]);
}

#[tokio::test]
async fn udf_with_a_wrong_argument_count_fails_at_planning() {
    let ctx = context();
    assert!(
        ctx.sql("SELECT normalize_phone('020 7946 0958')")
            .await
            .is_err()
    );
    assert!(
        ctx.sql("SELECT normalize_email('a@b.co', 'x')")
            .await
            .is_err()
    );
}

/// Throughput in a debug build; run with `cargo test --release … -- --ignored --nocapture`
/// for real numbers.
#[tokio::test]
#[ignore = "benchmark: prints rows per second"]
async fn throughput_rows_per_second() {
    let ctx = context();
    let rows = 200_000;
    let source = format!(
        "SELECT CASE WHEN value % 2 = 0 THEN '020 7946 ' || lpad(CAST(value % 10000 AS VARCHAR), 4, '0') \
           ELSE '(415) 555-' || lpad(CAST(value % 10000 AS VARCHAR), 4, '0') END AS p, \
           CASE WHEN value % 2 = 0 THEN 'GB' ELSE 'US' END AS c, \
           ' User' || CAST(value AS VARCHAR) || '@Example.COM ' AS e \
         FROM generate_series(1, {rows})"
    );
    ctx.sql(&format!("CREATE TABLE t AS {source}"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    for (name, sql) in [
        (
            "normalize_phone",
            "SELECT count(normalize_phone(p, c)) FROM t",
        ),
        ("normalize_email", "SELECT count(normalize_email(e)) FROM t"),
    ] {
        let start = Instant::now();
        let counted = column(&ctx, sql).await;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name}: {rows} rows in {secs:.2}s = {:.0} rows/s ({counted:?} non-null)",
            rows as f64 / secs
        );
    }
}
