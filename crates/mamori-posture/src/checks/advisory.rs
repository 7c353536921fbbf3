//! 20-1.3 / card guideline (web-app): the shop software's version against an offline
//! advisory snapshot. The snapshot ships in the crate (`data/advisories.tsv`, dated by
//! its `# snapshot:` line); `posture.advisories_file` adds lines in the same format, so
//! a shop can update without a new mamori. The format is in docs/posture.md.
//!
//! Versions are read from the shop's own files: EC-CUBE `src/Eccube/Common/Constant.php`
//! (`const VERSION`), WordPress `wp-includes/version.php` (`$wp_version`), WooCommerce's
//! plugin header, Magento's `composer.lock` (`magento/product-*-edition`).

use crate::audit::{Ctx, Outcome};
use mamori_core::tr;
use std::cmp::Ordering;

/// The snapshot shipped with mamori.
pub const SNAPSHOT: &str = include_str!("../../data/advisories.tsv");

/// One advisory range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advisory {
    pub product: String,
    /// (operator, version) pairs, all of which must hold.
    pub affected: Vec<(String, String)>,
    pub fixed: String,
    pub id: String,
    pub severity: String,
    pub url: String,
    pub summary: String,
}

/// `2.4.6-p3` → [2, 4, 6, 3]; `4.2.0` → [4, 2, 0]; anything after a non-digit is cut.
pub fn version_key(v: &str) -> Vec<u64> {
    let v = v.trim().trim_start_matches('v');
    let (main, patch) = match v.split_once("-p") {
        Some((m, p)) => (m, Some(p)),
        None => (v.split(['-', '+', ' ']).next().unwrap_or(v), None),
    };
    let mut k: Vec<u64> = main
        .split('.')
        .map(|p| {
            let d: String = p.chars().take_while(char::is_ascii_digit).collect();
            d.parse().unwrap_or(0)
        })
        .collect();
    if let Some(p) = patch {
        while k.len() < 3 {
            k.push(0);
        }
        let d: String = p.chars().take_while(char::is_ascii_digit).collect();
        k.push(d.parse().unwrap_or(0));
    }
    k
}

pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (version_key(a), version_key(b));
    let n = x.len().max(y.len());
    x.resize(n, 0);
    y.resize(n, 0);
    x.cmp(&y)
}

impl Advisory {
    pub fn affects(&self, version: &str) -> bool {
        !self.affected.is_empty()
            && self.affected.iter().all(|(op, v)| {
                let c = compare(version, v);
                match op.as_str() {
                    ">=" => c != Ordering::Less,
                    ">" => c == Ordering::Greater,
                    "<=" => c != Ordering::Greater,
                    "<" => c == Ordering::Less,
                    "=" => c == Ordering::Equal,
                    _ => false,
                }
            })
    }
}

/// Parse a snapshot: the advisories, its `# snapshot:` date, and the lines that are not
/// valid (line number and why).
pub fn parse_snapshot(text: &str) -> (Vec<Advisory>, Option<String>, Vec<String>) {
    let mut out = Vec::new();
    let mut date = None;
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_end_matches('\r');
        if let Some(d) = l.trim().strip_prefix("# snapshot:") {
            date = Some(d.trim().to_string());
            continue;
        }
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() != 7 {
            bad.push(format!("line {}: {} fields, want 7", i + 1, f.len()));
            continue;
        }
        let mut affected = Vec::new();
        let mut ok = true;
        for c in f[1].split_whitespace() {
            let op_len = c.chars().take_while(|ch| "<>=".contains(*ch)).count();
            let (op, v) = c.split_at(op_len);
            if !matches!(op, ">=" | ">" | "<=" | "<" | "=")
                || v.is_empty()
                || !v.starts_with(|ch: char| ch.is_ascii_digit())
            {
                ok = false;
                break;
            }
            affected.push((op.to_string(), v.to_string()));
        }
        if !ok || affected.is_empty() {
            bad.push(format!("line {}: bad range `{}`", i + 1, f[1]));
            continue;
        }
        out.push(Advisory {
            product: f[0].trim().to_ascii_lowercase(),
            affected,
            fixed: f[2].trim().to_string(),
            id: f[3].trim().to_string(),
            severity: f[4].trim().to_string(),
            url: f[5].trim().to_string(),
            summary: f[6].trim().to_string(),
        });
    }
    (out, date, bad)
}

fn capture(re: &str, text: &str) -> Option<String> {
    regex::Regex::new(re)
        .ok()?
        .captures(text)
        .map(|c| c[1].to_string())
}

/// EC-CUBE `Constant.php`: `const VERSION = '4.2.1';`.
pub fn eccube_version(constant_php: &str) -> Option<String> {
    capture(
        r#"const\s+VERSION\s*=\s*['"]([0-9][^'"]*)['"]"#,
        constant_php,
    )
}

/// WordPress `wp-includes/version.php`: `$wp_version = '6.4.2';`.
pub fn wordpress_version(version_php: &str) -> Option<String> {
    capture(r#"\$wp_version\s*=\s*['"]([0-9][^'"]*)['"]"#, version_php)
}

/// A WordPress plugin's main file header: ` * Version: 8.5.1`.
pub fn plugin_version(main_php: &str) -> Option<String> {
    capture(r"(?m)^[\s*#/]*Version:\s*([0-9][0-9A-Za-z.\-]*)", main_php)
}

/// Magento's `composer.lock`: the version of `magento/product-*-edition`.
pub fn magento_version(composer_lock: &str) -> Option<String> {
    capture(
        r#""name":\s*"magento/product-(?:community|enterprise)-edition",\s*"version":\s*"v?([0-9][^"]*)""#,
        composer_lock,
    )
}

/// (product, version, file) of the shop software found under one root.
pub fn installed(ctx: &Ctx, root: &str) -> Vec<(&'static str, String, String)> {
    let r = root.trim_end_matches('/');
    type Reader = fn(&str) -> Option<String>;
    let tries: [(&str, &str, Reader); 6] = [
        ("eccube", "src/Eccube/Common/Constant.php", eccube_version),
        (
            "eccube",
            "../src/Eccube/Common/Constant.php",
            eccube_version,
        ),
        ("wordpress", "wp-includes/version.php", wordpress_version),
        (
            "woocommerce",
            "wp-content/plugins/woocommerce/woocommerce.php",
            plugin_version,
        ),
        ("magento", "composer.lock", magento_version),
        ("magento", "../composer.lock", magento_version),
    ];
    let mut out: Vec<(&'static str, String, String)> = Vec::new();
    for (product, rel, f) in tries {
        let abs = format!("{r}/{rel}");
        if out.iter().any(|(p, _, _)| *p == product) {
            continue;
        }
        if let Ok(t) = ctx.sys.read(&abs)
            && let Some(v) = f(&t)
        {
            out.push((product, v, abs));
        }
    }
    out
}

pub fn shop_version(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let (mut advisories, date, _) = parse_snapshot(SNAPSHOT);
    let date = date.unwrap_or_else(|| "?".into());
    let mut sources = vec![format!("advisory snapshot {date}")];
    if let Some(extra) = &ctx.cfg.advisories_file {
        let p = extra.to_string_lossy();
        match crate::sys::read_capped(extra) {
            Ok(t) => {
                let (more, d, bad) = parse_snapshot(&t);
                if !bad.is_empty() {
                    let l = bad.join("; ");
                    return Outcome::error(
                        tr!(
                            lang,
                            "{p}: not an advisory snapshot: {l}",
                            "{p}: 脆弱性スナップショットの形式ではありません: {l}"
                        ),
                        p.into_owned(),
                    );
                }
                advisories.extend(more);
                sources.push(format!("{p} {}", d.unwrap_or_default()));
            }
            Err(e) => {
                return Outcome::error(
                    tr!(lang, "{p}: {e}", "{p}: 読めません: {e}"),
                    p.into_owned(),
                );
            }
        }
    }
    let mut found = Vec::new();
    for root in &ctx.cfg.shop_roots {
        found.extend(installed(ctx, &root.to_string_lossy()));
    }
    if found.is_empty() {
        return Outcome::missing(
            tr!(
                lang,
                "no EC-CUBE, WordPress, WooCommerce or Magento version found in the shop roots",
                "店舗ルートに EC-CUBE / WordPress / WooCommerce / Magento のバージョンがありません"
            ),
            "posture.shop_roots",
        );
    }
    let mut hits = Vec::new();
    let mut versions = Vec::new();
    for (product, v, file) in &found {
        versions.push(format!("{product} {v}"));
        sources.push(file.clone());
        for a in advisories
            .iter()
            .filter(|a| a.product == *product && a.affects(v))
        {
            hits.push(serde_json::json!({
                "product": product, "version": v, "id": a.id, "fixed": a.fixed,
                "severity": a.severity, "url": a.url, "summary": a.summary,
            }));
        }
    }
    let source = sources.join(", ");
    let seen_versions = versions.join(", ");
    let details = serde_json::json!({"installed": versions, "advisories": hits, "snapshot": date});
    if !hits.is_empty() {
        let l = hits
            .iter()
            .map(|h| {
                format!(
                    "{} {} {} (fixed in {})",
                    h["product"].as_str().unwrap_or(""),
                    h["version"].as_str().unwrap_or(""),
                    h["id"].as_str().unwrap_or(""),
                    h["fixed"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Outcome::fail(
            tr!(
                lang,
                "known vulnerabilities in the shop software: {l}",
                "店舗ソフトに既知の脆弱性があります: {l}"
            ),
            source,
        )
        .with_details(details);
    }
    Outcome::pass(
        tr!(
            lang,
            "{seen_versions}: no advisory in the snapshot of {date}",
            "{seen_versions}: {date} 時点のスナップショットに該当する脆弱性はありません"
        ),
        source,
    )
    .with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare() {
        assert_eq!(version_key("2.4.6-p3"), [2, 4, 6, 3]);
        assert_eq!(compare("2.4.6", "2.4.6-p1"), Ordering::Less);
        assert_eq!(compare("4.2", "4.2.0"), Ordering::Equal);
        assert_eq!(compare("4.10.0", "4.9.9"), Ordering::Greater);
        assert_eq!(compare("6.4.2-RC1", "6.4.2"), Ordering::Equal);
    }

    #[test]
    fn shipped_snapshot_parses_and_matches() {
        let (a, date, bad) = parse_snapshot(SNAPSHOT);
        assert!(bad.is_empty(), "{bad:?}");
        assert!(date.is_some());
        assert!(a.len() >= 5);
        let hit = |p: &str, v: &str| a.iter().any(|x| x.product == p && x.affects(v));
        assert!(hit("eccube", "4.1.1"));
        assert!(hit("eccube", "3.0.18-p3"));
        assert!(!hit("eccube", "4.1.2"));
        assert!(!hit("eccube", "4.2.0"));
        assert!(hit("magento", "2.4.6-p5"));
        assert!(!hit("magento", "2.4.6-p6"));
        assert!(hit("magento", "2.4.7"));
        assert!(!hit("magento", "2.4.7-p1"));
        assert!(hit("wordpress", "5.8.2"));
        assert!(!hit("wordpress", "5.8.3"));
    }

    #[test]
    fn bad_lines_are_named() {
        let (a, _, bad) = parse_snapshot("eccube\t~4.0\t4.1\tX\tlow\tu\ts\nfoo\tbar\n");
        assert!(a.is_empty());
        assert_eq!(bad.len(), 2);
        assert!(bad[0].starts_with("line 1"), "{bad:?}");
    }

    #[test]
    fn version_files() {
        assert_eq!(
            eccube_version("<?php\nclass Constant\n{\n    /**\n     * EC-CUBE VERSION.\n     */\n    const VERSION = '4.2.1';\n").as_deref(),
            Some("4.2.1")
        );
        assert_eq!(
            wordpress_version("<?php\n/**\n * The WordPress version string.\n *\n * @global string $wp_version\n */\n$wp_version = '6.4.2';\n\n$wp_db_version = 56657;\n").as_deref(),
            Some("6.4.2")
        );
        assert_eq!(
            plugin_version("<?php\n/**\n * Plugin Name: WooCommerce\n * Description: An ecommerce toolkit.\n * Version: 8.5.1\n * Author: Automattic\n").as_deref(),
            Some("8.5.1")
        );
        let lock = "{\n    \"packages\": [\n        {\n            \"name\": \"magento/product-community-edition\",\n            \"version\": \"2.4.6-p3\",\n            \"source\": {}\n        }\n    ]\n}\n";
        assert_eq!(magento_version(lock).as_deref(), Some("2.4.6-p3"));
    }
}
