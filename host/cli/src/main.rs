//! `onething`: the host binary. It parses the command line and wires the
//! library's rooms together; everything else lives in `onething_host`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: the request path allocates and frees
/// many small buffers across threads (hyper, serde_json, sled); glibc's
/// allocator took ~15% of the CPU under load (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod data;
mod pack;
mod places;
mod remote;
mod scaffold;
mod tools;

use onething_host::audit;
use onething_host::config::Config;
use onething_host::server::Server;
use onething_host::storage::sled::SledStorage;

/// onething: a WebAssembly plugin host for "one thing, done once" services.
#[derive(Parser)]
#[command(name = "onething", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API with the plugins in the plugins dir.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Data directory [default: ./data].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Config file (TOML); flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Plugins directory [default: ./dist/plugins].
        #[arg(long)]
        plugins_dir: Option<PathBuf>,
        /// Do not load the demo datasets into an empty data dir.
        #[arg(long)]
        no_demo_data: bool,
        /// Do not seed the plugins dir with demo keys (only signed
        /// packages, through the admin API).
        #[arg(long)]
        no_demo_plugins: bool,
        /// The operators' admin token (overrides the config file's).
        #[arg(long, env = "ONETHING_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
    },
    /// Plugin life cycle: new, build, pack, sign, deploy, list, activate,
    /// rollback, deactivate, watch.
    Plugin {
        #[command(subcommand)]
        command: tools::PluginCommand,
    },
    /// Department signing keys: make them; trust and revoke them on a host.
    Keys {
        #[command(subcommand)]
        command: tools::KeysCommand,
    },
    /// Development tokens for citizens, departments, devices and operators,
    /// and the development provider's `[identity]` block.
    Token {
        #[command(subcommand)]
        command: tools::TokenCommand,
    },
    /// What each department's plugins may be granted (ceilings).
    Grants {
        #[command(subcommand)]
        command: tools::GrantsCommand,
    },
    /// Department datasets.
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// The place tree and the departments' offices.
    Places {
        #[command(subcommand)]
        command: places::PlacesCommand,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The operations centre's counters (一屏统揽).
    Ops {
        #[command(subcommand)]
        command: OpsCommand,
    },
}

#[derive(Subcommand)]
enum OpsCommand {
    /// Count every case and item of a stopped host's data dir again and
    /// replace the overview's counters with the result (or, with --check,
    /// only say how many differ; exit 1 if any).
    Recount {
        /// Data directory [default: ./data].
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Only compare; write nothing.
        #[arg(long)]
        check: bool,
        /// The host's `timezone_offset_hours` (the months of the monthly
        /// figures) [default: 8, the host's default].
        #[arg(long, default_value_t = 8, allow_negative_numbers = true)]
        utc_offset_hours: i32,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every entry's hash and link; name the first broken one.
    Verify {
        /// Data directory [default: ./data].
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    disable_transparent_huge_pages();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(cli))
}

/// Turns transparent huge pages off for this process. With them on, the
/// first touch of fresh allocator memory (sled's copied tree nodes and IO
/// buffers, mostly on the storage writer thread) made the kernel zero a
/// whole 2 MiB page: 15–20% of the writer's time, and the writer is the
/// serial part of every durable application (docs/performance.md).
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::warn!(error = %e, "cannot turn transparent huge pages off; durable writes will be slower");
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            config,
            plugins_dir,
            no_demo_data,
            no_demo_plugins,
            admin_token,
        } => {
            let mut config = match config {
                Some(path) => Config::from_file(&path)?,
                None => Config::default(),
            };
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if let Some(dir) = data_dir {
                config.data_dir = dir;
            }
            if let Some(dir) = plugins_dir {
                config.plugins_dir = dir;
            }
            if no_demo_data {
                config.demo_data = false;
            }
            if no_demo_plugins {
                config.demo_plugins = false;
            }
            if admin_token.is_some() {
                config.admin_token = admin_token;
            }
            if !config.plugins_dir.is_dir()
                && let Some(found) = plugins_beside_binary()
            {
                tracing::info!(dir = %found.display(), "using the example plugins built beside this binary");
                config.plugins_dir = found;
            }
            let plugins_dir = config.plugins_dir.clone();
            let server = Server::start(config).await?;
            if server.plugin_errors().is_empty() && !plugins_dir.is_dir() {
                tracing::warn!(dir = %plugins_dir.display(), "no plugins dir: run scripts/build-plugins.sh");
            }
            println!("onething listening on http://{}", server.addr());
            shutdown_signal().await?;
            tracing::info!("shutting down");
            server.shutdown().await;
            Ok(())
        }
        Command::Data { command } => data::data(command).await,
        Command::Plugin { command } => tools::plugin(command).await,
        Command::Keys { command } => tools::keys(command).await,
        Command::Grants { command } => tools::grants(command).await,
        Command::Token { command } => tools::token(command),
        Command::Places { command } => places::places(command).await,
        Command::Audit {
            command: AuditCommand::Verify { data_dir },
        } => {
            let storage = open_existing(&data_dir)?;
            let verified = audit::verify(&storage).await?;
            println!(
                "audit chain verified: {} entries, head {}",
                verified.entries, verified.head
            );
            Ok(())
        }
        Command::Ops {
            command:
                OpsCommand::Recount {
                    data_dir,
                    check,
                    utc_offset_hours,
                },
        } => recount(&data_dir, check, utc_offset_hours).await,
    }
}

/// `onething ops recount`.
async fn recount(
    data_dir: &std::path::Path,
    check: bool,
    utc_offset_hours: i32,
) -> anyhow::Result<()> {
    use onething_host::storage::CounterStore;
    existing_data_dir(data_dir)?;
    let storage = SledStorage::open_in(data_dir, utc_offset_hours * 60).with_context(|| {
        format!(
            "cannot open the data dir {} (is a host running on it? stop it first)",
            data_dir.display()
        )
    })?;
    let report = storage.recount(check).await?;
    let counted = format!(
        "{} cases and {} items: {} counters",
        report.cases, report.items, report.counters
    );
    match (check, report.differing) {
        (true, 0) => println!("counters match: {counted}"),
        (true, n) => {
            println!(
                "{n} counters differ from a recount of {counted}; run without --check to rebuild them"
            );
            std::process::exit(1);
        }
        (false, n) => println!("recounted {counted} ({n} had differed)"),
    }
    Ok(())
}

/// `dist/plugins` of the checkout this binary was built in
/// (`target/{debug,release}/onething` → `dist/plugins`), so that the example
/// plugins are found when `onething serve` is started from another directory.
fn plugins_beside_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe
        .parent()?
        .parent()?
        .parent()?
        .join("dist")
        .join("plugins");
    dir.is_dir().then_some(dir)
}

/// Opens a data dir that must already exist (verification never creates one).
fn open_existing(data_dir: &std::path::Path) -> anyhow::Result<SledStorage> {
    existing_data_dir(data_dir)?;
    SledStorage::open(data_dir).with_context(|| {
        format!(
            "cannot open the data dir {} (is a host running on it? stop it first)",
            data_dir.display()
        )
    })
}

/// Refuses a directory that holds no data dir.
fn existing_data_dir(data_dir: &std::path::Path) -> anyhow::Result<()> {
    if !data_dir.join("db").is_dir() {
        anyhow::bail!(
            "{} is not a onething data dir (no db inside)",
            data_dir.display()
        );
    }
    Ok(())
}

/// Opens (creating it if needed) the data dir of a stopped host for an
/// offline import (`./data` by default); a running host keeps it locked,
/// which the error says, pointing at `--server`.
fn open_offline(data_dir: Option<std::path::PathBuf>) -> anyhow::Result<SledStorage> {
    let data_dir = data_dir.unwrap_or_else(|| std::path::PathBuf::from("./data"));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    SledStorage::open(&data_dir).with_context(|| {
        format!(
            "cannot open the data dir {} (is a host running on it? stop it first, or use --server)",
            data_dir.display()
        )
    })
}

/// Waits for Ctrl-C or SIGTERM (what service managers send).
async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot wait for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
