//! The four egress detectors, fed one event at a time in time order.
//!
//! * `egress.new_destination` — a (process/user, destination) pair first seen after the
//!   learning period. Loudest when the web user (or an unknown process: file logs carry
//!   none) contacts it, or when the name looks like the payment gateway, or when it is a
//!   bare IP nobody looked up in DNS.
//! * `egress.checkout_correlated` — sends to a destination fall within `window` seconds
//!   after a checkout more often than chance: a one-sided binomial test against the
//!   base rate p0 (the fraction of time covered by post-checkout windows), with a minimum
//!   effect size. The configured gateway, declared integrations and destinations that
//!   were already checkout-tied while learning (mail, captcha) are expected there.
//! * `egress.beacon` — RITA-style periodicity score over the last 24 h (low priority),
//!   gated on the timing sub-score so checkout-driven (Poisson-like) traffic does not
//!   pass; destinations that were periodic while learning are known services.
//! * `egress.volume` — bytes sent per destination over 24 h and 30 days, against the
//!   learned per-destination maximum (or a fixed floor for destinations new since).
//!
//! All state is in [`DetectorState`], serialisable with serde so the binary can persist
//! it between runs.

use crate::config::{DetectorConfig, Integration};
use crate::rita;
use crate::zeek::ConnRecord;
use chrono::{DateTime, Utc};
use mamori_core::{Finding, Kind, Lang, Severity, tr};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;

const DAY: f64 = 86_400.0;
/// Sends to one destination closer than this are one send (retries, parallel fetches).
const SEND_GAP_S: f64 = 2.0;
/// How often (event time) a destination's beacon score is recomputed.
const BEACON_EVAL_EVERY_S: f64 = 3_600.0;

/// What the detectors know about one destination.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DestState {
    pub first_seen: f64,
    pub last_seen: f64,
    /// Seen during the learning period.
    pub baseline: bool,
    pub conns: u64,
    pub bytes: u64,
    pub ips: BTreeSet<IpAddr>,
    pub ports: BTreeSet<(String, u16)>,
    /// Ever reached without a prior DNS lookup.
    pub direct_ip: bool,
    // checkout correlation
    pub sends: u64,
    pub correlated: u64,
    last_send: f64,
    /// Learned: already checkout-tied while learning (mail, captcha, ...).
    pub expected_checkout: bool,
    // beacon
    beacon_ts: VecDeque<(i64, f64)>,
    last_beacon_eval: f64,
    /// Highest beacon score while learning.
    pub learned_beacon_max: f64,
    /// Learned: periodic while learning (NTP, monitoring, metrics, cron, ...).
    pub known_periodic: bool,
    // volume
    win24: VecDeque<(f64, u64)>,
    sum24: u64,
    days: VecDeque<(i64, u64)>,
    sum30: u64,
    pub learned_max_24h: u64,
    pub learned_bytes: u64,
    // alerts already raised
    pub alerted_corr: bool,
    pub alerted_beacon: bool,
    vol24_armed_below: bool,
    pub alerted_vol30: bool,
}

/// Post-checkout coverage, for the base rate p0.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OrderState {
    pub count: u64,
    pub last: Option<f64>,
    covered_s: f64,
    cover_end: f64,
}

/// Everything the detectors remember. Serialise it to persist learning between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DetectorState {
    pub first_ts: Option<f64>,
    pub last_ts: f64,
    pub learned: bool,
    pub dests: BTreeMap<String, DestState>,
    /// `principal|dest` pairs seen (principal: `user:exe`, or `-` when unknown).
    pub pairs: BTreeSet<String>,
    /// `principal|registered domain` pairs seen (for `new_destination_scope = domain`).
    pub domain_pairs: BTreeSet<String>,
    pub orders: OrderState,
}

/// Per-class counters for the report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DetectStats {
    pub egress_conns: u64,
    pub not_egress: u64,
    pub orders: u64,
    pub learning_complete: bool,
    pub learning_end: Option<String>,
    pub destinations: u64,
    pub baseline_destinations: u64,
    pub new_destination: u64,
    /// New host names under a registered domain already known for the same principal
    /// (not reported with `new_destination_scope = "domain"`).
    pub new_hosts_known_domain: u64,
    pub checkout_correlated: u64,
    pub beacon: u64,
    pub volume: u64,
    /// Conns to the payment gateway (expected; never flagged).
    pub gateway_conns: u64,
    /// Conns to declared integrations (silenced).
    pub declared_conns: u64,
    /// Destinations learned as checkout-tied (expected) / periodic (known services).
    pub expected_checkout: Vec<String>,
    pub known_periodic: Vec<String>,
}

/// Where a connection goes and what we know about how it was named.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name when known, else `ip:port`.
    pub dest: String,
    pub named: bool,
    /// A DNS lookup for this address preceded the connection.
    pub prior_lookup: bool,
}

/// The detector: configuration plus state.
#[derive(Debug, Clone)]
pub struct Detector {
    pub cfg: DetectorConfig,
    pub state: DetectorState,
    pub stats: DetectStats,
    host: String,
    lang: Lang,
}

fn to_time(ts: f64) -> DateTime<Utc> {
    let secs = ts.floor();
    let nanos = ((ts - secs) * 1e9).round().clamp(0.0, 999_999_999.0) as u32;
    DateTime::from_timestamp(secs as i64, nanos).unwrap_or_default()
}

fn rfc3339(ts: f64) -> String {
    to_time(ts).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `ip:port`, with brackets for IPv6.
pub fn ip_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v) => format!("{v}:{port}"),
        IpAddr::V6(v) => format!("[{v}]:{port}"),
    }
}

/// Does `dest` (a name or `ip:port`) or `ip` match a pattern: exact name, parent domain
/// (`example.com` matches `api.example.com`), IP, or `ip:port`?
pub fn matches_pattern(pat: &str, dest: &str, ip: IpAddr, port: u16) -> bool {
    let pat = pat.trim().trim_end_matches('.').to_ascii_lowercase();
    if pat.is_empty() {
        return false;
    }
    if let Ok(p) = pat.parse::<IpAddr>() {
        return p == ip;
    }
    if pat == ip_port(ip, port) {
        return true;
    }
    dest == pat
        || dest
            .strip_suffix(pat.as_str())
            .is_some_and(|h| h.ends_with('.'))
}

/// Public suffixes of more than one label that matter for Japanese shops and common
/// shared hosting (each customer gets its own subdomain there). A compact stand-in for
/// the full Public Suffix List.
const MULTI_SUFFIXES: &[&str] = &[
    "co.jp",
    "ne.jp",
    "or.jp",
    "ac.jp",
    "ad.jp",
    "ed.jp",
    "go.jp",
    "gr.jp",
    "lg.jp",
    "co.uk",
    "org.uk",
    "ac.uk",
    "com.au",
    "net.au",
    "com.cn",
    "com.tw",
    "co.kr",
    "com.sg",
    "com.br",
    "co.nz",
    "co.in",
    // shared hosting / cloud (PSL private section)
    "amazonaws.com",
    "s3.amazonaws.com",
    "cloudfront.net",
    "herokuapp.com",
    "github.io",
    "githubusercontent.com",
    "azurewebsites.net",
    "blob.core.windows.net",
    "appspot.com",
    "web.app",
    "firebaseapp.com",
    "netlify.app",
    "vercel.app",
    "pages.dev",
    "workers.dev",
    "r2.dev",
    "ngrok.io",
    "ngrok-free.app",
    "blogspot.com",
    "glitch.me",
    "repl.co",
    "onrender.com",
    "fly.dev",
    "run.app",
    "cloudfunctions.net",
    "trycloudflare.com",
    "sakura.ne.jp",
    "xsrv.jp",
    "lolipop.jp",
    "heteml.jp",
];

/// The registered domain (eTLD+1) of a host name: `api.shop.co.jp` → `shop.co.jp`,
/// `x.vendor.example` → `vendor.example`, `bucket.s3.amazonaws.com` stays itself.
pub fn registered_domain(name: &str) -> &str {
    let labels: Vec<usize> = std::iter::once(0)
        .chain(name.match_indices('.').map(|(i, _)| i + 1))
        .collect();
    // Longest matching multi-label suffix, else the last label.
    let mut suffix_start = labels.last().copied().unwrap_or(0);
    for &st in &labels {
        if MULTI_SUFFIXES.contains(&&name[st..]) {
            suffix_start = st;
            break;
        }
    }
    // One label more than the suffix.
    match labels.iter().rposition(|&st| st < suffix_start) {
        Some(i) => &name[labels[i]..],
        None => name,
    }
}

/// The part of a name that carries its identity: without a trailing `.example`/TLD.
fn name_core(n: &str) -> &str {
    match n.rfind('.') {
        Some(i) if i > 0 => &n[..i],
        _ => n,
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let c = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + c);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Is `name` a look-alike of `known` (contains it with additions, or is a few edits
/// away)? Equal names and parent/child domains are not look-alikes.
pub fn lookalike(name: &str, known: &str) -> bool {
    if name == known || name.ends_with(&format!(".{known}")) || known.ends_with(&format!(".{name}"))
    {
        return false;
    }
    let (a, b) = (name_core(name), name_core(known));
    if b.len() >= 6 && a.contains(b) {
        return true;
    }
    let d = levenshtein(a, b);
    d > 0 && d <= (b.len() / 6).max(1) && b.len() >= 6
}

/// log of the binomial coefficient via lgamma-free summation of logs (n small) or
/// Stirling (n large).
fn ln_choose(n: u64, k: u64) -> f64 {
    ln_fact(n) - ln_fact(k) - ln_fact(n - k)
}

fn ln_fact(n: u64) -> f64 {
    if n < 64 {
        (2..=n).map(|i| (i as f64).ln()).sum()
    } else {
        let x = n as f64;
        // Stirling series; error < 1e-10 for n >= 64.
        x * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI * x).ln() + 1.0 / (12.0 * x)
            - 1.0 / (360.0 * x * x * x)
    }
}

/// P(X >= k) for X ~ Binomial(n, p).
pub fn binom_tail(n: u64, k: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut sum = 0.0;
    for i in k..=n {
        let t = (ln_choose(n, i) + i as f64 * lp + (n - i) as f64 * lq).exp();
        sum += t;
        if i as f64 > n as f64 * p && t < sum * 1e-12 {
            break;
        }
    }
    sum.min(1.0)
}

impl Detector {
    /// A fresh detector (learning starts at the first event).
    pub fn new(cfg: DetectorConfig, host: &str, lang: Lang) -> Detector {
        Detector::with_state(cfg, DetectorState::default(), host, lang)
    }

    /// A detector resuming from saved state.
    pub fn with_state(cfg: DetectorConfig, state: DetectorState, host: &str, lang: Lang) -> Self {
        Detector {
            cfg,
            state,
            stats: DetectStats::default(),
            host: host.to_string(),
            lang,
        }
    }

    fn learn_end(&self) -> Option<f64> {
        self.state
            .first_ts
            .map(|t| t + self.cfg.learning_days * DAY)
    }

    /// The base rate: fraction of elapsed time that lies within `window` after a checkout.
    pub fn p0(&self, now: f64) -> Option<f64> {
        let first = self.state.first_ts?;
        let elapsed = now - first;
        let o = &self.state.orders;
        if elapsed < DAY || o.count < 10 {
            return None;
        }
        let covered = o.covered_s - (o.cover_end - now).max(0.0);
        Some((covered / elapsed).clamp(1e-4, 1.0))
    }

    /// Record a checkout (order) at `ts`. Call in time order with conns.
    pub fn observe_order(&mut self, ts: f64) {
        let w = self.cfg.checkout_window_s;
        let o = &mut self.state.orders;
        o.count += 1;
        self.stats.orders += 1;
        o.last = Some(o.last.map_or(ts, |l| l.max(ts)));
        let start = ts.max(o.cover_end);
        if ts + w > start {
            o.covered_s += ts + w - start;
        }
        o.cover_end = o.cover_end.max(ts + w);
    }

    fn integration(&self, dest: &str, ip: IpAddr, port: u16) -> Option<&Integration> {
        self.cfg
            .integrations
            .iter()
            .find(|i| matches_pattern(&i.name, dest, ip, port))
    }

    fn is_gateway(&self, dest: &str, ip: IpAddr, port: u16) -> bool {
        self.cfg
            .gateways
            .iter()
            .any(|g| matches_pattern(g, dest, ip, port))
    }

    fn is_egress(&self, c: &ConnRecord) -> bool {
        if c.local_orig == Some(false) || c.local_resp == Some(true) {
            return false;
        }
        match c.resp_h {
            IpAddr::V4(v) => !(v.is_loopback() || v.is_unspecified()),
            IpAddr::V6(v) => !(v.is_loopback() || v.is_unspecified()),
        }
    }

    /// Finish learning: decide what is known periodic and expected after checkouts.
    fn finish_learning(&mut self, now: f64) {
        self.state.learned = true;
        let p0 = self.p0(now);
        let thr = self.cfg.beacon_threshold - 0.15;
        for (name, d) in self.state.dests.iter_mut() {
            d.baseline = true;
            d.known_periodic = d.learned_beacon_max >= thr;
            if let Some(p0) = p0 {
                let frac = d.correlated as f64 / d.sends.max(1) as f64;
                d.expected_checkout = d.correlated >= 3
                    && frac >= 2.0 * p0
                    && binom_tail(d.sends, d.correlated, p0) < 1e-3;
            }
            if d.known_periodic {
                self.stats.known_periodic.push(name.clone());
            }
            if d.expected_checkout {
                self.stats.expected_checkout.push(name.clone());
            }
        }
    }

    /// Is `ts` still in the learning period? Finishes learning when it just ended.
    fn learning_at(&mut self, ts: f64) -> bool {
        match self.learn_end() {
            Some(end) if ts >= end => {
                if !self.state.learned {
                    self.finish_learning(ts);
                }
                false
            }
            _ => !self.state.learned,
        }
    }

    /// Add the bytes a connection sent, learned when it closed (a live source that
    /// sees a flow open, then its byte total at the end: conntrack). The connection is
    /// not counted again: only the volume windows change, and `egress.volume` may fire
    /// (`c.ts` is the time of the report, `c.orig_bytes` the flow's total). A flow whose
    /// destination the detector never saw (it opened before mamori started, or its
    /// opening was lost) is observed as a connection instead.
    pub fn observe_bytes(&mut self, c: &ConnRecord, t: &Target) -> Vec<Finding> {
        if !self.is_egress(c) {
            return Vec::new();
        }
        if !self.state.dests.contains_key(&t.dest) {
            return self.observe_conn(c, t);
        }
        if c.orig_bytes == 0 {
            return Vec::new();
        }
        let ts = c.ts;
        self.state.last_ts = self.state.last_ts.max(ts);
        let learning = self.learning_at(ts);
        if let Some(d) = self.state.dests.get_mut(&t.dest) {
            d.last_seen = d.last_seen.max(ts);
            d.add_bytes(ts, c.orig_bytes, learning);
        }
        if learning {
            return Vec::new();
        }
        let gateway = self.is_gateway(&t.dest, c.resp_h, c.resp_p);
        let integ = self.integration(&t.dest, c.resp_h, c.resp_p).cloned();
        let process = process_json(c);
        self.volume(c, t, gateway, integ.as_ref(), &process)
    }

    /// Feed one connection (in time order). Returns findings it raises.
    pub fn observe_conn(&mut self, c: &ConnRecord, t: &Target) -> Vec<Finding> {
        let mut out = Vec::new();
        if !self.is_egress(c) {
            self.stats.not_egress += 1;
            return out;
        }
        self.stats.egress_conns += 1;
        let ts = c.ts;
        if self.state.first_ts.is_none() {
            self.state.first_ts = Some(ts);
        }
        self.state.last_ts = self.state.last_ts.max(ts);
        let learning = self.learning_at(ts);
        let gateway = self.is_gateway(&t.dest, c.resp_h, c.resp_p);
        let integ = self.integration(&t.dest, c.resp_h, c.resp_p).cloned();
        if gateway {
            self.stats.gateway_conns += 1;
        }
        if integ.is_some() {
            self.stats.declared_conns += 1;
        }
        let principal = match &c.process {
            Some(p) => format!(
                "{}:{}",
                p.user.as_deref().unwrap_or("?"),
                p.exe.as_deref().unwrap_or("?")
            ),
            None => "-".to_string(),
        };
        let pair = format!("{principal}|{}", t.dest);
        let new_pair = self.state.pairs.insert(pair);
        let dom = if t.named {
            registered_domain(&t.dest)
        } else {
            t.dest.as_str()
        };
        let new_domain_pair = self.state.domain_pairs.insert(format!("{principal}|{dom}"));
        let new_dest = !self.state.dests.contains_key(&t.dest);
        let corr_send = self
            .state
            .orders
            .last
            .is_some_and(|o| ts - o >= 0.0 && ts - o <= self.cfg.checkout_window_s);
        let p0 = self.p0(ts);

        // Update destination state.
        let d = self.state.dests.entry(t.dest.clone()).or_default();
        if new_dest {
            d.first_seen = ts;
            d.baseline = learning;
            d.vol24_armed_below = true;
        }
        d.last_seen = ts;
        d.conns += 1;
        d.ips.insert(c.resp_h);
        d.ports.insert((c.proto.clone(), c.resp_p));
        if !t.prior_lookup && !t.named {
            d.direct_ip = true;
        }
        let is_send = ts - d.last_send >= SEND_GAP_S || d.sends == 0;
        if is_send {
            d.sends += 1;
            d.last_send = ts;
            if corr_send {
                d.correlated += 1;
            }
        }
        d.add_bytes(ts, c.orig_bytes, learning);
        // beacon series (last 24 h, integer seconds, distinct)
        let its = ts.floor() as i64;
        if d.beacon_ts.back().is_none_or(|&(l, _)| l != its) {
            d.beacon_ts.push_back((its, c.orig_bytes as f64));
        }
        while let Some(&(t0, _)) = d.beacon_ts.front() {
            if its - t0 >= DAY as i64 {
                d.beacon_ts.pop_front();
            } else {
                break;
            }
        }
        let mut beacon = None;
        if ts - d.last_beacon_eval >= BEACON_EVAL_EVERY_S && d.beacon_ts.len() >= 4 {
            d.last_beacon_eval = ts;
            let (tsl, bl): (Vec<i64>, Vec<f64>) = d.beacon_ts.iter().copied().unzip();
            beacon = rita::score(&tsl, &bl, its - DAY as i64 + 1, its + 1);
            if learning
                && let Some(b) = beacon
                && b.conns >= self.cfg.beacon_min_conns
                && b.ts >= self.cfg.beacon_min_ts
            {
                d.learned_beacon_max = d.learned_beacon_max.max(b.score);
            }
        }
        if learning {
            return out;
        }
        let d = d.clone_light();
        let lang = self.lang;
        let (ip, port) = (c.resp_h, c.resp_p);
        let process = process_json(c);
        let web_user = match &c.process {
            None => true,
            Some(p) => p
                .user
                .as_ref()
                .is_some_and(|u| self.cfg.web_users.iter().any(|w| w == u)),
        };
        let exempt = gateway || integ.is_some();

        // 1. new destination
        let host_scope = self.cfg.new_destination_scope == crate::config::NewDestScope::Host;
        if new_pair && !exempt && !host_scope && !new_domain_pair {
            self.stats.new_hosts_known_domain += 1;
        }
        if new_pair && !exempt && (host_scope || new_domain_pair) {
            let known_elsewhere = !new_dest;
            let look = if t.named {
                self.cfg
                    .gateways
                    .iter()
                    .chain(self.stats.expected_checkout.iter())
                    .find(|k| lookalike(&t.dest, k))
                    .cloned()
            } else {
                None
            };
            let sev = if look.is_some() {
                Severity::Critical
            } else if web_user {
                Severity::High
            } else {
                Severity::Medium
            };
            let dest = &t.dest;
            let mut why = Vec::new();
            if known_elsewhere {
                why.push("destination known, but new for this process/user".to_string());
            } else {
                why.push("never contacted during learning or since".to_string());
            }
            if !t.prior_lookup {
                why.push(if t.named {
                    "no DNS lookup before the connection (name from SNI/Host or an older lookup)"
                        .to_string()
                } else {
                    "direct-to-IP: no DNS lookup named this address".to_string()
                });
            }
            if let Some(k) = &look {
                why.push(format!("name resembles `{k}`"));
            }
            let who = match &c.process {
                Some(p) => format!(
                    "{} ({})",
                    p.exe.as_deref().unwrap_or("?"),
                    p.user.as_deref().unwrap_or("?")
                ),
                None => tr!(lang, "an unknown process", "不明なプロセス"),
            };
            let summary = match (&look, t.named) {
                (Some(k), _) => tr!(
                    lang,
                    "new outbound destination {dest} resembling {k}, contacted by {who}",
                    "決済先 {k} に似た新しい送信先 {dest} への通信 ({who})"
                ),
                (None, false) => tr!(
                    lang,
                    "new outbound destination {dest} (bare IP, no DNS lookup), contacted by {who}",
                    "新しい送信先 {dest} への通信 (DNS 参照なしの IP 直接指定, {who})"
                ),
                (None, true) => tr!(
                    lang,
                    "new outbound destination {dest}, contacted by {who}",
                    "新しい送信先 {dest} への通信 ({who})"
                ),
            };
            let mut f = Finding::new(
                Kind::EgressNewDestination,
                sev,
                to_time(ts),
                &self.host,
                summary,
            );
            f.dest = Some(dest.clone());
            f.ip = Some(ip.to_string());
            f.checklist = vec!["20-1.1".into(), "pci:11.6.1".into()];
            f.evidence = json!({
                "process": process, "web_user": web_user, "ip": ip.to_string(), "port": port,
                "proto": c.proto, "orig_bytes": c.orig_bytes, "named": t.named,
                "prior_dns_lookup": t.prior_lookup, "lookalike_of": look,
                "first_seen": rfc3339(d.first_seen), "why": why,
            });
            self.stats.new_destination += 1;
            out.push(f);
        }

        // 2. checkout correlation
        if corr_send
            && is_send
            && !exempt
            && !d.expected_checkout
            && !d.alerted_corr
            && d.correlated >= self.cfg.checkout_min_sends
            && let Some(p0) = p0
        {
            let frac = d.correlated as f64 / d.sends as f64;
            let pv = binom_tail(d.sends, d.correlated, p0);
            if frac >= self.cfg.checkout_min_fraction && pv < self.cfg.checkout_alpha {
                let dest = &t.dest;
                let (k, n) = (d.correlated, d.sends);
                let w = self.cfg.checkout_window_s;
                let delay = self.state.orders.last.map(|o| ts - o).unwrap_or(0.0);
                let summary = tr!(
                    lang,
                    "outbound sends to {dest} follow checkouts: {k} of {n} within {w:.0} s of an order (chance {p:.1} %, p = {pv:.1e})",
                    "{dest} への送信が注文直後に集中: {n} 回中 {k} 回が注文から {w:.0} 秒以内 (偶然なら {p:.1} %, p = {pv:.1e})",
                    p = p0 * 100.0
                );
                let mut f = Finding::new(
                    Kind::EgressCheckoutCorrelated,
                    Severity::Critical,
                    to_time(ts),
                    &self.host,
                    summary,
                );
                f.dest = Some(dest.clone());
                f.ip = Some(ip.to_string());
                f.checklist = vec!["20-1.1".into(), "pci:11.6.1".into()];
                f.evidence = json!({
                    "process": process, "sends": n, "after_checkout": k, "window_s": w,
                    "base_rate": p0, "p_value": pv, "delay_s": delay,
                    "bytes_total": d.bytes, "first_seen": rfc3339(d.first_seen),
                    "baseline": d.baseline, "ips": d.ips,
                    "why": "sends follow checkouts more often than chance (binomial test against the post-checkout time fraction)",
                });
                self.stats.checkout_correlated += 1;
                if let Some(dm) = self.state.dests.get_mut(&t.dest) {
                    dm.alerted_corr = true;
                }
                out.push(f);
            }
        }

        // 3. beacon
        if let Some(b) = beacon
            && !exempt
            && !d.known_periodic
            && !d.alerted_beacon
            && b.conns >= self.cfg.beacon_min_conns
            && b.ts >= self.cfg.beacon_min_ts
            && b.jitter <= self.cfg.beacon_max_jitter
            && b.score >= self.cfg.beacon_threshold
        {
            let dest = &t.dest;
            let period = b.period_s;
            let jit = b.jitter * 100.0;
            let summary = tr!(
                lang,
                "periodic outbound connections to {dest}: every {period:.0} s (±{jit:.0} % MAD), beacon score {s:.2}",
                "{dest} への周期的な通信: 約 {period:.0} 秒ごと (ばらつき ±{jit:.0} %), ビーコンスコア {s:.2}",
                s = b.score
            );
            let mut f = Finding::new(
                Kind::EgressBeacon,
                Severity::Low,
                to_time(ts),
                &self.host,
                summary,
            );
            f.dest = Some(dest.clone());
            f.ip = Some(ip.to_string());
            f.checklist = vec!["20-1.1".into()];
            f.evidence = json!({
                "process": process, "score": b, "period_s": period, "jitter": b.jitter,
                "conns_24h": b.conns, "first_seen": rfc3339(d.first_seen), "baseline": d.baseline,
                "why": "RITA-style beacon score over the last 24 h (timing, size, histogram, duration)",
            });
            self.stats.beacon += 1;
            if let Some(dm) = self.state.dests.get_mut(&t.dest) {
                dm.alerted_beacon = true;
            }
            out.push(f);
        }

        // 4. volume
        out.extend(self.volume(c, t, gateway, integ.as_ref(), &process));
        out
    }

    /// `egress.volume`: the destination's 24 h and 30 d sums against its thresholds.
    fn volume(
        &mut self,
        c: &ConnRecord,
        t: &Target,
        gateway: bool,
        integ: Option<&Integration>,
        process: &serde_json::Value,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let Some(d) = self.state.dests.get(&t.dest).map(DestState::clone_light) else {
            return out;
        };
        let lang = self.lang;
        let (ts, ip) = (c.ts, c.resp_h);
        let declared = integ.map(|i| {
            json!({"name": i.name, "purpose": i.purpose, "allowed_by": i.allowed_by, "allowed_on": i.allowed_on})
        });
        if !gateway {
            let (thr24, thr30) = if d.baseline {
                let mean_day = d.learned_bytes as f64 / self.cfg.learning_days.max(1.0);
                (
                    ((d.learned_max_24h as f64) * self.cfg.volume_factor)
                        .max(self.cfg.volume_baseline_min_24h as f64) as u64,
                    (mean_day * 30.0 * self.cfg.volume_factor)
                        .max(self.cfg.volume_baseline_min_30d as f64) as u64,
                )
            } else {
                (self.cfg.volume_new_24h, self.cfg.volume_new_30d)
            };
            let mut fire = Vec::new();
            if d.sum24 > thr24 && d.vol24_armed_below {
                fire.push(("24h", d.sum24, thr24));
            }
            if d.sum30 > thr30 && !d.alerted_vol30 {
                fire.push(("30d", d.sum30, thr30));
            }
            if let Some(dm) = self.state.dests.get_mut(&t.dest) {
                if dm.sum24 > thr24 {
                    dm.vol24_armed_below = false;
                } else if dm.sum24 < thr24 / 2 {
                    dm.vol24_armed_below = true;
                }
                if dm.sum30 > thr30 {
                    dm.alerted_vol30 = true;
                }
            }
            for (win, sum, thr) in fire {
                let dest = &t.dest;
                let mb = sum as f64 / 1e6;
                let tmb = thr as f64 / 1e6;
                let summary = tr!(
                    lang,
                    "{mb:.1} MB sent to {dest} in {win} (threshold {tmb:.1} MB)",
                    "{dest} へ {win} で {mb:.1} MB を送信 (しきい値 {tmb:.1} MB)"
                );
                let sev = if d.baseline || integ.is_some() {
                    Severity::Medium
                } else {
                    Severity::High
                };
                let mut f = Finding::new(Kind::EgressVolume, sev, to_time(ts), &self.host, summary);
                f.dest = Some(dest.clone());
                f.ip = Some(ip.to_string());
                f.checklist = vec!["20-1.1".into()];
                f.evidence = json!({
                    "process": process, "window": win, "bytes": sum, "threshold": thr,
                    "conns": d.conns, "baseline": d.baseline, "learned_max_24h": d.learned_max_24h,
                    "direct_ip": d.direct_ip, "declared": declared, "first_seen": rfc3339(d.first_seen),
                    "why": if d.baseline { "more than the learned per-destination volume" } else { "a destination new since learning received more than the floor" },
                });
                self.stats.volume += 1;
                out.push(f);
            }
        }
        out
    }

    /// Close the run: fill summary counters.
    pub fn finish(&mut self) {
        self.stats.learning_complete = self.state.learned;
        self.stats.learning_end = self.learn_end().map(rfc3339);
        self.stats.destinations = self.state.dests.len() as u64;
        self.stats.baseline_destinations =
            self.state.dests.values().filter(|d| d.baseline).count() as u64;
        if self.stats.known_periodic.is_empty() {
            self.stats.known_periodic = self
                .state
                .dests
                .iter()
                .filter(|(_, d)| d.known_periodic)
                .map(|(k, _)| k.clone())
                .collect();
        }
        if self.stats.expected_checkout.is_empty() {
            self.stats.expected_checkout = self
                .state
                .dests
                .iter()
                .filter(|(_, d)| d.expected_checkout)
                .map(|(k, _)| k.clone())
                .collect();
        }
    }
}

/// The `process` evidence of a connection (null when unknown).
fn process_json(c: &ConnRecord) -> serde_json::Value {
    c.process
        .as_ref()
        .map(|p| json!({"pid": p.pid, "exe": p.exe, "uid": p.uid, "user": p.user}))
        .unwrap_or(serde_json::Value::Null)
}

impl DestState {
    /// Count `bytes` sent at `ts` in the totals and the 24 h / 30 day windows.
    fn add_bytes(&mut self, ts: f64, bytes: u64, learning: bool) {
        self.bytes = self.bytes.saturating_add(bytes);
        self.win24.push_back((ts, bytes));
        self.sum24 = self.sum24.saturating_add(bytes);
        while let Some(&(t0, b)) = self.win24.front() {
            if ts - t0 > DAY {
                self.sum24 = self.sum24.saturating_sub(b);
                self.win24.pop_front();
            } else {
                break;
            }
        }
        let day = (ts / DAY).floor() as i64;
        match self.days.back_mut() {
            Some((dd, b)) if *dd == day => *b = b.saturating_add(bytes),
            _ => self.days.push_back((day, bytes)),
        }
        self.sum30 = self.sum30.saturating_add(bytes);
        while let Some(&(d0, b)) = self.days.front() {
            if day - d0 >= 30 {
                self.sum30 = self.sum30.saturating_sub(b);
                self.days.pop_front();
            } else {
                break;
            }
        }
        if learning {
            self.learned_max_24h = self.learned_max_24h.max(self.sum24);
            self.learned_bytes = self.learned_bytes.saturating_add(bytes);
        }
    }

    /// A copy without the (possibly long) time series, for building findings.
    fn clone_light(&self) -> DestState {
        DestState {
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            baseline: self.baseline,
            conns: self.conns,
            bytes: self.bytes,
            ips: self.ips.clone(),
            ports: BTreeSet::new(),
            direct_ip: self.direct_ip,
            sends: self.sends,
            correlated: self.correlated,
            last_send: self.last_send,
            expected_checkout: self.expected_checkout,
            beacon_ts: VecDeque::new(),
            last_beacon_eval: self.last_beacon_eval,
            learned_beacon_max: self.learned_beacon_max,
            known_periodic: self.known_periodic,
            win24: VecDeque::new(),
            sum24: self.sum24,
            days: VecDeque::new(),
            sum30: self.sum30,
            learned_max_24h: self.learned_max_24h,
            learned_bytes: self.learned_bytes,
            alerted_corr: self.alerted_corr,
            alerted_beacon: self.alerted_beacon,
            vol24_armed_below: self.vol24_armed_below,
            alerted_vol30: self.alerted_vol30,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tail_values() {
        assert!((binom_tail(3, 3, 0.1) - 0.001).abs() < 1e-9);
        assert!((binom_tail(10, 0, 0.3) - 1.0).abs() < 1e-12);
        let p = binom_tail(1000, 50, 0.033);
        assert!(p > 1e-4 && p < 0.05, "{p}");
        assert!(binom_tail(100, 40, 0.03) < 1e-20);
    }

    #[test]
    fn lookalikes() {
        assert!(lookalike(
            "api.pay-gateway-secure.example",
            "api.pay-gateway.example"
        ));
        assert!(lookalike(
            "api.pay-gatewey.example",
            "api.pay-gateway.example"
        ));
        assert!(!lookalike(
            "api.pay-gateway.example",
            "api.pay-gateway.example"
        ));
        assert!(!lookalike(
            "x.api.pay-gateway.example",
            "api.pay-gateway.example"
        ));
        assert!(!lookalike(
            "new001.vendor-api.example",
            "api.pay-gateway.example"
        ));
    }

    #[test]
    fn registered_domains() {
        assert_eq!(
            registered_domain("new001.vendor-api.example"),
            "vendor-api.example"
        );
        assert_eq!(registered_domain("api.shop.co.jp"), "shop.co.jp");
        assert_eq!(registered_domain("shop.co.jp"), "shop.co.jp");
        assert_eq!(
            registered_domain("evil.s3.amazonaws.com"),
            "evil.s3.amazonaws.com"
        );
        assert_eq!(
            registered_domain("a.b.evil.herokuapp.com"),
            "evil.herokuapp.com"
        );
        assert_eq!(registered_domain("localhost"), "localhost");
        assert_eq!(registered_domain(""), "");
    }

    #[test]
    fn patterns() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(matches_pattern("example.com", "api.example.com", ip, 443));
        assert!(!matches_pattern("example.com", "badexample.com", ip, 443));
        assert!(matches_pattern("192.0.2.7", "x", ip, 443));
        assert!(matches_pattern("192.0.2.7:443", "x", ip, 443));
    }

    fn conn(ts: f64, bytes: u64) -> ConnRecord {
        ConnRecord {
            ts,
            orig_h: Some("192.0.2.1".parse().unwrap()),
            resp_h: "203.0.113.9".parse().unwrap(),
            resp_p: 443,
            proto: "tcp".into(),
            orig_bytes: bytes,
            resp_bytes: 0,
            conn_state: None,
            local_orig: Some(true),
            local_resp: Some(false),
            host: None,
            process: None,
        }
    }

    #[test]
    fn bytes_at_close_feed_volume_without_counting_a_connection() {
        let cfg = DetectorConfig {
            learning_days: 0.0,
            ..DetectorConfig::default()
        };
        let mut d = Detector::new(cfg, "h", Lang::En);
        let t = Target {
            dest: "203.0.113.9:443".into(),
            named: false,
            prior_lookup: false,
        };
        let f = d.observe_conn(&conn(1_000.0, 0), &t);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, Kind::EgressNewDestination);
        // The flow ends with 2 MB sent: a volume finding, still one connection.
        let f = d.observe_bytes(&conn(1_030.0, 2_000_000), &t);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, Kind::EgressVolume);
        assert_eq!(f[0].evidence["bytes"], 2_000_000);
        let s = &d.state.dests["203.0.113.9:443"];
        assert_eq!((s.conns, s.bytes, s.sends), (1, 2_000_000, 1));
        // No bytes: nothing changes.
        assert!(d.observe_bytes(&conn(1_040.0, 0), &t).is_empty());
        // A flow never seen opening, to an unknown destination: observed as a connection.
        let t2 = Target {
            dest: "203.0.113.10:443".into(),
            named: false,
            prior_lookup: false,
        };
        let mut c = conn(1_050.0, 500);
        c.resp_h = "203.0.113.10".parse().unwrap();
        let f = d.observe_bytes(&c, &t2);
        assert_eq!(f[0].kind, Kind::EgressNewDestination);
        assert_eq!(d.state.dests["203.0.113.10:443"].conns, 1);
    }

    /// Sixteen checkout-tied sends to an affiliate postback over two days (correlation
    /// needs a day and ten orders), then one 2 MB send; no learning period.
    fn affiliate_run(cfg: DetectorConfig) -> (Detector, Vec<Finding>) {
        let mut d = Detector::new(cfg, "h", Lang::En);
        let t = Target {
            dest: "conv.affiliate-net.example".into(),
            named: true,
            prior_lookup: true,
        };
        let mut out = Vec::new();
        for k in 0..16 {
            let order = 10_000.0 + k as f64 * 3.0 * 3_600.0;
            d.observe_order(order);
            let mut c = conn(order + 12.0, 600);
            c.resp_h = "198.51.100.95".parse().unwrap();
            out.extend(d.observe_conn(&c, &t));
        }
        let mut c = conn(10_000.0 + 48.0 * 3_600.0, 2_000_000);
        c.resp_h = "198.51.100.95".parse().unwrap();
        out.extend(d.observe_conn(&c, &t));
        (d, out)
    }

    #[test]
    fn declared_integration_is_silenced_with_who_allowed_it() {
        let base = DetectorConfig {
            learning_days: 0.0,
            ..DetectorConfig::default()
        };
        // Undeclared, the same traffic is new, checkout-tied and a volume alarm.
        let (_, f) = affiliate_run(base.clone());
        let kinds: Vec<Kind> = f.iter().map(|f| f.kind).collect();
        assert!(kinds.contains(&Kind::EgressNewDestination), "{kinds:?}");
        assert!(kinds.contains(&Kind::EgressCheckoutCorrelated), "{kinds:?}");
        assert!(
            f.iter()
                .any(|f| f.kind == Kind::EgressVolume && f.severity == Severity::High),
            "{f:?}"
        );

        let declared = DetectorConfig {
            integrations: vec![Integration {
                name: "affiliate-net.example".into(),
                purpose: "affiliate conversion postback".into(),
                allowed_by: "tanaka (shop owner)".into(),
                allowed_on: Some("2026-12-01".into()),
            }],
            ..base
        };
        let (d, f) = affiliate_run(declared.clone());
        // Silenced: no new-destination, correlation or beacon finding; counted.
        assert!(
            f.iter().all(|f| f.kind == Kind::EgressVolume),
            "{:?}",
            f.iter().map(|f| &f.summary).collect::<Vec<_>>()
        );
        assert_eq!(d.stats.declared_conns, 17);
        // A volume finding still fires, at medium, carrying the declaration.
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, Severity::Medium);
        let e = &f[0].evidence["declared"];
        assert_eq!(e["name"], "affiliate-net.example");
        assert_eq!(e["purpose"], "affiliate conversion postback");
        assert_eq!(e["allowed_by"], "tanaka (shop owner)");
        assert_eq!(e["allowed_on"], "2026-12-01");
        // The allow-list policy lets it through and says who allowed it.
        let p = crate::policy::PolicyInput::from_state(&d.state, &declared);
        let why = &p.allow[&("198.51.100.95".parse().unwrap(), "tcp".to_string(), 443)];
        assert!(
            why.contains("affiliate conversion postback") && why.contains("tanaka (shop owner)"),
            "{why}"
        );
        assert!(crate::policy::render(&p).contains("allowed by tanaka (shop owner)"));
    }
}
