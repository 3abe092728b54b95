//! Shared by the example plugins' kit tests: the repository's plugins,
//! built once per test binary.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `dist/plugins/<id>`, after `scripts/build-plugins.sh` has run once.
pub fn example(id: &str) -> PathBuf {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    let dist = DIST.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("testkit/ has a parent")
            .to_owned();
        let status = std::process::Command::new("bash")
            .arg(root.join("scripts/build-plugins.sh"))
            .status()
            .expect("run scripts/build-plugins.sh");
        assert!(status.success(), "scripts/build-plugins.sh failed");
        root.join("dist/plugins")
    });
    dist.join(id)
}

/// `dist/fixtures/<id>`, after `scripts/build-plugins.sh` has run once.
pub fn fixture(id: &str) -> PathBuf {
    example(id)
        .parent()
        .and_then(Path::parent)
        .expect("dist/plugins has a parent")
        .join("fixtures")
        .join(id)
}
