//! Storage registry: every accepted URL form resolves to the right store, prefix
//! and DataFusion store URL without touching the network, and no error or debug
//! output carries a credential.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use c360::storage::{StorageError, StorageRegistry};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{CsvReadOptions, SessionConfig, SessionContext};
use object_store::{ObjectStoreExt, PutPayload};

const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY";

fn registry(base: &str) -> StorageRegistry {
    StorageRegistry::new(PathBuf::from(base), BTreeMap::new())
}

fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn relative_path_resolves_against_the_base_dir() {
    let loc = registry("/srv/c360").resolve("sample_data/raw/").unwrap();
    assert_eq!(loc.url.as_str(), "file:///srv/c360/sample_data/raw");
    assert_eq!(loc.prefix.as_ref(), "srv/c360/sample_data/raw");
    assert_eq!(loc.store_url.as_str(), "file:///");
}

#[test]
fn relative_file_url_as_written_in_job_files_resolves_against_the_base_dir() {
    let loc = registry("/srv/c360")
        .resolve("file://sample_data/raw")
        .unwrap();
    assert_eq!(loc.url.as_str(), "file:///srv/c360/sample_data/raw");
}

#[test]
fn absolute_paths_and_file_urls_ignore_the_base_dir_and_normalise_dots() {
    let reg = registry("/srv/c360");
    assert_eq!(
        reg.resolve("/data/./raw/../wh").unwrap().url.as_str(),
        "file:///data/wh"
    );
    assert_eq!(
        reg.resolve("file:///data/wh/").unwrap().url.as_str(),
        "file:///data/wh"
    );
    assert_eq!(
        reg.resolve("../other").unwrap().url.as_str(),
        "file:///srv/other"
    );
    let spaced = reg.resolve("file:///data/my%20wh").unwrap();
    assert_eq!(spaced.prefix.as_ref(), "data/my wh");
    assert_eq!(spaced.url.as_str(), "file:///data/my%20wh");
}

#[test]
fn resolve_for_write_creates_a_missing_local_folder() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(dir.path().to_str().unwrap());
    assert!(!dir.path().join("wh/out").exists());
    reg.resolve("wh/out").unwrap();
    assert!(
        !dir.path().join("wh/out").exists(),
        "reading never creates folders"
    );
    reg.resolve_for_write("wh/out").unwrap();
    assert!(dir.path().join("wh/out").is_dir());
}

#[test]
fn resolve_for_write_reports_a_folder_it_cannot_create() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    let reg = registry(dir.path().to_str().unwrap());
    let err = reg.resolve_for_write("file/sub").unwrap_err();
    assert!(matches!(err, StorageError::CreateDir { .. }), "{err:?}");
}

#[test]
fn s3_url_builds_a_store_per_bucket_with_options_and_no_network() {
    let reg = StorageRegistry::new(
        PathBuf::from("/"),
        options(&[
            ("aws_endpoint", "http://127.0.0.1:9000"),
            ("aws_region", "eu-west-2"),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", "AKIAEXAMPLE"),
            ("aws_secret_access_key", SECRET),
        ]),
    );
    let raw = reg.resolve("s3://lake/raw/zone/").unwrap();
    assert_eq!(raw.url.as_str(), "s3://lake/raw/zone");
    assert_eq!(raw.prefix.as_ref(), "raw/zone");
    assert_eq!(raw.store_url.as_str(), "s3://lake/");
    let wh = reg.resolve("s3://lake/warehouse").unwrap();
    assert!(Arc::ptr_eq(&raw.store, &wh.store), "one store per bucket");
    let other = reg.resolve("s3a://other-bucket").unwrap();
    assert!(!Arc::ptr_eq(&raw.store, &other.store));
    assert_eq!(other.prefix.as_ref(), "");
    assert!(!format!("{raw:?}").contains(SECRET));
}

#[test]
fn gcs_and_azure_urls_build_without_network() {
    let reg = StorageRegistry::new(
        PathBuf::from("/"),
        // Options of other backends are skipped, not errors.
        options(&[
            ("azure_storage_account_name", "devstoreaccount1"),
            ("aws_region", "us-east-1"),
        ]),
    );
    let gs = reg.resolve("gs://bucket/a/b").unwrap();
    assert_eq!(
        (gs.store_url.as_str(), gs.prefix.as_ref()),
        ("gs://bucket/", "a/b")
    );
    let az = reg.resolve("az://container/x").unwrap();
    assert_eq!(
        (az.store_url.as_str(), az.prefix.as_ref()),
        ("az://container/", "x")
    );
}

#[test]
fn unknown_option_is_an_error() {
    let reg = StorageRegistry::new(PathBuf::from("/"), options(&[("aws_endpiont", "http://x")]));
    let err = reg.resolve("s3://b/p").unwrap_err();
    assert!(
        matches!(&err, StorageError::UnknownOption { key } if key == "aws_endpiont"),
        "{err:?}"
    );
}

#[test]
fn unsupported_and_malformed_locations_are_errors() {
    let reg = registry("/");
    assert!(matches!(
        reg.resolve("  "),
        Err(StorageError::EmptyLocation)
    ));
    for url in ["https://example.com/data", "ftp://host/data", "hdfs://nn/x"] {
        let err = reg.resolve(url).unwrap_err();
        assert!(
            matches!(err, StorageError::UnsupportedScheme { .. }),
            "{url}: {err:?}"
        );
    }
    let err = reg.resolve("s3://bad host/x").unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidLocation { .. }),
        "{err:?}"
    );
}

#[test]
fn errors_and_debug_output_never_contain_secrets() {
    // A secret pasted into the wrong key ends up in object_store's parse error.
    let reg = StorageRegistry::new(
        PathBuf::from("/"),
        options(&[
            ("aws_allow_http", SECRET),
            ("aws_secret_access_key", SECRET),
        ]),
    );
    let err = reg.resolve("s3://bucket/p").unwrap_err();
    assert!(matches!(err, StorageError::Build { .. }), "{err:?}");
    for text in [err.to_string(), format!("{err:?}"), format!("{reg:?}")] {
        assert!(!text.contains(SECRET), "leaked: {text}");
    }
    let err = registry("/")
        .resolve(&format!("s3://AKIA:{SECRET}@bucket/p"))
        .unwrap_err();
    assert!(
        matches!(err, StorageError::CredentialsInUrl { .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains(SECRET) && !format!("{err:?}").contains(SECRET));
}

#[test]
fn register_with_hands_the_cached_stores_to_datafusion() {
    let reg = registry("/");
    let loc = reg.resolve("memory:///lake/raw").unwrap();
    let runtime = RuntimeEnv::default();
    reg.register_with(&runtime);
    let store = runtime
        .object_store(ObjectStoreUrl::parse("memory://").unwrap())
        .unwrap();
    assert!(Arc::ptr_eq(&store, &loc.store));
}

#[tokio::test]
async fn sql_reads_through_the_registry_installed_as_datafusion_object_store_registry() {
    let reg = Arc::new(registry("/"));
    let loc = reg.resolve("memory:///raw/fx").unwrap();
    let payload = PutPayload::from_static(b"currency,rate_to_reporting\nGBP,1.17\nEUR,1\n");
    loc.store
        .put(&loc.child_path("fx_rates.csv"), payload)
        .await
        .unwrap();
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(reg)
        .build_arc()
        .unwrap();
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
    ctx.register_csv("fx", "memory:///raw/fx/fx_rates.csv", CsvReadOptions::new())
        .await
        .unwrap();
    let batches = ctx
        .sql("SELECT count(*) AS n FROM fx")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let n = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(n.contains("| 2 |"), "{n}");
}
