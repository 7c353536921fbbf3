//! `shop.login_email` against the real MariaDB on 127.0.0.1:3306 (root, no password).
//! Skipped with a reason when the server or client is missing; required under CI.

mod common;
use mamori_core::Lang;
use mamori_posture::{AuditOptions, PostureConfig, ShopDbConfig, ShopKind, Status, audit};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

struct Db(String);

impl Db {
    fn sql(q: &str) -> std::process::Output {
        Command::new("mariadb")
            .args(["-h127.0.0.1", "-P3306", "-uroot", "--batch", "-e", q])
            .output()
            .unwrap()
    }
    fn create(tag: &str, logins: &[&str]) -> Db {
        let name = format!("mamori_posture_{tag}_{}", std::process::id());
        let values = logins
            .iter()
            .map(|l| format!("('{l}')"))
            .collect::<Vec<_>>()
            .join(",");
        let o = Db::sql(&format!(
            "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}; CREATE TABLE {name}.dtb_member (id INT AUTO_INCREMENT PRIMARY KEY, login_id VARCHAR(255) NOT NULL); INSERT INTO {name}.dtb_member (login_id) VALUES {values};"
        ));
        assert!(
            o.status.success(),
            "setup: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Db(name)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = Db::sql(&format!("DROP DATABASE IF EXISTS {}", self.0));
    }
}

fn available() -> bool {
    let addr: SocketAddr = "127.0.0.1:3306".parse().unwrap();
    if TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_err() {
        return !common::skip("no MariaDB on 127.0.0.1:3306");
    }
    if mamori_posture::sys::which("mariadb").is_none()
        && mamori_posture::sys::which("mysql").is_none()
    {
        return !common::skip("no mariadb/mysql client installed");
    }
    true
}

fn check(cfg: PostureConfig, root: &std::path::Path) -> mamori_posture::CheckResult {
    let o = AuditOptions {
        config: cfg,
        root: root.to_path_buf(),
        commands: true,
        only: vec!["shop.login_email".into()],
        ..Default::default()
    };
    let r = audit(&o, "shop-1", Lang::En).unwrap();
    r.get("shop.login_email").unwrap().clone()
}

fn db_cfg(name: &str) -> ShopDbConfig {
    ShopDbConfig {
        kind: ShopKind::Eccube,
        host: "127.0.0.1".into(),
        port: 3306,
        user: "root".into(),
        password: String::new(),
        database: name.into(),
        table_prefix: None,
    }
}

#[test]
fn email_login_fails_through_config_override() {
    if !available() {
        return;
    }
    let db = Db::create("ovr", &["shop-admin", "tanaka@example.co.jp"]);
    let d = tempfile::tempdir().unwrap();
    let cfg = PostureConfig {
        shop_db: vec![db_cfg(&db.0)],
        ..Default::default()
    };
    let c = check(cfg, d.path());
    assert_eq!(c.status, Status::Fail, "{}", c.seen);
    assert!(c.seen.contains("t***@example.co.jp"), "{}", c.seen);
    assert!(
        !c.seen.contains("tanaka@"),
        "login must be masked: {}",
        c.seen
    );
}

#[test]
fn email_login_fails_through_the_shops_own_env() {
    if !available() {
        return;
    }
    let db = Db::create("env", &["ops@example.com"]);
    let d = tempfile::tempdir().unwrap();
    common::put(
        d.path(),
        "/var/www/eccube/.env",
        format!(
            "APP_ENV=prod\nDATABASE_URL=mysql://root:@127.0.0.1:3306/{}\n",
            db.0
        ),
    );
    let cfg = PostureConfig {
        shop_roots: vec!["/var/www/eccube".into()],
        ..Default::default()
    };
    let c = check(cfg, d.path());
    assert_eq!(c.status, Status::Fail, "{}", c.seen);
    assert!(c.source.contains(".env"), "{}", c.source);
}

#[test]
fn plain_logins_pass_and_a_wrong_database_is_an_error() {
    if !available() {
        return;
    }
    let db = Db::create("ok", &["shop-owner", "staff01"]);
    let d = tempfile::tempdir().unwrap();
    let c = check(
        PostureConfig {
            shop_db: vec![db_cfg(&db.0)],
            ..Default::default()
        },
        d.path(),
    );
    assert_eq!(c.status, Status::Pass, "{}", c.seen);
    let c = check(
        PostureConfig {
            shop_db: vec![db_cfg("mamori_no_such_db_x")],
            ..Default::default()
        },
        d.path(),
    );
    assert!(matches!(c.status, Status::Error(_)), "{:?}", c.status);
}

/// `shop.admin_2fa` reads each EC-CUBE member's two-factor flag; EC-CUBE 4.0's table has
/// no such column, which is a FAIL too.
#[test]
fn eccube_admin_2fa_per_member() {
    if !available() {
        return;
    }
    let db = Db::create("tfa", &["shop-owner", "staff01"]);
    let o = Db::sql(&format!(
        "ALTER TABLE {0}.dtb_member ADD two_factor_auth_key VARCHAR(255) NULL, ADD two_factor_auth_enabled TINYINT(1) NOT NULL DEFAULT 0; UPDATE {0}.dtb_member SET two_factor_auth_enabled = 1, two_factor_auth_key = 'K' WHERE login_id = 'shop-owner';",
        db.0
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d = tempfile::tempdir().unwrap();
    let env = |extra: &str| {
        common::put(
            d.path(),
            "/var/www/eccube/.env",
            format!(
                "APP_ENV=prod\nDATABASE_URL=mysql://root:@127.0.0.1:3306/{}\n{extra}",
                db.0
            ),
        )
    };
    let run = || {
        let o = AuditOptions {
            config: PostureConfig {
                shop_roots: vec!["/var/www/eccube".into()],
                ..Default::default()
            },
            root: d.path().to_path_buf(),
            commands: true,
            only: vec!["shop.admin_2fa".into()],
            ..Default::default()
        };
        audit(&o, "shop-1", Lang::En)
            .unwrap()
            .get("shop.admin_2fa")
            .unwrap()
            .clone()
    };
    env("");
    let c = run();
    assert_eq!(c.status, Status::Fail, "{}", c.seen);
    assert!(c.seen.contains("st***"), "{}", c.seen);
    assert!(!c.seen.contains("sh***"), "{}", c.seen);
    Db::sql(&format!(
        "UPDATE {}.dtb_member SET two_factor_auth_enabled = 1",
        db.0
    ));
    let c = run();
    assert_eq!(c.status, Status::Pass, "{}", c.seen);
    // The system switch off beats every member's flag.
    env("ECCUBE_2FA_ENABLED=0\n");
    assert_eq!(run().status, Status::Fail);
    // EC-CUBE 4.0: no 2FA columns at all.
    let old = Db::create("tfa40", &["shop-owner"]);
    common::put(
        d.path(),
        "/var/www/eccube/.env",
        format!("DATABASE_URL=mysql://root:@127.0.0.1:3306/{}\n", old.0),
    );
    let c = run();
    assert_eq!(c.status, Status::Fail, "{}", c.seen);
    assert!(c.seen.contains("4.0"), "{}", c.seen);
}
