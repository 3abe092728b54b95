//! `onething ops recount`: a damaged counter is found by `--check` (exit 1)
//! and rebuilt without it.

use std::process::Command;

use onething_host::storage::sled::SledStorage;

fn recount(data_dir: &std::path::Path, check: bool) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onething"));
    command.args(["ops", "recount", "--data-dir"]).arg(data_dir);
    if check {
        command.arg("--check");
    }
    let out = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_damaged_counter_is_found_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(SledStorage::open(&data).unwrap());
    let (ok, text) = recount(&data, true);
    assert!(ok, "{text}");
    assert!(
        text.contains("counters match: 0 cases and 0 items"),
        "{text}"
    );

    // Someone with access to the disk says the city finished 7 items.
    {
        let db = sled::open(data.join("db")).unwrap();
        db.insert(b"b/cq\0\0items.done", 7_i64.to_be_bytes().to_vec())
            .unwrap();
        db.flush().unwrap();
    }
    let (ok, text) = recount(&data, true);
    assert!(!ok, "{text}");
    assert!(text.contains("1 counters differ"), "{text}");
    let (ok, text) = recount(&data, false);
    assert!(ok, "{text}");
    assert!(text.contains("(1 had differed)"), "{text}");
    let (ok, text) = recount(&data, true);
    assert!(ok, "{text}");

    // A directory that is not a data dir is refused, not created.
    let (ok, text) = recount(&dir.path().join("nothing-here"), true);
    assert!(!ok);
    assert!(text.contains("not a onething data dir"), "{text}");
    assert!(!dir.path().join("nothing-here").exists());
}
