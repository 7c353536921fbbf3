//! Bad input: truncated conn.log, wrong header, IPv6, missing fields, arbitrary bytes.
//! Errors name file:line; bad data lines are skipped and counted; nothing panics.

use mamori_core::Lang;
use mamori_exit::{EgressOptions, analyze, conntrack, zeek};
use proptest::prelude::*;
use std::path::Path;

const HDR: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2020-03-31-15-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n";

fn line(ts: f64, resp: &str, port: u16, bytes: u64) -> String {
    format!(
        "{ts:.6}\tC1\t203.0.113.10\t40000\t{resp}\t{port}\ttcp\tssl\t0.2\t{bytes}\t100\tSF\tT\tF\t0\tShADadFf\t4\t900\t3\t300\t-\n"
    )
}

fn write(dir: &Path, name: &str, s: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, s).expect("write");
    p
}

#[test]
fn truncated_file_is_counted_not_fatal() {
    let d = tempfile::tempdir().expect("tmp");
    let mut s = String::from(HDR);
    for i in 0..50 {
        s.push_str(&line(
            1585666800.0 + f64::from(i) * 60.0,
            "198.51.100.5",
            443,
            500,
        ));
    }
    s.push_str(&line(1585669900.0, "2001:db8::77", 443, 500));
    let full = line(1585670000.0, "198.51.100.5", 443, 500);
    s.push_str(&full[..full.len() / 2]);
    let p = write(d.path(), "conn.log", &s);
    let r = analyze(&EgressOptions::new(&p), "h", Lang::En).expect("analyze");
    assert_eq!(r.stats.conns, 51);
    assert_eq!(r.stats.conn_skipped, 1);
    assert_eq!(
        r.stats.skip_examples[0].0, 60,
        "{:?}",
        r.stats.skip_examples
    );
    assert!(r.state.dests.contains_key("[2001:db8::77]:443"));
}

#[test]
fn wrong_header_names_file_and_line() {
    let d = tempfile::tempdir().expect("tmp");
    let p = write(
        d.path(),
        "dns-not-conn.log",
        "#separator \\x09\n#path\tdns\n#fields\tts\tuid\tquery\tanswers\n1.0\tC\tx\ty\n",
    );
    let e = analyze(&EgressOptions::new(&p), "h", Lang::En)
        .unwrap_err()
        .to_string();
    assert!(e.contains("dns-not-conn.log:3:"), "{e}");
    assert!(e.contains("id.resp_h"), "{e}");
    let p = write(d.path(), "csv.log", "ts,host\n1,2\n");
    let e = analyze(&EgressOptions::new(&p), "h", Lang::En)
        .unwrap_err()
        .to_string();
    assert!(e.contains("csv.log:1:"), "{e}");
    let e = analyze(
        &EgressOptions::new(d.path().join("missing.log")),
        "h",
        Lang::En,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("missing.log"), "{e}");
}

#[test]
fn missing_fields_are_skipped_or_fatal_when_nothing_is_usable() {
    let d = tempfile::tempdir().expect("tmp");
    let mut s = String::from(HDR);
    s.push_str(&line(1585666800.0, "198.51.100.5", 443, 500));
    s.push_str("1585666900.0\tC2\t203.0.113.10\t1\t-\t443\ttcp\t-\t-\t-\t-\tS0\tT\tF\t0\tS\t1\t60\t0\t0\t-\n");
    s.push_str("{\"ts\":1585667000.0,\"id.resp_h\":\"198.51.100.9\"}\n");
    let p = write(d.path(), "conn.log", &s);
    let r = analyze(&EgressOptions::new(&p), "h", Lang::En).expect("analyze");
    assert_eq!((r.stats.conns, r.stats.conn_skipped), (1, 2));
    let p = write(d.path(), "bad.log", &format!("{HDR}garbage\n"));
    let e = analyze(&EgressOptions::new(&p), "h", Lang::En)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.log:9:"), "{e}");
    // Bad orders file: error names it.
    let p = write(
        d.path(),
        "ok.log",
        &format!("{HDR}{}", line(1585666800.0, "198.51.100.5", 443, 1)),
    );
    let o = write(d.path(), "orders.jsonl", "not json\n");
    let mut opts = EgressOptions::new(&p);
    opts.orders = Some(o);
    let e = analyze(&opts, "h", Lang::En).unwrap_err().to_string();
    assert!(e.contains("orders.jsonl:1:"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn conn_parser_never_panics_on_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = zeek::parse_conn_log(Path::new("fuzz.log"), &data);
        let _ = zeek::parse_dns_log(Path::new("fuzz.log"), &data);
    }

    #[test]
    fn conn_parser_never_panics_on_lines(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("#separator \\x09".to_string()),
                Just("#separator \\x2".to_string()),
                Just("#fields\tts\tid.resp_h\tid.resp_p\torig_bytes".to_string()),
                Just("#set_separator\t".to_string()),
                "[0-9.]{0,20}\t[0-9a-f:.]{0,40}\t[0-9]{0,6}\t[-0-9e.]{0,12}",
                "\\{\"ts\":[0-9.e+-]{0,12},\"id.resp_h\":\"[0-9a-f:.]{0,20}\",\"id.resp_p\":[0-9-]{0,7}\\}",
                ".{0,80}",
            ],
            0..40,
        )
    ) {
        let text = lines.join("\n");
        if let Ok((recs, st)) = zeek::parse_conn_log(Path::new("p.log"), text.as_bytes()) {
            prop_assert_eq!(recs.len(), st.records);
            prop_assert!(st.records + st.skipped <= st.lines);
        }
    }

    #[test]
    fn conntrack_parser_never_panics_on_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let (mut out, mut st) = (Vec::new(), conntrack::ParseStats::default());
        conntrack::parse_datagram(&data, &mut out, &mut st);
        prop_assert_eq!(out.len() as u64, st.events);
    }

    /// Valid kernel-shaped messages with bytes overwritten and a random length: events
    /// or counted skips, never a panic.
    #[test]
    fn conntrack_parser_never_panics_on_mutated_messages(
        v6 in any::<bool>(),
        kind in 0u8..3,
        ports in any::<(u16, u16)>(),
        bytes in any::<u64>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..12),
        cut in any::<usize>(),
    ) {
        use conntrack::{CtCounters, CtEvent, CtKind, CtTuple};
        let (src, dst): (std::net::IpAddr, std::net::IpAddr) = if v6 {
            ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
        } else {
            ("192.0.2.1".parse().unwrap(), "203.0.113.9".parse().unwrap())
        };
        let ev = CtEvent {
            kind: [CtKind::New, CtKind::Update, CtKind::Destroy][usize::from(kind)],
            family: if v6 { 10 } else { 2 },
            id: Some(7),
            orig: CtTuple { src, dst, proto: 6, sport: ports.0, dport: ports.1 },
            reply: Some(CtTuple { src: dst, dst: src, proto: 6, sport: ports.1, dport: ports.0 }),
            status: Some(8),
            mark: None,
            zone: None,
            counters_orig: Some(CtCounters { packets: 1, bytes }),
            counters_reply: None,
            start_ns: Some(1),
            stop_ns: None,
        };
        let clean = conntrack::encode_event(&ev);
        let (mut out, mut st) = (Vec::new(), conntrack::ParseStats::default());
        conntrack::parse_datagram(&clean, &mut out, &mut st);
        prop_assert_eq!(out, vec![ev]);
        let mut b = clean.clone();
        for (at, v) in edits {
            let n = b.len();
            b[at % n] = v;
        }
        b.truncate(cut % (clean.len() + 1));
        let (mut out, mut st) = (Vec::new(), conntrack::ParseStats::default());
        conntrack::parse_datagram(&b, &mut out, &mut st);
        prop_assert!(out.len() <= 1);
    }
}
