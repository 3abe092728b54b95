//! Any bytes as a component: the world check never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = onething_registry::world::check(data);
});
