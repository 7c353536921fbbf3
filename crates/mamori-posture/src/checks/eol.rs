//! 20-1.3: end-of-life OS, PHP, web server and database, from an offline table shipped
//! in the crate (no network at audit time). `/usr/share/distro-info/*.csv`
//! (package distro-info-data) is preferred for the OS when present.

use crate::audit::{Ctx, Outcome};
use crate::checks::pkg::parse_dpkg_status;
use chrono::NaiveDate;
use mamori_core::tr;
use std::collections::BTreeMap;

/// When [`EOL_TABLE`] was last checked against the vendors' published dates.
pub const EOL_TABLE_DATE: &str = "2026-11-01";

/// (product, cycle, end of regular support, end of extended/LTS support).
pub const EOL_TABLE: &[(&str, &str, &str, Option<&str>)] = &[
    ("debian", "9", "2020-07-18", Some("2022-06-30")),
    ("debian", "10", "2022-09-10", Some("2024-06-30")),
    ("debian", "11", "2024-08-14", Some("2026-08-31")),
    ("debian", "12", "2026-06-10", Some("2028-06-30")),
    ("debian", "13", "2028-08-09", Some("2030-06-30")),
    ("ubuntu", "18.04", "2023-05-31", None),
    ("ubuntu", "20.04", "2025-05-31", None),
    ("ubuntu", "22.04", "2027-06-01", None),
    ("ubuntu", "24.04", "2029-05-31", None),
    ("php", "5.6", "2018-12-31", None),
    ("php", "7.0", "2019-01-10", None),
    ("php", "7.1", "2019-12-01", None),
    ("php", "7.2", "2020-11-30", None),
    ("php", "7.3", "2021-12-06", None),
    ("php", "7.4", "2022-11-28", None),
    ("php", "8.0", "2023-11-26", None),
    ("php", "8.1", "2025-12-31", None),
    ("php", "8.2", "2026-12-31", None),
    ("php", "8.3", "2027-12-31", None),
    ("php", "8.4", "2028-12-31", None),
    ("mariadb", "10.3", "2023-05-25", None),
    ("mariadb", "10.4", "2024-06-18", None),
    ("mariadb", "10.5", "2025-06-24", None),
    ("mariadb", "10.6", "2026-07-06", None),
    ("mariadb", "10.11", "2028-02-16", None),
    ("mariadb", "11.4", "2029-05-29", None),
    ("mariadb", "11.8", "2028-06-04", None),
    ("mysql", "5.7", "2023-10-31", None),
    ("mysql", "8.0", "2026-04-30", None),
    ("mysql", "8.4", "2032-04-30", None),
    ("postgresql", "12", "2024-11-21", None),
    ("postgresql", "13", "2025-11-13", None),
    ("postgresql", "14", "2026-11-12", None),
    ("postgresql", "15", "2027-11-11", None),
    ("postgresql", "16", "2028-11-09", None),
    ("postgresql", "17", "2029-11-08", None),
    ("apache", "2.2", "2017-07-11", None),
];

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// The support window of a product cycle.
pub fn lookup(product: &str, cycle: &str) -> Option<(NaiveDate, Option<NaiveDate>)> {
    EOL_TABLE
        .iter()
        .find(|(p, c, _, _)| *p == product && *c == cycle)
        .and_then(|(_, _, e, x)| Some((date(e)?, x.and_then(date))))
}

#[derive(Debug, PartialEq, Eq)]
pub enum Support {
    Supported,
    /// Regular support ends within 90 days.
    EndingSoon,
    /// Past regular support, still in LTS/extended support.
    Extended,
    Ended,
    Unknown,
}

pub fn support(today: NaiveDate, eol: Option<(NaiveDate, Option<NaiveDate>)>) -> Support {
    match eol {
        None => Support::Unknown,
        Some((e, x)) => {
            if today > e {
                match x {
                    Some(x) if today <= x => Support::Extended,
                    _ => Support::Ended,
                }
            } else if (e - today).num_days() <= 90 {
                Support::EndingSoon
            } else {
                Support::Supported
            }
        }
    }
}

fn os_release(ctx: &Ctx) -> Option<(String, String, String)> {
    let t = ctx
        .sys
        .read("/etc/os-release")
        .or_else(|_| ctx.sys.read("/usr/lib/os-release"))
        .ok()?;
    let get = |k: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim().trim_matches('"').to_string())
    };
    Some((
        get("ID")?,
        get("VERSION_ID").unwrap_or_default(),
        get("PRETTY_NAME").unwrap_or_default(),
    ))
}

/// distro-info-data's csv: `version,codename,series,created,release,eol[,eol-lts,eol-elts]`.
fn distro_info(ctx: &Ctx, id: &str, ver: &str) -> Option<(NaiveDate, Option<NaiveDate>)> {
    let t = ctx
        .sys
        .read(&format!("/usr/share/distro-info/{id}.csv"))
        .ok()?;
    let header: Vec<&str> = t.lines().next()?.split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n);
    let (ie, il) = (col("eol")?, col("eol-lts"));
    t.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        let v = f.first()?.trim_end_matches(" LTS");
        (v == ver).then(|| {
            Some((
                date(f.get(ie)?)?,
                il.and_then(|i| f.get(i)).and_then(|s| date(s)),
            ))
        })?
    })
}

fn verdict(
    ctx: &Ctx,
    what: &str,
    sup: Support,
    eol: Option<(NaiveDate, Option<NaiveDate>)>,
    source: String,
) -> Outcome {
    let lang = ctx.lang;
    let e = eol.map(|(e, _)| e.to_string()).unwrap_or_default();
    let x = eol
        .and_then(|(_, x)| x)
        .map(|x| x.to_string())
        .unwrap_or_default();
    let t = EOL_TABLE_DATE;
    match sup {
        Support::Supported => Outcome::pass(
            tr!(
                lang,
                "{what}: supported until {e}",
                "{what}: {e} までサポートされます"
            ),
            source,
        ),
        Support::EndingSoon => Outcome::warn(
            tr!(
                lang,
                "{what}: support ends on {e}",
                "{what}: {e} にサポートが終了します"
            ),
            source,
        ),
        Support::Extended => Outcome::warn(
            tr!(
                lang,
                "{what}: regular support ended {e}; only LTS until {x}",
                "{what}: 通常サポートは {e} に終了し、{x} まで LTS のみです"
            ),
            source,
        ),
        Support::Ended => Outcome::fail(
            tr!(
                lang,
                "{what}: end of life since {e}",
                "{what}: {e} にサポートが終了しています"
            ),
            source,
        ),
        Support::Unknown => Outcome::warn(
            tr!(
                lang,
                "{what}: not in the support table (dated {t})",
                "{what}: サポート期限表 ({t} 時点) にありません"
            ),
            source,
        ),
    }
}

pub fn os(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let Some((id, ver, pretty)) = os_release(ctx) else {
        return Outcome::missing(
            tr!(
                lang,
                "/etc/os-release is unreadable",
                "/etc/os-release を読めません"
            ),
            "/etc/os-release",
        );
    };
    let today = ctx.now.date_naive();
    let what = if pretty.is_empty() {
        format!("{id} {ver}")
    } else {
        pretty
    };
    if let Some(w) = distro_info(ctx, &id, &ver) {
        let src = format!("/usr/share/distro-info/{id}.csv");
        return verdict(ctx, &what, support(today, Some(w)), Some(w), src);
    }
    let w = lookup(&id, &ver);
    verdict(
        ctx,
        &what,
        support(today, w),
        w,
        format!("/etc/os-release + table {EOL_TABLE_DATE}"),
    )
}

fn installed(ctx: &Ctx) -> BTreeMap<String, String> {
    ctx.sys
        .read("/var/lib/dpkg/status")
        .map(|t| parse_dpkg_status(&t))
        .unwrap_or_default()
}

/// `1:10.11.6-0+deb12u1` → `10.11`; major only when `major_only`.
fn cycle_of(version: &str, major_only: bool) -> String {
    let v = version.split_once(':').map(|x| x.1).unwrap_or(version);
    let v: String = v
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let parts: Vec<&str> = v.split('.').filter(|s| !s.is_empty()).collect();
    if major_only {
        parts.first().map(|s| s.to_string()).unwrap_or_default()
    } else {
        parts.iter().take(2).cloned().collect::<Vec<_>>().join(".")
    }
}

pub fn php(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let pkgs = installed(ctx);
    let re =
        regex::Regex::new(r"^(?:php|libapache2-mod-php)(\d+\.\d+)(?:-(?:cli|fpm|common))?$").ok();
    let mut cycles: Vec<String> = pkgs
        .keys()
        .filter_map(|k| re.as_ref()?.captures(k).map(|c| c[1].to_string()))
        .collect();
    let mut source = "/var/lib/dpkg/status".to_string();
    if cycles.is_empty()
        && let Some(o) = ctx.sys.run("php", &["-r", "echo PHP_VERSION;"])
        && o.status == Some(0)
    {
        cycles.push(cycle_of(o.stdout.trim(), false));
        source = "php -r 'echo PHP_VERSION;'".into();
    }
    cycles.sort();
    cycles.dedup();
    if cycles.is_empty() {
        return Outcome::missing(
            tr!(lang, "no PHP installed", "PHP はインストールされていません"),
            source,
        );
    }
    worst(ctx, "PHP", "php", &cycles, source)
}

fn worst(ctx: &Ctx, name: &str, product: &str, cycles: &[String], source: String) -> Outcome {
    let today = ctx.now.date_naive();
    let mut outs: Vec<(u8, Outcome)> = cycles
        .iter()
        .map(|c| {
            let w = lookup(product, c);
            let s = support(today, w);
            let rank = match s {
                Support::Ended => 4,
                Support::Extended | Support::EndingSoon => 3,
                Support::Unknown => 2,
                Support::Supported => 1,
            };
            (
                rank,
                verdict(ctx, &format!("{name} {c}"), s, w, source.clone()),
            )
        })
        .collect();
    outs.sort_by_key(|(r, _)| std::cmp::Reverse(*r));
    outs.remove(0)
        .1
        .with_details(serde_json::json!({"cycles": cycles, "table_date": EOL_TABLE_DATE}))
}

pub fn database(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let pkgs = installed(ctx);
    for (pkg, product, major) in [
        ("mariadb-server", "mariadb", false),
        ("mariadb-server-core", "mariadb", false),
        ("mysql-server", "mysql", false),
        ("mysql-server-core-8.0", "mysql", false),
    ] {
        if let Some(v) = pkgs.get(pkg) {
            let c = cycle_of(v, major);
            return worst(ctx, product, product, &[c], "/var/lib/dpkg/status".into());
        }
    }
    let pg: Vec<String> = pkgs
        .keys()
        .filter_map(|k| k.strip_prefix("postgresql-"))
        .filter(|s| s.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    if !pg.is_empty() {
        return worst(
            ctx,
            "PostgreSQL",
            "postgresql",
            &pg,
            "/var/lib/dpkg/status".into(),
        );
    }
    Outcome::missing(
        tr!(
            lang,
            "no database server package installed",
            "データベースサーバーのパッケージはありません"
        ),
        "/var/lib/dpkg/status",
    )
}

pub fn webserver(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let pkgs = installed(ctx);
    if let Some(v) = pkgs.get("apache2") {
        let c = cycle_of(v, false);
        if lookup("apache", &c).is_some() {
            return worst(
                ctx,
                "Apache httpd",
                "apache",
                &[c],
                "/var/lib/dpkg/status".into(),
            );
        }
        return Outcome::pass(
            tr!(
                lang,
                "Apache httpd {c} (distribution package, follows the OS's support)",
                "Apache httpd {c} (ディストリビューションのパッケージで OS のサポートに従います)"
            ),
            "/var/lib/dpkg/status",
        );
    }
    for p in ["nginx", "nginx-core", "nginx-light", "nginx-full"] {
        if let Some(v) = pkgs.get(p) {
            let c = cycle_of(v, false);
            return Outcome::pass(
                tr!(
                    lang,
                    "nginx {c} (distribution package, follows the OS's support)",
                    "nginx {c} (ディストリビューションのパッケージで OS のサポートに従います)"
                ),
                "/var/lib/dpkg/status",
            );
        }
    }
    Outcome::missing(
        tr!(
            lang,
            "no web server package installed",
            "Web サーバーのパッケージはありません"
        ),
        "/var/lib/dpkg/status",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_windows() {
        let d = |s| date(s).unwrap();
        let w = lookup("debian", "12");
        assert_eq!(support(d("2026-11-24"), w), Support::Extended);
        assert_eq!(support(d("2025-01-01"), w), Support::Supported);
        assert_eq!(support(d("2026-04-01"), w), Support::EndingSoon);
        assert_eq!(support(d("2029-01-01"), w), Support::Ended);
        assert_eq!(
            support(d("2026-11-24"), lookup("php", "7.4")),
            Support::Ended
        );
        assert_eq!(
            support(d("2026-11-24"), lookup("php", "9.9")),
            Support::Unknown
        );
        assert_eq!(cycle_of("1:10.11.6-0+deb12u1", false), "10.11");
        assert!(
            EOL_TABLE
                .iter()
                .all(|(_, _, e, x)| date(e).is_some() && x.is_none_or(|x| date(x).is_some()))
        );
    }
}
