//! `mamori page …` end to end: the real binary, real headless Chromium, a real checkout
//! site on loopback (the server of crates/mamori-page/tests/support).

mod common;
#[path = "../../mamori-page/tests/support/mod.rs"]
mod site;

use common::{findings, mamori, need};
use site::{Server, closed_port};
use std::path::{Path, PathBuf};

/// A config with a state dir and [page]; TMPDIR inside `dir` so browser profiles of this
/// test can be found afterwards.
fn setup(dir: &Path, url: &str, extra: &str) -> PathBuf {
    std::fs::write(
        dir.join("mamori.toml"),
        format!("state_dir = \"state\"\n[page]\nurls = [\"{url}\"]\ntimeout = 20\n{extra}"),
    )
    .unwrap();
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    tmp
}

fn page(dir: &Path, tmp: &Path) -> assert_cmd::Command {
    let mut c = mamori(dir);
    c.env("TMPDIR", tmp).env_remove("CI_NO_BROWSER");
    if let Some(p) = chromium_path() {
        c.env("MAMORI_CHROMIUM", p);
    }
    c
}

fn chromium_path() -> Option<PathBuf> {
    std::env::var_os("MAMORI_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")))
        .filter(|p| p.is_file())
}

/// A fresh directory with a config for a checkout site started on loopback (and the
/// browser profiles' TMPDIR); `None` (skipped, or failed under CI) without Chromium.
fn browser_site(extra: &str) -> Option<(tempfile::TempDir, Server, PathBuf)> {
    if !have_chromium() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let site = Server::start();
    let tmp = setup(dir.path(), &site.checkout(), extra);
    Some((dir, site, tmp))
}

fn have_chromium() -> bool {
    need(
        chromium_path().is_some(),
        "headless Chromium is needed (apt-get install chromium, or MAMORI_CHROMIUM)",
    )
}

/// No process still runs with a profile under `tmp` (helpers get a few seconds to notice
/// that their browser is gone).
fn assert_no_browser_left(tmp: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = browsers_under(tmp);
        if left.is_empty() {
            return;
        }
        if std::time::Instant::now() > deadline {
            panic!("browser processes left behind: {left:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn browsers_under(tmp: &Path) -> Vec<String> {
    let needle = tmp.to_string_lossy().to_string();
    let mut left = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle) {
            left.push(cmd);
        }
    }
    left
}

fn one_line(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr).to_string();
    let lines: Vec<&str> = s
        .lines()
        .filter(|l| l.starts_with("mamori: error"))
        .collect();
    assert_eq!(lines.len(), 1, "want one error line, got: {s}");
    lines[0].to_string()
}

#[test]
fn approve_then_each_change_is_a_finding() {
    let Some((dir, site, tmp)) = browser_site("") else {
        return;
    };
    let url = site.checkout();

    page(dir.path(), &tmp)
        .args(["page", "approve", "--reason", "checkout as shipped"])
        .assert()
        .success();
    let out = page(dir.path(), &tmp)
        .args(["--json", "page", "check"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Progress went to stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("checking"));

    type Change = Box<dyn Fn(&mut site::Site)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "a",
            Box::new(|s| s.extra_script = true),
            "page.script_added",
        ),
        (
            "b",
            Box::new(|s| s.runtime_script = true),
            "page.script_added",
        ),
        (
            "c",
            Box::new(|s| s.form_action = "https://collector.example.invalid/c".into()),
            "page.form_changed",
        ),
        ("d", Box::new(|s| s.csp = None), "page.header_changed"),
    ];
    for (name, change, kind) in cases {
        site.set(|s| change(s));
        let out = page(dir.path(), &tmp)
            .args(["--json", "page", "check", "--url", &url])
            .output()
            .unwrap();
        site.reset();
        assert_eq!(
            out.status.code(),
            Some(1),
            "case {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let f = findings(&out.stdout);
        assert_eq!(f.len(), 1, "case {name}: {f:?}");
        assert_eq!(f[0]["kind"], kind, "case {name}");
        assert_eq!(f[0]["layer"], "page");
        assert_eq!(f[0]["url"], url.as_str());
    }
    // The runtime script names the script that added it.
    site.set(|s| s.runtime_script = true);
    let out = page(dir.path(), &tmp)
        .args(["--json", "page", "check"])
        .output()
        .unwrap();
    site.reset();
    let f = findings(&out.stdout);
    assert_eq!(f[0]["evidence"]["after"]["origin"], "runtime");

    // The findings went to the event log.
    let out = mamori(dir.path())
        .args(["--json", "events", "--limit", "50"])
        .output()
        .unwrap();
    let ev = String::from_utf8_lossy(&out.stdout);
    assert!(ev.contains("page.form_changed"), "{ev}");

    // The 6.4.3 inventory and the CSP advice.
    let out = mamori(dir.path()).args(["page", "show"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("checkout as shipped"), "{text}");
    assert!(text.contains("/vendor/psp.js"), "{text}");
    let out = mamori(dir.path()).args(["page", "csp"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("http://localhost:{}", site.addr.port())),
        "{text}"
    );
    assert!(text.contains("report-uri /csp-report"), "{text}");
    assert!(text.contains("proxy_pass http://127.0.0.1:8931"), "{text}");
    assert_no_browser_left(&tmp);
}

#[test]
fn approving_again_keeps_reasons_japanese_messages() {
    let Some((dir, site, tmp)) = browser_site("") else {
        return;
    };
    let psp = format!("http://localhost:{}/vendor/psp.js", site.addr.port());
    page(dir.path(), &tmp)
        .args([
            "page",
            "approve",
            "--reason",
            "shop code",
            "--script-reason",
        ])
        .arg(format!("{psp}=PSP tokenization"))
        .assert()
        .success();
    site.set(|s| s.extra_script = true);
    let out = page(dir.path(), &tmp)
        .args(["--lang", "ja", "page", "approve"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // The new script has no reason: said, in Japanese.
    assert!(err.contains("理由の書かれていないスクリプト"), "{err}");
    let out = mamori(dir.path()).args(["page", "show"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PSP tokenization"), "{text}");
    assert!(text.contains("shop code"), "{text}");
    assert!(text.contains("(no reason given)"), "{text}");
    // A check in Japanese.
    site.reset();
    let out = page(dir.path(), &tmp)
        .args(["--lang", "ja", "--json", "page", "check"])
        .output()
        .unwrap();
    let f = findings(&out.stdout);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0]["summary"]
            .as_str()
            .unwrap()
            .contains("承認済みのスクリプト"),
        "{f:?}"
    );
    assert_no_browser_left(&tmp);
}

#[test]
fn bad_input_is_one_clear_line_and_exit_2() {
    if !have_chromium() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let site = Server::start();
    let tmp = setup(dir.path(), &site.checkout(), "");
    page(dir.path(), &tmp)
        .args(["page", "approve"])
        .assert()
        .success();

    let run = |args: &[&str], env: Option<(&str, &str)>| {
        let mut c = page(dir.path(), &tmp);
        c.args(args);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty());
        one_line(&out.stderr)
    };
    let unreachable = format!("http://127.0.0.1:{}/checkout", closed_port());
    let l = run(&["page", "approve", "--url", &unreachable], None);
    assert!(l.contains("unreachable"), "{l}");
    let tls = format!("https://127.0.0.1:{}/shopping/checkout", site.addr.port());
    let l = run(&["page", "approve", "--url", &tls], None);
    assert!(l.contains("TLS error"), "{l}");
    let l = run(
        &[
            "page",
            "approve",
            "--timeout",
            "3",
            "--url",
            &site.url("/hang"),
        ],
        None,
    );
    assert!(l.contains("did not finish loading within 3 s"), "{l}");
    let l = run(
        &["page", "check"],
        Some(("MAMORI_CHROMIUM", "/nonexistent/chromium")),
    );
    assert!(l.contains("apt-get install chromium"), "{l}");
    assert!(l.contains("/nonexistent/chromium"), "{l}");
    let l = run(&["page", "check", "--url", &site.url("/other")], None);
    assert!(l.contains("no approved inventory"), "{l}");
    let l = run(&["page", "check", "--url", "shop.example/checkout"], None);
    assert!(l.contains("not an http(s) URL"), "{l}");
    assert_no_browser_left(&tmp);

    // A bad [page] setting names the file and the key.
    std::fs::write(dir.path().join("mamori.toml"), "[page]\nurl = [\"x\"]\n").unwrap();
    let out = mamori(dir.path()).args(["page", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let l = one_line(&out.stderr);
    assert!(l.contains("mamori.toml") && l.contains("url"), "{l}");
}

#[test]
fn edited_inventory_is_baseline_tampered() {
    if !have_chromium() {
        return;
    }
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok();
    if !need(python, "python3 is needed to edit the store") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let site = Server::start();
    let url = site.checkout();
    let tmp = setup(dir.path(), &url, "");
    page(dir.path(), &tmp)
        .args(["page", "approve"])
        .assert()
        .success();
    let db = dir.path().join("state/mamori.db");
    let st = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE doc SET body = replace(body, 'psp.js', 'psp2.js') WHERE name LIKE 'page/%'\"); c.commit()")
        .arg(&db)
        .status()
        .unwrap();
    assert!(st.success());
    let out = page(dir.path(), &tmp)
        .args(["--json", "page", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let f = findings(&out.stdout);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["kind"], "baseline.tampered");
    assert_eq!(f[0]["severity"], "critical");
}

#[test]
fn no_browser_mode_says_what_it_cannot_see() {
    let dir = tempfile::tempdir().unwrap();
    let site = Server::start();
    let url = site.checkout();
    let tmp = setup(dir.path(), &url, "mode = \"http\"\n");
    let out = mamori(dir.path())
        .env("TMPDIR", &tmp)
        .args(["page", "approve", "--reason", "x"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not seen"));
    site.set(|s| s.extra_script = true);
    let out = mamori(dir.path())
        .args(["--json", "page", "check", "--no-browser"])
        .output()
        .unwrap();
    let f = findings(&out.stdout);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["kind"], "page.script_added");
}

#[test]
fn reports_endpoint_turns_a_browser_report_into_a_finding() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mamori.toml"),
        "state_dir = \"state\"\n[page]\n",
    )
    .unwrap();
    let bin = assert_cmd::cargo::cargo_bin("mamori");
    let mut child = std::process::Command::new(bin)
        .current_dir(dir.path())
        .env("LANG", "C.UTF-8")
        .env_remove("MAMORI_CONFIG")
        .args(["--json", "page", "reports", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in: {line}"));
    let report = r#"{"csp-report":{"document-uri":"https://shop.example/shopping/checkout","blocked-uri":"https://evil.example.invalid/s.js","effective-directive":"script-src-elem","original-policy":"script-src 'self'","disposition":"enforce"}}"#;
    assert_eq!(
        site::post(addr, "application/csp-report", report.as_bytes(), ""),
        204
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let f: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(f["kind"], "page.csp_violation");
    assert_eq!(f["dest"], "evil.example.invalid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(1));
    // Stored in the event log.
    let out = mamori(dir.path())
        .args(["--json", "events", "--kind", "page."])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("page.csp_violation"));
}

/// `watch` with `[page]`: the scheduled check runs in the daemon, in the real browser,
/// and a script added to the checkout after approval comes out as a finding on stdout.
#[test]
fn watch_checks_the_payment_page_and_reports_a_new_script() {
    if !have_chromium() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let site = Server::start();
    let url = site.checkout();
    common::init_tiny_shop(dir.path());
    let cfg = dir.path().join("mamori.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!("\n[page]\nurls = [\"{url}\"]\ntimeout = 20\n"));
    std::fs::write(&cfg, text).unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    page(dir.path(), &tmp)
        .args(["page", "approve", "--reason", "checkout as shipped"])
        .assert()
        .success();
    site.set(|s| s.extra_script = true);

    let mut c = common::watch_cmd(dir.path());
    c.env("TMPDIR", &tmp);
    if let Some(p) = chromium_path() {
        c.env("MAMORI_CHROMIUM", p);
    }
    let (w, _) = common::Watch::start_until(c, Some("payment pages:"));
    let f = w.wait_kind_within("page.script_added", std::time::Duration::from_secs(90));
    assert_eq!(f["url"], url.as_str(), "{f}");
    assert!(
        f["evidence"]["script"]
            .as_str()
            .is_some_and(|s| s.ends_with("/js/extra.js")),
        "{f}"
    );
    drop(w);
    assert_no_browser_left(&tmp);
}

/// `openssl s_server` with a self-signed certificate on a free loopback port (killed
/// when dropped).
struct TlsServer {
    child: std::process::Child,
    port: u16,
}

impl TlsServer {
    fn start(dir: &Path) -> TlsServer {
        let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
        // Valid for the address it is served on: the only problem is who signed it.
        let st = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        let port = closed_port();
        let child = std::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let s = TlsServer { child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "s_server did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        s
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/shopping/checkout", self.port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real self-signed certificate, in the real browser and in plain-HTTP mode: one line
/// that names the certificate problem and what to do, exit 2. Also when the approved
/// http page starts redirecting to the bad certificate.
#[test]
fn self_signed_certificate_is_one_clear_error() {
    if !have_chromium() {
        return;
    }
    let openssl = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !need(
        openssl,
        "the openssl command is needed (apt-get install openssl)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tls = TlsServer::start(dir.path());
    let site = Server::start();
    let url = site.checkout();
    let tmp = setup(dir.path(), &url, "");
    page(dir.path(), &tmp)
        .args(["page", "approve", "--reason", "checkout as shipped"])
        .assert()
        .success();

    let fails = |args: &[&str]| {
        let out = page(dir.path(), &tmp).args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty());
        one_line(&out.stderr)
    };
    let browser_says = |l: &str| {
        assert!(l.contains("TLS certificate is refused"), "{l}");
        assert!(
            l.contains("not issued by a trusted certificate authority"),
            "{l}"
        );
        assert!(l.contains("ERR_CERT_AUTHORITY_INVALID"), "{l}");
        assert!(
            l.contains("fix the certificate") && l.contains("private CA"),
            "{l}"
        );
    };
    let l = fails(&["page", "approve", "--url", &tls.url()]);
    browser_says(&l);
    assert!(l.contains(&tls.url()), "{l}");
    // The shop's http page now redirects to https with the bad certificate.
    site.set(|s| s.redirect = Some(tls.url()));
    let l = fails(&["page", "check"]);
    browser_says(&l);
    // Plain-HTTP mode (rustls) names it too.
    let l = fails(&["page", "approve", "--no-browser", "--url", &tls.url()]);
    assert!(l.contains("TLS certificate is refused"), "{l}");
    assert!(
        l.contains("not issued by a trusted certificate authority"),
        "{l}"
    );
    // Japanese.
    let out = page(dir.path(), &tmp)
        .args(["--lang", "ja", "page", "approve", "--url", &tls.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("mamori: エラー"))
            .count(),
        1,
        "{err}"
    );
    assert!(err.contains("TLS 証明書が受け入れられません"), "{err}");
    assert_no_browser_left(&tmp);
}

/// `[page] card_fields = "none"` (a redirect or token-iframe provider): any card input on
/// the shop's own page is critical, approved or not, and `approve` refuses such a page.
#[test]
fn card_inputs_where_none_belong_are_critical() {
    let Some((dir, site, tmp)) = browser_site("card_fields = \"none\"\n") else {
        return;
    };

    // The shop as it stands has a card form: not approved.
    let out = page(dir.path(), &tmp)
        .args(["page", "approve", "--reason", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let l = one_line(&out.stderr);
    assert!(
        l.contains("card_fields = \"none\"") && l.contains("card_number"),
        "{l}"
    );
    assert!(l.contains("not approved"), "{l}");

    // A redirect provider's checkout: no card inputs. Approved; a check is quiet.
    site.set(|s| s.card_form = false);
    page(dir.path(), &tmp)
        .args(["page", "approve", "--reason", "checkout as shipped"])
        .assert()
        .success();
    let check = || {
        let out = page(dir.path(), &tmp)
            .args(["--json", "page", "check"])
            .output()
            .unwrap();
        (out.status.code(), findings(&out.stdout))
    };
    assert_eq!(check(), (Some(0), vec![]));

    // A fake card form appears: one critical finding naming it, not two.
    site.set(|s| s.fake_form = true);
    let (code, f) = check();
    assert_eq!(code, Some(1), "{f:?}");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["kind"], "page.form_changed");
    assert_eq!(f[0]["severity"], "critical");
    assert_eq!(f[0]["evidence"]["change"], "card_fields");
    assert_eq!(f[0]["evidence"]["form"], "#verify");
    assert!(
        f[0]["summary"]
            .as_str()
            .unwrap()
            .contains("where none should be"),
        "{f:?}"
    );

    // Card inputs slipped into the approved form (no new form): critical too, and a
    // later check still reports them (nothing to approve away).
    site.set(|s| {
        s.fake_form = false;
        s.card_form = true;
    });
    for _ in 0..2 {
        let (code, f) = check();
        assert_eq!(code, Some(1), "{f:?}");
        let card: Vec<_> = f
            .iter()
            .filter(|f| f["evidence"]["change"] == "card_fields")
            .collect();
        assert_eq!(card.len(), 1, "{f:?}");
        assert_eq!(card[0]["severity"], "critical");
        assert_eq!(card[0]["evidence"]["form"], "#payment");
        assert!(
            !f.iter().any(|f| f["evidence"]["change"] == "card_inputs"),
            "reported twice: {f:?}"
        );
    }
    assert_no_browser_left(&tmp);
}
