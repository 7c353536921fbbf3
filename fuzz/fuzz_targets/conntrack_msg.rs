#![no_main]
//! Fuzz the conntrack netlink parser: arbitrary bytes (as one datagram from the socket)
//! must give events or counted skips, never a panic; an event re-encoded parses back to
//! itself. Run: `cargo fuzz run conntrack_msg` (nightly).

use libfuzzer_sys::fuzz_target;
use mamori_exit::conntrack::{CtEvent, ParseStats, encode_event, parse_datagram};

fn one_family(e: &CtEvent) -> bool {
    let v4 = e.orig.src.is_ipv4();
    e.orig.dst.is_ipv4() == v4
        && e.reply
            .is_none_or(|r| r.src.is_ipv4() == v4 && r.dst.is_ipv4() == v4)
}

fuzz_target!(|data: &[u8]| {
    let (mut out, mut st) = (Vec::new(), ParseStats::default());
    parse_datagram(data, &mut out, &mut st);
    assert_eq!(out.len() as u64, st.events);
    for e in out.iter().filter(|e| one_family(e)) {
        let (mut again, mut st2) = (Vec::new(), ParseStats::default());
        parse_datagram(&encode_event(e), &mut again, &mut st2);
        assert_eq!(again.as_slice(), std::slice::from_ref(e));
    }
});
