//! `onething data import`: a department's dataset (JSON Lines), all or
//! nothing, into a stopped host's data dir (adding to the dataset, or with
//! `--replace` replacing it) or through a running host's admin API
//! (`PUT /v1/admin/datasets/{department}/{name}`, which always replaces it,
//! with no restart).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use onething_host::datasets;

use crate::remote::{self, Body, Remote};

/// The actor the audit log records for an offline replace.
const OFFLINE_ACTOR: &str = "cli";

/// `onething data …`.
#[derive(Subcommand)]
pub enum DataCommand {
    /// Import a JSON Lines file into DEPARTMENT/NAME, all or nothing (a
    /// refusal names the line). With --server, through a running host's
    /// admin API: the dataset is replaced by the file, atomically. Without,
    /// offline into --data-dir (the host stopped): the records are added,
    /// or with --replace the dataset is replaced.
    Import {
        /// The dataset, as DEPARTMENT/NAME (e.g. health/birth-certificates).
        dataset: String,
        /// The JSON Lines file: one JSON object per line.
        file: PathBuf,
        /// The field of each object that is its key.
        #[arg(long)]
        key: String,
        /// Data directory of a stopped host [default: ./data].
        #[arg(long, conflicts_with = "server")]
        data_dir: Option<PathBuf>,
        /// Offline: replace the dataset (remove the records the file does
        /// not have) rather than add to it. With --server a refresh always
        /// replaces.
        #[arg(long, conflicts_with = "server")]
        replace: bool,
        /// A running host's base URL (replaces the dataset through its
        /// admin API, no restart).
        #[arg(long, requires = "admin_token")]
        server: Option<String>,
        /// The operators' admin token or an operator's token (with --server).
        #[arg(long, env = "ONETHING_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
    },
}

/// Runs a `data` command.
pub async fn data(command: DataCommand) -> anyhow::Result<()> {
    let DataCommand::Import {
        dataset,
        file,
        key,
        data_dir,
        replace,
        server,
        admin_token,
    } = command;
    datasets::check_dataset_name(&dataset)?;
    match server {
        Some(server) => {
            if key.is_empty()
                || !key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            {
                bail!(
                    "--key `{key}`: with --server the key field must be letters, digits, `_`, `-` or `.`"
                );
            }
            let body =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let remote = Remote {
                server,
                token: admin_token.unwrap_or_default(),
            };
            let answer = remote::call(
                &remote,
                reqwest::Method::PUT,
                &format!("/v1/admin/datasets/{dataset}?key={key}"),
                Body::Bytes(body),
            )
            .await
            .with_context(|| format!("refresh of {dataset} from {} failed", file.display()))?;
            let count = answer["records"].as_u64().unwrap_or(0);
            println!("replaced {dataset}: it now holds the {count} records of the file");
        }
        None => {
            let storage = crate::open_offline(data_dir)?;
            let failed = || format!("import of {} into {dataset} failed", file.display());
            if replace {
                let count = datasets::replace_file(&storage, &dataset, &file, &key, OFFLINE_ACTOR)
                    .await
                    .with_context(failed)?;
                println!("replaced {dataset}: it now holds the {count} records of the file");
            } else {
                let count = datasets::import_file(&storage, &dataset, &file, &key)
                    .await
                    .with_context(failed)?;
                println!("imported {count} records into {dataset}");
            }
        }
    }
    Ok(())
}
