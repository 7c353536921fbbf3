//! Card guideline (data-directory exposure, web-app hardening): HTTP probes against the
//! shop's own URL. A random-path control request detects sites that answer 200 for
//! everything ("soft 404"); a probe only counts when its body has the content signature
//! of the exposed thing and differs from the control body.

use crate::audit::{Ctx, Outcome};
use mamori_core::tr;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const MAX_BODY: u64 = 256 << 10;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

/// The site under audit and its answer to a path that cannot exist.
#[derive(Debug, Clone)]
pub struct Site {
    host: String,
    port: u16,
    base: String,
    host_header: String,
    timeout: Duration,
    pub control: Option<Response>,
}

fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("`{url}`: only http:// is probed (give the local server's plain-HTTP address and posture.host_header)"))?;
    let (hp, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(h) = hp.strip_prefix('[') {
        let (h, p) = h
            .split_once(']')
            .ok_or_else(|| format!("`{url}`: bad IPv6 address"))?;
        (h.to_string(), p.strip_prefix(':').unwrap_or("80"))
    } else {
        match hp.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (hp.to_string(), "80"),
        }
    };
    let port: u16 = port.parse().map_err(|_| format!("`{url}`: bad port"))?;
    if host.is_empty() {
        return Err(format!("`{url}`: no host"));
    }
    Ok((host, port, path.trim_end_matches('/').to_string()))
}

impl Site {
    pub fn new(url: &str, host_header: Option<&str>, timeout: Duration) -> Result<Site, String> {
        let (host, port, base) = parse_url(url)?;
        let hh = host_header.map(str::to_string).unwrap_or_else(|| {
            if port == 80 {
                host.clone()
            } else {
                format!("{host}:{port}")
            }
        });
        let mut s = Site {
            host,
            port,
            base,
            host_header: hh,
            timeout,
            control: None,
        };
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd).map_err(|e| e.to_string())?;
        let hex: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        s.control = Some(s.get(&format!("/mamori-control-{hex}.php"))?);
        Ok(s)
    }

    /// GET `path` (HTTP/1.0, so no chunked bodies), body capped.
    pub fn get(&self, path: &str) -> Result<Response, String> {
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("{}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("{}: no address", self.host))?;
        let mut s =
            TcpStream::connect_timeout(&addr, self.timeout).map_err(|e| format!("{addr}: {e}"))?;
        let _ = s.set_read_timeout(Some(self.timeout));
        let _ = s.set_write_timeout(Some(self.timeout));
        let req = format!(
            "GET {}{} HTTP/1.0\r\nHost: {}\r\nUser-Agent: mamori-audit\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.base, path, self.host_header
        );
        s.write_all(req.as_bytes())
            .map_err(|e| format!("{addr}: {e}"))?;
        let mut raw = Vec::new();
        let _ = s.take(MAX_BODY + 16384).read_to_end(&mut raw);
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("{addr}: no HTTP response"))?;
        let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = headers
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("{addr}: bad status line"))?;
        Ok(Response {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        })
    }

    /// Whether `r` is a real answer rather than the site's catch-all page.
    fn distinct(&self, r: &Response) -> bool {
        if !(200..300).contains(&r.status) {
            return false;
        }
        match &self.control {
            Some(c) if (200..300).contains(&c.status) => {
                c.body != r.body && !similar(&c.body, &r.body)
            }
            _ => true,
        }
    }
}

/// Bodies of nearly the same length sharing their first 512 bytes: the same template.
fn similar(a: &[u8], b: &[u8]) -> bool {
    let n = 512.min(a.len()).min(b.len());
    let (la, lb) = (a.len() as f64, b.len() as f64);
    n > 64 && a[..n] == b[..n] && (la - lb).abs() <= la.max(lb) * 0.1
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(64 << 10)]).into_owned()
}

fn is_html(t: &str) -> bool {
    let l = t.trim_start().to_ascii_lowercase();
    l.starts_with("<!doctype") || l.starts_with("<html") || l.contains("<body")
}

type Sig = fn(&[u8]) -> bool;

fn sig_git_head(b: &[u8]) -> bool {
    let t = text(b);
    let t = t.trim();
    t.starts_with("ref: refs/") || (t.len() == 40 && t.chars().all(|c| c.is_ascii_hexdigit()))
}
fn sig_env(b: &[u8]) -> bool {
    let t = text(b);
    !is_html(&t)
        && t.lines()
            .filter(|l| {
                let l = l.trim();
                l.split_once('=').is_some_and(|(k, _)| {
                    !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                })
            })
            .count()
            >= 1
}
fn sig_backup(b: &[u8]) -> bool {
    let t = text(b);
    b.starts_with(b"PK\x03\x04")
        || b.starts_with(b"\x1f\x8b")
        || t.contains("CREATE TABLE")
        || t.contains("INSERT INTO")
        || t.contains("-- MySQL dump")
        || t.contains("-- MariaDB dump")
        || t.trim_start().starts_with("<?php")
}
fn sig_phpinfo(b: &[u8]) -> bool {
    let t = text(b);
    t.contains("phpinfo()") || (t.contains("PHP Version") && t.contains("Configuration"))
}
fn sig_listing(b: &[u8]) -> bool {
    let t = text(b);
    t.contains("<title>Index of /")
        || t.contains("<h1>Index of /")
        || t.contains("Directory listing for /")
}
fn sig_vendor(b: &[u8]) -> bool {
    let t = text(b);
    sig_listing(b)
        || (t.contains("\"packages\"") && t.contains("\"name\""))
        || t.contains("\"content-hash\"")
}
fn sig_var(b: &[u8]) -> bool {
    let t = text(b);
    sig_listing(b)
        || t.contains("request.INFO")
        || t.contains("request.CRITICAL")
        || t.contains("main.ERROR")
        || t.contains("main.CRITICAL")
        || t.contains("main.INFO")
        || t.contains("report.CRITICAL")
}
fn sig_env_php(b: &[u8]) -> bool {
    let t = text(b);
    t.contains("<?php")
        || t.contains("'crypt'")
        || (t.contains("'db'") && t.contains("'connection'"))
}
fn sig_status(b: &[u8]) -> bool {
    let t = text(b);
    t.contains("Apache Server Status")
        || t.contains("Server uptime")
        || t.starts_with("Active connections:")
}

fn probe(ctx: &Ctx, paths: &[&str], sig: Sig) -> Outcome {
    let lang = ctx.lang;
    let site = match ctx.http.get_or_init(|| match &ctx.url {
        None => Err(String::new()),
        Some(u) => Site::new(u, ctx.cfg.host_header.as_deref(), ctx.sys.timeout),
    }) {
        Ok(s) => s,
        Err(e) if e.is_empty() => {
            return Outcome::na(
                tr!(
                    lang,
                    "no shop URL (posture.url / --url)",
                    "店舗サイトの URL (posture.url / --url) がありません"
                ),
                "posture.url",
            );
        }
        Err(e) => {
            return Outcome::error(
                tr!(lang, "site unreachable: {e}", "サイトに接続できません: {e}"),
                ctx.url.clone().unwrap_or_default(),
            );
        }
    };
    let soft = site
        .control
        .as_ref()
        .is_some_and(|c| (200..300).contains(&c.status));
    let mut exposed = Vec::new();
    let mut statuses = Vec::new();
    for p in paths {
        match site.get(p) {
            Ok(r) => {
                statuses.push(
                    serde_json::json!({"path": p, "status": r.status, "bytes": r.body.len()}),
                );
                if site.distinct(&r) && sig(&r.body) {
                    exposed.push(p.to_string());
                }
            }
            Err(e) => statuses.push(serde_json::json!({"path": p, "error": e})),
        }
    }
    let src = paths
        .iter()
        .map(|p| format!("GET {p}"))
        .collect::<Vec<_>>()
        .join(", ");
    let details = serde_json::json!({"probes": statuses, "soft_404": soft});
    if exposed.is_empty() {
        let note = if soft {
            tr!(
                lang,
                " (site answers 200 for everything; compared with a control page)",
                " (存在しないパスにも 200 を返すサイトのため対照ページと比較)"
            )
        } else {
            String::new()
        };
        Outcome::pass(
            tr!(lang, "not exposed{note}", "公開されていません{note}"),
            src,
        )
        .with_details(details)
    } else {
        let list = exposed.join(", ");
        Outcome::fail(
            tr!(
                lang,
                "served to anyone: {list}",
                "誰でも取得できます: {list}"
            ),
            src,
        )
        .with_details(details)
    }
}

pub fn git(ctx: &Ctx) -> Outcome {
    probe(ctx, &["/.git/HEAD"], sig_git_head)
}
pub fn env(ctx: &Ctx) -> Outcome {
    probe(ctx, &["/.env", "/.env.local", "/.env.bak"], sig_env)
}
pub fn backups(ctx: &Ctx) -> Outcome {
    probe(
        ctx,
        &[
            "/backup.zip",
            "/backup.sql",
            "/db.sql",
            "/dump.sql",
            "/database.sql",
            "/site.zip",
            "/www.zip",
            "/html.zip",
            "/backup.tar.gz",
            "/index.php.bak",
            "/wp-config.php.bak",
            "/config.php.bak",
        ],
        sig_backup,
    )
}
pub fn phpinfo(ctx: &Ctx) -> Outcome {
    probe(
        ctx,
        &[
            "/phpinfo.php",
            "/info.php",
            "/php_info.php",
            "/test.php",
            "/i.php",
        ],
        sig_phpinfo,
    )
}
pub fn listing(ctx: &Ctx) -> Outcome {
    probe(
        ctx,
        &[
            "/",
            "/upload/",
            "/html/upload/",
            "/wp-content/uploads/",
            "/media/",
            "/backup/",
            "/images/",
        ],
        sig_listing,
    )
}
pub fn vendor(ctx: &Ctx) -> Outcome {
    probe(
        ctx,
        &[
            "/vendor/",
            "/vendor/composer/installed.json",
            "/composer.lock",
            "/composer.json",
        ],
        sig_vendor,
    )
}
pub fn var(ctx: &Ctx) -> Outcome {
    probe(
        ctx,
        &[
            "/var/",
            "/var/log/prod.log",
            "/var/log/system.log",
            "/var/log/exception.log",
            "/var/log/debug.log",
        ],
        sig_var,
    )
}
pub fn magento_env(ctx: &Ctx) -> Outcome {
    probe(
        ctx,
        &[
            "/app/etc/env.php",
            "/app/config/eccube/packages/doctrine.yaml",
        ],
        sig_env_php,
    )
}
pub fn server_status(ctx: &Ctx) -> Outcome {
    probe(
        ctx,
        &["/server-status", "/nginx_status", "/status"],
        sig_status,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/shop/").unwrap(),
            ("127.0.0.1".into(), 8080, "/shop".into())
        );
        assert_eq!(
            parse_url("http://[::1]/").unwrap(),
            ("::1".into(), 80, "".into())
        );
        assert!(parse_url("https://x/").is_err());
        assert!(parse_url("http://x:99999/").is_err());
    }

    #[test]
    fn signatures() {
        assert!(sig_git_head(b"ref: refs/heads/main\n"));
        assert!(!sig_git_head(b"<html>not found</html>"));
        assert!(sig_env(b"APP_ENV=prod\nDATABASE_URL=mysql://u:p@h/db\n"));
        assert!(!sig_env(b"<!doctype html><html><body>a=b</body></html>"));
        assert!(sig_backup(b"PK\x03\x04rest"));
        assert!(sig_status(b"Active connections: 2 \n"));
    }
}
