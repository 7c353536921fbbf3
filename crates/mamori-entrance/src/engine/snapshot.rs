//! What the engine remembers, as a compact serde value: follow mode persists it so a
//! restart of `mamori watch` keeps weeks of per-address and per-prefix memory.
//!
//! A snapshot is pruned as it is taken (addresses idle past `memory_days` that are not
//! campaign members, blocked or learned staff; prefixes without members idle as long;
//! payment windows older than an hour;
//! closed episodes older than `memory_days`), so its size follows the engine's own
//! bounds (`max_tracked_ips`, 200,000 path shapes, 300,000 probe counters). Handed-out
//! findings are not kept, except the one each episode updates.

use super::{
    Advice, Engine, EngineStats, EpKind, Episode, IpState, Map, Pending, PrefixKey, PrefixState,
    Set, technique_names,
};
use crate::block;
use ipnet::IpNet;
use mamori_core::Finding;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// How much a snapshot holds (for logs and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SnapshotCounts {
    pub ips: usize,
    pub prefixes: usize,
    pub known_paths: usize,
    pub episodes: usize,
    pub blocks: usize,
    pub pending: usize,
}

/// Payments per (address, user agent): (window start, failures, completions).
type PayWindow = ((IpAddr, u32), (i64, u32, u32));

#[derive(Debug, Clone, Serialize, Deserialize)]
struct EpisodeRec {
    kind: u8,
    /// The finding the episode updates, as JSON (its `evidence` is free-form JSON, which a
    /// non-self-describing encoding cannot carry); `ips` is rebuilt from `members`.
    finding: String,
    start: i64,
    last: i64,
    members: Vec<IpAddr>,
    techniques: Vec<(String, u32)>,
    prefixes: Vec<(String, u32)>,
    escalated: bool,
    reasons: Vec<String>,
    /// Members when the finding was last handed out (live updates).
    reported: usize,
    active: bool,
}

/// Everything the time-based detectors remember. Encoded with postcard by
/// [`crate::follow`]; the version lives in the envelope there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    now: i64,
    last_sweep: i64,
    ips: Vec<(IpAddr, IpState)>,
    /// Per prefix (level, bits): IPv4 /24 and /16, IPv6 /64, /48 and /32.
    prefixes: Vec<(PrefixKey, PrefixState)>,
    /// Path-shape hashes (fixed 8 bytes: varints would make random hashes longer).
    known_paths: Vec<[u8; 8]>,
    probe_pop: Vec<([u8; 8], u16)>,
    pay: Vec<PayWindow>,
    pending: Vec<(i64, Pending)>,
    cust_window: Vec<(i64, IpAddr)>,
    admin_window: Vec<(i64, IpAddr)>,
    last_stuff_check: i64,
    last_spray_check: i64,
    episodes: Vec<EpisodeRec>,
    campaign_recent: Vec<(i64, IpAddr)>,
    campaign_techs: u32,
    /// Active blocks: network and end (event time).
    blocks: Vec<(IpNet, i64)>,
    stats: EngineStats,
    advice: Vec<Advice>,
    verified: Vec<(IpAddr, bool)>,
}

impl Snapshot {
    pub fn counts(&self) -> SnapshotCounts {
        SnapshotCounts {
            ips: self.ips.len(),
            prefixes: self.prefixes.len(),
            known_paths: self.known_paths.len(),
            episodes: self.episodes.len(),
            blocks: self.blocks.len(),
            pending: self.pending.len(),
        }
    }
}

fn kind_code(k: EpKind) -> u8 {
    Engine::kind_idx(k) as u8
}

fn kind_of(c: u8) -> Option<EpKind> {
    Some(match c {
        0 => EpKind::Stuffing,
        1 => EpKind::Spraying,
        2 => EpKind::CardTesting,
        3 => EpKind::Campaign,
        _ => return None,
    })
}

impl Engine {
    /// The engine's memory, pruned of what has expired at its current event time.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let now = self.now;
        let keep = i64::from(self.cfg.memory_days) * 86_400;
        let live = |s: &IpState| {
            s.member || s.blocked_until > now || s.admin_auth || now.saturating_sub(s.last) <= keep
        };
        let ips: Vec<(IpAddr, IpState)> = self
            .ips
            .iter()
            .filter(|(_, s)| live(s))
            .map(|(ip, s)| {
                let mut s = s.clone();
                s.req_findings = Vec::new();
                (*ip, s)
            })
            .collect();
        let tracked: Set<IpAddr> = ips.iter().map(|(ip, _)| *ip).collect();
        let mut episodes = Vec::new();
        for (e, ep) in self.episodes.iter().enumerate() {
            let active = self.active.contains(&Some(e));
            if !active && now.saturating_sub(ep.last) > keep {
                continue;
            }
            let Some(f) = self.findings.get(ep.finding) else {
                continue;
            };
            let mut f = f.clone();
            f.ips = None;
            let Ok(finding) = serde_json::to_string(&f) else {
                continue;
            };
            let mut techniques: Vec<(String, u32)> = ep
                .techniques
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect();
            techniques.sort();
            let mut prefixes: Vec<(String, u32)> =
                ep.prefixes.iter().map(|(k, v)| (k.clone(), *v)).collect();
            prefixes.sort();
            episodes.push(EpisodeRec {
                kind: kind_code(ep.kind),
                finding,
                start: ep.start,
                last: ep.last,
                members: ep.members.clone(),
                techniques,
                prefixes,
                escalated: ep.escalated,
                reasons: ep.reasons.iter().map(|r| r.to_string()).collect(),
                reported: self.episode_reported.get(e).copied().unwrap_or(0),
                active,
            });
        }
        // Sorted, so the same memory always gives the same bytes.
        let mut ips = ips;
        ips.sort_by_key(|(ip, _)| *ip);
        let mut prefixes: Vec<(PrefixKey, PrefixState)> = self
            .prefixes
            .iter()
            .filter(|(_, p)| p.members > 0 || now.saturating_sub(p.last) <= keep)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        prefixes.sort_by_key(|(k, _)| *k);
        let mut known_paths: Vec<u64> = self.known_paths.iter().copied().collect();
        known_paths.sort_unstable();
        let mut probe_pop: Vec<(u64, u16)> = self.probe_pop.iter().map(|(h, c)| (*h, *c)).collect();
        probe_pop.sort_unstable();
        let mut pay: Vec<PayWindow> = self
            .pay
            .iter()
            .filter(|(_, w)| now.saturating_sub(w.0) <= 3600)
            .map(|(k, v)| (*k, *v))
            .collect();
        pay.sort_unstable();
        let mut verified: Vec<(IpAddr, bool)> = self
            .verified
            .iter()
            .filter(|(ip, _)| tracked.contains(*ip))
            .map(|(ip, v)| (*ip, *v))
            .collect();
        verified.sort_unstable();
        Snapshot {
            now,
            last_sweep: self.last_sweep,
            ips,
            prefixes,
            known_paths: known_paths.into_iter().map(u64::to_le_bytes).collect(),
            probe_pop: probe_pop
                .into_iter()
                .map(|(h, c)| (h.to_le_bytes(), c))
                .collect(),
            pay,
            pending: self.pending.iter().copied().collect(),
            cust_window: self
                .cust_window
                .iter()
                .filter(|(t, _)| now.saturating_sub(*t) <= 30 * 60)
                .copied()
                .collect(),
            admin_window: self
                .admin_window
                .iter()
                .filter(|(t, _)| now.saturating_sub(*t) <= 24 * 3600)
                .copied()
                .collect(),
            last_stuff_check: self.last_stuff_check,
            last_spray_check: self.last_spray_check,
            episodes,
            campaign_recent: {
                let window = i64::from(self.cfg.campaign_window_days) * 86_400;
                self.campaign_recent
                    .iter()
                    .filter(|(t, _)| now.saturating_sub(*t) <= window)
                    .copied()
                    .collect()
            },
            campaign_techs: self.campaign_techs,
            blocks: {
                let mut b: Vec<(IpNet, i64)> =
                    self.blocks.iter().map(|(n, (u, _))| (*n, *u)).collect();
                b.sort();
                b
            },
            stats: self.stats.clone(),
            advice: self.advice.clone(),
            verified,
        }
    }

    /// Take over the memory of `s` (a fresh engine only: findings made so far are
    /// dropped). Episodes come back with their finding, which is not handed out again.
    pub(crate) fn restore(&mut self, s: Snapshot) {
        let all_techniques = technique_names(u32::MAX);
        self.now = s.now;
        self.last_sweep = s.last_sweep;
        self.ips = s.ips.into_iter().collect();
        self.prefixes = s.prefixes.into_iter().collect();
        self.known_paths = s.known_paths.into_iter().map(u64::from_le_bytes).collect();
        self.probe_pop = s
            .probe_pop
            .into_iter()
            .map(|(h, c)| (u64::from_le_bytes(h), c))
            .collect();
        self.pay = s.pay.into_iter().collect();
        let mut pending = s.pending;
        pending.sort_by_key(|(due, _)| *due);
        self.pending = pending.into();
        self.cust_window = s.cust_window.into();
        self.admin_window = s.admin_window.into();
        self.last_stuff_check = s.last_stuff_check;
        self.last_spray_check = s.last_spray_check;
        self.findings = Vec::new();
        self.episodes = Vec::new();
        self.episode_reported = Vec::new();
        self.active = [None; 4];
        for rec in s.episodes {
            let (Some(kind), Ok(finding)) = (
                kind_of(rec.kind),
                serde_json::from_str::<Finding>(&rec.finding),
            ) else {
                continue;
            };
            let e = self.episodes.len();
            if rec.active {
                self.active[Engine::kind_idx(kind)] = Some(e);
            }
            let mut techniques: Map<&'static str, u32> = Map::default();
            for (k, v) in rec.techniques {
                if let Some(name) = all_techniques.iter().find(|n| **n == k) {
                    techniques.insert(name, v);
                }
            }
            self.findings.push(finding);
            self.episodes.push(Episode {
                kind,
                finding: self.findings.len() - 1,
                start: rec.start,
                last: rec.last,
                member_set: rec.members.iter().copied().collect(),
                members: rec.members,
                techniques,
                prefixes: rec.prefixes.into_iter().collect(),
                escalated: rec.escalated,
                reasons: rec.reasons.into_iter().map(Into::into).collect(),
            });
            self.episode_reported.push(rec.reported);
            self.write_episode(e);
        }
        self.emitted = self.findings.len();
        self.campaign_recent = s.campaign_recent.into();
        self.campaign_techs = s.campaign_techs;
        // The allow-list may have grown since the save: a block it now covers is lifted.
        let allow = &self.cfg.allow;
        self.blocks = s
            .blocks
            .into_iter()
            .filter(|(n, _)| {
                !block::never_block(n.network())
                    && !allow.iter().any(|a| n.contains(a) || a.contains(n))
            })
            .map(|(n, u)| (n, (u, usize::MAX)))
            .collect();
        self.stats = s.stats;
        self.advice = s.advice;
        self.verified = s.verified.into_iter().collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EntranceConfig;
    use crate::parse::{JsonFields, Scratch, parse_line};
    use mamori_core::{Kind, Lang};
    use std::sync::Arc;

    const UA: &str = "Mozilla/5.0 (Windows NT 10.0) Chrome/120";
    const T0: i64 = 1_700_000_000;

    fn engine() -> Engine {
        Engine::new(
            Arc::new(EntranceConfig::default()),
            "shop",
            Lang::En,
            true,
            None,
        )
    }

    fn line(ip: &str, t: i64, m: &str, p: &str, st: u16) -> String {
        let d = super::super::ts(t).format("%d/%b/%Y:%H:%M:%S +0000");
        format!("{ip} - - [{d}] \"{m} {p} HTTP/1.1\" {st} 100 \"-\" \"{UA}\"")
    }

    fn feed(e: &mut Engine, lines: &[String]) {
        let f = JsonFields::default();
        for l in lines {
            let mut s = Scratch::default();
            e.observe(&parse_line(l.as_bytes(), None, &f, &mut s).unwrap());
        }
    }

    /// Customer login failures from 12 addresses, one a minute, plus some benign traffic.
    fn stuffing() -> Vec<String> {
        let mut v = Vec::new();
        for i in 0..12i64 {
            let t = T0 + i * 60;
            v.push(line(
                &format!("198.51.100.{}", 10 + i),
                t,
                "POST",
                "/mypage/login",
                200,
            ));
            v.push(line(
                &format!("192.0.2.{}", 10 + i),
                t + 5,
                "GET",
                "/products/detail/3",
                200,
            ));
        }
        v
    }

    /// Encoding without the episode findings (their evidence is rewritten on restore).
    fn bytes(mut s: Snapshot) -> Vec<u8> {
        for e in &mut s.episodes {
            e.finding.clear();
        }
        postcard::to_stdvec(&s).unwrap()
    }

    fn members(e: &Engine, kind: Kind) -> Vec<String> {
        let f = e.findings.iter().find(|f| f.kind == kind).expect("finding");
        let mut v = f.ips.clone().unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn round_trip_keeps_everything_and_resumes_like_one_run() {
        let lines = stuffing();
        let (a, b) = lines.split_at(12);
        // One engine reading everything.
        let mut whole = engine();
        feed(&mut whole, &lines);
        whole.finish();
        // One engine stopped half way, saved, restored, then reading the rest.
        let mut first = engine();
        feed(&mut first, a);
        let snap = first.snapshot();
        let encoded = postcard::to_stdvec(&snap).unwrap();
        let decoded: Snapshot = postcard::from_bytes(&encoded).unwrap();
        let mut second = engine();
        second.restore(decoded);
        assert_eq!(bytes(second.snapshot()), bytes(snap), "restored = saved");
        feed(&mut second, b);
        second.finish();
        let want = members(&whole, Kind::AttackCredentialStuffing);
        assert_eq!(want.len(), 12, "{want:?}");
        assert_eq!(members(&second, Kind::AttackCredentialStuffing), want);
        assert_eq!(second.stats.requests, whole.stats.requests);
    }

    #[test]
    fn restored_episode_keeps_growing_and_is_not_handed_out_again() {
        let lines = stuffing();
        let mut first = engine();
        feed(&mut first, &lines[..20]);
        let out = first.take_new();
        assert!(out.iter().any(|f| f.kind == Kind::AttackCredentialStuffing));
        let mut second = engine();
        second.restore(first.snapshot());
        assert!(second.take_new().is_empty(), "nothing is handed out twice");
        feed(&mut second, &lines[20..]);
        second.finish();
        assert_eq!(members(&second, Kind::AttackCredentialStuffing).len(), 12);
    }

    #[test]
    fn snapshot_prunes_what_has_expired() {
        let mut e = engine();
        let day = 86_400;
        let mut v = vec![
            // Idle benign address, seen 40 days before the end.
            line("192.0.2.50", T0, "GET", "/", 200),
            // A payment window long closed.
            line("192.0.2.51", T0, "POST", "/shopping/checkout", 302),
        ];
        // Card testing (an episode and a block) 40 days before the end.
        for i in 0..6 {
            v.push(line(
                "203.0.113.7",
                T0 + i * 10,
                "POST",
                "/shopping/checkout",
                200,
            ));
        }
        // Recent traffic.
        v.push(line("192.0.2.60", T0 + 40 * day, "GET", "/", 200));
        feed(&mut e, &v);
        e.advance(T0 + 40 * day + 60);
        let s = e.snapshot();
        let ips: Vec<String> = s.ips.iter().map(|(ip, _)| ip.to_string()).collect();
        assert!(!ips.contains(&"192.0.2.50".to_string()), "{ips:?}");
        assert!(ips.contains(&"192.0.2.60".to_string()), "{ips:?}");
        assert!(s.pay.is_empty(), "{:?}", s.pay);
        assert!(
            s.episodes.is_empty(),
            "closed episode 40 days old is dropped"
        );
        assert!(s.blocks.is_empty(), "the 24 h block expired and was lifted");
        assert!(
            e.findings.iter().any(|f| f.kind == Kind::BlockRemoved),
            "expiry is reported"
        );
        // Campaign members are kept however old (the campaign's memory).
        let mut e = engine();
        feed(&mut e, &v[..1]);
        if let Some(st) = e.ips.values_mut().next() {
            st.member = true;
        }
        e.advance(T0 + 40 * day);
        assert_eq!(e.snapshot().counts().ips, 1);
    }
}
