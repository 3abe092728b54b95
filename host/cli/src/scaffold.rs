//! `onething plugin new | build | watch`: from nothing to a plugin running
//! on a local host.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use clap::Args;
use onething_registry::{SigningKeyFile, is_name};

use crate::pack::pack;
use crate::remote::{Body, Remote, call};

/// `onething plugin new`
#[derive(Args)]
pub struct NewArgs {
    /// The plugin (scenario) id: lowercase letters, digits and `-`.
    name: String,
    /// The department that owns it.
    #[arg(long, default_value = "demo-department")]
    department: String,
    /// Where to create the crate (a directory NAME inside it).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// The onething SDK's directory [default: the sdk/ of the checkout
    /// this binary was built in].
    #[arg(long)]
    sdk: Option<PathBuf>,
}

/// `onething plugin watch`
#[derive(Args)]
pub struct WatchArgs {
    /// The plugin crate.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The department's secret key file; [default: its demo key, which a
    /// host with demo plugins on trusts once it has seeded a plugin of that
    /// department, or after `onething keys trust`].
    #[arg(long)]
    key: Option<PathBuf>,
    /// Build and deploy once, then stop.
    #[arg(long)]
    once: bool,
    /// How often to look for changes, in ms.
    #[arg(long, default_value_t = 500)]
    poll_ms: u64,
    #[command(flatten)]
    remote: Remote,
}

/// The SDK beside the binary: `target/{debug,release}/onething` → `sdk/`.
fn sdk_beside_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?.parent()?.join("sdk");
    dir.join("Cargo.toml").is_file().then_some(dir)
}

/// Creates the crate.
pub fn new(args: NewArgs) -> anyhow::Result<()> {
    if !is_name(&args.name) {
        bail!(
            "`{}` is not a valid plugin id: lowercase letters, digits and `-`, starting with a letter",
            args.name
        );
    }
    if !is_name(&args.department) {
        bail!("`{}` is not a valid department name", args.department);
    }
    let sdk = match args.sdk.or_else(sdk_beside_binary) {
        Some(sdk) => sdk
            .canonicalize()
            .with_context(|| format!("no SDK at {}", sdk.display()))?,
        None => bail!("cannot find the onething SDK: pass --sdk PATH/TO/onething/sdk"),
    };
    // The test kit of the same checkout: `sdk/../testkit`.
    let testkit = match sdk.parent().map(|p| p.join("testkit")) {
        Some(dir) if dir.join("Cargo.toml").is_file() => dir,
        _ => bail!(
            "no test kit beside the SDK at {} (expected ../testkit)",
            sdk.display()
        ),
    };
    let root = args.dir.join(&args.name);
    if root.exists() {
        bail!("{} exists already", root.display());
    }
    for sub in ["src", "tests"] {
        std::fs::create_dir_all(root.join(sub))
            .with_context(|| format!("cannot create {}", root.display()))?;
    }
    let name = &args.name;
    let department = &args.department;
    let crate_name = name.replace('-', "_");
    let files = [
        (
            "Cargo.toml",
            CARGO_TOML
                .replace("{name}", name)
                .replace("{sdk}", &sdk.display().to_string())
                .replace("{testkit}", &testkit.display().to_string()),
        ),
        (
            "onething.toml",
            MANIFEST
                .replace("{name}", name)
                .replace("{department}", department),
        ),
        (
            "src/lib.rs",
            LIB_RS
                .replace("{name}", name)
                .replace("{crate}", &crate_name)
                .replace("{department}", department),
        ),
        (
            "tests/kit.rs",
            KIT_RS
                .replace("{name}", name)
                .replace("{crate_department}", &department.replace('-', "_"))
                .replace("{department}", department),
        ),
        (
            "README.md",
            README
                .replace("{name}", name)
                .replace("{department}", department),
        ),
        (".gitignore", "/target\n/dist\n*.otpkg\n*.key\n".to_owned()),
    ];
    for (path, text) in files {
        let path = root.join(path);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "created plugin `{name}` in {}\n  cd {} && cargo test && onething plugin build",
        root.display(),
        root.display()
    );
    Ok(())
}

/// Builds the crate for wasm32-wasip2 (release) and copies the component to
/// DIR/dist/plugin.wasm, with the manifest beside it.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest_path = dir.join("Cargo.toml");
    let status = std::process::Command::new("cargo")
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(&manifest_path)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!(
            "cargo build failed for {} (is the target installed? `rustup target add wasm32-wasip2`)",
            dir.display()
        );
    }
    let metadata = std::process::Command::new("cargo")
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(&manifest_path)
        .output()
        .context("cannot run cargo metadata")?;
    let metadata: serde_json::Value =
        serde_json::from_slice(&metadata.stdout).context("cargo metadata printed no JSON")?;
    let target_dir = metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata has no target_directory")?;
    let package = metadata["packages"][0]["name"]
        .as_str()
        .context("cargo metadata lists no package")?
        .replace('-', "_");
    let built = target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{package}.wasm"));
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist).with_context(|| format!("cannot create {}", dist.display()))?;
    let out = dist.join("plugin.wasm");
    std::fs::copy(&built, &out)
        .with_context(|| format!("cannot copy {} to {}", built.display(), out.display()))?;
    // The manifest beside it: dist/ is a plugin directory as
    // `TestKit::load` and `--plugins-dir` take them.
    let manifest = dir.join("onething.toml");
    let copy = dist.join("onething.toml");
    std::fs::copy(&manifest, &copy)
        .with_context(|| format!("cannot copy {} to {}", manifest.display(), copy.display()))?;
    Ok(out)
}

fn newest_change(dir: &Path) -> SystemTime {
    fn walk(path: &Path, newest: &mut SystemTime) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if let Ok(modified) = meta.modified()
            && modified > *newest
        {
            *newest = modified;
        }
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(path)
        {
            for entry in entries.flatten() {
                walk(&entry.path(), newest);
            }
        }
    }
    let mut newest = SystemTime::UNIX_EPOCH;
    for part in ["src", "Cargo.toml", "onething.toml", "wit"] {
        walk(&dir.join(part), &mut newest);
    }
    newest
}

/// Rebuilds, packs with a development version (`X.Y.Z-dev.N`), signs,
/// deploys and activates, on every change.
pub async fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let mut last = None;
    loop {
        let changed = newest_change(&args.dir);
        if last != Some(changed) {
            last = Some(changed);
            match deploy_dev(&args).await {
                Ok(version) => println!("deployed and activated {version}"),
                Err(e) if !args.once => eprintln!("not deployed: {e:#}"),
                Err(e) => return Err(e),
            }
            if args.once {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(args.poll_ms.max(50))).await;
    }
}

async fn deploy_dev(args: &WatchArgs) -> anyhow::Result<String> {
    let wasm = build(&args.dir)?;
    let mut package = pack(&args.dir, Some(&wasm))?;
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let base = &package.manifest.version;
    let dev = format!("{}.{}.{}-dev.{stamp}", base.major, base.minor, base.patch);
    let text: String = package
        .manifest_text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("version") && line.contains('=') {
                format!("version = \"{dev}\"")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    package = onething_registry::Package::new(text, package.component)?;
    let key = match &args.key {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            SigningKeyFile::parse(&text)?
        }
        None => SigningKeyFile::demo(&package.manifest.department)?,
    };
    key.sign(&mut package);
    let answer = call(
        &args.remote,
        reqwest::Method::POST,
        "/v1/admin/plugins?activate=true",
        Body::Bytes(package.encode()),
    )
    .await?;
    Ok(format!(
        "{}@{}",
        answer["id"].as_str().unwrap_or("?"),
        answer["version"].as_str().unwrap_or("?")
    ))
}

const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
onething-sdk = { path = "{sdk}" }
serde = { version = "1", features = ["derive"] }
serde_json = "1"

[dev-dependencies]
# The kit tests (tests/kit.rs): the real component in an embedded host.
onething-testkit = { path = "{testkit}" }
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }

# Test builds: the kit's dependencies (wasmtime) a little optimised and
# without debug info, which keeps the first build's time and disk down.
[profile.dev]
debug = "line-tables-only"

[profile.dev.package."*"]
opt-level = 1
debug = false

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true

# A crate of its own, even when created inside another workspace.
[workspace]
"#;

const MANIFEST: &str = r#"# What the plugin is, may touch and may use (docs/plugin-authoring.md).
id = "{name}"
version = "0.1.0"
department = "{department}"
title = "{name}"
description = "A new onething scenario: one application, one work item for {department}."

[grants]
# Datasets it may read (DEPARTMENT/NAME) and departments it may dispatch to.
datasets = []
dispatch = ["{department}"]

[limits]
memory_mib = 64
deadline_ms = 2000
"#;

const LIB_RS: &str = r#"//! Scenario `{name}`: a citizen applies with a name and a request; one work
//! item goes to {department}; the case completes when {department} completes
//! the item, and waits for the citizen when it rejects it.

use onething_sdk::{
    Case, Due, Error, Event, Field, Info, Outcome, Scenario, WorkItem, dispatch, export_scenario,
};
use serde::{Deserialize, Serialize};

/// What the citizen fills in.
#[derive(Deserialize)]
pub struct Form {
    /// The applicant's name.
    pub name: String,
    /// What they ask for.
    pub request: String,
}

/// What the plugin remembers between calls.
#[derive(Serialize, Deserialize, Default)]
pub struct State {
    /// The work item sent to {department}.
    pub item: Option<String>,
}

/// Checks the form; the message says what is wrong.
pub fn check(form: &Form) -> Result<(), String> {
    if form.name.trim().is_empty() {
        return Err("name-missing: tell us your name".into());
    }
    if form.request.trim().len() < 3 {
        return Err("request-too-short: say in a few words what you need".into());
    }
    Ok(())
}

struct Plugin;

impl Scenario for Plugin {
    type Application = Form;
    type State = State;

    fn describe() -> Info {
        Info::from_manifest()
            .department("{department}")
            .field(Field::text("name").required().describe("Your name."))
            .field(Field::text("request").required().describe("What you need."))
    }

    fn start(_case: &Case, form: Form) -> Result<Outcome<State>, Error> {
        if let Err(reason) = check(&form) {
            return Ok(Outcome::rejected(State::default(), reason));
        }
        let payload = serde_json::json!({"name": form.name, "request": form.request});
        let item = dispatch::submit(WorkItem::new(
            "{department}",
            "handle-request",
            Due::WorkingDays(5),
            payload,
        ))?;
        Ok(Outcome::in_progress(
            State { item: Some(item) },
            "sent to {department}",
        ))
    }

    fn on_event(_case: &Case, state: State, event: Event) -> Result<Outcome<State>, Error> {
        Ok(match event {
            Event::ItemCompleted { .. } => Outcome::completed(state, "done"),
            Event::ItemRejected { reason, .. } => Outcome::awaiting_citizen(state, reason),
            _ => Outcome::in_progress(state, "waiting for {department}"),
        })
    }
}

export_scenario!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn form(name: &str, request: &str) -> Form {
        Form {
            name: name.into(),
            request: request.into(),
        }
    }

    #[test]
    fn a_complete_form_passes_and_gaps_are_named() {
        assert_eq!(check(&form("Li Lei", "a parking permit")), Ok(()));
        assert!(check(&form(" ", "a parking permit")).is_err_and(|e| e.starts_with("name-missing")));
        assert!(check(&form("Li Lei", "x")).is_err_and(|e| e.starts_with("request-too-short")));
    }

    #[test]
    fn it_describes_its_fields() {
        let info = Plugin::describe();
        // Id and title are the manifest's (onething.toml): the host fills them in.
        assert!(info.id.is_empty() && info.title.is_empty());
        assert_eq!(info.fields.len(), 2);
    }
}
"#;

const KIT_RS: &str = r#"//! Kit tests: the real component, built for wasm32-wasip2, in an embedded
//! host (onething-testkit), with {department} played by the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use onething_testkit::TestKit;
use onething_testkit::model::CaseStatus;
use serde_json::{Value, json};

/// The crate, with the component built once per test run as `onething
/// plugin build` does it (release, wasm32-wasip2) into `dist/plugin.wasm`.
/// `ONETHING_PLUGIN_TARGET_DIR`, if set, is the target dir of that build.
fn plugin() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--release", "--lib", "--target", "wasm32-wasip2"])
            .arg("--message-format=json-render-diagnostics")
            .current_dir(&dir)
            .stderr(Stdio::inherit());
        if let Some(target) = std::env::var_os("ONETHING_PLUGIN_TARGET_DIR") {
            cargo.arg("--target-dir").arg(target);
        }
        let out = cargo.output().expect("cargo runs");
        assert!(
            out.status.success(),
            "the plugin does not build for wasm32-wasip2 (`rustup target add wasm32-wasip2`?)"
        );
        let wasm = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|message| message["reason"] == "compiler-artifact")
            .flat_map(|message| message["filenames"].as_array().cloned().unwrap_or_default())
            .filter_map(|file| file.as_str().map(PathBuf::from))
            .find(|file| file.extension().is_some_and(|e| e == "wasm"))
            .expect("cargo names the component it built");
        std::fs::create_dir_all(dir.join("dist")).expect("dist/ can be made");
        std::fs::copy(&wasm, dir.join("dist/plugin.wasm")).expect("the component is copied");
        dir
    })
}

#[tokio::test]
async fn a_request_goes_to_{crate_department}_and_completes() {
    let kit = TestKit::load(plugin()).await.unwrap(); // onething.toml + dist/plugin.wasm
    let case = kit
        .apply(json!({"name": "Li Lei", "request": "a parking permit"}))
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::InProgress, "{}", case.message);
    let item = case.items_of("{department}")[0].id.clone();
    let case = kit.complete(&item, json!({"permit_no": "P-1"})).await.unwrap();
    assert_eq!(case.status, CaseStatus::Completed, "{}", case.message);
}

#[tokio::test]
async fn a_request_too_short_is_refused_by_name() {
    let kit = TestKit::load(plugin()).await.unwrap();
    let case = kit
        .apply(json!({"name": "Li Lei", "request": "x"}))
        .await
        .unwrap();
    assert_eq!(case.status, CaseStatus::Rejected);
    assert!(case.message.starts_with("request-too-short"), "{}", case.message);
    assert!(case.items.is_empty());
}
"#;

const README: &str = r#"# {name}

A onething scenario plugin owned by `{department}`.

```sh
cargo test                                   # unit tests, and kit tests (tests/kit.rs) on the built component
onething plugin build                        # → dist/plugin.wasm + dist/onething.toml (wasm32-wasip2)
onething keys new --department {department}  # once: {department}.key + {department}.pub
onething plugin pack --out {name}.otpkg
onething plugin sign {name}.otpkg --key {department}.key
onething plugin deploy {name}.otpkg --activate --server http://127.0.0.1:8080 --token $TOKEN
onething plugin watch --key {department}.key --token $TOKEN   # rebuild + redeploy on change
```

The operator must trust `{department}.pub` (`onething keys trust`) and allow
the grants in `onething.toml` (`onething grants set {department} ...`)
before the host accepts the package. See docs/plugin-authoring.md in the
onething repository.
"#;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_crate_has_kit_tests_on_the_kit_beside_the_sdk() {
        let work = tempfile::tempdir().unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        new(NewArgs {
            name: "dog-licence".into(),
            department: "city-services".into(),
            dir: work.path().into(),
            sdk: Some(repo.join("sdk")),
        })
        .unwrap();
        let krate = work.path().join("dog-licence");
        let read = |path: &str| std::fs::read_to_string(krate.join(path)).unwrap();
        let testkit = repo.join("testkit").canonicalize().unwrap();

        let cargo = read("Cargo.toml");
        let dev = cargo.split("[dev-dependencies]").nth(1).unwrap();
        assert!(
            dev.contains(&format!(
                "onething-testkit = {{ path = \"{}\" }}",
                testkit.display()
            )),
            "{cargo}"
        );
        assert!(dev.contains("tokio = "), "{cargo}");
        // The workspace's dev profile, so that a shared target dir is reused.
        assert!(
            cargo.contains("[profile.dev.package.\"*\"]\nopt-level = 1\ndebug = false"),
            "{cargo}"
        );

        let kit = read("tests/kit.rs");
        assert!(kit.contains("TestKit::load(plugin())"), "{kit}");
        assert!(kit.contains("async fn a_request_goes_to_city_services_and_completes()"));
        assert!(kit.contains("async fn a_request_too_short_is_refused_by_name()"));
        assert!(kit.contains("case.items_of(\"city-services\")"));
        assert!(!kit.contains("{department}") && !kit.contains("{crate_department}"));
    }
}
