//! Card guideline / exit defence: is outbound traffic restricted at all? A skimmer on the
//! server sends card data out; a default-deny `output` chain, or rules dropping what the
//! web user (`meta skuid` / `-m owner --uid-owner`) starts, stops that. Reads
//! `nft list ruleset` and `iptables-save` (real root only), else `/etc/nftables.conf`
//! and `/etc/iptables/rules.v4`.

use crate::audit::{Ctx, Outcome};
use mamori_core::tr;

/// What a ruleset does to outbound traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Egress {
    /// Chains hooked on output whose policy is drop.
    pub default_deny: Vec<String>,
    /// Output rules that drop/reject (or divert) by the local user or group.
    pub by_user: Vec<String>,
    /// Output hook chains seen at all.
    pub output_chains: usize,
}

impl Egress {
    pub fn restricted(&self) -> bool {
        !self.default_deny.is_empty() || !self.by_user.is_empty()
    }
    fn merge(&mut self, o: Egress) {
        self.default_deny.extend(o.default_deny);
        self.by_user.extend(o.by_user);
        self.output_chains += o.output_chains;
    }
}

fn stops(rule: &str) -> bool {
    rule.split_whitespace()
        .any(|w| matches!(w, "drop" | "reject" | "jump" | "goto"))
}

/// `nft list ruleset` output (or an nftables.conf).
pub fn parse_nft(text: &str) -> Egress {
    let mut e = Egress::default();
    let mut table = String::new();
    let mut chain: Option<(String, bool)> = None; // (name, hooked on output)
    let mut depth = 0i32;
    for raw in text.lines() {
        let l = raw.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let opens = l.matches('{').count() as i32;
        let closes = l.matches('}').count() as i32;
        if let Some(rest) = l.strip_prefix("table ") {
            table = rest.trim_end_matches('{').trim().to_string();
        } else if let Some(rest) = l.strip_prefix("chain ") {
            chain = Some((rest.trim_end_matches('{').trim().to_string(), false));
        } else if let Some((name, hooked)) = chain.as_mut() {
            if l.starts_with("type ") && l.contains("hook output") {
                *hooked = true;
                e.output_chains += 1;
                if l.contains("policy drop") {
                    e.default_deny.push(format!("{table} {name}"));
                }
            } else if *hooked && (l.contains("skuid") || l.contains("skgid")) && stops(l) {
                e.by_user.push(format!("{table} {name}: {l}"));
            }
        }
        depth += opens - closes;
        // Leaving a chain's braces (depth back to the table's).
        if closes > opens && depth <= 1 {
            chain = None;
        }
    }
    e
}

/// `iptables-save` output (or /etc/iptables/rules.v4).
pub fn parse_iptables_save(text: &str) -> Egress {
    let mut e = Egress::default();
    let mut table = String::new();
    for raw in text.lines() {
        let l = raw.trim();
        if let Some(t) = l.strip_prefix('*') {
            table = t.to_string();
        } else if let Some(rest) = l.strip_prefix(":OUTPUT ") {
            e.output_chains += 1;
            if rest.starts_with("DROP") {
                e.default_deny.push(format!("{table} OUTPUT"));
            }
        } else if l.starts_with("-A OUTPUT ")
            && (l.contains("--uid-owner") || l.contains("--gid-owner"))
            && (l.contains("-j DROP") || l.contains("-j REJECT"))
        {
            e.by_user.push(format!("{table}: {l}"));
        }
    }
    e
}

pub fn egress(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let mut e = Egress::default();
    let mut sources = Vec::new();
    let mut problems = Vec::new();
    type Parser = fn(&str) -> Egress;
    let sources_of: [(&str, &[&str], &str, Parser); 2] = [
        ("nft", &["list", "ruleset"], "/etc/nftables.conf", parse_nft),
        (
            "iptables-save",
            &[],
            "/etc/iptables/rules.v4",
            parse_iptables_save,
        ),
    ];
    for (prog, args, file, parse) in sources_of {
        let cmd = [prog]
            .iter()
            .chain(args)
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        match ctx.sys.run(prog, args) {
            Some(o) if o.status == Some(0) => {
                e.merge(parse(&o.stdout));
                sources.push(cmd);
            }
            Some(o) => problems.push(format!(
                "{cmd}: {}",
                o.stderr.trim().lines().last().unwrap_or("failed")
            )),
            None => {
                if let Ok(t) = ctx.sys.read(file) {
                    e.merge(parse(&t));
                    sources.push(file.to_string());
                }
            }
        }
    }
    let details = serde_json::json!({
        "default_deny": e.default_deny,
        "user_rules": e.by_user,
        "output_chains": e.output_chains,
        "problems": problems,
    });
    if sources.is_empty() {
        if !problems.is_empty() {
            let l = problems.join("; ");
            return Outcome::na(
                tr!(
                    lang,
                    "firewall rules unreadable: {l}",
                    "ファイアウォールのルールを読めません: {l}"
                ),
                "nft / iptables-save",
            )
            .with_details(details);
        }
        return Outcome::missing(
            tr!(
                lang,
                "no firewall (neither nft nor iptables rules): outbound traffic is unrestricted",
                "ファイアウォールがありません (nft も iptables もなし): 外向き通信は無制限です"
            ),
            "nft / iptables-save",
        );
    }
    let source = sources.join(", ");
    if !e.default_deny.is_empty() {
        let l = e.default_deny.join(", ");
        return Outcome::pass(
            tr!(
                lang,
                "outbound traffic denied by default ({l})",
                "外向き通信は既定で拒否されています ({l})"
            ),
            source,
        )
        .with_details(details);
    }
    if !e.by_user.is_empty() {
        let n = e.by_user.len();
        return Outcome::pass(
            tr!(
                lang,
                "outbound traffic restricted by user ({n} rules)",
                "外向き通信はユーザー単位で制限されています (ルール {n} 件)"
            ),
            source,
        )
        .with_details(details);
    }
    Outcome::warn(
        tr!(
            lang,
            "outbound traffic accepted to anywhere: no default-deny output chain, no rule for the web user",
            "外向き通信がすべて許可されています: output チェーンの既定拒否も Web ユーザーの制限もありません"
        ),
        source,
    )
    .with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nft_ruleset() {
        let accept_all = "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\tct state established,related accept\n\t\ttcp dport { 22, 80, 443 } accept\n\t}\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\t}\n\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n\t}\n}\n";
        let e = parse_nft(accept_all);
        assert_eq!(e.output_chains, 1);
        assert!(!e.restricted(), "{e:?}");
        let by_user = "table inet filter {\n\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n\t\tct state established,related accept\n\t\tmeta skuid \"www-data\" ip daddr != { 203.0.113.10, 198.51.100.7 } tcp dport 443 counter packets 0 bytes 0 reject with icmp type admin-prohibited\n\t}\n}\ntable ip nat {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t}\n}\n";
        let e = parse_nft(by_user);
        assert!(e.restricted());
        assert_eq!(e.by_user.len(), 1);
        assert!(e.by_user[0].starts_with("inet filter output"), "{e:?}");
        let deny = "table inet egress {\n  chain out {\n    type filter hook output priority 0; policy drop;\n    oif \"lo\" accept\n  }\n}\n";
        assert_eq!(parse_nft(deny).default_deny, ["inet egress out"]);
        // A skuid rule in an input chain restricts nothing outbound.
        let wrong = "table inet f {\n chain input {\n  type filter hook input priority 0; policy accept;\n  meta skuid 33 drop\n }\n}\n";
        assert!(!parse_nft(wrong).restricted());
    }

    #[test]
    fn iptables_save() {
        let t = "# Generated by iptables-save v1.8.9 (nf_tables)\n*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [1000:50000]\n-A INPUT -i lo -j ACCEPT\n-A OUTPUT -m owner --uid-owner 33 -m conntrack --ctstate NEW -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n";
        let e = parse_iptables_save(t);
        assert_eq!(e.output_chains, 1);
        assert_eq!(e.by_user.len(), 1);
        let open = "*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m owner --uid-owner 33 -j ACCEPT\nCOMMIT\n";
        assert!(!parse_iptables_save(open).restricted());
        let deny = "*filter\n:OUTPUT DROP [0:0]\n-A OUTPUT -o lo -j ACCEPT\nCOMMIT\n";
        assert_eq!(parse_iptables_save(deny).default_deny, ["filter OUTPUT"]);
    }
}
