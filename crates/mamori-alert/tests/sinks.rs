//! Every sink against a real receiver on this machine: a file, a unix datagram socket,
//! a UDP socket, an HTTP server and an SMTP server (plain and STARTTLS), all on loopback
//! or in a temporary directory. No mocks: the dispatcher and sinks under test are the
//! ones the binary runs.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use base64::Engine;
use chrono::{TimeZone, Utc};
use mamori_alert::{AlertConfig, AlertDispatcher, AlertError};
use mamori_core::{Finding, Kind, Lang, Severity};

/// A Luhn-valid test card number, and its masked form.
const PAN: &str = "4111111111111111";
const MASKED: &str = "411111******1111";
/// A guard so a broken test fails instead of hanging; never asserted on.
const GUARD: Duration = Duration::from_secs(20);

fn finding(sev: Severity) -> Finding {
    let t = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap();
    let mut f = Finding::new(
        Kind::FileModified,
        sev,
        t,
        "shop-1",
        format!("payment module changed, card {PAN} seen"),
    )
    .with_path("app/Plugin/Payment/Card.php")
    .with_checklist(&["20-1"])
    .with_evidence(serde_json::json!({"old_hash": "aa", "new_hash": "bb", "sample": PAN}));
    f.detected_at = t + chrono::Duration::milliseconds(57);
    f
}

fn config(toml_text: &str) -> AlertConfig {
    match AlertConfig::from_toml(toml_text) {
        Ok(c) => c,
        Err(e) => panic!("config did not parse: {}", e.localized(Lang::En)),
    }
}

/// Fast retries for tests.
const FAST: &str = "[alert]\nmax_attempts = 4\nbackoff_initial_ms = 10\nbackoff_max_ms = 40\n";

fn toml_path(p: &std::path::Path) -> String {
    serde_json::to_string(&p.to_string_lossy()).unwrap()
}

// ---------------------------------------------------------------- jsonl

#[test]
fn jsonl_appends_masked_lines_to_a_0600_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.jsonl");
    let cfg = config(&format!(
        "{FAST}[[alert.sink]]\ntype = \"jsonl\"\npath = {}\n",
        toml_path(&path)
    ));
    let d = AlertDispatcher::new(&cfg, "shop-1", Lang::En).unwrap();
    d.send(&finding(Severity::Critical));
    d.send(&finding(Severity::Medium)); // below the default min_severity (high)
    d.send(&finding(Severity::High));
    let stats = d.shutdown(GUARD);
    assert_eq!(stats[0].sent, 2, "{stats:?}");
    assert_eq!(stats[0].failed, 0);

    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(PAN), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["kind"], "file.modified");
        assert!(v["summary"].as_str().unwrap().contains(MASKED));
        assert_eq!(v["evidence"]["sample"], MASKED);
    }
    let sev: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["severity"].to_string())
        .collect();
    assert_eq!(sev, ["\"critical\"", "\"high\""]);
}

#[test]
fn jsonl_narrows_an_existing_world_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.jsonl");
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = config(&format!(
        "[[alert.sink]]\ntype = \"jsonl\"\npath = {}\n",
        toml_path(&path)
    ));
    let d = AlertDispatcher::new(&cfg, "shop-1", Lang::En).unwrap();
    d.shutdown(GUARD);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

// ---------------------------------------------------------------- syslog

#[test]
fn syslog_rfc5424_to_a_unix_datagram_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("log.sock");
    let receiver = UnixDatagram::bind(&sock_path).unwrap();
    receiver.set_read_timeout(Some(GUARD)).unwrap();
    let cfg = config(&format!(
        "{FAST}[[alert.sink]]\ntype = \"syslog\"\nfacility = \"auth\"\nsocket = {}\n",
        toml_path(&sock_path)
    ));
    let d = AlertDispatcher::new(&cfg, "shop-1", Lang::Ja).unwrap();
    let f = finding(Severity::Critical);
    d.send(&f);
    let mut buf = vec![0u8; 65536];
    let n = receiver.recv(&mut buf).expect("no syslog datagram arrived");
    let line = String::from_utf8(buf[..n].to_vec()).unwrap();
    let stats = d.shutdown(GUARD);
    assert_eq!(stats[0].sent, 1);

    // auth (4) * 8 + crit (2) = 34; version 1.
    assert!(line.starts_with("<34>1 "), "{line}");
    let fields: Vec<&str> = line.splitn(8, ' ').collect();
    assert_eq!(fields.len(), 8, "{line}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(fields[1]).is_ok(),
        "{line}"
    );
    assert_eq!(fields[2], "shop-1");
    assert_eq!(fields[3], "mamori");
    assert_eq!(fields[4], std::process::id().to_string());
    assert_eq!(fields[5], "file.modified");
    assert_eq!(fields[6], "-");
    let msg = fields[7];
    assert!(
        msg.starts_with("critical file.modified: payment module changed"),
        "{msg}"
    );
    assert!(msg.contains(MASKED) && !msg.contains(PAN), "{msg}");
    assert!(msg.contains("path=app/Plugin/Payment/Card.php"), "{msg}");
    assert!(msg.contains(&format!("id={}", f.id)), "{msg}");
}

#[test]
fn syslog_rfc3164_by_udp_with_local_facility() {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver.set_read_timeout(Some(GUARD)).unwrap();
    let addr = receiver.local_addr().unwrap();
    let cfg = config(&format!(
        "{FAST}[[alert.sink]]\ntype = \"syslog\"\nformat = \"rfc3164\"\nfacility = \"local3\"\n\
         min_severity = \"low\"\nlocal = false\nudp = \"{addr}\"\n"
    ));
    let d = AlertDispatcher::new(&cfg, "shop-1", Lang::En).unwrap();
    d.send(&finding(Severity::Medium));
    let mut buf = vec![0u8; 65536];
    let n = receiver.recv(&mut buf).expect("no UDP datagram arrived");
    let line = String::from_utf8(buf[..n].to_vec()).unwrap();
    d.shutdown(GUARD);
    // local3 (19) * 8 + warning (4) = 156
    assert!(line.starts_with("<156>"), "{line}");
    assert!(
        line.contains(&format!(
            " shop-1 mamori[{}]: medium file.modified: ",
            std::process::id()
        )),
        "{line}"
    );
    assert!(!line.contains(PAN));
}

#[test]
fn syslog_missing_socket_counts_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&format!(
        "[alert]\nmax_attempts = 2\nbackoff_initial_ms = 5\nbackoff_max_ms = 5\n\
         [[alert.sink]]\ntype = \"syslog\"\nsocket = {}\n",
        toml_path(&dir.path().join("nothing-here"))
    ));
    let d = AlertDispatcher::new(&cfg, "shop-1", Lang::En).unwrap();
    d.send(&finding(Severity::Critical));
    let stats = d.shutdown(GUARD);
    assert_eq!((stats[0].sent, stats[0].failed), (0, 1), "{stats:?}");
}

// ---------------------------------------------------------------- webhook

struct HttpRequest {
    head: String,
    body: String,
}

/// An HTTP/1.1 server on 127.0.0.1:0 answering the given statuses in turn (the last one
/// repeats), sending each request it reads to the returned channel.
fn http_server(statuses: Vec<u16>) -> (String, mpsc::Receiver<HttpRequest>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/hook/T000/secret-token",
        listener.local_addr().unwrap()
    );
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut i = 0usize;
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let _ = s.set_read_timeout(Some(GUARD));
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") {
                match s.read(&mut byte) {
                    Ok(1) => buf.push(byte[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&buf).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            if s.read_exact(&mut body).is_err() {
                continue;
            }
            let status = statuses[i.min(statuses.len() - 1)];
            i += 1;
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
            let _ = s.flush();
            let _ = tx.send(HttpRequest {
                head,
                body: String::from_utf8_lossy(&body).to_string(),
            });
        }
    });
    (url, rx)
}

#[test]
fn webhook_posts_the_finding_with_a_text_field() {
    let (url, rx) = http_server(vec![200]);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "Bearer s3cr3t-t0ken\n").unwrap();
    let cfg = config(&format!(
        "{FAST}[[alert.sink]]\ntype = \"webhook\"\nurl = \"{url}\"\n\
         headers = {{ \"X-Shop\" = \"shop-1\" }}\nheader_files = {{ Authorization = {} }}\n",
        toml_path(&token)
    ));
    let d = AlertDispatcher::new(&cfg, "shop-1", Lang::En).unwrap();
    assert!(!format!("{d:?}").contains("s3cr3t"), "{d:?}");
    assert!(!format!("{d:?}").contains("secret-token"), "{d:?}");
    let f = finding(Severity::Critical);
    d.send(&f);
    let req = rx.recv_timeout(GUARD).expect("no request arrived");
    let stats = d.shutdown(GUARD);
    assert_eq!((stats[0].sent, stats[0].failed), (1, 0));

    assert!(
        req.head
            .starts_with("POST /hook/T000/secret-token HTTP/1.1\r\n"),
        "{}",
        req.head
    );
    let head = req.head.to_ascii_lowercase();
    assert!(
        head.contains("content-type: application/json"),
        "{}",
        req.head
    );
    assert!(
        head.contains("authorization: bearer s3cr3t-t0ken\r\n"),
        "{}",
        req.head
    );
    assert!(head.contains("x-shop: shop-1\r\n"), "{}", req.head);
    assert!(!req.body.contains(PAN), "{}", req.body);
    let v: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(v["id"], f.id.as_str());
    assert_eq!(v["kind"], "file.modified");
    assert_eq!(v["severity"], "critical");
    assert_eq!(v["host"], "shop-1");
    assert_eq!(v["path"], "app/Plugin/Payment/Card.php");
    assert_eq!(v["evidence"]["sample"], MASKED);
    assert_eq!(
        v["text"],
        format!(
            "[mamori] CRITICAL file.modified on shop-1: payment module changed, card {MASKED} seen"
        )
    );
}

#[test]
fn webhook_retries_after_two_500s_and_delivers_once() {
    let (url, rx) = http_server(vec![500, 500, 200]);
    let cfg = config(&format!(
        "{FAST}[[alert.sink]]\ntype = \"webhook\"\nurl = \"{url}\"\n"
    ));
    let d = AlertDispatcher::new(&cfg, "shop-1", Lang::Ja).unwrap();
    d.send(&finding(Severity::High));
    let mut bodies = Vec::new();
    for _ in 0..3 {
        bodies.push(rx.recv_timeout(GUARD).expect("request missing").body);
    }
    let stats = d.shutdown(GUARD);
    assert_eq!((stats[0].sent, stats[0].failed), (1, 0), "{stats:?}");
    // The same finding each time, and no fourth request.
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert!(rx.try_recv().is_err());
    let v: serde_json::Value = serde_json::from_str(&bodies[2]).unwrap();
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .starts_with("[mamori] 高 file.modified (shop-1): ")
    );
}

#[test]
fn webhook_client_error_is_not_retried() {
    let (url, rx) = http_server(vec![400, 200]);
    let cfg = config(&format!(
        "{FAST}[[alert.sink]]\ntype = \"webhook\"\nurl = \"{url}\"\n"
    ));
    let d = AlertDispatcher::new(&cfg, "shop-1", Lang::En).unwrap();
    d.send(&finding(Severity::High));
    rx.recv_timeout(GUARD).expect("request missing");
    let stats = d.shutdown(GUARD);
    assert_eq!((stats[0].sent, stats[0].failed), (0, 1), "{stats:?}");
    assert!(rx.try_recv().is_err());
}

#[test]
fn webhook_unreachable_never_blocks_send_and_counts_the_failure() {
    // A port nobody listens on: bind, note it, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = config(&format!(
        "[alert]\nmax_attempts = 2\nbackoff_initial_ms = 5\nbackoff_max_ms = 5\n\
         [[alert.sink]]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{port}/\"\n"
    ));
    let d = AlertDispatcher::new(&cfg, "shop-1", Lang::En).unwrap();
    d.send(&finding(Severity::Critical));
    let stats = d.shutdown(GUARD);
    assert_eq!((stats[0].sent, stats[0].failed), (0, 1), "{stats:?}");
    assert_eq!(stats[0].pending, 0);
    let err = stats[0].last_error.as_deref().unwrap_or_default();
    assert!(
        err.starts_with(&format!("webhook 127.0.0.1:{port}: ")),
        "{err}"
    );
}

#[test]
fn full_queue_drops_and_counts_instead_of_blocking() {
    // A server that accepts one connection and answers nothing until the test lets it
    // go keeps the worker busy, so a queue of 1 fills: later sends must return and be
    // counted as dropped.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let held = listener.accept();
        let _ = release_rx.recv();
        drop(held); // the worker's request fails; the listener closes with this thread
    });
    let cfg = config(&format!(
        "[alert]\nqueue_size = 1\nmax_attempts = 1\n\
         [[alert.sink]]\ntype = \"webhook\"\ntimeout_secs = 60\nurl = \"http://{addr}/\"\n"
    ));
    let d = AlertDispatcher::new(&cfg, "shop-1", Lang::En).unwrap();
    for _ in 0..50 {
        d.send(&finding(Severity::Critical));
    }
    let stats = d.stats();
    // At most one in flight and one queued; everything else dropped.
    assert!(stats[0].dropped >= 48, "{stats:?}");
    assert_eq!(stats[0].dropped + stats[0].pending, 50, "{stats:?}");
    release_tx.send(()).unwrap();
    server.join().unwrap();
    let stats = d.shutdown(GUARD);
    assert_eq!(stats[0].sent, 0, "{stats:?}");
    assert_eq!(stats[0].failed + stats[0].dropped, 50, "{stats:?}");
}

// ---------------------------------------------------------------- email

/// A line-oriented connection that reads byte by byte, so nothing past a line is
/// buffered (STARTTLS swaps the stream underneath).
struct Lines<S: Read + Write>(S);

impl<S: Read + Write> Lines<S> {
    fn line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let mut b = [0u8; 1];
        while !buf.ends_with(b"\r\n") {
            match self.0.read(&mut b) {
                Ok(1) => buf.push(b[0]),
                _ => return None,
            }
        }
        buf.truncate(buf.len() - 2);
        Some(String::from_utf8_lossy(&buf).to_string())
    }
    fn say(&mut self, s: &str) {
        let _ = self.0.write_all(s.as_bytes());
        let _ = self.0.flush();
    }
}

#[derive(Debug, Default)]
struct Mail {
    commands: Vec<String>,
    data: String,
    tls: bool,
}

enum Dialogue {
    Done,
    StartTls,
}

/// The SMTP dialogue after the greeting: EHLO, [STARTTLS], [AUTH], MAIL, RCPT, DATA, QUIT.
fn smtp_dialogue<S: Read + Write>(c: &mut Lines<S>, mail: &mut Mail, offer_tls: bool) -> Dialogue {
    while let Some(cmd) = c.line() {
        let upper = cmd.to_ascii_uppercase();
        mail.commands.push(cmd.clone());
        if upper.starts_with("EHLO") {
            if offer_tls {
                c.say("250-test.invalid\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n");
            } else {
                c.say("250-test.invalid\r\n250 AUTH PLAIN\r\n");
            }
        } else if upper == "STARTTLS" {
            c.say("220 go ahead\r\n");
            return Dialogue::StartTls;
        } else if upper.starts_with("AUTH") {
            c.say("235 ok\r\n");
        } else if upper.starts_with("MAIL") || upper.starts_with("RCPT") || upper == "RSET" {
            c.say("250 ok\r\n");
        } else if upper == "DATA" {
            c.say("354 go on\r\n");
            while let Some(l) = c.line() {
                if l == "." {
                    break;
                }
                mail.data.push_str(&l);
                mail.data.push('\n');
            }
            c.say("250 queued\r\n");
        } else if upper == "QUIT" {
            c.say("221 bye\r\n");
            return Dialogue::Done;
        } else {
            c.say("502 what\r\n");
        }
    }
    Dialogue::Done
}

/// An SMTP server on 127.0.0.1:0 for one connection. With `tls`, it offers STARTTLS
/// with that server config.
fn smtp_server(tls: Option<std::sync::Arc<rustls::ServerConfig>>) -> (u16, mpsc::Receiver<Mail>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let Ok((s, _)) = listener.accept() else {
            return;
        };
        let _ = s.set_read_timeout(Some(GUARD));
        let mut mail = Mail::default();
        let mut c = Lines(s);
        c.say("220 test.invalid ESMTP\r\n");
        if let Dialogue::StartTls = smtp_dialogue(&mut c, &mut mail, tls.is_some()) {
            let Some(cfg) = tls else { return };
            let conn = rustls::ServerConnection::new(cfg).unwrap();
            let mut t = Lines(rustls::StreamOwned::new(conn, c.0));
            mail.tls = true;
            smtp_dialogue(&mut t, &mut mail, false);
        }
        let _ = tx.send(mail);
    });
    (port, rx)
}

/// The decoded subject (RFC 2047 base64 words) and body (base64) of a received mail.
fn decode_mail(data: &str) -> (String, String) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (head, body) = data.split_once("\n\n").expect("no header/body split");
    // Unfold headers, then find Subject.
    let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
    let subject_raw = unfolded
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .expect("no Subject")
        .to_string();
    // RFC 2047: white space between two encoded words is dropped, any other is kept.
    let mut subject = Vec::new();
    let mut prev_encoded: Option<bool> = None;
    for word in subject_raw.split(' ') {
        let inner = word
            .strip_prefix("=?utf-8?b?")
            .or_else(|| word.strip_prefix("=?UTF-8?B?"))
            .and_then(|w| w.strip_suffix("?="));
        let encoded = inner.is_some();
        if prev_encoded.is_some_and(|p| !(p && encoded)) {
            subject.push(b' ');
        }
        match inner {
            Some(inner) => subject.extend(b64.decode(inner).expect("subject base64")),
            None => subject.extend(word.as_bytes()),
        }
        prev_encoded = Some(encoded);
    }
    assert!(
        unfolded
            .to_ascii_lowercase()
            .contains("content-transfer-encoding: base64"),
        "{head}"
    );
    let body_b64: String = body.lines().collect();
    let body = b64.decode(body_b64.trim()).expect("body base64");
    (
        String::from_utf8(subject).expect("subject utf-8"),
        String::from_utf8(body).expect("body utf-8"),
    )
}

#[test]
fn email_in_japanese_with_masked_card_number() {
    let (port, rx) = smtp_server(None);
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("smtp.pw");
    std::fs::write(&pw, "hunter2-pw\n").unwrap();
    let cfg = config(&format!(
        "{FAST}[[alert.sink]]\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         starttls = false\nfrom = \"mamori <mamori@shop.example>\"\n\
         to = [\"owner@shop.example\", \"ops@shop.example\"]\n\
         username = \"mamori\"\npassword_file = {}\n",
        toml_path(&pw)
    ));
    let d = AlertDispatcher::new(&cfg, "shop-1", Lang::Ja).unwrap();
    assert!(!format!("{d:?}").contains("hunter2"), "{d:?}");
    d.send(&finding(Severity::Critical));
    let mail = rx.recv_timeout(GUARD).expect("no mail arrived");
    let stats = d.shutdown(GUARD);
    assert_eq!((stats[0].sent, stats[0].failed), (1, 0), "{stats:?}");

    // The envelope and the password from the file.
    assert!(
        mail.commands
            .iter()
            .any(|c| c == "MAIL FROM:<mamori@shop.example>"),
        "{mail:?}"
    );
    assert!(
        mail.commands
            .iter()
            .any(|c| c == "RCPT TO:<owner@shop.example>")
    );
    assert!(
        mail.commands
            .iter()
            .any(|c| c == "RCPT TO:<ops@shop.example>")
    );
    let auth = mail
        .commands
        .iter()
        .find(|c| c.starts_with("AUTH PLAIN"))
        .expect("no AUTH");
    let cred = base64::engine::general_purpose::STANDARD
        .decode(auth.trim_start_matches("AUTH PLAIN ").trim())
        .unwrap();
    assert_eq!(cred, b"\0mamori\0hunter2-pw");

    assert!(!mail.data.contains(PAN));
    let (subject, body) = decode_mail(&mail.data);
    assert_eq!(
        subject,
        format!("[mamori] 緊急 file.modified (shop-1): payment module changed, card {MASKED} seen")
    );
    for want in [
        "mamori が shop-1 で検知しました。",
        "概要: payment module changed",
        "重大度: 緊急",
        "種類: file.modified (internal)",
        "パス: app/Plugin/Payment/Card.php",
        "発生時刻: 2026-11-24T10:00:00.000Z",
        "検知までの時間: 57 ミリ秒",
        "証拠:",
        "\"new_hash\": \"bb\"",
        MASKED,
    ] {
        assert!(body.contains(want), "missing {want:?} in:\n{body}");
    }
    assert!(!body.contains(PAN), "{body}");
    assert!(!subject.contains(PAN));
}

#[test]
fn email_in_english() {
    let (port, rx) = smtp_server(None);
    let cfg = config(&format!(
        "{FAST}[[alert.sink]]\ntype = \"email\"\nhost = \"localhost\"\nport = {port}\n\
         starttls = false\nfrom = \"mamori@shop.example\"\nto = [\"owner@shop.example\"]\n"
    ));
    let d = AlertDispatcher::new(&cfg, "shop-1", Lang::En).unwrap();
    d.send(&finding(Severity::High));
    let mail = rx.recv_timeout(GUARD).expect("no mail arrived");
    d.shutdown(GUARD);
    assert!(!mail.commands.iter().any(|c| c.starts_with("AUTH")));
    let (subject, body) = decode_mail(&mail.data);
    assert!(
        subject.starts_with("[mamori] HIGH file.modified on shop-1: "),
        "{subject}"
    );
    assert!(body.contains("Detection latency: 57 ms"), "{body}");
    assert!(body.contains("Path: app/Plugin/Payment/Card.php"), "{body}");
}

#[test]
fn email_over_starttls_with_a_private_ca() {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let server_cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into()),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.pem()).unwrap();

    let (port, rx) = smtp_server(Some(std::sync::Arc::new(server_cfg)));
    let cfg = config(&format!(
        "{FAST}[[alert.sink]]\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         from = \"mamori@shop.example\"\nto = [\"owner@shop.example\"]\nca_file = {}\n",
        toml_path(&ca)
    ));
    let d = AlertDispatcher::new(&cfg, "shop-1", Lang::En).unwrap();
    d.send(&finding(Severity::Critical));
    let mail = rx.recv_timeout(GUARD).expect("no mail arrived");
    let stats = d.shutdown(GUARD);
    assert_eq!((stats[0].sent, stats[0].failed), (1, 0), "{stats:?}");
    assert!(mail.tls, "{mail:?}");
    // Nothing of the mail went over the wire before STARTTLS.
    let starttls_at = mail.commands.iter().position(|c| c == "STARTTLS").unwrap();
    assert!(
        mail.commands[..starttls_at]
            .iter()
            .all(|c| !c.starts_with("MAIL"))
    );
    let (subject, _) = decode_mail(&mail.data);
    assert!(subject.starts_with("[mamori] CRITICAL "), "{subject}");
}

#[test]
fn email_starttls_against_an_untrusted_certificate_fails() {
    // Same server, but the client does not trust its self-signed certificate.
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let server_cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into()),
        )
        .unwrap();
    let (port, rx) = smtp_server(Some(std::sync::Arc::new(server_cfg)));
    let cfg = config(&format!(
        "[alert]\nmax_attempts = 1\n[[alert.sink]]\ntype = \"email\"\nhost = \"127.0.0.1\"\n\
         port = {port}\nfrom = \"mamori@shop.example\"\nto = [\"owner@shop.example\"]\n"
    ));
    let d = AlertDispatcher::new(&cfg, "shop-1", Lang::En).unwrap();
    d.send(&finding(Severity::Critical));
    let stats = d.shutdown(GUARD);
    assert_eq!((stats[0].sent, stats[0].failed), (0, 1), "{stats:?}");
    let err = stats[0].last_error.as_deref().unwrap_or_default();
    assert!(err.contains("certificate"), "{err}");
    if let Ok(mail) = rx.recv_timeout(GUARD) {
        assert!(
            mail.data.is_empty(),
            "mail sent over an untrusted connection"
        );
    }
}

// ---------------------------------------------------------------- config errors

fn new_err(toml_text: &str) -> AlertError {
    let cfg = config(toml_text);
    match AlertDispatcher::new(&cfg, "shop-1", Lang::En) {
        Ok(_) => panic!("config was accepted:\n{toml_text}"),
        Err(e) => e,
    }
}

#[test]
fn unknown_key_is_rejected_with_its_name() {
    let e = AlertConfig::from_toml(
        "[[alert.sink]]\ntype = \"webhook\"\nurl = \"https://x.example/\"\ntimout_secs = 3\n",
    )
    .unwrap_err();
    let en = e.localized(Lang::En);
    let ja = e.localized(Lang::Ja);
    assert!(en.contains("timout_secs"), "{en}");
    assert!(
        ja.contains("timout_secs") && ja.contains("アラート設定が不正です"),
        "{ja}"
    );

    let e = AlertConfig::from_toml("[alert]\nqueue = 5\n").unwrap_err();
    assert!(
        e.localized(Lang::En).contains("queue"),
        "{}",
        e.localized(Lang::En)
    );

    let e = AlertConfig::from_toml("[[alert.sink]]\ntype = \"pager\"\n").unwrap_err();
    assert!(
        e.localized(Lang::En).contains("pager"),
        "{}",
        e.localized(Lang::En)
    );

    // Other sections of mamori.toml are not ours to judge.
    let c = AlertConfig::from_toml("host = \"shop-1\"\n[baseline]\nx = 1\n").unwrap();
    assert_eq!(c, AlertConfig::default());
}

#[test]
fn bad_url_names_the_setting() {
    let e = new_err(
        "[[alert.sink]]\ntype = \"jsonl\"\npath = \"/dev/null\"\n\
         [[alert.sink]]\ntype = \"webhook\"\nurl = \"hooks.example.com/x\"\n",
    );
    assert_eq!(e.key(), Some("alert.sink[1].url"));
    let en = e.localized(Lang::En);
    assert!(en.starts_with("alert.sink[1].url: not a valid URL"), "{en}");
    let ja = e.localized(Lang::Ja);
    assert!(
        ja.starts_with("alert.sink[1].url: URL として不正です"),
        "{ja}"
    );

    let e = new_err("[[alert.sink]]\ntype = \"webhook\"\nurl = \"ftp://x.example/\"\n");
    assert_eq!(e.key(), Some("alert.sink[0].url"));
}

#[test]
fn missing_password_file_is_a_clear_error() {
    let e = new_err(
        "[[alert.sink]]\ntype = \"email\"\nhost = \"smtp.example.com\"\n\
         from = \"m@shop.example\"\nto = [\"o@shop.example\"]\nusername = \"m\"\n\
         password_file = \"/nonexistent/mamori/smtp.pw\"\n",
    );
    assert_eq!(e.key(), Some("alert.sink[0].password_file"));
    let en = e.localized(Lang::En);
    assert!(
        en.contains("alert.sink[0].password_file: cannot read /nonexistent/mamori/smtp.pw"),
        "{en}"
    );
    let ja = e.localized(Lang::Ja);
    assert!(ja.contains("を読み込めません"), "{ja}");
}

#[test]
fn other_config_errors() {
    // Plain SMTP to a remote host.
    let e = new_err(
        "[[alert.sink]]\ntype = \"email\"\nhost = \"smtp.example.com\"\nstarttls = false\n\
         from = \"m@shop.example\"\nto = [\"o@shop.example\"]\n",
    );
    assert_eq!(e.key(), Some("alert.sink[0].starttls"));
    // A bad recipient.
    let e = new_err(
        "[[alert.sink]]\ntype = \"email\"\nhost = \"smtp.example.com\"\n\
         from = \"m@shop.example\"\nto = [\"o@shop.example\", \"not an address\"]\n",
    );
    assert_eq!(e.key(), Some("alert.sink[0].to[1]"));
    // Username without password file.
    let e = new_err(
        "[[alert.sink]]\ntype = \"email\"\nhost = \"smtp.example.com\"\n\
         from = \"m@shop.example\"\nto = [\"o@shop.example\"]\nusername = \"m\"\n",
    );
    assert_eq!(e.key(), Some("alert.sink[0].username"));
    // No recipients.
    let e = new_err(
        "[[alert.sink]]\ntype = \"email\"\nhost = \"smtp.example.com\"\n\
         from = \"m@shop.example\"\nto = []\n",
    );
    assert_eq!(e.key(), Some("alert.sink[0].to"));
    // UDP target without a port.
    let e = new_err("[[alert.sink]]\ntype = \"syslog\"\nudp = \"logs.example.com\"\n");
    assert_eq!(e.key(), Some("alert.sink[0].udp"));
    // JSON Lines in a directory that does not exist.
    let e = new_err("[[alert.sink]]\ntype = \"jsonl\"\npath = \"/nonexistent/dir/a.jsonl\"\n");
    assert_eq!(e.key(), Some("alert.sink[0].path"));
    // Queue of zero.
    let e = new_err("[alert]\nqueue_size = 0\n");
    assert_eq!(e.key(), Some("alert.queue_size"));
    // Every message exists in both languages and they differ.
    assert_ne!(e.localized(Lang::En), e.localized(Lang::Ja));
}

#[test]
fn config_round_trips_and_defaults() {
    let text = "[alert]\nqueue_size = 64\n\
        [[alert.sink]]\ntype = \"jsonl\"\npath = \"/var/lib/mamori/alerts.jsonl\"\nmin_severity = \"medium\"\n\
        [[alert.sink]]\ntype = \"syslog\"\nfacility = \"local0\"\nformat = \"rfc3164\"\n\
        [[alert.sink]]\ntype = \"email\"\nhost = \"smtp.example.com\"\nfrom = \"m@shop.example\"\nto = [\"o@shop.example\"]\n\
        [[alert.sink]]\ntype = \"webhook\"\nurl = \"https://hooks.example.com/x\"\n";
    let c = config(text);
    assert_eq!(c.sinks.len(), 4);
    assert_eq!(c.sinks[0].min_severity(), Severity::Medium);
    assert_eq!(c.sinks[1].min_severity(), Severity::High);
    match &c.sinks[2] {
        mamori_alert::SinkConfig::Email(e) => {
            assert_eq!(e.port, 587);
            assert!(e.starttls);
        }
        other => panic!("{other:?}"),
    }
    // Serialize → parse gives the same config (the lead's `config render` relies on it).
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        alert: &'a AlertConfig,
    }
    let back = toml::to_string(&Doc { alert: &c }).unwrap();
    assert_eq!(config(&back), c, "{back}");
    assert_eq!(AlertConfig::default().queue_size, 1024);
}

#[test]
fn empty_config_does_nothing() {
    let d = AlertDispatcher::new(&AlertConfig::default(), "shop-1", Lang::En).unwrap();
    assert!(d.is_empty());
    d.send(&finding(Severity::Critical));
    assert!(d.shutdown(GUARD).is_empty());
}
