//! The commit protocol under injected faults: a wrapped object store (and, on
//! local disk, wrapped folder operations) fails the N-th write, copy, rename or
//! delete, for every N the protocol reaches. After each interruption no partial
//! partition is visible, recovery leaves every output all-old or all-new, and a
//! rerun commits. Plus: concurrent runs of one job, exactly one publishes.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use c360::commit::{
    CommitError, CommitMode, Committer, DirectoryOps, PartitionToCommit, StdDirectoryOps,
};
use c360::job::{Compression, FileLayout};
use c360::outputs::{self, StagedPartition};
use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// Counts mutating operations across the store and folder wrappers; fails the N-th.
#[derive(Debug)]
struct Faults {
    ops: AtomicUsize,
    fail_at: usize,
}

impl Faults {
    fn new(fail_at: usize) -> Arc<Self> {
        Arc::new(Self {
            ops: AtomicUsize::new(0),
            fail_at,
        })
    }

    fn tick(&self, what: &str, path: &Path) -> Result<(), String> {
        let n = self.ops.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at {
            Err(format!("injected fault at operation {n}: {what} {path}"))
        } else {
            Ok(())
        }
    }

    fn reached(&self) -> bool {
        self.ops.load(Ordering::SeqCst) >= self.fail_at
    }
}

fn injected(message: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "faulty",
        source: message.into(),
    }
}

#[derive(Debug)]
struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Arc<Faults>,
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.faults.tick("put", location).map_err(injected)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.faults.tick("put", location).map_err(injected)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let faults = self.faults.clone();
        let inner = self.inner.clone();
        // One path at a time, so the N-th delete is the one that fails.
        locations
            .and_then(move |path| {
                let (faults, inner) = (faults.clone(), inner.clone());
                async move {
                    faults.tick("delete", &path).map_err(injected)?;
                    inner.delete(&path).await.map(|()| path)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.faults.tick("copy", to).map_err(injected)?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.faults.tick("rename", to).map_err(injected)?;
        self.inner.rename_opts(from, to, options).await
    }
}

#[derive(Debug)]
struct FaultyDirs {
    inner: StdDirectoryOps,
    faults: Arc<Faults>,
}

impl DirectoryOps for FaultyDirs {
    fn swap_in(&self, staged: &Path, target: &Path) -> Result<(), CommitError> {
        self.faults
            .tick("swap", target)
            .map_err(|m| CommitError::Directory {
                path: target.to_string(),
                source: std::io::Error::other(m),
            })?;
        self.inner.swap_in(staged, target)
    }

    fn remove_all(&self, dir: &Path) -> Result<(), CommitError> {
        self.faults
            .tick("remove", dir)
            .map_err(|m| CommitError::Directory {
                path: dir.to_string(),
                source: std::io::Error::other(m),
            })?;
        self.inner.remove_all(dir)
    }
}

/// A warehouse under test: the real store plus how to build a committer.
pub(crate) struct Warehouse {
    store: Arc<dyn ObjectStore>,
    root: Path,
    local: bool,
    _dir: Option<tempfile::TempDir>,
}

impl Warehouse {
    fn local() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::from_absolute_path(dir.path()).unwrap();
        Self {
            store: Arc::new(object_store::local::LocalFileSystem::new()),
            root,
            local: true,
            _dir: Some(dir),
        }
    }

    fn memory() -> Self {
        Self::object_store(
            Arc::new(object_store::memory::InMemory::new()),
            Path::from("wh"),
        )
    }

    /// A warehouse at `root` in any object store (the manifest protocol), e.g. S3.
    pub(crate) fn object_store(store: Arc<dyn ObjectStore>, root: Path) -> Self {
        Self {
            store,
            root,
            local: false,
            _dir: None,
        }
    }

    fn committer(&self, faults: Option<Arc<Faults>>) -> Committer {
        let store: Arc<dyn ObjectStore> = match &faults {
            Some(f) => Arc::new(FaultyStore {
                inner: self.store.clone(),
                faults: f.clone(),
            }),
            None => self.store.clone(),
        };
        let mode = match (self.local, faults) {
            (true, Some(f)) => CommitMode::Directories(Arc::new(FaultyDirs {
                inner: StdDirectoryOps::root(),
                faults: f,
            })),
            (true, None) => CommitMode::Directories(Arc::new(StdDirectoryOps::root())),
            (false, _) => CommitMode::Manifest,
        };
        Committer::new(store, self.root.clone(), mode)
    }

    fn target(&self, output: &str) -> Path {
        self.root
            .clone()
            .join(output)
            .join("snapshot_date=2026-03-01")
    }

    /// Stages `rows` of each output for `run`, one row per file for `b`.
    async fn stage(&self, run: &str, a: &[i64], b: &[i64]) -> Vec<PartitionToCommit> {
        let committer = self.committer(None);
        let mut parts = Vec::new();
        // A one-byte target starts a new file at every batch (one row each).
        let one_per_file = FileLayout {
            target_file_bytes: 1,
            ..FileLayout::default()
        };
        for (name, rows, layout) in [("a", a, FileLayout::default()), ("b", b, one_per_file)] {
            let dir = committer
                .staging_dir(run)
                .join("outputs")
                .join(name)
                .join("snapshot_date=2026-03-01");
            let staged: StagedPartition = outputs::write_stream(
                name,
                stream_of(rows),
                self.store.clone(),
                &dir,
                Compression::Zstd,
                &layout,
            )
            .await
            .unwrap();
            parts.push(PartitionToCommit {
                name: name.into(),
                staged,
                target: self.target(name),
            });
        }
        parts
    }

    /// What c360 reads: the rows of the files `_SUCCESS` lists.
    async fn committed(&self, output: &str) -> Option<Vec<i64>> {
        let files = outputs::committed_files(&self.store, &self.target(output))
            .await
            .unwrap()?;
        Some(self.rows(&files).await)
    }

    /// What a plain-Parquet reader globbing `output/*/*.parquet` reads.
    async fn plain(&self, output: &str) -> Vec<i64> {
        let mut files: Vec<Path> = self
            .store
            .list(Some(&self.target(output)))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .unwrap();
        files.retain(|p| p.extension() == Some("parquet"));
        self.rows(&files).await
    }

    async fn rows(&self, files: &[Path]) -> Vec<i64> {
        let mut rows = Vec::new();
        for file in files {
            let bytes = self.store.get(file).await.unwrap().bytes().await.unwrap();
            for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)
                .unwrap()
                .build()
                .unwrap()
            {
                rows.extend(
                    batch
                        .unwrap()
                        .column(0)
                        .as_primitive::<Int64Type>()
                        .values(),
                );
            }
        }
        rows.sort();
        rows
    }

    async fn debris(&self) -> Vec<Path> {
        self.store
            .list(Some(&self.root.clone().join("_c360")))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .unwrap()
    }
}

fn stream_of(rows: &[i64]) -> datafusion::execution::SendableRecordBatchStream {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    let batches: Vec<_> = rows
        .iter()
        .map(|&n| RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![n]))]))
        .collect::<Result<_, _>>()
        .unwrap();
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter(batches.into_iter().map(Ok)),
    ))
}

const OLD_A: [i64; 3] = [1, 2, 3];
const OLD_B: [i64; 1] = [10];
const NEW_A: [i64; 2] = [4, 5];
const NEW_B: [i64; 3] = [20, 30, 40];

/// Interrupts the commit at every operation in turn; returns how many points were hit.
pub(crate) async fn interrupt_everywhere(make: impl Fn() -> Warehouse) -> usize {
    let mut points = 0;
    for fail_at in 1.. {
        let wh = make();
        let parts = wh.stage("r0", &OLD_A, &OLD_B).await;
        wh.committer(None)
            .commit("r0", "outputs", &parts, None)
            .await
            .unwrap();
        let parts = wh.stage("r1", &NEW_A, &NEW_B).await;
        let faults = Faults::new(fail_at);
        let result = wh
            .committer(Some(faults.clone()))
            .commit("r1", "outputs", &parts, None)
            .await;
        if !faults.reached() {
            result.unwrap();
            assert_eq!(wh.committed("a").await.unwrap(), NEW_A);
            assert_eq!(wh.committed("b").await.unwrap(), NEW_B);
            break;
        }
        let error = result.unwrap_err().to_string();
        assert!(error.contains("injected fault"), "{error}");
        points += 1;

        // Interrupted: each partition is entirely the old or the new snapshot.
        let (a, b) = (
            wh.committed("a").await.unwrap(),
            wh.committed("b").await.unwrap(),
        );
        assert!(a == OLD_A || a == NEW_A, "fault {fail_at}: partial a {a:?}");
        assert!(b == OLD_B || b == NEW_B, "fault {fail_at}: partial b {b:?}");
        if wh.local {
            // A folder swap is atomic, so even a plain reader sees a whole snapshot.
            assert_eq!(wh.plain("a").await, a, "fault {fail_at}");
            assert_eq!(wh.plain("b").await, b, "fault {fail_at}");
        }

        // The next run recovers: both outputs old, or both new, and nothing left over.
        let recovery = wh.committer(None).recover("r2").await.unwrap();
        assert!(recovery.dead_runs.contains("r1"), "fault {fail_at}");
        let (a, b) = (
            wh.committed("a").await.unwrap(),
            wh.committed("b").await.unwrap(),
        );
        assert!(
            (a == OLD_A && b == OLD_B) || (a == NEW_A && b == NEW_B),
            "fault {fail_at}: outputs disagree after recovery: {a:?} {b:?}"
        );
        assert_eq!(wh.plain("a").await, a, "fault {fail_at}");
        assert_eq!(wh.plain("b").await, b, "fault {fail_at}");
        let leftover: Vec<_> = wh
            .debris()
            .await
            .into_iter()
            .filter(|p| !p.as_ref().contains("/tmp/r2"))
            .collect();
        assert!(leftover.is_empty(), "fault {fail_at}: debris {leftover:?}");

        // And a rerun commits the new snapshot.
        let parts = wh.stage("r2", &NEW_A, &NEW_B).await;
        wh.committer(None)
            .commit("r2", "outputs", &parts, None)
            .await
            .unwrap();
        assert_eq!(wh.committed("a").await.unwrap(), NEW_A);
        assert_eq!(wh.plain("b").await, NEW_B);
    }
    points
}

#[tokio::test]
async fn local_commit_interrupted_at_every_step_never_shows_a_partial_partition() {
    // record prepared, 2 markers, record committed, 2 x (swap, remove old), record delete.
    assert_eq!(interrupt_everywhere(Warehouse::local).await, 9);
}

#[tokio::test]
async fn object_store_commit_interrupted_at_every_step_never_shows_a_partial_partition() {
    // record prepared, 1 + 3 copies, record committed, 2 markers, 1 + 1 old files deleted,
    // record delete.
    assert_eq!(interrupt_everywhere(Warehouse::memory).await, 11);
}

#[tokio::test]
async fn a_corrupt_staged_file_is_caught_before_anything_is_published() {
    let wh = Warehouse::memory();
    let parts = wh.stage("r0", &OLD_A, &OLD_B).await;
    wh.committer(None)
        .commit("r0", "outputs", &parts, None)
        .await
        .unwrap();
    let parts = wh.stage("r1", &NEW_A, &NEW_B).await;
    // Truncate one staged file: its footer is gone.
    let victim = &parts[1].staged.files[0].path;
    wh.store
        .put(victim, PutPayload::from_static(b"PAR1 truncated"))
        .await
        .unwrap();
    let error = wh
        .committer(None)
        .commit("r1", "outputs", &parts, None)
        .await
        .unwrap_err();
    assert!(matches!(error, CommitError::Verify { .. }), "{error}");
    assert_eq!(wh.committed("b").await.unwrap(), OLD_B);
}
