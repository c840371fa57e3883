//! The warehouse lease `{warehouse}/_c360/lock`: at most one run of any job
//! works on (and publishes to) a warehouse at a time.
//!
//! Taking it is a conditional put (`PutMode::Create`: fails if the file exists).
//! A lease carries its holder and an expiry; the holder renews it while it
//! works. A lease whose expiry has passed, or whose holder process is gone (same
//! host, no such pid: a `kill -9`), is stale and may be taken over: with
//! `PutMode::Update` on the version just read where the store supports it (S3,
//! GCS, Azure, memory), so two contenders cannot both win; on local disk, which
//! has no conditional update, by delete + create (a contender that loses the
//! create race backs off). The commit re-reads the lease just before its commit
//! point, so a run that lost its lease publishes nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion};
use tokio::sync::Mutex;

use super::{CommitError, delete_if_present, store_err};
use crate::clock::Clock;

/// How long a lease lasts without renewal.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10 * 60);

/// Who holds the lease, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseHolder {
    pub run_id: String,
    pub job: String,
    pub host: String,
    pub pid: u32,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl LeaseHolder {
    /// Expired, or its process is known to be gone.
    fn is_stale(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now || self.process_is_gone()
    }

    /// Only provable on the same host with a `/proc` to look in.
    fn process_is_gone(&self) -> bool {
        self.host == hostname()
            && std::path::Path::new("/proc/self").exists()
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// The holder as last written by this process.
struct State {
    holder: LeaseHolder,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    path: Path,
    clock: Arc<dyn Clock>,
    ttl: chrono::Duration,
    state: Mutex<State>,
}

/// A held lease; renew it while working, release it when done.
pub struct Lease {
    inner: Arc<Inner>,
    renewal: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Lease {
    /// Takes the lease at `path` for `run_id` of `job`, or fails with
    /// [`CommitError::Locked`] naming the live holder.
    pub async fn acquire(
        store: Arc<dyn ObjectStore>,
        path: Path,
        run_id: &str,
        job: &str,
        clock: Arc<dyn Clock>,
        ttl: Duration,
    ) -> Result<Self, CommitError> {
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(10));
        let now = clock.now();
        let holder = LeaseHolder {
            run_id: run_id.to_string(),
            job: job.to_string(),
            host: hostname(),
            pid: std::process::id(),
            acquired_at: now,
            expires_at: now + ttl,
        };
        let body = to_json(&path, &holder)?;
        let mut last_holder = None;
        // Each round either wins, meets a live holder, or saw the lock change
        // under it (another contender); a few rounds settle any race.
        for _ in 0..4 {
            match store
                .put_opts(&path, body.clone(), PutMode::Create.into())
                .await
            {
                Ok(_) => return Ok(Self::held(store, path, clock, ttl, holder)),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(store_err(&path)(e)),
            }
            let current = match store.get(&path).await {
                Ok(current) => current,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(store_err(&path)(e)),
            };
            let version = UpdateVersion {
                e_tag: current.meta.e_tag.clone(),
                version: current.meta.version.clone(),
            };
            let bytes = current.bytes().await.map_err(store_err(&path))?;
            // An unreadable lock file (a crash mid-write on a store without atomic
            // puts) protects nothing: treat it as stale.
            if let Ok(existing) = serde_json::from_slice::<LeaseHolder>(&bytes) {
                if !existing.is_stale(clock.now()) {
                    return Err(CommitError::Locked(Box::new(existing)));
                }
                last_holder = Some(existing);
            }
            match store
                .put_opts(&path, body.clone(), PutMode::Update(version).into())
                .await
            {
                Ok(_) => return Ok(Self::held(store, path, clock, ttl, holder)),
                Err(object_store::Error::Precondition { .. }) => continue,
                Err(object_store::Error::NotImplemented { .. }) => {
                    delete_if_present(&store, &path).await?;
                }
                Err(e) => return Err(store_err(&path)(e)),
            }
        }
        Err(CommitError::Locked(Box::new(last_holder.unwrap_or(holder))))
    }

    fn held(
        store: Arc<dyn ObjectStore>,
        path: Path,
        clock: Arc<dyn Clock>,
        ttl: chrono::Duration,
        holder: LeaseHolder,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                path,
                clock,
                ttl,
                state: Mutex::new(State { holder }),
            }),
            renewal: None,
        }
    }

    /// The holder as written when the lease was taken or last renewed.
    pub async fn holder(&self) -> LeaseHolder {
        self.inner.state.lock().await.holder.clone()
    }

    /// Renews in the background every `every` until released or dropped.
    pub fn keep_renewed(&mut self, every: Duration) {
        let inner = self.inner.clone();
        self.renewal = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = inner.renew().await {
                    // ensure_held fails the commit later; nothing else to do here.
                    tracing::warn!(error = %e, "lease renewal failed");
                    return;
                }
            }
        }));
    }

    /// Extends the expiry by the TTL from now.
    pub async fn renew(&self) -> Result<(), CommitError> {
        self.inner.renew().await
    }

    /// Fails unless the lock file still names this run and has not expired.
    pub async fn ensure_held(&self) -> Result<(), CommitError> {
        self.inner.current_if_ours().await.map(|_| ())
    }

    /// Stops renewing and deletes the lock file if it is still ours.
    pub async fn release(mut self) -> Result<(), CommitError> {
        if let Some(task) = self.renewal.take() {
            task.abort();
        }
        if self.inner.current_if_ours().await.is_ok() {
            delete_if_present(&self.inner.store, &self.inner.path).await?;
        }
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(task) = self.renewal.take() {
            task.abort();
        }
    }
}

impl Inner {
    /// The lock file's holder and version, if it is this run's unexpired lease.
    async fn current_if_ours(&self) -> Result<(LeaseHolder, UpdateVersion), CommitError> {
        let ours = self.state.lock().await.holder.run_id.clone();
        let lost = || CommitError::LeaseLost {
            run_id: ours.clone(),
        };
        let current = match self.store.get(&self.path).await {
            Ok(current) => current,
            Err(object_store::Error::NotFound { .. }) => return Err(lost()),
            Err(e) => return Err(store_err(&self.path)(e)),
        };
        let version = UpdateVersion {
            e_tag: current.meta.e_tag.clone(),
            version: current.meta.version.clone(),
        };
        let bytes = current.bytes().await.map_err(store_err(&self.path))?;
        match serde_json::from_slice::<LeaseHolder>(&bytes) {
            Ok(holder) if holder.run_id == ours && holder.expires_at > self.clock.now() => {
                Ok((holder, version))
            }
            _ => Err(lost()),
        }
    }

    async fn renew(&self) -> Result<(), CommitError> {
        let (mut holder, version) = self.current_if_ours().await?;
        holder.expires_at = self.clock.now() + self.ttl;
        let body = to_json(&self.path, &holder)?;
        match self
            .store
            .put_opts(&self.path, body.clone(), PutMode::Update(version).into())
            .await
        {
            Err(object_store::Error::NotImplemented { .. }) => {
                self.store.put(&self.path, body).await
            }
            other => other,
        }
        .map_err(store_err(&self.path))?;
        self.state.lock().await.holder = holder;
        Ok(())
    }
}

fn to_json(path: &Path, holder: &LeaseHolder) -> Result<PutPayload, CommitError> {
    serde_json::to_vec_pretty(holder)
        .map(PutPayload::from)
        .map_err(|e| CommitError::Record {
            path: path.to_string(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use chrono::TimeZone;
    use object_store::memory::InMemory;

    fn at(minute: u32) -> Arc<dyn Clock> {
        Arc::new(FixedClock(
            Utc.with_ymd_and_hms(2026, 3, 1, 2, minute, 0).unwrap(),
        ))
    }

    #[tokio::test]
    async fn a_live_lease_blocks_a_second_run_until_it_expires() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let path = Path::from("wh/_c360/lock");
        let ttl = Duration::from_secs(10 * 60);
        let first = Lease::acquire(store.clone(), path.clone(), "r1", "j", at(0), ttl)
            .await
            .unwrap();
        // Five minutes later the lease (held by this very process) is live.
        let Err(CommitError::Locked(holder)) =
            Lease::acquire(store.clone(), path.clone(), "r2", "j", at(5), ttl).await
        else {
            panic!("second run got the lease");
        };
        assert_eq!((holder.run_id.as_str(), holder.job.as_str()), ("r1", "j"));
        assert_eq!(
            holder.expires_at,
            Utc.with_ymd_and_hms(2026, 3, 1, 2, 10, 0).unwrap()
        );
        // At 02:10 it has expired: r2 takes it over with a conditional update, and r1
        // learns it lost the lease before it could publish.
        let second = Lease::acquire(store.clone(), path.clone(), "r2", "j", at(10), ttl)
            .await
            .unwrap();
        assert!(matches!(
            first.ensure_held().await,
            Err(CommitError::LeaseLost { .. })
        ));
        second.ensure_held().await.unwrap();
        // r1 releasing must not delete r2's lease.
        first.release().await.unwrap();
        second.ensure_held().await.unwrap();
        second.release().await.unwrap();
        assert!(store.get(&path).await.is_err());
    }

    #[tokio::test]
    async fn a_dead_holder_on_this_host_is_taken_over_on_local_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let path = Path::from("_c360/lock");
        // A holder that expires in an hour, but whose pid cannot exist (above pid_max).
        let dead = LeaseHolder {
            run_id: "r0".into(),
            job: "j".into(),
            host: hostname(),
            pid: u32::MAX,
            acquired_at: at(0).now(),
            expires_at: at(59).now(),
        };
        store
            .put(&path, serde_json::to_vec(&dead).unwrap().into())
            .await
            .unwrap();
        let lease = Lease::acquire(store.clone(), path.clone(), "r1", "j", at(1), DEFAULT_TTL)
            .await
            .unwrap();
        assert_eq!(lease.holder().await.run_id, "r1");
        lease.renew().await.unwrap();
        lease.ensure_held().await.unwrap();
    }
}
