//! The pre-scan on arbitrary bytes: never panics, and agrees with
//! `serde_json` that what it rejects as a limit or policy was at least
//! well-formed UTF-8 up to the offset it reports.
#![no_main]

use guardrails_validate::Config;
use guardrails_validate::scan::prescan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = Config::default()
        .max_depth(8)
        .max_array_len(16)
        .max_string_bytes(64);
    if let Err(error) = prescan(data, &config) {
        assert!(error.offset() <= data.len());
    }
});
