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
//! [limits]                      # every key and default: docs/limits.md (limits.rs)
//! max_body_bytes = 1048576
//!
//! [testing]                     # tests and acceptance checks only
//! manual_clock = false          # POST /v1/admin/clock moves the host's clock
//! ```
//!
//! Command-line flags override the file.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use crate::limits::LimitsConfig;

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
    /// Default 5000; below 10 counts as 10 ([`Config::deadline_check_interval`]).
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
    /// Switches for tests and acceptance checks only.
    pub testing: TestingConfig,
}

/// The `[testing]` table: never set in production.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestingConfig {
    /// A clock that operators move forward with `POST /v1/admin/clock`
    /// (audited), so that deadlines and escalations can be checked from
    /// outside the process without waiting. Default false: the route is
    /// refused and the host runs on the system clock.
    pub manual_clock: bool,
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
            testing: TestingConfig::default(),
        }
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

/// The shortest interval between two rounds of the deadline loop (ms): a
/// round reads an index range, so a smaller setting would only spin.
pub const MIN_DEADLINE_CHECK_INTERVAL_MS: u64 = 10;

impl Config {
    /// How often the deadline loop runs: `deadline_check_interval_ms`, at
    /// least [`MIN_DEADLINE_CHECK_INTERVAL_MS`].
    pub fn deadline_check_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            self.deadline_check_interval_ms
                .max(MIN_DEADLINE_CHECK_INTERVAL_MS),
        )
    }

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
        assert_eq!(
            config.limits.max_instances,
            LimitsConfig::DEFAULT.max_instances
        );
    }
}
