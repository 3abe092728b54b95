//! Any string as a bearer token: never a panic, and nothing verifies but
//! the one token the provider signed (the seed the fuzzer mutates, written
//! to `fuzz/seeds/token`).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use onething_host::identity::{Role, Verifier, issue_dev};

/// A fixed clock, so that the seed token is always valid.
const NOW: i64 = 1_800_000_000;

fn fixture() -> &'static (Verifier, String) {
    static FIXTURE: OnceLock<(Verifier, String)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let token = issue_dev(Role::Citizen, "500103199001010018", NOW, 3600);
        let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/seeds/token");
        let _ = std::fs::create_dir_all(seeds);
        let _ = std::fs::write(format!("{seeds}/citizen.jwt"), &token);
        (Verifier::dev(), token)
    })
}

fuzz_target!(|data: &[u8]| {
    let (verifier, signed) = fixture();
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(caller) = verifier.verify(token, NOW + 60) {
        assert_eq!(token, signed, "a token the provider did not sign verified");
        assert_eq!(caller.role, Role::Citizen);
    }
});
