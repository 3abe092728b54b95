//! The author's and operator's commands of the `onething` binary: keys,
//! tokens, grants and packages, and the admin API's commands (deploy, list,
//! activate, rollback, trust) sent through [`crate::remote`].

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use onething_registry::{Package, PublicKeyFile, SigningKeyFile};
use serde_json::{Value, json};

use crate::pack::pack;
use crate::remote::{Body, Remote, call};

/// `onething keys ...`
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make a department's ed25519 key pair: DEPARTMENT.key (secret) and
    /// DEPARTMENT.pub (for the operator).
    New {
        /// The department the key signs for.
        #[arg(long)]
        department: String,
        /// Where to write the two files.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Write the department's public DEMO key instead of a random one
        /// (what a host with demo plugins on trusts; never for production).
        #[arg(long)]
        demo: bool,
    },
    /// Trust a department's public key (a .pub file) on a host.
    Trust {
        /// The .pub file.
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke a trusted key on a host.
    Revoke {
        /// The key id.
        key_id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the keys a host trusts (and has revoked).
    List {
        #[command(flatten)]
        remote: Remote,
    },
}

/// `onething token ...`
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Mint a token of the DEVELOPMENT identity provider, which a host in
    /// demo mode trusts (anyone can mint these: for the quick start and
    /// tests only).
    Issue {
        /// A citizen's id number: the token's holder applies as them.
        #[arg(long, group = "who")]
        citizen: Option<String>,
        /// A department id: alone, the token is the department itself (its
        /// top office); with --officer, the officer's department.
        #[arg(long)]
        department: Option<String>,
        /// An officer's id (e.g. a badge number): with --department D and
        /// --place P, the token is that officer's at D's office at P; they
        /// see the items of offices at P and below and act on their own
        /// office's.
        #[arg(long, group = "who")]
        officer: Option<String>,
        /// A device id: the token reports events.
        #[arg(long, group = "who")]
        device: Option<String>,
        /// An operator's name: the token opens the admin API of a host
        /// whose `[identity]` is this development provider's key (tests);
        /// a host in demo mode never takes it.
        #[arg(long, group = "who")]
        operator: Option<String>,
        /// The place the caller is at (a place id, e.g.
        /// cq/yubei/longxi/jinlong/g07): a device's place of installation,
        /// which its events' cases take, the place of an officer's office,
        /// or a leader's place (with --operator: the token reads
        /// /v1/ops/… for that place and below, and opens no admin route).
        #[arg(long)]
        place: Option<String>,
        /// How long the token is valid.
        #[arg(long, default_value_t = 8)]
        ttl_hours: i64,
    },
    /// Print the DEVELOPMENT identity provider's `[identity]` block, to
    /// put in the config file of a host that is not in demo mode so that
    /// `token issue` tokens work on it. Anyone can mint its tokens,
    /// operators' too: only for a host that only you can reach, never in
    /// production.
    Provider,
}

/// The `[identity]` block of the development provider, with the warning
/// that goes with it (TOML comments, so the block can be appended to a
/// config file as printed).
fn dev_provider_block() -> String {
    use onething_host::identity::{DEV_ISSUER, dev_public_key_hex};
    format!(
        "# The DEVELOPMENT identity provider (onething token issue). Its key is\n\
         # derived from a public seed: ANYONE can mint its tokens, operator tokens\n\
         # that open the admin API included. Only for a host that only you can\n\
         # reach (loopback, a throwaway data dir); never in production.\n\
         [identity]\n\
         issuer = \"{DEV_ISSUER}\"\n\
         public_key = \"{}\"\n\
         leeway_s = 60\n",
        dev_public_key_hex()
    )
}

/// Runs a `token` command.
pub fn token(command: TokenCommand) -> anyhow::Result<()> {
    use onething_host::identity::{Role, issue_dev_at, issue_dev_officer};
    match command {
        TokenCommand::Issue {
            citizen,
            department,
            officer,
            device,
            operator,
            place,
            ttl_hours,
        } => {
            if let Some(department) = &department
                && !onething_registry::is_name(department)
            {
                bail!("`{department}` is not a valid department id");
            }
            let (role, subject) = match (citizen, &department, officer.clone(), device, operator) {
                (Some(id), None, None, None, None) => (Role::Citizen, id),
                (None, Some(id), officer, None, None) => {
                    (Role::Department, officer.unwrap_or_else(|| id.clone()))
                }
                (None, None, Some(_), None, None) => {
                    bail!("an officer belongs to a department: add --department D")
                }
                (None, None, None, Some(id), None) => (Role::Device, id),
                (None, None, None, None, Some(name)) => (Role::Operator, name),
                _ => bail!(
                    "say who the token is for: --citizen ID, --department D, --officer ID --department D --place P, --device ID or --operator NAME"
                ),
            };
            if subject.trim().is_empty() || ttl_hours < 1 {
                bail!("the subject must not be empty and --ttl-hours must be at least 1");
            }
            if let Some(place) = &place {
                if !matches!(role, Role::Device | Role::Operator) && officer.is_none() {
                    bail!(
                        "--place is for a device's token (--device ID), an officer's (--officer ID --department D) or a leader's (--operator NAME)"
                    );
                }
                if !place.split('/').all(onething_host::places::is_slug) {
                    bail!("`{place}` is not a place id (slugs joined by `/`, e.g. cq/yubei)");
                }
            }
            let now = chrono::Utc::now().timestamp();
            let ttl = ttl_hours * 3600;
            let token = match (&officer, &department) {
                (Some(officer), Some(department)) => {
                    issue_dev_officer(officer, department, place.as_deref(), now, ttl)
                }
                _ => issue_dev_at(role, &subject, place.as_deref(), now, ttl),
            };
            println!("{token}");
            Ok(())
        }
        TokenCommand::Provider => {
            print!("{}", dev_provider_block());
            Ok(())
        }
    }
}

/// `onething grants ...`
#[derive(Subcommand)]
pub enum GrantsCommand {
    /// Set the most a department's plugins may be granted.
    Set {
        /// The department.
        department: String,
        /// A dataset (`DEPT/NAME`, `DEPT/*` or `*`); repeat for more.
        #[arg(long = "dataset")]
        datasets: Vec<String>,
        /// A department it may dispatch to (or `*`); repeat for more.
        #[arg(long = "dispatch")]
        dispatch: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Every department's ceiling.
    List {
        #[command(flatten)]
        remote: Remote,
    },
}

/// `onething plugin ...`
#[derive(Subcommand)]
pub enum PluginCommand {
    /// Make a new plugin crate that builds and passes its own test.
    New(crate::scaffold::NewArgs),
    /// Build a plugin crate for wasm32-wasip2 into DIR/dist/.
    Build {
        /// The plugin crate.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Pack a manifest and a component into one package file (unsigned).
    Pack {
        /// A directory with onething.toml and the component (plugin.wasm,
        /// or dist/plugin.wasm as `plugin build` leaves it).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The component, if not in DIR.
        #[arg(long)]
        component: Option<PathBuf>,
        /// The package file to write [default: ID-VERSION.otpkg].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Sign a package with a department key (in place unless --out).
    Sign {
        /// The package file.
        package: PathBuf,
        /// The department's secret key file (DEPARTMENT.key).
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signed package.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Upload a signed package to a host.
    Deploy {
        /// The package file.
        package: PathBuf,
        /// Make it the active version at once.
        #[arg(long)]
        activate: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// List a host's plugins, versions, active versions and open cases.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Make a stored version the active one.
    Activate {
        /// The plugin id.
        id: String,
        /// The version.
        version: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Return a plugin to the version active before.
    Rollback {
        /// The plugin id.
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Stop a plugin from taking new cases (open cases go on).
    Deactivate {
        /// The plugin id.
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Rebuild, sign, deploy and activate a plugin each time its source
    /// changes (development against a local host).
    Watch(crate::scaffold::WatchArgs),
}

/// Runs a `keys` command.
pub async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::New {
            department,
            out,
            demo,
        } => {
            let key = if demo {
                SigningKeyFile::demo(&department)?
            } else {
                SigningKeyFile::generate(&department)?
            };
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let secret = out.join(format!("{department}.key"));
            let public = out.join(format!("{department}.pub"));
            if secret.exists() {
                bail!(
                    "{} exists already: refusing to overwrite a key",
                    secret.display()
                );
            }
            write_secret(&secret, &key.to_toml())?;
            std::fs::write(&public, key.public().to_toml())
                .with_context(|| format!("cannot write {}", public.display()))?;
            println!(
                "key {} for department {department}\n  secret: {} (keep it; never share it)\n  public: {} (give it to the platform operator)",
                key.key_id(),
                secret.display(),
                public.display()
            );
            Ok(())
        }
        KeysCommand::Trust { file, remote } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            PublicKeyFile::parse(&text).with_context(|| format!("{}", file.display()))?;
            let answer = call(
                &remote,
                reqwest::Method::POST,
                "/v1/admin/keys",
                Body::Bytes(text.into_bytes()),
            )
            .await?;
            print_json(&answer);
            Ok(())
        }
        KeysCommand::Revoke { key_id, remote } => {
            let path = format!("/v1/admin/keys/{key_id}");
            print_json(&call(&remote, reqwest::Method::DELETE, &path, Body::None).await?);
            Ok(())
        }
        KeysCommand::List { remote } => {
            print_json(&call(&remote, reqwest::Method::GET, "/v1/admin/keys", Body::None).await?);
            Ok(())
        }
    }
}

/// Runs a `grants` command.
pub async fn grants(command: GrantsCommand) -> anyhow::Result<()> {
    match command {
        GrantsCommand::Set {
            department,
            datasets,
            dispatch,
            remote,
        } => {
            let path = format!("/v1/admin/grants/{department}");
            let body = json!({"datasets": datasets, "dispatch": dispatch});
            print_json(&call(&remote, reqwest::Method::PUT, &path, Body::Json(body)).await?);
            Ok(())
        }
        GrantsCommand::List { remote } => {
            print_json(
                &call(
                    &remote,
                    reqwest::Method::GET,
                    "/v1/admin/grants",
                    Body::None,
                )
                .await?,
            );
            Ok(())
        }
    }
}

/// Runs a `plugin` command.
pub async fn plugin(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::New(args) => crate::scaffold::new(args),
        PluginCommand::Build { dir } => {
            let wasm = crate::scaffold::build(&dir)?;
            println!("built {}", wasm.display());
            Ok(())
        }
        PluginCommand::Pack {
            dir,
            component,
            out,
        } => {
            let package = pack(&dir, component.as_deref())?;
            let out = out.unwrap_or_else(|| default_package_name(&package));
            std::fs::write(&out, package.encode())
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "packed {}@{} ({} bytes of component) into {} (unsigned: run `onething plugin sign`)",
                package.manifest.id,
                package.manifest.version,
                package.component.len(),
                out.display()
            );
            Ok(())
        }
        PluginCommand::Sign { package, key, out } => {
            let bytes = std::fs::read(&package)
                .with_context(|| format!("cannot read {}", package.display()))?;
            let mut decoded =
                Package::decode(&bytes).with_context(|| format!("{}", package.display()))?;
            let key_text = std::fs::read_to_string(&key)
                .with_context(|| format!("cannot read {}", key.display()))?;
            let key = SigningKeyFile::parse(&key_text)?;
            if key.department != decoded.manifest.department {
                bail!(
                    "the package belongs to department `{}`; key `{}` signs for `{}`",
                    decoded.manifest.department,
                    key.key_id(),
                    key.department
                );
            }
            key.sign(&mut decoded);
            let out = out.unwrap_or(package);
            std::fs::write(&out, decoded.encode())
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "signed {}@{} with key {} (digest {}) → {}",
                decoded.manifest.id,
                decoded.manifest.version,
                key.key_id(),
                decoded.digest_hex(),
                out.display()
            );
            Ok(())
        }
        PluginCommand::Deploy {
            package,
            activate,
            remote,
        } => {
            let bytes = std::fs::read(&package)
                .with_context(|| format!("cannot read {}", package.display()))?;
            let path = if activate {
                "/v1/admin/plugins?activate=true"
            } else {
                "/v1/admin/plugins"
            };
            print_json(&call(&remote, reqwest::Method::POST, path, Body::Bytes(bytes)).await?);
            Ok(())
        }
        PluginCommand::List { remote } => {
            let answer = call(
                &remote,
                reqwest::Method::GET,
                "/v1/admin/plugins",
                Body::None,
            )
            .await?;
            print_plugins(&answer);
            Ok(())
        }
        PluginCommand::Activate {
            id,
            version,
            remote,
        } => {
            let path = format!("/v1/admin/plugins/{id}/activate");
            let body = Body::Json(json!({ "version": version }));
            print_json(&call(&remote, reqwest::Method::POST, &path, body).await?);
            Ok(())
        }
        PluginCommand::Rollback { id, remote } => {
            let path = format!("/v1/admin/plugins/{id}/rollback");
            print_json(&call(&remote, reqwest::Method::POST, &path, Body::None).await?);
            Ok(())
        }
        PluginCommand::Deactivate { id, remote } => {
            let path = format!("/v1/admin/plugins/{id}/deactivate");
            print_json(&call(&remote, reqwest::Method::POST, &path, Body::None).await?);
            Ok(())
        }
        PluginCommand::Watch(args) => crate::scaffold::watch(args).await,
    }
}

fn default_package_name(package: &Package) -> PathBuf {
    PathBuf::from(format!(
        "{}-{}.otpkg",
        package.manifest.id, package.manifest.version
    ))
}

fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

fn print_plugins(answer: &Value) {
    print!("{}", plugins_table(answer));
}

/// The text of `plugin list`: each plugin, then one line per version, the
/// version column as wide as the longest version listed (a `-dev.<ms>`
/// build is 23 characters), so the columns after it line up.
fn plugins_table(answer: &Value) -> String {
    use std::fmt::Write as _;
    let empty = Vec::new();
    let plugins = answer["plugins"].as_array().unwrap_or(&empty);
    if plugins.is_empty() {
        return "no plugins stored\n".to_owned();
    }
    let versions = |plugin: &Value| plugin["versions"].as_array().cloned().unwrap_or_default();
    let width = plugins
        .iter()
        .flat_map(versions)
        .map(|v| v["version"].as_str().unwrap_or("?").chars().count())
        .max()
        .unwrap_or(0)
        .max(10);
    let mut out = String::new();
    for plugin in plugins {
        let _ = writeln!(
            out,
            "{}  (department {}, active {})",
            plugin["id"].as_str().unwrap_or("?"),
            plugin["department"].as_str().unwrap_or("?"),
            plugin["active_version"].as_str().unwrap_or("none")
        );
        for version in versions(plugin) {
            let _ = writeln!(
                out,
                "  {} {:<width$} open cases {:>5}  signed by {}  digest {}{}",
                if version["active"].as_bool() == Some(true) {
                    "*"
                } else {
                    " "
                },
                version["version"].as_str().unwrap_or("?"),
                version["open_cases"].as_u64().unwrap_or(0),
                version["signed_by"].as_str().unwrap_or("?"),
                version["digest"]
                    .as_str()
                    .map(|d| d.chars().take(12).collect::<String>())
                    .unwrap_or_else(|| "?".into()),
                if version["quarantine"].is_null() {
                    ""
                } else {
                    "  QUARANTINED"
                }
            );
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plugin_list_columns_line_up_with_long_dev_versions() {
        let version = |v: &str, active: bool| {
            serde_json::json!({"version": v, "active": active, "open_cases": 3,
                "signed_by": "3f9a0c1d2b4e5f60", "digest": "8c1e0000000000000000", "quarantine": null})
        };
        let answer = serde_json::json!({"plugins": [
            {"id": "retirement", "department": "hrss", "active_version": "0.1.0-dev.1764812345678",
             "versions": [version("0.1.0", false), version("0.1.0-dev.1764812345678", true)]},
            {"id": "newborn", "department": "health", "active_version": "0.2.0",
             "versions": [version("0.2.0", true)]},
        ]});
        let text = plugins_table(&answer);
        let columns: Vec<usize> = text
            .lines()
            .filter(|l| l.starts_with("  "))
            .map(|l| l.find("open cases").unwrap())
            .collect();
        assert_eq!(columns.len(), 3, "{text}");
        assert!(columns.iter().all(|c| *c == columns[0]), "{text}");
        assert!(
            text.contains("* 0.1.0-dev.1764812345678 open cases     3"),
            "{text}"
        );
        assert_eq!(
            plugins_table(&serde_json::json!({"plugins": []})),
            "no plugins stored\n"
        );
    }
}
