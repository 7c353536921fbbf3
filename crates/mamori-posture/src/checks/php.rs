//! Card guideline (web-app hardening): PHP settings the web server runs with.
//! Reads the FPM / Apache php.ini (and its conf.d overrides) of every installed PHP;
//! `php -i` (the CLI's view) only when no such file exists.

use crate::audit::{Ctx, Outcome};
use mamori_core::tr;
use std::collections::BTreeMap;

/// An ini value without its trailing `; comment` and quotes.
pub fn ini_value(v: &str) -> &str {
    v.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"')
        .trim_matches('\'')
}

/// `key = value` settings of an ini text (later files override earlier ones).
pub fn parse_ini(text: &str, into: &mut BTreeMap<String, String>) {
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with(';') || l.starts_with('[') || l.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            into.insert(k.trim().to_ascii_lowercase(), ini_value(v).to_string());
        }
    }
}

fn truthy(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "on" | "1" | "yes" | "true" | "stdout"
    )
}

/// (setting, value that fails, default when unset).
const RULES: &[(&str, &str)] = &[
    ("expose_php", "on"),
    ("display_errors", "1"),
    ("allow_url_include", "off"),
];

fn evaluate(ctx: &Ctx, sets: &[(String, BTreeMap<String, String>)], source: String) -> Outcome {
    let lang = ctx.lang;
    let mut bad = Vec::new();
    for (name, m) in sets {
        for (k, default) in RULES {
            let v = m.get(*k).map(String::as_str).unwrap_or(default);
            if truthy(v) {
                bad.push(format!("{name}: {k}={v}"));
            }
        }
    }
    let details =
        serde_json::json!({"failing": bad, "files": sets.iter().map(|s| &s.0).collect::<Vec<_>>()});
    if bad.is_empty() {
        Outcome::pass(
            tr!(
                lang,
                "expose_php, display_errors and allow_url_include are off",
                "expose_php・display_errors・allow_url_include は無効です"
            ),
            source,
        )
        .with_details(details)
    } else {
        let l = bad.join("; ");
        Outcome::fail(
            tr!(lang, "unsafe PHP settings: {l}", "危険な PHP 設定: {l}"),
            source,
        )
        .with_details(details)
    }
}

pub fn hardening(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let mut sets = Vec::new();
    for ver in ctx.sys.list("/etc/php") {
        let Some(v) = ver.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        for sapi in ["fpm", "apache2"] {
            let abs = format!("/etc/php/{v}/{sapi}/php.ini");
            let Ok(t) = ctx.sys.read(&abs) else { continue };
            let mut m = BTreeMap::new();
            parse_ini(&t, &mut m);
            for extra in ctx.sys.list(&format!("/etc/php/{v}/{sapi}/conf.d")) {
                if extra.extension().is_some_and(|e| e == "ini") {
                    parse_ini(&crate::sys::read_capped(&extra).unwrap_or_default(), &mut m);
                }
            }
            sets.push((abs, m));
        }
    }
    if !sets.is_empty() {
        return evaluate(ctx, &sets, "/etc/php/*/{fpm,apache2}/php.ini".into());
    }
    if let Some(o) = ctx.sys.run("php", &["-i"]) {
        if o.status == Some(0) {
            let mut m = BTreeMap::new();
            for l in o.stdout.lines() {
                let f: Vec<&str> = l.split(" => ").collect();
                if f.len() == 3 {
                    m.insert(f[0].trim().to_ascii_lowercase(), f[2].trim().to_string());
                }
            }
            return evaluate(ctx, &[("php -i".into(), m)], "php -i (CLI)".into());
        }
        return Outcome::na(
            tr!(lang, "php -i failed", "php -i が失敗しました"),
            "php -i",
        );
    }
    Outcome::missing(
        tr!(
            lang,
            "no php.ini for FPM/Apache found",
            "FPM/Apache 用の php.ini がありません"
        ),
        "/etc/php",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ini() {
        let mut m = BTreeMap::new();
        parse_ini(
            "[PHP]\nexpose_php = Off ; no\ndisplay_errors=\"On\"\n;allow_url_include=On\n",
            &mut m,
        );
        assert_eq!(m["expose_php"], "Off");
        assert_eq!(m["display_errors"], "On");
        assert!(!m.contains_key("allow_url_include"));
    }
}
