//! The plugin runtime: one wasmtime engine, a compiled component and an
//! `InstancePre` per plugin, and a fresh store and instance for every call.
//!
//! Invariants:
//! - Every call runs in a fresh instance: nothing leaks between applicants,
//!   and a trapped instance is never entered again. The pooling allocator
//!   and pre-instantiation keep that cheap.
//! - A call is bounded by its manifest's memory limit (a resource limiter
//!   refuses growth past it) and wall-clock deadline (one epoch ticker
//!   thread for the whole engine; the call yields to other tasks at every
//!   tick and is stopped at the first tick past its deadline).
//! - A call that traps, runs out of time or memory, or returns an error,
//!   fails only itself: it becomes a [`PluginError`], and the effects it
//!   asked for are handed back only so that its data reads stay on record.
//! - Plugins have no ambient authority: WASI without preopens, environment,
//!   arguments or network.

mod bindings;
mod cache;
mod data;
mod describe;
mod dispatch;
mod log;
mod state;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::Instrument;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, PoolingAllocationConfig, Store, Trap, UpdateDeadline};

use onething_registry::Manifest;

use crate::config::LimitsConfig;
use crate::metrics::{FailureKind, Metrics, PluginMetrics};
use crate::model::{CaseStatus, FieldKind, FieldSpec, ScenarioInfo};
use crate::storage::Storage;
use bindings::{Plugin, PluginPre, wit};
pub use cache::CacheOutcome;
use cache::CompileCache;
use state::{CallIdentity, HostState, Phase};
pub use state::{DataRead, Denied, DeniedKind, Dispatched, Effects};

/// Why the runtime could not be set up or a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The engine could not be created with this configuration.
    #[error("cannot create the wasm engine: {0}")]
    Engine(String),
    /// The bytes are not a valid component.
    #[error("plugin `{plugin}` is not a valid WebAssembly component: {message}")]
    Compile {
        /// The plugin id.
        plugin: String,
        /// The compiler's message.
        message: String,
    },
    /// The component does not fit the `onething:scenario` world.
    #[error("plugin `{plugin}` does not fit the onething:scenario/plugin world: {message}")]
    WrongWorld {
        /// The plugin id.
        plugin: String,
        /// What does not fit.
        message: String,
    },
    /// The manifest asks for more than the host allows.
    #[error("plugin `{plugin}` asks for {what}, more than this host allows ({allowed})")]
    OverLimit {
        /// The plugin id.
        plugin: String,
        /// What it asks for.
        what: String,
        /// What the host allows.
        allowed: String,
    },
    /// `describe()` failed or disagrees with the manifest.
    #[error("plugin `{plugin}` describe() failed: {message}")]
    Describe {
        /// The plugin id.
        plugin: String,
        /// What went wrong.
        message: String,
    },
}

/// The error a scenario returned on purpose (the WIT `error` variant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// Not allowed.
    #[error("denied: {0}")]
    Denied(String),
    /// Something needed does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The input is malformed or breaks a rule.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A dependency is out of reach for now.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Why a plugin call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The scenario returned an error.
    #[error("the scenario answered {0}")]
    Scenario(ScenarioError),
    /// The call ran past its deadline.
    #[error("the plugin ran past its deadline of {deadline_ms} ms")]
    Timeout {
        /// The deadline.
        deadline_ms: u32,
    },
    /// The call tried to use more memory than its limit.
    #[error("the plugin tried to use more than its memory limit of {limit_mib} MiB")]
    OutOfMemory {
        /// The limit.
        limit_mib: u32,
    },
    /// The plugin trapped.
    #[error("the plugin trapped: {0}")]
    Trap(String),
    /// The plugin answered something the host cannot use.
    #[error("the plugin's answer is not valid: {0}")]
    InvalidAnswer(String),
    /// The plugin handed the host a value past one of its bounds (a
    /// string, a list, a number or the call's effect budget): the call
    /// fails whatever the plugin returned after that, and nothing of it is
    /// kept.
    #[error("the plugin crossed a bound: {0}")]
    BoundExceeded(String),
    /// No instance could be created (e.g. every pool slot is busy).
    #[error("no plugin instance is available: {0}")]
    Unavailable(String),
    /// Every call slot of this plugin, or the host's memory budget for
    /// calls in flight, stayed full for the queue timeout.
    #[error("plugin `{plugin}` is busy: {why}; try again shortly")]
    Busy {
        /// The plugin.
        plugin: String,
        /// Which wait ran out.
        why: String,
    },
}

impl PluginError {
    /// A stable code for APIs, timelines and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            PluginError::Scenario(ScenarioError::Denied(_)) => "plugin_denied",
            PluginError::Scenario(ScenarioError::NotFound(_)) => "application_not_found",
            PluginError::Scenario(ScenarioError::Invalid(_)) => "application_invalid",
            PluginError::Scenario(ScenarioError::Unavailable(_)) => "plugin_unavailable",
            PluginError::Timeout { .. } => "plugin_timeout",
            PluginError::OutOfMemory { .. } => "plugin_out_of_memory",
            PluginError::Trap(_) => "plugin_trap",
            PluginError::InvalidAnswer(_) => "plugin_invalid_answer",
            PluginError::BoundExceeded(_) => "plugin_bound_exceeded",
            PluginError::Unavailable(_) => "plugin_instance_unavailable",
            PluginError::Busy { .. } => "plugin_busy",
        }
    }
}

/// A failed call: the error, and what the call had done before failing
/// (only its data reads are kept, for the audit log).
#[derive(Debug)]
pub struct CallFailure {
    /// Why it failed.
    pub error: PluginError,
    /// What it asked for before failing.
    pub effects: Effects,
}

/// What a successful call decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The case's new status.
    pub status: CaseStatus,
    /// The plugin's new state, as JSON text.
    pub state: String,
    /// The message for the applicant.
    pub message: String,
}

/// A successful call: its outcome and its effects, to be committed together.
#[derive(Debug)]
pub struct CallSuccess {
    /// The outcome.
    pub outcome: Outcome,
    /// The effects.
    pub effects: Effects,
}

/// The case a call is for, as the plugin sees it.
#[derive(Debug, Clone)]
pub struct CaseContext {
    /// The case id.
    pub id: String,
    /// The scenario id.
    pub scenario: String,
    /// The applicant.
    pub applicant: String,
    /// The plugin's state for the case (`{}` on the first call).
    pub state: String,
}

/// Something that happened to a case, for `on-event`.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseEvent {
    /// A department completed an item.
    ItemCompleted {
        /// The item.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
        /// The department's result, as JSON text.
        result: String,
    },
    /// A department rejected an item.
    ItemRejected {
        /// The item.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
        /// The department's reason.
        reason: String,
    },
    /// An item is past its time limit.
    ItemOverdue {
        /// The item.
        item_id: String,
        /// The department.
        department: String,
        /// The item's task.
        task: String,
    },
    /// The applicant supplied material (JSON text).
    Supplement(String),
}

impl CaseEvent {
    /// A short name for spans and timelines.
    pub fn name(&self) -> &'static str {
        match self {
            CaseEvent::ItemCompleted { .. } => "item-completed",
            CaseEvent::ItemRejected { .. } => "item-rejected",
            CaseEvent::ItemOverdue { .. } => "item-overdue",
            CaseEvent::Supplement(_) => "supplement",
        }
    }
}

/// Raised by the epoch callback when a call's deadline has passed.
#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

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
    storage: Arc<dyn Storage>,
    limits: Arc<LimitsConfig>,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Creates the engine (pooling allocator, epoch interruption) and the
    /// linker with WASI and onething's interfaces. With `cache_dir`,
    /// compiled plugins are kept there and reused across restarts.
    pub fn new(
        limits: &LimitsConfig,
        storage: Arc<dyn Storage>,
        cache_dir: Option<std::path::PathBuf>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, LoadError> {
        let engine_error = |e: wasmtime::Error| LoadError::Engine(format!("{e:#}"));
        let mut pool = PoolingAllocationConfig::new();
        let instances = limits.max_instances.max(1);
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(8))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(4))
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
        Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(engine_error)?;
        let ticker = EpochTicker::start(engine.clone(), limits.epoch_tick());
        let cache = cache_dir.map(|dir| Arc::new(CompileCache::new(dir, &engine)));
        let budget = usize::try_from(limits.max_calls_memory_mib.max(1)).unwrap_or(usize::MAX);
        Ok(Runtime {
            engine,
            memory_budget: Arc::new(tokio::sync::Semaphore::new(
                budget.min(tokio::sync::Semaphore::MAX_PERMITS),
            )),
            linker,
            cache,
            metrics,
            storage,
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
        let pre = PluginPre::new(instance_pre).map_err(wrong_world)?;
        let version = manifest.version.to_string();
        let metrics = self.metrics.plugin(&manifest.id, &version);
        let mut loaded = LoadedPlugin {
            health: std::sync::Mutex::new(Health::default()),
            quarantine_after: self.limits.quarantine_after_failures.max(1),
            manifest: Arc::new(manifest),
            version,
            cached,
            metrics,
            host_metrics: self.metrics.clone(),
            slots: Arc::new(tokio::sync::Semaphore::new(
                self.limits.max_concurrent_calls_per_plugin.max(1) as usize,
            )),
            max_concurrent: self.limits.max_concurrent_calls_per_plugin.max(1),
            memory_budget: self.memory_budget.clone(),
            reserve_mib: self.call_reserve_mib(memory_mib),
            queue_timeout: Duration::from_millis(self.limits.plugin_queue_timeout_ms),
            info: ScenarioInfo::default(),
            pre,
            storage: self.storage.clone(),
            memory_bytes: mib_to_bytes(memory_mib),
            memory_mib,
            deadline_ms,
            limits: self.limits.clone(),
        };
        let info = loaded.describe().await.map_err(|e| LoadError::Describe {
            plugin: plugin.clone(),
            message: e.error.to_string(),
        })?;
        if info.id != loaded.manifest.id {
            return Err(LoadError::Describe {
                plugin,
                message: format!(
                    "it describes scenario `{}` but its manifest says `{}`",
                    info.id, loaded.manifest.id
                ),
            });
        }
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
            .min(self.limits.max_calls_memory_mib.max(1))
    }
}

/// Shows a call's memory reservation on `/metrics` while it lasts, also
/// when the call's future is dropped half-way.
struct Reserved<'a> {
    metrics: &'a Metrics,
    mib: i64,
}

impl<'a> Reserved<'a> {
    fn new(metrics: &'a Metrics, mib: u32) -> Self {
        let mib = i64::from(mib);
        metrics.add_calls_memory_reserved(mib);
        Reserved { metrics, mib }
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.metrics.add_calls_memory_reserved(-self.mib);
    }
}

fn mib_to_bytes(mib: u32) -> usize {
    usize::try_from(u64::from(mib) * 1024 * 1024).unwrap_or(usize::MAX)
}

/// Why a plugin version stopped taking new cases.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantine {
    /// When.
    pub since: chrono::DateTime<chrono::Utc>,
    /// The failures that caused it.
    pub reason: String,
}

#[derive(Debug, Default)]
struct Health {
    failures_in_a_row: u32,
    quarantine: Option<Quarantine>,
}

/// A compiled, checked plugin version, ready to be called.
pub struct LoadedPlugin {
    health: std::sync::Mutex<Health>,
    quarantine_after: u32,
    manifest: Arc<Manifest>,
    version: String,
    cached: CacheOutcome,
    metrics: Arc<PluginMetrics>,
    host_metrics: Arc<Metrics>,
    slots: Arc<tokio::sync::Semaphore>,
    max_concurrent: u32,
    memory_budget: Arc<tokio::sync::Semaphore>,
    reserve_mib: u32,
    queue_timeout: Duration,
    info: ScenarioInfo,
    pre: PluginPre<HostState>,
    storage: Arc<dyn Storage>,
    memory_bytes: usize,
    memory_mib: u32,
    deadline_ms: u32,
    limits: Arc<LimitsConfig>,
}

impl LoadedPlugin {
    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The version, as text.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Why this version takes no new cases, if it is quarantined.
    pub fn quarantine(&self) -> Option<Quarantine> {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .quarantine
            .clone()
    }

    /// Lifts a quarantine (an operator's decision); returns whether there
    /// was one.
    pub fn reactivate(&self) -> bool {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        health.failures_in_a_row = 0;
        health.quarantine.take().is_some()
    }

    /// Failed calls in a row, for operators.
    pub fn failures_in_a_row(&self) -> u32 {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failures_in_a_row
    }

    /// Counts a call's result towards quarantine: failures of the plugin
    /// itself count, refusals by the scenario and busy answers do not.
    fn note_health(&self, answer: &Result<CallSuccess, CallFailure>) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match answer {
            Err(CallFailure {
                error:
                    error @ (PluginError::Trap(_)
                    | PluginError::Timeout { .. }
                    | PluginError::OutOfMemory { .. }
                    | PluginError::InvalidAnswer(_)
                    | PluginError::BoundExceeded(_)),
                ..
            }) => {
                health.failures_in_a_row += 1;
                if health.failures_in_a_row >= self.quarantine_after && health.quarantine.is_none()
                {
                    let reason = format!(
                        "{} failed calls in a row; the last: {error}",
                        health.failures_in_a_row
                    );
                    tracing::error!(scenario = %self.manifest.id, plugin_version = %self.version, %reason, "plugin quarantined");
                    health.quarantine = Some(Quarantine {
                        since: chrono::Utc::now(),
                        reason,
                    });
                }
            }
            Err(_) => {}
            Ok(_) => health.failures_in_a_row = 0,
        }
    }

    /// Whether the compiled code came from the compile cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cached
    }

    /// What `describe()` answered at load time.
    pub fn info(&self) -> &ScenarioInfo {
        &self.info
    }

    /// Runs `start` for a new case.
    pub async fn start(
        &self,
        case: &CaseContext,
        application: &str,
    ) -> Result<CallSuccess, CallFailure> {
        let span = tracing::info_span!(
            "plugin_call",
            call = "start",
            scenario = %self.manifest.id,
            plugin_version = %self.version,
            case_id = %case.id,
        );
        let wit_case = to_wit_case(case);
        let application = application.to_owned();
        self.call(&case.id, async |plugin, store| {
            plugin
                .onething_scenario_scenario()
                .call_start(store, &wit_case, &application)
                .await
        })
        .instrument(span)
        .await
    }

    /// Runs `on-event` for an existing case.
    pub async fn on_event(
        &self,
        case: &CaseContext,
        event: &CaseEvent,
    ) -> Result<CallSuccess, CallFailure> {
        let span = tracing::info_span!(
            "plugin_call",
            call = event.name(),
            scenario = %self.manifest.id,
            plugin_version = %self.version,
            case_id = %case.id,
        );
        let wit_case = to_wit_case(case);
        let wit_event = to_wit_event(event);
        self.call(&case.id, async |plugin, store| {
            plugin
                .onething_scenario_scenario()
                .call_on_event(store, &wit_case, &wit_event)
                .await
        })
        .instrument(span)
        .await
    }

    async fn describe(&self) -> Result<ScenarioInfo, CallFailure> {
        let mut store = self.new_store(self.new_state(Phase::Describe, ""));
        let plugin = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| self.failure(e, store.data_mut()))?;
        match plugin
            .onething_scenario_scenario()
            .call_describe(&mut store)
            .await
        {
            Ok(info) => Ok(from_wit_info(info)),
            Err(e) => Err(self.failure(e, store.data_mut())),
        }
    }

    fn new_state(&self, phase: Phase, case_id: &str) -> HostState {
        HostState::new(
            CallIdentity {
                manifest: self.manifest.clone(),
                case_id: case_id.to_owned(),
                phase,
                metrics: self.metrics.clone(),
            },
            self.limits.clone(),
            self.storage.clone(),
            self.memory_bytes,
            Instant::now() + Duration::from_millis(u64::from(self.deadline_ms)),
        )
    }

    fn new_store(&self, state: HostState) -> Store<HostState> {
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limiter);
        // Check the deadline at every epoch tick, yielding to other tasks in
        // between so that a spinning plugin cannot hog a worker thread.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                // tokio's own yield defers the wake-up until the runtime has
                // polled its I/O and timers, so a spinning plugin cannot
                // delay other connections or timeouts on its worker.
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
        store
    }

    /// Runs one export in a fresh instance and turns its answer into an
    /// outcome or a typed failure.
    async fn call<F>(&self, case_id: &str, export: F) -> Result<CallSuccess, CallFailure>
    where
        F: AsyncFnOnce(
            &Plugin,
            &mut Store<HostState>,
        ) -> wasmtime::Result<Result<wit::Outcome, wit::Error>>,
    {
        // At most `max_concurrent` calls of this plugin at once, and all
        // calls in flight within the host's memory budget; both waits share
        // the queue timeout.
        let queued = Instant::now() + self.queue_timeout;
        let admitted = tokio::time::timeout_at(queued.into(), async {
            let slot = self.slots.acquire().await.ok()?;
            let memory = self
                .memory_budget
                .acquire_many(self.reserve_mib)
                .await
                .ok()?;
            Some((slot, memory))
        })
        .await;
        let _admitted = match admitted {
            Ok(Some(admitted)) => admitted,
            _ => {
                self.metrics.record_failure(FailureKind::Unavailable);
                let why = if self.slots.available_permits() == 0 {
                    format!("its {} call slots are taken", self.max_concurrent)
                } else {
                    format!(
                        "the host's memory budget for calls in flight (limits.max_calls_memory_mib) has no room for its {} MiB",
                        self.reserve_mib
                    )
                };
                return Err(CallFailure {
                    error: PluginError::Busy {
                        plugin: self.manifest.id.clone(),
                        why,
                    },
                    effects: Effects::default(),
                });
            }
        };
        let _reserved = Reserved::new(&self.host_metrics, self.reserve_mib);
        let started = Instant::now();
        let answer = self.call_inner(case_id, export).await;
        self.metrics.record_call(started.elapsed());
        self.note_health(&answer);
        if let Err(failure) = &answer {
            self.metrics.record_failure(match &failure.error {
                PluginError::Scenario(_) => FailureKind::Refused,
                PluginError::Timeout { .. } => FailureKind::Timeout,
                PluginError::OutOfMemory { .. } => FailureKind::Memory,
                PluginError::Trap(_) => FailureKind::Trap,
                PluginError::InvalidAnswer(_) => FailureKind::InvalidAnswer,
                PluginError::BoundExceeded(_) => FailureKind::BoundExceeded,
                PluginError::Unavailable(_) | PluginError::Busy { .. } => FailureKind::Unavailable,
            });
        }
        answer
    }

    async fn call_inner<F>(&self, case_id: &str, export: F) -> Result<CallSuccess, CallFailure>
    where
        F: AsyncFnOnce(
            &Plugin,
            &mut Store<HostState>,
        ) -> wasmtime::Result<Result<wit::Outcome, wit::Error>>,
    {
        let mut store = self.new_store(self.new_state(Phase::Case, case_id));
        let plugin = match self.pre.instantiate_async(&mut store).await {
            Ok(plugin) => plugin,
            Err(e) => return Err(self.failure(e, store.data_mut())),
        };
        let answer = export(&plugin, &mut store).await;
        let state = store.data_mut();
        if state.log_dropped > 0 {
            tracing::warn!(
                dropped = state.log_dropped,
                "plugin log lines over the per-call limit were dropped"
            );
        }
        let effects = std::mem::take(&mut state.effects);
        if !effects.denied.is_empty() {
            // Once per call, however often it tried.
            let attempts: u32 = effects.denied.iter().map(|d| d.attempts).sum();
            let targets: Vec<&str> = effects.denied.iter().map(|d| d.target.as_str()).collect();
            tracing::warn!(attempts, ?targets, "ungranted reads or dispatches denied");
        }
        if let Some(bound) = state.poisoned.take() {
            // Whatever it answered after crossing a bound, the call fails.
            tracing::warn!(code = "plugin_bound_exceeded", %bound, "plugin call failed");
            return Err(CallFailure {
                error: PluginError::BoundExceeded(bound),
                effects,
            });
        }
        let spent = state.spent;
        match answer {
            Ok(Ok(outcome)) => match self.check_outcome(outcome, spent) {
                Ok(outcome) => Ok(CallSuccess { outcome, effects }),
                Err(error) => Err(CallFailure { error, effects }),
            },
            Ok(Err(error)) => Err(CallFailure {
                error: PluginError::Scenario(from_wit_error(error, self.limits.max_message_bytes)),
                effects,
            }),
            Err(e) => {
                state.effects = effects;
                Err(self.failure(e, state))
            }
        }
    }

    fn check_outcome(&self, outcome: wit::Outcome, spent: usize) -> Result<Outcome, PluginError> {
        check_state(&outcome.state, self.limits.max_plugin_json_bytes)?;
        if outcome.message.len() > self.limits.max_message_bytes {
            return Err(PluginError::InvalidAnswer(format!(
                "its message is {} bytes; at most {} are allowed (limits.max_message_bytes)",
                outcome.message.len(),
                self.limits.max_message_bytes
            )));
        }
        let total = spent
            .saturating_add(state::stored_len(&outcome.state))
            .saturating_add(state::stored_len(&outcome.message).saturating_mul(2));
        let budget = self.limits.max_call_effect_bytes;
        if total > budget {
            return Err(PluginError::BoundExceeded(format!(
                "the bytes of this call's effects, state and message are {total}; at most {budget} are allowed (limits.max_call_effect_bytes)"
            )));
        }
        Ok(Outcome {
            status: from_wit_status(outcome.status),
            state: outcome.state,
            message: outcome.message,
        })
    }

    /// Classifies a wasmtime error by type, never by message.
    fn failure(&self, error: wasmtime::Error, state: &mut HostState) -> CallFailure {
        let effects = std::mem::take(&mut state.effects);
        let kind = if error.is::<DeadlineExceeded>() || error.root_cause().is::<DeadlineExceeded>()
        {
            PluginError::Timeout {
                deadline_ms: self.deadline_ms,
            }
        } else if state.limiter.exceeded {
            PluginError::OutOfMemory {
                limit_mib: self.memory_mib,
            }
        } else if let Some(trap) = error
            .downcast_ref::<Trap>()
            .or_else(|| error.root_cause().downcast_ref::<Trap>())
        {
            match trap {
                Trap::Interrupt => PluginError::Timeout {
                    deadline_ms: self.deadline_ms,
                },
                other => PluginError::Trap(other.to_string()),
            }
        } else {
            PluginError::Unavailable(format!("{}", error.root_cause()))
        };
        tracing::warn!(code = kind.code(), error = %kind, cause = %error.root_cause(), "plugin call failed");
        CallFailure {
            error: kind,
            effects,
        }
    }
}

/// Checks the state a plugin handed back: JSON, and not too large. (Public
/// for the fuzz targets in `fuzz/`.)
pub fn check_state(state: &str, max_bytes: usize) -> Result<(), PluginError> {
    if state.len() > max_bytes {
        return Err(PluginError::InvalidAnswer(format!(
            "its state is {} bytes; at most {max_bytes} are allowed",
            state.len()
        )));
    }
    // A full parse, not `IgnoredAny`: skipping a value accepts numbers no
    // JSON reader can hold (`1E11111111`), which the `plugin_state` fuzz
    // target found; the state must be JSON for whoever reads it next.
    serde_json::from_str::<serde_json::Value>(state)
        .map(|_| ())
        .map_err(|e| PluginError::InvalidAnswer(format!("its state is not JSON: {e}")))
}

fn to_wit_case(case: &CaseContext) -> wit::CaseInfo {
    wit::CaseInfo {
        id: case.id.clone(),
        scenario: case.scenario.clone(),
        applicant: case.applicant.clone(),
        state: case.state.clone(),
    }
}

fn to_wit_event(event: &CaseEvent) -> wit::CaseEvent {
    match event.clone() {
        CaseEvent::ItemCompleted {
            item_id,
            department,
            task,
            result,
        } => wit::CaseEvent::ItemCompleted(wit::ItemCompletion {
            item_id,
            department,
            task,
            result,
        }),
        CaseEvent::ItemRejected {
            item_id,
            department,
            task,
            reason,
        } => wit::CaseEvent::ItemRejected(wit::ItemRejection {
            item_id,
            department,
            task,
            reason,
        }),
        CaseEvent::ItemOverdue {
            item_id,
            department,
            task,
        } => wit::CaseEvent::ItemOverdue(wit::ItemOverdue {
            item_id,
            department,
            task,
        }),
        CaseEvent::Supplement(material) => wit::CaseEvent::Supplement(material),
    }
}

fn from_wit_status(status: wit::CaseStatus) -> CaseStatus {
    match status {
        wit::CaseStatus::Submitted => CaseStatus::Submitted,
        wit::CaseStatus::InProgress => CaseStatus::InProgress,
        wit::CaseStatus::AwaitingCitizen => CaseStatus::AwaitingCitizen,
        wit::CaseStatus::Completed => CaseStatus::Completed,
        wit::CaseStatus::Rejected => CaseStatus::Rejected,
    }
}

/// The scenario's error, its message cut to `max` bytes: it is kept on the
/// case's record and shown to the applicant, so it is bounded like an
/// outcome's message (a refusal stays a refusal, not a plugin fault).
fn from_wit_error(error: wit::Error, max: usize) -> ScenarioError {
    let cut = |m: String| {
        if m.len() <= max {
            return m;
        }
        let mut cut = log::truncate(&m, max.saturating_sub(3)).to_owned();
        cut.push('…');
        cut
    };
    match error {
        wit::Error::Denied(m) => ScenarioError::Denied(cut(m)),
        wit::Error::NotFound(m) => ScenarioError::NotFound(cut(m)),
        wit::Error::Invalid(m) => ScenarioError::Invalid(cut(m)),
        wit::Error::Unavailable(m) => ScenarioError::Unavailable(cut(m)),
    }
}

fn from_wit_info(info: wit::Info) -> ScenarioInfo {
    ScenarioInfo {
        id: info.id,
        title: info.title,
        description: info.description,
        departments: info.departments,
        fields: info
            .fields
            .into_iter()
            .map(|f| FieldSpec {
                name: f.name,
                kind: match f.kind {
                    wit::FieldKind::Text => FieldKind::Text,
                    wit::FieldKind::Number => FieldKind::Number,
                    wit::FieldKind::Boolean => FieldKind::Boolean,
                    wit::FieldKind::Date => FieldKind::Date,
                    wit::FieldKind::Choice(choices) => FieldKind::Choice { choices },
                },
                required: f.required,
                description: f.description,
            })
            .collect(),
    }
}

impl wit::Host for HostState {}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Whatever a plugin hands back as its state, the host answers:
        /// accepted if and only if it is JSON within the size limit.
        #[test]
        fn any_state_is_accepted_only_as_bounded_json(state in ".{0,200}", max in 0usize..300) {
            let is_json = serde_json::from_str::<serde_json::Value>(&state).is_ok();
            let accepted = check_state(&state, max).is_ok();
            proptest::prop_assert_eq!(accepted, is_json && state.len() <= max);
        }

        /// JSON-shaped states of any depth are judged the same way.
        #[test]
        fn json_states_are_accepted(value in json_value()) {
            let text = value.to_string();
            proptest::prop_assert!(check_state(&text, usize::MAX).is_ok());
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            ".{0,20}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(".{0,8}", inner, 0..8)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
