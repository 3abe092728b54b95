//! `onething places import`: offline into a stopped host's data dir, and
//! through a running host's admin API; a refusal names the line and
//! imports nothing.

use std::process::Command;

const TREE: &str = r#"{"id":"cq","name":"重庆市","level":"city"}
{"id":"cq/yubei","name":"渝北区","level":"district","parent":"cq"}
{"office":{"department":"public-security","place":"cq/yubei"}}
"#;

const MISSING_PARENT: &str = r#"{"id":"cq","name":"重庆市","level":"city"}
{"id":"cq/yubei/longxi","name":"龙溪街道","level":"town","parent":"cq/yubei"}
"#;

fn places_import(dir: &std::path::Path, file: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_onething"))
        .args(["places", "import", file])
        .args(extra)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Asserts that the import succeeded and printed `words`.
fn assert_imported(out: &std::process::Output, words: &str) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(words), "{stdout}");
}

#[test]
fn an_offline_import_names_the_bad_line_and_then_imports_the_tree() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::write(dir.join("bad.jsonl"), MISSING_PARENT).unwrap();
    std::fs::write(dir.join("tree.jsonl"), TREE).unwrap();

    let out = places_import(dir, "bad.jsonl", &["--data-dir", "data"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2:"), "{stderr}");
    assert!(stderr.contains("parent cq/yubei"), "{stderr}");

    let out = places_import(dir, "tree.jsonl", &["--data-dir", "data"]);
    assert_imported(
        &out,
        "imported 2 places, 1 offices and 0 task lists (0 lines unchanged)",
    );
    let out = places_import(dir, "tree.jsonl", &["--data-dir", "data"]);
    assert_imported(
        &out,
        "imported 0 places, 0 offices and 0 task lists (3 lines unchanged)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_through_the_admin_api_prints_what_it_imported() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_owned();
    std::fs::write(dir.join("bad.jsonl"), MISSING_PARENT).unwrap();
    std::fs::write(dir.join("tree.jsonl"), TREE).unwrap();
    let host = crate::admin_host::Host::start(&dir).await;
    let server = host.api.base.clone();
    let run = move |file: &'static str| {
        let (dir, server) = (dir.clone(), server.clone());
        tokio::task::spawn_blocking(move || {
            places_import(
                &dir,
                file,
                &[
                    "--server",
                    &server,
                    "--admin-token",
                    crate::admin_host::TOKEN,
                ],
            )
        })
    };
    let out = run("bad.jsonl").await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("400"), "{stderr}");
    assert!(stderr.contains("places_invalid"), "{stderr}");
    assert!(stderr.contains("line 2:"), "{stderr}");

    let out = run("tree.jsonl").await.unwrap();
    assert_imported(&out, "imported 2 places, 1 offices");
    let (status, body) = host.api.get("/v1/places").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["places"].as_array().unwrap().len(), 2, "{body}");
    host.stop().await;
}
