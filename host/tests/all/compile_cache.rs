//! The compile cache: a restart does not compile again, and a damaged
//! artifact is compiled again rather than trusted.

use std::sync::Arc;

use onething_host::config::LimitsConfig;
use onething_host::runtime::{CacheOutcome, CaseContext, Runtime};
use onething_host::storage::Storage;
use onething_host::storage::sled::SledStorage;
use onething_registry::Manifest;

use crate::support::plugin_dir;

#[tokio::test]
async fn a_second_load_comes_from_the_cache_and_a_damaged_artifact_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(&dir.path().join("data")).unwrap());
    let cache_dir = dir.path().join("cache");
    let echo = plugin_dir("echo");
    let manifest =
        Manifest::parse(&std::fs::read_to_string(echo.join("onething.toml")).unwrap()).unwrap();
    let wasm = std::fs::read(echo.join("plugin.wasm")).unwrap();

    let metrics = Arc::new(onething_host::metrics::Metrics::default());
    let load = async |runtime: &Runtime| runtime.load(manifest.clone(), &wasm).await.unwrap();
    let first = Runtime::new(
        &LimitsConfig::default(),
        storage.clone(),
        storage.clone(),
        Some(cache_dir.clone()),
        metrics.clone(),
    )
    .unwrap();
    assert_eq!(load(&first).await.cache_outcome(), CacheOutcome::Compiled);

    // A new runtime (a restart) takes the artifact from the cache, and it runs.
    let second = Runtime::new(
        &LimitsConfig::default(),
        storage.clone(),
        storage.clone(),
        Some(cache_dir.clone()),
        metrics.clone(),
    )
    .unwrap();
    let plugin = load(&second).await;
    assert_eq!(plugin.cache_outcome(), CacheOutcome::Hit);
    let case = CaseContext {
        id: "c".into(),
        scenario: "echo".into(),
        applicant: "a".into(),
        state: "{}".into(),
        now: chrono::Utc::now(),
        utc_offset_minutes: 480,
        place: None,
        subject: None,
        places: Default::default(),
    };
    let answer = plugin
        .start(&case, r#"{"note":"from the cache"}"#)
        .await
        .unwrap();
    assert!(answer.outcome.message.contains("from the cache"));

    // Flip one byte of the artifact: it is not trusted, it is recompiled.
    let artifact = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .unwrap();
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&artifact, bytes).unwrap();
    let third = Runtime::new(
        &LimitsConfig::default(),
        storage.clone(),
        storage,
        Some(cache_dir),
        metrics,
    )
    .unwrap();
    assert_eq!(load(&third).await.cache_outcome(), CacheOutcome::Compiled);
}
