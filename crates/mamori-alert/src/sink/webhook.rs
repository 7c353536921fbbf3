//! `type = "webhook"`: POST the finding as JSON, plus a Slack-compatible `text` field.

use std::time::Duration;

use mamori_core::{Finding, Lang, tr};
use ureq::Agent;
use ureq::http::{HeaderName, HeaderValue, Uri};

use super::{DeliveryError, Secret, Sink, read_secret};
use crate::AlertError;
use crate::config::WebhookConfig;
use crate::format::one_line_text;

/// A header value: given inline, or read from a file (a secret, never shown).
#[derive(Debug)]
enum Value {
    Plain(String),
    Secret(Secret),
}

pub(crate) struct WebhookSink {
    host: String,
    lang: Lang,
    url: String,
    headers: Vec<(String, Value)>,
    agent: Agent,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL itself may carry a token (Slack / Teams incoming webhooks do): show
        // scheme and host only.
        let shown = self
            .url
            .parse::<Uri>()
            .ok()
            .map(|u| {
                format!(
                    "{}://{}/…",
                    u.scheme_str().unwrap_or("?"),
                    u.authority().map(|a| a.host()).unwrap_or("?")
                )
            })
            .unwrap_or_else(|| "<redacted>".into());
        f.debug_struct("WebhookSink")
            .field("url", &shown)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn check_url(url: &str, key: String) -> Result<(), AlertError> {
    let uri = url.parse::<Uri>().map_err(|e| AlertError::InvalidUrl {
        key: key.clone(),
        detail: e.to_string(),
    })?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => {
            return Err(AlertError::InvalidUrl {
                key,
                detail: format!("scheme `{other}`"),
            });
        }
        None => {
            return Err(AlertError::InvalidUrl {
                key,
                detail: "no scheme".into(),
            });
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(AlertError::InvalidUrl {
            key,
            detail: "no host".into(),
        });
    }
    Ok(())
}

fn check_header(name: &str, value: &str, key: String) -> Result<(), AlertError> {
    if HeaderName::from_bytes(name.as_bytes()).is_err() || HeaderValue::from_str(value).is_err() {
        return Err(AlertError::InvalidHeader {
            key,
            name: name.to_string(),
        });
    }
    Ok(())
}

impl WebhookSink {
    pub(crate) fn new(
        c: &WebhookConfig,
        key: &str,
        host: &str,
        lang: Lang,
    ) -> Result<Self, AlertError> {
        let url = c.url.trim();
        if url.is_empty() {
            return Err(AlertError::Empty {
                key: format!("{key}.url"),
            });
        }
        check_url(url, format!("{key}.url"))?;
        if c.timeout_secs == 0 {
            return Err(AlertError::OutOfRange {
                key: format!("{key}.timeout_secs"),
                range: ">= 1",
            });
        }
        let mut headers = Vec::new();
        for (name, value) in &c.headers {
            check_header(name, value, format!("{key}.headers"))?;
            headers.push((name.clone(), Value::Plain(value.clone())));
        }
        for (name, path) in &c.header_files {
            let k = format!("{key}.header_files.{name}");
            let secret = read_secret(path, k.clone())?;
            check_header(name, &secret.0, k)?;
            headers.push((name.clone(), Value::Secret(secret)));
        }
        // A proxy cannot reach this machine's loopback: talk to loopback URLs directly
        // even when HTTP(S)_PROXY is set (the environment's proxy is used otherwise).
        let loopback = url
            .parse::<Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_string))
            .is_some_and(|h| {
                let h = h.trim_start_matches('[').trim_end_matches(']');
                h.eq_ignore_ascii_case("localhost")
                    || h.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            });
        let mut builder = Agent::config_builder();
        if loopback {
            builder = builder.proxy(None);
        }
        let config = builder
            .timeout_global(Some(Duration::from_secs(c.timeout_secs)))
            .http_status_as_error(false)
            // A redirect would carry the body (and maybe the Authorization header)
            // somewhere else: treat it as a failure instead.
            .max_redirects(0)
            .user_agent(concat!("mamori/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(WebhookSink {
            host: host.to_string(),
            lang,
            url: url.to_string(),
            headers,
            agent: Agent::new_with_config(config),
        })
    }
}

/// The JSON body: the finding's wire form (card numbers masked) plus `text`.
pub(crate) fn webhook_body(f: &Finding, host: &str, lang: Lang) -> String {
    let line = f.to_json_line();
    let mut v: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|_| serde_json::Value::Object(Default::default()));
    if let serde_json::Value::Object(map) = &mut v {
        map.insert(
            "text".into(),
            serde_json::Value::String(one_line_text(f, host, lang)),
        );
    }
    v.to_string()
}

impl Sink for WebhookSink {
    fn deliver(&mut self, f: &Finding) -> Result<(), DeliveryError> {
        let lang = self.lang;
        let body = webhook_body(f, &self.host, lang);
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json; charset=utf-8");
        for (name, value) in &self.headers {
            let v = match value {
                Value::Plain(s) => s.as_str(),
                Value::Secret(s) => s.0.as_str(),
            };
            req = req.header(name.as_str(), v);
        }
        // Errors name the host only: the URL's path may be a token.
        let shown = self
            .url
            .parse::<Uri>()
            .ok()
            .and_then(|u| u.authority().map(|a| a.to_string()))
            .unwrap_or_default();
        match req.send(body.as_str()) {
            Ok(resp) => {
                let status = resp.status().as_u16();
                if (200..300).contains(&status) {
                    return Ok(());
                }
                let text = tr!(
                    lang,
                    "webhook {shown}: HTTP status {status}",
                    "Webhook {shown}: HTTP ステータス {status}"
                );
                // 4xx other than timeout / rate limit: the request itself is wrong.
                if (400..500).contains(&status) && status != 408 && status != 429 {
                    Err(DeliveryError::permanent(text))
                } else {
                    Err(DeliveryError::retry(text))
                }
            }
            Err(e) => Err(DeliveryError::retry(tr!(
                lang,
                "webhook {shown}: {e}",
                "Webhook {shown} への送信に失敗しました: {e}"
            ))),
        }
    }
}
