//! Plain-HTTP mode: one GET for the page and one per external script, nothing run.
//!
//! It sees the HTML the server sends and the scripts it names. It cannot see scripts
//! added while the page runs (the usual way a skimmer loads), code run through eval,
//! requests the page makes, or forms built by JavaScript. Every inventory it makes says so
//! in its `notes`.

use crate::config::Mode;
use crate::error::{PageError, Result, tls_error};
use crate::html;
use crate::model::{Frame, Inventory, Origin, SECURITY_HEADERS, Script, sha256_hex, sri_matches};
use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;
use ureq::ResponseExt;

/// What plain-HTTP mode cannot see (recorded in every inventory it makes).
pub const HTTP_MODE_LIMITS: &str = "plain-HTTP mode: scripts added at run time, eval'd code, requests made by the page and forms built by JavaScript are not seen";

fn agent(timeout: Duration, user_agent: Option<&str>) -> ureq::Agent {
    let mut b = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(10);
    if let Some(ua) = user_agent {
        b = b.user_agent(ua);
    } else {
        b = b.user_agent(concat!("mamori/", env!("CARGO_PKG_VERSION")));
    }
    b.build().into()
}

fn map_err(url: &str, e: ureq::Error, timeout: Duration) -> PageError {
    let url = url.to_string();
    match e {
        ureq::Error::Timeout(_) => PageError::Timeout {
            url,
            secs: timeout.as_secs(),
        },
        ureq::Error::Tls(m) => tls_error(&url, m.to_string()),
        ureq::Error::Rustls(e) => tls_error(&url, e.to_string()),
        ureq::Error::TlsRequired => PageError::Tls {
            url,
            detail: "TLS required".into(),
        },
        ureq::Error::HostNotFound => PageError::Unreachable {
            url,
            detail: "host not found".into(),
        },
        ureq::Error::BadUri(m) => PageError::BadUrl { url, msg: m },
        ureq::Error::BodyStalled => PageError::Timeout {
            url,
            secs: timeout.as_secs(),
        },
        ureq::Error::Io(io) => {
            let m = io.to_string();
            let low = m.to_ascii_lowercase();
            if low.contains("tls") || low.contains("certificate") || low.contains("corrupt message")
            {
                tls_error(&url, m)
            } else if io.kind() == std::io::ErrorKind::TimedOut
                || io.kind() == std::io::ErrorKind::WouldBlock
                || low.contains("timeout")
                || low.contains("timed out")
            {
                PageError::Timeout {
                    url,
                    secs: timeout.as_secs(),
                }
            } else {
                PageError::Unreachable { url, detail: m }
            }
        }
        other => {
            let m = other.to_string();
            let low = m.to_ascii_lowercase();
            if low.contains("tls") || low.contains("certificate") || low.contains("handshake") {
                tls_error(&url, m)
            } else {
                PageError::Unreachable { url, detail: m }
            }
        }
    }
}

struct Fetched {
    status: u16,
    final_url: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

fn fetch(agent: &ureq::Agent, url: &str, max_body: u64, timeout: Duration) -> Result<Fetched> {
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| map_err(url, e, timeout))?;
    let status = resp.status().as_u16();
    let final_url = resp.get_uri().to_string();
    let mut headers = BTreeMap::new();
    for name in SECURITY_HEADERS {
        let vals: Vec<String> = resp
            .headers()
            .get_all(*name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
            .collect();
        if !vals.is_empty() {
            headers.insert(name.to_string(), vals.join(", "));
        }
    }
    let mut body = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(max_body)
        .read_to_end(&mut body)
        .map_err(|e| map_err(url, ureq::Error::Io(e), timeout))?;
    Ok(Fetched {
        status,
        final_url,
        headers,
        body,
    })
}

/// Load `url` without a browser.
pub fn load(
    url: &str,
    timeout: Duration,
    user_agent: Option<&str>,
    max_body: u64,
) -> Result<Inventory> {
    let agent = agent(timeout, user_agent);
    let page = fetch(&agent, url, max_body, timeout)?;
    if page.status >= 400 {
        return Err(PageError::Status {
            url: url.into(),
            status: page.status,
        });
    }
    let doc = html::parse(&page.body);
    let base = url::Url::parse(&page.final_url)
        .or_else(|_| url::Url::parse(url))
        .map_err(|e| PageError::BadUrl {
            url: url.into(),
            msg: e.to_string(),
        })?;
    let base = match doc.base_href.as_deref().and_then(|h| base.join(h).ok()) {
        Some(b) => b,
        None => base,
    };
    let abs = |u: &str| {
        base.join(u.trim())
            .map(|u| u.to_string())
            .unwrap_or_else(|_| u.to_string())
    };
    let mut notes = vec![HTTP_MODE_LIMITS.to_string()];
    let mut scripts: BTreeMap<String, Script> = BTreeMap::new();
    for s in &doc.scripts {
        match &s.src {
            Some(src) => {
                let u = abs(src);
                if let Some(e) = scripts.get_mut(&u) {
                    e.count += 1;
                    continue;
                }
                let mut sc = Script {
                    src: Some(u.clone()),
                    origin: Origin::Html,
                    sri: s.integrity.clone().filter(|i| !i.trim().is_empty()),
                    count: 1,
                    ..Default::default()
                };
                if u.starts_with("http://") || u.starts_with("https://") {
                    match fetch(&agent, &u, max_body, timeout) {
                        Ok(f) if f.status < 400 => {
                            sc.sha256 = sha256_hex(&f.body);
                            sc.size = f.body.len() as u64;
                            sc.sri_ok = sc.sri.as_deref().map(|i| sri_matches(i, &f.body));
                        }
                        Ok(f) => notes.push(format!("{u}: HTTP {}", f.status)),
                        Err(e) => notes.push(format!("{u}: {e}")),
                    }
                }
                scripts.insert(u, sc);
            }
            None => {
                let sc = Script {
                    src: None,
                    sha256: sha256_hex(s.text.as_bytes()),
                    size: s.text.len() as u64,
                    origin: Origin::Html,
                    count: 1,
                    ..Default::default()
                };
                scripts
                    .entry(sc.key())
                    .and_modify(|e| e.count += 1)
                    .or_insert(sc);
            }
        }
    }
    let inputs = |v: &[html::HtmlInput]| -> Vec<(String, String, String, Option<String>)> {
        v.iter()
            .map(|i| {
                (
                    i.name.clone(),
                    i.id.clone(),
                    i.autocomplete.clone(),
                    i.formaction.as_deref().map(&abs),
                )
            })
            .collect()
    };
    let mut forms: Vec<_> = doc
        .forms
        .iter()
        .map(|f| {
            let action = Some(match f.action.as_deref() {
                Some(a) if !a.trim().is_empty() => abs(a),
                _ => page.final_url.clone(),
            });
            crate::browser::form_of(
                f.id.clone(),
                f.name.clone(),
                action,
                f.method.clone(),
                &inputs(&f.inputs),
                false,
            )
        })
        .collect();
    if !doc.loose_inputs.is_empty() {
        forms.push(crate::browser::form_of(
            String::new(),
            String::new(),
            None,
            String::new(),
            &inputs(&doc.loose_inputs),
            true,
        ));
    }
    let iframes = doc
        .iframes
        .iter()
        .map(|s| Frame {
            src: if s.is_empty() || s.starts_with("about:") {
                s.clone()
            } else {
                abs(s)
            },
        })
        .collect();
    notes.dedup();
    Ok(Inventory {
        url: url.into(),
        final_url: page.final_url,
        status: page.status,
        captured_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        mode: Mode::Http,
        browser: None,
        scripts,
        forms,
        iframes,
        request_hosts: None,
        headers: page.headers,
        meta_csp: doc.meta_csp,
        notes,
    })
}
