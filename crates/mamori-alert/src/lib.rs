//! mamori-alert: the alert sinks. Findings go one way — detectors → findings → store
//! and **sinks** → responses — and this crate is the sinks part:
//!
//! * `jsonl` — append JSON Lines to a file (0600);
//! * `syslog` — RFC 5424 / 3164 to `/dev/log` (unix datagram) and optionally UDP;
//! * `email` — SMTP with STARTTLS (rustls), subject and body in the user's language;
//! * `webhook` — JSON POST with a Slack-compatible `text` field.
//!
//! [`AlertDispatcher`] runs one worker thread per sink behind a bounded queue, so
//! [`AlertDispatcher::send`] never blocks detection. Settings: [`AlertConfig`], the
//! `[alert]` section of `mamori.toml` (`docs/alerts.md`).

pub mod config;
mod dispatch;
mod error;
pub mod format;
mod sink;

pub use config::{
    AlertConfig, EmailConfig, Facility, JsonlConfig, SinkConfig, SyslogConfig, SyslogFormat,
    WebhookConfig,
};
pub use dispatch::{AlertDispatcher, SinkStats};
pub use error::AlertError;

/// The JSON body a webhook receives for `finding` (exposed for docs and tests).
pub fn webhook_body(finding: &mamori_core::Finding, host: &str, lang: mamori_core::Lang) -> String {
    sink::webhook::webhook_body(finding, host, lang)
}
