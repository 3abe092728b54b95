//! The host's configuration: one TOML file, every key optional.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! data_dir = "./data"
//! plugins_dir = "./dist/plugins"
//! demo_data = true              # load the demo datasets into an empty data dir
//! demo_plugins = true           # seed plugins_dir, signed with demo keys (README)
//! timezone_offset_hours = 8     # local time for working-day deadlines
//! holidays_file = "holidays.txt"  # days off and worked weekend days (calendar.rs)
//! deadline_check_interval_ms = 5000
//! admin_token = "change-me"     # bearer token for /v1/admin/…
//!
//! [identity]                    # the platform's identity provider (identity.rs)
//! issuer = "https://id.example.gov.cn"
//! public_key = "…64 hex digits: its ed25519 public key…"
//! leeway_s = 60                 # clock skew allowed on exp/nbf
//!
//! [limits]                      # see limits.rs for what each one bounds
//! max_body_bytes = 1048576
//! max_plugin_memory_mib = 512
//! max_plugin_deadline_ms = 30000
//! epoch_tick_ms = 5
//! max_instances = 1000
//! keep_resident_bytes = 2097152
//! max_concurrent_calls_per_plugin = 32
//! plugin_queue_timeout_ms = 1000
//! max_header_bytes = 65536
//! quarantine_after_failures = 5
//! header_read_timeout_ms = 10000
//! max_log_lines_per_call = 100
//! max_plugin_json_bytes = 1048576
//! max_package_bytes = 83886080
//! body_read_timeout_ms = 30000
//! ```
//!
//! Command-line flags override the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::limits;

/// Everything the host needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the HTTP API listens. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Where cases, items, datasets and the audit log are kept. Default `./data`.
    pub data_dir: PathBuf,
    /// A directory with one sub-directory per plugin, each holding
    /// `onething.toml` and `plugin.wasm` (what `scripts/build-plugins.sh`
    /// lays out), seeded at start when `demo_plugins` is on. Default
    /// `./dist/plugins`.
    pub plugins_dir: PathBuf,
    /// Whether to seed `plugins_dir` at start: each plugin is packed,
    /// signed with its department's **demo key** (derived from a public
    /// seed), and published through the registry's checks after the demo
    /// key is trusted and the department's ceiling raised to what the
    /// plugin asks. Default `true` (the quick start); set `false` in
    /// production, where only packages signed by trusted department keys
    /// come in, through the admin API.
    pub demo_plugins: bool,
    /// Whether to load the demo datasets on the first start of an empty data
    /// dir. Default `true`.
    pub demo_data: bool,
    /// The local time zone, in hours east of UTC, for working-day deadlines.
    /// Default 8 (China Standard Time).
    pub timezone_offset_hours: i32,
    /// A holiday calendar (see `calendar.rs` for the format). Default none:
    /// only weekends are days off.
    pub holidays_file: Option<PathBuf>,
    /// How often the host looks for items whose time ran out, in ms.
    /// Default 5000.
    pub deadline_check_interval_ms: u64,
    /// The shared (break-glass) bearer token for `/v1/admin/…`; actions
    /// taken with it are audited as `admin`. Operators with their own
    /// `role: operator` tokens from `[identity]` need none. Default none:
    /// without it or `[identity]`, the admin API answers 401.
    pub admin_token: Option<String>,
    /// The identity provider whose tokens identify citizens, departments,
    /// devices and operators. Default none: in demo mode the development
    /// provider (`onething token issue`; never for operators), otherwise
    /// every identified route answers 401 until one is set.
    pub identity: Option<IdentityConfig>,
    /// The host's limits.
    pub limits: LimitsConfig,
}

/// The `[identity]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// The tokens' `iss`.
    pub issuer: String,
    /// The provider's ed25519 public key, 64 hex digits.
    pub public_key: String,
    /// Seconds of clock skew allowed on `exp` and `nbf`. Default 60.
    #[serde(default = "default_leeway")]
    pub leeway_s: u64,
}

fn default_leeway() -> u64 {
    60
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            plugins_dir: PathBuf::from("./dist/plugins"),
            demo_data: true,
            demo_plugins: true,
            timezone_offset_hours: 8,
            holidays_file: None,
            deadline_check_interval_ms: 5_000,
            admin_token: None,
            identity: None,
            limits: LimitsConfig::default(),
        }
    }
}

/// The `[limits]` table; each default is documented in `limits.rs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most memory a manifest may ask for, in MiB.
    pub max_plugin_memory_mib: u32,
    /// Longest deadline a manifest may ask for, in ms.
    pub max_plugin_deadline_ms: u32,
    /// Epoch ticker period, in ms.
    pub epoch_tick_ms: u64,
    /// Plugin instances that may exist at once.
    pub max_instances: u32,
    /// Bytes of a freed instance slot kept mapped and reset in place.
    pub keep_resident_bytes: usize,
    /// Calls of one plugin that may run at once.
    pub max_concurrent_calls_per_plugin: u32,
    /// How long a call waits for a slot of its plugin, in ms.
    pub plugin_queue_timeout_ms: u64,
    /// Largest request head, in bytes.
    pub max_header_bytes: usize,
    /// Failed calls in a row that quarantine a plugin version.
    pub quarantine_after_failures: u32,
    /// Time a client has to send its headers, in ms.
    pub header_read_timeout_ms: u64,
    /// Log lines one plugin call may write.
    pub max_log_lines_per_call: u32,
    /// Largest JSON a plugin may hand back, in bytes.
    pub max_plugin_json_bytes: usize,
    /// Largest plugin package the admin API takes, in bytes.
    pub max_package_bytes: usize,
    /// Time a client has to send its body once the headers are in, in ms.
    pub body_read_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: limits::MAX_BODY_BYTES,
            max_plugin_memory_mib: limits::MAX_PLUGIN_MEMORY_MIB,
            max_plugin_deadline_ms: limits::MAX_PLUGIN_DEADLINE_MS,
            epoch_tick_ms: limits::EPOCH_TICK.as_millis() as u64,
            max_instances: limits::MAX_INSTANCES,
            keep_resident_bytes: limits::KEEP_RESIDENT_BYTES,
            max_concurrent_calls_per_plugin: limits::MAX_CONCURRENT_CALLS_PER_PLUGIN,
            plugin_queue_timeout_ms: limits::PLUGIN_QUEUE_TIMEOUT.as_millis() as u64,
            max_header_bytes: limits::MAX_HEADER_BYTES,
            quarantine_after_failures: limits::QUARANTINE_AFTER_FAILURES,
            header_read_timeout_ms: limits::HEADER_READ_TIMEOUT.as_millis() as u64,
            max_log_lines_per_call: limits::MAX_LOG_LINES_PER_CALL,
            max_plugin_json_bytes: limits::MAX_PLUGIN_JSON_BYTES,
            max_package_bytes: limits::MAX_PACKAGE_BYTES,
            body_read_timeout_ms: limits::BODY_READ_TIMEOUT.as_millis() as u64,
        }
    }
}

impl LimitsConfig {
    /// The epoch tick as a duration (at least 1 ms).
    pub fn epoch_tick(&self) -> Duration {
        Duration::from_millis(self.epoch_tick_ms.max(1))
    }
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("config file {path} is not valid: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: toml::de::Error,
    },
}

impl Config {
    /// Reads a config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_optional() {
        let config: Config = toml::from_str("").unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.limits.max_body_bytes, 1024 * 1024);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<Config>("lisen = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn limits_can_be_overridden() {
        let config: Config = toml::from_str("[limits]\nmax_body_bytes = 10\n").unwrap();
        assert_eq!(config.limits.max_body_bytes, 10);
        assert_eq!(config.limits.max_instances, limits::MAX_INSTANCES);
    }
}
