//! Demo seeding: the example plugins packed, signed with their
//! department's demo key and published through the registry's checks.

use std::path::Path;

use onething_registry::{Package, RegistryError, SigningKeyFile};

use super::{DEMO_ACTOR, DeployError, Deployer};
use crate::plugins;

impl Deployer {
    /// Demo seeding: for each plugin directory under `dir`, trust its
    /// department's demo key, raise that department's ceiling to what the
    /// plugin asks, pack and sign it with the demo key, and publish it
    /// through the registry's checks. A plugin never activated before is
    /// activated; so is a version higher than every stored one (a new
    /// release of an example). A failing plugin is reported and skipped.
    pub async fn seed_demo(&self, dir: &Path) -> Vec<DeployError> {
        let dirs = match plugins::plugin_dirs(dir) {
            Ok(dirs) => dirs,
            Err(e) => return vec![e.into()],
        };
        let mut errors = Vec::new();
        for plugin_dir in dirs {
            if let Err(e) = self.seed_one(&plugin_dir).await {
                tracing::error!(dir = %plugin_dir.display(), error = %e, "demo plugin not seeded");
                errors.push(e);
            }
        }
        errors
    }

    async fn seed_one(&self, dir: &Path) -> Result<(), DeployError> {
        let (text, manifest, wasm) = plugins::read_plugin_dir(dir)?;
        // Seeded before with the same content and loaded: nothing to do
        // (this keeps a restart with many demo plugins fast).
        let digest = hex::encode(onething_registry::package::digest(text.as_bytes(), &wasm));
        {
            let registry = self.registry.lock().await;
            if registry
                .version(&manifest.id, &manifest.version)
                .is_some_and(|r| r.digest == digest)
                && self.plugins.is_loaded(&manifest.id, &manifest.version)
            {
                return Ok(());
            }
        }
        let key = SigningKeyFile::demo(&manifest.department).map_err(RegistryError::from)?;
        let (newest, never_active) = {
            let mut registry = self.registry.lock().await;
            registry
                .trust_key(&key.public(), DEMO_ACTOR, self.clock.now())
                .await?;
            let mut ceiling = registry.ceiling(&manifest.department);
            if ceiling.first_excess(&manifest).is_some() {
                for dataset in &manifest.grants.datasets {
                    if !ceiling.datasets.contains(dataset) {
                        ceiling.datasets.push(dataset.clone());
                    }
                }
                for department in &manifest.grants.dispatch {
                    if !ceiling.dispatch.contains(department) {
                        ceiling.dispatch.push(department.clone());
                    }
                }
                registry
                    .set_ceiling(&manifest.department, ceiling, DEMO_ACTOR)
                    .await?;
            }
            let state = registry.state(&manifest.id);
            let newest = registry
                .versions(&manifest.id)
                .iter()
                .all(|r| r.version < manifest.version);
            (newest, state.active.is_none() && state.history.is_empty())
        };
        let mut package = Package::new(text, wasm)
            .map_err(|e| DeployError::Registry(RegistryError::Manifest(e)))?;
        key.sign(&mut package);
        self.upload(&package.encode(), DEMO_ACTOR, newest || never_active)
            .await?;
        Ok(())
    }
}
