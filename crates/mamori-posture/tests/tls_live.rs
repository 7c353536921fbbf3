//! `tls.protocols` and `tls.cert_expiry` against real TLS servers on 127.0.0.1
//! (`openssl s_server` with a certificate made by `openssl req`): a 5-day certificate
//! fails, TLS 1.0 accepted fails, a modern server passes the protocol check.

mod common;
use mamori_core::Lang;
use mamori_posture::{AuditOptions, CheckResult, PostureConfig, Status, audit};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn s_server(dir: &Path, extra: &[&str]) -> (Server, u16) {
    let port = free_port();
    let child = Command::new("openssl")
        .args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-www"])
        .arg("-cert")
        .arg(dir.join("c.pem"))
        .arg("-key")
        .arg(dir.join("k.pem"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = Server(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let t = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "s_server did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (s, port)
}

fn check(port: u16, id: &str) -> CheckResult {
    let o = AuditOptions {
        config: PostureConfig {
            host_header: Some("shop.example.jp".into()),
            ..Default::default()
        },
        url: Some(format!("https://127.0.0.1:{port}/")),
        commands: true,
        only: vec![id.into()],
        ..Default::default()
    };
    audit(&o, "h", Lang::En).unwrap().get(id).unwrap().clone()
}

#[test]
fn live_certificate_and_protocols() {
    if mamori_posture::sys::which("openssl").is_none() {
        common::skip("the openssl CLI is needed (s_client, s_server, req)");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    common::make_cert(
        &d.path().join("c.pem"),
        &d.path().join("k.pem"),
        "shop.example.jp",
        5,
    );

    // A modern server: TLS 1.2+ only, but the certificate expires in 5 days.
    let (_modern, port) = s_server(d.path(), &[]);
    let c = check(port, "tls.cert_expiry");
    assert_eq!(c.status, Status::Fail, "{}", c.seen);
    assert!(
        c.seen.contains("expires in 4 days") || c.seen.contains("expires in 5 days"),
        "{}",
        c.seen
    );
    assert!(c.source.contains("openssl s_client"), "{}", c.source);
    let p = check(port, "tls.protocols");
    assert_eq!(p.status, Status::Pass, "{}", p.seen);

    // A server that still speaks TLS 1.0.
    let (_old, port) = s_server(d.path(), &["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    let p = check(port, "tls.protocols");
    assert_eq!(p.status, Status::Fail, "{}", p.seen);
    assert!(p.seen.contains("accepts TLSv1"), "{}", p.seen);
}
