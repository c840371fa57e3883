//! Small JSON documents in a store (manifests), read and put whole.

use std::sync::Arc;

use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};

/// The JSON document at `path` (a manifest): `None` when there is none, or when it
/// does not parse (logged, naming `what` happens instead: it is rebuilt).
pub async fn read_json<T: serde::de::DeserializeOwned>(
    store: &Arc<dyn ObjectStore>,
    path: &StorePath,
    what: &str,
) -> Result<Option<T>, object_store::Error> {
    let bytes = match store.get(path).await {
        Ok(found) => found.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    match serde_json::from_slice(&bytes) {
        Ok(value) => Ok(Some(value)),
        Err(e) => {
            tracing::warn!(manifest = %path, error = %e, "unreadable manifest: {what}");
            Ok(None)
        }
    }
}

/// Puts `value` at `path` as pretty JSON, in one object write (atomic).
pub async fn put_json<T: serde::Serialize>(
    store: &Arc<dyn ObjectStore>,
    path: &StorePath,
    value: &T,
) -> Result<(), object_store::Error> {
    let body = serde_json::to_vec_pretty(value).map_err(|e| object_store::Error::Generic {
        store: "json",
        source: Box::new(e),
    })?;
    store
        .put(path, object_store::PutPayload::from(body))
        .await?;
    Ok(())
}
