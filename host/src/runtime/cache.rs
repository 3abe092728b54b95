//! The compile cache: compiled plugin artifacts under the data dir, so that a
//! restart does not compile again.
//!
//! An artifact is keyed by the SHA-256 of the component's bytes and a
//! fingerprint of the engine's configuration, and is stored with the SHA-256
//! of the artifact itself. Before use, the artifact is read whole and its
//! checksum verified; a missing, truncated or altered artifact is simply
//! compiled again and rewritten. wasmtime checks on its own that an artifact
//! was made by this wasmtime version with compatible settings.
//! Files are written to a temporary name and renamed, so a crash never
//! leaves half an artifact under the real name.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled artifacts in one directory.
pub struct CompileCache {
    dir: PathBuf,
    fingerprint: String,
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Taken from the cache.
    Hit,
    /// Compiled (and written to the cache).
    Compiled,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl CompileCache {
    /// A cache in `dir` for artifacts of `engine`.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompileCache {
            dir,
            fingerprint: format!("{:016x}", hasher.finish()),
        }
    }

    fn paths(&self, wasm: &[u8]) -> (PathBuf, PathBuf) {
        let name = format!("{}-{}", sha256_hex(wasm), self.fingerprint);
        (
            self.dir.join(format!("{name}.cwasm")),
            self.dir.join(format!("{name}.sha256")),
        )
    }

    /// The component for `wasm`: from the cache if a verified artifact is
    /// there, otherwise compiled and cached.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let (artifact, checksum) = self.paths(wasm);
        if let Some(component) = self.load(engine, &artifact, &checksum) {
            return Ok((component, CacheOutcome::Hit));
        }
        let component = Component::new(engine, wasm)?;
        if let Err(error) = self.store(&component, &artifact, &checksum) {
            tracing::warn!(%error, dir = %self.dir.display(), "cannot write the compile cache");
        }
        Ok((component, CacheOutcome::Compiled))
    }

    fn load(&self, engine: &Engine, artifact: &Path, checksum: &Path) -> Option<Component> {
        let expected = std::fs::read_to_string(checksum).ok()?;
        let bytes = std::fs::read(artifact).ok()?;
        if sha256_hex(&bytes) != expected.trim() {
            tracing::warn!(artifact = %artifact.display(), "compile cache artifact is damaged; compiling again");
            return None;
        }
        deserialize(engine, &bytes)
            .inspect_err(|error| {
                tracing::warn!(%error, artifact = %artifact.display(), "compile cache artifact is unusable; compiling again");
            })
            .ok()
    }

    fn store(
        &self,
        component: &Component,
        artifact: &Path,
        checksum: &Path,
    ) -> std::io::Result<()> {
        let bytes = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        std::fs::create_dir_all(&self.dir)?;
        write_atomically(artifact, &bytes)?;
        write_atomically(checksum, sha256_hex(&bytes).as_bytes())
    }
}

/// Deserialises an artifact whose checksum was verified.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` trusts its input to be an artifact
    // that `Component::serialize` produced. These bytes are exactly what
    // `store` wrote from `serialize` (their SHA-256 matches the checksum
    // written beside them), under a name that carries this engine's
    // configuration fingerprint; wasmtime further rejects artifacts of
    // another version or incompatible settings. The data dir is the
    // host's own and is trusted like the binary itself.
    unsafe { Component::deserialize(engine, bytes) }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
