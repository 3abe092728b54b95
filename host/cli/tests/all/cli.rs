//! The `onething` binary as an operator uses it: import datasets, serve.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::support::{Api, BIRTH_CERTIFICATES, RESIDENTS, newborn_application, plugin_dir};

fn onething() -> Command {
    Command::new(env!("CARGO_BIN_EXE_onething"))
}

struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn an_operator_imports_datasets_and_serves_newborn() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data_dir = data_dir.to_str().unwrap();

    // A malformed line is reported by number and nothing is imported.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, format!("{BIRTH_CERTIFICATES}{{not json\n")).unwrap();
    let out = onething()
        .args(["data", "import", "health/birth-certificates"])
        .arg(&bad)
        .args(["--key", "certificate_no", "--data-dir", data_dir])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");

    for (dataset, text, key) in [
        (
            "health/birth-certificates",
            BIRTH_CERTIFICATES,
            "certificate_no",
        ),
        ("public-security/residents", RESIDENTS, "id_number"),
    ] {
        let file = dir.path().join("in.jsonl");
        std::fs::write(&file, text).unwrap();
        let out = onething()
            .args(["data", "import", dataset])
            .arg(&file)
            .args(["--key", key, "--data-dir", data_dir])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("imported"));
    }

    // Serve with just the newborn plugin.
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(plugins.join("newborn")).unwrap();
    for file in ["onething.toml", "plugin.wasm"] {
        std::fs::copy(
            plugin_dir("newborn").join(file),
            plugins.join("newborn").join(file),
        )
        .unwrap();
    }
    let mut child = onething()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir])
        .arg("--plugins-dir")
        .arg(&plugins)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let serving = Serving(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");

    let api = Api::new(base);
    let (_, catalogue) = api.get("/v1/scenarios").await;
    assert_eq!(catalogue["scenarios"][0]["id"], "newborn");
    let (status, case) = api
        .post("/v1/scenarios/newborn/cases", &newborn_application())
        .await;
    assert_eq!(status, 201);
    assert_eq!(case["status"], "in-progress", "{case}");
    let (_, health) = api.get("/healthz").await;
    assert_eq!(health["status"], "ok");
    drop(serving);
}

/// Runs `onething ARGS` and returns stdout; panics with stderr on failure.
fn run_ok(args: &[&str], dir: &std::path::Path) -> String {
    let out = onething().args(args).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "onething {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `onething ARGS`, expects it to fail, and returns stderr.
fn run_err(args: &[&str], dir: &std::path::Path) -> String {
    let out = onething().args(args).current_dir(dir).output().unwrap();
    assert!(
        !out.status.success(),
        "onething {} succeeded",
        args.join(" ")
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// Multi-threaded: the CLI runs as a blocking subprocess while this test's
// runtime serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_signs_and_an_operator_deploys_activates_and_rolls_back_with_the_cli() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let host = crate::admin_host::Host::start(dir).await;
    let server = host.api.base.clone();
    let remote = [
        "--server",
        server.as_str(),
        "--token",
        crate::admin_host::TOKEN,
    ];
    let with_remote = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(remote.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_ok(&args, dir)
    };

    // The department makes a key; the operator trusts it and sets a ceiling.
    let made = run_ok(
        &["keys", "new", "--department", "test", "--out", "keys"],
        dir,
    );
    assert!(made.contains("keys/test.key"), "{made}");
    let again = run_err(
        &["keys", "new", "--department", "test", "--out", "keys"],
        dir,
    );
    assert!(again.contains("refusing to overwrite"), "{again}");
    run(with_remote(&["keys", "trust", "keys/test.pub"]));
    run(with_remote(&[
        "grants",
        "set",
        "test",
        "--dispatch",
        "test",
    ]));

    // Pack and sign v1 and v2; a key of another department will not sign.
    for build in ["v1", "v2"] {
        let fixture = plugin_dir(&format!("versioned-{build}"));
        let fixture = fixture.to_str().unwrap();
        let package = format!("{build}.otpkg");
        let packed = run_ok(&["plugin", "pack", fixture, "--out", &package], dir);
        assert!(packed.contains("unsigned"), "{packed}");
        let signed = run_ok(&["plugin", "sign", &package, "--key", "keys/test.key"], dir);
        assert!(signed.contains("signed versioned@"), "{signed}");
    }
    run_ok(
        &["keys", "new", "--department", "tax", "--out", "keys"],
        dir,
    );
    let refused = run_err(
        &["plugin", "sign", "v1.otpkg", "--key", "keys/tax.key"],
        dir,
    );
    assert!(
        refused.contains("belongs to department `test`"),
        "{refused}"
    );

    // Deploy v1 active and v2 inactive; activate v2; roll back.
    let deployed = run(with_remote(&["plugin", "deploy", "v1.otpkg", "--activate"]));
    assert!(deployed.contains("\"active\": true"), "{deployed}");
    run(with_remote(&["plugin", "deploy", "v2.otpkg"]));
    let listed = run(with_remote(&["plugin", "list"]));
    assert!(listed.contains("* 1.0.0"), "{listed}");
    run(with_remote(&["plugin", "activate", "versioned", "2.0.0"]));
    let (_, case) = host
        .api
        .post("/v1/scenarios/versioned/cases", &serde_json::json!({}))
        .await;
    assert_eq!(case["message"], "started by v2", "{case}");
    // An operator rolls back with their own token, and the audit log
    // names them.
    let operator = run_ok(&["token", "issue", "--operator", "li.wei"], dir);
    let rolled = run_ok(
        &[
            "plugin",
            "rollback",
            "versioned",
            "--server",
            &server,
            "--token",
            operator.trim(),
        ],
        dir,
    );
    assert!(rolled.contains("\"active\": \"1.0.0\""), "{rolled}");
    let entries = host.storage.audit_entries(0, 10_000).await.unwrap();
    let last_admin = entries.iter().rev().find_map(|e| match &e.record {
        onething_host::storage::AuditRecord::Admin { actor, action, .. } => {
            Some((actor.as_str(), action.as_str()))
        }
        _ => None,
    });
    assert_eq!(last_admin, Some(("li.wei", "plugin.rollback")));
    let (_, case) = host
        .api
        .post("/v1/scenarios/versioned/cases", &serde_json::json!({}))
        .await;
    assert_eq!(case["message"], "started by v1", "{case}");

    // A refusal reaches the operator with the host's reason.
    let mut tampered = std::fs::read(dir.join("v2.otpkg")).unwrap();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    std::fs::write(dir.join("bad.otpkg"), tampered).unwrap();
    let args = with_remote(&["plugin", "deploy", "bad.otpkg"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let refused = run_err(&args, dir);
    assert!(refused.contains("package_tampered"), "{refused}");
    // A wrong token is told apart from an unreachable host.
    let refused = run_err(
        &["plugin", "list", "--server", &server, "--token", "wrong"],
        dir,
    );
    assert!(refused.contains("403"), "{refused}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_new_makes_a_crate_that_tests_builds_and_watch_deploys() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let root = crate::support::repo_root();
    // Share the build directories and the workspace's lock file, so that
    // the new crate's dependencies are the ones already built: natively
    // (its kit tests link the test kit, wasmtime and all) the workspace's
    // target dir, for wasm32 the plugins workspace's.
    let target = root.join("plugins/target");
    let native_target = root.join("target");
    let made = run_ok(
        &[
            "plugin",
            "new",
            "parking-permit",
            "--department",
            "transport",
            "--sdk",
            root.join("sdk").to_str().unwrap(),
        ],
        dir,
    );
    assert!(made.contains("created plugin `parking-permit`"), "{made}");
    let krate = dir.join("parking-permit");
    std::fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    assert!(krate.join("tests/kit.rs").is_file());
    let again = run_err(&["plugin", "new", "parking-permit"], dir);
    assert!(again.contains("exists already"), "{again}");
    let bad = run_err(&["plugin", "new", "Parking Permit"], dir);
    assert!(bad.contains("not a valid plugin id"), "{bad}");

    // Its own tests pass, unit tests and kit tests (which build the
    // component and run it in the kit: one approval, one refusal).
    let started = std::time::Instant::now();
    let tested = Command::new("cargo")
        .args(["test"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &native_target)
        .env("ONETHING_PLUGIN_TARGET_DIR", &target)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&tested.stdout);
    assert!(
        tested.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    assert!(
        stdout.contains("a_request_goes_to_transport_and_completes ... ok")
            && stdout.contains("a_request_too_short_is_refused_by_name ... ok"),
        "{stdout}"
    );
    eprintln!("the new crate's cargo test took {:?}", started.elapsed());

    // A host that trusts the department's demo key and allows its grants;
    // `watch --once` builds, signs with the demo key, deploys and activates.
    let host = crate::admin_host::Host::start(dir).await;
    host.trust(&onething_registry::SigningKeyFile::demo("transport").unwrap())
        .await;
    host.grant("transport", serde_json::json!({"dispatch": ["transport"]}))
        .await;
    let server = host.api.base.clone();
    let out = onething()
        .args(["plugin", "watch", "--once", "--server", &server])
        .args(["--token", crate::admin_host::TOKEN])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("deployed and activated parking-permit@0.1.0-dev."),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(krate.join("dist/plugin.wasm").is_file());
    // `dist/` is a plugin directory: the component and the manifest.
    assert!(krate.join("dist/onething.toml").is_file());

    // Citizens reach it at once.
    let (status, case) = host
        .api
        .post(
            "/v1/scenarios/parking-permit/cases",
            &serde_json::json!({"name": "李雷", "request": "a residents' parking permit"}),
        )
        .await;
    assert_eq!(status, 201, "{case}");
    assert_eq!(case["status"], "in-progress", "{case}");
    assert_eq!(case["items"][0]["department"], "transport", "{case}");
    let (_, refused) = host
        .api
        .post(
            "/v1/scenarios/parking-permit/cases",
            &serde_json::json!({"name": "李雷", "request": "x"}),
        )
        .await;
    assert_eq!(refused["status"], "rejected", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .starts_with("request-too-short"),
        "{refused}"
    );

    // `watch` keeps going: a change to the source is rebuilt, signed,
    // deployed and activated, and the next application reaches it.
    let mut watcher = onething()
        .args(["plugin", "watch", "--poll-ms", "200", "--server", &server])
        .args(["--token", crate::admin_host::TOKEN])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watcher.stdout.take().unwrap();
    let watching = Serving(watcher);
    let (lines, deployed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("deployed and activated") && lines.send(line).is_err() {
                break;
            }
        }
    });
    let wait = || deployed.recv_timeout(std::time::Duration::from_secs(600));
    let first = tokio::task::block_in_place(wait).expect("the watcher deploys at start");
    let source = krate.join("src/lib.rs");
    let text = std::fs::read_to_string(&source).unwrap();
    std::fs::write(
        &source,
        text.replace("\"sent to transport\"", "\"sent to transport, v2\""),
    )
    .unwrap();
    let second = tokio::task::block_in_place(wait).expect("the watcher redeploys on change");
    assert_ne!(first, second);
    let (_, case) = host
        .api
        .post(
            "/v1/scenarios/parking-permit/cases",
            &serde_json::json!({"name": "李雷", "request": "a residents' parking permit"}),
        )
        .await;
    assert_eq!(case["message"], "sent to transport, v2", "{case}");
    drop(watching);
    host.stop().await;
}
