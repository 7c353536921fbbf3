//! Egress allow-list policy: an nftables script letting the web user(s) (`meta skuid`)
//! reach only learned and declared destinations, plus DNS and loopback. Everything
//! else from those users is logged (rate-limited) and rejected; other users are not
//! touched. `render` is pure (dry-run text); `apply` pipes it to `nft -f -`.
//!
//! nftables matches addresses, not names: the set holds the IPs each allowed name was
//! seen at. CDN/SaaS address churn is the operational cost — re-render after learning
//! again, or declare an integration by IP.

use crate::config::DetectorConfig;
use crate::detect::{DetectorState, matches_pattern};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

/// The table the policy owns (replaced as a whole on each apply).
pub const TABLE: &str = "mamori_egress";

/// What the policy allows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyInput {
    /// Users confined by the policy: (name, uid when resolvable on this host).
    pub users: Vec<(String, Option<u32>)>,
    /// (address, protocol `tcp`/`udp`, port) → why (destination name / integration).
    pub allow: BTreeMap<(IpAddr, String, u16), String>,
    /// DNS servers the users may query (empty = any server on port 53).
    pub dns_servers: Vec<IpAddr>,
}

impl PolicyInput {
    /// From learned state: baseline destinations, gateways and declared integrations
    /// that were seen. Destinations first seen after learning are *not* allowed.
    /// Users: the configured web users that exist on this host (else all, by name).
    pub fn from_state(state: &DetectorState, cfg: &DetectorConfig) -> PolicyInput {
        let mut p = PolicyInput::default();
        for (name, d) in &state.dests {
            for ip in &d.ips {
                if ip.is_loopback() {
                    continue;
                }
                for (proto, port) in &d.ports {
                    let declared = cfg
                        .integrations
                        .iter()
                        .find(|i| matches_pattern(&i.name, name, *ip, *port));
                    let gateway = cfg
                        .gateways
                        .iter()
                        .any(|g| matches_pattern(g, name, *ip, *port));
                    let why = if let Some(i) = declared {
                        format!(
                            "{name} (declared: {}; allowed by {})",
                            i.purpose, i.allowed_by
                        )
                    } else if gateway {
                        format!("{name} (payment gateway)")
                    } else if d.baseline {
                        format!("{name} (learned)")
                    } else {
                        continue;
                    };
                    if *port == 53 {
                        if !p.dns_servers.contains(ip) {
                            p.dns_servers.push(*ip);
                        }
                        continue;
                    }
                    let proto = if proto.is_empty() {
                        "tcp"
                    } else {
                        proto.as_str()
                    };
                    if proto == "tcp" || proto == "udp" {
                        p.allow.insert((*ip, proto.to_string(), *port), why);
                    }
                }
            }
        }
        let known: Vec<(String, Option<u32>)> = cfg
            .web_users
            .iter()
            .map(|u| (u.clone(), uid_of(u)))
            .collect();
        p.users = if known.iter().any(|(_, uid)| uid.is_some()) {
            known.into_iter().filter(|(_, uid)| uid.is_some()).collect()
        } else {
            known
        };
        p
    }
}

fn uid_of(name: &str) -> Option<u32> {
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

/// nft-safe comment text (no quotes, newlines or `#`-breaking characters).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || c == '"' || c == '\\' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// A user name nft can take as a literal, or `None`.
fn safe_name(s: &str) -> Option<&str> {
    (!s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
    .then_some(s)
}

/// Render the nft script (the dry run). Deterministic for the same input.
pub fn render(p: &PolicyInput) -> String {
    let mut s = String::new();
    let users: Vec<String> = p
        .users
        .iter()
        .filter_map(|(n, uid)| match uid {
            Some(u) => Some(u.to_string()),
            None => safe_name(n).map(|n| format!("\"{n}\"")),
        })
        .collect();
    let _ = writeln!(s, "#!/usr/sbin/nft -f");
    let _ = writeln!(
        s,
        "# mamori egress allow-list policy (generated; do not edit by hand)"
    );
    let _ = writeln!(
        s,
        "# confined users: {}",
        p.users
            .iter()
            .map(|(n, u)| match u {
                Some(u) => format!("{} (uid {u})", clean(n)),
                None => clean(n),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(s, "table inet {TABLE}");
    let _ = writeln!(s, "delete table inet {TABLE}");
    let _ = writeln!(s, "table inet {TABLE} {{");
    for (set, v6) in [("allow_v4", false), ("allow_v6", true)] {
        let _ = writeln!(s, "\tset {set} {{");
        let _ = writeln!(
            s,
            "\t\ttype {} . inet_proto . inet_service",
            if v6 { "ipv6_addr" } else { "ipv4_addr" }
        );
        let elems: Vec<_> = p
            .allow
            .iter()
            .filter(|((ip, _, _), _)| ip.is_ipv6() == v6)
            .collect();
        if !elems.is_empty() {
            let _ = writeln!(s, "\t\telements = {{");
            for ((ip, proto, port), why) in elems {
                let _ = writeln!(s, "\t\t\t{ip} . {proto} . {port}, # {}", clean(why));
            }
            let _ = writeln!(s, "\t\t}}");
        }
        let _ = writeln!(s, "\t}}");
    }
    let _ = writeln!(s, "\tchain output {{");
    let _ = writeln!(
        s,
        "\t\ttype filter hook output priority filter; policy accept;"
    );
    if users.is_empty() {
        let _ = writeln!(
            s,
            "\t\t# no confined user could be resolved: the policy allows everything"
        );
        let _ = writeln!(s, "\t\taccept");
    } else {
        let _ = writeln!(s, "\t\tmeta skuid != {{ {} }} accept", users.join(", "));
    }
    let _ = writeln!(s, "\t\toifname \"lo\" accept");
    let _ = writeln!(s, "\t\tct state established,related accept");
    let (v4, v6): (Vec<&IpAddr>, Vec<&IpAddr>) = p.dns_servers.iter().partition(|ip| ip.is_ipv4());
    if p.dns_servers.is_empty() {
        let _ = writeln!(s, "\t\tmeta l4proto {{ tcp, udp }} th dport 53 accept");
    } else {
        for (fam, list) in [("ip", v4), ("ip6", v6)] {
            if !list.is_empty() {
                let l: Vec<String> = list.iter().map(|i| i.to_string()).collect();
                let _ = writeln!(
                    s,
                    "\t\t{fam} daddr {{ {} }} meta l4proto {{ tcp, udp }} th dport 53 accept",
                    l.join(", ")
                );
            }
        }
    }
    let _ = writeln!(s, "\t\tip daddr . meta l4proto . th dport @allow_v4 accept");
    let _ = writeln!(
        s,
        "\t\tip6 daddr . meta l4proto . th dport @allow_v6 accept"
    );
    let _ = writeln!(
        s,
        "\t\tlimit rate 10/minute log prefix \"mamori-egress-deny \" level warn"
    );
    let _ = writeln!(s, "\t\tcounter reject");
    let _ = writeln!(s, "\t}}");
    let _ = writeln!(s, "}}");
    s
}

/// Load the script with `nft -f -` (needs CAP_NET_ADMIN). `check_only` runs `nft -c`.
pub fn apply(script: &str, check_only: bool) -> Result<(), crate::ExitError> {
    let mut cmd = Command::new("nft");
    if check_only {
        cmd.arg("-c");
    }
    let mut child = cmd
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| crate::ExitError::Nft(format!("cannot run nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| crate::ExitError::Nft(format!("writing the script: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| crate::ExitError::Nft(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(crate::ExitError::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_allow_list() {
        let mut p = PolicyInput {
            users: vec![("www-data".into(), Some(33)), ("ghost".into(), None)],
            ..Default::default()
        };
        p.allow.insert(
            ("198.51.100.20".parse().unwrap(), "tcp".into(), 443),
            "api.pay-gateway.example (payment gateway)".into(),
        );
        p.allow.insert(
            ("2001:db8::5".parse().unwrap(), "udp".into(), 123),
            "ntp \"x\"".into(),
        );
        p.dns_servers.push("203.0.113.53".parse().unwrap());
        let s = render(&p);
        assert!(s.contains("meta skuid != { 33, \"ghost\" } accept"), "{s}");
        assert!(s.contains("198.51.100.20 . tcp . 443, # api.pay-gateway.example"));
        assert!(s.contains("2001:db8::5 . udp . 123, # ntp  x "));
        assert!(
            s.contains("ip daddr { 203.0.113.53 } meta l4proto { tcp, udp } th dport 53 accept")
        );
        assert!(s.contains("counter reject"));
        assert_eq!(s, render(&p), "deterministic");
        assert_eq!(s.matches('{').count(), s.matches('}').count());
    }
}
