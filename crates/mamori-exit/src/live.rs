//! Live egress sampling: poll `/proc/net/{tcp,tcp6,udp,udp6}` and join socket inodes
//! with `/proc/<pid>/fd/*` (`socket:[inode]`) for the owning process, and the socket's
//! uid with the user database for the user.
//!
//! What polling can miss (document it to operators, see `docs/exit.md`):
//! * connections that open and close between two polls (a 200 ms HTTPS POST from
//!   PHP-FPM is usually missed at a 1 s interval) — use Zeek, conntrack or eBPF for
//!   complete coverage;
//! * UDP sent without `connect()` (`sendto`), so DNS tunnelling and most UDP exfil are
//!   invisible; only connected UDP sockets appear;
//! * byte counts: `/proc/net/*` has queue sizes, not totals (records carry 0 bytes, so
//!   `egress.volume` needs a file source);
//! * other network namespaces (containers): `/proc/net` is the reader's namespace; pass
//!   `/proc/<pid>/net` of a process inside to [`Sampler::with_net_dir`];
//! * the process when it exited before the fd scan, or when not root (other users'
//!   `/proc/<pid>/fd` need root or CAP_SYS_PTRACE/CAP_DAC_READ_SEARCH); the uid is
//!   still known from the socket table.

use crate::error::ExitError;
use crate::zeek::ConnRecord;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The process that owned a socket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcInfo {
    pub pid: Option<u32>,
    pub exe: Option<String>,
    pub uid: Option<u32>,
    pub user: Option<String>,
}

/// One row of a `/proc/net/{tcp,udp}[6]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SockEntry {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Kernel TCP state (`01` established, `02` SYN_SENT, `0A` listen; UDP `01` = connected).
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
}

fn word(h: &str) -> Option<[u8; 4]> {
    // The kernel prints each 32-bit word of the network-order address as a native int.
    u32::from_str_radix(h, 16).ok().map(u32::to_ne_bytes)
}

fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (a, p) = s.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let ip = match a.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(a)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(a.get(i * 8..i * 8 + 8)?)?);
            }
            let v6 = Ipv6Addr::from(b);
            // v4-mapped addresses (dual-stack sockets) are reported as IPv4.
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Parse one `/proc/net/{tcp,udp}[6]` table; malformed rows are ignored.
pub fn parse_proc_net(text: &str) -> Vec<SockEntry> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            Some(SockEntry {
                local: parse_addr(f[1])?,
                remote: parse_addr(f[2])?,
                state: u8::from_str_radix(f[3], 16).ok()?,
                uid: f[7].parse().ok()?,
                inode: f[9].parse().ok()?,
            })
        })
        .collect()
}

/// The socket tables of one network namespace, read at once.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    /// (`tcp` | `udp`, entry) from `tcp`, `tcp6`, `udp`, `udp6`.
    pub entries: Vec<(&'static str, SockEntry)>,
    /// Local TCP ports in LISTEN.
    pub listening: HashSet<u16>,
}

/// TCP `TIME_WAIT` and `NEW_SYN_RECV`: mini sockets whose uid column is always 0.
const TCP_MINI: [u8; 2] = [0x06, 0x0C];

impl Tables {
    /// Is this entry a connection this host opened (not an accepted one, not loopback)?
    pub fn is_outbound(&self, proto: &str, e: &SockEntry) -> bool {
        let open = match proto {
            "tcp" => matches!(e.state, 0x01 | 0x02) && !self.listening.contains(&e.local.port()),
            _ => e.state == 0x01 && e.remote.port() != 0,
        };
        open && !e.remote.ip().is_unspecified() && !e.remote.ip().is_loopback()
    }

    /// The socket of a flow `local` → `remote`: the connected socket, else (UDP sent
    /// with `sendto`) an unconnected one bound to the local port on that address or on
    /// any address. TCP listeners are never returned.
    pub fn find(&self, proto: &str, local: SocketAddr, remote: SocketAddr) -> Option<&SockEntry> {
        let of_proto = || self.entries.iter().filter(move |(p, _)| *p == proto);
        if let Some((_, e)) = of_proto().find(|(_, e)| {
            e.local == local && e.remote == remote && !(proto == "tcp" && e.state == 0x0A)
        }) {
            return Some(e);
        }
        if proto != "udp" {
            return None;
        }
        of_proto()
            .map(|(_, e)| e)
            .filter(|e| {
                e.local.port() == local.port()
                    && e.remote.port() == 0
                    && e.remote.ip().is_unspecified()
                    && (e.local.ip() == local.ip() || e.local.ip().is_unspecified())
            })
            // An exact address binding wins over a wildcard one.
            .min_by_key(|e| e.local.ip().is_unspecified())
    }
}

/// The uid of a socket table entry, when the kernel printed a real one (mini sockets
/// such as TIME_WAIT print 0 whoever owned the connection).
pub fn entry_uid(proto: &str, e: &SockEntry) -> Option<u32> {
    (e.inode != 0 || !(proto == "tcp" && TCP_MINI.contains(&e.state))).then_some(e.uid)
}

/// Reads socket tables and finds who owns a socket: `/proc/*/fd` for the process, the
/// user database for the user. Shared by the /proc sampler and the conntrack join.
#[derive(Debug)]
pub struct Lookup {
    net_dir: PathBuf,
    proc_dir: PathBuf,
    users: HashMap<u32, Option<String>>,
}

impl Lookup {
    /// Tables from `net_dir` (`/proc/net`, or `/proc/<pid>/net` for another namespace).
    pub fn new(net_dir: impl Into<PathBuf>) -> Lookup {
        Lookup {
            net_dir: net_dir.into(),
            proc_dir: PathBuf::from("/proc"),
            users: HashMap::new(),
        }
    }

    fn read_table(&self, name: &str) -> Result<Vec<SockEntry>, ExitError> {
        let p = self.net_dir.join(name);
        match std::fs::read_to_string(&p) {
            Ok(t) => Ok(parse_proc_net(&t)),
            // tcp6/udp6 are absent when IPv6 is disabled.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name.ends_with('6') => {
                Ok(Vec::new())
            }
            Err(e) => Err(ExitError::Live(format!("{}: {e}", p.display()))),
        }
    }

    /// Read all four tables.
    pub fn tables(&self) -> Result<Tables, ExitError> {
        let mut t = Tables::default();
        for (name, proto) in [
            ("tcp", "tcp"),
            ("tcp6", "tcp"),
            ("udp", "udp"),
            ("udp6", "udp"),
        ] {
            for e in self.read_table(name)? {
                if proto == "tcp" && e.state == 0x0A {
                    t.listening.insert(e.local.port());
                }
                t.entries.push((proto, e));
            }
        }
        Ok(t)
    }

    fn user(&mut self, uid: u32) -> Option<String> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone()
    }

    /// inode → pid for the given socket inodes (one pass over `/proc/*/fd`).
    pub fn owners(&self, want: &HashSet<u64>) -> HashMap<u64, u32> {
        let mut out = HashMap::new();
        if want.is_empty() {
            return out;
        }
        let Ok(rd) = std::fs::read_dir(&self.proc_dir) else {
            return out;
        };
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                let Ok(target) = std::fs::read_link(fd.path()) else {
                    continue;
                };
                let t = target.to_string_lossy();
                if let Some(ino) = t
                    .strip_prefix("socket:[")
                    .and_then(|r| r.strip_suffix(']'))
                    .and_then(|n| n.parse::<u64>().ok())
                    && want.contains(&ino)
                {
                    out.entry(ino).or_insert(pid);
                }
            }
            if out.len() == want.len() {
                break;
            }
        }
        out
    }

    /// What is known of a socket's owner; `None` when nothing is (neither uid nor pid).
    pub fn proc_info(&mut self, uid: Option<u32>, pid: Option<u32>) -> Option<ProcInfo> {
        if uid.is_none() && pid.is_none() {
            return None;
        }
        let exe = pid.and_then(|p| {
            std::fs::read_link(self.proc_dir.join(p.to_string()).join("exe"))
                .ok()
                .map(|x| x.to_string_lossy().into_owned())
        });
        let user = uid.and_then(|u| self.user(u));
        Some(ProcInfo {
            pid,
            exe,
            uid,
            user,
        })
    }
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now_ts() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Polls the socket tables and reports each outbound connection once, when first seen.
#[derive(Debug)]
pub struct Sampler {
    lookup: Lookup,
    seen: HashSet<(&'static str, SocketAddr, SocketAddr, u64)>,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::new()
    }
}

impl Sampler {
    /// A sampler over this process's network namespace (`/proc/net`).
    pub fn new() -> Sampler {
        Sampler::with_net_dir("/proc/net")
    }

    /// A sampler over another `net` directory, e.g. `/proc/<pid>/net` of a process in a
    /// container's namespace.
    pub fn with_net_dir(net_dir: impl Into<PathBuf>) -> Sampler {
        Sampler {
            lookup: Lookup::new(net_dir),
            seen: HashSet::new(),
        }
    }

    /// The owner lookup (tables, `/proc/*/fd`, users) this sampler reads with.
    pub fn lookup(&mut self) -> &mut Lookup {
        &mut self.lookup
    }

    /// Outbound entries of `t` not present at the previous call.
    pub fn fresh(&mut self, t: &Tables) -> Vec<(&'static str, SockEntry)> {
        let mut current = HashSet::new();
        let mut fresh = Vec::new();
        for (proto, e) in &t.entries {
            if !t.is_outbound(proto, e) {
                continue;
            }
            let key = (*proto, e.local, e.remote, e.inode);
            if !self.seen.contains(&key) {
                fresh.push((*proto, *e));
            }
            current.insert(key);
        }
        self.seen = current;
        fresh
    }

    /// Connection records, with their owners, for entries (time = now).
    pub fn records(&mut self, entries: &[(&'static str, SockEntry)]) -> Vec<ConnRecord> {
        let now = now_ts();
        let want: HashSet<u64> = entries
            .iter()
            .map(|(_, e)| e.inode)
            .filter(|i| *i != 0)
            .collect();
        let owners = self.lookup.owners(&want);
        let mut out = Vec::new();
        for &(proto, e) in entries {
            let pid = owners.get(&e.inode).copied();
            out.push(ConnRecord {
                ts: now,
                orig_h: Some(e.local.ip()),
                resp_h: e.remote.ip(),
                resp_p: e.remote.port(),
                proto: proto.to_string(),
                orig_bytes: 0,
                resp_bytes: 0,
                conn_state: Some(
                    if e.state == 0x02 && proto == "tcp" {
                        "S0"
                    } else {
                        "S1"
                    }
                    .into(),
                ),
                local_orig: Some(true),
                local_resp: None,
                host: None,
                process: self.lookup.proc_info(Some(e.uid), pid),
            });
        }
        out
    }

    /// One poll: outbound connections not reported before (time = now).
    pub fn poll(&mut self) -> Result<Vec<ConnRecord>, ExitError> {
        let t = self.lookup.tables()?;
        let fresh = self.fresh(&t);
        Ok(self.records(&fresh))
    }
}

/// Is `path` readable as a socket table (for callers deciding whether live mode works)?
pub fn available(net_dir: &Path) -> bool {
    net_dir.join("tcp").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tables() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 0A00000A:D431 FE6433C6:20FB 01 00000000:00000000 00:00000000 00000000    33        0 777 1\n garbage\n";
        let e = parse_proc_net(t);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].local, "127.0.0.1:3306".parse().unwrap());
        assert_eq!(e[0].state, 0x0A);
        assert_eq!(e[1].remote, "198.51.100.254:8443".parse().unwrap());
        assert_eq!((e[1].uid, e[1].inode), (33, 777));
        let t6 = "hdr\n 0: 00000000000000000000000001000000:1F90 0000000000000000FFFF0000FE6433C6:20FB 01 0:0 0:0 0 65534 0 42\n";
        let e = parse_proc_net(t6);
        assert_eq!(e[0].local, "[::1]:8080".parse().unwrap());
        assert_eq!(e[0].remote, "198.51.100.254:8443".parse().unwrap());
    }

    #[test]
    fn finds_the_socket_of_a_flow() {
        let e = |l: &str, r: &str, state: u8, uid: u32, inode: u64| SockEntry {
            local: l.parse().unwrap(),
            remote: r.parse().unwrap(),
            state,
            uid,
            inode,
        };
        let mut t = Tables {
            entries: vec![
                ("tcp", e("0.0.0.0:443", "0.0.0.0:0", 0x0A, 0, 1)),
                ("tcp", e("192.0.2.1:40000", "203.0.113.9:443", 0x01, 33, 2)),
                ("tcp", e("192.0.2.1:40001", "203.0.113.9:443", 0x06, 0, 0)),
                ("udp", e("0.0.0.0:5000", "0.0.0.0:0", 0x07, 65534, 3)),
                ("udp", e("192.0.2.1:5000", "0.0.0.0:0", 0x07, 1000, 4)),
                ("udp", e("192.0.2.1:6000", "203.0.113.53:53", 0x01, 1001, 5)),
            ],
            listening: HashSet::new(),
        };
        t.listening.insert(443);
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let f = |p, l, r| t.find(p, a(l), a(r)).map(|e| e.inode);
        assert_eq!(f("tcp", "192.0.2.1:40000", "203.0.113.9:443"), Some(2));
        assert_eq!(f("tcp", "192.0.2.1:40009", "203.0.113.9:443"), None);
        // A TCP listener is never the socket of a flow.
        assert_eq!(f("tcp", "0.0.0.0:443", "0.0.0.0:0"), None);
        // sendto from an unconnected socket: the exact binding wins over the wildcard.
        assert_eq!(f("udp", "192.0.2.1:5000", "203.0.113.53:53"), Some(4));
        assert_eq!(f("udp", "192.0.2.7:5000", "203.0.113.53:53"), Some(3));
        assert_eq!(f("udp", "192.0.2.1:6000", "203.0.113.53:53"), Some(5));
        assert_eq!(f("udp", "192.0.2.1:7000", "203.0.113.53:53"), None);
        let tw = t.entries[2].1;
        assert_eq!(entry_uid("tcp", &tw), None);
        assert_eq!(entry_uid("tcp", &t.entries[1].1), Some(33));
        assert!(t.is_outbound("tcp", &t.entries[1].1));
        assert!(!t.is_outbound("udp", &t.entries[3].1));
    }
}
