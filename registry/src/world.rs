//! Does a component fit the `onething:scenario` world?
//!
//! Read from the component's own import and export sections, without
//! running or compiling it: it must be a component (not a core module), it
//! must export `onething:scenario/scenario@0.1.0`, and everything it imports
//! must be one of onething's interfaces or a WASI interface the host
//! provides (and confines: no files, no environment, no network).

use wasmparser::{Encoding, Parser, Payload};

/// The interface every scenario plugin exports.
pub const SCENARIO_EXPORT: &str = "onething:scenario/scenario@0.1.0";
/// The interfaces of onething a plugin may import.
const ONETHING_IMPORTS: &[&str] = &[
    "onething:scenario/types@0.1.0",
    "onething:scenario/data@0.1.0",
    "onething:scenario/dispatch@0.1.0",
    "onething:scenario/log@0.1.0",
];
/// The WASI packages a plugin may import (what Rust's std links against on
/// wasm32-wasip2); the host provides them with nothing to reach.
const WASI_PACKAGES: &[&str] = &[
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
];

/// Why a component does not fit the world.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    /// The bytes are not WebAssembly at all.
    #[error("the component is not valid WebAssembly: {0}")]
    Parse(String),
    /// A core module, not a component.
    #[error(
        "it is a core WebAssembly module, not a component: build for wasm32-wasip2 (or run `wasm-tools component new`)"
    )]
    CoreModule,
    /// The scenario interface is not exported.
    #[error("it does not export `{SCENARIO_EXPORT}`; exports found: {found}")]
    MissingExport {
        /// What it does export.
        found: String,
    },
    /// It imports something the host does not provide.
    #[error(
        "it imports `{0}`, which the onething:scenario world does not provide (only onething:scenario interfaces and WASI cli/clocks/filesystem/io/random/sockets)"
    )]
    UnknownImport(String),
}

/// Checks a component against the world (see the module docs).
pub fn check(component: &[u8]) -> Result<(), WorldError> {
    let mut depth = 0usize;
    let mut exports = Vec::new();
    let mut imports = Vec::new();
    for payload in Parser::new(0).parse_all(component) {
        let payload = payload.map_err(|e| WorldError::Parse(e.to_string()))?;
        match payload {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != Encoding::Component {
                    return Err(WorldError::CoreModule);
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|e| WorldError::Parse(e.to_string()))?;
                    imports.push(import.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(|e| WorldError::Parse(e.to_string()))?;
                    exports.push(export.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    if !exports.iter().any(|e| e == SCENARIO_EXPORT) {
        return Err(WorldError::MissingExport {
            found: if exports.is_empty() {
                "none".into()
            } else {
                exports.join(", ")
            },
        });
    }
    for import in imports {
        let known = ONETHING_IMPORTS.contains(&import.as_str())
            || WASI_PACKAGES.iter().any(|p| import.starts_with(p));
        if !known {
            return Err(WorldError::UnknownImport(import));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_module_and_garbage_are_refused() {
        // The smallest core module: magic and version 1.
        assert_eq!(check(b"\0asm\x01\0\0\0"), Err(WorldError::CoreModule));
        assert!(matches!(check(b"not wasm"), Err(WorldError::Parse(_))));
    }

    #[test]
    fn an_empty_component_lacks_the_export() {
        // The smallest component: magic, version 0x0d, layer 1.
        assert!(matches!(
            check(b"\0asm\x0d\0\x01\0"),
            Err(WorldError::MissingExport { .. })
        ));
    }
}
