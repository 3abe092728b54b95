//! Versions: verifying a package, storing it, and switching the active
//! version (activate, roll back, deactivate, remove).

use super::*;

impl<S: RegistryStore> Registry<S> {
    /// Runs every check on a package file: framing, signature present,
    /// key trusted and not revoked, signature over the content, manifest,
    /// key's department = manifest's, grants within the ceiling, world.
    pub fn verify(&self, bytes: &[u8]) -> Result<Verified, RegistryError> {
        let sections = Sections::read(bytes).map_err(RegistryError::Malformed)?;
        let signature = sections.signature.clone().ok_or(RegistryError::Unsigned)?;
        if signature.algorithm != ALGORITHM {
            return Err(RegistryError::Algorithm(signature.algorithm));
        }
        let key = self
            .keys
            .get(&signature.key_id)
            .ok_or_else(|| RegistryError::UntrustedKey {
                key_id: signature.key_id.clone(),
            })?;
        if let Some(revoked_at) = key.revoked_at {
            return Err(RegistryError::RevokedKey {
                key_id: key.key_id.clone(),
                revoked_at,
            });
        }
        let public = keys::parse_public_key(&key.public_key)?;
        let digest = sections.digest();
        if !keys::verify(&public, &digest, &signature.signature) {
            return Err(RegistryError::Tampered);
        }
        let manifest_text = String::from_utf8(sections.manifest.to_vec())
            .map_err(|_| RegistryError::Manifest(PackageError::ManifestEncoding))?;
        let manifest = Manifest::parse(&manifest_text)
            .map_err(|e| RegistryError::Manifest(PackageError::Manifest(e)))?;
        if manifest.department != key.department {
            return Err(RegistryError::WrongDepartment {
                key_id: key.key_id.clone(),
                key_department: key.department.clone(),
                manifest_department: manifest.department,
            });
        }
        if let Some((kind, value)) = self.ceiling(&manifest.department).first_excess(&manifest) {
            return Err(RegistryError::GrantBeyondCeiling {
                department: manifest.department,
                kind,
                value,
            });
        }
        let world = world::check(sections.component).map_err(RegistryError::WrongWorld)?;
        Ok(Verified {
            world,
            manifest,
            manifest_text,
            component: sections.component.to_vec(),
            digest: hex::encode(digest),
            signed_by: key.clone(),
        })
    }

    /// Verifies a package and stores it as a new version (not active). The
    /// very same package again is accepted and changes nothing; the same
    /// version with other content is refused.
    pub async fn publish(
        &mut self,
        bytes: &[u8],
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Published, RegistryError> {
        let verified = self.verify(bytes)?;
        self.store_verified(verified, actor, now).await
    }

    /// Stores a package that [`Registry::verify`] accepted.
    pub async fn store_verified(
        &mut self,
        verified: Verified,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Published, RegistryError> {
        let id = verified.manifest.id.clone();
        let version = verified.manifest.version.clone();
        if let Some(existing) = self.version(&id, &version) {
            if existing.digest == verified.digest {
                return Ok(Published {
                    record: existing.clone(),
                    created: false,
                });
            }
            return Err(RegistryError::VersionExists {
                id,
                version: version.to_string(),
                existing: existing.digest.clone(),
            });
        }
        let component_sha256 = hex::encode(Sha256::digest(&verified.component));
        let record = VersionRecord {
            id: id.clone(),
            version: version.clone(),
            department: verified.manifest.department.clone(),
            digest: verified.digest.clone(),
            component_sha256: component_sha256.clone(),
            component_bytes: verified.component.len() as u64,
            manifest_text: verified.manifest_text,
            signed_by: verified.signed_by.key_id.clone(),
            uploaded_at: now,
            uploaded_by: actor.to_owned(),
            world: verified.world.as_str().to_owned(),
        };
        let mut writes = vec![(version_key(&id, &version), Some(json(&record)?))];
        let blob_key = format!("blob/{component_sha256}");
        if self.store.get(&blob_key).await?.is_none() {
            writes.push((blob_key, Some(verified.component)));
        }
        self.store
            .apply(
                writes,
                action(
                    actor,
                    "plugin.upload",
                    format!("{id}@{version}"),
                    format!("digest={} signed_by={}", record.digest, record.signed_by),
                ),
            )
            .await?;
        self.versions
            .entry(id)
            .or_default()
            .insert(version, record.clone());
        Ok(Published {
            record,
            created: true,
        })
    }

    /// One stored version.
    pub fn version(&self, id: &str, version: &semver::Version) -> Option<&VersionRecord> {
        self.versions.get(id)?.get(version)
    }

    /// A plugin's stored versions, lowest first.
    pub fn versions(&self, id: &str) -> Vec<VersionRecord> {
        self.versions
            .get(id)
            .map(|v| v.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every plugin id with stored versions, and its state.
    pub fn plugins(&self) -> Vec<(String, PluginState)> {
        self.versions
            .keys()
            .map(|id| (id.clone(), self.state(id)))
            .collect()
    }

    /// A plugin's state.
    pub fn state(&self, id: &str) -> PluginState {
        self.plugins.get(id).cloned().unwrap_or_default()
    }

    /// A stored version's component, checked against its digest.
    pub async fn component(&self, record: &VersionRecord) -> Result<Vec<u8>, RegistryError> {
        let key = format!("blob/{}", record.component_sha256);
        let bytes = self.store.get(&key).await?.ok_or_else(|| {
            RegistryError::Corrupt(format!(
                "the component of {}@{} ({key}) is missing",
                record.id, record.version
            ))
        })?;
        if hex::encode(Sha256::digest(&bytes)) != record.component_sha256 {
            return Err(RegistryError::Corrupt(format!(
                "the component of {}@{} does not match its digest: the blob store was changed on disk",
                record.id, record.version
            )));
        }
        Ok(bytes)
    }

    /// Checks that `version` of `id` may become active: it is stored and its
    /// key is not revoked.
    pub fn can_activate(
        &self,
        id: &str,
        version: &semver::Version,
    ) -> Result<VersionRecord, RegistryError> {
        let record = self.version(id, version).ok_or_else(|| {
            RegistryError::NotFound(format!("{id} has no stored version {version}"))
        })?;
        if let Some(key) = self.keys.get(&record.signed_by)
            && let Some(revoked_at) = key.revoked_at
        {
            return Err(RegistryError::RevokedKey {
                key_id: key.key_id.clone(),
                revoked_at,
            });
        }
        Ok(record.clone())
    }

    /// Makes `version` the active version of `id`; the one before goes on
    /// the history for rollback. Returns the previous active version.
    pub async fn activate(
        &mut self,
        id: &str,
        version: &semver::Version,
        actor: &str,
    ) -> Result<Option<semver::Version>, RegistryError> {
        self.can_activate(id, version)?;
        let mut state = self.state(id);
        let previous = state.active.clone();
        if previous.as_ref() == Some(version) {
            return Ok(previous);
        }
        if let Some(previous) = &previous {
            state.history.push(previous.clone());
        }
        state.active = Some(version.clone());
        self.write_state(id, state, actor, "plugin.activate", version, &previous)
            .await?;
        Ok(previous)
    }

    /// Returns `id` to the version active before the current one. Returns
    /// (from, to).
    pub async fn rollback(
        &mut self,
        id: &str,
        actor: &str,
    ) -> Result<(Option<semver::Version>, semver::Version), RegistryError> {
        let mut state = self.state(id);
        let current = state.active.clone();
        let target = loop {
            let Some(candidate) = state.history.pop() else {
                return Err(RegistryError::Conflict(format!(
                    "{id} has no earlier version to roll back to"
                )));
            };
            if Some(&candidate) != current.as_ref() && self.can_activate(id, &candidate).is_ok() {
                break candidate;
            }
        };
        state.active = Some(target.clone());
        self.write_state(id, state, actor, "plugin.rollback", &target, &current)
            .await?;
        Ok((current, target))
    }

    /// Stops `id` from taking new cases (its open cases go on).
    pub async fn deactivate(
        &mut self,
        id: &str,
        actor: &str,
    ) -> Result<Option<semver::Version>, RegistryError> {
        if !self.versions.contains_key(id) {
            return Err(RegistryError::NotFound(format!("no plugin `{id}`")));
        }
        let mut state = self.state(id);
        let Some(previous) = state.active.take() else {
            return Ok(None);
        };
        state.history.push(previous.clone());
        let subject = format!("{id}@{previous}");
        let writes = vec![(format!("plugin/{id}"), Some(json(&state)?))];
        self.store
            .apply(
                writes,
                action(actor, "plugin.deactivate", subject, String::new()),
            )
            .await?;
        self.plugins.insert(id.to_owned(), state);
        Ok(Some(previous))
    }

    /// Removes a stored version that is not active. The caller checks that
    /// no open case is pinned to it. The component blob stays if another
    /// version shares it.
    pub async fn remove(
        &mut self,
        id: &str,
        version: &semver::Version,
        actor: &str,
    ) -> Result<(), RegistryError> {
        let record = self.version(id, version).cloned().ok_or_else(|| {
            RegistryError::NotFound(format!("{id} has no stored version {version}"))
        })?;
        let mut state = self.state(id);
        if state.active.as_ref() == Some(version) {
            return Err(RegistryError::Conflict(format!(
                "{id}@{version} is active: activate another version or deactivate {id} first"
            )));
        }
        state.history.retain(|v| v != version);
        let shared = self
            .versions
            .values()
            .flat_map(|v| v.values())
            .any(|r| r.component_sha256 == record.component_sha256 && r.version != *version);
        let mut writes = vec![
            (version_key(id, version), None),
            (format!("plugin/{id}"), Some(json(&state)?)),
        ];
        if !shared {
            writes.push((format!("blob/{}", record.component_sha256), None));
        }
        self.store
            .apply(
                writes,
                action(
                    actor,
                    "plugin.remove",
                    format!("{id}@{version}"),
                    format!("digest={}", record.digest),
                ),
            )
            .await?;
        if let Some(versions) = self.versions.get_mut(id) {
            versions.remove(version);
        }
        self.plugins.insert(id.to_owned(), state);
        Ok(())
    }

    async fn write_state(
        &mut self,
        id: &str,
        state: PluginState,
        actor: &str,
        what: &str,
        version: &semver::Version,
        previous: &Option<semver::Version>,
    ) -> Result<(), RegistryError> {
        let detail = match previous {
            Some(previous) => format!("previous={previous}"),
            None => "previous=none".into(),
        };
        self.store
            .apply(
                vec![(format!("plugin/{id}"), Some(json(&state)?))],
                action(actor, what, format!("{id}@{version}"), detail),
            )
            .await?;
        self.plugins.insert(id.to_owned(), state);
        Ok(())
    }
}
