//! Object store registry: turns the storage roots and paths of a job (relative
//! paths, absolute paths, `file://`, `memory://`, `s3://`, `gs://`, `az://`, …) into
//! an [`ObjectStore`] handle plus a prefix inside it, and hands the same stores to
//! DataFusion so SQL over `s3://bucket/…` tables reads through them.
//!
//! One store is built per scheme + bucket and cached, so every source, output and
//! the run log of a job share one HTTP client per bucket. Cloud stores start from
//! the standard environment credential chains (`AmazonS3Builder::from_env()`, which
//! also reads `AWS_ENDPOINT_URL`, and the GCS / Azure equivalents), then apply the
//! job's `storage.options`. Nothing here talks to the network: builders only
//! validate configuration, requests happen when data is read or written.
//!
//! Errors never carry credentials: option values and secret-looking environment
//! variables are redacted from every message, and `Debug` shows option keys only.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Component, Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use datafusion::execution::object_store::{ObjectStoreRegistry, ObjectStoreUrl};
use datafusion::execution::runtime_env::RuntimeEnv;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreScheme, RetryConfig};
use url::Url;

pub use cloud::{default_retry_config, retry_config};

mod cloud;
mod describe;
mod json;
pub mod parquet;
mod redact;

pub use describe::{describe, one_line};
pub use json::{put_json, read_json};

/// `text` as it may be shown to anyone: a password in a URL, the values of
/// `options` (`storage.options`) and secret-looking cloud environment variables
/// are replaced by `***`.
pub fn redact_secrets(text: &str, options: &BTreeMap<String, String>) -> String {
    redact::redact(&redact::redact_url(text), options)
}

/// Errors of the storage layer. Messages never contain option values or secrets.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The location string was empty or only spaces.
    #[error("storage: empty location")]
    EmptyLocation,
    /// The location looked like a URL but could not be parsed.
    #[error("storage: {location}: not a valid location: {reason}")]
    InvalidLocation { location: String, reason: String },
    /// A URL scheme object_store does not support (or c360 does not allow, e.g. http).
    #[error(
        "storage: {location}: unsupported scheme `{scheme}` (use a path, file://, s3://, gs:// or az://)"
    )]
    UnsupportedScheme { location: String, scheme: String },
    /// A URL with a password in it: credentials belong in the environment or `storage.options`.
    #[error(
        "storage: {location}: credentials in URLs are not allowed; use the environment or storage.options"
    )]
    CredentialsInUrl { location: String },
    /// A `storage.options` key that no object store builder knows (probably a typo).
    #[error("storage: unknown storage option `{key}`")]
    UnknownOption { key: String },
    /// The object store builder rejected its configuration.
    #[error("storage: {location}: cannot configure {backend} store: {reason}")]
    Build {
        location: String,
        backend: &'static str,
        reason: String,
    },
    /// A local folder could not be created for writing.
    #[error("storage: {path}: cannot create folder: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The current directory was needed for a relative base directory and is unavailable.
    #[error("storage: cannot determine the current directory: {0}")]
    CurrentDir(std::io::Error),
    /// A local folder could not be listed, or a file in it removed.
    #[error("storage: {path}: cannot clean up: {source}")]
    Cleanup {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A resolved location: which store, where inside it, and how DataFusion names it.
#[derive(Clone)]
pub struct StorageLocation {
    /// Normalised URL of the location, without a trailing `/` (`file:///abs/path`, `s3://bucket/prefix`).
    pub url: Url,
    /// The (cached, shared) store holding the location.
    pub store: Arc<dyn ObjectStore>,
    /// Path of the location inside `store` (empty for a bucket root).
    pub prefix: StorePath,
    /// The store's URL as DataFusion keys it (`file://`, `s3://bucket`).
    pub store_url: ObjectStoreUrl,
}

impl StorageLocation {
    /// The store path of `relative` below this location (`a/b.parquet` → `prefix/a/b.parquet`).
    pub fn child_path(&self, relative: &str) -> StorePath {
        relative
            .split('/')
            .filter(|part| !part.is_empty())
            .fold(self.prefix.clone(), |path, part| path.join(part))
    }
}

impl StorageLocation {
    /// Whether the location is on local disk (a root `LocalFileSystem`).
    pub fn is_local_disk(&self) -> bool {
        self.store_url.as_str().starts_with("file://")
    }

    /// The location's path on local disk, or `None` for an object store.
    pub fn local_path(&self) -> Option<std::path::PathBuf> {
        if self.is_local_disk() {
            self.url.to_file_path().ok()
        } else {
            None
        }
    }

    /// Whether `inner` is strictly below this location in the same store: on
    /// local disk with symlinks resolved ([`crate::job::within`]), in an object
    /// store by path segments.
    pub fn contains(&self, inner: &StorageLocation) -> bool {
        if self.store_url != inner.store_url || self.url == inner.url {
            return false;
        }
        match (self.url.to_file_path(), inner.url.to_file_path()) {
            (Ok(root), Ok(path)) => crate::job::within(&root, &path),
            _ => inner.prefix.prefix_matches(&self.prefix),
        }
    }
}

/// Removes, from local folder `dir` (a store path of a root `LocalFileSystem`),
/// the files of writes a killed process left unfinished, and returns how many.
///
/// `LocalFileSystem` writes an object to `name#N` and renames it to `name` when
/// complete; a `kill -9` in between leaves `name#N`, which its listings hide, so
/// only the file system can find it. Call it only where no live write can be in
/// flight (under the lease). A missing folder has nothing to remove.
pub fn remove_interrupted_writes(dir: &StorePath) -> Result<usize, StorageError> {
    let path = dir
        .parts()
        .fold(PathBuf::from("/"), |path, part| path.join(part.as_ref()));
    let err = |path: &FsPath| {
        let path = path.to_path_buf();
        move |source| StorageError::Cleanup { path, source }
    };
    let entries = match std::fs::read_dir(&path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(err(&path)(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(err(&path))?;
        let name = entry.file_name();
        let interrupted =
            name.to_str()
                .and_then(|n| n.rsplit_once('#'))
                .is_some_and(|(_, suffix)| {
                    !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit())
                });
        if interrupted && entry.file_type().map_err(err(&path))?.is_file() {
            std::fs::remove_file(entry.path()).map_err(err(&entry.path()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

// A store's Debug output may include its credential provider, so only its Display is shown.
impl fmt::Debug for StorageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageLocation")
            .field("url", &self.url.as_str())
            .field("store", &format_args!("{}", self.store))
            .field("prefix", &self.prefix.as_ref())
            .field("store_url", &self.store_url.as_str())
            .finish()
    }
}

/// Builds and caches one object store per scheme + bucket for a job.
pub struct StorageRegistry {
    base_dir: PathBuf,
    options: BTreeMap<String, String>,
    retry: RetryConfig,
    /// Keyed by the store URL (`file://`, `s3://bucket`).
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl fmt::Debug for StorageRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut stores: Vec<String> = self.lock_stores().keys().cloned().collect();
        stores.sort();
        f.debug_struct("StorageRegistry")
            .field("base_dir", &self.base_dir)
            .field("option_keys", &self.options.keys().collect::<Vec<_>>())
            .field("stores", &stores)
            .finish()
    }
}

impl StorageRegistry {
    /// A registry resolving relative paths against `base_dir`, applying `options`
    /// (the job's `storage.options`, object_store config keys such as `aws_endpoint`,
    /// `aws_region`, `aws_allow_http`, `google_service_account`, `azure_storage_account_name`)
    /// to every cloud store it builds.
    pub fn new(base_dir: PathBuf, options: BTreeMap<String, String>) -> Self {
        Self {
            base_dir,
            options,
            retry: cloud::default_retry_config(),
            stores: Mutex::new(HashMap::new()),
        }
    }

    /// The registry of a job's `storage:` section: its options and retry policy.
    pub fn for_job(base_dir: PathBuf, storage: &crate::job::StorageSpec) -> Self {
        Self::new(base_dir, storage.options.clone()).with_retry(retry_config(&storage.retry))
    }

    /// Replaces the retry policy of cloud stores built from now on.
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Resolves a location for reading: nothing is created or contacted.
    pub fn resolve(&self, location: &str) -> Result<StorageLocation, StorageError> {
        match self.classify(location)? {
            Target::Local(path) => self.local_location(&path),
            Target::Url(url, scheme) => self.url_location(location, url, scheme),
        }
    }

    /// Resolves a location for writing: a local folder is created if missing
    /// (object stores have no folders, so cloud locations resolve as for reading).
    pub fn resolve_for_write(&self, location: &str) -> Result<StorageLocation, StorageError> {
        match self.classify(location)? {
            Target::Local(path) => {
                std::fs::create_dir_all(&path).map_err(|source| StorageError::CreateDir {
                    path: path.clone(),
                    source,
                })?;
                self.local_location(&path)
            }
            Target::Url(url, scheme) => self.url_location(location, url, scheme),
        }
    }

    /// Registers every store resolved so far with a DataFusion runtime, so tables
    /// at those URLs read through the configured stores. Call after resolving the
    /// job's roots; for lazy resolution install the registry itself with
    /// `RuntimeEnvBuilder::with_object_store_registry` instead.
    pub fn register_with(&self, runtime: &RuntimeEnv) {
        for (key, store) in self.lock_stores().iter() {
            // Keys are built from parsed URLs, so they always parse back.
            if let Ok(url) = Url::parse(key) {
                runtime.register_object_store(&url, Arc::clone(store));
            }
        }
    }

    fn lock_stores(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<dyn ObjectStore>>> {
        // A panic while holding the lock cannot leave the map half-updated (one insert), so keep going.
        self.stores.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn classify(&self, location: &str) -> Result<Target, StorageError> {
        let trimmed = location.trim();
        if trimmed.is_empty() {
            return Err(StorageError::EmptyLocation);
        }
        if let Some(rest) = trimmed.strip_prefix("file://") {
            // `file://sample_data/raw` (as written in job files) is relative to the base dir;
            // only `file:///abs` and `file://localhost/abs` are absolute URLs.
            if !rest.starts_with('/') && !rest.starts_with("localhost/") {
                return Ok(Target::Local(self.absolute(FsPath::new(rest))?));
            }
            let url = parse_url(trimmed)?;
            let path = url
                .to_file_path()
                .map_err(|()| StorageError::InvalidLocation {
                    location: redact::redact_url(trimmed),
                    reason: "not a local file path".into(),
                })?;
            return Ok(Target::Local(normalise(&path)));
        }
        if !trimmed.contains("://") {
            return Ok(Target::Local(self.absolute(FsPath::new(trimmed))?));
        }
        let mut url = parse_url(trimmed)?;
        if url.password().is_some() {
            return Err(StorageError::CredentialsInUrl {
                location: redact::redact_url(trimmed),
            });
        }
        let (scheme, _) =
            ObjectStoreScheme::parse(&url).map_err(|e| StorageError::UnsupportedScheme {
                location: redact::redact_url(trimmed),
                scheme: format!("{} ({e})", url.scheme()),
            })?;
        let path = url.path().trim_end_matches('/').to_string();
        url.set_path(&path);
        Ok(Target::Url(url, scheme))
    }

    fn absolute(&self, path: &FsPath) -> Result<PathBuf, StorageError> {
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else if self.base_dir.is_absolute() {
            self.base_dir.join(path)
        } else {
            std::env::current_dir()
                .map_err(StorageError::CurrentDir)?
                .join(&self.base_dir)
                .join(path)
        };
        Ok(normalise(&joined))
    }

    fn local_location(&self, path: &FsPath) -> Result<StorageLocation, StorageError> {
        let invalid = |reason: String| StorageError::InvalidLocation {
            location: path.display().to_string(),
            reason,
        };
        let url = Url::from_file_path(path).map_err(|()| invalid("not an absolute path".into()))?;
        let prefix = StorePath::from_url_path(url.path()).map_err(|e| invalid(e.to_string()))?;
        // DataFusion's default registry already serves `file://` with a root LocalFileSystem;
        // registering the same kind of store keeps one object for both.
        let store = self.cached("file://", || Ok(Arc::new(LocalFileSystem::new())))?;
        Ok(StorageLocation {
            url,
            store,
            prefix,
            store_url: ObjectStoreUrl::local_filesystem(),
        })
    }

    fn url_location(
        &self,
        location: &str,
        url: Url,
        scheme: ObjectStoreScheme,
    ) -> Result<StorageLocation, StorageError> {
        let shown = redact::redact_url(location);
        let key = format!(
            "{}://{}",
            url.scheme(),
            &url[url::Position::BeforeUsername..url::Position::BeforePath]
        );
        let store_url = ObjectStoreUrl::parse(&key).map_err(|e| StorageError::InvalidLocation {
            location: shown.clone(),
            reason: e.to_string(),
        })?;
        let (_, prefix) =
            ObjectStoreScheme::parse(&url).map_err(|e| StorageError::InvalidLocation {
                location: shown.clone(),
                reason: e.to_string(),
            })?;
        let store = match scheme {
            ObjectStoreScheme::Memory => self.cached(&key, || Ok(Arc::new(InMemory::new())))?,
            ObjectStoreScheme::AmazonS3
            | ObjectStoreScheme::GoogleCloudStorage
            | ObjectStoreScheme::MicrosoftAzure => self.cached(&key, || {
                cloud::build(&scheme, &url, &self.options, &self.retry, &shown)
            })?,
            // Local paths never reach here (`classify` handles them); plain HTTP is not storage.
            _ => {
                return Err(StorageError::UnsupportedScheme {
                    location: shown,
                    scheme: url.scheme().to_string(),
                });
            }
        };
        Ok(StorageLocation {
            url,
            store,
            prefix,
            store_url,
        })
    }

    fn cached(
        &self,
        key: &str,
        build: impl FnOnce() -> Result<Arc<dyn ObjectStore>, StorageError>,
    ) -> Result<Arc<dyn ObjectStore>, StorageError> {
        let mut stores = self.lock_stores();
        if let Some(store) = stores.get(key) {
            return Ok(Arc::clone(store));
        }
        let store = build()?;
        stores.insert(key.to_string(), Arc::clone(&store));
        Ok(store)
    }
}

/// Lazy resolution for DataFusion: a table at `s3://bucket/x` gets the job's store.
impl ObjectStoreRegistry for StorageRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        let key = format!(
            "{}://{}",
            url.scheme(),
            &url[url::Position::BeforeUsername..url::Position::BeforePath]
        );
        self.lock_stores().insert(key, store)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        self.resolve(url.as_str())
            .map(|location| location.store)
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))
    }
}

enum Target {
    Local(PathBuf),
    Url(Url, ObjectStoreScheme),
}

fn parse_url(text: &str) -> Result<Url, StorageError> {
    Url::parse(text).map_err(|e| StorageError::InvalidLocation {
        location: redact::redact_url(text),
        reason: e.to_string(),
    })
}

/// Lexically resolves `.` and `..` (the folder may not exist yet, so no canonicalize).
fn normalise(path: &FsPath) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests;
