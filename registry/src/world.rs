//! Does a component fit the `onething:scenario` world?
//!
//! Read from the component's own import and export sections, without
//! running or compiling it: it must be a component (not a core module), it
//! must export the scenario interface of one world the host runs
//! (`onething:scenario/scenario@0.2.0` or `@0.1.0`), and everything it
//! imports must be one of that world's onething interfaces or a WASI
//! interface the host provides (and confines: no files, no environment, no
//! network). A component that mixes the two worlds is refused.

use wasmparser::{Encoding, Parser, Payload};

/// The interface every scenario plugin of the current world exports.
pub const SCENARIO_EXPORT: &str = "onething:scenario/scenario@0.2.0";
/// The onething package's interface names, before `@VERSION`.
const ONETHING_PREFIX: &str = "onething:scenario/";
/// The interfaces of onething a plugin may import (each at its world's
/// version).
const ONETHING_IMPORTS: &[&str] = &["types", "data", "dispatch", "log"];

/// The `onething:scenario` world a component was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// `onething:scenario@0.1.0`, kept running beside the current one.
    V0_1,
    /// `onething:scenario@0.2.0`, the current world.
    V0_2,
}

impl World {
    /// Every world the host runs, newest first.
    pub const ALL: [World; 2] = [World::V0_2, World::V0_1];

    /// Its version, e.g. `0.2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            World::V0_1 => "0.1.0",
            World::V0_2 => "0.2.0",
        }
    }

    fn export(self) -> String {
        format!("{ONETHING_PREFIX}scenario@{}", self.as_str())
    }
}
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
    /// It speaks two worlds at once (e.g. exports 0.2.0, imports 0.1.0).
    #[error(
        "it mixes onething:scenario worlds: it is built for {world} but uses `{interface}`; rebuild it with one SDK"
    )]
    Mixed {
        /// The world of its scenario export.
        world: &'static str,
        /// The interface of another world.
        interface: String,
    },
    /// It imports something the host does not provide.
    #[error(
        "it imports `{0}`, which the onething:scenario world does not provide (only onething:scenario interfaces and WASI cli/clocks/filesystem/io/random/sockets)"
    )]
    UnknownImport(String),
}

/// Checks a component against the worlds (see the module docs) and tells
/// which one it was built for.
pub fn check(component: &[u8]) -> Result<World, WorldError> {
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
    let worlds: Vec<World> = World::ALL
        .into_iter()
        .filter(|w| exports.contains(&w.export()))
        .collect();
    let Some(&world) = worlds.first() else {
        return Err(WorldError::MissingExport {
            found: if exports.is_empty() {
                "none".into()
            } else {
                exports.join(", ")
            },
        });
    };
    let other_export = exports
        .iter()
        .find(|e| e.starts_with(ONETHING_PREFIX) && **e != world.export());
    if let Some(interface) = other_export {
        return Err(WorldError::Mixed {
            world: world.as_str(),
            interface: interface.clone(),
        });
    }
    for import in imports {
        if WASI_PACKAGES.iter().any(|p| import.starts_with(p)) {
            continue;
        }
        let Some((name, version)) = import
            .strip_prefix(ONETHING_PREFIX)
            .and_then(|rest| rest.split_once('@'))
        else {
            return Err(WorldError::UnknownImport(import));
        };
        if !ONETHING_IMPORTS.contains(&name) {
            return Err(WorldError::UnknownImport(import));
        }
        if version != world.as_str() {
            if World::ALL.iter().any(|w| w.as_str() == version) {
                return Err(WorldError::Mixed {
                    world: world.as_str(),
                    interface: import,
                });
            }
            return Err(WorldError::UnknownImport(import));
        }
    }
    Ok(world)
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
