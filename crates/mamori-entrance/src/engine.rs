//! Behaviour over time, replayed by event time (log timestamps, never the wall clock).
//!
//! Per address the engine keeps a small record (first/last seen, asset loads, login and
//! payment outcomes, signature families, probe bursts) for `memory_days`; per prefix
//! (IPv4 /24 and /16, IPv6 /64, /48 and /32) it counts campaign members and
//! benign-looking browsers, so a campaign spread over one network is grouped. Login
//! failures are judged 15 minutes later (a success in between means a typo, not an
//! attack). Aggregate episodes (credential stuffing, password spraying, card testing, the
//! slow campaign) are findings whose `ips` list grows as members are confirmed.

use crate::block::{self, BlockEntry};
use crate::classify::{Classifier, Family, Hit};
use crate::config::EntranceConfig;
use crate::decode::normalize;
use crate::parse::Request;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use mamori_core::{Finding, Kind, Lang, Severity, tr};
use serde_json::json;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

mod snapshot;
pub(crate) use snapshot::Snapshot;
pub use snapshot::SnapshotCounts;

type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;
type Set<K> = HashSet<K, foldhash::fast::FixedState>;

const RESOLVE_SECS: i64 = 15 * 60;
const FOLLOW_SECS: i64 = 10;
const MEMBER_DELAY: i64 = 10 * 60;
const BURST_SECS: i64 = 120;
const BURST_PROBES: u16 = 3;
const SCANNER_PROBES: u16 = 20;
const POPULAR_PROBE_IPS: u16 = 3;

// Technique bits beyond the nine families.
const T_ADMIN_FAIL: u32 = 1 << 10;
const T_ADMIN_NOAUTH: u32 = 1 << 11;
const T_UNKNOWN_404: u32 = 1 << 12;
const T_NO_ASSETS_LOGIN: u32 = 1 << 13;
const T_CUST_FAIL: u32 = 1 << 14;
const T_PAY_FAIL: u32 = 1 << 15;
const T_ADMIN_SUCCESS: u32 = 1 << 16;
const T_SCAN_BURST: u32 = 1 << 17;

fn technique_names(bits: u32) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Family::ALL
        .iter()
        .filter(|f| bits & u32::from(f.bit()) != 0)
        .map(|f| f.as_str())
        .collect();
    for (b, n) in [
        (T_ADMIN_FAIL, "admin_login_failure"),
        (T_ADMIN_NOAUTH, "admin_area_without_login"),
        (T_UNKNOWN_404, "unknown_path_404"),
        (T_NO_ASSETS_LOGIN, "login_without_assets"),
        (T_CUST_FAIL, "customer_login_failure"),
        (T_PAY_FAIL, "payment_failure"),
        (T_ADMIN_SUCCESS, "admin_login_success"),
        (T_SCAN_BURST, "scan_burst"),
    ] {
        if bits & b != 0 {
            v.push(n);
        }
    }
    v
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct IpState {
    first: i64,
    last: i64,
    lines: u32,
    assets: u32,
    techniques: u32,
    /// Families already reported as `attack.request` (bitmask) and where.
    reported: u16,
    /// Indices of this address's `attack.request` findings (to count repeats); not
    /// persisted: handed-out findings are not kept across a restart.
    #[serde(skip)]
    req_findings: Vec<(u16, u32)>,
    hits: u32,
    targeted: bool,
    weak: bool,
    untargeted: bool,
    tool_ua: bool,
    claimed_bot: bool,
    member: bool,
    member_eval_pending: bool,
    admin_auth: bool,
    /// Recent confirmed login successes `(time, admin)`, newest last (a ring: logs may be
    /// out of order, so the newest by time is not enough).
    oks: [(i64, bool); 4],
    /// A 3xx answer to a login POST not yet confirmed by the follow-up request.
    cand302: Option<(i64, bool)>,
    fail_win: (i64, u32),
    bruteforce_reported: bool,
    cardtest: bool,
    probe_win: (i64, u16),
    scanner_reported: bool,
    uas: [u32; 4],
    admin_fails: u32,
    cust_fails: u32,
    blocked_until: i64,
}

impl IpState {
    /// A login success within `RESOLVE_SECS` of `t` (either side: clocks and NAT mix).
    fn ok_near(&self, t: i64, admin: bool) -> bool {
        self.oks
            .iter()
            .any(|(s, a)| *s != 0 && *a == admin && (*s - t).abs() <= RESOLVE_SECS)
    }
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct PrefixState {
    members: u32,
    browsers: u32,
    /// Event time of the last member or browser counted (prefixes without members are
    /// forgotten after `memory_days`, like addresses).
    last: i64,
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
enum Pending {
    /// A failed login at `t` (admin?) to judge at `t + RESOLVE_SECS`.
    Fail { t: i64, ip: IpAddr, admin: bool },
    /// A 3xx login answer at `t`: no follow-up within `FOLLOW_SECS` means failure.
    Cand { t: i64, ip: IpAddr },
    /// Decide campaign membership once a burst would have shown.
    Member { ip: IpAddr },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EpKind {
    Stuffing,
    Spraying,
    CardTesting,
    Campaign,
}

#[derive(Debug)]
struct Episode {
    kind: EpKind,
    finding: usize,
    start: i64,
    last: i64,
    members: Vec<IpAddr>,
    member_set: Set<IpAddr>,
    techniques: Map<&'static str, u32>,
    prefixes: Map<String, u32>,
    escalated: bool,
    reasons: Vec<std::borrow::Cow<'static, str>>,
}

/// Statistics of the engine, returned in the report.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct EngineStats {
    pub requests: u64,
    pub tracked_ips_peak: usize,
    pub evicted_ips: u64,
    pub out_of_order: u64,
    pub blocks_skipped_allow_listed: u64,
    pub blocks_skipped_shared: u64,
    pub blocks_skipped_verified_bot: u64,
}

/// Advice for an address that must not be banned (shared by many people).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Advice {
    pub ip: String,
    pub reason: String,
    pub advice: String,
}

pub(crate) struct Engine {
    cfg: std::sync::Arc<EntranceConfig>,
    host: String,
    lang: Lang,
    cls: Classifier,
    ips: Map<IpAddr, IpState>,
    prefixes: Map<PrefixKey, PrefixState>,
    known_paths: Set<u64>,
    probe_pop: Map<u64, u16>,
    pay: Map<(IpAddr, u32), (i64, u32, u32)>,
    pub findings: Vec<Finding>,
    pending: VecDeque<(i64, Pending)>,
    now: i64,
    cust_window: VecDeque<(i64, IpAddr)>,
    admin_window: VecDeque<(i64, IpAddr)>,
    last_stuff_check: i64,
    last_spray_check: i64,
    episodes: Vec<Episode>,
    active: [Option<usize>; 4],
    campaign_recent: VecDeque<(i64, IpAddr)>,
    campaign_techs: u32,
    blocks: Map<IpNet, (i64, usize)>,
    pub stats: EngineStats,
    pub advice: Vec<Advice>,
    block_enabled: bool,
    verifier: Option<std::sync::Arc<dyn block::BotVerifier>>,
    verified: Map<IpAddr, bool>,
    /// Live mode: findings before this index were handed out by `take_new`.
    emitted: usize,
    /// Live mode: members of each episode when its finding was last handed out.
    episode_reported: Vec<usize>,
    dec: Vec<u8>,
    tmp: Vec<u8>,
    hasher: foldhash::fast::FixedState,
    last_sweep: i64,
}

fn ts(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or_default()
}

fn rfc(t: i64) -> String {
    ts(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A network prefix the campaign memory counts by: (level, the prefix's bits
/// right-aligned). Levels are [`LEVELS`] indices.
pub(crate) type PrefixKey = (u8, u64);

/// One prefix level: IPv6?, prefix length, and the campaign members a prefix of this
/// level must hold before a weak-signal address inside it joins (narrower = fewer: one
/// IPv6 /64 is one subscriber, one IPv4 /24 usually one hosting customer or office).
struct Level {
    v6: bool,
    len: u8,
    min_members: u32,
    why: &'static str,
}

const LEVELS: [Level; 5] = [
    Level {
        v6: false,
        len: 24,
        min_members: 2,
        why: "prefix_of_members_v4_24",
    },
    Level {
        v6: false,
        len: 16,
        min_members: 3,
        why: "prefix_of_members_v4_16",
    },
    Level {
        v6: true,
        len: 64,
        min_members: 1,
        why: "prefix_of_members_v6_64",
    },
    Level {
        v6: true,
        len: 48,
        min_members: 2,
        why: "prefix_of_members_v6_48",
    },
    Level {
        v6: true,
        len: 32,
        min_members: 3,
        why: "prefix_of_members_v6_32",
    },
];

/// The prefixes of `ip` the campaign memory counts by, narrowest first.
fn prefix_keys(ip: IpAddr) -> impl Iterator<Item = PrefixKey> {
    LEVELS.iter().enumerate().filter_map(move |(i, l)| {
        let bits = match ip {
            IpAddr::V4(a) if !l.v6 => u64::from(u32::from(a) >> (32 - l.len)),
            IpAddr::V6(a) if l.v6 => (u128::from(a) >> (128 - l.len)) as u64,
            _ => return None,
        };
        Some((i as u8, bits))
    })
}

/// A prefix key written as a network (`198.51.100.0/24`, `2001:db8:1::/48`).
fn prefix_name(k: PrefixKey) -> String {
    let Some(l) = LEVELS.get(usize::from(k.0)) else {
        return String::new();
    };
    if l.v6 {
        let a = std::net::Ipv6Addr::from(u128::from(k.1) << (128 - l.len));
        format!("{a}/{}", l.len)
    } else {
        let a = std::net::Ipv4Addr::from((k.1 as u32) << (32 - l.len));
        format!("{a}/{}", l.len)
    }
}

fn is_static(path: &[u8]) -> bool {
    const EXT: &[&[u8]] = &[
        b".css", b".js", b".png", b".jpg", b".jpeg", b".gif", b".svg", b".ico", b".woff",
        b".woff2", b".webp", b".ttf", b".map", b".avif",
    ];
    EXT.iter().any(|e| path.ends_with(e))
}

/// 404s every site sees from real browsers and crawlers.
fn benign_404(path: &[u8]) -> bool {
    const P: &[&[u8]] = &[
        b"/favicon",
        b"/apple-touch-icon",
        b"/robots.txt",
        b"/sitemap",
        b"/ads.txt",
        b"/app-ads.txt",
        b"/.well-known/",
        b"/browserconfig.xml",
        b"/manifest.json",
        b"/site.webmanifest",
        b"/humans.txt",
        b"/crossdomain.xml",
        b"/sw.js",
    ];
    P.iter().any(|p| path.starts_with(p))
}

fn starts_ci(hay: &[u8], prefixes: &[String]) -> bool {
    prefixes.iter().any(|p| {
        let p = p.as_bytes();
        hay.len() >= p.len() && hay[..p.len()].eq_ignore_ascii_case(p)
    })
}

fn trunc(s: &[u8], n: usize) -> String {
    let s = String::from_utf8_lossy(&s[..s.len().min(n)]).into_owned();
    mamori_core::pan::mask_pans(&s).into_owned()
}

impl Engine {
    pub fn new(
        cfg: std::sync::Arc<EntranceConfig>,
        host: &str,
        lang: Lang,
        block_enabled: bool,
        verifier: Option<std::sync::Arc<dyn block::BotVerifier>>,
    ) -> Self {
        Engine {
            cfg,
            host: host.to_string(),
            lang,
            cls: Classifier::new(),
            ips: Map::default(),
            prefixes: Map::default(),
            known_paths: Set::default(),
            probe_pop: Map::default(),
            pay: Map::default(),
            findings: Vec::new(),
            pending: VecDeque::new(),
            now: i64::MIN,
            cust_window: VecDeque::new(),
            admin_window: VecDeque::new(),
            last_stuff_check: i64::MIN,
            last_spray_check: i64::MIN,
            episodes: Vec::new(),
            active: [None; 4],
            campaign_recent: VecDeque::new(),
            campaign_techs: 0,
            blocks: Map::default(),
            stats: EngineStats::default(),
            advice: Vec::new(),
            block_enabled,
            verifier,
            verified: Map::default(),
            emitted: 0,
            episode_reported: Vec::new(),
            dec: Vec::with_capacity(256),
            tmp: Vec::with_capacity(256),
            hasher: foldhash::fast::FixedState::with_seed(0x6d61_6d6f_7269),
            last_sweep: i64::MIN,
        }
    }

    fn h(&self, b: &[u8]) -> u64 {
        self.hasher.hash_one(b)
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        self.cfg.allow.iter().any(|n| n.contains(&ip))
    }

    /// Path shape for "was this ever served": lowercase, no query, digit runs → `0`.
    fn path_key(&self, path: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        let mut prev_digit = false;
        for &c in path {
            if c.is_ascii_digit() {
                if !prev_digit {
                    h.write_u8(b'0');
                }
                prev_digit = true;
            } else {
                h.write_u8(c);
                prev_digit = false;
            }
        }
        h.finish()
    }

    pub fn observe(&mut self, r: &Request<'_>) {
        self.stats.requests += 1;
        let t = r.time;
        if t < self.now {
            self.stats.out_of_order += 1;
        } else {
            self.now = t;
            self.run_pending(t);
            if self.last_sweep == i64::MIN {
                self.last_sweep = t;
            } else if t - self.last_sweep > 3600 {
                self.last_sweep = t;
                self.maintenance();
            }
        }
        let now = self.now;
        let ip = r.ip;
        normalize(r.target, &mut self.dec, &mut self.tmp);
        let dec = std::mem::take(&mut self.dec);
        let path_end = memchr::memchr(b'?', &dec).unwrap_or(dec.len());
        let path = &dec[..path_end];
        let ua_hash = (self.h(r.user_agent) & 0xffff_ffff) as u32;
        let is_new = !self.ips.contains_key(&ip);
        let st = self.ips.entry(ip).or_default();
        if is_new {
            st.first = t;
            st.tool_ua = self.cls.tool_ua(r.user_agent);
            st.claimed_bot = block::claimed_bot(r.user_agent).is_some();
        }
        st.last = st.last.max(t);
        st.lines = st.lines.saturating_add(1);
        if !st.uas.contains(&ua_hash)
            && let Some(slot) = st.uas.iter_mut().find(|u| **u == 0)
        {
            *slot = ua_hash;
        }
        let get = r.method == b"GET" || r.method == b"HEAD";
        let post = r.method == b"POST";
        let ok = (200..400).contains(&r.status);

        // Follow-up of a 3xx login answer: back to the login page = failure.
        if let Some((t0, admin)) = st.cand302
            && t - t0 <= FOLLOW_SECS
            && t >= t0
        {
            let to_login = get
                && (starts_ci(path, &self.cfg.customer_login_paths)
                    || starts_ci(path, &self.cfg.admin_login_paths));
            if !is_static(path) {
                st.cand302 = None;
                if to_login {
                    self.pending
                        .push_back((t0 + RESOLVE_SECS, Pending::Fail { t: t0, ip, admin }));
                    self.note_fail(ip, t0, admin);
                } else {
                    self.login_success(ip, t0, admin);
                }
            }
        }
        let Some(st) = self.ips.get_mut(&ip) else {
            self.dec = dec;
            return;
        };

        // Static assets: the mark of a real browser.
        if is_static(path) && get && ok {
            if st.assets == 0 && !st.tool_ua {
                for pk in prefix_keys(ip) {
                    let p = self.prefixes.entry(pk).or_default();
                    p.browsers += 1;
                    p.last = p.last.max(t);
                }
            }
            let st = self.ips.get_mut(&ip).map(|s| {
                s.assets = s.assets.saturating_add(1);
            });
            let _ = st;
            if ok {
                let k = self.path_key(path);
                if self.known_paths.len() < 200_000 {
                    self.known_paths.insert(k);
                }
            }
            // Static files can still be web shells or probes (`/x.php.jpg` is not, `.php` is
            // not static): nothing more to do.
            self.dec = dec;
            return;
        }

        // Signatures.
        let hit = self.cls.classify(r.method, &dec, r.status, r.user_agent);
        let (member, targeted) = (st.member, st.targeted);
        let known = {
            let k = self.path_key(path);
            if ok && hit.is_none() && !member && !targeted {
                if self.known_paths.len() < 200_000 {
                    self.known_paths.insert(k);
                }
                true
            } else {
                self.known_paths.contains(&k)
            }
        };
        if let Some(h) = hit {
            self.on_hit(ip, r, h, path);
        } else if r.status == 404 && !known && !benign_404(path) {
            if let Some(st) = self.ips.get_mut(&ip)
                && !st.claimed_bot
            {
                st.weak = true;
                st.techniques |= T_UNKNOWN_404;
            }
            self.probe_tick(ip, t);
            self.schedule_member(ip, t);
        }

        // Administration area without a login.
        let admin_area = starts_ci(path, &self.cfg.admin_prefixes);
        let admin_login = starts_ci(path, &self.cfg.admin_login_paths);
        if admin_area
            && !admin_login
            && get
            && (300..400).contains(&r.status)
            && let Some(st) = self.ips.get_mut(&ip)
            && !st.admin_auth
        {
            st.weak = true;
            st.techniques |= T_ADMIN_NOAUTH;
            self.schedule_member(ip, t);
        }

        // Logins.
        let cust_login = starts_ci(path, &self.cfg.customer_login_paths);
        if post && (admin_login || cust_login) && r.status != 404 {
            let admin = admin_login;
            if let Some(st) = self.ips.get_mut(&ip)
                && st.assets == 0
                && !st.tool_ua
            {
                st.techniques |= T_NO_ASSETS_LOGIN;
            }
            if (300..400).contains(&r.status) {
                if let Some(st) = self.ips.get_mut(&ip) {
                    st.cand302 = Some((t, admin));
                }
                self.pending
                    .push_back((t + FOLLOW_SECS + 1, Pending::Cand { t, ip }));
            } else if r.status == 200 || (400..500).contains(&r.status) {
                self.pending
                    .push_back((t + RESOLVE_SECS, Pending::Fail { t, ip, admin }));
                self.note_fail(ip, t, admin);
            }
        }

        // Payments.
        if post && starts_ci(r.target, &self.cfg.payment_paths) {
            let failed = !(300..400).contains(&r.status);
            self.on_payment(ip, ua_hash, t, failed);
        }
        let _ = now;
        self.dec = dec;
    }

    fn probe_tick(&mut self, ip: IpAddr, t: i64) {
        let Some(st) = self.ips.get_mut(&ip) else {
            return;
        };
        if t - st.probe_win.0 > BURST_SECS {
            st.probe_win = (t, 0);
        }
        st.probe_win.1 = st.probe_win.1.saturating_add(1);
        if st.probe_win.1 >= BURST_PROBES {
            st.untargeted = true;
        }
        if st.probe_win.1 >= SCANNER_PROBES && !st.scanner_reported {
            st.scanner_reported = true;
            st.techniques |= T_SCAN_BURST;
            let n = st.probe_win.1;
            let sum = tr!(
                self.lang,
                "scanner burst from {ip}: {n} probes in {BURST_SECS} s",
                "{ip} からのスキャン: {BURST_SECS} 秒で {n} 件の探索"
            );
            let mut f = Finding::new(
                Kind::AttackRequest,
                Severity::Medium,
                ts(t),
                &self.host,
                sum,
            );
            f.ip = Some(ip.to_string());
            f.checklist = vec!["20-1.1".into()];
            f.evidence = json!({"family": "scanner", "rule": "scanner.burst", "probes": n,
                "window_secs": BURST_SECS});
            self.findings.push(f);
            self.block(ip, t, self.cfg.block_hours_abuse, "scanner");
        }
    }

    fn on_hit(&mut self, ip: IpAddr, r: &Request<'_>, h: Hit, path: &[u8]) {
        let t = r.time;
        let pk = self.path_key(path);
        let pop = {
            let c = self.probe_pop.entry(pk).or_insert(0);
            *c = c.saturating_add(1);
            *c
        };
        if self.probe_pop.len() > 300_000 {
            self.probe_pop.retain(|_, c| *c > 1);
        }
        let Some(st) = self.ips.get_mut(&ip) else {
            return;
        };
        if st.admin_auth && h.family == Family::AdminProbe {
            return;
        }
        st.hits = st.hits.saturating_add(1);
        st.techniques |= u32::from(h.family.bit());
        let commodity = h.commodity || pop > POPULAR_PROBE_IPS;
        if commodity {
            st.weak = true;
        } else {
            st.targeted = true;
        }
        let webshell_live = h.family == Family::Webshell;
        if st.reported & h.family.bit() == 0 {
            st.reported |= h.family.bit();
            let sev = match h.family {
                Family::Webshell => Severity::High,
                Family::Sqli | Family::Traversal | Family::Cmdi | Family::SensitiveFile
                    if (200..300).contains(&r.status) && r.bytes > 0 =>
                {
                    Severity::Medium
                }
                _ => Severity::Low,
            };
            let fam = h.family.as_str();
            let req = trunc(r.target, 400);
            let m = trunc(r.method, 16);
            let sum = if webshell_live {
                tr!(
                    self.lang,
                    "web shell request from {ip}: {m} {req} ({})",
                    "{ip} から Web シェルへのリクエスト: {m} {req} ({})",
                    r.status
                )
            } else {
                tr!(
                    self.lang,
                    "{fam} attempt from {ip}: {m} {req}",
                    "{ip} からの攻撃リクエスト ({fam}): {m} {req}"
                )
            };
            let mut f = Finding::new(Kind::AttackRequest, sev, ts(t), &self.host, sum);
            f.ip = Some(ip.to_string());
            f.checklist = vec!["20-1.1".into()];
            f.evidence = json!({
                "family": fam,
                "rule": h.rule,
                "commodity": commodity,
                "request": format!("{m} {req}"),
                "status": r.status,
                "user_agent": trunc(r.user_agent, 200),
                "count": 1,
            });
            st.req_findings
                .push((h.family.bit(), self.findings.len() as u32));
            self.findings.push(f);
        } else if let Some(&(_, idx)) = st.req_findings.iter().find(|(b, _)| *b == h.family.bit())
            && let Some(f) = self.findings.get_mut(idx as usize)
            && let Some(c) = f.evidence.get_mut("count")
        {
            *c = json!(c.as_u64().unwrap_or(0) + 1);
        }
        if h.family != Family::Scanner || h.rule != "scanner.user_agent" {
            self.probe_tick(ip, t);
        } else if let Some(st) = self.ips.get_mut(&ip) {
            st.untargeted = true;
        }
        if webshell_live {
            self.block(ip, t, self.cfg.block_hours_campaign * 4, "webshell");
            self.escalate_campaign(ip, t, "webshell");
            // A web shell is never a one-off: judge membership now.
            self.join_campaign(ip, t, "webshell");
        }
        self.schedule_member(ip, t);
    }

    fn schedule_member(&mut self, ip: IpAddr, t: i64) {
        if let Some(st) = self.ips.get_mut(&ip)
            && !st.member
            && !st.member_eval_pending
        {
            st.member_eval_pending = true;
            self.pending
                .push_back((t + MEMBER_DELAY, Pending::Member { ip }));
        }
    }

    fn report_bruteforce(&mut self, ip: IpAddr, t: i64, admin: bool, n: u32) {
        let what = if admin { "admin" } else { "customer" };
        let sum = tr!(
            self.lang,
            "brute force on the {what} login from {ip}: {n} failures within an hour",
            "{ip} から{what}ログインへの総当たり: 1 時間で {n} 回失敗"
        );
        let mut f = Finding::new(
            Kind::AttackBruteforce,
            Severity::High,
            ts(t),
            &self.host,
            sum,
        );
        f.ip = Some(ip.to_string());
        f.checklist = vec!["20-1.1".into(), "20-1.7".into()];
        f.evidence = json!({"failures": n, "window_secs": 3600, "login": what});
        self.findings.push(f);
        self.block(ip, t, self.cfg.block_hours_abuse, "bruteforce");
    }

    fn note_fail(&mut self, ip: IpAddr, t: i64, admin: bool) {
        if admin {
            self.admin_window.push_back((t, ip));
            while self
                .admin_window
                .front()
                .is_some_and(|(x, _)| t - *x > 24 * 3600)
            {
                self.admin_window.pop_front();
            }
            if self.admin_window.len() >= self.cfg.spraying_min_ips
                && (self.active[1].is_none() && t.saturating_sub(self.last_spray_check) >= 600)
            {
                self.last_spray_check = t;
                let ips = self.window_unresolved(&self.admin_window.clone(), true);
                if ips.len() >= self.cfg.spraying_min_ips {
                    self.start_episode(
                        EpKind::Spraying,
                        t,
                        &ips,
                        "distinct addresses failing the admin login within 24 h",
                    );
                }
            }
        } else {
            self.cust_window.push_back((t, ip));
            while self
                .cust_window
                .front()
                .is_some_and(|(x, _)| t - *x > 30 * 60)
            {
                self.cust_window.pop_front();
            }
            if self.cust_window.len() >= self.cfg.stuffing_min_ips
                && self.active[0].is_none()
                && t.saturating_sub(self.last_stuff_check) >= 60
            {
                self.last_stuff_check = t;
                let ips = self.window_unresolved(&self.cust_window.clone(), false);
                if ips.len() >= self.cfg.stuffing_min_ips {
                    self.start_episode(EpKind::Stuffing, t, &ips, "distinct addresses failing the customer login within 30 min, none succeeding");
                }
            }
        }
    }

    /// Distinct addresses in the window whose failure was not followed by a success.
    fn window_unresolved(&self, w: &VecDeque<(i64, IpAddr)>, admin: bool) -> Vec<IpAddr> {
        let mut seen: Set<IpAddr> = Set::default();
        let mut out = Vec::new();
        for (t, ip) in w {
            if seen.contains(ip) || self.allowed(*ip) {
                continue;
            }
            let Some(st) = self.ips.get(ip) else { continue };
            if st.ok_near(*t, admin) || st.admin_auth && admin {
                continue;
            }
            seen.insert(*ip);
            out.push(*ip);
        }
        out
    }

    fn login_success(&mut self, ip: IpAddr, t: i64, admin: bool) {
        let Some(st) = self.ips.get_mut(&ip) else {
            return;
        };
        st.oks.rotate_left(1);
        st.oks[3] = (t, admin);
        if admin {
            let suspicious = st.member || st.admin_fails > 0 || st.targeted;
            st.techniques |= T_ADMIN_SUCCESS;
            if suspicious {
                self.escalate_campaign(ip, t, "admin_login_success");
            } else if let Some(st) = self.ips.get_mut(&ip) {
                // An address that logs in to the admin without any prior suspicion is the
                // shop's own staff: learned, not allow-listed.
                st.admin_auth = true;
            }
        }
    }

    fn on_payment(&mut self, ip: IpAddr, ua: u32, t: i64, failed: bool) {
        let min = self.cfg.card_testing_min_failures;
        // Keyed by address *and* user agent: behind a carrier NAT many customers share
        // one address, each with a decline or two.
        let w = self.pay.entry((ip, ua)).or_insert((t, 0, 0));
        if t - w.0 > 3600 || t < w.0 {
            *w = (t, 0, 0);
        }
        if failed {
            w.1 += 1;
        } else {
            w.2 += 1;
        }
        let (_, fails, oks) = *w;
        if self.pay.len() > 100_000 {
            let now = self.now;
            self.pay.retain(|_, w| now - w.0 <= 3600);
        }
        let Some(st) = self.ips.get_mut(&ip) else {
            return;
        };
        if failed {
            st.techniques |= T_PAY_FAIL;
        }
        if fails >= min && fails >= 2 * oks && !st.cardtest {
            st.cardtest = true;
            if self.allowed(ip) {
                return;
            }
            match self.active[2] {
                Some(e) if t - self.episodes[e].last < 6 * 3600 => self.add_member(e, ip, t),
                _ => self.start_episode(
                    EpKind::CardTesting,
                    t,
                    &[ip],
                    "payment attempts failing far more often than they complete",
                ),
            }
            self.block(ip, t, self.cfg.block_hours_abuse, "card_testing");
        }
    }

    fn run_pending(&mut self, now: i64) {
        while let Some(&(due, p)) = self.pending.front() {
            if due > now {
                break;
            }
            self.pending.pop_front();
            self.resolve(p);
        }
    }

    /// Live mode: let event time advance to `now` (wall clock) without a request, so
    /// decisions that wait for a quiet period are taken while the log is quiet.
    /// Blocks whose time is up are lifted (`block.removed`) here too, so a quiet log
    /// does not keep an address blocked past its expiry. Returns whether anything changed.
    pub fn advance(&mut self, now: i64) -> bool {
        let mut changed = false;
        if now > self.now {
            self.now = now;
            let before = self.pending.len();
            self.run_pending(now);
            changed = self.pending.len() != before;
        }
        if !self.blocks.is_empty() {
            let before = self.blocks.len();
            self.expire_blocks(self.now);
            changed |= self.blocks.len() != before;
        }
        changed
    }

    /// Live mode: the findings made since the last call, plus an update of every
    /// episode (campaign, stuffing, spraying, card testing) whose membership at least
    /// doubled since it was last handed out (a new id; `evidence.update_of` names the
    /// first). Handed-out findings that no episode refers to are dropped, so memory
    /// stays bounded however long the daemon runs.
    pub fn take_new(&mut self) -> Vec<Finding> {
        let mut out: Vec<Finding> = self.findings[self.emitted..].to_vec();
        self.episode_reported.resize(self.episodes.len(), 0);
        for e in 0..self.episodes.len() {
            let n = self.episodes[e].members.len();
            let fi = self.episodes[e].finding;
            let reported = self.episode_reported[e];
            if fi >= self.emitted {
                // Handed out just now: refresh its member list first.
                self.write_episode(e);
                if let Some(f) = out.iter_mut().find(|f| f.id == self.findings[fi].id) {
                    *f = self.findings[fi].clone();
                }
                self.episode_reported[e] = n;
            } else if n >= 2 * reported.max(1) && n > reported {
                self.write_episode(e);
                let mut f = self.findings[fi].clone();
                let first = f.id.clone();
                f.id = mamori_core::finding::new_id();
                f.detected_at = chrono::Utc::now();
                if let Some(obj) = f.evidence.as_object_mut() {
                    obj.insert("update_of".into(), json!(first));
                }
                out.push(f);
                self.episode_reported[e] = n;
            }
        }
        self.emitted = self.findings.len();
        self.compact();
        out
    }

    /// Drop handed-out findings no episode refers to, remapping episode indices.
    fn compact(&mut self) {
        if self.findings.len() < 1024 || self.emitted < self.findings.len() {
            return;
        }
        let keep: Set<usize> = self.episodes.iter().map(|e| e.finding).collect();
        let mut remap: Map<usize, usize> = Map::default();
        let old = std::mem::take(&mut self.findings);
        for (i, f) in old.into_iter().enumerate() {
            if keep.contains(&i) {
                remap.insert(i, self.findings.len());
                self.findings.push(f);
            }
        }
        for e in &mut self.episodes {
            if let Some(&n) = remap.get(&e.finding) {
                e.finding = n;
            }
        }
        self.emitted = self.findings.len();
    }

    /// Resolve everything still pending (end of input).
    pub fn finish(&mut self) {
        while let Some((_, p)) = self.pending.pop_front() {
            self.resolve(p);
        }
        self.finalize_episodes();
    }

    fn resolve(&mut self, p: Pending) {
        match p {
            Pending::Cand { t, ip } => {
                let Some(st) = self.ips.get_mut(&ip) else {
                    return;
                };
                if let Some((t0, admin)) = st.cand302
                    && t0 == t
                {
                    // Nobody followed the redirect: a tool, and not a success.
                    st.cand302 = None;
                    self.pending
                        .push_back((t + RESOLVE_SECS, Pending::Fail { t, ip, admin }));
                    self.note_fail(ip, t, admin);
                }
            }
            Pending::Fail { t, ip, admin } => {
                let Some(st) = self.ips.get_mut(&ip) else {
                    return;
                };
                if st.ok_near(t, admin) || (admin && st.admin_auth) {
                    return; // a typo
                }
                // Brute force: confirmed failures from one address within an hour.
                if t - st.fail_win.0 > 3600 || t < st.fail_win.0 {
                    st.fail_win = (t, 0);
                }
                st.fail_win.1 += 1;
                if st.fail_win.1 >= self.cfg.bruteforce_min_failures && !st.bruteforce_reported {
                    st.bruteforce_reported = true;
                    let n = st.fail_win.1;
                    self.report_bruteforce(ip, t, admin, n);
                }
                let Some(st) = self.ips.get_mut(&ip) else {
                    return;
                };
                if admin {
                    st.admin_fails += 1;
                    st.techniques |= T_ADMIN_FAIL;
                    st.targeted = true;
                    if let Some(e) = self.active[1]
                        && t - self.episodes[e].last < 72 * 3600
                    {
                        self.add_member(e, ip, t);
                    }
                    self.schedule_member(ip, t);
                } else {
                    st.cust_fails += 1;
                    st.techniques |= T_CUST_FAIL;
                    if let Some(e) = self.active[0] {
                        if t - self.episodes[e].last < 2 * 3600 {
                            self.add_member(e, ip, t);
                            self.block(ip, t, self.cfg.block_hours_abuse, "credential_stuffing");
                        } else {
                            self.active[0] = None;
                        }
                    }
                }
            }
            Pending::Member { ip } => {
                let Some(st) = self.ips.get_mut(&ip) else {
                    return;
                };
                st.member_eval_pending = false;
                let t = st.last;
                self.consider_member(ip, t);
            }
        }
    }

    fn consider_member(&mut self, ip: IpAddr, t: i64) {
        if self.allowed(ip) {
            return;
        }
        let Some(st) = self.ips.get(&ip) else { return };
        if st.member || st.untargeted || st.tool_ua || st.claimed_bot || st.admin_auth {
            return;
        }
        if st.targeted {
            self.join_campaign(ip, t, "targeted_probe");
            return;
        }
        if st.weak {
            // Narrowest prefix first: the reason names the level that grouped it.
            let why = prefix_keys(ip).find_map(|pk| {
                let p = self.prefixes.get(&pk)?;
                let l = &LEVELS[usize::from(pk.0)];
                (p.members >= l.min_members && p.members * 2 >= p.browsers).then_some(l.why)
            });
            if let Some(why) = why {
                self.join_campaign(ip, t, why);
            }
        }
    }

    fn join_campaign(&mut self, ip: IpAddr, t: i64, why: &'static str) {
        if self.allowed(ip) {
            return;
        }
        let Some(st) = self.ips.get_mut(&ip) else {
            return;
        };
        if st.member {
            return;
        }
        st.member = true;
        let techs = st.techniques;
        // Prefixes whose membership reaches their level's threshold with this address.
        let mut reached: Vec<PrefixKey> = Vec::new();
        for pk in prefix_keys(ip) {
            let p = self.prefixes.entry(pk).or_default();
            p.members += 1;
            p.last = p.last.max(t);
            if p.members == LEVELS[usize::from(pk.0)].min_members {
                reached.push(pk);
            }
        }
        self.campaign_techs |= techs;
        let window = i64::from(self.cfg.campaign_window_days) * 86_400;
        self.campaign_recent.push_back((t, ip));
        while self
            .campaign_recent
            .front()
            .is_some_and(|(x, _)| t - *x > window)
        {
            self.campaign_recent.pop_front();
        }
        match self.active[3] {
            Some(e) if t - self.episodes[e].last < window => {
                self.add_member(e, ip, t);
                if !self.episodes[e].reasons.iter().any(|r| r == why) {
                    self.episodes[e].reasons.push(why.into());
                }
            }
            _ => {
                let distinct_techs = technique_names(self.campaign_techs).len();
                if self.campaign_recent.len() >= self.cfg.campaign_min_ips && distinct_techs >= 2 {
                    let ips: Vec<IpAddr> = self.campaign_recent.iter().map(|(_, i)| *i).collect();
                    self.start_episode(EpKind::Campaign, t, &ips, why);
                }
            }
        }
        // Wake up earlier weak addresses of a prefix that just became a group (one
        // pass over the tracked addresses, at most once per prefix and level).
        if !reached.is_empty() {
            let cands: Vec<IpAddr> = self
                .ips
                .iter()
                .filter(|(a, s)| {
                    s.weak && !s.member && prefix_keys(**a).any(|k| reached.contains(&k))
                })
                .map(|(a, _)| *a)
                .collect();
            for c in cands {
                self.consider_member(c, t);
            }
        }
    }

    fn escalate_campaign(&mut self, ip: IpAddr, t: i64, what: &'static str) {
        let Some(e) = self.active[3] else {
            return;
        };
        if self.episodes[e].escalated {
            return;
        }
        self.episodes[e].escalated = true;
        self.join_campaign(ip, t, "targeted_probe");
        let n = self.episodes[e].members.len();
        let sum = match what {
            "webshell" => tr!(
                self.lang,
                "campaign escalated: web shell in use from {ip} ({n} campaign addresses)",
                "攻撃キャンペーンが進行: {ip} から Web シェルを使用 (キャンペーンのアドレス {n} 件)"
            ),
            _ => tr!(
                self.lang,
                "campaign escalated: admin login SUCCEEDED from campaign address {ip} ({n} addresses)",
                "攻撃キャンペーンが進行: キャンペーンのアドレス {ip} から管理画面ログインに成功 (アドレス {n} 件)"
            ),
        };
        let mut f = Finding::new(
            Kind::AttackCampaign,
            Severity::Critical,
            ts(t),
            &self.host,
            sum,
        );
        f.ip = Some(ip.to_string());
        f.ips = Some(
            self.episodes[e]
                .members
                .iter()
                .map(|i| i.to_string())
                .collect(),
        );
        f.checklist = vec!["20-1.1".into(), "20-1.6".into(), "20-1.7".into()];
        f.evidence = json!({"escalation": what, "campaign_finding": self.findings[self.episodes[e].finding].id,
            "first_seen": rfc(self.episodes[e].start), "address": ip.to_string()});
        self.findings.push(f);
        self.block(
            ip,
            t,
            self.cfg.block_hours_campaign * 4,
            "campaign_compromise",
        );
    }

    fn kind_idx(k: EpKind) -> usize {
        match k {
            EpKind::Stuffing => 0,
            EpKind::Spraying => 1,
            EpKind::CardTesting => 2,
            EpKind::Campaign => 3,
        }
    }

    fn start_episode(&mut self, kind: EpKind, t: i64, ips: &[IpAddr], why: &'static str) {
        let n = ips.len();
        let (k, sev, sum) = match kind {
            EpKind::Stuffing => (
                Kind::AttackCredentialStuffing,
                Severity::High,
                tr!(
                    self.lang,
                    "credential stuffing on the customer login: {n} addresses failing, few tries each",
                    "会員ログインへのリスト型攻撃: {n} 件のアドレスが少数回ずつ失敗"
                ),
            ),
            EpKind::Spraying => (
                Kind::AttackPasswordSpraying,
                Severity::High,
                tr!(
                    self.lang,
                    "password spraying on the admin login: {n} addresses, one or two tries each",
                    "管理画面ログインへのパスワードスプレー攻撃: {n} 件のアドレスが 1〜2 回ずつ試行"
                ),
            ),
            EpKind::CardTesting => (
                Kind::AttackCardTesting,
                Severity::High,
                tr!(
                    self.lang,
                    "card testing (credit master) on the payment step: failed payments from {n} address(es)",
                    "決済へのクレジットマスター攻撃 (カード番号の有効性確認): {n} 件のアドレスから決済失敗が連続"
                ),
            ),
            EpKind::Campaign => (
                Kind::AttackCampaign,
                Severity::High,
                tr!(
                    self.lang,
                    "slow targeted attack campaign: {n} addresses probing this shop, each a few times",
                    "低速・分散型の標的型攻撃キャンペーン: {n} 件のアドレスがこのショップを少しずつ探索"
                ),
            ),
        };
        let mut f = Finding::new(k, sev, ts(t), &self.host, sum);
        f.checklist = match kind {
            EpKind::Stuffing | EpKind::Spraying => {
                vec!["20-1.1".into(), "20-1.6".into(), "20-1.7".into()]
            }
            EpKind::CardTesting => vec!["20-1.1".into(), "jca:card-testing".into()],
            EpKind::Campaign => vec!["20-1.1".into(), "20-1.2".into()],
        };
        let idx = self.findings.len();
        self.findings.push(f);
        let e = Episode {
            kind,
            finding: idx,
            start: t,
            last: t,
            members: Vec::new(),
            member_set: Set::default(),
            techniques: Map::default(),
            prefixes: Map::default(),
            escalated: false,
            reasons: vec![why.into()],
        };
        self.episodes.push(e);
        let ei = self.episodes.len() - 1;
        self.active[Self::kind_idx(kind)] = Some(ei);
        for ip in ips {
            self.add_member(ei, *ip, t);
        }
        self.write_episode(ei);
        if kind == EpKind::Spraying {
            for ip in ips {
                self.block(*ip, t, self.cfg.block_hours_campaign, "password_spraying");
            }
        }
    }

    fn add_member(&mut self, e: usize, ip: IpAddr, t: i64) {
        let ep = &mut self.episodes[e];
        ep.last = ep.last.max(t);
        if !ep.member_set.insert(ip) {
            return;
        }
        ep.members.push(ip);
        if let Some(st) = self.ips.get(&ip) {
            for n in technique_names(st.techniques) {
                *ep.techniques.entry(n).or_insert(0) += 1;
            }
        }
        for pk in prefix_keys(ip) {
            *ep.prefixes.entry(prefix_name(pk)).or_insert(0) += 1;
        }
        let kind = ep.kind;
        if kind == EpKind::Campaign {
            self.block(ip, t, self.cfg.block_hours_campaign, "campaign");
        }
    }

    fn write_episode(&mut self, e: usize) {
        let ep = &self.episodes[e];
        let mut techs: Vec<(&&str, &u32)> = ep.techniques.iter().collect();
        techs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut prefs: Vec<(&String, &u32)> = ep.prefixes.iter().collect();
        prefs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<serde_json::Value> = prefs
            .iter()
            .take(10)
            .map(|(p, n)| json!({"prefix": p, "ips": n}))
            .collect();
        // Per level: prefixes holding enough members to group weak-signal addresses.
        let grouped: Vec<serde_json::Value> = LEVELS
            .iter()
            .map(|l| {
                let tail = format!("/{}", l.len);
                let n = prefs
                    .iter()
                    .filter(|(p, n)| {
                        p.ends_with(&tail) && p.contains(':') == l.v6 && **n >= l.min_members
                    })
                    .count();
                json!({"level": format!("IPv{}{tail}", if l.v6 { 6 } else { 4 }),
                    "min_members": l.min_members, "prefixes": n})
            })
            .collect();
        let ips: Vec<String> = ep.members.iter().map(|i| i.to_string()).collect();
        let n = ips.len();
        let (mut firsts, mut lasts, mut no_assets, mut reqs) = (i64::MAX, i64::MIN, 0usize, 0u64);
        for ip in &ep.members {
            if let Some(st) = self.ips.get(ip) {
                firsts = firsts.min(st.first);
                lasts = lasts.max(st.last);
                if st.assets == 0 {
                    no_assets += 1;
                }
                reqs += u64::from(st.lines);
            }
        }
        let why: Vec<String> = ep
            .reasons
            .iter()
            .map(|r| match r.as_ref() {
                "targeted_probe" => "each address sent shop-specific probes (signatures, failed admin logins, unknown admin paths) at a low rate, never in a burst".to_string(),
                r if r.starts_with("prefix_of_members") => LEVELS
                    .iter()
                    .find(|l| l.why == r)
                    .map(|l| format!(
                        "addresses with only weak signals inside an IPv{} /{} already holding ≥ {} member(s)",
                        if l.v6 { 6 } else { 4 },
                        l.len,
                        l.min_members
                    ))
                    .unwrap_or_else(|| r.to_string()),
                "webshell" => "requests to a web shell".to_string(),
                other => other.to_string(),
            })
            .collect();
        let kind = ep.kind;
        let lang = self.lang;
        let start = ep.start;
        let Some(f) = self.findings.get_mut(ep.finding) else {
            return;
        };
        f.ips = Some(ips);
        f.evidence = json!({
            "members": n,
            "techniques": techs.iter().map(|(k, v)| json!({"technique": k, "ips": v})).collect::<Vec<_>>(),
            "first_seen": if firsts == i64::MAX { rfc(start) } else { rfc(firsts) },
            "last_seen": if lasts == i64::MIN { rfc(start) } else { rfc(lasts) },
            "detected_at_event_time": rfc(start),
            "top_prefixes": top,
            "prefixes_grouped": grouped,
            "members_without_assets": no_assets,
            "requests_per_member": if n > 0 { reqs as f64 / n as f64 } else { 0.0 },
            "why_grouped": why,
        });
        let summary = match kind {
            EpKind::Campaign => tr!(
                lang,
                "slow targeted attack campaign: {n} addresses probing this shop, each a few times",
                "低速・分散型の標的型攻撃キャンペーン: {n} 件のアドレスがこのショップを少しずつ探索"
            ),
            EpKind::Stuffing => tr!(
                lang,
                "credential stuffing on the customer login: {n} addresses failing, few tries each",
                "会員ログインへのリスト型攻撃: {n} 件のアドレスが少数回ずつ失敗"
            ),
            EpKind::Spraying => tr!(
                lang,
                "password spraying on the admin login: {n} addresses, one or two tries each",
                "管理画面ログインへのパスワードスプレー攻撃: {n} 件のアドレスが 1〜2 回ずつ試行"
            ),
            EpKind::CardTesting => tr!(
                lang,
                "card testing (credit master) on the payment step: failed payments from {n} address(es)",
                "決済へのクレジットマスター攻撃 (カード番号の有効性確認): {n} 件のアドレスから決済失敗が連続"
            ),
        };
        f.summary = summary;
    }

    fn finalize_episodes(&mut self) {
        // Stuffing/spraying episodes keep only addresses whose failures were confirmed.
        for e in 0..self.episodes.len() {
            let kind = self.episodes[e].kind;
            if matches!(kind, EpKind::Stuffing | EpKind::Spraying) {
                let admin = kind == EpKind::Spraying;
                let keep: Vec<IpAddr> = self.episodes[e]
                    .members
                    .iter()
                    .copied()
                    .filter(|ip| {
                        self.ips.get(ip).is_some_and(|s| {
                            if admin {
                                s.admin_fails > 0 && !s.admin_auth
                            } else {
                                s.cust_fails > 0
                            }
                        })
                    })
                    .collect();
                let ep = &mut self.episodes[e];
                ep.member_set = keep.iter().copied().collect();
                ep.members = keep;
            }
            self.write_episode(e);
        }
        // Fold per-request counts are already in place; nothing else to do.
    }

    fn shared(&self, ip: IpAddr) -> bool {
        if block::is_cgnat(ip) || self.cfg.shared.iter().any(|n| n.contains(&ip)) {
            return true;
        }
        self.ips
            .get(&ip)
            .is_some_and(|s| s.uas.iter().all(|u| *u != 0))
    }

    fn block(&mut self, ip: IpAddr, t: i64, hours: u32, reason: &'static str) {
        if !self.block_enabled {
            return;
        }
        // Loopback and the like are never blocked: behind a local proxy (or nginx
        // without real_ip) every request comes from 127.0.0.1, and dropping it would cut
        // PHP-FPM, the database and the cache off: a shop outage.
        if self.allowed(ip) || block::never_block(ip) {
            self.stats.blocks_skipped_allow_listed += 1;
            return;
        }
        let Some(st) = self.ips.get(&ip) else { return };
        if st.admin_auth && !st.member {
            self.stats.blocks_skipped_allow_listed += 1;
            return;
        }
        if st.blocked_until > t {
            return;
        }
        if st.claimed_bot
            && let Some(v) = &self.verifier
        {
            let verified = *self.verified.entry(ip).or_insert_with(|| {
                // The claimed crawler name was checked when the address was first seen.
                [
                    "googlebot",
                    "bingbot",
                    "yandex",
                    "applebot",
                    "baiduspider",
                    "duckduckbot",
                ]
                .iter()
                .any(|n| v.verify(ip, n))
            });
            if verified {
                self.stats.blocks_skipped_verified_bot += 1;
                return;
            }
        }
        if self.shared(ip) {
            self.stats.blocks_skipped_shared += 1;
            if self.advice.len() < 10_000 && !self.advice.iter().any(|a| a.ip == ip.to_string()) {
                self.advice.push(Advice {
                    ip: ip.to_string(),
                    reason: reason.to_string(),
                    advice: tr!(
                        self.lang,
                        "shared address (carrier NAT or many users): rate-limit or challenge (CAPTCHA) instead of banning",
                        "共有アドレス (携帯キャリアの NAT など): 遮断せず、レート制限または CAPTCHA などの確認を"
                    ),
                });
            }
            return;
        }
        let until = t + i64::from(hours) * 3600;
        if let Some(st) = self.ips.get_mut(&ip) {
            st.blocked_until = until;
        }
        let mut net = block::block_net(ip, self.cfg.block_ipv6_prefix);
        // An IPv6 block wide enough to cover an allow-listed address narrows to this host.
        if self
            .cfg
            .allow
            .iter()
            .any(|a| net.contains(a) || a.contains(&net))
        {
            net = block::block_net(ip, 128);
        }
        let sum = tr!(
            self.lang,
            "blocked {net} for {hours} h ({reason})",
            "{net} を {hours} 時間遮断 ({reason})"
        );
        let mut f = Finding::new(Kind::BlockAdded, Severity::Info, ts(t), &self.host, sum);
        f.ip = Some(net.to_string());
        f.checklist = vec!["20-1.1".into()];
        f.evidence = json!({"target": net.to_string(), "address": ip.to_string(), "reason": reason,
            "expires": rfc(until), "hours": hours});
        self.findings.push(f);
        let idx = self.findings.len() - 1;
        self.blocks.insert(net, (until, idx));
    }

    fn expire_blocks(&mut self, now: i64) {
        let expired: Vec<(IpNet, i64)> = self
            .blocks
            .iter()
            .filter(|(_, (u, _))| *u <= now)
            .map(|(n, (u, _))| (*n, *u))
            .collect();
        for (net, until) in expired {
            self.blocks.remove(&net);
            let sum = tr!(
                self.lang,
                "block of {net} expired",
                "{net} の遮断期限が切れました"
            );
            let mut f = Finding::new(
                Kind::BlockRemoved,
                Severity::Info,
                ts(until),
                &self.host,
                sum,
            );
            f.ip = Some(net.to_string());
            f.evidence = json!({"target": net.to_string(), "reason": "expired"});
            self.findings.push(f);
        }
    }

    /// Blocks still active at the last event time, with their remaining duration.
    pub fn active_blocks(&self) -> Vec<BlockEntry> {
        let now = self.now;
        let mut v: Vec<BlockEntry> = self
            .blocks
            .iter()
            .filter(|(_, (u, _))| *u > now)
            .map(|(n, (u, _))| BlockEntry {
                net: *n,
                timeout_secs: u64::try_from(*u - now).unwrap_or(1),
            })
            .collect();
        v.sort_by_key(|b| b.net);
        v
    }

    fn maintenance(&mut self) {
        let now = self.now;
        self.expire_blocks(now);
        // Close idle episodes.
        for (k, gap) in [(0usize, 2 * 3600), (1, 72 * 3600), (2, 6 * 3600)] {
            if let Some(e) = self.active[k]
                && now - self.episodes[e].last > gap
            {
                self.active[k] = None;
            }
        }
        let keep = i64::from(self.cfg.memory_days) * 86_400;
        let max = self.cfg.max_tracked_ips;
        self.stats.tracked_ips_peak = self.stats.tracked_ips_peak.max(self.ips.len());
        if self.ips.len() > max / 2 || now % (24 * 3600) < 3600 {
            let before = self.ips.len();
            let mut horizon = keep;
            loop {
                self.ips.retain(|_, s| {
                    s.member || s.blocked_until > now || s.admin_auth || now - s.last <= horizon
                });
                if self.ips.len() <= max || horizon <= 3600 {
                    break;
                }
                horizon /= 2;
            }
            self.stats.evicted_ips += (before - self.ips.len()) as u64;
        }
        // Prefixes: those holding campaign members are the campaign's memory and stay;
        // the others are forgotten like idle addresses, and capped at as many entries as
        // tracked addresses (each address adds at most three prefixes).
        if self.prefixes.len() > max || now % (24 * 3600) < 3600 {
            let mut horizon = keep;
            loop {
                self.prefixes
                    .retain(|_, p| p.members > 0 || now - p.last <= horizon);
                if self.prefixes.len() <= max || horizon <= 3600 {
                    break;
                }
                horizon /= 2;
            }
        }
    }

    /// The engine's event time (Unix seconds; `i64::MIN` before anything happened).
    pub fn now(&self) -> i64 {
        self.now
    }

    pub fn tracked(&self) -> usize {
        self.ips.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{JsonFields, Scratch, parse_line};

    fn run(lines: &[String], cfg: &EntranceConfig) -> Vec<Finding> {
        let mut e = Engine::new(
            std::sync::Arc::new(cfg.clone()),
            "shop",
            Lang::En,
            true,
            None,
        );
        let f = JsonFields::default();
        for l in lines {
            let mut s = Scratch::default();
            let r = parse_line(l.as_bytes(), None, &f, &mut s).unwrap();
            e.observe(&r);
        }
        e.finish();
        e.findings
    }

    fn line(ip: &str, t: i64, m: &str, p: &str, st: u16, ua: &str) -> String {
        let d = ts(t).format("%d/%b/%Y:%H:%M:%S +0000");
        format!("{ip} - - [{d}] \"{m} {p} HTTP/1.1\" {st} 100 \"-\" \"{ua}\"")
    }

    const UA: &str = "Mozilla/5.0 (Windows NT 10.0) Chrome/120";

    #[test]
    fn card_testing_and_block() {
        let mut v = Vec::new();
        let t0 = 1_600_000_000;
        for i in 0..6 {
            v.push(line(
                "198.51.100.7",
                t0 + i * 10,
                "POST",
                "/shopping/checkout",
                200,
                UA,
            ));
        }
        let f = run(&v, &EntranceConfig::default());
        let ct: Vec<_> = f
            .iter()
            .filter(|f| f.kind == Kind::AttackCardTesting)
            .collect();
        assert_eq!(ct.len(), 1);
        assert_eq!(
            ct[0].ips.as_deref(),
            Some(&["198.51.100.7".to_string()][..])
        );
        assert!(ct[0].time.timestamp() <= t0 + 40);
        assert!(f.iter().any(|f| f.kind == Kind::BlockAdded));
        assert!(!f.iter().any(|f| f.kind == Kind::BlockRemoved));
    }

    #[test]
    fn typo_then_success_is_benign() {
        let t0 = 1_600_000_000;
        let v = vec![
            line("198.51.100.8", t0, "POST", "/admin/login", 200, UA),
            line("198.51.100.8", t0 + 20, "POST", "/admin/login", 302, UA),
            line("198.51.100.8", t0 + 21, "GET", "/admin/", 200, UA),
            line("198.51.100.9", t0 + 9000, "GET", "/", 200, UA),
        ];
        let f = run(&v, &EntranceConfig::default());
        assert!(f.is_empty(), "{f:?}");
    }

    /// Two addresses send shop-specific probes (each a distinct SQL injection), then
    /// `weak` addresses send one unknown-path 404 each, half an hour apart (one before
    /// the second member joins), and `outsider` does the same. Asserts that the
    /// campaign finding has exactly the targeted and weak addresses as members; returns
    /// its reasons, and whether `outsider` was flagged at all.
    fn grouped(targeted: [&str; 2], weak: &[&str], outsider: &str) -> (String, bool) {
        let t0 = 1_700_000_000;
        let sqli = |ip: &str, t: i64, name: &str| {
            line(
                ip,
                t,
                "GET",
                &format!("/api{name}?id=1%27%20UNION%20SELECT%20NULL,version()--"),
                200,
                UA,
            )
        };
        let mut v = vec![sqli(targeted[0], t0, "alpha")];
        v.push(line(weak[0], t0 + 1800, "GET", "/zzfirst", 404, UA));
        v.push(sqli(targeted[1], t0 + 3600, "bravo"));
        v.push(line(outsider, t0 + 5000, "GET", "/zzoutside", 404, UA));
        for (i, ip) in weak.iter().enumerate().skip(1) {
            let t = t0 + 7200 + i as i64 * 1800;
            v.push(line(
                ip,
                t,
                "GET",
                &format!("/zzw{}", "x".repeat(i)),
                404,
                UA,
            ));
        }
        v.push(line("192.0.2.200", t0 + 30_000, "GET", "/", 200, UA));
        let f = run(&v, &EntranceConfig::default());
        let camp = f
            .iter()
            .find(|f| f.kind == Kind::AttackCampaign && f.evidence.get("members").is_some())
            .unwrap_or_else(|| panic!("no campaign: {f:#?}"));
        let mut ips = camp.ips.clone().unwrap_or_default();
        ips.sort();
        let mut want: Vec<String> = targeted.iter().chain(weak).map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(ips, want);
        let why = camp.evidence["why_grouped"].to_string();
        let flagged = f.iter().any(|f| {
            f.ip.as_deref() == Some(outsider)
                || f.ips
                    .as_ref()
                    .is_some_and(|v| v.iter().any(|i| i == outsider))
        });
        (why, flagged)
    }

    #[test]
    fn campaign_spread_over_one_ipv4_24_is_grouped() {
        // Two members in 198.51.100.0/24 group the weak-signal addresses of that /24;
        // the /16 alone (2 members, threshold 3) would not.
        let targeted = ["198.51.100.7", "198.51.100.200"];
        let weak = [
            "198.51.100.31",
            "198.51.100.32",
            "198.51.100.33",
            "198.51.100.34",
        ];
        let (why, outsider) = grouped(targeted, &weak, "192.0.2.50");
        assert!(why.contains("IPv4 /24 already holding ≥ 2"), "{why}");
        assert!(
            !outsider,
            "a weak address outside the campaign's prefixes stays out"
        );
    }

    #[test]
    fn campaign_spread_over_one_ipv6_48_with_different_64s_is_grouped() {
        // Members in two /64s of 2001:db8:1::/48; the weak addresses are each in a /64
        // of their own, grouped by the /48.
        let targeted = ["2001:db8:1:a::10", "2001:db8:1:b::10"];
        let weak = [
            "2001:db8:1:c::1",
            "2001:db8:1:d::1",
            "2001:db8:1:e::1",
            "2001:db8:1:f::1",
        ];
        let (why, outsider) = grouped(targeted, &weak, "3fff:0:1::1");
        assert!(why.contains("IPv6 /48 already holding ≥ 2"), "{why}");
        assert!(!outsider);
    }

    #[test]
    fn another_address_in_a_members_ipv6_64_is_grouped() {
        // One member is enough inside its own /64 (one subscriber rotating addresses);
        // the /48 (1 member of 2) and the /32 would not group these.
        let targeted = ["2001:db8:5:1::10", "2001:db8:77:1::10"];
        let weak = [
            "2001:db8:5:1::99",
            "2001:db8:5:1:a::1",
            "2001:db8:77:1::98",
            "2001:db8:77:1:b::2",
        ];
        let (why, _) = grouped(targeted, &weak, "3fff:0:1::1");
        assert!(why.contains("IPv6 /64 already holding ≥ 1"), "{why}");
    }

    #[test]
    fn prefix_keys_and_names() {
        let k: Vec<String> = prefix_keys("198.51.100.7".parse().unwrap())
            .map(prefix_name)
            .collect();
        assert_eq!(k, ["198.51.100.0/24", "198.51.0.0/16"]);
        let k: Vec<String> = prefix_keys("2001:db8:1:a:1:2:3:4".parse().unwrap())
            .map(prefix_name)
            .collect();
        assert_eq!(k, ["2001:db8:1:a::/64", "2001:db8:1::/48", "2001:db8::/32"]);
    }

    #[test]
    fn allow_list_is_never_flagged_or_blocked() {
        let t0 = 1_600_000_000;
        let cfg = EntranceConfig {
            allow: vec!["198.51.100.0/24".parse().unwrap()],
            ..Default::default()
        };
        let mut v = Vec::new();
        for i in 0..12 {
            v.push(line(
                "198.51.100.10",
                t0 + i * 10,
                "POST",
                "/shopping/checkout",
                200,
                UA,
            ));
            v.push(line(
                "198.51.100.10",
                t0 + i * 10,
                "POST",
                "/admin/login",
                200,
                UA,
            ));
        }
        let f = run(&v, &cfg);
        assert!(
            !f.iter()
                .any(|f| f.kind == Kind::BlockAdded || f.kind == Kind::AttackCardTesting)
        );
    }
}
