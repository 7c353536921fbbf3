//! 20-1.6: shop admin login ids must not be e-mail addresses. Reads EC-CUBE
//! `dtb_member.login_id`, Magento `admin_user.username` and WordPress administrators'
//! `user_login`, read-only, with the credentials in the shop's own config (or
//! `[[posture.shop_db]]`).
//!
//! The query runs through the `mariadb` (or `mysql`) client, which every server running
//! MariaDB/MySQL has: no database driver and no TLS stack are compiled into mamori. The
//! password goes in a 0600 option file (`--defaults-extra-file`), never on the command
//! line or in the environment; the session is `READ ONLY` and the client is killed after
//! the timeout.

use crate::audit::{Ctx, Outcome};
use crate::config::{ShopDbConfig, ShopKind};
use mamori_core::tr;
use std::io::Write;
use std::path::Path;

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// EC-CUBE 4 `.env`: `DATABASE_URL=mysql://user:pass@host:port/db`.
pub fn from_eccube_env(text: &str) -> Option<ShopDbConfig> {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("DATABASE_URL="))?;
    let url = line.trim().trim_matches('"').trim_matches('\'');
    let rest = url
        .strip_prefix("mysql://")
        .or_else(|| url.strip_prefix("mysql2://"))?;
    let (cred, hostdb) = rest.rsplit_once('@')?;
    let (user, pass) = cred.split_once(':').unwrap_or((cred, ""));
    let (hp, db) = hostdb.split_once('/')?;
    let db = db.split('?').next()?;
    let (host, port) = match hp.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hp, 3306),
    };
    Some(ShopDbConfig {
        kind: ShopKind::Eccube,
        host: host.to_string(),
        port,
        user: url_decode(user),
        password: url_decode(pass),
        database: url_decode(db),
        table_prefix: None,
    })
}

fn php_str(text: &str, key: &str) -> Option<String> {
    let re = regex::Regex::new(&format!(
        r#"['"]{}['"]\s*=>\s*['"]([^'"]*)['"]"#,
        regex::escape(key)
    ))
    .ok()?;
    re.captures(text).map(|c| c[1].to_string())
}

/// Magento 2 `app/etc/env.php`.
pub fn from_magento_env(text: &str) -> Option<ShopDbConfig> {
    let i = text
        .find("'default'")
        .or_else(|| text.find("\"default\""))?;
    let t = &text[i..];
    let host = php_str(t, "host").unwrap_or_else(|| "localhost".into());
    let (host, port) = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => {
            (h.to_string(), p.parse().unwrap_or(3306))
        }
        _ => (host, 3306),
    };
    Some(ShopDbConfig {
        kind: ShopKind::Magento,
        host,
        port,
        user: php_str(t, "username")?,
        password: php_str(t, "password").unwrap_or_default(),
        database: php_str(t, "dbname")?,
        table_prefix: php_str(text, "table_prefix"),
    })
}

/// WordPress `wp-config.php`.
pub fn from_wp_config(text: &str) -> Option<ShopDbConfig> {
    let def = |k: &str| {
        let re =
            regex::Regex::new(&format!(r#"define\(\s*['"]{k}['"]\s*,\s*['"]([^'"]*)['"]"#)).ok()?;
        re.captures(text).map(|c| c[1].to_string())
    };
    let host = def("DB_HOST").unwrap_or_else(|| "localhost".into());
    let (host, port) = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => {
            (h.to_string(), p.parse().unwrap_or(3306))
        }
        _ => (host, 3306),
    };
    let prefix = regex::Regex::new(r#"\$table_prefix\s*=\s*['"]([A-Za-z0-9_]*)['"]"#)
        .ok()
        .and_then(|r| r.captures(text).map(|c| c[1].to_string()));
    Some(ShopDbConfig {
        kind: ShopKind::Wordpress,
        host,
        port,
        user: def("DB_USER")?,
        password: def("DB_PASSWORD").unwrap_or_default(),
        database: def("DB_NAME")?,
        table_prefix: prefix.or(Some("wp_".into())),
    })
}

type Parser = fn(&str) -> Option<ShopDbConfig>;

/// Shop databases found in a document root (EC-CUBE 4, Magento 2, WordPress).
pub fn discover(root: &Path) -> Vec<(String, ShopDbConfig)> {
    let mut out = Vec::new();
    let tries: [(&str, Parser); 4] = [
        (".env", from_eccube_env),
        ("app/etc/env.php", from_magento_env),
        ("wp-config.php", from_wp_config),
        ("../wp-config.php", from_wp_config),
    ];
    for (rel, f) in tries {
        let p = root.join(rel);
        if let Ok(t) = crate::sys::read_capped(&p)
            && let Some(c) = f(&t)
        {
            out.push((p.display().to_string(), c));
        }
    }
    out
}

fn opt_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn valid_ident(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn table_prefix(db: &ShopDbConfig) -> Result<String, String> {
    let p = db.table_prefix.clone().unwrap_or_else(|| {
        if db.kind == ShopKind::Wordpress {
            "wp_".into()
        } else {
            String::new()
        }
    });
    if !valid_ident(&p) {
        return Err(format!(
            "table prefix `{p}` has characters other than [A-Za-z0-9_]"
        ));
    }
    Ok(p)
}

/// The admin login names of one shop database.
pub fn admin_logins(ctx: &Ctx, db: &ShopDbConfig) -> Result<Vec<String>, String> {
    let p = table_prefix(db)?;
    let q = match db.kind {
        ShopKind::Eccube => format!("SELECT login_id FROM {p}dtb_member"),
        ShopKind::Magento => format!("SELECT username FROM {p}admin_user WHERE is_active = 1"),
        ShopKind::Wordpress => format!(
            "SELECT u.user_login FROM {p}users u JOIN {p}usermeta m ON m.user_id = u.ID WHERE m.meta_key = '{p}capabilities' AND m.meta_value LIKE '%administrator%'"
        ),
    };
    query(ctx, db, &q)
}

/// One read-only query through the `mariadb`/`mysql` client: the rows' first column.
pub fn query(ctx: &Ctx, db: &ShopDbConfig, q: &str) -> Result<Vec<String>, String> {
    let mut opt = tempfile::Builder::new()
        .prefix(".mamori-my-")
        .tempfile()
        .map_err(|e| e.to_string())?;
    writeln!(
        opt,
        "[client]\nuser={}\npassword={}\nhost={}\nport={}",
        opt_quote(&db.user),
        opt_quote(&db.password),
        opt_quote(&db.host),
        db.port
    )
    .map_err(|e| e.to_string())?;
    opt.flush().map_err(|e| e.to_string())?;
    let optarg = format!("--defaults-extra-file={}", opt.path().display());
    let timeout = format!("--connect-timeout={}", ctx.sys.timeout.as_secs().max(1));
    let args = [
        optarg.as_str(),
        "--batch",
        "--skip-column-names",
        "--raw",
        timeout.as_str(),
        "--init-command=SET SESSION TRANSACTION READ ONLY",
        "-e",
        q,
        db.database.as_str(),
    ];
    let res = ctx
        .sys
        .run_client("mariadb", &args)
        .or_else(|| ctx.sys.run_client("mysql", &args));
    match res {
        None => Err("no mariadb/mysql client installed (or commands disabled)".into()),
        Some(Err(e)) => Err(e.to_string()),
        Some(Ok(o)) if o.timed_out => Err("database query timed out".into()),
        Some(Ok(o)) if o.status != Some(0) => Err(o
            .stderr
            .trim()
            .lines()
            .last()
            .unwrap_or("client failed")
            .to_string()),
        Some(Ok(o)) => Ok(o
            .stdout
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()),
    }
}

pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// `tanaka@example.com` → `t***@example.com`.
pub fn mask_login(s: &str) -> String {
    match s.split_once('@') {
        Some((l, d)) => format!("{}***@{d}", l.chars().next().unwrap_or('*')),
        None => {
            let first: String = s.chars().take(2).collect();
            format!("{first}***")
        }
    }
}

pub fn login_email(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let mut dbs: Vec<(String, ShopDbConfig)> = ctx
        .cfg
        .shop_db
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("posture.shop_db[{i}]"), d.clone()))
        .collect();
    if dbs.is_empty() {
        for r in &ctx.cfg.shop_roots {
            dbs.extend(discover(&ctx.sys.path(&r.to_string_lossy())));
        }
    }
    if dbs.is_empty() {
        return Outcome::missing(
            tr!(
                lang,
                "no shop database found (no shop root config and no [[posture.shop_db]])",
                "店舗のデータベースが見つかりません (店舗の設定ファイルも [[posture.shop_db]] もありません)"
            ),
            "posture.shop_roots",
        );
    }
    let mut emails = Vec::new();
    let mut generic = Vec::new();
    let mut errors = Vec::new();
    let mut checked = 0usize;
    for (src, db) in &dbs {
        let k = db.kind.as_str();
        match admin_logins(ctx, db) {
            Ok(logins) => {
                checked += logins.len();
                for l in logins {
                    if is_email(&l) {
                        emails.push(format!("{k} {}", mask_login(&l)));
                    } else if matches!(
                        l.to_ascii_lowercase().as_str(),
                        "admin" | "administrator" | "root" | "test" | "demo" | "user"
                    ) {
                        generic.push(format!("{k} {l}"));
                    }
                }
            }
            Err(e) => errors.push(format!(
                "{src} ({k} {}@{}:{}/{}): {e}",
                db.user, db.host, db.port, db.database
            )),
        }
    }
    let sources = dbs
        .iter()
        .map(|d| d.0.clone())
        .collect::<Vec<_>>()
        .join(", ");
    let details = serde_json::json!({"email_logins": emails, "generic_logins": generic, "errors": errors, "accounts_checked": checked});
    if !emails.is_empty() {
        let l = emails.join(", ");
        return Outcome::fail(
            tr!(
                lang,
                "admin login ids that are e-mail addresses: {l}",
                "メールアドレスを管理画面のログイン ID にしています: {l}"
            ),
            sources,
        )
        .with_details(details);
    }
    if !errors.is_empty() {
        let e = errors.join("; ");
        return Outcome::error(
            tr!(
                lang,
                "could not read admin accounts: {e}",
                "管理者アカウントを読めません: {e}"
            ),
            sources,
        )
        .with_details(details);
    }
    if !generic.is_empty() {
        let l = generic.join(", ");
        return Outcome::warn(
            tr!(
                lang,
                "guessable admin login ids: {l}",
                "推測されやすい管理者ログイン ID: {l}"
            ),
            sources,
        )
        .with_details(details);
    }
    Outcome::pass(
        tr!(
            lang,
            "{checked} admin login ids, none is an e-mail address",
            "管理者ログイン ID {checked} 件にメールアドレスはありません"
        ),
        sources,
    )
    .with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shop_configs() {
        let e = from_eccube_env("APP_ENV=prod\nDATABASE_URL=mysql://ec%40user:p%23ss@127.0.0.1:3307/eccube?serverVersion=10\n").unwrap();
        assert_eq!(
            (
                e.user.as_str(),
                e.password.as_str(),
                e.port,
                e.database.as_str()
            ),
            ("ec@user", "p#ss", 3307, "eccube")
        );
        let m = from_magento_env("<?php return ['db' => ['table_prefix' => 'mg_', 'connection' => ['default' => ['host' => 'localhost', 'dbname' => 'magento', 'username' => 'mage', 'password' => 'pw', 'active' => '1']]]];").unwrap();
        assert_eq!(
            (
                m.host.as_str(),
                m.user.as_str(),
                m.database.as_str(),
                m.table_prefix.as_deref()
            ),
            ("localhost", "mage", "magento", Some("mg_"))
        );
        let w = from_wp_config("define( 'DB_NAME', 'wp' );\ndefine('DB_USER', 'wpu');\ndefine('DB_PASSWORD', 'x');\ndefine('DB_HOST', 'db:3308');\n$table_prefix = 'shop_';").unwrap();
        assert_eq!(
            (w.host.as_str(), w.port, w.table_prefix.as_deref()),
            ("db", 3308, Some("shop_"))
        );
        assert!(from_eccube_env("APP_ENV=prod").is_none());
    }

    #[test]
    fn emails() {
        assert!(is_email("tanaka@example.co.jp"));
        assert!(!is_email("tanaka"));
        assert!(!is_email("a@b"));
        assert_eq!(mask_login("tanaka@example.com"), "t***@example.com");
    }
}
