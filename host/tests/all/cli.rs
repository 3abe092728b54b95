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
