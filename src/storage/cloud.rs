//! Cloud object stores (S3, GCS, Azure): builders seeded from the standard
//! environment credential chains, then the job's `storage.options`, then c360's
//! retry policy. Building never contacts the network.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::{BackoffConfig, ObjectStore, ObjectStoreScheme, RetryConfig};
use url::Url;

use super::StorageError;
use super::redact::redact;
use crate::job::StorageRetry;

/// Retries for transient cloud errors when the job says nothing: the job
/// model's defaults ([`StorageRetry::default`]).
pub fn default_retry_config() -> RetryConfig {
    retry_config(&StorageRetry::default())
}

/// object_store's retry policy for a job's `storage.retry`: exponential backoff
/// from 200 ms, doubling, at most 15 s between attempts.
pub fn retry_config(retry: &StorageRetry) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: retry.max_retries,
        retry_timeout: retry.timeout,
    }
}

/// Builds the store for a cloud `url` (`s3://`, `gs://`, `az://` and their aliases).
/// `shown` is the location as it may appear in errors.
pub(super) fn build(
    scheme: &ObjectStoreScheme,
    url: &Url,
    options: &BTreeMap<String, String>,
    retry: &RetryConfig,
    shown: &str,
) -> Result<Arc<dyn ObjectStore>, StorageError> {
    let failed = |backend: &'static str| {
        move |e: object_store::Error| StorageError::Build {
            location: shown.to_string(),
            backend,
            reason: redact(&e.to_string(), options),
        }
    };
    // `from_env` reads AWS_* (incl. AWS_ENDPOINT_URL), GOOGLE_* and AZURE_* variables.
    match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let builder = AmazonS3Builder::from_env().with_url(url.as_str());
            let builder = apply_options(builder, options, |b, k: AmazonS3ConfigKey, v| {
                b.with_config(k, v)
            })?;
            let store = builder.with_retry(retry.clone()).build();
            Ok(Arc::new(store.map_err(failed("S3"))?))
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let builder = GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
            let builder = apply_options(builder, options, |b, k: GoogleConfigKey, v| {
                b.with_config(k, v)
            })?;
            let store = builder.with_retry(retry.clone()).build();
            Ok(Arc::new(store.map_err(failed("GCS"))?))
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let builder = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
            let builder = apply_options(builder, options, |b, k: AzureConfigKey, v| {
                b.with_config(k, v)
            })?;
            let store = builder.with_retry(retry.clone()).build();
            Ok(Arc::new(store.map_err(failed("Azure"))?))
        }
        _ => Err(StorageError::UnsupportedScheme {
            location: shown.to_string(),
            scheme: url.scheme().to_string(),
        }),
    }
}

/// Applies the options a builder understands; options meant for another
/// backend are skipped (one job may mix `s3://` and `gs://`), options no backend
/// knows are an error (a typo would otherwise be silently ignored).
fn apply_options<B, K: std::str::FromStr>(
    builder: B,
    options: &BTreeMap<String, String>,
    apply: impl Fn(B, K, &str) -> B,
) -> Result<B, StorageError> {
    let mut builder = builder;
    for (key, value) in options {
        let lower = key.to_ascii_lowercase();
        match lower.parse::<K>() {
            Ok(config_key) => builder = apply(builder, config_key, value),
            Err(_) if is_known_option(&lower) => {}
            Err(_) => return Err(StorageError::UnknownOption { key: key.clone() }),
        }
    }
    Ok(builder)
}

fn is_known_option(key: &str) -> bool {
    key.parse::<AmazonS3ConfigKey>().is_ok()
        || key.parse::<GoogleConfigKey>().is_ok()
        || key.parse::<AzureConfigKey>().is_ok()
}
