//! `onething audit verify`: the chain holds, and an altered entry is named.

use std::process::Command;

use onething_host::storage::prelude::*;
use onething_host::storage::sled::SledStorage;

fn verify(data_dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_onething"))
        .args(["audit", "verify", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap()
}

#[tokio::test]
async fn verify_names_the_first_altered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let storage = SledStorage::open(&data).unwrap();
        for n in 0..3 {
            storage
                .import_dataset(
                    &format!("health/set-{n}"),
                    vec![("k".into(), "{\"k\":\"k\"}".into())],
                )
                .await
                .unwrap();
        }
        assert_eq!(storage.audit_entries(0, 10).await.unwrap().len(), 3);
    }

    let out = verify(&data);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verified: 3 entries"), "{stdout}");

    // Someone with access to the disk rewrites entry 2 to say it imported
    // 100 records instead of 1.
    {
        let db = sled::open(data.join("db")).unwrap();
        let mut key = b"a/".to_vec();
        key.extend_from_slice(&2u64.to_be_bytes());
        let entry = String::from_utf8(db.get(&key).unwrap().unwrap().to_vec()).unwrap();
        assert!(entry.contains("\"records\":1"), "{entry}");
        db.insert(
            &key,
            entry.replace("\"records\":1", "\"records\":100").as_bytes(),
        )
        .unwrap();
        db.flush().unwrap();
    }
    let out = verify(&data);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("broken at entry 2"), "{stderr}");

    // A directory that is not a data dir is refused, not created.
    let out = verify(&dir.path().join("nothing-here"));
    assert!(!out.status.success());
    assert!(!dir.path().join("nothing-here").exists());
}
