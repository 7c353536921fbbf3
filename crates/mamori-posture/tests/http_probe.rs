//! HTTP exposure probes against a tiny local server (loopback only).

mod common;
use mamori_core::Lang;
use mamori_posture::{AuditOptions, PostureConfig, Status, audit};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;

#[derive(Clone, Copy)]
enum Mode {
    /// Files from the tree, 404 for anything else.
    Static,
    /// 200 with the shop's home page for every path that is not a file ("soft 404").
    Fake404,
}

/// Serve `root` on 127.0.0.1:<free port>; returns the base URL.
fn serve(root: PathBuf, mode: Mode) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let root = root.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut first = String::new();
                let _ = r.read_line(&mut first);
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
                let file = root.join(path.trim_start_matches('/'));
                let (code, body): (u16, Vec<u8>) = if file.is_file() && !path.contains("..") {
                    (200, std::fs::read(&file).unwrap())
                } else {
                    match mode {
                        Mode::Static => (404, b"<html><body>Not Found</body></html>".to_vec()),
                        Mode::Fake404 => (
                            200,
                            // A catalogue page whose text would match the listing signature on its own.
                            format!("<!doctype html><html><head><title>Shop</title></head><body><h1>Index of /categories</h1>{}<p>Welcome</p></body></html>", "x".repeat(800)).into_bytes(),
                        ),
                    }
                };
                let _ = write!(
                    s,
                    "HTTP/1.0 {code} X\r\nContent-Length: {}\r\nContent-Type: text/html\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(&body);
            });
        }
    });
    format!("http://127.0.0.1:{port}/")
}

fn run(url: String) -> mamori_posture::AuditReport {
    let d = tempfile::tempdir().unwrap();
    let o = AuditOptions {
        config: PostureConfig::default(),
        root: d.path().to_path_buf(),
        url: Some(url),
        commands: false,
        only: [
            "git_exposed",
            "env_exposed",
            "backup_exposed",
            "phpinfo",
            "dir_listing",
            "vendor_exposed",
            "var_exposed",
            "app_env_exposed",
            "server_status",
        ]
        .iter()
        .map(|s| format!("http.{s}"))
        .collect(),
        ..Default::default()
    };
    audit(&o, "shop-1", Lang::En).unwrap()
}

fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    common::put(d.path(), "/.git/HEAD", "ref: refs/heads/main\n");
    common::put(
        d.path(),
        "/.env",
        "APP_ENV=prod\nDATABASE_URL=mysql://u:secret@127.0.0.1/eccube\n",
    );
    common::put(d.path(), "/index.html", "<html><body>shop</body></html>");
    d
}

#[test]
fn exposed_git_and_env_fail_the_rest_pass() {
    let d = tree();
    let r = run(serve(d.path().to_path_buf(), Mode::Static));
    for id in ["http.git_exposed", "http.env_exposed"] {
        let c = r.get(id).unwrap();
        assert_eq!(c.status, Status::Fail, "{id}: {}", c.seen);
    }
    assert!(r.get("http.env_exposed").unwrap().seen.contains("/.env"));
    for id in [
        "http.backup_exposed",
        "http.phpinfo",
        "http.dir_listing",
        "http.vendor_exposed",
        "http.var_exposed",
        "http.app_env_exposed",
        "http.server_status",
    ] {
        let c = r.get(id).unwrap();
        assert_eq!(c.status, Status::Pass, "{id}: {}", c.seen);
    }
}

#[test]
fn fake_404_site_reports_no_exposure() {
    let d = tempfile::tempdir().unwrap();
    let r = run(serve(d.path().to_path_buf(), Mode::Fake404));
    for c in &r.results {
        assert_eq!(c.status, Status::Pass, "{}: {}", c.id, c.seen);
    }
    assert!(r.get("http.git_exposed").unwrap().seen.contains("control"));
}

#[test]
fn fake_404_site_with_a_real_exposure_still_fails() {
    let d = tree();
    common::put(
        d.path(),
        "/backup.sql",
        "-- MariaDB dump 10.19\nCREATE TABLE `dtb_customer` (id int);\n",
    );
    let r = run(serve(d.path().to_path_buf(), Mode::Fake404));
    for id in [
        "http.git_exposed",
        "http.env_exposed",
        "http.backup_exposed",
    ] {
        assert_eq!(r.get(id).unwrap().status, Status::Fail, "{id}");
    }
    assert_eq!(r.get("http.phpinfo").unwrap().status, Status::Pass);
}

#[test]
fn unreachable_site_is_an_error_not_a_pass() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let r = run(format!("http://127.0.0.1:{port}/"));
    assert!(matches!(
        r.get("http.git_exposed").unwrap().status,
        Status::Error(_)
    ));
}
