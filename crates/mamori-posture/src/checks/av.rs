//! 20-1.5 / card guideline: antivirus present, definitions fresh, scans scheduled.

use crate::audit::{Ctx, Outcome};
use chrono::{DateTime, NaiveDateTime, Utc};
use mamori_core::tr;

const DB_DIRS: &[&str] = &["/var/lib/clamav", "/var/clamav", "/usr/local/share/clamav"];

/// The build time in a CVD/CLD header: `ClamAV-VDB:14 Nov 2026 09-22 +0000:27456:…`.
pub fn cvd_build_time(header: &[u8]) -> Option<DateTime<Utc>> {
    let h = std::str::from_utf8(header.get(..512.min(header.len()))?).ok()?;
    let rest = h.strip_prefix("ClamAV-VDB:")?;
    let when = rest.split(':').next()?;
    DateTime::parse_from_str(when.trim(), "%d %b %Y %H-%M %z")
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(when.trim(), "%d %b %Y %H-%M")
                .ok()
                .map(|n| n.and_utc())
        })
}

pub fn definitions(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    for dir in DB_DIRS {
        for name in ["daily.cld", "daily.cvd"] {
            let abs = format!("{dir}/{name}");
            let p = ctx.sys.path(&abs);
            let Ok(meta) = std::fs::metadata(&p) else {
                continue;
            };
            let mut head = vec![0u8; 512];
            let built = std::fs::File::open(&p)
                .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
                .ok()
                .and_then(|n| cvd_build_time(&head[..n]));
            let (when, how) = match built {
                Some(b) => (b, "header build time"),
                None => match meta.modified() {
                    Ok(m) => (DateTime::<Utc>::from(m), "file mtime"),
                    Err(e) => return Outcome::error(format!("{abs}: {e}"), abs),
                },
            };
            let hours = (ctx.now - when).num_hours().max(0);
            let max = ctx.cfg.av_max_age_hours;
            let details = serde_json::json!({"file": abs, "built": when.to_rfc3339(), "age_hours": hours, "from": how});
            return if (hours as u64) > max {
                Outcome::fail(
                    tr!(
                        lang,
                        "ClamAV definitions are {hours} h old (limit {max} h): {abs}",
                        "ClamAV の定義ファイルが {hours} 時間前のものです (上限 {max} 時間): {abs}"
                    ),
                    abs,
                )
                .with_details(details)
            } else {
                Outcome::pass(
                    tr!(
                        lang,
                        "ClamAV definitions are {hours} h old",
                        "ClamAV の定義ファイルは {hours} 時間前に更新されています"
                    ),
                    abs,
                )
                .with_details(details)
            };
        }
    }
    Outcome::missing(
        tr!(
            lang,
            "no antivirus definitions found (ClamAV daily.cvd/.cld)",
            "ウイルス対策の定義ファイル (ClamAV daily.cvd/.cld) がありません"
        ),
        "/var/lib/clamav",
    )
}

pub fn installed(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    for b in [
        "/usr/bin/clamscan",
        "/usr/bin/clamdscan",
        "/usr/sbin/clamd",
        "/usr/local/bin/clamscan",
        "/usr/local/maldetect/maldet",
    ] {
        if ctx.sys.exists(b) {
            return Outcome::pass(
                tr!(
                    lang,
                    "antivirus found: {b}",
                    "ウイルス対策ソフトがあります: {b}"
                ),
                b,
            );
        }
    }
    Outcome::missing(
        tr!(
            lang,
            "no antivirus (ClamAV, maldet) installed",
            "ウイルス対策ソフト (ClamAV、maldet) がありません"
        ),
        "/usr/bin/clamscan",
    )
}

pub fn scheduled_scan(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let mut files = vec![ctx.sys.path("/etc/crontab")];
    for d in [
        "/etc/cron.d",
        "/etc/cron.daily",
        "/etc/cron.weekly",
        "/etc/cron.hourly",
        "/var/spool/cron/crontabs",
        "/var/spool/cron",
        "/etc/systemd/system",
        "/lib/systemd/system",
    ] {
        files.extend(ctx.sys.list(d));
    }
    for f in files {
        if !f.is_file() {
            continue;
        }
        let Ok(t) = crate::sys::read_capped(&f) else {
            continue;
        };
        let name = f.to_string_lossy();
        if name.ends_with(".service") && !t.contains("clamscan") && !t.contains("clamdscan") {
            continue;
        }
        if t.lines().any(|l| {
            !l.trim_start().starts_with('#')
                && (l.contains("clamscan") || l.contains("clamdscan") || l.contains("maldet"))
        }) {
            let shown = f
                .strip_prefix(&ctx.sys.root)
                .map(|p| format!("/{}", p.display()))
                .unwrap_or_else(|_| name.to_string());
            return Outcome::pass(
                tr!(
                    lang,
                    "scheduled scan in {shown}",
                    "{shown} で定期スキャンが設定されています"
                ),
                shown,
            );
        }
    }
    Outcome::missing(
        tr!(
            lang,
            "no scheduled virus scan (cron or systemd) found",
            "定期ウイルススキャン (cron / systemd) が見つかりません"
        ),
        "/etc/cron*, systemd units",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cvd_header() {
        let mut h =
            b"ClamAV-VDB:14 Nov 2026 09-22 +0000:27456:2072306:90:abc:sig:raynman:1763112120"
                .to_vec();
        h.resize(512, b' ');
        let t = cvd_build_time(&h).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-14T09:22:00+00:00");
        assert!(cvd_build_time(b"garbage").is_none());
    }
}
