//! Runtime benchmarks (criterion). Method and figures: docs/performance.md.
//!
//! - `fresh_instance_call/echo`: a fresh store + instance of a trivial
//!   scenario (the `echo` fixture), one `start` call, drop. No storage write.
//! - `newborn_apply_durable`: a whole newborn application through the
//!   service layer: validation, a fresh instance, two data reads, four
//!   dispatches, and the sled commit flushed to disk.
//! - `loaded_plugins/{1,100,1000}`: the echo call again with that many plugin
//!   versions compiled and registered, to show that per-call time does not
//!   depend on how many plugins a host carries.
//!
//! Needs the plugins built: `scripts/build-plugins.sh` (scripts/bench.sh
//! does it). Run: `cargo bench -p onething-host --bench runtime`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::json;

use onething_host::calendar::Calendar;
use onething_host::config::LimitsConfig;
use onething_host::datasets;
use onething_host::places::Places;
use onething_host::plugins::PluginSet;
use onething_host::runtime::{CaseContext, LoadedPlugin, Runtime};
use onething_host::service::{Service, SystemClock};
use onething_host::storage::Storage;
use onething_host::storage::sled::SledStorage;
use onething_registry::Manifest;

fn dist(kind: &str, id: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../dist")
        .join(kind)
        .join(id);
    assert!(
        dir.is_dir(),
        "{} is missing: run scripts/build-plugins.sh first",
        dir.display()
    );
    dir
}

fn read_plugin(kind: &str, id: &str) -> (Manifest, Vec<u8>) {
    let dir = dist(kind, id);
    let manifest =
        Manifest::parse(&std::fs::read_to_string(dir.join("onething.toml")).unwrap()).unwrap();
    (manifest, std::fs::read(dir.join("plugin.wasm")).unwrap())
}

fn case(n: u64) -> CaseContext {
    CaseContext {
        id: format!("bench-{n}"),
        scenario: "echo".into(),
        applicant: "bench".into(),
        state: "{}".into(),
        now: chrono::Utc::now(),
        utc_offset_minutes: 480,
        place: None,
        subject: None,
        places: Default::default(),
    }
}

async fn call_once(plugin: &LoadedPlugin, n: u64) {
    let answer = plugin.start(&case(n), r#"{"note":"hi"}"#).await;
    assert!(answer.is_ok());
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path()).unwrap());
    let metrics = Arc::new(onething_host::metrics::Metrics::default());
    let runtime = Runtime::new(
        &LimitsConfig::default(),
        storage.clone(),
        storage.clone(),
        None,
        metrics.clone(),
    )
    .unwrap();

    // Fresh instance + call of a trivial scenario.
    let (manifest, wasm) = read_plugin("fixtures", "echo");
    let echo = rt.block_on(runtime.load(manifest.clone(), &wasm)).unwrap();
    let mut n = 0u64;
    c.bench_function("fresh_instance_call/echo", |b| {
        b.to_async(&rt).iter(|| {
            n += 1;
            call_once(&echo, n)
        })
    });

    // A whole newborn application, durable before it returns.
    rt.block_on(datasets::seed_demo(storage.as_ref())).unwrap();
    let (nb_manifest, nb_wasm) = read_plugin("plugins", "newborn");
    let plugins = Arc::new(PluginSet::default());
    plugins
        .insert(rt.block_on(runtime.load(nb_manifest, &nb_wasm)).unwrap())
        .unwrap();
    let places = Arc::new(rt.block_on(Places::load(storage.clone())).unwrap());
    let service = Service::new(
        storage.clone(),
        plugins,
        places,
        Calendar::new(8),
        Arc::new(SystemClock),
        metrics.clone(),
    );
    let application = json!({
        "certificate_no": "Q500000001",
        "child_name": "王小明",
        "applicant_id": "500103199001010018",
        "household_of": "father",
        "phone": "13800000001",
    });
    c.bench_function("newborn_apply_durable", |b| {
        b.to_async(&rt).iter(|| async {
            let applied = service.apply("newborn", application.clone(), None).await;
            assert!(applied.is_ok());
        })
    });

    // Per-call time with 1, 100 and 1,000 plugin versions registered.
    let mut group = c.benchmark_group("loaded_plugins");
    group.sample_size(50);
    let set = PluginSet::default();
    let mut loaded = 0usize;
    for count in [1usize, 100, 1000] {
        let started = std::time::Instant::now();
        let before = loaded;
        while loaded < count {
            let mut m = manifest.clone();
            m.version = semver::Version::new(1, 0, loaded as u64);
            set.insert(rt.block_on(runtime.load(m, &wasm)).unwrap())
                .unwrap();
            loaded += 1;
        }
        // Not timed by criterion: what a host with this many plugins costs
        // to load (compiling each, no cache) and to keep in memory.
        eprintln!(
            "loaded_plugins/{count}: compiled {} more in {:.1} s; process RSS {} MiB",
            loaded - before,
            started.elapsed().as_secs_f64(),
            rss_mib()
        );
        // Call the newest version, as a new case would.
        let plugin = set.active("echo").unwrap();
        group.bench_with_input(BenchmarkId::from_parameter(count), &count, |b, _| {
            b.to_async(&rt).iter(|| {
                n += 1;
                call_once(&plugin, n)
            })
        });
    }
    group.finish();
}

/// The process's resident set size, from /proc (Linux).
fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

criterion_group!(runtime_benches, benches);
criterion_main!(runtime_benches);
