//! `storage.retry`: how cloud store requests retry transient errors, checked
//! and filled with defaults (see `StorageRetry`).

use super::model::StorageRetry;
use super::report::Reporter;
use super::spec::StorageRetryRaw;
use super::units::parse_duration;

/// Most retries a job may ask for: beyond this a dead endpoint stalls a run for ages.
const MAX_STORAGE_RETRIES: u64 = 20;

pub(crate) fn resolve_storage_retry(
    raw: Option<StorageRetryRaw>,
    report: &mut Reporter,
) -> StorageRetry {
    let default = StorageRetry::default();
    let Some(raw) = raw else {
        return default;
    };
    let max_retries = match raw.max_retries {
        None => default.max_retries,
        Some(loc) if loc.value > MAX_STORAGE_RETRIES => {
            report.at(
                loc.line,
                loc.column,
                format!(
                    "storage.retry.max_retries: {} is more than {MAX_STORAGE_RETRIES}",
                    loc.value
                ),
            );
            default.max_retries
        }
        // At most MAX_STORAGE_RETRIES, so it fits any usize.
        Some(loc) => usize::try_from(loc.value).unwrap_or(default.max_retries),
    };
    let timeout = match raw.timeout {
        None => default.timeout,
        Some(loc) => match parse_duration(&loc.value) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                report.at(
                    loc.line,
                    loc.column,
                    "storage.retry.timeout: must be more than 0",
                );
                default.timeout
            }
            Err(m) => {
                report.at(loc.line, loc.column, format!("storage.retry.timeout: {m}"));
                default.timeout
            }
        },
    };
    StorageRetry {
        max_retries,
        timeout,
    }
}
