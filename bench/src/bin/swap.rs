//! `swap`: how long a hot swap takes, seen from outside.
//!
//! Starts the release `onething serve` on loopback (no demo plugins, an
//! admin token), trusts a fresh department key, uploads and activates v1
//! of the `versioned` fixture, and keeps 4 clients applying in a loop.
//! Then, several rounds of: activate v2 (or v1) and time (a) the activate
//! request and (b) from sending it to the first application answered by
//! the new version. Also times the first upload of v2 (a compile) and a
//! restart on the same data dir (from the compile cache). Bounded: each
//! round stops after 10 s; the clients stop when the rounds end.
//!
//! Run: `scripts/build-plugins.sh && cargo build --release -p onething-cli
//! -p onething-bench && target/release/swap`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use onething_registry::{Package, SigningKeyFile};
use serde_json::{Value, json};

const TOKEN: &str = "swap-bench-token";
const ROUNDS: usize = 10;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the host; returns it, its base URL and the seconds to listening.
fn serve(data: &Path) -> anyhow::Result<(Serving, String, f64)> {
    let started = Instant::now();
    let mut child = Command::new(repo().join("target/release/onething"))
        .env("RUST_LOG", "warn")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--no-demo-data", "--admin-token", TOKEN])
        .arg("--data-dir")
        .arg(data)
        // Demo mode with nothing to seed: the development identity
        // provider is trusted, and `onething token issue` mints for it.
        .arg("--plugins-dir")
        .arg(data.with_file_name("no-plugins"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start target/release/onething (build it first)")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let elapsed = started.elapsed().as_secs_f64();
    let base = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    if !base.starts_with("http://127.0.0.1:") {
        bail!("unexpected first line: {line}");
    }
    Ok((Serving(child), base, elapsed))
}

fn package(build: &str, key: &SigningKeyFile) -> anyhow::Result<Vec<u8>> {
    let dir = repo()
        .join("dist/fixtures")
        .join(format!("versioned-{build}"));
    let manifest = std::fs::read_to_string(dir.join("onething.toml"))?;
    let component = std::fs::read(dir.join("plugin.wasm"))?;
    let mut package = Package::new(manifest, component)?;
    key.sign(&mut package);
    Ok(package.encode())
}

async fn admin(
    client: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Vec<u8>,
) -> anyhow::Result<Value> {
    let response = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let value: Value = response.json().await?;
    if !status.is_success() {
        bail!("{path}: {status} {value}");
    }
    Ok(value)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let (server, base, _) = serve(&data)?;
    let client = reqwest::Client::new();
    let key = SigningKeyFile::generate("test")?;
    let post = reqwest::Method::POST;
    admin(
        &client,
        &base,
        post.clone(),
        "/v1/admin/keys",
        key.public().to_toml().into_bytes(),
    )
    .await?;
    admin(
        &client,
        &base,
        reqwest::Method::PUT,
        "/v1/admin/grants/test",
        json!({"dispatch": ["test"]}).to_string().into_bytes(),
    )
    .await?;
    admin(
        &client,
        &base,
        post.clone(),
        "/v1/admin/plugins?activate=true",
        package("v1", &key)?,
    )
    .await?;
    let upload = Instant::now();
    admin(
        &client,
        &base,
        post.clone(),
        "/v1/admin/plugins",
        package("v2", &key)?,
    )
    .await?;
    let upload_ms = upload.elapsed().as_secs_f64() * 1000.0;

    let issued = Command::new(repo().join("target/release/onething"))
        .args(["token", "issue", "--citizen", "swap-bench"])
        .output()
        .context("cannot run onething token issue")?;
    let citizen = String::from_utf8_lossy(&issued.stdout).trim().to_owned();

    // Clients applying in a loop; each answer's time and build.
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, String)>();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (client, base, stop, tx) = (client.clone(), base.clone(), stop.clone(), tx.clone());
        let citizen = citizen.clone();
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = client
                    .post(format!("{base}/v1/scenarios/versioned/cases"))
                    .bearer_auth(&citizen)
                    .json(&json!({}))
                    .send()
                    .await;
                let Ok(answer) = answer else { continue };
                if answer.status().as_u16() != 201 {
                    eprintln!("FAILED request: {}", answer.status());
                }
                let body: Value = answer.json().await.unwrap_or_default();
                let message = body["message"].as_str().unwrap_or_default().to_owned();
                let _ = tx.send((Instant::now(), message));
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut activate_ms = Vec::new();
    let mut first_answer_ms = Vec::new();
    for round in 0..ROUNDS {
        let (version, build) = if round % 2 == 0 {
            ("2.0.0", "v2")
        } else {
            ("1.0.0", "v1")
        };
        while rx.try_recv().is_ok() {}
        let sent = Instant::now();
        admin(
            &client,
            &base,
            post.clone(),
            "/v1/admin/plugins/versioned/activate",
            json!({ "version": version }).to_string().into_bytes(),
        )
        .await?;
        activate_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
        let wanted = format!("started by {build}");
        let deadline = sent + Duration::from_secs(10);
        loop {
            let next = tokio::time::timeout_at(deadline.into(), rx.recv()).await;
            match next {
                Ok(Some((at, message))) if message == wanted && at >= sent => {
                    first_answer_ms.push(at.duration_since(sent).as_secs_f64() * 1000.0);
                    break;
                }
                Ok(Some(_)) => {}
                _ => bail!("round {round}: no answer from {build} within 10 s"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    drop(server);
    let (_server, _, restart_s) = serve(&data)?;

    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    println!("first upload of v2 (verify + compile):   {upload_ms:>8.1} ms");
    println!(
        "activate request (median of {ROUNDS}):       {:>8.2} ms  (max {:.2})",
        median(&mut activate_ms.clone()),
        activate_ms.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "activate sent -> first answer by it:     {:>8.2} ms  (max {:.2})",
        median(&mut first_answer_ms.clone()),
        first_answer_ms.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "restart with 2 versions (compile cache): {:>8.3} s",
        restart_s
    );
    Ok(())
}
