//! Department signing keys (ed25519) and their files.
//!
//! `onething keys new --department D` writes two TOML files:
//!
//! - `D.key`, the **secret** key, kept by the department (mode 0600):
//!   `department`, `key_id`, `public_key` and `secret_key` (hex);
//! - `D.pub`, the public key, given to the platform operator, who trusts it
//!   for department `D`: `department`, `key_id`, `public_key` (hex).
//!
//! A key id is the first 16 hex digits of SHA-256 over the 32-byte public
//! key; it names the key in signatures, the admin API and the audit log.

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest::is_name;
use crate::package::{Package, Signature};

/// The only signature algorithm there is.
pub const ALGORITHM: &str = "ed25519";

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file is not valid TOML of its shape.
    #[error("the key file is not valid: {0}")]
    Syntax(String),
    /// A key is not 32 bytes of hex, or does not match its id.
    #[error("the key is not valid: {0}")]
    Invalid(String),
    /// The department is not a valid name.
    #[error(
        "`{0}` is not a valid department name (lowercase letters, digits and `-`, starting with a letter)"
    )]
    Department(String),
    /// The operating system gave no randomness.
    #[error("cannot get randomness for a new key: {0}")]
    Random(String),
}

/// A department's public key, as given to operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyFile {
    /// The department the key signs for.
    pub department: String,
    /// The key id (see the module docs).
    pub key_id: String,
    /// The 32-byte ed25519 public key, hex.
    pub public_key: String,
}

impl PublicKeyFile {
    /// Parses a `.pub` file and checks that the key and its id agree.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let file: PublicKeyFile =
            toml::from_str(text).map_err(|e| KeyError::Syntax(e.to_string()))?;
        if !is_name(&file.department) {
            return Err(KeyError::Department(file.department));
        }
        let key = parse_public_key(&file.public_key)?;
        if key_id(&key) != file.key_id {
            return Err(KeyError::Invalid(format!(
                "key_id `{}` is not the id of this public key (`{}`)",
                file.key_id,
                key_id(&key)
            )));
        }
        Ok(file)
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        format!(
            "# onething department public key: give this file to the platform operator.\n\
             department = \"{}\"\nkey_id = \"{}\"\npublic_key = \"{}\"\n",
            self.department, self.key_id, self.public_key
        )
    }
}

/// A department's secret signing key.
pub struct SigningKeyFile {
    /// The department the key signs for.
    pub department: String,
    key: SigningKey,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretFileFields {
    department: String,
    key_id: String,
    public_key: String,
    secret_key: String,
}

impl std::fmt::Debug for SigningKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyFile")
            .field("department", &self.department)
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl SigningKeyFile {
    /// A new random key for `department`.
    pub fn generate(department: &str) -> Result<Self, KeyError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
        Self::from_secret(department, secret)
    }

    /// The key with the given 32 secret bytes (for derived demo keys).
    pub fn from_secret(department: &str, secret: [u8; 32]) -> Result<Self, KeyError> {
        if !is_name(department) {
            return Err(KeyError::Department(department.to_owned()));
        }
        Ok(SigningKeyFile {
            department: department.to_owned(),
            key: SigningKey::from_bytes(&secret),
        })
    }

    /// The **demo** key of `department`: derived from a public seed
    /// (SHA-256 of `onething demo key v1:` and the department), so anyone
    /// can make it. `onething serve` trusts demo keys only when demo
    /// plugins are on (the default for the quick start); a production
    /// config turns them off and trusts real department keys instead.
    pub fn demo(department: &str) -> Result<Self, KeyError> {
        let mut hasher = Sha256::new();
        hasher.update(b"onething demo key v1:");
        hasher.update(department.as_bytes());
        Self::from_secret(department, hasher.finalize().into())
    }

    /// Parses a `.key` file and checks that its parts agree.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let fields: SecretFileFields =
            toml::from_str(text).map_err(|e| KeyError::Syntax(e.to_string()))?;
        let secret = decode_32(&fields.secret_key, "secret_key")?;
        let key = Self::from_secret(&fields.department, secret)?;
        if hex::encode(key.key.verifying_key().as_bytes()) != fields.public_key
            || key.key_id() != fields.key_id
        {
            return Err(KeyError::Invalid(
                "public_key or key_id does not belong to this secret key".into(),
            ));
        }
        Ok(key)
    }

    /// The secret file's text.
    pub fn to_toml(&self) -> String {
        format!(
            "# onething department SIGNING key: keep it secret, never give it to anyone.\n\
             department = \"{}\"\nkey_id = \"{}\"\npublic_key = \"{}\"\nsecret_key = \"{}\"\n",
            self.department,
            self.key_id(),
            hex::encode(self.key.verifying_key().as_bytes()),
            hex::encode(self.key.to_bytes())
        )
    }

    /// The public half, as the operator gets it.
    pub fn public(&self) -> PublicKeyFile {
        PublicKeyFile {
            department: self.department.clone(),
            key_id: self.key_id(),
            public_key: hex::encode(self.key.verifying_key().as_bytes()),
        }
    }

    /// The key's id.
    pub fn key_id(&self) -> String {
        key_id(&self.key.verifying_key())
    }

    /// Signs `package` (replacing any signature it had).
    pub fn sign(&self, package: &mut Package) {
        let signature = self.key.sign(&package.digest());
        package.signature = Some(Signature {
            algorithm: ALGORITHM.to_owned(),
            key_id: self.key_id(),
            signature: hex::encode(signature.to_bytes()),
        });
    }
}

/// The id of a public key.
pub fn key_id(key: &VerifyingKey) -> String {
    let hash = Sha256::digest(key.as_bytes());
    hex::encode(&hash[..8])
}

/// Parses a hex public key.
pub fn parse_public_key(hex_key: &str) -> Result<VerifyingKey, KeyError> {
    let bytes = decode_32(hex_key, "public_key")?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|e| KeyError::Invalid(format!("public_key is not an ed25519 point: {e}")))
}

/// Whether `signature` (hex) is `key`'s signature over `digest`.
pub fn verify(key: &VerifyingKey, digest: &[u8; 32], signature: &str) -> bool {
    // One spelling only (lowercase hex, as `sign` writes it), so that no
    // byte of a signed package can change and still verify.
    if !signature
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return false;
    }
    let Ok(bytes) = hex::decode(signature) else {
        return false;
    };
    let Ok(signature) = ed25519_dalek::Signature::from_slice(&bytes) else {
        return false;
    };
    key.verify_strict(digest, &signature).is_ok() && key.verify(digest, &signature).is_ok()
}

fn decode_32(text: &str, field: &str) -> Result<[u8; 32], KeyError> {
    let bytes = hex::decode(text.trim())
        .map_err(|e| KeyError::Invalid(format!("{field} is not hex: {e}")))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| KeyError::Invalid(format!("{field} must be 32 bytes, not {}", bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip_and_signatures_verify() {
        let key = SigningKeyFile::generate("health").unwrap_or_else(|e| unreachable!("{e}"));
        let again = SigningKeyFile::parse(&key.to_toml()).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(again.key_id(), key.key_id());
        let public =
            PublicKeyFile::parse(&key.public().to_toml()).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(public, key.public());
        let verifying =
            parse_public_key(&public.public_key).unwrap_or_else(|e| unreachable!("{e}"));
        let digest = [7u8; 32];
        let mut package = Package::new(
            "id = \"a\"\nversion = \"1.0.0\"\ndepartment = \"health\"\ntitle = \"A\"\n".into(),
            vec![1, 2, 3],
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        key.sign(&mut package);
        let signature = package
            .signature
            .clone()
            .map(|s| s.signature)
            .unwrap_or_default();
        assert!(verify(&verifying, &package.digest(), &signature));
        assert!(!verify(&verifying, &digest, &signature));
        let other = SigningKeyFile::generate("health").unwrap_or_else(|e| unreachable!("{e}"));
        let other_key =
            parse_public_key(&other.public().public_key).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(!verify(&other_key, &package.digest(), &signature));
    }

    #[test]
    fn a_public_key_file_with_a_wrong_id_is_refused() {
        let key = SigningKeyFile::generate("tax").unwrap_or_else(|e| unreachable!("{e}"));
        let mut public = key.public();
        public.key_id = "0000000000000000".into();
        assert!(matches!(
            PublicKeyFile::parse(&public.to_toml()),
            Err(KeyError::Invalid(_))
        ));
        assert!(matches!(
            SigningKeyFile::generate("Tax Bureau"),
            Err(KeyError::Department(_))
        ));
    }
}
