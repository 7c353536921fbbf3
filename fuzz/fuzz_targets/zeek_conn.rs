#![no_main]
//! Fuzz the Zeek conn.log / dns.log readers: arbitrary bytes must give records or a
//! file:line error, never a panic. Run: `cargo fuzz run zeek_conn` (nightly).

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok((recs, st)) = mamori_exit::zeek::parse_conn_log(Path::new("fuzz.log"), data) {
        assert_eq!(recs.len(), st.records);
    }
    let _ = mamori_exit::zeek::parse_dns_log(Path::new("fuzz.log"), data);
    let _ = mamori_exit::orders::parse_orders_jsonl(Path::new("fuzz.log"), data);
});
