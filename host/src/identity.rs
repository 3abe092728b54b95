//! Who is calling: bearer JWTs from the platform's identity provider.
//!
//! A token is a compact JWS signed with **EdDSA** (ed25519): header
//! `{"alg":"EdDSA","typ":"JWT"}`, and claims
//!
//! | claim | meaning |
//! |---|---|
//! | `iss` | the identity provider; must equal `[identity] issuer` |
//! | `sub` | the citizen's id number, the officer's id (or, without `department`, the department id), or the device id |
//! | `role` | `citizen`, `department` or `device` |
//! | `exp` | expiry (seconds since the epoch); required |
//! | `iat`, `nbf` | optional; a token not yet valid is refused |
//! | `department` | a department token's department, when `sub` names an officer |
//! | `place` | optional: where a device is installed (its events' place), or the place of an officer's office; a path of slugs (`cq/yubei/longxi/jinlong/g07`) |
//!
//! Any other `alg` (including `none`) is refused before the signature is
//! looked at; the key is the configured one, never one named by the token.
//! A citizen token makes its holder the applicant of the cases they open and
//! the only one who sees them; a department token opens that department's
//! queue and items only; a device token reports events.
//!
//! A department token names an **officer** (`sub`) of a department
//! (`department`) at an office (`place`): the officer sees the department's
//! items owned by offices at their place and below, and acts on those their
//! own office owns (see `service::Officer`). A token with no `department`
//! claim is the department itself (`sub`), acting at its top office, as
//! tokens did before officers existed.
//!
//! For the quick start the host trusts a **development identity provider**
//! whose signing key is derived from a public seed (SHA-256 of
//! `onething dev identity v1`), so that `onething token issue --citizen ID`
//! can mint tokens with no set-up. It is trusted only in demo mode and only
//! when no `[identity]` is configured; anyone can mint its tokens.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The issuer of the development identity provider's tokens.
pub const DEV_ISSUER: &str = "onething-dev";

/// The longest a token's `sub` may be.
const MAX_SUBJECT: usize = 128;

/// What kind of caller a token names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A citizen (or an enterprise's representative): `sub` is their id.
    Citizen,
    /// A department back office: `sub` is the department id.
    Department,
    /// A device that reports events (a sensor): `sub` is its id.
    Device,
    /// A platform operator: `sub` is their name, recorded on the audit log
    /// with every admin action they take. Accepted only from a configured
    /// `[identity]` provider, never from the development one.
    Operator,
}

impl Role {
    /// The role's name in tokens and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Citizen => "citizen",
            Role::Department => "department",
            Role::Device => "device",
            Role::Operator => "operator",
        }
    }
}

/// A token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject: the citizen, department or device.
    pub sub: String,
    /// The caller's role.
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The department of an officer (`sub`); none: `sub` is the department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// The place the caller is at: a device's place of installation, or
    /// the place of an officer's office.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
}

/// An identified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The role.
    pub role: Role,
    /// The subject.
    pub subject: String,
    /// The token's `place` claim (a well-formed place id; whether the tree
    /// has it is checked where it is used).
    pub place: Option<String>,
    /// A department token's department: its `department` claim, or else
    /// its subject; none for other roles.
    pub department: Option<String>,
}

/// Why a token was refused. Every variant answers 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// No `Authorization: Bearer` header.
    #[error("send a token as `Authorization: Bearer <token>` (see `onething token issue`)")]
    Missing,
    /// Not three base64url parts of JSON.
    #[error("the token is malformed: {0}")]
    Malformed(String),
    /// An algorithm other than EdDSA.
    #[error("the token is signed with `{0}`; only EdDSA tokens are accepted")]
    Algorithm(String),
    /// The signature does not verify with the provider's key.
    #[error("the token's signature is not the identity provider's")]
    Signature,
    /// Another issuer.
    #[error("the token is issued by `{0}`, not by this host's identity provider")]
    Issuer(String),
    /// Expired or not yet valid.
    #[error("the token {0}")]
    Expired(String),
    /// A subject that is empty or too long.
    #[error("the token's subject is not valid")]
    Subject,
    /// A `department` claim on a token that is not a department token, or
    /// one that is not a department id.
    #[error(
        "the token's department claim is not valid: only department tokens carry one, and it is a department id (lowercase letters, digits and `-`)"
    )]
    Department,
    /// A `place` claim that is not a place id.
    #[error("the token's place claim is not a place id (slugs joined by `/`, e.g. cq/yubei)")]
    Place,
    /// No identity provider is configured.
    #[error(
        "no identity provider is configured: set [identity] issuer and public_key in the config file"
    )]
    NotConfigured,
}

/// Checks tokens against one identity provider's key.
///
/// A verified token is remembered (up to [`CACHE_ENTRIES`] of them) with
/// its caller and validity window, so that the signature, ~50 µs of CPU,
/// is checked once per token rather than once per request; the window is
/// checked every time. The same token string always verifies the same way,
/// so the cache changes no answer.
#[derive(Clone)]
pub struct Verifier {
    issuer: String,
    key: VerifyingKey,
    leeway_s: i64,
    cache: std::sync::Arc<std::sync::Mutex<HashMap<String, Verified>>>,
    development: bool,
}

/// How many verified tokens are remembered; when full, the cache starts
/// over.
pub const CACHE_ENTRIES: usize = 65_536;

#[derive(Clone)]
struct Verified {
    caller: Caller,
    exp: i64,
    nbf: Option<i64>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

fn part<T: for<'de> Deserialize<'de>>(text: &str, what: &str) -> Result<T, IdentityError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| IdentityError::Malformed(format!("{what} is not base64url: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| IdentityError::Malformed(format!("{what} is not valid: {e}")))
}

impl Verifier {
    /// A verifier for `issuer`'s tokens, signed by `public_key` (32 bytes,
    /// hex).
    pub fn new(issuer: &str, public_key: &str, leeway_s: u64) -> Result<Self, String> {
        let key = onething_registry::keys::parse_public_key(public_key)
            .map_err(|e| format!("identity public_key: {e}"))?;
        Ok(Verifier {
            issuer: issuer.to_owned(),
            key,
            leeway_s: i64::try_from(leeway_s).unwrap_or(i64::MAX),
            cache: Default::default(),
            development: false,
        })
    }

    /// The development provider's verifier.
    pub fn dev() -> Self {
        Verifier {
            issuer: DEV_ISSUER.to_owned(),
            key: dev_key().verifying_key(),
            leeway_s: 60,
            cache: Default::default(),
            development: true,
        }
    }

    /// Whether this is the development provider that demo mode trusts
    /// (anyone can mint its tokens).
    pub fn is_development(&self) -> bool {
        self.development
    }

    /// Checks a token at `now` (seconds since the epoch).
    pub fn verify(&self, token: &str, now: i64) -> Result<Caller, IdentityError> {
        let remembered = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned();
        let verified = match remembered {
            Some(verified) => verified,
            None => {
                let verified = self.verify_signed(token)?;
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= CACHE_ENTRIES {
                    cache.clear();
                }
                cache.insert(token.to_owned(), verified.clone());
                verified
            }
        };
        if verified.exp.saturating_add(self.leeway_s) < now {
            return Err(IdentityError::Expired("has expired".into()));
        }
        if verified
            .nbf
            .is_some_and(|nbf| nbf.saturating_sub(self.leeway_s) > now)
        {
            return Err(IdentityError::Expired("is not valid yet".into()));
        }
        Ok(verified.caller)
    }

    /// Everything about a token that does not depend on the time.
    fn verify_signed(&self, token: &str) -> Result<Verified, IdentityError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(IdentityError::Malformed(
                "a token has three dot-separated parts".into(),
            ));
        };
        let parsed: Header = part(header, "the header")?;
        if parsed.alg != "EdDSA" {
            return Err(IdentityError::Algorithm(parsed.alg));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| IdentityError::Signature)?;
        let signature = ed25519_dalek::Signature::from_slice(&signature)
            .map_err(|_| IdentityError::Signature)?;
        let signed = &token[..header.len() + 1 + payload.len()];
        self.key
            .verify_strict(signed.as_bytes(), &signature)
            .map_err(|_| IdentityError::Signature)?;
        let claims: Claims = part(payload, "the claims")?;
        if claims.iss != self.issuer {
            return Err(IdentityError::Issuer(claims.iss));
        }
        let subject = claims.sub.trim();
        if subject.is_empty()
            || subject.len() > MAX_SUBJECT
            || subject.chars().any(char::is_control)
            || (claims.role == Role::Department
                && claims.department.is_none()
                && !onething_registry::is_name(subject))
        {
            return Err(IdentityError::Subject);
        }
        let department = match (claims.role, claims.department) {
            (Role::Department, Some(department)) => {
                if !onething_registry::is_name(&department) {
                    return Err(IdentityError::Department);
                }
                Some(department)
            }
            (Role::Department, None) => Some(subject.to_owned()),
            (_, Some(_)) => return Err(IdentityError::Department),
            (_, None) => None,
        };
        if let Some(place) = &claims.place
            && (place.len() > MAX_SUBJECT || !place.split('/').all(crate::places::is_slug))
        {
            return Err(IdentityError::Place);
        }
        Ok(Verified {
            caller: Caller {
                role: claims.role,
                subject: subject.to_owned(),
                place: claims.place,
                department,
            },
            exp: claims.exp,
            nbf: claims.nbf,
        })
    }
}

/// The development provider's public key, hex (for a config that trusts
/// it explicitly, e.g. in tests).
pub fn dev_public_key_hex() -> String {
    hex::encode(dev_key().verifying_key().as_bytes())
}

/// The development identity provider's signing key (public seed).
fn dev_key() -> SigningKey {
    let seed: [u8; 32] = Sha256::digest(b"onething dev identity v1").into();
    SigningKey::from_bytes(&seed)
}

/// Mints a token with `secret` (32 bytes): what an identity provider does.
/// The host itself only verifies; this is for `onething token issue` and
/// tests.
pub fn issue(secret: &[u8; 32], claims: &Claims) -> String {
    let key = SigningKey::from_bytes(secret);
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","typ":"JWT"}"#);
    // Claims of strings and integers always serialise.
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signed = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(key.sign(signed.as_bytes()).to_bytes());
    format!("{signed}.{signature}")
}

/// Mints a development token for `role` and `subject`, valid for
/// `ttl_s` seconds from `now`.
pub fn issue_dev(role: Role, subject: &str, now: i64, ttl_s: i64) -> String {
    issue_dev_at(role, subject, None, now, ttl_s)
}

/// Like [`issue_dev`], with a `place` claim (a device's place).
pub fn issue_dev_at(
    role: Role,
    subject: &str,
    place: Option<&str>,
    now: i64,
    ttl_s: i64,
) -> String {
    let claims = Claims {
        iss: DEV_ISSUER.to_owned(),
        sub: subject.to_owned(),
        role,
        exp: now.saturating_add(ttl_s),
        iat: Some(now),
        nbf: None,
        department: None,
        place: place.map(str::to_owned),
    };
    issue(&dev_key().to_bytes(), &claims)
}

/// Mints a development token for officer `officer` of `department`, at
/// the office at `place` (none: the department's top office).
pub fn issue_dev_officer(
    officer: &str,
    department: &str,
    place: Option<&str>,
    now: i64,
    ttl_s: i64,
) -> String {
    let claims = Claims {
        iss: DEV_ISSUER.to_owned(),
        sub: officer.to_owned(),
        role: Role::Department,
        exp: now.saturating_add(ttl_s),
        iat: Some(now),
        nbf: None,
        department: Some(department.to_owned()),
        place: place.map(str::to_owned),
    };
    issue(&dev_key().to_bytes(), &claims)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_795_000_000;

    #[test]
    fn a_dev_token_verifies_and_names_its_caller() {
        let token = issue_dev(Role::Citizen, "500103199001010018", NOW, 3600);
        let caller = Verifier::dev().verify(&token, NOW).unwrap();
        assert_eq!(caller.role, Role::Citizen);
        assert_eq!(caller.subject, "500103199001010018");
    }

    #[test]
    fn an_officer_token_names_officer_department_and_place() {
        let verifier = Verifier::dev();
        let token = issue_dev_officer("officer-li", "public-security", Some("cq/yubei"), NOW, 60);
        let caller = verifier.verify(&token, NOW).unwrap();
        assert_eq!(caller.role, Role::Department);
        assert_eq!(caller.subject, "officer-li");
        assert_eq!(caller.department.as_deref(), Some("public-security"));
        assert_eq!(caller.place.as_deref(), Some("cq/yubei"));
        // Without the claim, the subject is the department.
        let legacy = verifier
            .verify(&issue_dev(Role::Department, "hrss", NOW, 60), NOW)
            .unwrap();
        assert_eq!(legacy.department.as_deref(), Some("hrss"));
        assert_eq!(legacy.place, None);
        // An officer's id need not be a department id; the department must.
        let bad = issue_dev_officer("李 警官", "Public Security", None, NOW, 60);
        assert_eq!(verifier.verify(&bad, NOW), Err(IdentityError::Department));
        let mut claims = Claims {
            iss: DEV_ISSUER.into(),
            sub: "A".into(),
            role: Role::Citizen,
            exp: NOW + 60,
            iat: None,
            nbf: None,
            department: Some("hrss".into()),
            place: None,
        };
        let citizen = issue(&dev_key().to_bytes(), &claims);
        assert_eq!(
            verifier.verify(&citizen, NOW),
            Err(IdentityError::Department),
            "only department tokens name a department"
        );
        claims.role = Role::Department;
        claims.sub = "李 警官".into();
        let officer = verifier
            .verify(&issue(&dev_key().to_bytes(), &claims), NOW)
            .unwrap();
        assert_eq!(officer.subject, "李 警官");
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let verifier = Verifier::dev();
        let token = issue_dev(Role::Citizen, "A", NOW, 60);
        assert!(verifier.verify(&token, NOW).is_ok());
        assert!(verifier.verify(&token, NOW + 30).is_ok());
        assert!(matches!(
            verifier.verify(&token, NOW + 3600),
            Err(IdentityError::Expired(_))
        ));
    }

    #[test]
    fn expired_foreign_forged_and_none_tokens_are_refused() {
        let verifier = Verifier::dev();
        let expired = issue_dev(Role::Citizen, "A", NOW - 7200, 3600);
        assert!(matches!(
            verifier.verify(&expired, NOW),
            Err(IdentityError::Expired(_))
        ));
        let other_key = issue(
            &[9u8; 32],
            &Claims {
                iss: DEV_ISSUER.into(),
                sub: "A".into(),
                role: Role::Citizen,
                exp: NOW + 60,
                iat: None,
                nbf: None,
                department: None,
                place: None,
            },
        );
        assert_eq!(
            verifier.verify(&other_key, NOW),
            Err(IdentityError::Signature)
        );
        // A changed subject under the original signature.
        let token = issue_dev(Role::Citizen, "A", NOW, 3600);
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_claims = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"iss":"{DEV_ISSUER}","sub":"B","role":"citizen","exp":{}}}"#,
            NOW + 3600
        ));
        parts[1] = &forged_claims;
        assert_eq!(
            verifier.verify(&parts.join("."), NOW),
            Err(IdentityError::Signature)
        );
        // alg: none, no signature.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            parts[1]
        );
        assert_eq!(
            verifier.verify(&none, NOW),
            Err(IdentityError::Algorithm("none".into()))
        );
        // A department token whose subject is not a department name.
        let bad = issue_dev(Role::Department, "Public Security", NOW, 60);
        assert_eq!(verifier.verify(&bad, NOW), Err(IdentityError::Subject));
    }

    proptest! {
        /// Any string is a caller or a typed refusal, never a panic.
        #[test]
        fn verify_never_panics(token in ".{0,300}") {
            let _ = Verifier::dev().verify(&token, NOW);
        }
    }
}
