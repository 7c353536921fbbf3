//! mamori-page: the payment page as the customer's browser receives it (PCI DSS 6.4.3 and
//! 11.6.1).
//!
//! * [`Loader`] loads a page in headless Chromium ([`browser`], over the DevTools
//!   protocol) or, when asked, with plain HTTP ([`http`]), and records an [`Inventory`]:
//!   every script (URL, SRI, SHA-256 of the body as received; inline and eval'd code by
//!   hash; scripts added at run time by other scripts), forms with their action and
//!   card-like inputs, iframes, the hosts the page talks to, the security headers.
//! * [`inventory`] keeps the approved inventory per page as a signed store document with a
//!   reason per script; [`diff::compare`] turns differences into `page.*` findings.
//! * [`csp`] is the CSP violation report endpoint (`page.csp_violation`) and the policy
//!   parser; [`advice`] writes the CSP to deploy from the approved inventories.
//! * [`schedule`] runs the check on a timer for `watch`.
//!
//! The library never prints: it returns inventories and findings.

pub mod advice;
pub mod browser;
pub mod config;
pub mod csp;
pub mod diff;
pub mod error;
pub mod html;
pub mod http;
pub mod inventory;
pub mod model;
pub mod schedule;

pub use advice::{CspAdvice, csp_advice};
pub use config::{CardFields, Mode, PageConfig};
pub use csp::{CspEndpoint, CspEndpointConfig, start_csp_endpoint};
pub use error::{CertProblem, PageError, Result};
pub use inventory::{Approved, Stored};
pub use model::{Form, Frame, Inventory, Origin, Script};
pub use schedule::{PageEvent, ScheduledCheck, StorePaths, run_round, start_scheduled_checks};

use mamori_core::store::Store;
use mamori_core::{Finding, Lang, tr};

/// Check that `s` is an absolute http(s) URL with a host.
pub fn parse_page_url(s: &str) -> std::result::Result<url::Url, String> {
    let u = url::Url::parse(s.trim()).map_err(|e| format!("`{s}`: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("`{s}`: only http and https pages can be loaded"));
    }
    if u.host_str().is_none_or(|h| h.is_empty()) {
        return Err(format!("`{s}`: no host"));
    }
    Ok(u)
}

/// Loads pages, in one browser for its lifetime (or without one).
pub struct Loader {
    cfg: PageConfig,
    chromium: Option<browser::Chromium>,
    mode: Mode,
    /// Set when the browser could not start and plain HTTP is used instead.
    pub fallback: Option<String>,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader").field("mode", &self.mode).finish()
    }
}

impl Loader {
    /// Start a loader: the browser unless `no_browser` or `[page] mode = "http"`. A browser
    /// that is missing or does not start is an error, unless `fallback_http` is set.
    pub fn new(cfg: &PageConfig, no_browser: bool) -> Result<Loader> {
        let mode = if no_browser { Mode::Http } else { cfg.mode };
        let mut l = Loader {
            cfg: cfg.clone(),
            chromium: None,
            mode,
            fallback: None,
        };
        if mode == Mode::Browser {
            match browser::Chromium::launch(&cfg.browser_path(), cfg.user_agent.as_deref()) {
                Ok(c) => l.chromium = Some(c),
                Err(e) if cfg.fallback_http => {
                    l.mode = Mode::Http;
                    l.fallback = Some(e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(l)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The browser's process id, if one runs.
    pub fn browser_pid(&self) -> Option<u32> {
        self.chromium.as_ref().map(|c| c.pid())
    }

    /// Load `url` and record what it serves.
    pub fn load(&mut self, url: &str) -> Result<Inventory> {
        parse_page_url(url).map_err(|msg| PageError::BadUrl {
            url: url.to_string(),
            msg,
        })?;
        match &mut self.chromium {
            Some(c) => c.load(
                url,
                browser::LoadTiming {
                    timeout: self.cfg.timeout(),
                    quiet: std::time::Duration::from_millis(self.cfg.quiet_ms),
                    settle_max: std::time::Duration::from_secs(self.cfg.settle_max),
                },
            ),
            None => http::load(
                url,
                self.cfg.timeout(),
                self.cfg.user_agent.as_deref(),
                self.cfg.max_body,
            ),
        }
    }
}

/// With `[page] card_fields = "none"`: refuse an inventory with card inputs (approving it
/// would make a skimmer's form part of what is expected).
pub fn check_card_fields(cfg: &PageConfig, inv: &Inventory) -> Result<()> {
    if cfg.card_fields != CardFields::None {
        return Ok(());
    }
    let inputs: Vec<String> = inv
        .forms
        .iter()
        .flat_map(|f| f.card_inputs.iter().cloned())
        .collect();
    if inputs.is_empty() {
        return Ok(());
    }
    Err(PageError::CardFieldsNone {
        url: inv.url.clone(),
        inputs,
    })
}

/// The result of checking one page.
#[derive(Debug)]
pub enum CheckOutcome {
    /// Compared with its approved inventory.
    Checked {
        findings: Vec<Finding>,
        inventory: Box<Inventory>,
        /// The mode the approved inventory was made in.
        approved_mode: Mode,
    },
    /// The approved inventory fails its signature: a `baseline.tampered` finding, nothing
    /// compared.
    Tampered { findings: Vec<Finding> },
    /// Never approved.
    NotApproved,
}

/// "never approved" in the user's language.
pub fn not_approved_message(url: &str, lang: Lang) -> String {
    tr!(
        lang,
        "{url}: no approved inventory; run `mamori page approve --url {url} --reason TEXT` first",
        "{url}: 承認済みの一覧がありません。先に `mamori page approve --url {url} --reason 理由` を実行してください"
    )
}

/// Load `url` and compare it with its approved inventory.
pub fn check_url(
    loader: &mut Loader,
    store: &Store,
    url: &str,
    lang: Lang,
    host: &str,
) -> Result<CheckOutcome> {
    let approved = match inventory::load(store, url)? {
        Stored::Missing => return Ok(CheckOutcome::NotApproved),
        Stored::Tampered => {
            return Ok(CheckOutcome::Tampered {
                findings: vec![inventory::tampered_finding(url, lang, host)],
            });
        }
        Stored::Valid(a) => a,
    };
    let inv = loader.load(url)?;
    let mut findings = diff::compare(&approved, &inv, lang, host);
    if loader.cfg.card_fields == CardFields::None {
        // Every card input now on the page is reported by the policy, once, as critical:
        // drop the comparison's findings about the same inputs.
        findings.retain(|f| !diff::is_card_input_finding(f));
        findings.extend(diff::card_fields_findings(&inv, lang, host));
    }
    Ok(CheckOutcome::Checked {
        findings,
        inventory: Box::new(inv),
        approved_mode: approved.inventory.mode,
    })
}
