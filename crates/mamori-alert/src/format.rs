//! What alerts say: the one-line text (e-mail subject, webhook `text`), the e-mail body
//! and the syslog lines. Every text exists in both languages and passes through
//! [`mask_pans`] before it leaves this module.

use chrono::SecondsFormat;
use mamori_core::pan::mask_pans;
use mamori_core::{Finding, Lang, Severity, tr};

use crate::config::{Facility, SyslogFormat};

/// Longest summary kept in a one-line text, in characters.
const ONE_LINE_SUMMARY_CHARS: usize = 200;

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Control characters (newlines included) would break a subject or a syslog line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `[mamori] CRITICAL file.modified on shop-1: <summary>` (or its Japanese form).
pub fn one_line_text(f: &Finding, host: &str, lang: Lang) -> String {
    let sev = f.severity.label(lang);
    let kind = f.kind.as_str();
    let summary = one_line(&truncate_chars(&f.summary, ONE_LINE_SUMMARY_CHARS));
    let host = one_line(host);
    let text = tr!(
        lang,
        "[mamori] {sev} {kind} on {host}: {summary}",
        "[mamori] {sev} {kind} ({host}): {summary}"
    );
    mask_pans(&text).into_owned()
}

/// `detected_at - time`, for people: `57 ms`, `3.2 s`, `4 min 5 s`, `2 h 3 min`.
pub fn latency(f: &Finding, lang: Lang) -> String {
    let ms = (f.detected_at - f.time).num_milliseconds();
    let (sign, ms) = if ms < 0 { ("-", -ms) } else { ("", ms) };
    let s = ms / 1000;
    let body = if ms < 1000 {
        tr!(lang, "{ms} ms", "{ms} ミリ秒")
    } else if s < 60 {
        let tenths = (ms % 1000) / 100;
        tr!(lang, "{s}.{tenths} s", "{s}.{tenths} 秒")
    } else if s < 3600 {
        let (m, s) = (s / 60, s % 60);
        tr!(lang, "{m} min {s} s", "{m} 分 {s} 秒")
    } else {
        let (h, m) = (s / 3600, (s % 3600) / 60);
        tr!(lang, "{h} h {m} min", "{h} 時間 {m} 分")
    };
    format!("{sign}{body}")
}

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The e-mail body: summary, kind, key fields, times, latency and the evidence.
pub fn email_body(f: &Finding, host: &str, lang: Lang) -> String {
    let mut out = String::new();
    let mut line = |label: String, value: &str| {
        out.push_str(&format!("{label}: {value}\n"));
    };
    let intro = tr!(
        lang,
        "mamori reported a finding on {host}.",
        "mamori が {host} で検知しました。"
    );
    line(tr!(lang, "Summary", "概要"), &f.summary);
    line(tr!(lang, "Severity", "重大度"), f.severity.label(lang));
    line(
        tr!(lang, "Kind", "種類"),
        &format!("{} ({:?})", f.kind.as_str(), f.layer).to_lowercase(),
    );
    line(tr!(lang, "Host", "ホスト"), &f.host);
    if let Some(p) = &f.path {
        line(tr!(lang, "Path", "パス"), p);
    }
    if let Some(r) = &f.root {
        line(tr!(lang, "Root", "監視ルート"), r);
    }
    if let Some(ip) = &f.ip {
        line(tr!(lang, "IP", "IP アドレス"), ip);
    }
    if let Some(ips) = &f.ips {
        line(tr!(lang, "IPs", "IP アドレス群"), &ips.join(", "));
    }
    if let Some(d) = &f.dest {
        line(tr!(lang, "Destination", "通信先"), d);
    }
    if let Some(c) = &f.check {
        line(tr!(lang, "Check", "チェック"), c);
    }
    if let Some(u) = &f.url {
        line(tr!(lang, "URL", "URL"), u);
    }
    line(tr!(lang, "Happened at", "発生時刻"), &time(&f.time));
    line(tr!(lang, "Detected at", "検知時刻"), &time(&f.detected_at));
    line(
        tr!(lang, "Detection latency", "検知までの時間"),
        &latency(f, lang),
    );
    if !f.checklist.is_empty() {
        line(
            tr!(lang, "Checklist", "チェックリスト"),
            &f.checklist.join(", "),
        );
    }
    line(tr!(lang, "Finding id", "検知 ID"), &f.id);
    let evidence = serde_json::to_string_pretty(&f.evidence).unwrap_or_else(|e| e.to_string());
    let evidence_label = tr!(lang, "Evidence", "証拠");
    let footer = tr!(
        lang,
        "Card numbers are masked. Review the finding with `mamori status` on the host.",
        "カード番号はマスクしています。ホスト上で `mamori status` を実行して確認してください。"
    );
    let body = format!("{intro}\n\n{out}\n{evidence_label}:\n{evidence}\n\n-- \n{footer}\n");
    mask_pans(&body).into_owned()
}

/// Syslog severity (RFC 5424 §6.2.1) for a finding severity.
pub fn syslog_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2, // crit
        Severity::High => 3,     // err
        Severity::Medium => 4,   // warning
        Severity::Low => 5,      // notice
        Severity::Info => 6,     // info
    }
}

/// The PRI value: facility * 8 + severity.
pub fn syslog_pri(facility: Facility, s: Severity) -> u16 {
    u16::from(facility.code()) * 8 + u16::from(syslog_severity(s))
}

/// Largest syslog message we send (bytes, message part), well under datagram limits.
const SYSLOG_MAX_MSG: usize = 8 * 1024;

/// The message part of a syslog line: text (`critical file.modified: summary path=…
/// id=…`) or the finding's JSON line.
pub fn syslog_msg(f: &Finding, json: bool) -> String {
    let msg = if json {
        f.to_json_line()
    } else {
        let mut m = format!(
            "{} {}: {}",
            f.severity.as_str(),
            f.kind.as_str(),
            one_line(&f.summary)
        );
        for (k, v) in [
            ("path", &f.path),
            ("ip", &f.ip),
            ("dest", &f.dest),
            ("check", &f.check),
            ("url", &f.url),
        ] {
            if let Some(v) = v {
                m.push_str(&format!(" {k}={}", one_line(v)));
            }
        }
        if let Some(ips) = &f.ips {
            m.push_str(&format!(" ips={}", ips.join(",")));
        }
        m.push_str(&format!(" id={}", f.id));
        mask_pans(&m).into_owned()
    };
    if msg.len() <= SYSLOG_MAX_MSG {
        return msg;
    }
    let mut end = SYSLOG_MAX_MSG;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    msg[..end].to_string()
}

/// RFC 5424 HOSTNAME: printable US-ASCII, at most 255 characters, `-` when unknown.
fn syslog_hostname(host: &str) -> String {
    let h: String = host
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if h.is_empty() { "-".into() } else { h }
}

/// One complete syslog line. `with_host` is for RFC 3164 over the network (local
/// sockets conventionally omit the host, as glibc's `syslog()` does).
pub fn syslog_line(
    f: &Finding,
    host: &str,
    format: SyslogFormat,
    facility: Facility,
    json: bool,
    with_host: bool,
) -> String {
    let pri = syslog_pri(facility, f.severity);
    let pid = std::process::id();
    let msg = syslog_msg(f, json);
    match format {
        SyslogFormat::Rfc5424 => {
            // <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
            let ts = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
            let msgid: String = f.kind.as_str().chars().take(32).collect();
            format!(
                "<{pri}>1 {ts} {} mamori {pid} {msgid} - {msg}",
                syslog_hostname(host)
            )
        }
        SyslogFormat::Rfc3164 => {
            let ts = chrono::Local::now().format("%b %e %H:%M:%S");
            if with_host {
                format!("<{pri}>{ts} {} mamori[{pid}]: {msg}", syslog_hostname(host))
            } else {
                format!("<{pri}>{ts} mamori[{pid}]: {msg}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use mamori_core::Kind;

    fn finding() -> Finding {
        let t = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap();
        let mut f = Finding::new(
            Kind::FileModified,
            Severity::Critical,
            t,
            "shop-1",
            "payment module changed".into(),
        )
        .with_path("app/Card.php");
        f.detected_at = t + Duration::milliseconds(57);
        f
    }

    #[test]
    fn one_line_both_languages() {
        let f = finding();
        assert_eq!(
            one_line_text(&f, "shop-1", Lang::En),
            "[mamori] CRITICAL file.modified on shop-1: payment module changed"
        );
        assert_eq!(
            one_line_text(&f, "shop-1", Lang::Ja),
            "[mamori] 緊急 file.modified (shop-1): payment module changed"
        );
    }

    #[test]
    fn latency_forms() {
        let mut f = finding();
        assert_eq!(latency(&f, Lang::En), "57 ms");
        f.detected_at = f.time + Duration::milliseconds(3_250);
        assert_eq!(latency(&f, Lang::En), "3.2 s");
        f.detected_at = f.time + Duration::seconds(245);
        assert_eq!(latency(&f, Lang::Ja), "4 分 5 秒");
        f.detected_at = f.time - Duration::milliseconds(5);
        assert_eq!(latency(&f, Lang::En), "-5 ms");
    }

    #[test]
    fn pri_values() {
        // auth (4) * 8 + crit (2)
        assert_eq!(syslog_pri(Facility::Auth, Severity::Critical), 34);
        assert_eq!(syslog_pri(Facility::Local7, Severity::Info), 190);
        assert_eq!(syslog_pri(Facility::Daemon, Severity::High), 27);
    }

    #[test]
    fn syslog_msg_masks_and_is_one_line() {
        let mut f = finding();
        f.summary = "card 4111 1111 1111 1111\nin file".into();
        let m = syslog_msg(&f, false);
        assert!(!m.contains('\n'));
        assert!(m.contains("411111******1111"), "{m}");
        assert!(!m.contains("4111 1111 1111 1111"));
    }
}
