//! The engine and what every plugin shares: the pooling allocator, the
//! linker with WASI and onething's interfaces, the epoch ticker that
//! enforces deadlines, the compile cache and the host's call memory
//! budget; and [`Runtime::load`], which turns a package into a checked
//! [`LoadedPlugin`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, PoolingAllocationConfig};

use onething_registry::Manifest;

use super::bindings::{self, WorldPre, from_wit_info};
use super::cache::{CacheOutcome, CompileCache};
use super::plugin::{Health, LoadedPlugin};
use super::state::HostState;
use super::{LoadError, describe};
use crate::config::LimitsConfig;
use crate::metrics::Metrics;
use crate::model::ScenarioInfo;
use crate::storage::{DatasetReader, ItemReader};

/// Advances the engine's epoch from one thread for the whole host.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("onething-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .ok();
        if handle.is_none() {
            tracing::error!("cannot start the epoch ticker: plugin deadlines will not be enforced");
        }
        EpochTicker { stop, handle }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// The wasm engine and everything plugins share.
pub struct Runtime {
    engine: Engine,
    memory_budget: Arc<tokio::sync::Semaphore>,
    linker: Linker<HostState>,
    cache: Option<Arc<CompileCache>>,
    metrics: Arc<Metrics>,
    datasets: Arc<dyn DatasetReader>,
    items: Arc<dyn ItemReader>,
    limits: Arc<LimitsConfig>,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Creates the engine (pooling allocator, epoch interruption) and the
    /// linker with WASI and onething's interfaces. With `cache_dir`,
    /// compiled plugins are kept there and reused across restarts. The
    /// host functions read storage only through `datasets` (a plugin's
    /// `query`) and `items` (its `cancel`).
    pub fn new(
        limits: &LimitsConfig,
        datasets: Arc<dyn DatasetReader>,
        items: Arc<dyn ItemReader>,
        cache_dir: Option<std::path::PathBuf>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, LoadError> {
        let limits = &limits.floored();
        let engine_error = |e: wasmtime::Error| LoadError::Engine(format!("{e:#}"));
        let mut pool = PoolingAllocationConfig::new();
        let instances = limits.max_instances;
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(limits.core_instances_per_instance))
            .total_memories(instances.saturating_mul(limits.memories_per_instance))
            .total_tables(instances.saturating_mul(limits.tables_per_instance))
            .total_stacks(instances)
            .max_memory_size(mib_to_bytes(limits.max_plugin_memory_mib));
        // Reset a freed slot's memory by rewriting only the pages the call
        // dirtied (PAGEMAP_SCAN, Linux 6.7+; ignored elsewhere) instead of
        // unmapping it: the next instance takes no page faults. This took
        // a fresh instance + call from ~28 us to ~8 us (docs/performance.md).
        pool.linear_memory_keep_resident(limits.keep_resident_bytes)
            .table_keep_resident(limits.keep_resident_bytes)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .allocation_strategy(pool)
            .wasm_component_model(true);
        let engine = Engine::new(&config).map_err(engine_error)?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        bindings::add_to_linker(&mut linker).map_err(engine_error)?;
        let ticker = EpochTicker::start(engine.clone(), limits.epoch_tick());
        let cache = cache_dir.map(|dir| Arc::new(CompileCache::new(dir, &engine)));
        let budget = usize::try_from(limits.max_calls_memory_mib).unwrap_or(usize::MAX);
        Ok(Runtime {
            engine,
            memory_budget: Arc::new(tokio::sync::Semaphore::new(
                budget.min(tokio::sync::Semaphore::MAX_PERMITS),
            )),
            linker,
            cache,
            metrics,
            datasets,
            items,
            limits: Arc::new(limits.clone()),
            _ticker: ticker,
        })
    }

    /// Compiles a plugin, checks it against the world and its manifest
    /// against the host's ceilings, and calls `describe()` once.
    pub async fn load(&self, manifest: Manifest, wasm: &[u8]) -> Result<LoadedPlugin, LoadError> {
        let plugin = manifest.id.clone();
        let memory_mib = manifest
            .limits
            .memory_mib
            .unwrap_or(self.limits.default_plugin_memory_mib);
        if memory_mib > self.limits.max_plugin_memory_mib {
            return Err(LoadError::OverLimit {
                plugin,
                what: format!("{memory_mib} MiB of memory"),
                allowed: format!("{} MiB", self.limits.max_plugin_memory_mib),
            });
        }
        let deadline_ms = manifest
            .limits
            .deadline_ms
            .unwrap_or(self.limits.default_plugin_deadline_ms);
        if deadline_ms > self.limits.max_plugin_deadline_ms {
            return Err(LoadError::OverLimit {
                plugin,
                what: format!("a deadline of {deadline_ms} ms"),
                allowed: format!("{} ms", self.limits.max_plugin_deadline_ms),
            });
        }
        let engine = self.engine.clone();
        let bytes = wasm.to_vec();
        let cache = self.cache.clone();
        let (component, cached) = tokio::task::spawn_blocking(move || match cache {
            Some(cache) => cache.load_or_compile(&engine, &bytes),
            None => Component::new(&engine, &bytes).map(|c| (c, CacheOutcome::Compiled)),
        })
        .await
        .map_err(|e| LoadError::Compile {
            plugin: plugin.clone(),
            message: e.to_string(),
        })?
        .map_err(|e| LoadError::Compile {
            plugin: plugin.clone(),
            message: format!("{e:#}"),
        })?;
        let wrong_world = |e: wasmtime::Error| LoadError::WrongWorld {
            plugin: plugin.clone(),
            message: format!("{e:#}"),
        };
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(wrong_world)?;
        let pre = WorldPre::new(instance_pre).map_err(wrong_world)?;
        let version = manifest.version.to_string();
        let metrics = self.metrics.plugin(&manifest.id, &version);
        let mut loaded = LoadedPlugin {
            health: std::sync::Mutex::new(Health::default()),
            quarantine_after: self.limits.quarantine_after_failures,
            manifest: Arc::new(manifest),
            version,
            cached,
            metrics,
            host_metrics: self.metrics.clone(),
            slots: Arc::new(tokio::sync::Semaphore::new(
                self.limits.max_concurrent_calls_per_plugin as usize,
            )),
            max_concurrent: self.limits.max_concurrent_calls_per_plugin,
            memory_budget: self.memory_budget.clone(),
            reserve_mib: self.call_reserve_mib(memory_mib),
            queue_timeout: Duration::from_millis(self.limits.plugin_queue_timeout_ms),
            info: ScenarioInfo::default(),
            pre,
            datasets: self.datasets.clone(),
            items: self.items.clone(),
            memory_bytes: mib_to_bytes(memory_mib),
            memory_mib,
            deadline_ms,
            limits: self.limits.clone(),
        };
        let info = loaded.describe().await.map_err(|e| LoadError::Describe {
            plugin: plugin.clone(),
            message: e.error.to_string(),
        })?;
        let mut info = from_wit_info(info).map_err(|message| LoadError::Describe {
            plugin: plugin.clone(),
            message,
        })?;
        let frozen_world = matches!(loaded.pre, WorldPre::V0_1(_));
        describe::take_manifest_identity(&mut info, &loaded.manifest, frozen_world).map_err(
            |message| LoadError::Describe {
                plugin: plugin.clone(),
                message,
            },
        )?;
        describe::check_info(&info, &self.limits)
            .map_err(|message| LoadError::Describe { plugin, message })?;
        loaded.info = info;
        Ok(loaded)
    }
}

impl Runtime {
    /// What one call of a plugin with `memory_mib` reserves from the call
    /// memory budget: its memory limit plus what the host may copy out of
    /// it, at most the whole budget (so that it can run alone).
    fn call_reserve_mib(&self, memory_mib: u32) -> u32 {
        let effects = self.limits.max_call_effect_bytes.div_ceil(1024 * 1024);
        let effects = u32::try_from(effects).unwrap_or(u32::MAX);
        memory_mib
            .saturating_add(effects)
            .min(self.limits.max_calls_memory_mib)
    }
}

pub(super) fn mib_to_bytes(mib: u32) -> usize {
    usize::try_from(u64::from(mib) * 1024 * 1024).unwrap_or(usize::MAX)
}
