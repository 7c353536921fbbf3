//! What is recorded about one payment page: the inventory.

use crate::config::Mode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Everything mamori recorded about one page load.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Inventory {
    /// The URL asked for.
    pub url: String,
    /// The URL of the document after redirects.
    pub final_url: String,
    /// HTTP status of the main document.
    pub status: u16,
    /// RFC 3339 UTC.
    pub captured_at: String,
    /// How it was loaded.
    pub mode: Mode,
    /// Chromium's version string, in browser mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// Every script, keyed by [`Script::key`].
    pub scripts: BTreeMap<String, Script>,
    pub forms: Vec<Form>,
    pub iframes: Vec<Frame>,
    /// Hosts (`host` or `host:port`) the page made requests to; `None` in plain-HTTP mode.
    #[serde(default)]
    pub request_hosts: Option<Vec<String>>,
    /// Security headers of the main document (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// A CSP given in `<meta http-equiv>`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_csp: Option<String>,
    /// What this load could not see or did not finish (e.g. plain-HTTP mode limits, the
    /// network never went quiet).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Where a script came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// In the HTML the server sent.
    #[default]
    Html,
    /// Added while the page ran, by another script (createElement, eval, …).
    Runtime,
}

/// One script the page loaded or ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Script {
    /// Absolute URL for external scripts; `None` for inline and eval'd code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// SHA-256 (hex) of the body as received (inline: of the text).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    pub origin: Origin,
    /// The `integrity` attribute, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sri: Option<String>,
    /// Whether the body matches `sri` (None: no SRI or body not available).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sri_ok: Option<bool>,
    /// For runtime scripts: the URL of the script that added it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_by: Option<String>,
    /// How many times it appeared (inline code repeated, or a script loaded twice).
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

impl Script {
    /// The identity used to compare inventories: the URL for external scripts, the CSP
    /// hash source `inline:sha256-…` for inline code.
    pub fn key(&self) -> String {
        match &self.src {
            Some(u) => u.clone(),
            None => format!("inline:{}", csp_hash_of_hex(&self.sha256)),
        }
    }

    pub fn host(&self) -> Option<String> {
        self.src.as_deref().and_then(host_of)
    }
}

/// A form, or the card-like inputs found outside any form (`action: None`, `loose: true`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Form {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The absolute URL it submits to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub method: String,
    /// `formaction` of its buttons (absolute).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub button_actions: Vec<String>,
    /// Names (else ids) of its inputs.
    pub inputs: Vec<String>,
    /// The card-like inputs among them.
    pub card_inputs: Vec<String>,
    /// Inputs outside any `<form>` (a script must be reading them).
    #[serde(default)]
    pub loose: bool,
}

impl Form {
    /// Identity between two loads: id, else name, else `#index` among forms.
    pub fn ident(&self, index: usize) -> String {
        if self.loose {
            return "(inputs outside forms)".into();
        }
        match (&self.id, &self.name) {
            (Some(i), _) if !i.is_empty() => format!("#{i}"),
            (_, Some(n)) if !n.is_empty() => format!("[name={n}]"),
            _ => format!("form {}", index + 1),
        }
    }
}

/// An iframe.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Frame {
    /// Absolute URL; `about:srcdoc` for srcdoc frames; empty for none.
    pub src: String,
}

/// Whether an input looks like it takes card data: `autocomplete="cc-*"`, or a name/id
/// such as card, cc_number, ccnum, cvv, cvc, csc, security_code, expiry.
pub fn is_card_input(name: &str, id: &str, autocomplete: &str) -> bool {
    let ac = autocomplete.trim().to_ascii_lowercase();
    if ac.split_whitespace().any(|t| t.starts_with("cc-")) {
        return true;
    }
    [name, id].iter().any(|s| {
        let s = s.to_ascii_lowercase();
        let compact: String = s.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        [
            "card",
            "ccnum",
            "ccno",
            "cccvv",
            "cccid",
            "ccexp",
            "cctype",
            "ccname",
            "cvv",
            "cvc",
            "csc",
            "securitycode",
            "cardholder",
            "expiry",
            "expmonth",
            "expyear",
            "expdate",
        ]
        .iter()
        .any(|w| compact.contains(w))
            || compact == "pan"
            || compact == "ccv"
    })
}

/// SHA-256 hex of bytes.
pub fn sha256_hex(b: &[u8]) -> String {
    let d = Sha256::digest(b);
    let mut s = String::with_capacity(64);
    for x in d {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// `sha256-BASE64` (the CSP / SRI form) of a SHA-256 hex digest.
pub fn csp_hash_of_hex(hex: &str) -> String {
    use base64::Engine;
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Check a body against an `integrity` attribute (any of its sha256/384/512 tokens).
pub fn sri_matches(integrity: &str, body: &[u8]) -> bool {
    use base64::Engine;
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    integrity.split_whitespace().any(|tok| {
        let tok = tok.split('?').next().unwrap_or(tok);
        match tok.split_once('-') {
            Some(("sha256", v)) => b64(&sha2::Sha256::digest(body)) == v,
            Some(("sha384", v)) => b64(&sha2::Sha384::digest(body)) == v,
            Some(("sha512", v)) => b64(&sha2::Sha512::digest(body)) == v,
            _ => false,
        }
    })
}

/// `host` or `host:port` (non-default port) of a URL; None for data:, blob:, about:…
pub fn host_of(u: &str) -> Option<String> {
    let u = url::Url::parse(u).ok()?;
    if !matches!(u.scheme(), "http" | "https" | "ws" | "wss") {
        return None;
    }
    let h = u.host_str()?.to_string();
    Some(match u.port() {
        Some(p) => format!("{h}:{p}"),
        None => h,
    })
}

/// `scheme://host[:port]` of a URL.
pub fn origin_of(u: &str) -> Option<String> {
    let p = url::Url::parse(u).ok()?;
    Some(p.origin().ascii_serialization()).filter(|o| o != "null")
}

/// The security headers kept from the main document.
pub const SECURITY_HEADERS: &[&str] = &[
    "content-security-policy",
    "content-security-policy-report-only",
    "strict-transport-security",
    "x-frame-options",
    "referrer-policy",
    "x-content-type-options",
    "permissions-policy",
    "reporting-endpoints",
    "report-to",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_inputs() {
        assert!(is_card_input("card_number", "", ""));
        assert!(is_card_input("", "", "cc-number"));
        assert!(is_card_input("", "", "billing cc-exp"));
        assert!(is_card_input("payment[cc_number]", "", ""));
        assert!(is_card_input("security_code", "", ""));
        assert!(is_card_input("cvv", "", ""));
        assert!(is_card_input("", "ccnum", ""));
        assert!(!is_card_input("email", "", "email"));
        assert!(!is_card_input("qty", "product_id", ""));
        assert!(!is_card_input("discount_code", "", ""));
        assert!(!is_card_input("currency", "", ""));
        assert!(!is_card_input("cc_email", "", "email"));
    }

    #[test]
    fn hashes() {
        let h = sha256_hex(b"alert(1)");
        assert_eq!(h.len(), 64);
        assert!(csp_hash_of_hex(&h).starts_with("sha256-"));
        let sri = csp_hash_of_hex(&h);
        assert!(sri_matches(&sri, b"alert(1)"));
        assert!(!sri_matches(&sri, b"alert(2)"));
        assert_eq!(
            host_of("https://a.example:8443/x").as_deref(),
            Some("a.example:8443")
        );
        assert_eq!(host_of("https://a.example/x").as_deref(), Some("a.example"));
        assert_eq!(host_of("data:text/plain,x"), None);
    }
}
