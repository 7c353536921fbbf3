//! 20-1.3: pending security updates, reboot required, unattended upgrades.
//!
//! Pending updates are read from apt's own state (`/var/lib/dpkg/status` and the
//! `*-security*_Packages` lists, plain, `.lz4` or `.gz`), which takes well under a
//! second; `apt-get -s upgrade` (several seconds) is the fallback when no lists exist.

use crate::audit::{Ctx, Outcome};
use mamori_core::tr;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Installed packages: name → version (only `install ok installed`).
pub fn parse_dpkg_status(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for para in text.split("\n\n") {
        let (mut name, mut ver, mut ok) = (None, None, false);
        for line in para.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Version: ") {
                ver = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status: ") {
                ok = v.trim().ends_with(" installed") && v.contains("ok");
            }
        }
        if let (Some(n), Some(v), true) = (name, ver, ok) {
            out.insert(n.to_string(), v.to_string());
        }
    }
    out
}

/// Highest version of each package in an apt `Packages` list.
pub fn parse_packages_list(text: &str, into: &mut BTreeMap<String, String>) {
    for para in text.split("\n\n") {
        let (mut name, mut ver) = (None, None);
        for line in para.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Version: ") {
                ver = Some(v.trim());
            }
        }
        if let (Some(n), Some(v)) = (name, ver) {
            let newer = into
                .get(n)
                .map(|old| compare_versions(v, old) == Ordering::Greater)
                .unwrap_or(true);
            if newer {
                into.insert(n.to_string(), v.to_string());
            }
        }
    }
}

fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

fn cmp_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // non-digit prefix
        loop {
            let ca = a.get(i).copied().filter(|c| !c.is_ascii_digit());
            let cb = b.get(j).copied().filter(|c| !c.is_ascii_digit());
            if ca.is_none() && cb.is_none() {
                break;
            }
            let (oa, ob) = (order(ca), order(cb));
            if oa != ob {
                return oa.cmp(&ob);
            }
            if ca.is_some() {
                i += 1;
            }
            if cb.is_some() {
                j += 1;
            }
        }
        let si = i;
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        let sj = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let na = std::str::from_utf8(&a[si..i])
            .unwrap_or("0")
            .trim_start_matches('0');
        let nb = std::str::from_utf8(&b[sj..j])
            .unwrap_or("0")
            .trim_start_matches('0');
        let c = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
        if c != Ordering::Equal {
            return c;
        }
    }
    Ordering::Equal
}

/// Debian version comparison (`dpkg --compare-versions`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (u64, &str, &str) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, v),
        };
        match rest.rsplit_once('-') {
            Some((u, r)) => (epoch, u, r),
            None => (epoch, rest, ""),
        }
    }
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| cmp_part(ua, ub))
        .then_with(|| cmp_part(ra, rb))
}

fn read_list(p: &Path) -> std::io::Result<String> {
    let f = std::fs::File::open(p)?;
    let mut buf = Vec::new();
    let name = p.to_string_lossy();
    let cap = 512 << 20;
    if name.ends_with(".lz4") {
        lz4_flex::frame::FrameDecoder::new(f)
            .take(cap)
            .read_to_end(&mut buf)?;
    } else if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(f)
            .take(cap)
            .read_to_end(&mut buf)?;
    } else {
        f.take(cap).read_to_end(&mut buf)?;
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Lines `Inst pkg [old] (new origin [arch])` from `apt-get -s upgrade` whose origin
/// mentions security.
pub fn parse_apt_simulation(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("Inst "))
        .filter(|l| l.to_ascii_lowercase().contains("security"))
        .filter_map(|l| {
            let name = l.split_whitespace().next()?;
            let new = l.split_once('(')?.1.split_whitespace().next()?;
            Some((name.to_string(), new.to_string()))
        })
        .collect()
}

pub fn security_updates(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let status_path = "/var/lib/dpkg/status";
    let Ok(status) = ctx.sys.read(status_path) else {
        return Outcome::missing(
            tr!(
                lang,
                "{status_path} is unreadable: not a Debian/Ubuntu system",
                "{status_path} を読めません (Debian/Ubuntu ではありません)"
            ),
            status_path,
        );
    };
    let installed = parse_dpkg_status(&status);
    let lists: Vec<_> = ctx
        .sys
        .list("/var/lib/apt/lists")
        .into_iter()
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            n.contains("security") && n.contains("_Packages")
        })
        .collect();
    let mut pending: Vec<(String, String, String)> = Vec::new();
    let source;
    if !lists.is_empty() {
        let mut avail = BTreeMap::new();
        for l in &lists {
            match read_list(l) {
                Ok(t) => parse_packages_list(&t, &mut avail),
                Err(e) => {
                    let p = l.display();
                    return Outcome::error(
                        tr!(lang, "{p}: {e}", "{p} を読めません: {e}"),
                        "/var/lib/apt/lists",
                    );
                }
            }
        }
        for (name, cur) in &installed {
            if let Some(new) = avail.get(name)
                && compare_versions(new, cur) == Ordering::Greater
            {
                pending.push((name.clone(), cur.clone(), new.clone()));
            }
        }
        source = "/var/lib/dpkg/status + /var/lib/apt/lists/*security*_Packages".to_string();
    } else if let Some(o) = ctx
        .sys
        .run("apt-get", &["-s", "-o", "Debug::NoLocking=1", "upgrade"])
    {
        if o.timed_out || o.status != Some(0) {
            return Outcome::error(
                tr!(
                    lang,
                    "apt-get -s upgrade failed or timed out",
                    "apt-get -s upgrade が失敗またはタイムアウトしました"
                ),
                "apt-get -s upgrade",
            );
        }
        for (n, new) in parse_apt_simulation(&o.stdout) {
            let cur = installed.get(&n).cloned().unwrap_or_default();
            pending.push((n, cur, new));
        }
        source = "apt-get -s upgrade".to_string();
    } else {
        return Outcome::na(
            tr!(
                lang,
                "no apt security lists in /var/lib/apt/lists and apt-get not runnable",
                "/var/lib/apt/lists にセキュリティ更新の一覧がなく apt-get も実行できません"
            ),
            "/var/lib/apt/lists",
        );
    }
    let n = pending.len();
    let details = serde_json::json!({
        "pending": pending.iter().map(|(n, c, v)| serde_json::json!({"package": n, "installed": c, "candidate": v})).collect::<Vec<_>>(),
    });
    if n == 0 {
        Outcome::pass(
            tr!(
                lang,
                "no pending security updates",
                "未適用のセキュリティ更新はありません"
            ),
            source,
        )
        .with_details(details)
    } else {
        let names: Vec<&str> = pending.iter().take(8).map(|p| p.0.as_str()).collect();
        let more = if n > names.len() { ", …" } else { "" };
        let names = names.join(", ");
        Outcome::fail(
            tr!(
                lang,
                "{n} pending security updates ({names}{more})",
                "未適用のセキュリティ更新が {n} 件あります ({names}{more})"
            ),
            source,
        )
        .with_details(details)
    }
}

pub fn reboot_required(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    for p in ["/var/run/reboot-required", "/run/reboot-required"] {
        if ctx.sys.exists(p) {
            let pkgs = ctx
                .sys
                .read(&format!("{p}.pkgs"))
                .unwrap_or_default()
                .split_whitespace()
                .take(8)
                .collect::<Vec<_>>()
                .join(", ");
            return Outcome::warn(
                tr!(
                    lang,
                    "a reboot is required to finish updates ({pkgs})",
                    "更新を反映するには再起動が必要です ({pkgs})"
                ),
                p,
            );
        }
    }
    Outcome::pass(
        tr!(lang, "no reboot pending", "再起動待ちはありません"),
        "/var/run/reboot-required",
    )
}

pub fn auto_updates(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    if !ctx.sys.exists("/etc/apt") {
        return Outcome::na(
            tr!(lang, "no apt on this system", "apt がありません"),
            "/etc/apt",
        );
    }
    let mut text = String::new();
    for p in ctx.sys.list("/etc/apt/apt.conf.d") {
        text.push_str(&crate::sys::read_capped(&p).unwrap_or_default());
        text.push('\n');
    }
    let on = text.lines().any(|l| {
        let l = l.trim();
        !l.starts_with("//")
            && l.starts_with("APT::Periodic::Unattended-Upgrade")
            && (l.contains("\"1\"") || l.contains("\"true\""))
    });
    if on {
        Outcome::pass(
            tr!(
                lang,
                "unattended-upgrades is enabled",
                "unattended-upgrades が有効です"
            ),
            "/etc/apt/apt.conf.d",
        )
    } else {
        Outcome::warn(
            tr!(
                lang,
                "automatic security updates are off (APT::Periodic::Unattended-Upgrade not \"1\")",
                "自動セキュリティ更新が無効です (APT::Periodic::Unattended-Upgrade が \"1\" ではありません)"
            ),
            "/etc/apt/apt.conf.d",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_version_order() {
        use Ordering::*;
        for (a, b, o) in [
            ("1.0", "1.0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1:0.9", "2.0", Greater),
            ("3.0.11-1~deb12u2", "3.0.11-1~deb12u1", Greater),
            ("3.0.11-1~deb12u2", "3.0.11-1", Less),
            ("1.2.10", "1.2.9", Greater),
            ("1.0a", "1.0", Greater),
            ("1.0+b1", "1.0", Greater),
        ] {
            assert_eq!(compare_versions(a, b), o, "{a} vs {b}");
        }
    }

    #[test]
    fn apt_simulation_lines() {
        let t = "Inst openssl [3.0.11-1~deb12u1] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])\nInst vim [2:9.0] (2:9.1 Debian:12.8/stable [amd64])\nConf openssl (3.0.15)\n";
        let v = parse_apt_simulation(t);
        assert_eq!(
            v,
            vec![("openssl".to_string(), "3.0.15-1~deb12u1".to_string())]
        );
    }
}
