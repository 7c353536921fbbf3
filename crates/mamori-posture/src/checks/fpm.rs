//! Card guideline (web-app) / 20-1.1: the shop's PHP code must not be writable by the
//! user PHP runs as, or one upload bug becomes a rewritten checkout. The user comes from
//! the PHP-FPM pools (`/etc/php/*/fpm/pool.d/*.conf`, `/etc/php-fpm.d/*.conf`: `user =`,
//! `group =`), the uid/gids from `/etc/passwd` and `/etc/group`; the code is every
//! `*.php`/`.htaccess`/`.user.ini` and every directory under the shop roots, except the
//! directories the shop must write (uploads, caches, logs).

use crate::audit::{Ctx, Outcome};
use mamori_core::tr;
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One FPM pool: name, the file it is in, its user and group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub file: String,
    pub user: String,
    pub group: Option<String>,
}

/// The pools of one FPM config file (`[name]` sections with `user =` / `group =`).
pub fn parse_pools(text: &str, file: &str) -> Vec<Pool> {
    let mut out: Vec<Pool> = Vec::new();
    let mut cur: Option<Pool> = None;
    for raw in text.lines() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with(';') || l.starts_with('#') {
            continue;
        }
        if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            out.extend(cur.take().filter(|p| !p.user.is_empty()));
            cur = (name != "global").then(|| Pool {
                name: name.to_string(),
                file: file.to_string(),
                user: String::new(),
                group: None,
            });
            continue;
        }
        let (Some(p), Some((k, v))) = (cur.as_mut(), l.split_once('=')) else {
            continue;
        };
        let v = crate::checks::php::ini_value(v).to_string();
        match k.trim() {
            "user" => p.user = v,
            "group" => p.group = Some(v),
            _ => {}
        }
    }
    out.extend(cur.filter(|p| !p.user.is_empty()));
    out
}

/// `(uid, primary gid)` of `user` in passwd text.
pub fn passwd_ids(passwd: &str, user: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// Gids of the groups named `group` or listing `user` as a member, in group text.
pub fn group_ids(group: &str, user: &str, named: Option<&str>) -> BTreeSet<u32> {
    group
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            let member = f[3].split(',').any(|m| m.trim() == user);
            (member || Some(f[0]) == named).then(|| f[2].parse().ok())?
        })
        .collect()
}

/// Who PHP runs as, numerically.
#[derive(Debug, Clone)]
pub struct Runner {
    pub label: String,
    pub uid: u32,
    pub gids: BTreeSet<u32>,
}

impl Runner {
    pub fn can_write(&self, uid: u32, gid: u32, mode: u32) -> bool {
        self.uid == 0
            || (uid == self.uid && mode & 0o200 != 0)
            || (self.gids.contains(&gid) && mode & 0o020 != 0)
            || mode & 0o002 != 0
    }
}

/// Directories a shop writes by design: not code.
const DATA_DIRS: &[&str] = &[
    "var",
    "html/upload",
    "html/user_data",
    "app/proxy",
    "wp-content/uploads",
    "wp-content/cache",
    "wp-content/upgrade",
    "pub/media",
    "pub/static",
    "generated",
    "cache",
    "tmp",
    "logs",
    "storage",
];

/// Walk at most this many entries per root.
const MAX_ENTRIES: usize = 200_000;

fn is_code(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with(".php")
        || n.ends_with(".phtml")
        || n.ends_with(".inc")
        || n == ".htaccess"
        || n == ".user.ini"
}

/// Code files and directories under `root` that `r` can write: (count, first samples).
pub fn writable_code(root: &Path, r: &Runner) -> (usize, Vec<String>, bool) {
    let mut n = 0usize;
    let mut samples = Vec::new();
    let mut seen = 0usize;
    let mut stack = vec![root.to_path_buf()];
    let mut truncated = false;
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        if let Ok(m) = std::fs::symlink_metadata(&dir)
            && r.can_write(m.uid(), m.gid(), m.mode())
        {
            n += 1;
            if samples.len() < 10 {
                let rel = dir.strip_prefix(root).unwrap_or(&dir);
                samples.push(format!("{}/", rel.display()));
            }
        }
        for e in rd.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES {
                truncated = true;
                stack.clear();
                break;
            }
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let rel = p.strip_prefix(root).unwrap_or(&p);
            if m.is_dir() {
                let rs = rel.to_string_lossy();
                if !DATA_DIRS.iter().any(|d| rs == *d) && !m.file_type().is_symlink() {
                    stack.push(p);
                }
            } else if m.is_file()
                && is_code(&e.file_name().to_string_lossy())
                && r.can_write(m.uid(), m.gid(), m.mode())
            {
                n += 1;
                if samples.len() < 10 {
                    samples.push(rel.display().to_string());
                }
            }
        }
    }
    (n, samples, truncated)
}

/// The FPM pools on the audited system, and the files read.
pub fn pools(ctx: &Ctx) -> Vec<Pool> {
    let mut files = Vec::new();
    for ver in ctx.sys.list("/etc/php") {
        if let Some(v) = ver.file_name() {
            let v = v.to_string_lossy();
            files.extend(ctx.sys.list(&format!("/etc/php/{v}/fpm/pool.d")));
        }
    }
    files.extend(ctx.sys.list("/etc/php-fpm.d"));
    let mut out = Vec::new();
    for f in files {
        if f.extension().is_some_and(|e| e == "conf")
            && let Ok(t) = crate::sys::read_capped(&f)
        {
            let shown = f
                .strip_prefix(&ctx.sys.root)
                .map(|r| Path::new("/").join(r))
                .unwrap_or(f.clone());
            out.extend(parse_pools(&t, &shown.to_string_lossy()));
        }
    }
    out
}

pub fn code_writable(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let pools = pools(ctx);
    if pools.is_empty() {
        return Outcome::missing(
            tr!(
                lang,
                "no PHP-FPM pool config found",
                "PHP-FPM のプール設定がありません"
            ),
            "/etc/php/*/fpm/pool.d",
        );
    }
    if ctx.cfg.shop_roots.is_empty() {
        return Outcome::na(
            tr!(
                lang,
                "no shop root to look at (set [[root]] or posture.shop_roots)",
                "調べる店舗ルートがありません ([[root]] か posture.shop_roots を設定)"
            ),
            "posture.shop_roots",
        );
    }
    let passwd = ctx.sys.read("/etc/passwd").unwrap_or_default();
    let group = ctx.sys.read("/etc/group").unwrap_or_default();
    let mut runners: Vec<Runner> = Vec::new();
    let mut unknown = Vec::new();
    for p in &pools {
        let Some((uid, gid)) = passwd_ids(&passwd, &p.user) else {
            unknown.push(format!("{} ({})", p.user, p.file));
            continue;
        };
        let mut gids = group_ids(&group, &p.user, p.group.as_deref());
        gids.insert(gid);
        let label = format!("{} [{}]", p.user, p.name);
        if !runners.iter().any(|r| r.uid == uid && r.gids == gids) {
            runners.push(Runner { label, uid, gids });
        }
    }
    let mut bad = Vec::new();
    let mut total = 0usize;
    let mut truncated = false;
    for root in &ctx.cfg.shop_roots {
        let abs = ctx.sys.path(&root.to_string_lossy());
        if !abs.is_dir() {
            continue;
        }
        for r in &runners {
            let (n, samples, t) = writable_code(&abs, r);
            truncated |= t;
            if n > 0 {
                total += n;
                let (shop, who, eg) = (root.display(), &r.label, samples.join(", "));
                bad.push(tr!(
                    lang,
                    "{shop}: {n} writable by {who} (e.g. {eg})",
                    "{shop}: {who} が {n} 件書き換え可能 (例: {eg})"
                ));
            }
        }
    }
    let files: Vec<&str> = pools.iter().map(|p| p.file.as_str()).collect();
    let source = files.join(", ");
    let details = serde_json::json!({
        "pools": pools.iter().map(|p| format!("{} user={} group={}", p.name, p.user, p.group.as_deref().unwrap_or("-"))).collect::<Vec<_>>(),
        "writable": bad,
        "unknown_users": unknown,
        "truncated": truncated,
    });
    if !bad.is_empty() {
        let l = bad.join("; ");
        return Outcome::fail(
            tr!(
                lang,
                "{total} PHP files/directories writable by the PHP user: {l}",
                "PHP の実行ユーザーが書き換えられる PHP ファイル/ディレクトリが {total} 件: {l}"
            ),
            source,
        )
        .with_details(details);
    }
    if runners.is_empty() {
        let l = unknown.join(", ");
        return Outcome::error(
            tr!(
                lang,
                "pool users not in /etc/passwd: {l}",
                "プールのユーザーが /etc/passwd にありません: {l}"
            ),
            source,
        )
        .with_details(details);
    }
    let who: Vec<&str> = runners.iter().map(|r| r.label.as_str()).collect();
    let who = who.join(", ");
    Outcome::pass(
        tr!(
            lang,
            "shop code is not writable by {who}",
            "店舗のコードは {who} から書き換えできません"
        ),
        source,
    )
    .with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_pool_conf() {
        // Shaped like Debian's www.conf, trimmed, plus a second pool.
        let t = "; Start a new pool named 'www'.\n[www]\n\n; Unix user/group of processes\nuser = www-data\ngroup = www-data\n\nlisten = /run/php/php8.2-fpm.sock\nlisten.owner = www-data\n;user = nobody\npm = dynamic\n\n[eccube]\nuser = \"eccube\" ; the shop's own user\nlisten = /run/php/eccube.sock\n\n[global]\npid = /run/php/php8.2-fpm.pid\n";
        let p = parse_pools(t, "/etc/php/8.2/fpm/pool.d/www.conf");
        assert_eq!(p.len(), 2);
        assert_eq!(
            (
                p[0].name.as_str(),
                p[0].user.as_str(),
                p[0].group.as_deref()
            ),
            ("www", "www-data", Some("www-data"))
        );
        assert_eq!(
            (p[1].user.as_str(), p[1].group.as_deref()),
            ("eccube", None)
        );
    }

    #[test]
    fn ids_and_permissions() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n";
        let group = "root:x:0:\nwww-data:x:33:\ndeploy:x:1001:www-data,tanaka\nstaff:x:50:tanaka\n";
        assert_eq!(passwd_ids(passwd, "www-data"), Some((33, 33)));
        assert_eq!(passwd_ids(passwd, "nobody"), None);
        let g = group_ids(group, "www-data", Some("www-data"));
        assert_eq!(g.into_iter().collect::<Vec<_>>(), [33, 1001]);
        let r = Runner {
            label: "www-data".into(),
            uid: 33,
            gids: [33, 1001].into(),
        };
        assert!(r.can_write(33, 0, 0o644));
        assert!(!r.can_write(33, 0, 0o444));
        assert!(r.can_write(0, 1001, 0o664));
        assert!(!r.can_write(0, 1001, 0o644));
        assert!(r.can_write(0, 0, 0o666));
        assert!(!r.can_write(0, 0, 0o644));
    }
}
