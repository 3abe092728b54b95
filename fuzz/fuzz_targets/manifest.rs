//! Any text as `onething.toml`: never a panic; a manifest that parses
//! serialises back to one that parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onething_registry::Manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(manifest) = Manifest::parse(text) {
        let again = toml::to_string(&manifest).expect("a parsed manifest serialises");
        let reparsed = Manifest::parse(&again).expect("a serialised manifest parses");
        assert_eq!(manifest, reparsed);
    }
});
