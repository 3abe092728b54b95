//! `restart`: how long `onething serve` takes to start with many plugins,
//! cold (compiling every one) and warm (from the compile cache), and how
//! much memory it holds once serving.
//!
//! It lays out `--plugins N` versions of the `echo` fixture (each its own
//! plugin directory and compiled artifact), starts the release binary twice
//! on the same data dir, and times each start from spawn to the
//! "listening" line. Bounded: each start is given 10 minutes, then killed.
//!
//! Run: `scripts/build-plugins.sh && cargo build --release -p onething-cli
//! -p onething-bench && target/release/restart --plugins 1000`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

fn rss_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

/// Starts the host, waits for it to listen, returns (seconds, RSS MiB).
fn start_once(binary: &PathBuf, data: &PathBuf, plugins: &PathBuf) -> anyhow::Result<(f64, u64)> {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env("RUST_LOG", "warn")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data)
        .arg("--plugins-dir")
        .arg(plugins)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start onething")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(600));
    let elapsed = started.elapsed().as_secs_f64();
    // Let the process settle, then read its memory.
    std::thread::sleep(Duration::from_millis(500));
    let rss = rss_mib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    match line {
        Ok(line) if line.contains("listening") => Ok((elapsed, rss)),
        Ok(line) => bail!("onething did not start: {line:?}"),
        Err(_) => bail!("onething did not start within 10 minutes"),
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let count: u64 = match args.iter().position(|a| a == "--plugins") {
        Some(i) => args
            .get(i + 1)
            .context("--plugins takes a number")?
            .parse()?,
        None => 1000,
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let binary = root.join("target/release/onething");
    let echo = root.join("dist/fixtures/echo");
    let work = tempfile::tempdir()?;
    let plugins = work.path().join("plugins");
    let manifest = std::fs::read_to_string(echo.join("onething.toml"))
        .context("dist/fixtures/echo is not built: run scripts/build-plugins.sh")?;
    let wasm = std::fs::read(echo.join("plugin.wasm"))?;
    for n in 0..count {
        let dir = plugins.join(format!("echo-{n:04}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("onething.toml"),
            manifest.replace("version = \"0.1.0\"", &format!("version = \"1.0.{n}\"")),
        )?;
        // A custom section right after the preamble makes each component's
        // bytes, and so its artifact, distinct, as separate plugins' would be.
        let name = b"onething-bench";
        let payload = n.to_le_bytes();
        let section_len = 1 + name.len() + payload.len();
        let mut bytes = wasm[..8].to_vec();
        bytes.push(0); // custom section id
        bytes.push(section_len as u8);
        bytes.push(name.len() as u8);
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(&payload);
        bytes.extend_from_slice(&wasm[8..]);
        std::fs::write(dir.join("plugin.wasm"), bytes)?;
    }
    let data = work.path().join("data");
    let (cold, cold_rss) = start_once(&binary, &data, &plugins)?;
    let (warm, warm_rss) = start_once(&binary, &data, &plugins)?;
    println!("{count} plugins");
    println!("cold start (compile all):   {cold:>7.2} s   RSS {cold_rss} MiB");
    println!("restart (compile cache):    {warm:>7.2} s   RSS {warm_rss} MiB");
    Ok(())
}
