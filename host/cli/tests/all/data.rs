//! `onething data import` against a running host (`--server`: the dataset
//! is replaced, atomically, no restart) and offline (adding, or with
//! `--replace` replacing).

use std::process::Command;

use onething_host::storage::DatasetReader;

const CERTIFICATES: &str = r#"{"certificate_no":"T100","child_name":"赵一诺"}
{"certificate_no":"T200","child_name":"钱多多"}
"#;

const REFRESHED: &str = r#"{"certificate_no":"T100","child_name":"赵一诺"}
{"certificate_no":"T300","child_name":"赵二诺"}
"#;

const BROKEN: &str = r#"{"certificate_no":"T400","child_name":"孙小"}
{"child_name":"无号"}
"#;

const DATASET: &str = "health/birth-certificates";

fn onething(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_onething"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stdout_of(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn keys(storage: &dyn DatasetReader) -> [bool; 3] {
    let mut found = [false; 3];
    for (slot, key) in found.iter_mut().zip(["T100", "T200", "T300"]) {
        *slot = storage
            .dataset_record(DATASET, key)
            .await
            .unwrap()
            .is_some();
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_host_takes_a_refresh_and_a_bad_file_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_owned();
    for (name, text) in [("refreshed.jsonl", REFRESHED), ("broken.jsonl", BROKEN)] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let host = crate::admin_host::Host::start(&dir).await;
    let records: Vec<(String, String)> =
        onething_host::datasets::parse_jsonl(CERTIFICATES, "certificate_no").unwrap();
    host.storage.import_dataset(DATASET, records).await.unwrap();
    let server = host.api.base.clone();
    let run = move |file: &'static str, key: &'static str| {
        let (dir, server) = (dir.clone(), server.clone());
        tokio::task::spawn_blocking(move || {
            onething(
                &dir,
                &[
                    "data",
                    "import",
                    DATASET,
                    file,
                    "--key",
                    key,
                    "--server",
                    &server,
                    "--admin-token",
                    crate::admin_host::TOKEN,
                ],
            )
        })
    };

    let out = run("broken.jsonl", "certificate_no").await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("400 Bad Request dataset_invalid"),
        "{stderr}"
    );
    assert!(stderr.contains("line 2"), "{stderr}");
    assert_eq!(keys(host.storage.as_ref()).await, [true, true, false]);

    let out = run("refreshed.jsonl", "certificate_no").await.unwrap();
    assert!(
        stdout_of(&out).contains("replaced health/birth-certificates: it now holds the 2 records"),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(keys(host.storage.as_ref()).await, [true, false, true]);
    host.stop().await;
}

#[test]
fn offline_an_import_adds_and_a_replace_replaces() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::write(dir.join("first.jsonl"), CERTIFICATES).unwrap();
    std::fs::write(dir.join("refreshed.jsonl"), REFRESHED).unwrap();
    let import = |file: &str, extra: &[&str]| {
        let mut args = vec!["data", "import", DATASET, file, "--key", "certificate_no"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--data-dir", "data"]);
        onething(dir, &args)
    };
    let found = |dir: &std::path::Path| {
        let storage = onething_host::storage::sled::SledStorage::open(&dir.join("data")).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(keys(&storage))
    };
    assert!(stdout_of(&import("first.jsonl", &[])).contains("imported 2 records"));
    assert!(stdout_of(&import("refreshed.jsonl", &[])).contains("imported 2 records"));
    assert_eq!(found(dir), [true, true, true], "an import adds");
    assert!(
        stdout_of(&import("refreshed.jsonl", &["--replace"])).contains("now holds the 2 records")
    );
    assert_eq!(found(dir), [true, false, true], "a replace replaces");
}
