//! `mamori audit` end to end through the binary: (a) on this machine itself (root `/`,
//! real commands), every checklist item 20-1.1 … 20-1.9 answered; (b) on a test site the
//! test serves with `php -S` on 127.0.0.1 (an exposed `.git/` and `.env` whose
//! `DATABASE_URL` points at the real MariaDB, where the test creates an EC-CUBE-like
//! `dtb_member` holding an e-mail login): the exposures and the login are FAIL.

mod common;
use common::{findings, init_tiny_shop, mamori, need};
use serde_json::Value;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ITEMS: [&str; 9] = [
    "20-1.1", "20-1.2", "20-1.3", "20-1.4", "20-1.5", "20-1.6", "20-1.7", "20-1.8", "20-1.9",
];

fn sev_rank(s: &str) -> u8 {
    match s {
        "info" => 0,
        "low" => 1,
        "medium" => 2,
        "high" => 3,
        "critical" => 4,
        other => panic!("unknown severity {other}"),
    }
}

fn by_check<'a>(fs: &'a [Value], id: &str) -> &'a Value {
    fs.iter()
        .find(|f| f["check"] == id)
        .unwrap_or_else(|| panic!("no finding for check {id}"))
}

/// The exit code the documented rule gives (1 when anything is high or worse).
fn documented_exit(fs: &[Value]) -> i32 {
    i32::from(
        fs.iter()
            .any(|f| sev_rank(f["severity"].as_str().unwrap_or("info")) >= 3),
    )
}

#[test]
fn audit_of_this_machine_answers_every_checklist_item() {
    let d = tempfile::tempdir().unwrap();
    init_tiny_shop(d.path());
    let until = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    mamori(d.path())
        .args(["attest", "20-1.4", "--statement", "phishing drill, 4 staff"])
        .args(["--expires", &until])
        .assert()
        .success();
    let out = mamori(d.path())
        .args(["--json", "audit"])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let code = out.status.code().expect("exited");
    assert!(
        code == 0 || code == 1,
        "exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fs = findings(&out.stdout);
    assert_eq!(code, documented_exit(&fs), "exit code vs findings");
    assert!(
        fs.iter()
            .all(|f| f["kind"].as_str().unwrap().starts_with("posture.")),
        "only posture findings"
    );
    for item in ITEMS {
        let of_item: Vec<&Value> = fs
            .iter()
            .filter(|f| {
                f["checklist"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|x| x == item))
            })
            .collect();
        assert!(!of_item.is_empty(), "{item}: no result at all");
        let answered = of_item.iter().any(|f| {
            matches!(
                f["evidence"]["status"].as_str(),
                Some("PASS" | "FAIL" | "WARN" | "ATTESTED" | "N/A")
            )
        });
        assert!(answered, "{item}: only errors: {of_item:?}");
        for f in &of_item {
            let st = f["evidence"]["status"].as_str().unwrap();
            if st == "N/A" || st == "ERROR" {
                assert!(
                    f["evidence"]["reason"]
                        .as_str()
                        .is_some_and(|r| !r.is_empty()),
                    "{item}: {st} without a reason: {f}"
                );
            }
        }
    }
    // The attestation made above is what 20-1.4 shows; the unattested 20-1.2 fails.
    assert_eq!(
        by_check(&fs, "attest.mail_training")["evidence"]["status"],
        "ATTESTED"
    );
    assert_eq!(
        by_check(&fs, "attest.threat_intel")["evidence"]["status"],
        "FAIL"
    );
    // The human table groups by item, with a score line for each of the nine.
    let human = mamori(d.path())
        .args(["audit"])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    for item in ITEMS {
        assert!(
            text.contains(item),
            "{item} missing from the table:\n{text}"
        );
    }
}

fn mariadb_sql(q: &str) -> std::process::Output {
    Command::new("mariadb")
        .args(["-h127.0.0.1", "-P3306", "-uroot", "--batch", "-e", q])
        .output()
        .expect("run mariadb")
}

/// A test database, dropped when the test ends (also on failure).
struct TestDb(String);

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = mariadb_sql(&format!("DROP DATABASE IF EXISTS {}", self.0));
    }
}

/// `php -S` serving a tree, killed when the test ends.
struct PhpServer(Child);

impl Drop for PhpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(root: &Path) -> (PhpServer, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("php")
        .args(["-S", &format!("127.0.0.1:{port}"), "-t"])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start php -S");
    let srv = PhpServer(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "php -S did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (srv, port)
}

/// `mamori --json audit --url URL --root SITE`, run in `dir`.
fn audit_site(dir: &Path, url: &str, site: &Path) -> std::process::Output {
    mamori(dir)
        .args(["--json", "audit", "--url", url, "--root"])
        .arg(site)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap()
}

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

#[test]
fn audit_of_a_served_test_site_fails_exposures_and_email_login() {
    let php = mamori_posture::sys::which("php").is_some();
    if !need(php, "php-cli is needed to serve the test site (php -S)") {
        return;
    }
    let db_up = TcpStream::connect_timeout(
        &"127.0.0.1:3306".parse::<SocketAddr>().unwrap(),
        Duration::from_secs(3),
    )
    .is_ok();
    if !need(db_up, "MariaDB must listen on 127.0.0.1:3306") {
        return;
    }
    if !need(
        mamori_posture::sys::which("mariadb").is_some(),
        "the mariadb client is needed",
    ) {
        return;
    }
    let db = TestDb(format!("mamori_e2e_posture_{}", std::process::id()));
    let o = mariadb_sql(&format!(
        "DROP DATABASE IF EXISTS {0}; CREATE DATABASE {0}; \
         CREATE TABLE {0}.dtb_member (id INT AUTO_INCREMENT PRIMARY KEY, login_id VARCHAR(255) NOT NULL, \
           two_factor_auth_key VARCHAR(255) NULL, two_factor_auth_enabled TINYINT(1) NOT NULL DEFAULT 0); \
         INSERT INTO {0}.dtb_member (login_id) VALUES ('shop-owner'), ('tanaka@example.co.jp');",
        db.0
    ));
    assert!(
        o.status.success(),
        "database setup: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let d = tempfile::tempdir().unwrap();
    let site = d.path().join("eccube");
    write(
        &site,
        "index.php",
        "<?php echo '<html><body>shop</body></html>';\n",
    );
    write(&site, ".git/HEAD", "ref: refs/heads/main\n");
    write(
        &site,
        ".git/config",
        "[core]\n\trepositoryformatversion = 0\n",
    );
    write(
        &site,
        ".env",
        &format!(
            "APP_ENV=prod\nAPP_SECRET=0123456789abcdef\nDATABASE_URL=mysql://root:@127.0.0.1:3306/{}\nECCUBE_ADMIN_ALLOW_HOSTS=[]\n",
            db.0
        ),
    );
    write(
        &site,
        "src/Eccube/Common/Constant.php",
        "<?php\nnamespace Eccube\\Common;\nclass Constant\n{\n    const VERSION = '4.1.1';\n}\n",
    );
    let (_srv, port) = serve(&site);
    let url = format!("http://127.0.0.1:{port}/");

    let out = audit_site(d.path(), &url, &site);
    let fs = findings(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "critical exposures must exit 1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (id, sev) in [
        ("http.git_exposed", "critical"),
        ("http.env_exposed", "critical"),
        ("shop.login_email", "medium"),
        ("shop.admin_allow_hosts", "high"),
        ("shop.admin_2fa", "high"),
        ("shop.version_advisories", "high"),
    ] {
        let f = by_check(&fs, id);
        assert_eq!(f["kind"], "posture.fail", "{id}: {f}");
        assert_eq!(f["evidence"]["status"], "FAIL", "{id}: {f}");
        assert_eq!(f["severity"], sev, "{id}: {f}");
    }
    let login = by_check(&fs, "shop.login_email");
    let seen = login["evidence"]["seen"].as_str().unwrap();
    assert!(seen.contains("t***@example.co.jp"), "{seen}");
    assert!(
        !seen.contains("tanaka@"),
        "the login must be masked: {seen}"
    );
    assert!(
        login["evidence"]["source"]
            .as_str()
            .unwrap()
            .ends_with(".env"),
        "{login}"
    );
    let adv = by_check(&fs, "shop.version_advisories")["evidence"]["seen"]
        .as_str()
        .unwrap();
    assert!(adv.contains("CVE-2022-25355"), "{adv}");
    // The password-free DATABASE_URL and the secret never reach the output.
    let all = String::from_utf8_lossy(&out.stdout);
    assert!(!all.contains("0123456789abcdef"), "secret leaked");
    // Paths the site does not serve are not reported (the random-path control works).
    assert_eq!(
        by_check(&fs, "http.backup_exposed")["evidence"]["status"],
        "PASS"
    );
    assert_eq!(by_check(&fs, "http.phpinfo")["evidence"]["status"], "PASS");

    // The same site with the exposures removed: those probes now pass.
    std::fs::remove_dir_all(site.join(".git")).unwrap();
    std::fs::remove_file(site.join(".env")).unwrap();
    let fs = findings(&audit_site(d.path(), &url, &site).stdout);
    for id in ["http.git_exposed", "http.env_exposed"] {
        assert_eq!(by_check(&fs, id)["evidence"]["status"], "PASS", "{id}");
    }
    drop(db);
    let left = mariadb_sql("SHOW DATABASES LIKE 'mamori_e2e_posture_%'");
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains(&format!("_{}", std::process::id())),
        "test database left behind"
    );
}

#[test]
fn audit_bad_input_is_one_line_and_exit_2() {
    let d = tempfile::tempdir().unwrap();
    for args in [
        vec!["audit", "--url", "ftp://127.0.0.1/"],
        vec!["audit", "--root", "/nonexistent/mamori-shop"],
    ] {
        let out = mamori(d.path()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}
