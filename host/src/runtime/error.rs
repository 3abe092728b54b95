//! Why the runtime could not load a plugin ([`LoadError`]), and why a call
//! failed ([`PluginError`], with the scenario's own refusals as
//! [`ScenarioError`]); each failure has one stable code.

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
