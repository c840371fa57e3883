//! Failures on S3 from the binary's point of view: a bad bucket, an unreachable
//! endpoint and wrong credentials each end with one clear `error:` line and exit
//! code 1 within a bounded retry budget; the secret key shows up nowhere (stderr,
//! stdout, the run log, `validate`, `status`). Skips without a test server, like `s3`.

use std::path::Path;

use c360::storage::StorageRegistry;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;

use crate::s3::{test_bucket, unique_prefix, upload};
use crate::util::repo_root;

/// A secret that must never be shown; the test servers accept any secret.
const SECRET: &str = "c360-secret-never-shown-7f3a";

/// A copy of the sample job with `storage.retry` bounded so failures are fast, and
/// the secret key in `storage.options` as a job author might (wrongly) put it.
fn bounded_job(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo_root().join("jobs/customer_360.yaml")).unwrap();
    let storage = format!(
        "  warehouse: warehouse\n  retry: {{ max_retries: 1, timeout: 5s }}\n  options: {{ aws_secret_access_key: {SECRET} }}\n"
    );
    let text = text.replacen("  warehouse: warehouse\n", &storage, 1);
    assert!(
        text.contains("max_retries"),
        "the sample job's storage block moved"
    );
    let path = dir.join("s3_job.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the binary on `job` with raw and warehouse at `root`, talking to `endpoint`.
fn run_binary(job: &Path, root: &str, endpoint: &str) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_c360"))
        .current_dir(repo_root())
        .args(["run", job.to_str().unwrap(), "--date", "2026-02-02"])
        .arg(format!("--set=raw={root}/raw"))
        .arg(format!("--set=warehouse={root}/warehouse"))
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env_remove("C360_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains(SECRET), "secret in stderr:\n{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(SECRET));
    (out.status.code().unwrap_or(-1), stderr)
}

/// One `error:` line naming `expected`, no retry chatter, exit code 1.
fn assert_one_clear_error(case: &str, code: i32, stderr: &str, expected: &str) {
    assert_eq!(code, 1, "{case}:\n{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{case}:\n{stderr}");
    assert!(errors[0].contains(expected), "{case}: {}", errors[0]);
    assert!(
        !stderr.contains("backing off"),
        "{case}: retries logged:\n{stderr}"
    );
    // The error, the "next:" hint, the start and at most two run-record warnings.
    assert!(stderr.lines().count() <= 5, "{case}:\n{stderr}");
}

#[test]
fn bad_bucket_and_unreachable_endpoint_fail_with_one_clear_line() {
    let Some(_) = test_bucket("bad_bucket_and_unreachable_endpoint_fail_with_one_clear_line")
    else {
        return;
    };
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let job = bounded_job(dir.path());
    let bucket = format!("no-such-bucket-{}", uuid::Uuid::new_v4().simple());
    let (code, stderr) = run_binary(&job, &format!("s3://{bucket}"), &endpoint);
    assert_one_clear_error("bad bucket", code, &stderr, "NoSuchBucket");

    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let started = std::time::Instant::now();
    let (code, stderr) = run_binary(&job, "s3://c360-test/x", "http://127.0.0.1:1");
    assert_one_clear_error("closed port", code, &stderr, "error sending request");
    assert!(stderr.contains("after 1 retries"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn wrong_credentials_fail_with_one_clear_line() {
    // moto checks credentials only when started with INITIAL_NO_AUTH_ACTION_COUNT=0;
    // .ci/run starts a second server like that and exports its endpoint.
    let Ok(endpoint) = std::env::var("C360_TEST_S3_AUTH_ENDPOINT") else {
        eprintln!(
            "SKIPPED wrong_credentials_fail_with_one_clear_line: no credential-checking S3 server (C360_TEST_S3_AUTH_ENDPOINT)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let job = bounded_job(dir.path());
    let (code, stderr) = run_binary(&job, "s3://c360-test/x", &endpoint);
    assert_one_clear_error("wrong credentials", code, &stderr, "InvalidAccessKeyId");
}

#[tokio::test]
async fn the_secret_key_is_in_no_output_and_no_run_record() {
    let Some(bucket) = test_bucket("the_secret_key_is_in_no_output_and_no_run_record") else {
        return;
    };
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let registry = StorageRegistry::new(repo_root(), Default::default());
    let prefix = unique_prefix("secret");
    let root = registry
        .resolve(&format!("s3://{bucket}/{prefix}"))
        .unwrap();
    upload(
        &root.store,
        &repo_root().join("tests/fixtures/tiny_raw"),
        &root.child_path("raw"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let job = bounded_job(dir.path());
    // A successful run (run_binary checks stdout and stderr) ...
    let (code, stderr) = run_binary(&job, &format!("s3://{bucket}/{prefix}"), &endpoint);
    assert_eq!(code, 0, "{stderr}");
    // ... whose run log holds no secret ...
    let records: Vec<ObjectPath> = {
        use futures::TryStreamExt;
        root.store
            .list(Some(&root.child_path("warehouse/_c360/runs")))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .unwrap()
    };
    assert!(!records.is_empty());
    for record in records {
        let bytes = root
            .store
            .get(&record)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "{record}"
        );
    }
    // ... and neither do `validate` and `status`, which describe the job and its runs.
    for (args, expected) in [
        (
            vec!["validate".to_string(), job.display().to_string()],
            "valid",
        ),
        (
            vec![
                "status".to_string(),
                job.display().to_string(),
                format!("--warehouse=s3://{bucket}/{prefix}/warehouse"),
            ],
            "succeeded",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_c360"))
            .current_dir(repo_root())
            .args(&args)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{args:?}: {text}");
        assert!(text.contains(expected), "{args:?}: {text}");
        assert!(!text.contains(SECRET), "{args:?}: {text}");
    }
}
