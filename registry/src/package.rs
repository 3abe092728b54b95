//! The package file: one manifest, one component, and the owning
//! department's signature, in one file (`*.otpkg`).
//!
//! Layout (all lengths big-endian):
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `OTPKG01\n` |
//! | 1 + 8 + n | section `M`: the manifest, `onething.toml` as UTF-8 |
//! | 1 + 8 + n | section `C`: the WebAssembly component |
//! | 1 + 8 + n | optional section `S`: the signature, JSON (see [`Signature`]) |
//!
//! Each section is a one-byte tag, a u64 length and that many bytes. The
//! manifest and the component come first, in that order; the signature, if
//! present, is last; nothing may follow it.
//!
//! The package **digest** is SHA-256 over the domain string
//! `onething-package-v1\n`, then the manifest's length (u64) and bytes, then
//! the component's length (u64) and bytes. The signature is ed25519 over
//! those 32 digest bytes, so that changing any byte of the manifest or the
//! component breaks it, and a signature cannot be lifted onto a different
//! pairing of the two.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest::{Manifest, ManifestError};

/// The first eight bytes of every package file.
pub const MAGIC: &[u8; 8] = b"OTPKG01\n";
/// The largest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
/// The largest component accepted, in bytes.
pub const MAX_COMPONENT_BYTES: u64 = 64 * 1024 * 1024;
/// The largest signature section accepted, in bytes.
pub const MAX_SIGNATURE_BYTES: u64 = 4 * 1024;
/// The domain string hashed first into every package digest.
const DIGEST_DOMAIN: &[u8] = b"onething-package-v1\n";

/// A package's signature section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The signing key's id: the first 16 hex digits of SHA-256 over its
    /// public key.
    pub key_id: String,
    /// The 64-byte ed25519 signature over the package digest, in hex.
    pub signature: String,
}

/// Why a package file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The file does not start with the package magic.
    #[error("not an onething package: it does not start with `OTPKG01`")]
    Magic,
    /// The file ends inside a section.
    #[error("the package is truncated: section `{section}` is cut short")]
    Truncated {
        /// The section being read.
        section: char,
    },
    /// A section is not the one expected at its place.
    #[error("the package is malformed: expected section `{expected}`, found `{found}`")]
    Section {
        /// The section expected.
        expected: char,
        /// The tag found.
        found: char,
    },
    /// A section is larger than allowed.
    #[error("section `{section}` is {length} bytes, more than the {max} allowed")]
    TooLarge {
        /// The section.
        section: char,
        /// Its declared length.
        length: u64,
        /// The most allowed.
        max: u64,
    },
    /// Bytes follow the last section.
    #[error("the package is malformed: {0} bytes follow the last section")]
    Trailing(usize),
    /// The manifest is not UTF-8.
    #[error("the manifest is not UTF-8 text")]
    ManifestEncoding,
    /// The manifest is not valid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The signature section is not valid JSON of its shape.
    #[error("the signature section is not valid: {0}")]
    Signature(String),
}

/// A package read from (or to be written to) a file.
#[derive(Debug, Clone)]
pub struct Package {
    /// The manifest's text exactly as packed (the digest covers these
    /// bytes, not a re-serialisation).
    pub manifest_text: String,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The component's bytes.
    pub component: Vec<u8>,
    /// The signature, if the package is signed.
    pub signature: Option<Signature>,
}

impl Package {
    /// A new, unsigned package; checks the manifest.
    pub fn new(manifest_text: String, component: Vec<u8>) -> Result<Self, PackageError> {
        let manifest = Manifest::parse(&manifest_text)?;
        Ok(Package {
            manifest_text,
            manifest,
            component,
            signature: None,
        })
    }

    /// The digest the signature covers.
    pub fn digest(&self) -> [u8; 32] {
        digest(self.manifest_text.as_bytes(), &self.component)
    }

    /// The digest in hex: the package's content identity.
    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest())
    }

    /// Writes the package file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.component.len() + self.manifest_text.len() + 256);
        out.extend_from_slice(MAGIC);
        section(&mut out, b'M', self.manifest_text.as_bytes());
        section(&mut out, b'C', &self.component);
        if let Some(signature) = &self.signature {
            // A struct of three strings always serialises.
            let json = serde_json::to_vec(signature).unwrap_or_default();
            section(&mut out, b'S', &json);
        }
        out
    }

    /// Reads a package file, checking its framing and its manifest (not its
    /// signature: that is the registry's job, against trusted keys).
    pub fn decode(bytes: &[u8]) -> Result<Self, PackageError> {
        let sections = Sections::read(bytes)?;
        let manifest_text = String::from_utf8(sections.manifest.to_vec())
            .map_err(|_| PackageError::ManifestEncoding)?;
        let mut package = Package::new(manifest_text, sections.component.to_vec())?;
        package.signature = sections.signature;
        Ok(package)
    }
}

/// A package file's sections, framing checked, nothing else: what a
/// verifier reads before it trusts a byte of the manifest.
#[derive(Debug)]
pub struct Sections<'a> {
    /// The manifest's bytes.
    pub manifest: &'a [u8],
    /// The component's bytes.
    pub component: &'a [u8],
    /// The signature, if any.
    pub signature: Option<Signature>,
}

impl<'a> Sections<'a> {
    /// Splits a package file into its sections.
    pub fn read(bytes: &'a [u8]) -> Result<Self, PackageError> {
        let rest = bytes.strip_prefix(MAGIC).ok_or(PackageError::Magic)?;
        let (manifest, rest) = read_section(rest, b'M', MAX_MANIFEST_BYTES)?;
        let (component, rest) = read_section(rest, b'C', MAX_COMPONENT_BYTES)?;
        let (signature, rest) = if rest.is_empty() {
            (None, rest)
        } else {
            let (json, rest) = read_section(rest, b'S', MAX_SIGNATURE_BYTES)?;
            let signature: Signature =
                serde_json::from_slice(json).map_err(|e| PackageError::Signature(e.to_string()))?;
            (Some(signature), rest)
        };
        if !rest.is_empty() {
            return Err(PackageError::Trailing(rest.len()));
        }
        Ok(Sections {
            manifest,
            component,
            signature,
        })
    }

    /// The digest the signature covers.
    pub fn digest(&self) -> [u8; 32] {
        digest(self.manifest, self.component)
    }
}

/// The package digest of a manifest and a component (see the module docs).
pub fn digest(manifest: &[u8], component: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(DIGEST_DOMAIN);
    hasher.update((manifest.len() as u64).to_be_bytes());
    hasher.update(manifest);
    hasher.update((component.len() as u64).to_be_bytes());
    hasher.update(component);
    hasher.finalize().into()
}

fn section(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    out.extend_from_slice(body);
}

fn read_section(bytes: &[u8], tag: u8, max: u64) -> Result<(&[u8], &[u8]), PackageError> {
    let section = char::from(tag);
    let (&found, rest) = bytes
        .split_first()
        .ok_or(PackageError::Truncated { section })?;
    if found != tag {
        return Err(PackageError::Section {
            expected: section,
            found: char::from(found),
        });
    }
    let (length, rest) = rest
        .split_first_chunk::<8>()
        .ok_or(PackageError::Truncated { section })?;
    let length = u64::from_be_bytes(*length);
    if length > max {
        return Err(PackageError::TooLarge {
            section,
            length,
            max,
        });
    }
    let length = usize::try_from(length).map_err(|_| PackageError::Truncated { section })?;
    if rest.len() < length {
        return Err(PackageError::Truncated { section });
    }
    Ok(rest.split_at(length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MANIFEST: &str =
        "id = \"demo\"\nversion = \"1.0.0\"\ndepartment = \"health\"\ntitle = \"Demo\"\n";

    fn package() -> Package {
        Package::new(MANIFEST.into(), b"\0asm component bytes".to_vec())
            .unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn a_package_round_trips_with_and_without_a_signature() {
        let mut p = package();
        let back = Package::decode(&p.encode()).map_err(|e| e.to_string());
        assert_eq!(back.as_ref().map(|b| b.digest()), Ok(p.digest()));
        assert!(back.as_ref().is_ok_and(|b| b.signature.is_none()));
        p.signature = Some(Signature {
            algorithm: "ed25519".into(),
            key_id: "abcd".into(),
            signature: "00".into(),
        });
        let back = Package::decode(&p.encode()).map_err(|e| e.to_string());
        assert_eq!(back.map(|b| b.signature), Ok(p.signature));
    }

    #[test]
    fn the_digest_changes_with_any_byte_of_manifest_or_component() {
        let p = package();
        let mut component = p.component.clone();
        component[3] ^= 1;
        assert_ne!(digest(p.manifest_text.as_bytes(), &component), p.digest());
        let manifest = MANIFEST.replace("Demo", "Demp");
        assert_ne!(digest(manifest.as_bytes(), &p.component), p.digest());
    }

    #[test]
    fn framing_errors_say_what_is_wrong() {
        let bytes = package().encode();
        assert!(matches!(
            Package::decode(b"PK\x03\x04zip"),
            Err(PackageError::Magic)
        ));
        assert!(matches!(
            Package::decode(&bytes[..bytes.len() - 1]),
            Err(PackageError::Truncated { section: 'C' })
        ));
        let mut signed = package();
        signed.signature = Some(Signature {
            algorithm: "ed25519".into(),
            key_id: "k".into(),
            signature: "00".into(),
        });
        let mut trailing = signed.encode();
        trailing.push(b'x');
        assert!(matches!(
            Package::decode(&trailing),
            Err(PackageError::Trailing(1))
        ));
        let mut huge = MAGIC.to_vec();
        huge.push(b'M');
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(
            Package::decode(&huge),
            Err(PackageError::TooLarge { section: 'M', .. })
        ));
    }

    proptest! {
        /// Any bytes at all are either a package or a typed error, never a
        /// panic; and a valid package with any byte flipped never decodes to
        /// the same digest.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Package::decode(&bytes);
        }

        #[test]
        fn a_flipped_byte_never_keeps_the_digest(index in 0usize..200, bit in 0u8..8) {
            let p = package();
            let bytes = p.encode();
            let index = index % bytes.len();
            let mut flipped = bytes.clone();
            flipped[index] ^= 1 << bit;
            if let Ok(back) = Package::decode(&flipped) {
                prop_assert_ne!(back.digest(), p.digest());
            }
        }
    }
}
