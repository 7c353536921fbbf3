//! Configuration: sensible defaults with no file at all; an optional [`ExitConfig`]
//! (the `[egress]` table of `mamori.toml`, or a file of its own) refines them.

use serde::{Deserialize, Serialize};

/// An outbound integration the operator allowed: it is never reported as new,
/// periodic or checkout-tied, and the record of who allowed it travels in evidence
/// (volume findings on it still fire, at medium, carrying this record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Integration {
    /// Host name (parent domains match subdomains), IP, or `ip:port`.
    pub name: String,
    /// What it is for, e.g. "affiliate conversion postback".
    #[serde(default)]
    pub purpose: String,
    /// Who allowed it, e.g. "tanaka (shop owner)".
    #[serde(default)]
    pub allowed_by: String,
    /// When, free text or a date.
    #[serde(default)]
    pub allowed_on: Option<String>,
}

/// What makes a destination "new" for `egress.new_destination`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NewDestScope {
    /// A registered domain (eTLD+1) not seen before for this process/user; new hosts
    /// under a known domain are counted, not reported (shared hosting such as
    /// `*.s3.amazonaws.com` counts each customer as its own domain).
    #[default]
    Domain,
    /// Every host name not seen before.
    Host,
}

/// Detector thresholds. The defaults are the ones measured in `docs/exit.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Learning period, days from the first event's time.
    pub learning_days: f64,
    /// Payment gateway host names (or IPs): expected after checkouts, never flagged.
    pub gateways: Vec<String>,
    /// Declared integrations.
    pub integrations: Vec<Integration>,
    /// `domain` (default) or `host`: see [`NewDestScope`].
    pub new_destination_scope: NewDestScope,
    /// Users whose outbound connections matter most (PHP / web server users).
    pub web_users: Vec<String>,
    /// A send within this many seconds after a checkout counts as following it.
    pub checkout_window_s: f64,
    /// Significance level of the checkout-correlation test.
    pub checkout_alpha: f64,
    /// At least this many sends after checkouts before reporting.
    pub checkout_min_sends: u64,
    /// At least this fraction of a destination's sends follow checkouts.
    pub checkout_min_fraction: f64,
    /// Beacon score (0..1) at or above which a destination is reported.
    pub beacon_threshold: f64,
    /// Minimum timing sub-score (regular intervals), robust to ±30 % jitter.
    pub beacon_min_ts: f64,
    /// Maximum interval dispersion (MAD / median); uniform ±30 % jitter gives ≈ 0.15.
    pub beacon_max_jitter: f64,
    /// Minimum connections in the 24 h window.
    pub beacon_min_conns: usize,
    /// Bytes sent in 24 h to a destination new since learning that are reported.
    pub volume_new_24h: u64,
    /// Bytes sent in 30 days to a destination new since learning that are reported.
    pub volume_new_30d: u64,
    /// Baseline destinations: report above this multiple of the learned volume.
    pub volume_factor: f64,
    /// Baseline destinations: never report below these floors.
    pub volume_baseline_min_24h: u64,
    pub volume_baseline_min_30d: u64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            learning_days: 7.0,
            gateways: Vec::new(),
            integrations: Vec::new(),
            new_destination_scope: NewDestScope::Domain,
            web_users: ["www-data", "apache", "nginx", "http", "php-fpm", "nobody"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            checkout_window_s: 60.0,
            checkout_alpha: 1e-4,
            checkout_min_sends: 3,
            checkout_min_fraction: 0.25,
            beacon_threshold: 0.7,
            beacon_min_ts: 0.8,
            beacon_max_jitter: 0.3,
            beacon_min_conns: 12,
            volume_new_24h: 1_000_000,
            volume_new_30d: 10_000_000,
            volume_factor: 4.0,
            volume_baseline_min_24h: 5_000_000,
            volume_baseline_min_30d: 50_000_000,
        }
    }
}

/// Where `mamori watch` takes live egress from (`live_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LiveSource {
    /// conntrack events when the netlink socket opens (CAP_NET_ADMIN), else /proc polling.
    #[default]
    Auto,
    /// conntrack events (with a /proc sweep beside them); watch refuses to start without.
    Conntrack,
    /// /proc polling only.
    Proc,
}

impl LiveSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveSource::Auto => "auto",
            LiveSource::Conntrack => "conntrack",
            LiveSource::Proc => "proc",
        }
    }
}

impl<'de> Deserialize<'de> for LiveSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Hand-written so a typo names the setting and the allowed values.
        let s = String::deserialize(d)?;
        match s.as_str() {
            "auto" => Ok(LiveSource::Auto),
            "conntrack" => Ok(LiveSource::Conntrack),
            "proc" => Ok(LiveSource::Proc),
            other => Err(serde::de::Error::custom(format!(
                "live_source = {other:?} is not a live source; use \"auto\", \"conntrack\" or \"proc\""
            ))),
        }
    }
}

/// The optional configuration file form (`[egress]` in `mamori.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExitConfig {
    #[serde(flatten)]
    pub detect: DetectorConfig,
    /// Access-log request patterns marking checkout completions (`/path` prefix or
    /// `METHOD /path`); empty = [`crate::orders::DEFAULT_CHECKOUT_PATHS`].
    pub checkout_paths: Vec<String>,
    /// `mamori watch` samples this server's outbound connections live (/proc socket
    /// tables, once a second, with the owning process and user).
    pub live: bool,
    /// Sampling interval of the live source, in milliseconds (≥ 100): the /proc poll,
    /// and with conntrack the /proc sweep that catches what the events did not report.
    pub live_interval_ms: u64,
    /// `auto` (default: conntrack when it can be opened, else /proc), `conntrack` or
    /// `proc`.
    pub live_source: LiveSource,
    /// Let `mamori watch` turn on `net.netfilter.nf_conntrack_acct` (per-flow byte
    /// counters) when it is off. Off by default: mamori does not change host sysctls
    /// unless told to; without accounting the conntrack source reports no bytes.
    pub live_enable_acct: bool,
}

impl Default for ExitConfig {
    fn default() -> Self {
        ExitConfig {
            detect: DetectorConfig::default(),
            checkout_paths: Vec::new(),
            live: false,
            live_interval_ms: 1000,
            live_source: LiveSource::Auto,
            live_enable_acct: false,
        }
    }
}

impl ExitConfig {
    /// Parse from TOML text (the `[egress]` table's contents).
    pub fn from_toml(text: &str) -> Result<ExitConfig, crate::ExitError> {
        let c: ExitConfig =
            toml::from_str(text).map_err(|e| crate::ExitError::Config(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Reject values that cannot work.
    pub fn validate(&self) -> Result<(), crate::ExitError> {
        let d = &self.detect;
        let bad = |m: &str| Err(crate::ExitError::Config(m.to_string()));
        if self.live_interval_ms < 100 {
            return bad("live_interval_ms must be >= 100");
        }
        if !(d.learning_days.is_finite() && d.learning_days >= 0.0) {
            return bad("learning_days must be >= 0");
        }
        if !(d.checkout_window_s.is_finite() && d.checkout_window_s > 0.0) {
            return bad("checkout_window_s must be > 0");
        }
        if !(d.checkout_alpha > 0.0 && d.checkout_alpha < 1.0) {
            return bad("checkout_alpha must be in (0, 1)");
        }
        if !(0.0..=1.0).contains(&d.beacon_threshold) || !(0.0..=1.0).contains(&d.beacon_min_ts) {
            return bad("beacon_threshold and beacon_min_ts must be in [0, 1]");
        }
        if !(d.volume_factor.is_finite() && d.volume_factor >= 1.0) {
            return bad("volume_factor must be >= 1");
        }
        if d.integrations.iter().any(|i| i.name.trim().is_empty()) {
            return bad("every integration needs a name");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_and_unknown_fields() {
        let c = ExitConfig::from_toml(
            r#"
learning_days = 3
gateways = ["api.pay-gateway.example"]
[[integrations]]
name = "conv.affiliate-net.example"
purpose = "affiliate conversion postback"
allowed_by = "tanaka"
"#,
        )
        .unwrap();
        assert_eq!(c.detect.learning_days, 3.0);
        assert_eq!(c.detect.integrations[0].allowed_by, "tanaka");
        assert_eq!(c.detect.checkout_window_s, 60.0);
        assert!(ExitConfig::from_toml("learnin_days = 3").is_err());
        assert!(ExitConfig::from_toml("volume_factor = 0.5").is_err());
        assert!(ExitConfig::from_toml("").is_ok());
    }

    #[test]
    fn live_source_is_checked_by_name() {
        let c =
            ExitConfig::from_toml("live_source = \"conntrack\"\nlive_enable_acct = true").unwrap();
        assert_eq!(c.live_source, LiveSource::Conntrack);
        assert!(c.live_enable_acct);
        assert_eq!(ExitConfig::default().live_source, LiveSource::Auto);
        let e = ExitConfig::from_toml("live_source = \"ebpf\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("live_source") && e.contains("\"proc\""), "{e}");
        // Round trip through TOML (the binary re-serialises the [exit] table).
        let t = toml::to_string(&c).unwrap();
        assert_eq!(ExitConfig::from_toml(&t).unwrap(), c);
    }
}
