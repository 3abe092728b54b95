//! Any bytes as a package, against a registry that trusts one department
//! key: never a panic, and nothing verifies unless it is exactly what that
//! key signed. The seed corpus (`fuzz/seeds/package_verify`) holds a
//! signed package; the fuzzer mutates it.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use onething_registry::{Ceiling, MemoryStore, Package, Registry, SigningKeyFile};

/// The smallest component that exports the scenario interface.
fn component() -> Vec<u8> {
    let name = b"onething:scenario/scenario@0.1.0";
    let mut body = vec![1u8, 0x00, name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(&[0x05, 0x00, 0x00]);
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.push(11);
    bytes.push(body.len() as u8);
    bytes.extend_from_slice(&body);
    bytes
}

const MANIFEST: &str = "id = \"fuzzed\"\nversion = \"1.0.0\"\ndepartment = \"health\"\ntitle = \"Fuzzed\"\n\n[grants]\ndatasets = [\"health/births\"]\n";

struct Fixture {
    registry: Registry<Arc<MemoryStore>>,
    signed: Package,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let key = SigningKeyFile::demo("health").expect("the demo key");
        let mut signed = Package::new(MANIFEST.to_owned(), component()).expect("a package");
        key.sign(&mut signed);
        let registry = rt.block_on(async {
            let mut registry = Registry::open(Arc::new(MemoryStore::default()))
                .await
                .expect("a registry");
            registry
                .trust_key(&key.public(), "fuzz", chrono::Utc::now())
                .await
                .expect("trust");
            registry
                .set_ceiling(
                    "health",
                    Ceiling {
                        datasets: vec!["health/*".into()],
                        dispatch: vec![],
                    },
                    "fuzz",
                )
                .await
                .expect("ceiling");
            registry
        });
        // Written once so the fuzzer starts from a real signed package.
        let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/seeds/package_verify");
        let _ = std::fs::create_dir_all(seeds);
        let _ = std::fs::write(format!("{seeds}/signed.otpkg"), signed.encode());
        Fixture { registry, signed }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    if let Ok(verified) = fixture.registry.verify(data) {
        assert_eq!(verified.manifest_text, fixture.signed.manifest_text);
        assert_eq!(verified.component, fixture.signed.component);
    }
});
