//! Packing a plugin directory: its manifest and its component into one
//! (unsigned) package, for `plugin pack` and `plugin watch`.

use std::path::Path;

use anyhow::Context;
use onething_registry::Package;

use onething_host::plugins::{COMPONENT_FILE, MANIFEST_FILE};

/// Packs DIR's manifest with its component.
pub fn pack(dir: &Path, component: Option<&Path>) -> anyhow::Result<Package> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let component = match component {
        Some(path) => path.to_owned(),
        None => [dir.join(COMPONENT_FILE), dir.join("dist").join(COMPONENT_FILE)]
            .into_iter()
            .find(|p| p.is_file())
            .with_context(|| {
                format!(
                    "no component in {} (plugin.wasm or dist/plugin.wasm): run `onething plugin build` or pass --component",
                    dir.display()
                )
            })?,
    };
    let wasm = std::fs::read(&component)
        .with_context(|| format!("cannot read {}", component.display()))?;
    Package::new(manifest, wasm).with_context(|| format!("{}", manifest_path.display()))
}
