//! The registry's refusals and its version bookkeeping, on the in-memory
//! store. (The host's end-to-end tests repeat the refusals over HTTP with
//! real compiled plugins and sled.)

use onething_registry::{Ceiling, MemoryStore, Package, Registry, RegistryError, SigningKeyFile};
use std::sync::Arc;

/// The smallest component that names the scenario export in its export
/// section (the world check reads names; it does not instantiate).
fn component(exports: &[&str]) -> Vec<u8> {
    let mut body = vec![exports.len() as u8];
    for name in exports {
        body.push(0x00);
        body.push(name.len() as u8);
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&[0x05, 0x00, 0x00]); // instance 0, no type
    }
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.push(11); // component export section
    bytes.push(body.len() as u8);
    bytes.extend_from_slice(&body);
    bytes
}

fn scenario_component() -> Vec<u8> {
    component(&["onething:scenario/scenario@0.1.0"])
}

fn manifest(version: &str, department: &str, datasets: &[&str]) -> String {
    let datasets: Vec<String> = datasets.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        "id = \"demo\"\nversion = \"{version}\"\ndepartment = \"{department}\"\ntitle = \"Demo\"\n\n[grants]\ndatasets = [{}]\n",
        datasets.join(", ")
    )
}

fn signed(key: &SigningKeyFile, manifest: String, component: Vec<u8>) -> Vec<u8> {
    let mut package = Package::new(manifest, component).unwrap_or_else(|e| unreachable!("{e}"));
    key.sign(&mut package);
    package.encode()
}

async fn registry_with(key: &SigningKeyFile) -> Registry<Arc<MemoryStore>> {
    let store = Arc::new(MemoryStore::default());
    let mut registry = Registry::open(store)
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
    let now = chrono::Utc::now();
    registry
        .trust_key(&key.public(), "test", now)
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
    registry
        .set_ceiling(
            &key.department,
            Ceiling {
                datasets: vec!["health/*".into()],
                dispatch: vec![],
            },
            "test",
        )
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
    registry
}

fn key(department: &str) -> SigningKeyFile {
    SigningKeyFile::generate(department).unwrap_or_else(|e| unreachable!("{e}"))
}

#[tokio::test]
async fn every_refusal_says_why() {
    let health = key("health");
    let registry = registry_with(&health).await;
    let good = signed(
        &health,
        manifest("1.0.0", "health", &["health/birth-certificates"]),
        scenario_component(),
    );
    assert!(registry.verify(&good).is_ok());

    // Unsigned.
    let unsigned = Package::new(manifest("1.0.0", "health", &[]), scenario_component())
        .unwrap_or_else(|e| unreachable!("{e}"))
        .encode();
    assert!(matches!(
        registry.verify(&unsigned),
        Err(RegistryError::Unsigned)
    ));

    // Any byte of the manifest or component flipped: tampered.
    // Offsets into the manifest and the component sections.
    let manifest_start = 8 + 1 + 8;
    let manifest_len = manifest("1.0.0", "health", &["health/birth-certificates"]).len();
    let component_start = manifest_start + manifest_len + 1 + 8;
    let component_len = scenario_component().len();
    for index in [
        manifest_start,
        manifest_start + 20,
        manifest_start + manifest_len - 1,
        component_start,
        component_start + component_len / 2,
        component_start + component_len - 1,
    ] {
        let mut tampered = good.clone();
        tampered[index] ^= 0x01;
        let refused = registry.verify(&tampered);
        assert!(
            matches!(refused, Err(RegistryError::Tampered)),
            "byte {index}: {refused:?}"
        );
    }

    // A key nobody trusts.
    let stranger = key("health");
    let by_stranger = signed(
        &stranger,
        manifest("1.0.0", "health", &[]),
        scenario_component(),
    );
    let refused = registry.verify(&by_stranger);
    assert!(
        matches!(refused, Err(RegistryError::UntrustedKey { .. })),
        "{refused:?}"
    );

    // A trusted key of another department.
    let mut registry = registry;
    let tax = key("tax");
    registry
        .trust_key(&tax.public(), "test", chrono::Utc::now())
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
    let wrong_department = signed(&tax, manifest("1.0.0", "health", &[]), scenario_component());
    let refused = registry.verify(&wrong_department);
    assert!(
        matches!(&refused, Err(RegistryError::WrongDepartment { key_department, .. }) if key_department == "tax"),
        "{refused:?}"
    );

    // A grant beyond the ceiling.
    let greedy = signed(
        &health,
        manifest("1.0.0", "health", &["public-security/residents"]),
        scenario_component(),
    );
    let refused = registry.verify(&greedy);
    assert!(
        matches!(&refused, Err(RegistryError::GrantBeyondCeiling { value, .. }) if value == "public-security/residents"),
        "{refused:?}"
    );

    // The wrong world: no scenario export; a core module.
    let wrong_world = signed(
        &health,
        manifest("1.0.0", "health", &[]),
        component(&["wasi:http/incoming-handler@0.2.0"]),
    );
    let refused = registry.verify(&wrong_world);
    assert!(
        matches!(refused, Err(RegistryError::WrongWorld(_))),
        "{refused:?}"
    );
    let core = signed(
        &health,
        manifest("1.0.0", "health", &[]),
        b"\0asm\x01\0\0\0".to_vec(),
    );
    assert!(matches!(
        registry.verify(&core),
        Err(RegistryError::WrongWorld(_))
    ));

    // A revoked key.
    registry
        .revoke_key(&health.key_id(), "test", chrono::Utc::now())
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
    assert!(matches!(
        registry.verify(&good),
        Err(RegistryError::RevokedKey { .. })
    ));
}

#[tokio::test]
async fn versions_activate_roll_back_and_survive_a_reopen() {
    let health = key("health");
    let mut registry = registry_with(&health).await;
    let now = chrono::Utc::now();
    let v1 = signed(
        &health,
        manifest("1.0.0", "health", &[]),
        scenario_component(),
    );
    let v2 = signed(
        &health,
        manifest("2.0.0", "health", &[]),
        scenario_component(),
    );
    let published = registry
        .publish(&v1, "test", now)
        .await
        .map_err(|e| e.to_string());
    assert!(published.as_ref().is_ok_and(|p| p.created), "{published:?}");
    // The same package again: accepted, nothing new.
    let again = registry
        .publish(&v1, "test", now)
        .await
        .map_err(|e| e.to_string());
    assert!(again.is_ok_and(|p| !p.created));
    // The same version with other content: refused.
    let clash = signed(
        &health,
        manifest("1.0.0", "health", &["health/birth-certificates"]),
        scenario_component(),
    );
    let refused = registry.publish(&clash, "test", now).await;
    assert!(
        matches!(refused, Err(RegistryError::VersionExists { .. })),
        "{refused:?}"
    );
    registry
        .publish(&v2, "test", now)
        .await
        .map_err(|e| e.to_string())
        .ok();

    let one = semver::Version::new(1, 0, 0);
    let two = semver::Version::new(2, 0, 0);
    assert_eq!(
        registry.activate("demo", &one, "test").await.ok(),
        Some(None)
    );
    assert_eq!(
        registry.activate("demo", &two, "test").await.ok(),
        Some(Some(one.clone()))
    );
    let rolled = registry
        .rollback("demo", "test")
        .await
        .map_err(|e| e.to_string());
    assert_eq!(rolled, Ok((Some(two.clone()), one.clone())));
    assert!(matches!(
        registry.rollback("demo", "test").await,
        Err(RegistryError::Conflict(_))
    ));
    assert!(matches!(
        registry.remove("demo", &one, "test").await,
        Err(RegistryError::Conflict(_))
    ));

    // One blob for two versions of the same component.
    let blobs = registry_store_blobs(&registry).await;
    assert_eq!(blobs, 1);

    // Reopen on the same store: everything is still there.
    let store = registry_store(&registry);
    let reopened = Registry::open(store).await.map_err(|e| e.to_string());
    let reopened = reopened.unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(reopened.state("demo").active, Some(one));
    assert_eq!(reopened.versions("demo").len(), 2);
    assert_eq!(reopened.keys().len(), 1);
    let record = reopened.version("demo", &two).cloned();
    let component = match record {
        Some(record) => reopened.component(&record).await.ok(),
        None => None,
    };
    assert_eq!(component, Some(scenario_component()));
}

fn registry_store(registry: &Registry<Arc<MemoryStore>>) -> Arc<MemoryStore> {
    registry.store().clone()
}

async fn registry_store_blobs(registry: &Registry<Arc<MemoryStore>>) -> usize {
    use onething_registry::RegistryStore;
    registry
        .store()
        .scan("blob/")
        .await
        .map(|b| b.len())
        .unwrap_or(0)
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any bytes: a typed refusal, never a panic, never an acceptance.
        #[test]
        fn random_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap_or_else(|e| unreachable!("{e}"));
            let key = key("health");
            let registry = rt.block_on(registry_with(&key));
            prop_assert!(registry.verify(&bytes).is_err());
        }

        /// A signed package with any one bit flipped is never accepted.
        #[test]
        fn a_flipped_bit_is_never_accepted(index in any::<usize>(), bit in 0u8..8) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap_or_else(|e| unreachable!("{e}"));
            let key = key("health");
            let registry = rt.block_on(registry_with(&key));
            let mut package = signed(&key, manifest("1.0.0", "health", &[]), scenario_component());
            prop_assert!(registry.verify(&package).is_ok());
            let index = index % package.len();
            package[index] ^= 1 << bit;
            prop_assert!(registry.verify(&package).is_err(), "byte {} bit {}", index, bit);
        }
    }
}
