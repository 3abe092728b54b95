//! `onething places import`: a place tree and its offices (JSON Lines),
//! all or nothing, into a stopped host's data dir or through a running
//! host's admin API (`POST /v1/admin/places`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use onething_host::places::Places;

use crate::remote::{self, Body, Remote};

/// The actor the audit log records for an offline import.
const OFFLINE_ACTOR: &str = "cli";

/// `onething places …`.
#[derive(Subcommand)]
pub enum PlacesCommand {
    /// Import places and offices from a JSON Lines file, all or nothing
    /// (a refusal names the line). Offline into --data-dir (the host
    /// stopped), or with --server through the admin API.
    Import {
        /// The file: one place `{"id","name","level","parent"?}` or office
        /// `{"office":{"department","place"}}` per line.
        file: PathBuf,
        /// Data directory of a stopped host [default: ./data].
        #[arg(long, conflicts_with = "server")]
        data_dir: Option<PathBuf>,
        /// A running host's base URL (imports through its admin API).
        #[arg(long, requires = "admin_token")]
        server: Option<String>,
        /// The operators' admin token (with --server).
        #[arg(long, env = "ONETHING_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
    },
}

/// Runs a `places` command.
pub async fn places(command: PlacesCommand) -> anyhow::Result<()> {
    let PlacesCommand::Import {
        file,
        data_dir,
        server,
        admin_token,
    } = command;
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let (places, offices, lists, unchanged) = match server {
        Some(server) => {
            let remote = Remote {
                server,
                token: admin_token.unwrap_or_default(),
            };
            let answer = remote::call(
                &remote,
                reqwest::Method::POST,
                "/v1/admin/places",
                Body::Bytes(text.into_bytes()),
            )
            .await
            .with_context(|| format!("import of {} failed", file.display()))?;
            let count = |field: &str| answer[field].as_u64().unwrap_or(0);
            (
                count("places"),
                count("offices"),
                count("task_lists"),
                count("unchanged"),
            )
        }
        None => {
            let storage = crate::open_offline(data_dir)?;
            let tree = Places::load(Arc::new(storage)).await?;
            let summary = tree
                .import(&text, OFFLINE_ACTOR)
                .await
                .with_context(|| format!("import of {} failed", file.display()))?;
            (
                summary.places as u64,
                summary.offices as u64,
                summary.task_lists as u64,
                summary.unchanged as u64,
            )
        }
    };
    println!(
        "imported {places} places, {offices} offices and {lists} task lists ({unchanged} lines unchanged)"
    );
    Ok(())
}
