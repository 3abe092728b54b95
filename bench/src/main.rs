//! `loadcompare`: one bounded load run on loopback against, in the same run,
//! a raw hyper hello-world, onething taking applications for a trivial
//! scenario (the `echo` fixture), onething taking newborn applications (each
//! durable before its 201), and `wasmtime serve` with a hello-world
//! wasi:http component when a `wasmtime` CLI is on PATH. Prints req/s, p50
//! and p99 for each, and the ratios between them; then, for onething, what
//! its storage writer (the serial part of every durable write) did during
//! each run, from the host's `/metrics`.
//!
//! `--baseline PATH` runs the two onething rounds first against an earlier
//! `onething` binary (built from the commit before a change), then against
//! this one, and prints this binary's figures as ratios of the baseline's:
//! the way to show a change costs nothing, in one run on one machine.
//!
//! The load generator is wrk (Debian's package). Every run is bounded in time
//! (`--seconds`) and in requests (`--max-requests`, enforced per wrk thread
//! from its Lua script) and stops by itself. Every server binds 127.0.0.1.
//!
//! Run it with `scripts/loadcompare.sh`, which builds what it needs.

use std::io::{BufRead, BufReader, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};
use serde::Deserialize;

/// One target of the comparison.
struct Target {
    name: String,
    url: String,
    method: &'static str,
    body: Option<String>,
    /// A bearer token to send (onething's citizens have one).
    token: Option<String>,
}

/// What the wrk script reports.
#[derive(Debug, Deserialize)]
struct Figures {
    requests: u64,
    duration_us: u64,
    p50_us: u64,
    p99_us: u64,
    non2xx: u64,
    socket_errors: u64,
}

impl Figures {
    fn rps(&self) -> f64 {
        self.requests as f64 / (self.duration_us.max(1) as f64 / 1e6)
    }
}

struct Settings {
    seconds: u64,
    connections: u64,
    threads: u64,
    max_requests: u64,
}

/// A child process that is killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd`, waits for a `http://127.0.0.1:PORT` on its stdout.
fn start(name: &'static str, mut cmd: Command) -> anyhow::Result<(Server, String)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {name}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let Some(url) = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
    else {
        bail!("{name} did not say where it listens: {line:?}");
    };
    Ok((server, url.trim_end_matches('/').to_owned()))
}

fn wrk_script(dir: &Path, target: &Target, per_thread: u64) -> anyhow::Result<PathBuf> {
    let body = match &target.body {
        Some(body) => {
            format!("wrk.body = [[{body}]]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n")
        }
        None => String::new(),
    };
    let auth = match &target.token {
        Some(token) => format!("wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n"),
        None => String::new(),
    };
    let script = format!(
        r#"wrk.method = "{method}"
{body}{auth}local max = {per_thread}
local count = 0
local non2xx = 0
response = function(status, headers, body)
  count = count + 1
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
  if count >= max then wrk.thread:stop() end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"non2xx":%d,"socket_errors":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"#,
        method = target.method,
    );
    let path = dir.join(format!("{}.lua", target.name.replace(' ', "-")));
    std::fs::write(&path, script)?;
    Ok(path)
}

fn run_wrk(dir: &Path, target: &Target, s: &Settings) -> anyhow::Result<Figures> {
    let per_thread = s.max_requests.div_ceil(s.threads).max(1);
    let script = wrk_script(dir, target, per_thread)?;
    let out = Command::new("wrk")
        .arg(format!("-t{}", s.threads))
        .arg(format!("-c{}", s.connections))
        .arg(format!("-d{}s", s.seconds))
        .arg("--timeout")
        .arg("5s")
        .arg("-s")
        .arg(&script)
        .arg(&target.url)
        .output()
        .context("cannot run wrk: install it with `apt-get install -y wrk`")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("wrk printed no figures: {stdout}"))?;
    Ok(serde_json::from_str(json)?)
}

/// The storage writer's counters, as `/metrics` gives them.
#[derive(Debug, Default, Clone, Copy)]
struct WriterCounters {
    writes: f64,
    batches: f64,
    busy_s: f64,
    flushes: f64,
    flush_s: f64,
}

impl WriterCounters {
    /// Reads them from onething's `/metrics` at `base` (on 127.0.0.1).
    fn scrape(base: &str) -> anyhow::Result<Self> {
        let addr = base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr)?;
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        let value = |name: &str| -> anyhow::Result<f64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .with_context(|| format!("no {name} in /metrics"))?
                .trim()
                .parse()
                .with_context(|| format!("{name} is not a number"))
        };
        Ok(WriterCounters {
            writes: value("onething_storage_writes_total")?,
            batches: value("onething_storage_batches_total")?,
            busy_s: value("onething_storage_writer_busy_seconds_total")?,
            flushes: value("onething_storage_flushes_total")?,
            flush_s: value("onething_storage_flush_seconds_total")?,
        })
    }

    /// What happened between `self` and `later`.
    fn until(self, later: Self) -> Self {
        WriterCounters {
            writes: later.writes - self.writes,
            batches: later.batches - self.batches,
            busy_s: later.busy_s - self.busy_s,
            flushes: later.flushes - self.flushes,
            flush_s: later.flush_s - self.flush_s,
        }
    }
}

/// Runs wrk against a onething target and reads what its storage writer
/// did meanwhile.
fn run_onething(
    dir: &Path,
    base: &str,
    target: &Target,
    s: &Settings,
) -> anyhow::Result<(Figures, WriterCounters)> {
    let before = WriterCounters::scrape(base)?;
    let figures = run_wrk(dir, target, s)?;
    let during = before.until(WriterCounters::scrape(base)?);
    Ok((figures, during))
}

fn arg(args: &[String], name: &str, default: u64) -> anyhow::Result<u64> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .context("missing value")?
            .parse()
            .with_context(|| format!("{name} takes a number")),
        None => Ok(default),
    }
}

/// Starts the onething binary `binary` on `plugins` (a data dir of its own
/// under `dir`) and runs the echo and newborn rounds against it, named
/// `{label} echo apply` and `{label} newborn apply`.
fn onething_rounds(
    binary: &Path,
    label: &'static str,
    dir: &Path,
    plugins: &Path,
    s: &Settings,
    results: &mut Vec<(String, Figures)>,
    writer: &mut Vec<(String, f64, WriterCounters)>,
) -> anyhow::Result<()> {
    let mut cmd = Command::new(binary);
    cmd.env("RUST_LOG", "warn")
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.join(format!("data-{label}")))
        .arg("--plugins-dir")
        .arg(plugins);
    let (_server, url) = start(label, cmd)?;
    // A citizen's token from the development identity provider that a
    // host in demo mode trusts (verified once, then remembered).
    let issued = Command::new(binary)
        .args(["token", "issue", "--citizen", "500103199001010018"])
        .output()
        .with_context(|| format!("cannot run {} token issue", binary.display()))?;
    let token = Some(String::from_utf8_lossy(&issued.stdout).trim().to_owned());
    let echo = Target {
        name: format!("{label} echo apply"),
        url: format!("{url}/v1/scenarios/echo/cases"),
        method: "POST",
        body: Some(r#"{"note":"hi"}"#.into()),
        token: token.clone(),
    };
    let newborn = Target {
        name: format!("{label} newborn apply"),
        url: format!("{url}/v1/scenarios/newborn/cases"),
        method: "POST",
        body: Some(
            r#"{"certificate_no":"Q500000001","child_name":"王小明","applicant_id":"500103199001010018","household_of":"father","phone":"13800000001"}"#
                .into(),
        ),
        token,
    };
    for target in [echo, newborn] {
        let (figures, during) = run_onething(dir, &url, &target, s)?;
        writer.push((
            target.name.clone(),
            figures.duration_us as f64 / 1e6,
            during,
        ));
        results.push((target.name, figures));
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let s = Settings {
        seconds: arg(&args, "--seconds", 10)?,
        connections: arg(&args, "--connections", 64)?,
        threads: arg(&args, "--threads", 2)?,
        max_requests: arg(&args, "--max-requests", 2_000_000)?,
    };
    let baseline = match args.iter().position(|a| a == "--baseline") {
        Some(i) => Some(PathBuf::from(
            args.get(i + 1)
                .context("--baseline takes the path of an earlier onething binary")?,
        )),
        None => None,
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let release = root.join("target/release");
    let dist = root.join("dist");
    let work = tempfile::tempdir()?;

    // onething with the echo fixture and newborn, demo data loaded.
    let plugins = work.path().join("plugins");
    for (kind, id) in [("fixtures", "echo"), ("plugins", "newborn")] {
        let to = plugins.join(id);
        std::fs::create_dir_all(&to)?;
        for file in ["onething.toml", "plugin.wasm"] {
            std::fs::copy(dist.join(kind).join(id).join(file), to.join(file)).with_context(
                || format!("{kind}/{id} is not built: run scripts/build-plugins.sh"),
            )?;
        }
    }

    let mut results: Vec<(String, Figures)> = Vec::new();
    let mut writer: Vec<(String, f64, WriterCounters)> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();

    {
        let (_server, url) = start("raw hyper", Command::new(release.join("hello-hyper")))?;
        let target = Target {
            name: "raw hyper hello".into(),
            url: format!("{url}/"),
            method: "GET",
            body: None,
            token: None,
        };
        let figures = run_wrk(work.path(), &target, &s)?;
        results.push((target.name, figures));
    }
    // With `--baseline PATH`, an earlier onething binary runs the same
    // rounds first, so that a change is compared with what it replaces in
    // the same run on the same (noisy) machine.
    if let Some(baseline) = baseline.as_deref() {
        onething_rounds(
            baseline,
            "baseline",
            work.path(),
            &plugins,
            &s,
            &mut results,
            &mut writer,
        )?;
    }
    onething_rounds(
        &release.join("onething"),
        "onething",
        work.path(),
        &plugins,
        &s,
        &mut results,
        &mut writer,
    )?;
    let hello_http = dist.join("bench/hello-http.wasm");
    if Command::new("wasmtime").arg("--version").output().is_ok() && hello_http.is_file() {
        // wasmtime serve has no "port 0": pick a free port first.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut child = Command::new("wasmtime")
            .args(["serve", "-Scli", "--addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(&hello_http)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        std::thread::sleep(std::time::Duration::from_secs(2));
        let target = Target {
            name: "wasmtime serve".into(),
            url: format!("http://127.0.0.1:{port}/"),
            method: "GET",
            body: None,
            token: None,
        };
        let figures = run_wrk(work.path(), &target, &s);
        let _ = child.kill();
        let _ = child.wait();
        results.push((target.name, figures?));
    } else {
        skipped.push(
            "wasmtime serve: no `wasmtime` on PATH or no dist/bench/hello-http.wasm \
             (cargo install wasmtime-cli --locked; see docs/performance.md)"
                .into(),
        );
    }

    println!(
        "loopback, wrk -t{} -c{} -d{}s, at most {} requests per target\n",
        s.threads, s.connections, s.seconds, s.max_requests
    );
    println!(
        "{:<24} {:>10} {:>10} {:>10} {:>8} {:>8} {:>10}",
        "target", "req/s", "p50 ms", "p99 ms", "non-2xx", "errors", "vs hyper"
    );
    let hyper = results.first().map(|(_, f)| f.rps()).unwrap_or(1.0);
    for (name, f) in &results {
        println!(
            "{:<24} {:>10.0} {:>10.2} {:>10.2} {:>8} {:>8} {:>9.1}%",
            name,
            f.rps(),
            f.p50_us as f64 / 1000.0,
            f.p99_us as f64 / 1000.0,
            f.non2xx,
            f.socket_errors,
            100.0 * f.rps() / hyper
        );
    }
    for round in ["echo apply", "newborn apply"] {
        if let (Some(new), Some(old)) = (
            results
                .iter()
                .find(|(n, _)| *n == format!("onething {round}")),
            results
                .iter()
                .find(|(n, _)| *n == format!("baseline {round}")),
        ) {
            println!(
                "\n{round}: this binary / baseline: {:.3}x req/s, {:.3}x p99",
                new.1.rps() / old.1.rps(),
                new.1.p99_us as f64 / (old.1.p99_us as f64).max(1.0)
            );
        }
    }
    if let (Some(echo), Some(wt)) = (
        results.iter().find(|(n, _)| *n == "onething echo apply"),
        results.iter().find(|(n, _)| *n == "wasmtime serve"),
    ) {
        println!(
            "\nonething echo / wasmtime serve: {:.2}x",
            echo.1.rps() / wt.1.rps()
        );
    }
    println!(
        "\nonething's storage writer during each run (busy near 100% = the durable rate's ceiling):"
    );
    println!(
        "{:<24} {:>12} {:>14} {:>10} {:>12} {:>10}",
        "target", "writes/batch", "batches/flush", "busy", "µs/write", "flush ms"
    );
    for (name, seconds, w) in &writer {
        println!(
            "{:<24} {:>12.1} {:>14.2} {:>9.0}% {:>12.1} {:>10.2}",
            name,
            w.writes / w.batches.max(1.0),
            w.batches / w.flushes.max(1.0),
            100.0 * w.busy_s / seconds.max(1e-9),
            1e6 * w.busy_s / w.writes.max(1.0),
            1e3 * w.flush_s / w.flushes.max(1.0)
        );
    }
    for s in skipped {
        println!("skipped: {s}");
    }
    Ok(())
}
