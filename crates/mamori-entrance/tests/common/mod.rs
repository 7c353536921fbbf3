//! Scoring of `mamori_entrance::analyze` against shopsim ground truth
//! (`OUT.truth.jsonl`, `OUT.benign.jsonl`, `OUT.labels.csv`). Shared by the integration
//! test and `examples/eval.rs`.
#![allow(dead_code)]

use mamori_core::{Finding, Kind};
use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Debug, Default)]
pub struct Score {
    pub lines: u64,
    pub campaign_total: usize,
    pub campaign_found: usize,
    /// Seconds between the first campaign finding and the campaign's admin-login success
    /// (positive = before). None if no success or no finding.
    pub campaign_lead_secs: Option<i64>,
    pub campaign_first_finding: bool,
    pub scanner_latency: Option<i64>,
    pub stuffing_total: usize,
    pub stuffing_found: usize,
    pub spraying_latency: Option<i64>,
    pub cardtest_latency: Option<i64>,
    pub cardtest_found: usize,
    pub cardtest_total: usize,
    pub benign_total: usize,
    pub benign_flagged: Vec<String>,
    pub protected_flagged: Vec<String>,
    pub webshell_first_alerted: Option<bool>,
}

impl Score {
    pub fn campaign_pct(&self) -> f64 {
        100.0 * self.campaign_found as f64 / self.campaign_total.max(1) as f64
    }
    pub fn stuffing_pct(&self) -> f64 {
        100.0 * self.stuffing_found as f64 / self.stuffing_total.max(1) as f64
    }
    pub fn benign_pct(&self) -> f64 {
        100.0 * self.benign_flagged.len() as f64 / self.benign_total.max(1) as f64
    }
    pub fn table(&self) -> String {
        format!(
            "lines {} | campaign {}/{} ({:.1} %), first finding {} h before admin success | scanner latency {:?} s | stuffing {}/{} ({:.1} %) | spraying latency {:?} h | card testing latency {:?} s ({}/{} IPs) | benign flagged {}/{} ({:.3} %) {:?} | protected flagged {:?}",
            self.lines,
            self.campaign_found,
            self.campaign_total,
            self.campaign_pct(),
            self.campaign_lead_secs
                .map(|s| s / 3600)
                .map_or("n/a".into(), |h| h.to_string()),
            self.scanner_latency,
            self.stuffing_found,
            self.stuffing_total,
            self.stuffing_pct(),
            self.spraying_latency.map(|s| s / 3600),
            self.cardtest_latency,
            self.cardtest_found,
            self.cardtest_total,
            self.benign_flagged.len(),
            self.benign_total,
            self.benign_pct(),
            &self.benign_flagged[..self.benign_flagged.len().min(10)],
            self.protected_flagged,
        )
    }
}

/// `12345` → `12,345`.
fn grouped(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Score {
    /// One row of the detection table in docs/entrance.md (its header is printed by
    /// bench/entrance-detect.sh); latencies on the log's clock.
    pub fn markdown_row(&self, label: &str) -> String {
        let opt = |v: Option<i64>, div: i64, unit: &str| {
            v.map_or("not found".to_string(), |x| format!("{} {unit}", x / div))
        };
        format!(
            "| {label} | {}/{} ({:.1} %) | {} | {} | {}/{} ({:.1} %) | {} | {} ({}/{}) | {}/{} ({:.3} %) | {} |",
            self.campaign_found,
            self.campaign_total,
            self.campaign_pct(),
            opt(self.campaign_lead_secs, 3600, "h"),
            opt(self.scanner_latency, 1, "s"),
            self.stuffing_found,
            self.stuffing_total,
            self.stuffing_pct(),
            opt(self.spraying_latency, 3600, "h"),
            opt(self.cardtest_latency, 1, "s"),
            self.cardtest_found,
            self.cardtest_total,
            self.benign_flagged.len(),
            grouped(self.benign_total),
            self.benign_pct(),
            self.protected_flagged.len(),
        )
    }
}

fn ts(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp())
        .unwrap_or(0)
}

fn line_time(line: &str) -> Option<i64> {
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        return chrono::DateTime::parse_from_rfc3339(v["time_local"].as_str()?)
            .ok()
            .map(|d| d.timestamp());
    }
    let a = line.find('[')?;
    let b = line[a..].find(']')? + a;
    chrono::DateTime::parse_from_str(&line[a + 1..b], "%d/%b/%Y:%H:%M:%S %z")
        .ok()
        .map(|d| d.timestamp())
}

pub fn score(log: &Path, findings: &[Finding]) -> Score {
    let p = |ext: &str| PathBuf::from(format!("{}{}", log.display(), ext));
    let mut truth: HashMap<String, serde_json::Value> = HashMap::new();
    for l in std::fs::read_to_string(p(".truth.jsonl"))
        .expect("truth file")
        .lines()
    {
        let v: serde_json::Value = serde_json::from_str(l).expect("truth json");
        truth.insert(v["ip"].as_str().unwrap_or("").to_string(), v);
    }
    let mut protected: HashSet<String> = HashSet::new();
    let mut carrier_prefixes: Vec<ipnet::IpNet> = Vec::new();
    for l in std::fs::read_to_string(p(".benign.jsonl"))
        .expect("benign file")
        .lines()
    {
        let v: serde_json::Value = serde_json::from_str(l).expect("benign json");
        match v["category"].as_str().unwrap_or("") {
            "office" | "bot" | "monitor" | "mobile_cgnat" => {
                protected.insert(v["ip"].as_str().unwrap_or("").to_string());
            }
            "mobile_carrier_v6" => {
                if let Ok(n) = v["prefix"].as_str().unwrap_or("").parse() {
                    carrier_prefixes.push(n);
                }
            }
            _ => {}
        }
    }
    // Line numbers of interesting labels.
    let mut want_lines: HashMap<u64, &'static str> = HashMap::new();
    let labels = std::fs::File::open(p(".labels.csv")).expect("labels");
    for l in std::io::BufReader::new(labels).lines().skip(1) {
        let l = l.expect("labels line");
        let cols: Vec<&str> = l.split(',').collect();
        if cols.len() >= 5 {
            let tag = match (cols[2], cols[4]) {
                (_, "admin_login_success") => Some("admin_success"),
                ("scanner", _) => Some("scanner"),
                ("password_spraying", _) => Some("password_spraying"),
                ("card_testing", _) => Some("card_testing"),
                _ => None,
            };
            if let (Some(tag), Ok(n)) = (tag, cols[0].parse::<u64>()) {
                want_lines.insert(n, tag);
            }
        }
    }
    // One pass over the log: distinct IPs and the times of interesting lines.
    let mut ips: HashSet<String> = HashSet::new();
    let mut admin_success: Option<i64> = None;
    let mut lines = 0u64;
    // Class start times as written in the log (not the truth file): latencies are
    // measured on the log's own clock, the one the detector sees.
    let mut class_start: HashMap<&'static str, i64> = HashMap::new();
    let f = std::fs::File::open(log).expect("log");
    for (i, l) in std::io::BufReader::new(f).split(b'\n').enumerate() {
        let l = l.expect("log line");
        lines += 1;
        let s = String::from_utf8_lossy(&l);
        let ip_field = if s.starts_with('{') {
            serde_json::from_str::<serde_json::Value>(&s)
                .ok()
                .and_then(|v| v["remote_addr"].as_str().map(str::to_string))
        } else {
            s.split(' ').next().map(str::to_string)
        };
        if let Some(ip) = ip_field.as_deref()
            && !ips.contains(ip)
        {
            ips.insert(ip.to_string());
        }
        match want_lines.get(&(i as u64 + 1)) {
            Some(&"admin_success") => admin_success = line_time(&s),
            Some(tag) => {
                if let Some(t) = line_time(&s) {
                    let e = class_start.entry(*tag).or_insert(t);
                    *e = (*e).min(t);
                }
            }
            None => {}
        }
    }
    let mut sc = Score {
        lines,
        ..Default::default()
    };
    // Flagged sets.
    let mut flagged: HashSet<String> = HashSet::new();
    let mut camp_or_req: HashSet<String> = HashSet::new();
    let mut stuffing: HashSet<String> = HashSet::new();
    let mut cardtest: HashSet<String> = HashSet::new();
    let mut first_campaign: Option<i64> = None;
    let mut first_spray: Option<i64> = None;
    let mut first_card: Option<i64> = None;
    let mut scanner_first: Option<i64> = None;
    let scanner_ip = truth
        .iter()
        .find(|(_, v)| v["class"] == "scanner")
        .map(|(k, _)| (k.clone(), class_start.get("scanner").copied().unwrap_or(0)));
    for f in findings {
        let t = f.time.timestamp();
        let mut all: Vec<String> = f.ips.clone().unwrap_or_default();
        if let Some(ip) = &f.ip {
            all.push(ip.clone());
        }
        if let Some(a) = f.evidence.get("address").and_then(|a| a.as_str()) {
            all.push(a.to_string());
        }
        if f.kind != Kind::BlockRemoved {
            flagged.extend(all.iter().cloned());
        }
        match f.kind {
            Kind::AttackCampaign => {
                camp_or_req.extend(all.iter().cloned());
                first_campaign = Some(first_campaign.map_or(t, |x: i64| x.min(t)));
            }
            Kind::AttackRequest => {
                camp_or_req.extend(all.iter().cloned());
                if let Some((sip, _)) = &scanner_ip
                    && all.contains(sip)
                {
                    scanner_first = Some(scanner_first.map_or(t, |x: i64| x.min(t)));
                }
            }
            Kind::AttackCredentialStuffing => stuffing.extend(all.iter().cloned()),
            Kind::AttackPasswordSpraying => {
                first_spray = Some(first_spray.map_or(t, |x: i64| x.min(t)))
            }
            Kind::AttackCardTesting => {
                cardtest.extend(all.iter().cloned());
                first_card = Some(first_card.map_or(t, |x: i64| x.min(t)));
            }
            _ => {}
        }
    }
    let class_ips = |c: &str| -> Vec<(&String, &serde_json::Value)> {
        truth.iter().filter(|(_, v)| v["class"] == c).collect()
    };
    let camp = class_ips("campaign");
    sc.campaign_total = camp.len();
    sc.campaign_found = camp
        .iter()
        .filter(|(ip, _)| camp_or_req.contains(*ip))
        .count();
    if let (Some(fc), Some(adm)) = (first_campaign, admin_success) {
        sc.campaign_lead_secs = Some(adm - fc);
    }
    sc.campaign_first_finding = first_campaign.is_some();
    if let (Some((_, t0)), Some(t1)) = (&scanner_ip, scanner_first) {
        sc.scanner_latency = Some(t1 - t0);
    }
    let st = class_ips("credential_stuffing");
    sc.stuffing_total = st.len();
    sc.stuffing_found = st.iter().filter(|(ip, _)| stuffing.contains(*ip)).count();
    let spray_start = class_start.get("password_spraying").copied();
    if let (Some(a), Some(b)) = (spray_start, first_spray) {
        sc.spraying_latency = Some(b - a);
    }
    let ct = class_ips("card_testing");
    sc.cardtest_total = ct.len();
    sc.cardtest_found = ct.iter().filter(|(ip, _)| cardtest.contains(*ip)).count();
    let ct_start = class_start.get("card_testing").copied();
    if let (Some(a), Some(b)) = (ct_start, first_card) {
        sc.cardtest_latency = Some(b - a);
    }
    // Benign: every address in the log that is not an attacker.
    let mut benign_flagged = Vec::new();
    for ip in &ips {
        if truth.contains_key(ip) {
            continue;
        }
        sc.benign_total += 1;
        if flagged.contains(ip) {
            benign_flagged.push(ip.clone());
        }
    }
    // Flagged blocks may be /64 nets: map back through evidence.address above.
    benign_flagged.sort();
    sc.benign_flagged = benign_flagged;
    for ip in &protected {
        if flagged.contains(ip) {
            sc.protected_flagged.push(ip.clone());
        }
    }
    for ip in &sc.benign_flagged {
        if let Ok(a) = ip.parse::<std::net::IpAddr>()
            && carrier_prefixes.iter().any(|n| n.contains(&a))
        {
            sc.protected_flagged.push(ip.clone());
        }
    }
    sc
}

/// Path of shopsim relative to the workspace root, if present.
pub fn shopsim() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = root.join("../shared/scenarios/shopsim.py");
    p.exists().then_some(p)
}
