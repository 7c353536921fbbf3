//! Where findings go on the command line: JSON Lines (`--json`) or a human report grouped
//! by severity. Both mask card numbers. Also the exit-code rule shared by every command.

use crate::{Finding, Lang, Severity, tr};
use anstyle::{AnsiColor, Style};
use std::io::Write;

/// Exit code of a command that ran: 1 if any finding is at or above `fail_on`, else 0.
pub fn exit_code(findings: &[Finding], fail_on: Severity) -> i32 {
    if findings.iter().any(|f| f.severity >= fail_on) {
        1
    } else {
        0
    }
}

/// Write findings as JSON Lines.
pub fn write_json_lines<W: Write>(out: &mut W, findings: &[Finding]) -> std::io::Result<()> {
    for f in findings {
        writeln!(out, "{}", f.to_json_line())?;
    }
    out.flush()
}

fn sev_style(s: Severity) -> Style {
    match s {
        Severity::Critical => Style::new()
            .bold()
            .fg_color(Some(AnsiColor::BrightWhite.into()))
            .bg_color(Some(AnsiColor::Red.into())),
        Severity::High => Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
        Severity::Medium => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        Severity::Low => Style::new().fg_color(Some(AnsiColor::Cyan.into())),
        Severity::Info => Style::new().dimmed(),
    }
}

/// Display width of a string (CJK characters take two columns).
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let c = c as u32;
            if (0x1100..=0x115F).contains(&c)
                || (0x2E80..=0xA4CF).contains(&c)
                || (0xAC00..=0xD7A3).contains(&c)
                || (0xF900..=0xFAFF).contains(&c)
                || (0xFE30..=0xFE4F).contains(&c)
                || (0xFF00..=0xFF60).contains(&c)
                || (0xFFE0..=0xFFE6).contains(&c)
            {
                2
            } else {
                1
            }
        })
        .sum()
}

fn pad(s: &str, w: usize) -> String {
    let mut o = s.to_string();
    for _ in width(s)..w {
        o.push(' ');
    }
    o
}

/// The subject of a finding: its path, address, destination, check or URL.
fn subject(f: &Finding) -> String {
    f.path
        .clone()
        .or_else(|| f.ip.clone())
        .or_else(|| f.ips.as_ref().map(|v| format!("{} IPs", v.len())))
        .or_else(|| f.dest.clone())
        .or_else(|| f.check.clone())
        .or_else(|| f.url.clone())
        .unwrap_or_default()
}

/// Render the human report. `color` adds ANSI styles (the caller decides from the tty).
pub fn render_human(findings: &[Finding], lang: Lang, color: bool) -> String {
    let mut out = String::new();
    let st = |s: Style, text: &str| -> String {
        if color {
            format!("{s}{text}{s:#}")
        } else {
            text.to_string()
        }
    };
    let kind_w = findings
        .iter()
        .map(|f| f.kind.as_str().len())
        .max()
        .unwrap_or(0);
    let subj_w = findings
        .iter()
        .map(|f| width(&subject(f)))
        .max()
        .unwrap_or(0)
        .min(60);
    for sev in Severity::ALL {
        let group: Vec<&Finding> = findings.iter().filter(|f| f.severity == sev).collect();
        if group.is_empty() {
            continue;
        }
        let n = group.len();
        out.push_str(&st(sev_style(sev), &format!(" {} ", sev.label(lang))));
        out.push_str(&format!(" ({n})\n"));
        for f in group {
            let subj = subject(f);
            out.push_str("  ");
            out.push_str(&pad(f.kind.as_str(), kind_w));
            out.push_str("  ");
            out.push_str(&st(Style::new().bold(), &pad(&subj, subj_w)));
            out.push_str("  ");
            out.push_str(&crate::pan::mask_pans(&f.summary));
            out.push('\n');
            if let Some(diff) = f.evidence.get("diff").and_then(|d| d.as_str()) {
                for line in crate::pan::mask_pans(diff).lines() {
                    let s = if line.starts_with('+') && !line.starts_with("+++") {
                        Style::new().fg_color(Some(AnsiColor::Green.into()))
                    } else if line.starts_with('-') && !line.starts_with("---") {
                        Style::new().fg_color(Some(AnsiColor::Red.into()))
                    } else if line.starts_with("@@") {
                        Style::new().fg_color(Some(AnsiColor::Cyan.into()))
                    } else {
                        Style::new()
                    };
                    out.push_str("      │ ");
                    out.push_str(&st(s, line));
                    out.push('\n');
                }
            }
        }
        out.push('\n');
    }
    out.push_str(&summary_line(findings, lang));
    out.push('\n');
    out
}

/// "3 findings: 1 critical, 2 high" / 「検出 3 件: 緊急 1、高 2」, or "no findings".
pub fn summary_line(findings: &[Finding], lang: Lang) -> String {
    if findings.is_empty() {
        return tr!(lang, "No findings.", "検出事項はありません。");
    }
    let n = findings.len();
    let parts: Vec<String> = Severity::ALL
        .iter()
        .filter_map(|s| {
            let c = findings.iter().filter(|f| f.severity == *s).count();
            (c > 0).then(|| match lang {
                Lang::En => format!("{c} {}", s.as_str()),
                Lang::Ja => format!("{} {c}", s.label(lang)),
            })
        })
        .collect();
    match lang {
        Lang::En => format!(
            "{n} finding{}: {}",
            if n == 1 { "" } else { "s" },
            parts.join(", ")
        ),
        Lang::Ja => format!("検出 {n} 件: {}", parts.join("、")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;
    use chrono::{DateTime, Utc};

    fn f(kind: Kind, sev: Severity, path: &str, summary: &str) -> Finding {
        let t = DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut f = Finding::new(kind, sev, t, "shop-1", summary.into()).with_path(path);
        f.id = "01TEST".into();
        f.detected_at = t;
        f
    }

    #[test]
    fn exit_codes() {
        let v = vec![f(Kind::FileMeta, Severity::Low, "a", "x")];
        assert_eq!(exit_code(&v, Severity::High), 0);
        assert_eq!(exit_code(&v, Severity::Low), 1);
        assert_eq!(exit_code(&[], Severity::Info), 0);
    }

    #[test]
    fn human_report_snapshot() {
        let mut m = f(
            Kind::FileModified,
            Severity::Critical,
            "app/Plugin/Payment/CardPayment.php",
            "payment code changed",
        );
        m.evidence = serde_json::json!({"diff": "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new 4111111111111111"});
        let v = vec![
            f(
                Kind::FileMeta,
                Severity::High,
                "index.php",
                "mode 644 → 777",
            ),
            m,
            f(Kind::FileAdded, Severity::Low, "html/a.css", "new file"),
        ];
        insta::assert_snapshot!("human_en", render_human(&v, Lang::En, false));
        insta::assert_snapshot!("human_ja", render_human(&v, Lang::Ja, false));
    }

    #[test]
    fn json_lines_mask() {
        let mut v = f(
            Kind::DataCardStash,
            Severity::High,
            "x.jpg",
            "card 4111111111111111",
        );
        v.evidence = serde_json::json!({"sample": "4111 1111 1111 1111"});
        let mut buf = Vec::new();
        write_json_lines(&mut buf, &[v]).unwrap();
        let s = String::from_utf8(buf).unwrap();
        assert!(!s.contains("4111111111111111"), "{s}");
        assert!(!s.contains("4111 1111 1111 1111"), "{s}");
        assert!(s.contains("411111******1111"));
    }
}
