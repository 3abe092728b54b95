//! Trust: department keys and grant ceilings.

use super::*;

impl<S: RegistryStore> Registry<S> {
    /// Trusts `key` for its department. Trusting a key again is a no-op; a
    /// key already trusted for another department, or revoked, is refused.
    pub async fn trust_key(
        &mut self,
        key: &PublicKeyFile,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(TrustedKey, bool), RegistryError> {
        let key = PublicKeyFile::parse(&key.to_toml())?;
        if let Some(existing) = self.keys.get(&key.key_id) {
            if let Some(revoked_at) = existing.revoked_at {
                return Err(RegistryError::Conflict(format!(
                    "key `{}` was revoked at {revoked_at} and cannot be trusted again: make a new key",
                    key.key_id
                )));
            }
            if existing.department != key.department {
                return Err(RegistryError::Conflict(format!(
                    "key `{}` is already trusted for department `{}`; one key signs for one department",
                    key.key_id, existing.department
                )));
            }
            return Ok((existing.clone(), false));
        }
        let trusted = TrustedKey {
            key_id: key.key_id.clone(),
            department: key.department.clone(),
            public_key: key.public_key.clone(),
            trusted_at: now,
            revoked_at: None,
        };
        self.store
            .apply(
                vec![(format!("key/{}", trusted.key_id), Some(json(&trusted)?))],
                action(
                    actor,
                    "key.trust",
                    trusted.key_id.clone(),
                    format!("department={}", trusted.department),
                ),
            )
            .await?;
        self.keys.insert(trusted.key_id.clone(), trusted.clone());
        Ok((trusted, true))
    }

    /// Revokes a key: packages it signed are refused from now on.
    pub async fn revoke_key(
        &mut self,
        key_id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<TrustedKey, RegistryError> {
        let mut key = self
            .keys
            .get(key_id)
            .cloned()
            .ok_or_else(|| RegistryError::NotFound(format!("no trusted key `{key_id}`")))?;
        if key.revoked_at.is_some() {
            return Ok(key);
        }
        key.revoked_at = Some(now);
        self.store
            .apply(
                vec![(format!("key/{key_id}"), Some(json(&key)?))],
                action(
                    actor,
                    "key.revoke",
                    key_id.to_owned(),
                    format!("department={}", key.department),
                ),
            )
            .await?;
        self.keys.insert(key_id.to_owned(), key.clone());
        Ok(key)
    }

    /// Every key ever trusted, revoked ones included.
    pub fn keys(&self) -> Vec<TrustedKey> {
        self.keys.values().cloned().collect()
    }

    /// Sets a department's grant ceiling.
    pub async fn set_ceiling(
        &mut self,
        department: &str,
        ceiling: Ceiling,
        actor: &str,
    ) -> Result<(), RegistryError> {
        if !is_name(department) {
            return Err(RegistryError::Key(keys::KeyError::Department(
                department.to_owned(),
            )));
        }
        ceiling.validate()?;
        self.store
            .apply(
                vec![(format!("ceiling/{department}"), Some(json(&ceiling)?))],
                action(
                    actor,
                    "grants.set",
                    department.to_owned(),
                    format!(
                        "datasets=[{}] dispatch=[{}]",
                        ceiling.datasets.join(","),
                        ceiling.dispatch.join(",")
                    ),
                ),
            )
            .await?;
        self.ceilings.insert(department.to_owned(), ceiling);
        Ok(())
    }

    /// A department's grant ceiling (empty when none was set).
    pub fn ceiling(&self, department: &str) -> Ceiling {
        self.ceilings.get(department).cloned().unwrap_or_default()
    }

    /// Every department's ceiling.
    pub fn ceilings(&self) -> &BTreeMap<String, Ceiling> {
        &self.ceilings
    }
}
