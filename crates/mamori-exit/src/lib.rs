//! mamori-exit: the exit layer — watching what a shop server sends out.
//!
//! A shop server's egress is small and regular: the payment gateway after checkouts,
//! mail, a metrics agent, NTP, package mirrors. What is new, what follows a checkout,
//! what beacons and where bytes go are the signals. This crate reads egress from
//!
//! * files: Zeek `conn.log` (TSV or JSON lines), Zeek `dns.log` to name destinations,
//!   orders (`orders.jsonl`, or an access log whose checkout completions mark orders);
//! * live: conntrack events over netlink (every flow, UDP and short ones included, with
//!   byte totals when they end) joined with the socket tables for process and user
//!   ([`conntrack`]), or a `/proc/net/{tcp,tcp6,udp,udp6}` polling sampler joined with
//!   `/proc/<pid>/fd` socket inodes ([`live`]); [`source`] picks one for `mamori watch`;
//!
//! and runs four detectors ([`detect`]) after a learning period (default 7 days from
//! the first event): `egress.new_destination`, `egress.checkout_correlated`,
//! `egress.beacon` (low priority) and `egress.volume`. [`policy`] renders an nftables
//! allow-list for the web user from what was learned and declared.
//!
//! The binary's entry points:
//!
//! ```no_run
//! use mamori_exit::{analyze, EgressOptions};
//! use mamori_core::Lang;
//! let mut opts = EgressOptions::new("conn.log");
//! opts.dns_log = Some("dns.log".into());
//! opts.orders = Some("orders.jsonl".into());
//! opts.config.detect.gateways = vec!["api.pay-gateway.example".into()];
//! let report = analyze(&opts, "shop-1", Lang::Ja)?;
//! for f in &report.findings {
//!     println!("{}", f.to_json_line());
//! }
//! // Allow-list policy for the web user from what was learned:
//! let script = mamori_exit::policy::render(&report.policy_input(&opts.config));
//! print!("{script}");
//! # Ok::<(), mamori_exit::ExitError>(())
//! ```

pub mod config;
pub mod conntrack;
pub mod detect;
pub mod error;
pub mod live;
pub mod names;
pub mod orders;
pub mod policy;
pub mod rita;
pub mod source;
pub mod zeek;

pub use config::{DetectorConfig, ExitConfig, Integration, LiveSource};
pub use detect::{DetectStats, Detector, DetectorState, Target};
pub use error::ExitError;
pub use zeek::{ConnRecord, DnsRecord, ReadStats};

use mamori_core::{Finding, Lang};
use serde::Serialize;
use std::net::IpAddr;
use std::path::PathBuf;

/// What `mamori egress` analyses. Only `conn_log` is required; everything else has a
/// default (no config file needed).
#[derive(Debug, Clone, Default)]
pub struct EgressOptions {
    /// Zeek conn.log (TSV with headers, or JSON lines).
    pub conn_log: PathBuf,
    /// Zeek dns.log, to name destinations and spot direct-to-IP connections.
    pub dns_log: Option<PathBuf>,
    /// `orders.jsonl` (`{"ts": epoch}` or `{"time": RFC 3339}` per line).
    pub orders: Option<PathBuf>,
    /// Or an access log whose checkout completions mark orders.
    pub access_log: Option<PathBuf>,
    /// Thresholds, learning period, gateways, declared integrations.
    pub config: ExitConfig,
    /// Resume from saved detector state (learning kept across runs).
    pub state: Option<DetectorState>,
}

impl EgressOptions {
    /// Options with defaults for one conn.log.
    pub fn new(conn_log: impl Into<PathBuf>) -> EgressOptions {
        EgressOptions {
            conn_log: conn_log.into(),
            ..Default::default()
        }
    }
}

/// Counts for the report (`--json` prints findings only; the binary may print these
/// to stderr or in the human report).
#[derive(Debug, Clone, Default, Serialize)]
pub struct EgressStats {
    /// conn.log records read.
    pub conns: u64,
    pub dns_records: u64,
    /// Lines skipped (truncated, bad fields), per file.
    pub skipped_lines: u64,
    pub conn_skipped: u64,
    pub dns_skipped: u64,
    pub orders_skipped: u64,
    /// First skipped lines of the conn.log: (line, reason).
    pub skip_examples: Vec<(usize, String)>,
    pub detect: DetectStats,
}

/// One destination as learned (for the policy and the human report).
#[derive(Debug, Clone, Serialize)]
pub struct DestSummary {
    pub dest: String,
    pub ips: Vec<IpAddr>,
    pub ports: Vec<(String, u16)>,
    pub baseline: bool,
    pub conns: u64,
    pub bytes: u64,
    pub first_seen: f64,
}

/// The result of [`analyze`].
#[derive(Debug, Clone)]
pub struct EgressReport {
    /// Findings in time order.
    pub findings: Vec<Finding>,
    pub stats: EgressStats,
    /// Detector state after the run (persist it to keep learning).
    pub state: DetectorState,
}

impl EgressReport {
    /// Destinations known after the run.
    pub fn destinations(&self) -> Vec<DestSummary> {
        self.state
            .dests
            .iter()
            .map(|(k, d)| DestSummary {
                dest: k.clone(),
                ips: d.ips.iter().copied().collect(),
                ports: d.ports.iter().cloned().collect(),
                baseline: d.baseline,
                conns: d.conns,
                bytes: d.bytes,
                first_seen: d.first_seen,
            })
            .collect()
    }

    /// The allow-list input: baseline destinations (learned) plus declared integrations
    /// and gateways seen in the data; destinations first seen after learning are left
    /// out (review them, then declare them).
    pub fn policy_input(&self, cfg: &ExitConfig) -> policy::PolicyInput {
        policy::PolicyInput::from_state(&self.state, &cfg.detect)
    }
}

/// Analyse egress files: parse, name, merge with orders in time order, detect.
pub fn analyze(opts: &EgressOptions, host: &str, lang: Lang) -> Result<EgressReport, ExitError> {
    opts.config.validate()?;
    let (mut conns, cst) = zeek::read_conn_log(&opts.conn_log)?;
    let (dns, dst) = match &opts.dns_log {
        Some(p) => zeek::read_dns_log(p)?,
        None => (Vec::new(), ReadStats::default()),
    };
    let orders = match (&opts.orders, &opts.access_log) {
        (Some(p), _) => orders::read_orders_jsonl(p)?,
        (None, Some(p)) => {
            let pats: Vec<String> = if opts.config.checkout_paths.is_empty() {
                orders::DEFAULT_CHECKOUT_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else {
                opts.config.checkout_paths.clone()
            };
            orders::read_access_log(p, &pats)?
        }
        (None, None) => orders::Orders::default(),
    };
    let idx = names::NameIndex::new(&dns);
    conns.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    let mut det = Detector::with_state(
        opts.config.detect.clone(),
        opts.state.clone().unwrap_or_default(),
        host,
        lang,
    );
    let findings = run(&mut det, &conns, &orders.times, &idx);
    det.finish();
    let stats = EgressStats {
        conns: cst.records as u64,
        dns_records: dst.records as u64,
        skipped_lines: (cst.skipped + dst.skipped + orders.skipped) as u64,
        conn_skipped: cst.skipped as u64,
        dns_skipped: dst.skipped as u64,
        orders_skipped: orders.skipped as u64,
        skip_examples: cst.skip_examples,
        detect: det.stats.clone(),
    };
    Ok(EgressReport {
        findings,
        stats,
        state: det.state,
    })
}

/// How a connection's destination is named: SNI/Host column, else the DNS answer.
pub fn target_of(c: &ConnRecord, idx: &names::NameIndex) -> Target {
    let looked = idx.name_at(c.resp_h, c.ts);
    match (&c.host, looked) {
        (Some(h), l) => Target {
            dest: h.clone(),
            named: true,
            prior_lookup: l.is_some_and(|(_, prior)| prior),
        },
        (None, Some((n, prior))) => Target {
            dest: n.to_string(),
            named: true,
            prior_lookup: prior,
        },
        (None, None) => Target {
            dest: detect::ip_port(c.resp_h, c.resp_p),
            named: false,
            prior_lookup: false,
        },
    }
}

/// Merge sorted conns and orders in time order through the detector.
pub fn run(
    det: &mut Detector,
    conns: &[ConnRecord],
    orders: &[f64],
    idx: &names::NameIndex,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut oi = 0;
    for c in conns {
        while oi < orders.len() && orders[oi] <= c.ts {
            det.observe_order(orders[oi]);
            oi += 1;
        }
        let t = target_of(c, idx);
        out.extend(det.observe_conn(c, &t));
    }
    for &o in &orders[oi..] {
        det.observe_order(o);
    }
    out
}
