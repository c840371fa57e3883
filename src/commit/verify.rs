//! Verification of a staged partition before it is committed: the folder holds
//! exactly the files the writer reported, and each file's Parquet footer is
//! readable and counts the rows the writer wrote.

use std::sync::Arc;

use datafusion::parquet::file::metadata::ParquetMetaDataReader;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::{CommitError, store_err};
use crate::outputs::StagedPartition;

/// Parquet files end with the footer length (4 bytes, little endian) and `PAR1`.
const TAIL_LEN: u64 = 8;

/// Rows recorded in the footer of the Parquet file at `path`; reads only the
/// footer, never the data.
pub async fn footer_rows(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<u64, CommitError> {
    let bad = |message: String| CommitError::Verify {
        dir: path.to_string(),
        message,
    };
    let size = store.head(path).await.map_err(store_err(path))?.size;
    if size < TAIL_LEN {
        return Err(bad(format!("{size} bytes is too short for a Parquet file")));
    }
    let tail = store
        .get_range(path, size - TAIL_LEN..size)
        .await
        .map_err(store_err(path))?;
    if &tail[4..] != b"PAR1" {
        return Err(bad("no Parquet footer (missing PAR1 magic)".into()));
    }
    let footer_len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    let start = (size - TAIL_LEN)
        .checked_sub(footer_len)
        .ok_or_else(|| bad(format!("footer length {footer_len} exceeds the file")))?;
    let footer = store
        .get_range(path, start..size - TAIL_LEN)
        .await
        .map_err(store_err(path))?;
    let metadata = ParquetMetaDataReader::decode_metadata(&footer)
        .map_err(|e| bad(format!("unreadable footer: {e}")))?;
    u64::try_from(metadata.file_metadata().num_rows())
        .map_err(|_| bad("negative row count in footer".into()))
}

/// Checks file count, names and footer row counts of one staged partition.
pub(super) async fn verify_staged(
    store: &Arc<dyn ObjectStore>,
    staged: &StagedPartition,
) -> Result<(), CommitError> {
    let fail = |message: String| CommitError::Verify {
        dir: staged.dir.to_string(),
        message,
    };
    let listing = store
        .list_with_delimiter(Some(&staged.dir))
        .await
        .map_err(store_err(&staged.dir))?;
    let mut found: Vec<&Path> = listing.objects.iter().map(|o| &o.location).collect();
    found.sort();
    let mut expected: Vec<&Path> = staged.files.iter().map(|f| &f.path).collect();
    expected.sort();
    if found != expected {
        return Err(fail(format!(
            "expected {} file(s), found {}",
            expected.len(),
            found.len()
        )));
    }
    for file in &staged.files {
        let rows = footer_rows(store, &file.path).await?;
        if rows != file.rows {
            return Err(fail(format!(
                "{} has {rows} rows in its footer, the writer wrote {}",
                file.path, file.rows
            )));
        }
    }
    Ok(())
}
