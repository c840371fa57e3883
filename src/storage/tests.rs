use super::*;
use futures::TryStreamExt;

#[tokio::test]
async fn interrupted_local_writes_are_hidden_from_listings_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.parquet", "a.parquet#3", "manifest.json#12", "b#x", "c#"] {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    std::fs::create_dir(dir.path().join("d#4")).unwrap();
    let store = LocalFileSystem::new();
    let prefix = StorePath::from_filesystem_path(dir.path()).unwrap();
    let listed = |store: LocalFileSystem, prefix: StorePath| async move {
        let mut names: Vec<String> = store
            .list(Some(&prefix))
            .map_ok(|o| o.location.filename().unwrap_or_default().to_string())
            .try_collect()
            .await
            .unwrap();
        names.sort();
        names
    };
    // Why the file system is needed: the store does not list `name#N`.
    assert_eq!(
        listed(store, prefix.clone()).await,
        ["a.parquet", "b#x", "c#"]
    );

    assert_eq!(remove_interrupted_writes(&prefix).unwrap(), 2);
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["a.parquet", "b#x", "c#", "d#4"]);
    let missing = prefix.clone().join("missing");
    assert_eq!(remove_interrupted_writes(&missing).unwrap(), 0);
}
