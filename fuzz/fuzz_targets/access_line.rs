//! Fuzz the access-log line parser, URL decoder and request classifier with arbitrary
//! bytes: none of them may panic. Run: `cargo +nightly fuzz run access_line` in `fuzz/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mamori_entrance::parse_line_for_fuzz(data);
});
