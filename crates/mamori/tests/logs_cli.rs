//! `mamori logs` end to end, as a user runs it: in an empty directory with no config
//! file, on logs written by the test (and a small shopsim log when the kit is there).

mod common;
use common::*;
use std::path::Path;

const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

fn line(ip: &str, hms: &str, req: &str, status: u16, ua: &str) -> String {
    format!("{ip} - - [04/Dec/2026:{hms} +0000] \"{req} HTTP/1.1\" {status} 812 \"-\" \"{ua}\"\n")
}

/// A browsing customer, an SQL injection answered 200, and (with `card_testing`) one
/// address failing six payments in a minute; plus three malformed lines.
fn write_log(path: &Path, card_testing: bool) {
    let mut s = String::new();
    for (hms, p) in [
        ("10:00:00", "/"),
        ("10:00:01", "/html/template/default/assets/css/style.css"),
        ("10:00:20", "/products/list?category_id=2"),
        ("10:01:05", "/products/detail/12"),
    ] {
        s += &line("192.0.2.10", hms, &format!("GET {p}"), 200, BROWSER);
    }
    s += &line(
        "203.0.113.9",
        "10:02:00",
        "GET /products/list?id=1%27%20UNION%20SELECT%20login_id,password%20FROM%20dtb_member--",
        200,
        "Mozilla/5.0",
    );
    if card_testing {
        for i in 0..6 {
            s += &line(
                "198.51.100.7",
                &format!("10:03:{:02}", i * 9),
                "POST /shopping/checkout",
                200,
                BROWSER,
            );
        }
    }
    let mut bytes = s.into_bytes();
    // Malformed: prose, binary garbage with invalid UTF-8, a line cut short.
    bytes.extend_from_slice(b"this is not an access log line\n");
    bytes.extend_from_slice(b"\xff\xfe\x00\x01garbage\x80\x81\n");
    bytes.extend_from_slice(b"203.0.113.9 - - [04/Dec/2026:10:05:00 +0000] \"GET\n");
    std::fs::write(path, bytes).unwrap();
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn json_lines_without_config_and_the_exit_code_rule() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    write_log(&log, true);
    let out = mamori(dir.path())
        .args(["--json", "logs", "access.log"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A high finding (card testing) with the default --fail-on high: exit 1.
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let fs = findings(&out.stdout);
    assert!(!fs.is_empty());
    for f in &fs {
        assert_eq!(f["layer"], "entrance", "{f}");
        for key in [
            "id",
            "kind",
            "severity",
            "time",
            "detected_at",
            "host",
            "summary",
        ] {
            assert!(f.get(key).is_some(), "{key} missing: {f}");
        }
    }
    let sqli = fs
        .iter()
        .find(|f| f["kind"] == "attack.request" && f["evidence"]["family"] == "sqli")
        .unwrap_or_else(|| panic!("no sqli finding: {fs:?}"));
    assert_eq!(sqli["ip"], "203.0.113.9");
    assert_eq!(sqli["time"], "2026-12-04T10:02:00.000Z");
    let card = fs
        .iter()
        .find(|f| f["kind"] == "attack.card_testing")
        .unwrap_or_else(|| panic!("no card testing finding: {fs:?}"));
    assert_eq!(card["ips"], serde_json::json!(["198.51.100.7"]));
    assert_eq!(card["severity"], "high");
    // The customer is not flagged.
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("192.0.2.10"),
        "benign address flagged"
    );
    // Malformed lines are counted on stderr, not fatal.
    assert!(
        stderr.contains("14 lines read, 3 malformed (skipped)"),
        "{stderr}"
    );
    // No config: nothing written beside the log (no store, no state).
    assert_eq!(entries(dir.path()), ["access.log"]);

    // Only low/medium findings: exit 0; --fail-on low makes them count.
    write_log(&log, false);
    let out = mamori(dir.path())
        .args(["--json", "logs", "access.log"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        findings(&out.stdout)
            .iter()
            .all(|f| f["severity"] == "low" || f["severity"] == "medium")
    );
    mamori(dir.path())
        .args(["--json", "--fail-on", "low", "logs", "access.log"])
        .assert()
        .code(1);
}

#[test]
fn japanese_human_report() {
    let dir = tempfile::tempdir().unwrap();
    write_log(&dir.path().join("access.log"), true);
    let out = mamori(dir.path())
        .args(["--lang", "ja", "logs", "access.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("クレジットマスター"), "{stdout}");
    assert!(
        stdout.contains("203.0.113.9 からの攻撃リクエスト"),
        "{stdout}"
    );
    assert!(!stdout.trim_start().starts_with('{'), "human, not JSON");
    assert!(
        stderr.contains("14 行を読み込み、不正な行 3 行をスキップしました"),
        "{stderr}"
    );
}

#[test]
fn missing_file_is_one_clear_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for (lang, want) in [
        ("en", "cannot analyse the logs"),
        ("ja", "ログを解析できません"),
    ] {
        let out = mamori(dir.path())
            .args(["--json", "--lang", lang, "logs", "nope.log"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(out.stdout.is_empty(), "nothing on stdout");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(
            lines[0].contains("nope.log") && lines[0].contains(want),
            "{stderr}"
        );
    }
    // A bad --format is a usage error: exit 2 as well.
    mamori(dir.path())
        .args(["logs", "--format", "xml", "nope.log"])
        .assert()
        .code(2);
}

#[test]
fn small_shopsim_log_without_config() {
    let Some(kit) = shopsim() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("shop.log");
    let mut args = vec!["access-log".as_ref(), log.as_os_str()];
    args.extend(
        ["--days", "3", "--lines", "20000", "--seed", "7"]
            .iter()
            .map(std::ffi::OsStr::new),
    );
    run_shopsim(&kit, args);
    let out = mamori(dir.path())
        .args(["--json", "logs", "shop.log"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    assert!(stderr.contains(" 0 malformed"), "{stderr}");
    let fs = findings(&out.stdout);
    // The exit code follows the rule: 1 exactly when something is high or critical.
    let high = fs
        .iter()
        .any(|f| f["severity"] == "high" || f["severity"] == "critical");
    assert_eq!(out.status.code(), Some(i32::from(high)), "{stderr}");
    // The scanner of the ground truth is reported.
    let truth = std::fs::read_to_string(dir.path().join("shop.log.truth.jsonl")).unwrap();
    let scanner = truth
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["class"] == "scanner")
        .and_then(|v| v["ip"].as_str().map(String::from))
        .expect("a scanner in the truth");
    assert!(
        fs.iter()
            .any(|f| f["kind"] == "attack.request" && f["ip"] == scanner.as_str()),
        "scanner {scanner} not reported"
    );
    // No protected address (office, search bots, monitor, carrier NAT) is flagged.
    let benign = std::fs::read_to_string(dir.path().join("shop.log.benign.jsonl")).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    for v in benign
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    {
        if let Some(ip) = v["ip"].as_str() {
            assert!(
                !stdout.contains(&format!("\"{ip}\"")),
                "{} {ip} flagged",
                v["category"]
            );
        }
    }
}
