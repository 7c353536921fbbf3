//! 20-1.7: two-factor login for the shop's admin screen.
//! - EC-CUBE 4.1+: the system switch `ECCUBE_2FA_ENABLED` in `.env` (off when `0` or
//!   `false`) and each member's `dtb_member.two_factor_auth_enabled` (EC-CUBE 4.0 has
//!   neither column: no admin 2FA at all);
//! - Magento 2.4: the `Magento_TwoFactorAuth` module enabled in `app/etc/config.php`;
//! - WordPress: a two-factor plugin among `active_plugins` (`wp_options`).
//!
//! The database is read as `shop.login_email` reads it (read-only, the shop's own
//! credentials or `[[posture.shop_db]]`).

use crate::audit::{Ctx, Outcome};
use crate::checks::shopdb::{discover, mask_login, query, table_prefix};
use crate::config::{ShopDbConfig, ShopKind};
use mamori_core::tr;

/// WordPress plugins (directory names) that give administrators a second factor.
pub const WP_2FA_PLUGINS: &[&str] = &[
    "two-factor",
    "wp-2fa",
    "wordfence",
    "wordfence-login-security",
    "google-authenticator",
    "miniorange-2-factor-authentication",
    "two-factor-authentication",
    "duo-wordpress",
    "all-in-one-wp-security-and-firewall",
    "wp-simple-firewall",
    "two-factor-login",
];

/// `ECCUBE_2FA_ENABLED` of an EC-CUBE `.env`: `Some(false)` when switched off.
pub fn eccube_2fa_switch(env: &str) -> Option<bool> {
    let v = env.lines().find_map(|l| {
        l.trim().strip_prefix("ECCUBE_2FA_ENABLED=").map(|v| {
            v.trim()
                .trim_matches('"')
                .trim_matches('\'')
                .to_ascii_lowercase()
        })
    })?;
    Some(!matches!(v.as_str(), "0" | "false" | "off" | "no" | ""))
}

/// Whether Magento's `app/etc/config.php` enables `Magento_TwoFactorAuth`:
/// `None` when the module is not listed (Magento before 2.4).
pub fn magento_2fa(config_php: &str) -> Option<bool> {
    let re = regex::Regex::new(r#"['"]Magento_TwoFactorAuth['"]\s*=>\s*(\d)"#).ok()?;
    re.captures(config_php).map(|c| &c[1] == "1")
}

/// The 2FA plugins in a serialized `active_plugins` value
/// (`a:2:{i:0;s:19:"akismet/akismet.php";i:1;s:24:"wp-2fa/wp-2fa.php";}`).
pub fn wp_2fa_plugins(active_plugins: &str) -> Vec<String> {
    let mut v: Vec<String> = active_plugins
        .split('"')
        .filter_map(|s| s.split_once('/').map(|(dir, _)| dir))
        .filter(|dir| WP_2FA_PLUGINS.contains(dir))
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

enum Verdict {
    Pass(String),
    Fail(String),
    Error(String),
}

fn eccube(ctx: &Ctx, env: Option<&str>, db: Option<&ShopDbConfig>) -> Verdict {
    let lang = ctx.lang;
    if env.and_then(eccube_2fa_switch) == Some(false) {
        return Verdict::Fail(tr!(
            lang,
            "EC-CUBE two-factor login switched off (ECCUBE_2FA_ENABLED)",
            "EC-CUBE の二段階認証が無効です (ECCUBE_2FA_ENABLED)"
        ));
    }
    let Some(db) = db else {
        return Verdict::Error(tr!(
            lang,
            "no database access to read the members' 2FA settings",
            "メンバーの二段階認証設定を読むためのデータベース接続がありません"
        ));
    };
    let p = match table_prefix(db) {
        Ok(p) => p,
        Err(e) => return Verdict::Error(e),
    };
    let q = format!(
        "SELECT login_id FROM {p}dtb_member WHERE two_factor_auth_enabled = 0 OR two_factor_auth_enabled IS NULL"
    );
    match query(ctx, db, &q) {
        Ok(rows) if rows.is_empty() => Verdict::Pass(tr!(
            lang,
            "every EC-CUBE admin member uses two-factor login",
            "EC-CUBE の全管理者が二段階認証を使っています"
        )),
        Ok(rows) => {
            let n = rows.len();
            let l = rows
                .iter()
                .map(|r| mask_login(r))
                .collect::<Vec<_>>()
                .join(", ");
            Verdict::Fail(tr!(
                lang,
                "{n} EC-CUBE admin members log in without a second factor: {l}",
                "EC-CUBE の管理者 {n} 名が二段階認証なしでログインできます: {l}"
            ))
        }
        Err(e) if e.contains("Unknown column") => Verdict::Fail(tr!(
            lang,
            "this EC-CUBE has no admin two-factor login (4.0 or older: no two_factor_auth columns)",
            "この EC-CUBE には管理画面の二段階認証がありません (4.0 以前: two_factor_auth 列なし)"
        )),
        Err(e) => Verdict::Error(e),
    }
}

fn wordpress(ctx: &Ctx, db: &ShopDbConfig) -> Verdict {
    let lang = ctx.lang;
    let p = match table_prefix(db) {
        Ok(p) => p,
        Err(e) => return Verdict::Error(e),
    };
    let q = format!("SELECT option_value FROM {p}options WHERE option_name = 'active_plugins'");
    match query(ctx, db, &q) {
        Ok(rows) => {
            let found = wp_2fa_plugins(&rows.join("\n"));
            if found.is_empty() {
                Verdict::Fail(tr!(
                    lang,
                    "no two-factor plugin active in WordPress",
                    "WordPress に二段階認証プラグインが有効化されていません"
                ))
            } else {
                let l = found.join(", ");
                Verdict::Pass(tr!(
                    lang,
                    "WordPress two-factor plugin active: {l}",
                    "WordPress の二段階認証プラグインが有効です: {l}"
                ))
            }
        }
        Err(e) => Verdict::Error(e),
    }
}

pub fn admin_2fa(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let mut fails = Vec::new();
    let mut passes = Vec::new();
    let mut errors = Vec::new();
    let mut sources = Vec::new();
    let mut seen_any = false;
    for root in &ctx.cfg.shop_roots {
        let r = root.to_string_lossy();
        let abs = ctx.sys.path(&r);
        let found = discover(&abs);
        let override_db = |k: ShopKind| ctx.cfg.shop_db.iter().find(|d| d.kind == k).cloned();
        // EC-CUBE
        let env_path = format!("{}/.env", r.trim_end_matches('/'));
        let env = ctx.sys.read(&env_path).ok();
        let is_eccube = env
            .as_deref()
            .is_some_and(|t| t.contains("ECCUBE_") || t.contains("DATABASE_URL"))
            || ctx
                .sys
                .exists(&format!("{}/src/Eccube", r.trim_end_matches('/')));
        if is_eccube {
            seen_any = true;
            let db = override_db(ShopKind::Eccube).or_else(|| {
                found
                    .iter()
                    .find(|(_, d)| d.kind == ShopKind::Eccube)
                    .map(|x| x.1.clone())
            });
            sources.push(env_path.clone());
            match eccube(ctx, env.as_deref(), db.as_ref()) {
                Verdict::Pass(s) => passes.push(format!("{r}: {s}")),
                Verdict::Fail(s) => fails.push(format!("{r}: {s}")),
                Verdict::Error(s) => errors.push(format!("{r}: {s}")),
            }
        }
        // Magento
        let cfg_php = format!("{}/app/etc/config.php", r.trim_end_matches('/'));
        if let Ok(t) = ctx.sys.read(&cfg_php) {
            seen_any = true;
            sources.push(cfg_php.clone());
            match magento_2fa(&t) {
                Some(true) => passes.push(format!(
                    "{r}: {}",
                    tr!(
                        lang,
                        "Magento_TwoFactorAuth enabled",
                        "Magento_TwoFactorAuth が有効です"
                    )
                )),
                Some(false) => fails.push(format!(
                    "{r}: {}",
                    tr!(
                        lang,
                        "Magento_TwoFactorAuth disabled",
                        "Magento_TwoFactorAuth が無効です"
                    )
                )),
                None => fails.push(format!(
                    "{r}: {}",
                    tr!(
                        lang,
                        "no Magento_TwoFactorAuth module (Magento before 2.4)",
                        "Magento_TwoFactorAuth モジュールがありません (2.4 より前の Magento)"
                    )
                )),
            }
        }
        // WordPress
        if let Some(db) = override_db(ShopKind::Wordpress).or_else(|| {
            found
                .iter()
                .find(|(_, d)| d.kind == ShopKind::Wordpress)
                .map(|x| x.1.clone())
        }) {
            seen_any = true;
            sources.push(format!("{r}/wp-config.php"));
            match wordpress(ctx, &db) {
                Verdict::Pass(s) => passes.push(format!("{r}: {s}")),
                Verdict::Fail(s) => fails.push(format!("{r}: {s}")),
                Verdict::Error(s) => errors.push(format!("{r}: {s}")),
            }
        }
    }
    if !seen_any {
        return Outcome::missing(
            tr!(
                lang,
                "no EC-CUBE, Magento or WordPress in the shop roots",
                "店舗ルートに EC-CUBE / Magento / WordPress がありません"
            ),
            "posture.shop_roots",
        );
    }
    let source = sources.join(", ");
    let details = serde_json::json!({"fail": fails, "pass": passes, "errors": errors});
    if !fails.is_empty() {
        return Outcome::fail(fails.join("; "), source).with_details(details);
    }
    if !errors.is_empty() {
        let l = errors.join("; ");
        return Outcome::error(
            tr!(
                lang,
                "could not read the admin 2FA settings: {l}",
                "管理画面の二段階認証設定を読めません: {l}"
            ),
            source,
        )
        .with_details(details);
    }
    Outcome::pass(passes.join("; "), source).with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eccube_switch() {
        assert_eq!(eccube_2fa_switch("APP_ENV=prod\n"), None);
        assert_eq!(eccube_2fa_switch("ECCUBE_2FA_ENABLED=0\n"), Some(false));
        assert_eq!(
            eccube_2fa_switch("ECCUBE_2FA_ENABLED='false'\n"),
            Some(false)
        );
        assert_eq!(eccube_2fa_switch("ECCUBE_2FA_ENABLED=1\n"), Some(true));
    }

    #[test]
    fn magento_config_php() {
        let on = "<?php\nreturn [\n    'modules' => [\n        'Magento_Store' => 1,\n        'Magento_TwoFactorAuth' => 1,\n    ],\n];\n";
        assert_eq!(magento_2fa(on), Some(true));
        assert_eq!(
            magento_2fa(&on.replace(
                "'Magento_TwoFactorAuth' => 1",
                "'Magento_TwoFactorAuth' => 0"
            )),
            Some(false)
        );
        assert_eq!(
            magento_2fa("<?php return ['modules' => ['Magento_Store' => 1]];"),
            None
        );
    }

    #[test]
    fn wordpress_active_plugins() {
        let v = r#"a:3:{i:0;s:19:"akismet/akismet.php";i:1;s:17:"wp-2fa/wp-2fa.php";i:2;s:27:"woocommerce/woocommerce.php";}"#;
        assert_eq!(wp_2fa_plugins(v), ["wp-2fa"]);
        let none = r#"a:1:{i:0;s:27:"woocommerce/woocommerce.php";}"#;
        assert!(wp_2fa_plugins(none).is_empty());
        // A directory name that merely contains the word is not the plugin.
        assert!(wp_2fa_plugins(r#"a:1:{i:0;s:20:"my-two-factor-x/a.php";}"#).is_empty());
    }
}
