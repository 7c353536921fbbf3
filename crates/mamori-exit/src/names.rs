//! Naming destinations from DNS answers (Zeek `dns.log`).

use crate::zeek::DnsRecord;
use std::collections::HashMap;
use std::net::IpAddr;

/// Answers indexed by address: (lookup time, name), sorted by time.
#[derive(Debug, Clone, Default)]
pub struct NameIndex {
    by_ip: HashMap<IpAddr, Vec<(f64, std::sync::Arc<str>)>>,
}

/// Slack for the lookup preceding the connection in the same second.
const SLACK_S: f64 = 1.0;

impl NameIndex {
    pub fn new(records: &[DnsRecord]) -> NameIndex {
        let mut by_ip: HashMap<IpAddr, Vec<(f64, std::sync::Arc<str>)>> = HashMap::new();
        let mut names: HashMap<&str, std::sync::Arc<str>> = HashMap::new();
        for r in records {
            if r.answers.is_empty() || r.query.is_empty() {
                continue;
            }
            let n = names
                .entry(r.query.as_str())
                .or_insert_with(|| std::sync::Arc::from(r.query.as_str()))
                .clone();
            for ip in &r.answers {
                by_ip.entry(*ip).or_default().push((r.ts, n.clone()));
            }
        }
        for v in by_ip.values_mut() {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        NameIndex { by_ip }
    }

    /// The name for `ip` at time `ts`: the latest lookup before it (`prior = true`), else
    /// the first lookup after it (`prior = false`).
    pub fn name_at(&self, ip: IpAddr, ts: f64) -> Option<(&str, bool)> {
        let v = self.by_ip.get(&ip)?;
        let i = v.partition_point(|(t, _)| *t <= ts + SLACK_S);
        if i > 0 {
            Some((&v[i - 1].1, true))
        } else {
            v.first().map(|(_, n)| (&**n, false))
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }
}
