//! The audit over a crafted file-system root (no commands, fixed clock).

mod common;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use common::{put, ssh_blob};
use mamori_core::{Kind, Lang, Severity};
use mamori_posture::attest::attest_as;
use mamori_posture::{AuditOptions, AuditReport, PostureConfig, Status, audit, render_table};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

const KEY: &[u8] = b"store-key-bytes-for-tests";

fn ed25519_line(seed: u8, comment: &str) -> (String, String) {
    let blob = ssh_blob(&[b"ssh-ed25519", &[seed; 32]]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    let fp = format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(&blob))
    );
    (format!("ssh-ed25519 {b64} {comment}"), fp)
}

fn rsa2048_line(comment: &str) -> String {
    let mut n = vec![0u8];
    n.push(0xC5);
    n.extend(std::iter::repeat_n(0x11u8, 255));
    let blob = ssh_blob(&[b"ssh-rsa", &[1, 0, 1], &n]);
    format!(
        "from=\"10.0.0.1\" ssh-rsa {} {comment}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// A server with many problems.
fn bad_server(root: &Path) -> PostureConfig {
    put(
        root,
        "/etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
    );
    put(
        root,
        "/var/lib/dpkg/status",
        "Package: openssl\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u1\n\nPackage: php7.4-fpm\nStatus: install ok installed\nVersion: 7.4.33-1\n\nPackage: mariadb-server\nStatus: install ok installed\nVersion: 1:10.5.26-0+deb11u2\n\nPackage: nginx\nStatus: install ok installed\nVersion: 1.22.1-9\n\nPackage: curl\nStatus: deinstall ok config-files\nVersion: 7.0\n",
    );
    // The security list, LZ4-compressed as apt keeps it on many systems.
    let list = "Package: openssl\nVersion: 3.0.15-1~deb12u1\n\nPackage: curl\nVersion: 7.88.1-10+deb12u8\n\nPackage: nginx\nVersion: 1.22.1-9\n";
    let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
    enc.write_all(list.as_bytes()).unwrap();
    put(
        root,
        "/var/lib/apt/lists/deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages.lz4",
        enc.finish().unwrap(),
    );
    put(
        root,
        "/var/run/reboot-required",
        "*** System restart required ***\n",
    );
    put(root, "/var/run/reboot-required.pkgs", "linux-image-amd64\n");
    put(
        root,
        "/etc/apt/apt.conf.d/20auto-upgrades",
        "APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"0\";\n",
    );
    put(root, "/usr/bin/clamscan", "");
    let mut cld = b"ClamAV-VDB:20 Nov 2026 04-00 +0000:27800:2000000:90:x:y:z:1".to_vec();
    cld.resize(600, b' ');
    put(root, "/var/lib/clamav/daily.cld", cld);
    put(
        root,
        "/etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin prohibit-password\n",
    );
    put(
        root,
        "/etc/ssh/sshd_config.d/50-cloud.conf",
        "PasswordAuthentication yes\n",
    );
    let (known, fp) = ed25519_line(7, "tanaka@office");
    put(
        root,
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\ndeploy:x:1000:1000::/home/deploy:/bin/bash\n",
    );
    put(
        root,
        "/root/.ssh/authorized_keys",
        format!("# admins\n{known}\n"),
    );
    put(
        root,
        "/home/deploy/.ssh/authorized_keys",
        format!("{}\n", rsa2048_line("old-contractor")),
    );
    put(
        root,
        "/etc/php/7.4/fpm/php.ini",
        "[PHP]\nexpose_php = On\ndisplay_errors = Off\n",
    );
    put(
        root,
        "/etc/php/7.4/fpm/conf.d/99-debug.ini",
        "display_errors = On\n",
    );
    put(
        root,
        "/proc/net/tcp",
        "  sl  local_address rem_address   st\n   0: 00000000:0CEA 00000000:0000 0A 0\n   1: 0100007F:1538 00000000:0000 0A 0\n",
    );
    put(
        root,
        "/var/www/shop/.env",
        "APP_ENV=prod\nECCUBE_ADMIN_ALLOW_HOSTS=[]\nECCUBE_2FA_ENABLED=0\n",
    );
    // The web server: a public staging copy, TLS 1.0 allowed for everyone.
    put(
        root,
        "/etc/nginx/nginx.conf",
        "user www-data;\nevents {}\nhttp {\n  ssl_protocols TLSv1 TLSv1.1 TLSv1.2;\n  include /etc/nginx/sites-enabled/*;\n}\n",
    );
    put(
        root,
        "/etc/nginx/sites-enabled/shop",
        "server {\n  listen 443 ssl;\n  server_name shop.example.jp;\n  root /var/www/shop;\n  ssl_certificate /etc/ssl/shop/fullchain.pem;\n}\n",
    );
    put(
        root,
        "/etc/nginx/sites-enabled/staging",
        "server {\n  listen 80;\n  server_name stg.shop.example.jp;\n  root /var/www/stg;\n}\n",
    );
    // PHP-FPM runs as www-data, which can rewrite a controller.
    put(
        root,
        "/etc/php/7.4/fpm/pool.d/www.conf",
        "[www]\nuser = www-data\ngroup = www-data\nlisten = /run/php/php7.4-fpm.sock\n",
    );
    put(root, "/etc/group", "root:x:0:\nwww-data:x:33:\n");
    put(
        root,
        "/var/www/shop/index.php",
        "<?php require 'app/bootstrap.php';\n",
    );
    put(
        root,
        "/var/www/shop/src/Eccube/Controller/ShoppingController.php",
        "<?php\n",
    );
    put(root, "/var/www/shop/var/cache/x.php", "<?php\n");
    put(
        root,
        "/var/www/shop/src/Eccube/Common/Constant.php",
        "<?php\nnamespace Eccube\\Common;\nclass Constant\n{\n    const VERSION = '4.1.1';\n}\n",
    );
    chmod(
        root,
        "/var/www/shop/src/Eccube/Controller/ShoppingController.php",
        0o666,
    );
    chmod(root, "/var/www/shop/var/cache/x.php", 0o666);
    // Outbound: an output chain that accepts everything.
    put(
        root,
        "/etc/nftables.conf",
        "#!/usr/sbin/nft -f\nflush ruleset\ntable inet filter {\n  chain input {\n    type filter hook input priority filter; policy drop;\n    tcp dport { 22, 80, 443 } accept\n  }\n  chain output {\n    type filter hook output priority filter; policy accept;\n  }\n}\n",
    );
    let mut cfg = PostureConfig::default();
    cfg.ssh_keys.insert(fp, "Tanaka Ichiro (owner)".into());
    cfg.shop_roots.push("/var/www/shop".into());
    cfg
}

fn chmod(root: &Path, rel: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let p = root.join(rel.trim_start_matches('/'));
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn opts(root: &Path, cfg: PostureConfig) -> AuditOptions {
    let n = now();
    AuditOptions {
        config: cfg,
        root: root.to_path_buf(),
        url: None,
        commands: false,
        attestations: vec![
            attest_as(
                "20-1.4",
                "phishing drill for 4 staff",
                n + Duration::days(200),
                "tanaka",
                n - Duration::days(30),
                KEY,
            )
            .unwrap(),
            attest_as(
                "20-1.8",
                "staging behind basic auth",
                n - Duration::days(1),
                "tanaka",
                n - Duration::days(400),
                KEY,
            )
            .unwrap(),
            {
                let mut a = attest_as(
                    "20-1.9",
                    "contracts signed",
                    n + Duration::days(100),
                    "tanaka",
                    n - Duration::days(10),
                    KEY,
                )
                .unwrap();
                a.statement.push_str(" (edited)");
                a
            },
        ],
        attest_key: Some(KEY.to_vec()),
        now: n,
        only: vec![],
    }
}

fn status(r: &AuditReport, id: &str) -> Status {
    r.get(id)
        .unwrap_or_else(|| panic!("no result {id}"))
        .status
        .clone()
}

#[test]
fn bad_server_fails_where_it_should() {
    let d = tempfile::tempdir().unwrap();
    let cfg = bad_server(d.path());
    let r = audit(&opts(d.path(), cfg), "shop-1", Lang::En).unwrap();
    for (id, want) in [
        ("pkg.security_updates", Status::Fail),
        ("pkg.reboot_required", Status::Warn),
        ("pkg.auto_updates", Status::Warn),
        ("eol.os", Status::Warn),
        ("eol.php", Status::Fail),
        ("eol.db", Status::Fail),
        ("eol.webserver", Status::Pass),
        ("av.installed", Status::Pass),
        ("av.definitions", Status::Fail),
        ("av.scheduled_scan", Status::Fail),
        ("ssh.2fa", Status::Fail),
        ("ssh.keys_owned", Status::Fail),
        ("ssh.weak_keys", Status::Fail),
        ("php.hardening", Status::Fail),
        ("net.db_public", Status::Fail),
        ("shop.admin_allow_hosts", Status::Fail),
        ("shop.admin_2fa", Status::Fail),
        ("shop.version_advisories", Status::Fail),
        ("web.staging_exposed", Status::Fail),
        ("php.code_writable", Status::Fail),
        ("net.egress_policy", Status::Warn),
        ("tls.protocols", Status::Fail),
        ("attest.mail_training", Status::Attested),
        ("attest.test_env", Status::Fail),
        ("attest.contractors", Status::Fail),
        ("attest.threat_intel", Status::Fail),
    ] {
        assert_eq!(status(&r, id), want, "{id}: {}", r.get(id).unwrap().seen);
    }
    assert!(matches!(
        status(&r, "http.git_exposed"),
        Status::NotApplicable(_)
    ));
    assert!(matches!(
        status(&r, "shop.login_email"),
        Status::NotApplicable(_)
    ));
    // Evidence says what was seen.
    let up = r.get("pkg.security_updates").unwrap();
    assert!(up.seen.contains("openssl"), "{}", up.seen);
    assert!(
        !up.seen.contains("curl"),
        "curl is not installed: {}",
        up.seen
    );
    assert!(r.get("attest.test_env").unwrap().seen.contains("expired"));
    let stg = &r.get("web.staging_exposed").unwrap().seen;
    assert!(stg.contains("stg.shop.example.jp"), "{stg}");
    assert!(
        !stg.contains("nginx shop.example.jp"),
        "production is no test site: {stg}"
    );
    let w = &r.get("php.code_writable").unwrap().seen;
    assert!(w.contains("ShoppingController.php"), "{w}");
    assert!(w.contains("www-data"), "{w}");
    assert!(
        !w.contains("var/cache"),
        "cache dirs are data, not code: {w}"
    );
    let tls = &r.get("tls.protocols").unwrap().seen;
    assert!(tls.contains("TLSv1 TLSv1.1"), "{tls}");
    match status(&r, "tls.cert_expiry") {
        Status::NotApplicable(why) => assert!(why.contains("fullchain.pem"), "{why}"),
        s => panic!("unreadable certificate: {s:?}"),
    }
    assert!(
        r.get("shop.admin_2fa")
            .unwrap()
            .seen
            .contains("ECCUBE_2FA_ENABLED")
    );
    assert!(
        r.get("attest.contractors")
            .unwrap()
            .seen
            .contains("invalid signature")
    );
    assert!(
        r.get("ssh.keys_owned")
            .unwrap()
            .seen
            .contains("old-contractor")
    );
    assert!(
        !r.get("ssh.keys_owned")
            .unwrap()
            .seen
            .contains("tanaka@office")
    );
    assert!(r.get("ssh.weak_keys").unwrap().seen.contains("2048"));
    assert!(
        r.get("php.hardening")
            .unwrap()
            .seen
            .contains("display_errors")
    );
    assert!(
        r.get("net.db_public")
            .unwrap()
            .seen
            .contains("0.0.0.0:3306")
    );
    // Scores per checklist item.
    let s13 = r.scores.iter().find(|s| s.item == "20-1.3").unwrap();
    assert_eq!((s13.pass, s13.fail, s13.warn), (1, 4, 3));
    let adv = &r.get("shop.version_advisories").unwrap().seen;
    assert!(
        adv.contains("eccube 4.1.1 CVE-2022-25355 (fixed in 4.1.2)"),
        "{adv}"
    );
    let s18 = r.scores.iter().find(|s| s.item == "20-1.8").unwrap();
    assert_eq!((s18.fail, s18.score), (2, Some(0)));
    let s14 = r.scores.iter().find(|s| s.item == "20-1.4").unwrap();
    assert_eq!((s14.attested, s14.score), (1, Some(100)));
    // Findings: one per check, with the contract's fields.
    let fs = r.findings();
    assert_eq!(fs.len(), r.results.len());
    let git = fs
        .iter()
        .find(|f| f.check.as_deref() == Some("ssh.2fa"))
        .unwrap();
    assert_eq!(
        (git.kind, git.severity),
        (Kind::PostureFail, Severity::High)
    );
    assert_eq!(git.checklist, vec!["20-1.7".to_string()]);
    assert!(
        git.evidence["remediation"]
            .as_str()
            .unwrap()
            .contains("AuthenticationMethods")
    );
    let att = fs
        .iter()
        .find(|f| f.check.as_deref() == Some("attest.mail_training"))
        .unwrap();
    assert_eq!(att.kind, Kind::PosturePass);
    assert_eq!(att.evidence["status"], "ATTESTED");
    let na = fs
        .iter()
        .find(|f| f.check.as_deref() == Some("http.env_exposed"))
        .unwrap();
    assert_eq!(na.kind, Kind::PostureUnknown);
    assert!(na.to_json_line().contains("\"layer\":\"posture\""));
}

#[test]
fn good_server_passes() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let mut cfg = bad_server(root);
    put(
        root,
        "/var/lib/dpkg/status",
        "Package: openssl\nStatus: install ok installed\nVersion: 3.0.15-1~deb12u1\n\nPackage: php8.3-fpm\nStatus: install ok installed\nVersion: 8.3.1-1\n",
    );
    std::fs::remove_file(root.join("var/run/reboot-required")).unwrap();
    put(
        root,
        "/etc/apt/apt.conf.d/20auto-upgrades",
        "APT::Periodic::Unattended-Upgrade \"1\";\n",
    );
    let mut cld = b"ClamAV-VDB:24 Nov 2026 04-00 +0000:27800:2000000:90:x:y:z:1".to_vec();
    cld.resize(600, b' ');
    put(root, "/var/lib/clamav/daily.cld", cld);
    put(
        root,
        "/etc/cron.d/clamscan",
        "30 3 * * * root clamscan -ri /var/www\n",
    );
    put(
        root,
        "/etc/ssh/sshd_config.d/50-cloud.conf",
        "PasswordAuthentication no\nAuthenticationMethods publickey,keyboard-interactive\n",
    );
    put(
        root,
        "/etc/pam.d/sshd",
        "auth required pam_google_authenticator.so\n",
    );
    std::fs::remove_file(root.join("home/deploy/.ssh/authorized_keys")).unwrap();
    put(
        root,
        "/etc/php/7.4/fpm/conf.d/99-debug.ini",
        "expose_php = Off\n",
    );
    put(
        root,
        "/proc/net/tcp",
        "  sl  local_address rem_address   st\n   0: 0100007F:0CEA 00000000:0000 0A 0\n",
    );
    put(
        root,
        "/var/www/shop/.env",
        "APP_ENV=prod\nECCUBE_ADMIN_ALLOW_HOSTS='[\"203.0.113.5\"]'\n",
    );
    put(
        root,
        "/etc/nginx/nginx.conf",
        "events {}\nhttp {\n  ssl_protocols TLSv1.2 TLSv1.3;\n  include /etc/nginx/sites-enabled/*;\n}\n",
    );
    put(
        root,
        "/etc/nginx/sites-enabled/staging",
        "server {\n  listen 80;\n  server_name stg.shop.example.jp;\n  root /var/www/stg;\n  allow 203.0.113.5;\n  deny all;\n}\n",
    );
    chmod(
        root,
        "/var/www/shop/src/Eccube/Controller/ShoppingController.php",
        0o644,
    );
    put(
        root,
        "/var/www/shop/src/Eccube/Common/Constant.php",
        "<?php\nclass Constant { const VERSION = '4.3.0'; }\n",
    );
    put(
        root,
        "/etc/nftables.conf",
        "table inet filter {\n  chain output {\n    type filter hook output priority filter; policy accept;\n    meta skuid \"www-data\" ip daddr != 203.0.113.10 reject\n  }\n}\n",
    );
    cfg.skip.push("eol.db".into());
    let r = audit(&opts(root, cfg), "shop-1", Lang::Ja).unwrap();
    for id in [
        "pkg.security_updates",
        "pkg.reboot_required",
        "pkg.auto_updates",
        "eol.php",
        "av.definitions",
        "av.scheduled_scan",
        "ssh.2fa",
        "ssh.keys_owned",
        "ssh.weak_keys",
        "php.hardening",
        "net.db_public",
        "shop.admin_allow_hosts",
        "web.staging_exposed",
        "php.code_writable",
        "net.egress_policy",
        "tls.protocols",
        "shop.version_advisories",
    ] {
        assert_eq!(
            status(&r, id),
            Status::Pass,
            "{id}: {}",
            r.get(id).unwrap().seen
        );
    }
    assert_eq!(
        status(&r, "eol.db"),
        Status::NotApplicable("設定によりスキップ".into())
    );
    // Japanese text comes out in Japanese.
    assert!(r.get("ssh.2fa").unwrap().seen.contains("二要素"));
}

#[test]
fn empty_root_never_crashes_and_unreadable_config_is_na() {
    let d = tempfile::tempdir().unwrap();
    // sshd_config that cannot be read (a directory).
    std::fs::create_dir_all(d.path().join("etc/ssh/sshd_config")).unwrap();
    let mut o = opts(d.path(), PostureConfig::default());
    o.attestations.clear();
    let r = audit(&o, "h", Lang::En).unwrap();
    assert_eq!(r.results.len(), mamori_posture::catalog().len());
    match status(&r, "ssh.2fa") {
        Status::NotApplicable(why) => assert!(why.contains("/etc/ssh/sshd_config"), "{why}"),
        s => panic!("ssh.2fa on unreadable config: {s:?}"),
    }
    // Missing antivirus is a failure, missing sshd/php is not applicable.
    assert_eq!(status(&r, "av.installed"), Status::Fail);
    assert!(matches!(
        status(&r, "php.hardening"),
        Status::NotApplicable(_)
    ));
    assert_eq!(status(&r, "attest.mail_training"), Status::Fail);
}

#[test]
fn bad_settings_are_errors_naming_the_setting() {
    let mut o = AuditOptions {
        url: Some("ftp://x/".into()),
        commands: false,
        ..Default::default()
    };
    let e = audit(&o, "h", Lang::En).unwrap_err();
    assert!(
        e.localized(Lang::Ja).contains("--url"),
        "{}",
        e.localized(Lang::Ja)
    );
    o.url = None;
    o.config.skip.push("ssh.nope".into());
    let e = audit(&o, "h", Lang::En).unwrap_err();
    assert!(e.to_string().contains("ssh.nope"));
}

#[test]
fn rendered_table_snapshot() {
    let d = tempfile::tempdir().unwrap();
    let cfg = bad_server(d.path());
    let o = opts(d.path(), cfg);
    let en = audit(&o, "shop-1", Lang::En).unwrap();
    insta::assert_snapshot!("table_en", render_table(&en, Lang::En));
    let ja = audit(&o, "shop-1", Lang::Ja).unwrap();
    insta::assert_snapshot!("table_ja", render_table(&ja, Lang::Ja));
}

#[test]
fn fingerprints_match_ssh_keygen() {
    if mamori_posture::sys::which("ssh-keygen").is_none() {
        eprintln!("skipped: ssh-keygen not installed");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let k = d.path().join("k");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "t@x", "-f"])
        .arg(&k)
        .status()
        .unwrap();
    assert!(st.success());
    let pubk = std::fs::read_to_string(k.with_extension("pub")).unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(k.with_extension("pub"))
        .output()
        .unwrap();
    let want = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let keys = mamori_posture::checks::ssh::parse_authorized_keys("u", "f", &pubk);
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].fingerprint, want);
}

/// `tls.cert_expiry` over the certificate files the web server config names, with real
/// certificates made by the openssl CLI (5 days: FAIL; 400 days: PASS).
#[test]
fn certificate_files_named_by_the_config() {
    if mamori_posture::sys::which("openssl").is_none() {
        common::skip("the openssl CLI is needed to make test certificates");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    put(
        root,
        "/etc/apache2/sites-enabled/shop-ssl.conf",
        "<VirtualHost *:443>\n  ServerName shop.example.jp\n  DocumentRoot /var/www/shop\n  SSLEngine on\n  SSLProtocol -all +TLSv1.2 +TLSv1.3\n  SSLCertificateFile /etc/ssl/shop.pem\n</VirtualHost>\n",
    );
    std::fs::create_dir_all(root.join("etc/ssl")).unwrap();
    for (days, want) in [(5, "FAIL"), (400, "PASS")] {
        common::make_cert(
            &root.join("etc/ssl/shop.pem"),
            &root.join("etc/ssl/shop.key"),
            "shop.example.jp",
            days,
        );
        let o = AuditOptions {
            root: root.to_path_buf(),
            commands: false,
            only: vec!["tls.cert_expiry".into(), "tls.protocols".into()],
            ..Default::default()
        };
        let r = audit(&o, "h", Lang::En).unwrap();
        let c = r.get("tls.cert_expiry").unwrap();
        assert_eq!(c.status.label(), want, "{days} days: {}", c.seen);
        assert!(c.source.contains("/etc/ssl/shop.pem"), "{}", c.source);
        assert_eq!(status(&r, "tls.protocols"), Status::Pass);
    }
}

/// `posture.advisories_file` adds advisories in the snapshot's format; a malformed one
/// is an ERROR naming the line, never a crash.
#[test]
fn extra_advisories_file() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    put(
        root,
        "/var/www/wp/wp-includes/version.php",
        "<?php\n$wp_version = '6.4.2';\n",
    );
    let extra = root.join("advisories.tsv");
    let run = |content: &str| {
        std::fs::write(&extra, content).unwrap();
        let mut cfg = PostureConfig::default();
        cfg.shop_roots.push("/var/www/wp".into());
        cfg.advisories_file = Some(extra.clone());
        let o = AuditOptions {
            config: cfg,
            root: root.to_path_buf(),
            commands: false,
            only: vec!["shop.version_advisories".into()],
            ..Default::default()
        };
        audit(&o, "h", Lang::En)
            .unwrap()
            .get("shop.version_advisories")
            .unwrap()
            .clone()
    };
    let c = run("# snapshot: 2026-12-01\n");
    assert_eq!(c.status, Status::Pass, "{}", c.seen);
    assert!(c.seen.contains("wordpress 6.4.2"), "{}", c.seen);
    let c = run("wordpress\t>=6.4 <6.4.3\t6.4.3\tTEST-1\thigh\thttps://example.org/\tdemo\n");
    assert_eq!(c.status, Status::Fail, "{}", c.seen);
    assert!(c.seen.contains("TEST-1 (fixed in 6.4.3)"), "{}", c.seen);
    let c = run("wordpress\t6.4\n");
    match c.status {
        Status::Error(why) => assert!(why.contains("line 1"), "{why}"),
        s => panic!("{s:?}"),
    }
}
