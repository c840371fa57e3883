//! Erasure in the typed staging cache: entries whose rows or rejects carry an
//! erased identifier are deleted (docs/rules.md "Erasure").

use std::sync::Arc;

use chrono::NaiveDate;
use object_store::ObjectStore;
use object_store::path::Path;

use super::{MANIFEST, delete, parquet_file, put_manifest, read_manifest};
use crate::outputs::SinkError;
use crate::source::ErasedIdentifiers;
use crate::source::StagingError;

/// Deletes the cache entries of `days` under `dir` whose rows or rejects carry
/// an erased identifier, so the warehouse keeps no trace of erased people
/// (docs/rules.md "Erasure"); the raw days stay, and a later run parses them again
/// into its own entry, which this deletes again at its end. The match is the
/// rejects' text match ([`ErasedIdentifiers::carried_by`]) over a row's
/// identifier columns, which errs towards deleting: a deleted entry only costs
/// a parse, never a different result. An entry found clean records the set's
/// fingerprint and is not read again until the set changes. Returns the days
/// deleted.
pub(crate) async fn forget_erased(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
    days: &[NaiveDate],
    identifiers: &ErasedIdentifiers,
) -> Result<Vec<NaiveDate>, StagingError> {
    let mut deleted = Vec::new();
    if identifiers.is_empty() {
        return Ok(deleted);
    }
    let fingerprint = identifiers.fingerprint();
    for &dt in days {
        let entry = dir.clone().join(format!("dt={dt}"));
        let manifest_path = entry.clone().join(MANIFEST);
        let Some(mut manifest) = read_manifest(store, &manifest_path).await? else {
            continue;
        };
        if manifest.clean_for == Some(fingerprint) {
            continue;
        }
        let mut carries = false;
        for (file, columns) in [
            (&manifest.typed, &IDENTIFIER_COLUMNS[..]),
            (&manifest.rejects, &["raw"][..]),
        ] {
            if file.rows > 0 {
                let path = entry.clone().join(file.name.as_str());
                carries |= carries_erased(store, &path, columns, identifiers).await?;
            }
        }
        if carries {
            tracing::info!(entry = %entry, "cache entry holds erased people's rows: deleted");
            delete(store, &manifest_path).await?;
            for file in [&manifest.typed, &manifest.rejects] {
                delete(store, &entry.clone().join(file.name.as_str())).await?;
            }
            deleted.push(dt);
        } else {
            manifest.clean_for = Some(fingerprint);
            put_manifest(store, &manifest_path, &manifest).await?;
        }
    }
    Ok(deleted)
}

/// The typed columns that can hold an identifier (DATA_CONTRACT.md).
const IDENTIFIER_COLUMNS: [&str; 4] = ["source_system", "source_customer_id", "email", "phone"];

/// Whether a row of Parquet file `path`, its `columns` (those present) joined
/// as one line, carries an erased identifier.
async fn carries_erased(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    columns: &[&str],
    identifiers: &ErasedIdentifiers,
) -> Result<bool, StagingError> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::DataType;
    use datafusion::parquet::arrow::ProjectionMask;

    let builder = parquet_file(store, path).await?;
    let parquet_err = |source| SinkError::Parquet {
        path: path.to_string(),
        source,
    };
    let present: Vec<&str> = columns
        .iter()
        .copied()
        .filter(|c| builder.schema().column_with_name(c).is_some())
        .collect();
    let mask = ProjectionMask::columns(builder.parquet_schema(), present.iter().copied());
    let reader = builder.with_projection(mask).build().map_err(parquet_err)?;
    let mut line = String::new();
    for batch in reader {
        let batch = batch.map_err(|e| parquet_err(e.into()))?;
        let texts = batch
            .columns()
            .iter()
            .map(|c| cast(c, &DataType::Utf8))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| parquet_err(e.into()))?;
        for row in 0..batch.num_rows() {
            line.clear();
            for text in &texts {
                let text = text.as_string::<i32>();
                if text.is_valid(row) {
                    line.push_str(text.value(row));
                }
                line.push(',');
            }
            if identifiers.carried_by(&line) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
