//! Bad input never panics and never stops the run: binary garbage, invalid UTF-8, 1 MB
//! lines, gzip, out-of-order timestamps.

use mamori_entrance::{LogsOptions, analyze, parse_line_for_fuzz};
use proptest::prelude::*;
use std::io::Write;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_line_for_fuzz(&data);
    }

    #[test]
    fn parser_never_panics_on_near_valid(ip in "[0-9a-f:.]{1,40}", t in "[0-9A-Za-z/: +-]{0,30}",
                                         req in "[ -~]{0,80}", st in "[0-9]{0,5}", rest in "[ -~]{0,60}") {
        let l = format!("{ip} - - [{t}] \"{req}\" {st} {rest}");
        let _ = parse_line_for_fuzz(l.as_bytes());
        let j = format!("{{\"remote_addr\":\"{ip}\",\"time_local\":\"{t}\",\"request_uri\":\"{req}\",\"status\":\"{st}\"}}");
        let _ = parse_line_for_fuzz(j.as_bytes());
    }
}

#[test]
fn malformed_lines_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("access.log");
    let mut f = std::fs::File::create(&p).unwrap();
    let good = "198.51.100.1 - - [01/May/2020:09:00:01 +0900] \"GET / HTTP/1.1\" 200 10 \"-\" \"Mozilla/5.0\"\n";
    f.write_all(good.as_bytes()).unwrap();
    f.write_all(b"\x00\x01\x02\xff\xfe garbage\n").unwrap();
    f.write_all(&vec![b'a'; 1 << 20]).unwrap();
    f.write_all(b"\n").unwrap();
    f.write_all(b"198.51.100.2 - - [01/May/2020:09:00:02 +0900] \"GET /\xff\xfe HTTP/1.1\" 200 1 \"-\" \"\xc3\x28\"\n").unwrap();
    // Out of order by a day.
    f.write_all(
        b"198.51.100.3 - - [30/Apr/2020:09:00:02 +0900] \"GET /.env HTTP/1.1\" 404 1 \"-\" \"-\"\n",
    )
    .unwrap();
    f.write_all(good.as_bytes()).unwrap();
    f.write_all(b"no newline at end").unwrap();
    drop(f);
    let gz = dir.path().join("access.log.1.gz");
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    e.write_all(good.replace("01/May", "29/Apr").as_bytes())
        .unwrap();
    e.finish().unwrap();
    let opts = LogsOptions {
        files: vec![p, gz],
        ..Default::default()
    };
    let rep = analyze(&opts, "h", mamori_core::Lang::En, &|_| {}).unwrap();
    assert_eq!(rep.stats.lines, 8);
    assert_eq!(rep.stats.malformed, 3, "{:?}", rep.stats);
    assert_eq!(rep.stats.per_format.get("combined"), Some(&5));
    assert!(
        rep.findings
            .iter()
            .any(|f| f.kind == mamori_core::Kind::AttackRequest
                && f.evidence["family"] == "sensitive_file")
    );
    // The rotated (older) file was read first.
    assert_eq!(
        rep.stats.first_event.unwrap().to_rfc3339(),
        "2020-04-29T00:00:01+00:00"
    );
}

#[test]
fn missing_file_names_the_file() {
    let opts = LogsOptions {
        files: vec!["/nonexistent/x.log".into()],
        ..Default::default()
    };
    let e = analyze(&opts, "h", mamori_core::Lang::En, &|_| {}).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/x.log"), "{e}");
}
