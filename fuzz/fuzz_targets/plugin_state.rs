//! Any text a plugin hands back as its state: accepted if and only if it
//! is JSON within the size limit (the host's check must agree with a full
//! JSON parse).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let Ok(state) = std::str::from_utf8(rest) else {
        return;
    };
    let max = usize::from(limit) * 4;
    let accepted = onething_host::runtime::check_state(state, max).is_ok();
    let is_json = serde_json::from_str::<serde_json::Value>(state).is_ok();
    assert_eq!(accepted, is_json && state.len() <= max, "{state:?}");
});
