//! The raw layout: which objects of a source a run reads, in which order.
//!
//! A partitioned source is a folder of `dt=YYYY-MM-DD/` partitions; a run for
//! date D reads partitions with `dt <= D`, files in (`dt`, file name) order. An
//! unpartitioned source is one file or a folder of files. Objects whose name does
//! not carry an extension of the declared format (`_SUCCESS`, `.crc`, …) are
//! skipped and listed, never guessed at.

use chrono::NaiveDate;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use super::error::SourceError;
use crate::job::Format;

/// Compression codec of a raw file, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Zstd,
}

/// One data file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFile {
    /// Object path in the raw store.
    pub path: Path,
    /// Path relative to the raw root (the `file` of rejects, `_file` of rows).
    pub rel: String,
    /// The `dt` partition it sits in, if the source is partitioned.
    pub dt: Option<NaiveDate>,
    pub compression: Codec,
    pub size: u64,
    /// The store's version of the object: its ETag, else its modification time
    /// (RFC 3339). With `size` it tells a changed file from a cached one.
    pub version: String,
}

/// The files of one source for one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Data files in reading order.
    pub files: Vec<RawFile>,
    /// Partitions read (dt <= date), ascending.
    pub partitions: Vec<NaiveDate>,
    /// Partitions after the date (not read), ascending: what an error can point to.
    pub later: Vec<NaiveDate>,
    /// Objects and folders ignored (relative to the raw root): foreign extensions,
    /// folders not named `dt=YYYY-MM-DD`.
    pub skipped: Vec<String>,
    /// File (relative name) -> the only lines to read of it: records starting
    /// elsewhere are skipped unparsed (CSV and NDJSON). Empty: read every record.
    pub only_lines: std::collections::BTreeMap<String, std::sync::Arc<hashbrown::HashSet<i64>>>,
}

/// How a file name maps onto the declared format: `Some(compression)` when it is a
/// data file of that format.
pub fn classify_name(name: &str, format: Format) -> Option<Codec> {
    let lower = name.to_ascii_lowercase();
    let (base, compression) = if let Some(b) = lower.strip_suffix(".gz") {
        (b, Codec::Gzip)
    } else if let Some(b) = lower.strip_suffix(".zst") {
        (b, Codec::Zstd)
    } else {
        (lower.as_str(), Codec::None)
    };
    let ok = match format {
        Format::Csv => base.ends_with(".csv"),
        Format::Ndjson => [".ndjson", ".json", ".jsonl"]
            .iter()
            .any(|e| base.ends_with(e)),
        // Parquet compresses internally; a gzipped Parquet file is not a format we read.
        Format::Parquet => compression == Codec::None && base.ends_with(".parquet"),
    };
    ok.then_some(compression)
}

/// `dt=YYYY-MM-DD` -> the date; anything else -> None.
pub fn parse_partition(name: &str) -> Option<NaiveDate> {
    let value = name.strip_prefix("dt=")?;
    if value.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()
}

/// `path` relative to `root`, as text.
pub fn relative(path: &Path, root: &Path) -> String {
    match path.prefix_match(root) {
        Some(parts) => parts
            .map(|p| p.as_ref().to_string())
            .collect::<Vec<_>>()
            .join("/"),
        None => path.to_string(),
    }
}

/// Lists the files a run for `date` reads.
pub async fn list_files(
    store: &dyn ObjectStore,
    root: &Path,
    location: &Path,
    format: Format,
    partitioned: bool,
    date: NaiveDate,
) -> Result<Listing, SourceError> {
    let mut listing = Listing::default();
    if partitioned {
        let top = list_folder(store, location).await?;
        for object in top.objects {
            listing.skipped.push(relative(&object.location, root));
        }
        let mut partitions: Vec<(NaiveDate, Path)> = Vec::new();
        for folder in top.common_prefixes {
            match folder.filename().and_then(parse_partition) {
                Some(dt) if dt <= date => partitions.push((dt, folder)),
                Some(dt) => listing.later.push(dt),
                None => {
                    tracing::warn!(folder = %folder, "skipping folder not named dt=YYYY-MM-DD");
                    listing.skipped.push(relative(&folder, root));
                }
            }
        }
        partitions.sort();
        listing.later.sort();
        for (dt, folder) in partitions {
            let content = list_folder(store, &folder).await?;
            add_files(&mut listing, content.objects, Some(dt), format, root);
            listing.partitions.push(dt);
        }
    } else {
        match store.head(location).await {
            Ok(meta) => add_files(&mut listing, vec![meta], None, format, root),
            Err(object_store::Error::NotFound { .. }) => {
                let content = list_folder(store, location).await?;
                add_files(&mut listing, content.objects, None, format, root);
            }
            Err(source) => {
                return Err(SourceError::List {
                    location: location.to_string(),
                    source,
                });
            }
        }
    }
    Ok(listing)
}

/// One level of a folder; a folder that does not exist is empty.
async fn list_folder(
    store: &dyn ObjectStore,
    folder: &Path,
) -> Result<object_store::ListResult, SourceError> {
    match store.list_with_delimiter(Some(folder)).await {
        Ok(result) => Ok(result),
        Err(object_store::Error::NotFound { .. }) => Ok(object_store::ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
        }),
        Err(source) => Err(SourceError::List {
            location: folder.to_string(),
            source,
        }),
    }
}

/// Adds the data files among `objects` in file-name order; the rest is skipped.
fn add_files(
    listing: &mut Listing,
    mut objects: Vec<ObjectMeta>,
    dt: Option<NaiveDate>,
    format: Format,
    root: &Path,
) {
    objects.sort_by(|a, b| a.location.filename().cmp(&b.location.filename()));
    for object in objects {
        let rel = relative(&object.location, root);
        match object
            .location
            .filename()
            .and_then(|n| classify_name(n, format))
        {
            Some(compression) => listing.files.push(RawFile {
                version: object
                    .e_tag
                    .clone()
                    .unwrap_or_else(|| object.last_modified.to_rfc3339()),
                path: object.location,
                rel,
                dt,
                compression,
                size: object.size,
            }),
            None => listing.skipped.push(rel),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified_by_declared_format() {
        assert_eq!(classify_name("part-1.csv", Format::Csv), Some(Codec::None));
        assert_eq!(
            classify_name("part-1.csv.gz", Format::Csv),
            Some(Codec::Gzip)
        );
        assert_eq!(
            classify_name("part-1.CSV.ZST", Format::Csv),
            Some(Codec::Zstd)
        );
        assert_eq!(
            classify_name("a.jsonl.gz", Format::Ndjson),
            Some(Codec::Gzip)
        );
        assert_eq!(classify_name("a.json", Format::Ndjson), Some(Codec::None));
        assert_eq!(
            classify_name("a.parquet", Format::Parquet),
            Some(Codec::None)
        );
        for (name, format) in [
            ("_SUCCESS", Format::Csv),
            (".part-1.csv.crc", Format::Csv),
            ("a.ndjson", Format::Csv),
            ("a.csv", Format::Ndjson),
            ("a.parquet.gz", Format::Parquet),
            ("a.gz", Format::Csv),
        ] {
            assert_eq!(classify_name(name, format), None, "{name}");
        }
    }

    #[test]
    fn partition_names_are_strict() {
        assert_eq!(
            parse_partition("dt=2026-01-02"),
            NaiveDate::from_ymd_opt(2026, 1, 2)
        );
        for bad in [
            "dt=2026-1-2",
            "date=2026-01-02",
            "dt=2026-02-30",
            "dt=",
            "tmp",
        ] {
            assert_eq!(parse_partition(bad), None, "{bad}");
        }
    }

    #[test]
    fn relative_paths_strip_the_root() {
        let root = Path::from("data/raw");
        let file = Path::from("data/raw/transactions/dt=2026-01-02/a.csv");
        assert_eq!(relative(&file, &root), "transactions/dt=2026-01-02/a.csv");
        assert_eq!(
            relative(&file, &Path::from("")),
            "data/raw/transactions/dt=2026-01-02/a.csv"
        );
        assert_eq!(relative(&file, &Path::from("elsewhere")), file.to_string());
    }
}
