//! The `[alert]` section of `mamori.toml`: shared queue/retry settings and a list of
//! `[[alert.sink]]` entries, each tagged with `type = "jsonl" | "syslog" | "email" |
//! "webhook"`. Every table rejects unknown keys. See `docs/alerts.md`.

use mamori_core::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::AlertError;

/// `[alert]`: the sinks and how hard each worker tries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// Findings each sink may hold while its worker is busy; when full, findings are
    /// dropped (and counted), never waited for.
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
    /// Delivery attempts per finding, the first one included (>= 1).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait before the first retry, in milliseconds; doubled after each failure.
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    /// Upper bound of the wait between retries, in milliseconds.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// `[[alert.sink]]` entries, in order (`alert.sink[0]` is the first).
    #[serde(default, rename = "sink", skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<SinkConfig>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            queue_size: default_queue_size(),
            max_attempts: default_max_attempts(),
            backoff_initial_ms: default_backoff_initial_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            sinks: Vec::new(),
        }
    }
}

impl AlertConfig {
    /// Parse a TOML document holding an `[alert]` table (the rest of the document is
    /// ignored). The binary normally gets `AlertConfig` from its own config loader; this
    /// is for tools and tests that read the section alone.
    pub fn from_toml(text: &str) -> Result<AlertConfig, AlertError> {
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default)]
            alert: AlertConfig,
        }
        // The document's other sections are not ours to judge: `Doc` ignores them, while
        // every table inside `[alert]` rejects unknown keys.
        let doc: Doc = toml::from_str(text).map_err(|e| AlertError::Parse {
            msg: e.to_string().trim_end().to_string(),
        })?;
        Ok(doc.alert)
    }
}

fn default_queue_size() -> usize {
    1024
}
fn default_max_attempts() -> u32 {
    6
}
fn default_backoff_initial_ms() -> u64 {
    1_000
}
fn default_backoff_max_ms() -> u64 {
    60_000
}
fn default_min_severity() -> Severity {
    Severity::High
}
fn default_true() -> bool {
    true
}
fn default_syslog_socket() -> PathBuf {
    PathBuf::from("/dev/log")
}
fn default_smtp_port() -> u16 {
    587
}
fn default_email_timeout() -> u64 {
    30
}
fn default_webhook_timeout() -> u64 {
    10
}

/// One `[[alert.sink]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkConfig {
    Jsonl(JsonlConfig),
    Syslog(SyslogConfig),
    Email(EmailConfig),
    Webhook(WebhookConfig),
}

impl SinkConfig {
    /// `jsonl`, `syslog`, `email` or `webhook`.
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkConfig::Jsonl(_) => "jsonl",
            SinkConfig::Syslog(_) => "syslog",
            SinkConfig::Email(_) => "email",
            SinkConfig::Webhook(_) => "webhook",
        }
    }

    /// Findings below this severity are not sent to this sink.
    pub fn min_severity(&self) -> Severity {
        match self {
            SinkConfig::Jsonl(c) => c.min_severity,
            SinkConfig::Syslog(c) => c.min_severity,
            SinkConfig::Email(c) => c.min_severity,
            SinkConfig::Webhook(c) => c.min_severity,
        }
    }

    /// The optional `name` given in the config.
    pub fn name(&self) -> Option<&str> {
        match self {
            SinkConfig::Jsonl(c) => c.name.as_deref(),
            SinkConfig::Syslog(c) => c.name.as_deref(),
            SinkConfig::Email(c) => c.name.as_deref(),
            SinkConfig::Webhook(c) => c.name.as_deref(),
        }
    }
}

/// `type = "jsonl"`: append each finding as one JSON line to a file (created 0600).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// The file to append to. Relative paths are taken as given (from the working
    /// directory); the binary should resolve them against the config directory first.
    pub path: PathBuf,
}

/// Syslog message format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFormat {
    #[default]
    Rfc5424,
    Rfc3164,
}

/// Syslog facility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    User,
    Daemon,
    #[default]
    Auth,
    Authpriv,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    /// The numeric facility code of RFC 5424 §6.2.1.
    pub fn code(self) -> u8 {
        match self {
            Facility::User => 1,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Authpriv => 10,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

/// `type = "syslog"`: the local syslog socket (unix datagram) and, optionally, UDP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    #[serde(default)]
    pub format: SyslogFormat,
    #[serde(default)]
    pub facility: Facility,
    /// Send to the local socket at `socket`.
    #[serde(default = "default_true")]
    pub local: bool,
    /// The local syslog socket (a unix datagram socket).
    #[serde(default = "default_syslog_socket")]
    pub socket: PathBuf,
    /// Also send each message by UDP to this `host:port` (e.g. `"10.0.0.5:514"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<String>,
    /// Send the whole finding as JSON as the message instead of one line of text.
    #[serde(default)]
    pub json: bool,
}

/// `type = "email"`: SMTP, with STARTTLS unless the server is on loopback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// SMTP server host name (also the name its certificate is checked against).
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// Require STARTTLS. `false` is accepted only for a loopback host.
    #[serde(default = "default_true")]
    pub starttls: bool,
    /// Sender, `"mamori <mamori@shop.example>"` or a bare address.
    pub from: String,
    /// Recipients (at least one).
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// File holding the SMTP password (first line; trailing newline ignored). Required
    /// when `username` is set. The password never appears in the config or in any log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Extra CA certificate(s), PEM, trusted besides the built-in roots (for a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Connection and command timeout, in seconds.
    #[serde(default = "default_email_timeout")]
    pub timeout_secs: u64,
}

/// `type = "webhook"`: JSON POST of the finding plus a Slack-compatible `text`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// `http://` or `https://` URL.
    pub url: String,
    /// Extra headers, value given inline.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Extra headers whose value is read from a file (first line), for secrets such as
    /// `Authorization = "/etc/mamori/webhook.token"`. Never logged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header_files: BTreeMap<String, PathBuf>,
    /// Whole-request timeout, in seconds.
    #[serde(default = "default_webhook_timeout")]
    pub timeout_secs: u64,
}
