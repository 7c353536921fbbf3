#![no_main]
//! Fuzz the CSP report endpoint's body parser (JSON from any browser on the internet, via
//! the shop's reverse proxy): arbitrary bytes must give violations or an error, never a
//! panic; every violation makes at most one finding, whose script sample holds no card
//! number; the policy parser takes any `original-policy`. Run: `cargo fuzz run csp_report`
//! (nightly). `crates/mamori-page/src/csp.rs` runs the same checks as a proptest.

use libfuzzer_sys::fuzz_target;
use mamori_core::Lang;
use mamori_page::csp::{Policy, parse_reports, violation_finding};

fuzz_target!(|data: &[u8]| {
    let Ok(violations) = parse_reports(data) else {
        return;
    };
    for v in &violations {
        if let Some(f) = violation_finding(v, 1, Lang::Ja, "fuzz") {
            let sample = f.evidence["sample"].as_str().unwrap_or_default();
            assert_eq!(mamori_core::pan::mask_pans(sample), sample);
        }
        let p = Policy::parse(&v.original_policy);
        let _ = p.weakenings(&Policy::parse("script-src 'self'"));
    }
});
