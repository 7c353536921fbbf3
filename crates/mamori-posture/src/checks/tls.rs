//! Card guideline (web-app): the shop's TLS. Old protocol versions (TLS 1.0/1.1, SSL)
//! from the web server's config and, when the shop's URL is given, from handshakes with
//! the `openssl s_client` CLI; certificate expiry from the certificate the site presents
//! (or, without a URL, the certificate files the config names). The certificate's
//! validity is read from its DER here: no X.509 library.

use crate::audit::{Ctx, Outcome};
use crate::checks::web::{Vhost, vhosts};
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use mamori_core::tr;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A certificate this close to expiry fails; within [`WARN_DAYS`] it warns.
pub const FAIL_DAYS: i64 = 14;
pub const WARN_DAYS: i64 = 30;

/// (tag, contents, rest) of the DER item at the start of `b`.
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let l0 = *b.get(1)? as usize;
    let (len, hdr) = if l0 & 0x80 == 0 {
        (l0, 2)
    } else {
        let n = l0 & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    Some((tag, b.get(hdr..end)?, b.get(end..)?))
}

fn der_time(tag: u8, v: &[u8]) -> Option<DateTime<Utc>> {
    let s = std::str::from_utf8(v).ok()?.trim_end_matches('Z');
    let full = match tag {
        0x17 => {
            // UTCTime: YY ≥ 50 is 19YY (RFC 5280 4.1.2.5.1).
            let yy: u32 = s.get(..2)?.parse().ok()?;
            format!("{}{s}", if yy >= 50 { "19" } else { "20" })
        }
        0x18 => s.to_string(),
        _ => return None,
    };
    NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// `notAfter` of a DER X.509 certificate.
pub fn cert_not_after(cert: &[u8]) -> Option<DateTime<Utc>> {
    let (_, c, _) = der(cert)?; // Certificate
    let (_, tbs, _) = der(c)?; // TBSCertificate
    let mut rest = tbs;
    let (t, _, r) = der(rest)?;
    if t == 0xA0 {
        rest = r; // [0] version
    }
    let (_, _, r) = der(rest)?; // serialNumber
    let (_, _, r) = der(r)?; // signature
    let (_, _, r) = der(r)?; // issuer
    let (_, validity, _) = der(r)?;
    let (_, _, r) = der(validity)?; // notBefore
    let (t, v, _) = der(r)?;
    der_time(t, v)
}

/// The DER certificates of a PEM text (`s_client` output or a certificate file).
pub fn pem_certs(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut inside: Option<String> = None;
    for l in text.lines() {
        let l = l.trim();
        if l == "-----BEGIN CERTIFICATE-----" {
            inside = Some(String::new());
        } else if l == "-----END CERTIFICATE-----" {
            if let Some(b) = inside.take()
                && let Ok(d) = base64::engine::general_purpose::STANDARD.decode(b)
            {
                out.push(d);
            }
        } else if let Some(b) = inside.as_mut() {
            b.push_str(l);
        }
    }
    out
}

/// Old protocol versions a config's words enable (nginx `ssl_protocols`, Apache
/// `SSLProtocol` with `all`, `+X`, `-X`).
pub fn old_protocols(words: &[String]) -> Vec<String> {
    const OLD: [&str; 4] = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1"];
    let mut on: Vec<&str> = Vec::new();
    for w in words {
        let (sign, name) = match w.as_bytes().first() {
            Some(b'+') => ('+', &w[1..]),
            Some(b'-') => ('-', &w[1..]),
            _ => ('=', w.as_str()),
        };
        if name.eq_ignore_ascii_case("all") {
            if sign == '-' {
                on.clear();
            } else {
                // Apache's `all` is TLSv1 and later (SSLv3 is no longer part of it).
                on.extend(["TLSv1", "TLSv1.1"]);
            }
            continue;
        }
        if let Some(o) = OLD.iter().find(|o| o.eq_ignore_ascii_case(name)) {
            if sign == '-' {
                on.retain(|x| x != o);
            } else {
                on.push(o);
            }
        }
    }
    let mut v: Vec<String> = OLD
        .iter()
        .filter(|o| on.contains(o))
        .map(|s| s.to_string())
        .collect();
    v.dedup();
    v
}

fn serves_tls(v: &Vhost) -> bool {
    !v.certificates.is_empty()
        || v.listens
            .iter()
            .any(|l| l.ends_with(":443") || l == "443" || l.contains("ssl"))
}

/// The `host:port` and SNI name to handshake with: the URL's own when it is https://,
/// else port 443 of its host (with `posture.host_header` as the SNI name).
pub fn target(ctx: &Ctx) -> Option<(String, u16, String)> {
    let url = ctx.url.as_deref()?;
    let (https, rest) = match url.strip_prefix("https://") {
        Some(r) => (true, r),
        None => (false, url.strip_prefix("http://")?),
    };
    let hp = rest.split('/').next()?;
    let (host, port) = if let Some(h) = hp.strip_prefix('[') {
        let (h, p) = h.split_once(']')?;
        (
            h.to_string(),
            p.strip_prefix(':').and_then(|p| p.parse().ok()),
        )
    } else {
        match hp.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()),
            None => (hp.to_string(), None),
        }
    };
    let port = if https { port.unwrap_or(443) } else { 443 };
    let sni = ctx
        .cfg
        .host_header
        .clone()
        .map(|h| h.split(':').next().unwrap_or("").to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| host.clone());
    Some((host, port, sni))
}

fn listening(host: &str, port: u16, timeout: Duration) -> bool {
    let Some(addr) = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        return false;
    };
    let addr: SocketAddr = addr;
    TcpStream::connect_timeout(&addr, timeout).is_ok()
}

/// One `openssl s_client` handshake; `Some(stdout)` when it completed.
fn handshake(ctx: &Ctx, host: &str, port: u16, sni: &str, extra: &[&str]) -> Option<String> {
    let connect = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut args = vec!["s_client", "-connect", &connect, "-servername", sni];
    args.extend_from_slice(extra);
    let o = ctx.sys.run_client("openssl", &args)?.ok()?;
    let done = o.status == Some(0)
        && o.stdout.contains("Cipher is ")
        && !o.stdout.contains("Cipher is (NONE)");
    done.then_some(o.stdout)
}

fn live(ctx: &Ctx) -> Option<(String, u16, String)> {
    let (h, p, sni) = target(ctx)?;
    (ctx.sys.commands && listening(&h, p, ctx.sys.timeout)).then_some((h, p, sni))
}

pub fn protocols(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let mut bad = Vec::new();
    let mut tls_sites = 0usize;
    let mut sources = Vec::new();
    if let Ok((hosts, src)) = vhosts(ctx) {
        for v in hosts.iter().filter(|v| serves_tls(v)) {
            tls_sites += 1;
            let old = old_protocols(&v.tls_protocols);
            if !old.is_empty() {
                let name = v.names.first().cloned().unwrap_or_else(|| v.file.clone());
                bad.push(format!("{} {name}: {}", v.server, old.join(" ")));
            }
        }
        if tls_sites > 0 {
            sources.extend(src);
        }
    }
    let mut probed = None;
    if let Some((h, p, sni)) = live(ctx)
        && which_openssl()
    {
        for (flag, name) in [("-tls1", "TLSv1"), ("-tls1_1", "TLSv1.1")] {
            if handshake(ctx, &h, p, &sni, &[flag, "-cipher", "DEFAULT:@SECLEVEL=0"]).is_some() {
                bad.push(format!("{h}:{p} accepts {name}"));
            }
        }
        sources.push(format!("openssl s_client {h}:{p}"));
        probed = Some(format!("{h}:{p}"));
    }
    let details =
        serde_json::json!({"old_protocols": bad, "tls_sites": tls_sites, "probed": probed});
    let source = sources.join(", ");
    if !bad.is_empty() {
        let l = bad.join("; ");
        return Outcome::fail(
            tr!(
                lang,
                "old TLS/SSL versions enabled: {l}",
                "古い TLS/SSL が有効です: {l}"
            ),
            source,
        )
        .with_details(details);
    }
    if tls_sites == 0 && probed.is_none() {
        return Outcome::missing(
            tr!(
                lang,
                "no TLS site in the web server config and no https listener at the shop's URL",
                "Web サーバー設定に TLS サイトがなく、店舗 URL の https も応答しません"
            ),
            "nginx -T / apachectl -S / --url",
        );
    }
    Outcome::pass(
        tr!(
            lang,
            "only TLS 1.2 and later enabled",
            "TLS 1.2 以降のみ有効です"
        ),
        source,
    )
    .with_details(details)
}

fn which_openssl() -> bool {
    crate::sys::which("openssl").is_some()
}

pub fn cert_expiry(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    // (what, notAfter)
    let mut certs: Vec<(String, DateTime<Utc>)> = Vec::new();
    let mut unreadable = Vec::new();
    let mut sources = Vec::new();
    if let Some((h, p, sni)) = live(ctx)
        && which_openssl()
        && let Some(out) = handshake(ctx, &h, p, &sni, &[])
        && let Some(t) = pem_certs(&out).first().and_then(|c| cert_not_after(c))
    {
        certs.push((format!("{sni} ({h}:{p})"), t));
        sources.push(format!("openssl s_client {h}:{p}"));
    }
    if certs.is_empty()
        && let Ok((hosts, _)) = vhosts(ctx)
    {
        let mut files: Vec<String> = hosts.iter().flat_map(|v| v.certificates.clone()).collect();
        files.sort();
        files.dedup();
        for f in files {
            match ctx.sys.read(&f) {
                Ok(t) => {
                    if let Some(na) = pem_certs(&t).first().and_then(|c| cert_not_after(c)) {
                        certs.push((f.clone(), na));
                        sources.push(f);
                    }
                }
                Err(e) => unreadable.push(format!("{f}: {e}")),
            }
        }
    }
    if certs.is_empty() {
        if !unreadable.is_empty() {
            let l = unreadable.join("; ");
            return Outcome::na(
                tr!(
                    lang,
                    "certificate files unreadable: {l}",
                    "証明書ファイルを読めません: {l}"
                ),
                "ssl_certificate / SSLCertificateFile",
            );
        }
        return Outcome::missing(
            tr!(
                lang,
                "no TLS certificate found (no https at the shop's URL, none in the web server config)",
                "TLS 証明書が見つかりません (店舗 URL の https も Web サーバー設定の証明書もありません)"
            ),
            "--url / ssl_certificate",
        );
    }
    let now = ctx.now;
    let mut worst: Option<(i64, String)> = None;
    let mut list = Vec::new();
    for (what, t) in &certs {
        let days = (*t - now).num_days();
        list.push(serde_json::json!({"certificate": what, "not_after": t.to_rfc3339(), "days_left": days}));
        if worst.as_ref().is_none_or(|w| days < w.0) {
            worst = Some((days, what.clone()));
        }
    }
    let details = serde_json::json!({ "certificates": list });
    let source = sources.join(", ");
    let Some((days, what)) = worst else {
        return Outcome::missing(String::new(), source);
    };
    if days < 0 {
        let d = -days;
        Outcome::fail(
            tr!(
                lang,
                "certificate of {what} expired {d} days ago",
                "{what} の証明書は {d} 日前に期限切れです"
            ),
            source,
        )
        .with_details(details)
    } else if days < FAIL_DAYS {
        Outcome::fail(
            tr!(
                lang,
                "certificate of {what} expires in {days} days",
                "{what} の証明書はあと {days} 日で期限切れです"
            ),
            source,
        )
        .with_details(details)
    } else if days < WARN_DAYS {
        Outcome::warn(
            tr!(
                lang,
                "certificate of {what} expires in {days} days (renewal not yet done?)",
                "{what} の証明書はあと {days} 日で期限切れです (更新されていない可能性)"
            ),
            source,
        )
        .with_details(details)
    } else {
        Outcome::pass(
            tr!(
                lang,
                "certificates valid for {days} days or more",
                "証明書の有効期限まで {days} 日以上あります"
            ),
            source,
        )
        .with_details(details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn protocol_words() {
        assert_eq!(
            old_protocols(&w(&["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"])),
            ["TLSv1", "TLSv1.1"]
        );
        assert!(old_protocols(&w(&["TLSv1.2", "TLSv1.3"])).is_empty());
        assert_eq!(old_protocols(&w(&["all", "-SSLv3"])), ["TLSv1", "TLSv1.1"]);
        assert!(old_protocols(&w(&["all", "-SSLv3", "-TLSv1", "-TLSv1.1"])).is_empty());
        assert!(old_protocols(&w(&["-all", "+TLSv1.2", "+TLSv1.3"])).is_empty());
        assert_eq!(old_protocols(&w(&["+SSLv3", "+TLSv1.2"])), ["SSLv3"]);
    }

    #[test]
    fn der_validity() {
        // A minimal certificate shape: SEQ { SEQ tbs { [0] v3, serial, alg, issuer,
        // validity { UTCTime, GeneralizedTime } }, … }.
        let mut validity = vec![0x17, 13];
        validity.extend(b"260101000000Z");
        validity.extend([0x18, 15]);
        validity.extend(b"20270304123000Z");
        let mut tbs = vec![0xA0, 3, 0x02, 1, 2, 0x02, 1, 7, 0x30, 0, 0x30, 0, 0x30];
        tbs.push(validity.len() as u8);
        tbs.extend(validity);
        let mut cert_inner = vec![0x30, tbs.len() as u8];
        cert_inner.extend(tbs);
        let mut cert = vec![0x30, 0x81, cert_inner.len() as u8];
        cert.extend(cert_inner);
        let t = cert_not_after(&cert).unwrap();
        assert_eq!(t.to_rfc3339(), "2027-03-04T12:30:00+00:00");
        assert!(cert_not_after(&cert[..cert.len() - 3]).is_none());
        assert!(cert_not_after(b"\x30\x84\xff\xff\xff\xff").is_none());
    }
}
