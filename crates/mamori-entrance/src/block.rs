//! Responses: blocking backends (nftables, nginx deny list, print-only), the allow-list,
//! shared-address detection and search-bot verification.

use ipnet::IpNet;
use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// One block to apply: a network and how long it should last from now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEntry {
    pub net: IpNet,
    pub timeout_secs: u64,
}

/// Where block decisions go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockBackend {
    /// Decide and report (`block.added` / `block.removed` findings); apply nothing.
    PrintOnly,
    /// An nftables table `inet <table>` with sets `deny4`/`deny6` (CIDR + timeouts) and an
    /// input-hook chain dropping their members. `dry_run` returns the script without
    /// running `nft`. `command_prefix` wraps the call (e.g. `ip netns exec NS`).
    Nftables {
        table: String,
        dry_run: bool,
        command_prefix: Vec<String>,
    },
    /// An nginx include file of `deny ADDR;` lines (`include` it in the server block and
    /// reload nginx). Written atomically.
    NginxDeny { path: PathBuf },
}

impl BlockBackend {
    /// The default nftables backend (table `mamori`), running `nft` directly.
    pub fn nftables(dry_run: bool) -> BlockBackend {
        BlockBackend::Nftables {
            table: "mamori".into(),
            dry_run,
            command_prefix: Vec::new(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            BlockBackend::PrintOnly => "print",
            BlockBackend::Nftables { .. } => "nftables",
            BlockBackend::NginxDeny { .. } => "nginx",
        }
    }

    /// Apply `entries`. Returns the script or file content that was (or, in dry-run,
    /// would be) applied.
    pub fn apply(&self, entries: &[BlockEntry]) -> Result<String, BlockError> {
        self.apply_as(entries, false)
    }

    /// Make `entries` the whole block list (live blocking): blocks not in it are lifted.
    pub fn replace(&self, entries: &[BlockEntry]) -> Result<String, BlockError> {
        self.apply_as(entries, true)
    }

    fn apply_as(&self, entries: &[BlockEntry], replace: bool) -> Result<String, BlockError> {
        let entries: Vec<BlockEntry> = entries
            .iter()
            .filter(|e| !never_block(e.net.network()))
            .cloned()
            .collect();
        match self {
            BlockBackend::PrintOnly => Ok(String::new()),
            BlockBackend::Nftables {
                table,
                dry_run,
                command_prefix,
            } => {
                let script = nft_script(table, &entries, replace)?;
                if !dry_run {
                    run_nft(command_prefix, &["-f", "-"], Some(&script))?;
                }
                Ok(script)
            }
            BlockBackend::NginxDeny { path } => {
                let mut body = String::from("# written by mamori: blocked addresses\n");
                for e in entries {
                    body.push_str(&format!("deny {};\n", e.net));
                }
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, &body).map_err(|e| BlockError::Io(tmp.clone(), e))?;
                std::fs::rename(&tmp, path).map_err(|e| BlockError::Io(path.clone(), e))?;
                Ok(body)
            }
        }
    }
}

/// A failed block application.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("invalid nftables table name `{0}` (use letters, digits, `_`)")]
    TableName(String),
    #[error("could not run nft: {0}")]
    Spawn(std::io::Error),
    #[error("nft failed ({status}): {stderr}")]
    Nft { status: String, stderr: String },
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The nftables script: idempotent table/sets/chain, then the elements.
///
/// `replace`: the entries are the whole set (live blocking): the sets are flushed first
/// in the same transaction, so lifted blocks leave the kernel at once. Otherwise the
/// entries are added to what is there (a batch run adds to what `watch` blocked).
pub fn nft_script(
    table: &str,
    entries: &[BlockEntry],
    replace: bool,
) -> Result<String, BlockError> {
    if !valid_name(table) {
        return Err(BlockError::TableName(table.to_string()));
    }
    let mut s = String::new();
    s.push_str(&format!("add table inet {table}\n"));
    for (set, ty) in [("deny4", "ipv4_addr"), ("deny6", "ipv6_addr")] {
        s.push_str(&format!(
            "add set inet {table} {set} {{ type {ty}; flags interval, timeout; }}\n"
        ));
    }
    s.push_str(&format!(
        "add chain inet {table} input {{ type filter hook input priority -10; policy accept; }}\n"
    ));
    s.push_str(&format!("flush chain inet {table} input\n"));
    s.push_str(&format!(
        "add rule inet {table} input ip saddr @deny4 drop\n"
    ));
    s.push_str(&format!(
        "add rule inet {table} input ip6 saddr @deny6 drop\n"
    ));
    if replace {
        for set in ["deny4", "deny6"] {
            s.push_str(&format!("flush set inet {table} {set}\n"));
        }
    }
    for e in entries {
        let set = if e.net.addr().is_ipv4() {
            "deny4"
        } else {
            "deny6"
        };
        let t = e.timeout_secs.max(1);
        s.push_str(&format!(
            "add element inet {table} {set} {{ {} timeout {t}s }}\n",
            e.net.trunc()
        ));
    }
    Ok(s)
}

/// Remove the table (undo everything mamori added).
pub fn nft_remove_table(command_prefix: &[String], table: &str) -> Result<(), BlockError> {
    if !valid_name(table) {
        return Err(BlockError::TableName(table.to_string()));
    }
    run_nft(command_prefix, &["delete", "table", "inet", table], None)
}

fn run_nft(prefix: &[String], args: &[&str], stdin: Option<&str>) -> Result<(), BlockError> {
    let mut cmd = if let Some((first, rest)) = prefix.split_first() {
        let mut c = Command::new(first);
        c.args(rest).arg("nft");
        c
    } else {
        Command::new("nft")
    };
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(BlockError::Spawn)?;
    if let (Some(text), Some(mut si)) = (stdin, child.stdin.take()) {
        si.write_all(text.as_bytes()).map_err(BlockError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(BlockError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BlockError::Nft {
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Decides whether an address that claims to be a search engine crawler really is one.
/// Injectable so tests never touch the network.
pub trait BotVerifier: Send + Sync {
    /// `claimed` is the crawler's name from the user agent (`googlebot`, `bingbot`, …).
    fn verify(&self, ip: IpAddr, claimed: &str) -> bool;
}

/// The real check: reverse DNS must end in the crawler's domain and the forward lookup
/// of that name must give the address back. Results are cached per address.
#[derive(Default)]
pub struct DnsBotVerifier {
    cache: Mutex<HashMap<IpAddr, bool>>,
}

/// Crawler name → accepted reverse-DNS suffixes.
pub const BOT_DOMAINS: &[(&str, &[&str])] = &[
    (
        "googlebot",
        &[".googlebot.com", ".google.com", ".googleusercontent.com"],
    ),
    ("bingbot", &[".search.msn.com"]),
    ("yandex", &[".yandex.ru", ".yandex.net", ".yandex.com"]),
    ("applebot", &[".applebot.apple.com"]),
    ("baiduspider", &[".crawl.baidu.com", ".crawl.baidu.jp"]),
    ("duckduckbot", &[".duckduckgo.com"]),
];

/// The crawler a user agent claims to be, if any of those we can verify.
pub fn claimed_bot(ua: &[u8]) -> Option<&'static str> {
    let lower: Vec<u8> = ua.iter().take(512).map(u8::to_ascii_lowercase).collect();
    BOT_DOMAINS
        .iter()
        .map(|(n, _)| *n)
        .find(|n| memchr::memmem::find(&lower, n.as_bytes()).is_some())
}

impl BotVerifier for DnsBotVerifier {
    fn verify(&self, ip: IpAddr, claimed: &str) -> bool {
        if let Ok(c) = self.cache.lock()
            && let Some(v) = c.get(&ip)
        {
            return *v;
        }
        let suffixes = BOT_DOMAINS
            .iter()
            .find(|(n, _)| *n == claimed)
            .map(|(_, s)| *s)
            .unwrap_or(&[]);
        let ok = dns_lookup::lookup_addr(&ip)
            .ok()
            .filter(|name| {
                let n = name.trim_end_matches('.').to_ascii_lowercase();
                suffixes.iter().any(|s| n.ends_with(s))
            })
            .and_then(|name| dns_lookup::lookup_host(&name).ok())
            .is_some_and(|addrs| addrs.into_iter().any(|a| a == ip));
        if let Ok(mut c) = self.cache.lock() {
            c.insert(ip, ok);
        }
        ok
    }
}

/// A verifier that never verifies (no network): claimed crawlers are treated like
/// anybody else. Useful offline and in tests.
pub struct NoBotVerifier;

impl BotVerifier for NoBotVerifier {
    fn verify(&self, _ip: IpAddr, _claimed: &str) -> bool {
        false
    }
}

/// The network to block for an address: the address itself for IPv4, its `/v6_prefix`
/// for IPv6 (one subscriber usually holds a whole /64).
pub fn block_net(ip: IpAddr, v6_prefix: u8) -> IpNet {
    match ip {
        IpAddr::V4(v4) => IpNet::V4(ipnet::Ipv4Net::new(v4, 32).unwrap_or_default()),
        IpAddr::V6(v6) => IpNet::V6(
            ipnet::Ipv6Net::new(v6, v6_prefix.min(128))
                .map(|n| n.trunc())
                .unwrap_or_default(),
        ),
    }
}

/// Addresses no block may ever cover: loopback, unspecified, multicast, link-local.
/// (A local reverse proxy makes every client 127.0.0.1 in the log.)
pub fn never_block(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_link_local()
                || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return never_block(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unicast_link_local()
        }
    }
}

/// RFC 6598 shared address space (carrier-grade NAT).
pub fn is_cgnat(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            o[0] == 100 && (64..128).contains(&o[1])
        }
        IpAddr::V6(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_shape() {
        let e = vec![
            BlockEntry {
                net: "192.0.2.7/32".parse().unwrap(),
                timeout_secs: 60,
            },
            BlockEntry {
                net: "2001:db8:1:2:3::/64".parse().unwrap(),
                timeout_secs: 0,
            },
        ];
        let s = nft_script("mamori", &e, false).unwrap();
        assert!(!s.contains("flush set"), "{s}");
        let r = nft_script("mamori", &e, true).unwrap();
        let flush = r
            .find("flush set inet mamori deny4")
            .expect("replace flushes");
        assert!(flush < r.find("add element").unwrap(), "{r}");
        assert!(s.contains("add element inet mamori deny4 { 192.0.2.7/32 timeout 60s }"));
        assert!(s.contains("add element inet mamori deny6 { 2001:db8:1:2::/64 timeout 1s }"));
        assert!(s.contains("flags interval, timeout"));
        assert!(nft_script("x; drop", &e, false).is_err());
    }

    #[test]
    fn nets_and_bots() {
        assert_eq!(
            block_net("2001:db8::1:2:3:4".parse().unwrap(), 64).to_string(),
            "2001:db8::/64"
        );
        assert_eq!(
            block_net("1.2.3.4".parse().unwrap(), 64).to_string(),
            "1.2.3.4/32"
        );
        assert!(is_cgnat("100.64.1.1".parse().unwrap()));
        assert!(!is_cgnat("126.1.1.1".parse().unwrap()));
        assert_eq!(
            claimed_bot(
                b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
            ),
            Some("googlebot")
        );
        assert_eq!(claimed_bot(b"Mozilla/5.0 (iPhone)"), None);
    }

    #[test]
    fn nginx_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("deny.conf");
        let b = BlockBackend::NginxDeny { path: p.clone() };
        b.apply(&[BlockEntry {
            net: "192.0.2.9/32".parse().unwrap(),
            timeout_secs: 5,
        }])
        .unwrap();
        assert!(
            std::fs::read_to_string(p)
                .unwrap()
                .contains("deny 192.0.2.9/32;")
        );
    }

    #[test]
    fn loopback_and_link_local_are_never_blocked() {
        for a in [
            "127.0.0.1",
            "::1",
            "0.0.0.0",
            "::",
            "169.254.1.1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(never_block(a.parse().unwrap()), "{a}");
        }
        for a in ["192.0.2.7", "10.0.0.1", "2001:db8::1", "100.64.0.1"] {
            assert!(!never_block(a.parse().unwrap()), "{a}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deny.conf");
        let b = BlockBackend::NginxDeny { path: path.clone() };
        let e = [
            BlockEntry {
                net: "127.0.0.1/32".parse().unwrap(),
                timeout_secs: 60,
            },
            BlockEntry {
                net: "::/64".parse().unwrap(),
                timeout_secs: 60,
            },
            BlockEntry {
                net: "192.0.2.7/32".parse().unwrap(),
                timeout_secs: 60,
            },
        ];
        b.replace(&e).unwrap();
        let body = std::fs::read_to_string(&path).unwrap();
        assert!(body.contains("deny 192.0.2.7/32;"), "{body}");
        assert!(
            !body.contains("127.0.0.1") && !body.contains("::/64"),
            "{body}"
        );
    }
}
