//! The `[page]` section of `mamori.toml` (every key optional; see docs/page.md).

use crate::error::{PageError, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The default address of the CSP report endpoint (loopback: put it behind the shop's
/// reverse proxy).
pub const DEFAULT_CSP_LISTEN: &str = "127.0.0.1:8931";

/// `[page]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PageConfig {
    /// The payment pages to watch (checkout, card entry, order confirmation…).
    pub urls: Vec<String>,
    /// Seconds between scheduled checks in `watch` (default 3600; PCI 11.6.1 asks for at
    /// least weekly).
    pub interval: u64,
    /// Seconds a page may take to load (navigation + `load` event).
    pub timeout: u64,
    /// Milliseconds without network or script activity after `load` that count as settled.
    pub quiet_ms: u64,
    /// Seconds at most to wait for the page to settle after `load` (then it is recorded
    /// as it is, with a note).
    pub settle_max: u64,
    /// The Chromium binary (default: env `MAMORI_CHROMIUM`, else `chromium` on PATH, else
    /// /usr/bin/chromium).
    pub browser: Option<PathBuf>,
    /// `browser` (default) or `http` (plain HTTP, no browser: sees no runtime-added scripts
    /// and no requests).
    pub mode: Mode,
    /// With mode `browser`: fall back to plain HTTP when the browser is missing or fails to
    /// start (off by default: a silent downgrade would hide what only a browser sees).
    pub fallback_http: bool,
    /// A User-Agent to send instead of Chromium's (some shops block `HeadlessChrome`).
    pub user_agent: Option<String>,
    /// Largest script or page body hashed in plain-HTTP mode, in bytes.
    pub max_body: u64,
    /// Where the CSP report endpoint listens (loopback by default).
    pub csp_listen: String,
    /// Largest CSP report accepted, in bytes.
    pub csp_max_body: usize,
    /// CSP reports accepted per client address per minute (the rest get 429).
    pub csp_rate_per_minute: u32,
    /// Seconds during which identical violations (page, blocked URL, directive) make one
    /// finding.
    pub csp_dedupe_secs: u64,
    /// Whether the shop's own pages take card numbers: `hosted` (default: card inputs on
    /// the page are compared with the approved inventory) or `none` (a redirect or
    /// token-iframe provider takes them: any card input on the shop's own page is a
    /// critical finding, and `approve` refuses a page that has one).
    pub card_fields: CardFields,
    /// A browser given on the command line (beats everything else; not a config key).
    #[serde(skip)]
    pub browser_flag: Option<PathBuf>,
}

impl Default for PageConfig {
    fn default() -> Self {
        PageConfig {
            urls: Vec::new(),
            interval: 3600,
            timeout: 30,
            quiet_ms: 1000,
            settle_max: 10,
            browser: None,
            mode: Mode::Browser,
            fallback_http: false,
            user_agent: None,
            max_body: 5 << 20,
            csp_listen: DEFAULT_CSP_LISTEN.to_string(),
            csp_max_body: 64 << 10,
            csp_rate_per_minute: 60,
            csp_dedupe_secs: 3600,
            card_fields: CardFields::Hosted,
            browser_flag: None,
        }
    }
}

/// How a page is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Headless Chromium over the DevTools protocol: sees what customers' browsers run.
    #[default]
    Browser,
    /// One HTTP GET per page and per script, no JavaScript.
    Http,
}

/// `[page] card_fields`: where customers type card numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CardFields {
    /// The shop's page hosts card inputs (its own form or a provider's script in the page).
    #[default]
    Hosted,
    /// Never on the shop's own page: the provider's hosted page or iframe takes them.
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Browser => "browser",
            Mode::Http => "http",
        }
    }
}

impl PageConfig {
    /// Parse the raw `[page]` table (absent = defaults) and check the values.
    pub fn from_table(t: Option<toml::Table>) -> Result<PageConfig> {
        let cfg: PageConfig = match t {
            Some(t) => t
                .try_into()
                .map_err(|e: toml::de::Error| PageError::Config(e.message().trim().to_string()))?,
            None => PageConfig::default(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(PageError::Config(m.to_string()));
        if self.timeout == 0 || self.timeout > 600 {
            return bad("timeout must be 1..=600 seconds");
        }
        if self.interval < 60 {
            return bad("interval must be at least 60 seconds");
        }
        if self.quiet_ms < 100 || self.quiet_ms > 30_000 {
            return bad("quiet_ms must be 100..=30000");
        }
        if self.settle_max > 120 {
            return bad("settle_max must be at most 120 seconds");
        }
        if self.csp_max_body < 512 || self.csp_max_body > (1 << 20) {
            return bad("csp_max_body must be 512..=1048576 bytes");
        }
        if self.csp_rate_per_minute == 0 {
            return bad("csp_rate_per_minute must be at least 1");
        }
        if self.csp_listen.parse::<std::net::SocketAddr>().is_err() {
            return bad("csp_listen must be an address:port such as 127.0.0.1:8931");
        }
        for u in &self.urls {
            crate::parse_page_url(u).map_err(|e| PageError::Config(format!("urls: {e}")))?;
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    /// The browser to run: `--browser`, then `MAMORI_CHROMIUM`, then `[page] browser`,
    /// then `chromium` (or `chromium-browser`) on PATH, then /usr/bin/chromium.
    pub fn browser_path(&self) -> PathBuf {
        if let Some(p) = &self.browser_flag {
            return p.clone();
        }
        if let Some(p) = std::env::var_os("MAMORI_CHROMIUM").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        if let Some(p) = &self.browser {
            return p.clone();
        }
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                for name in ["chromium", "chromium-browser"] {
                    let c = dir.join(name);
                    if c.is_file() {
                        return c;
                    }
                }
            }
        }
        PathBuf::from("/usr/bin/chromium")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = PageConfig::from_table(None).unwrap();
        assert_eq!(c.interval, 3600);
        assert_eq!(c.csp_listen, DEFAULT_CSP_LISTEN);
        let t: toml::Table = toml::from_str(
            "urls = [\"https://shop.example/checkout\"]\ntimeout = 5\nmode = \"http\"",
        )
        .unwrap();
        let c = PageConfig::from_table(Some(t)).unwrap();
        assert_eq!(c.mode, Mode::Http);
        assert_eq!(c.timeout, 5);
        let t: toml::Table = toml::from_str("url = []").unwrap();
        let e = PageConfig::from_table(Some(t)).unwrap_err();
        assert!(e.to_string().contains("url"), "{e}");
        let t: toml::Table = toml::from_str("urls = [\"ftp://x\"]").unwrap();
        assert!(PageConfig::from_table(Some(t)).is_err());
        let t: toml::Table = toml::from_str("timeout = 0").unwrap();
        let e = PageConfig::from_table(Some(t)).unwrap_err();
        assert!(e.localized(mamori_core::Lang::En).contains("timeout"));
        assert_eq!(c.card_fields, CardFields::Hosted);
        let t: toml::Table = toml::from_str("card_fields = \"none\"").unwrap();
        let c = PageConfig::from_table(Some(t)).unwrap();
        assert_eq!(c.card_fields, CardFields::None);
        let t: toml::Table = toml::from_str("card_fields = \"nowhere\"").unwrap();
        let e = PageConfig::from_table(Some(t)).unwrap_err();
        let m = e.localized(mamori_core::Lang::En);
        assert!(m.contains("hosted") && m.contains("none"), "{m}");
    }
}
