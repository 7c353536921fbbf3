//! conntrack events over netlink: every flow the kernel tracks, as it starts (NEW) and
//! as it is forgotten (DESTROY, with byte and packet counters when
//! `net.netfilter.nf_conntrack_acct = 1`), joined with the /proc socket tables for the
//! owning process and user.
//!
//! The parser is written by hand: the crates that model ctnetlink
//! (`netlink-packet-netfilter` 0.4) parse tuples and status but not the counters, the
//! id or the timestamps this source needs. Every read of kernel bytes is bounds-checked
//! and a malformed message is counted and skipped, never a panic
//! (`fuzz/fuzz_targets/conntrack_msg.rs` feeds it arbitrary bytes).
//!
//! What it sees that /proc polling misses: connections shorter than the poll interval,
//! UDP sent with `sendto` (no connected socket), and bytes (when accounting is on).
//! What it cannot see or say (see `docs/exit.md`):
//! * nothing at all in a network namespace where no firewall rule uses conntrack (since
//!   Linux 4.x the hooks are registered on demand): the /proc sweep beside it then is
//!   the source, and [`Notice::CtIdle`] says so;
//! * the process of a flow whose socket is gone before the join (a short UDP send from a
//!   process that exits at once): the uid too then, unless the socket lingers;
//! * bytes before the flow ends (DESTROY comes when conntrack forgets it: TCP about
//!   2 min after close (TIME_WAIT), UDP 30-120 s after the last packet); bytes of flows
//!   that started before `nf_conntrack_acct` was turned on;
//! * events dropped when the socket buffer overflows (ENOBUFS: counted, said once);
//! * flows of other namespaces (containers): only their forwarded/NATed part, which has
//!   no local source address and is not reported.

use crate::error::ExitError;
use crate::live::{self, Sampler, Tables};
use crate::source::{LiveEvent, Notice};
use crate::zeek::ConnRecord;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

// netlink (linux/netlink.h)
const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
/// Attribute type bits without NLA_F_NESTED / NLA_F_NET_BYTEORDER.
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLA_F_NESTED: u16 = 0x8000;

// nfnetlink (linux/netfilter/nfnetlink.h, nfnetlink_conntrack.h)
const NFNL_SUBSYS_CTNETLINK: u8 = 1;
const NFGENMSG_LEN: usize = 4;
/// Multicast group of new conntrack entries.
pub const NFNLGRP_CONNTRACK_NEW: u32 = 1;
/// Multicast group of destroyed conntrack entries.
pub const NFNLGRP_CONNTRACK_DESTROY: u32 = 3;
const IPCTNL_MSG_CT_NEW: u8 = 0;
const IPCTNL_MSG_CT_DELETE: u8 = 2;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_STATUS: u16 = 3;
const CTA_MARK: u16 = 8;
const CTA_COUNTERS_ORIG: u16 = 9;
const CTA_COUNTERS_REPLY: u16 = 10;
const CTA_ID: u16 = 12;
const CTA_ZONE: u16 = 18;
const CTA_TIMESTAMP: u16 = 20;

const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_COUNTERS_PACKETS: u16 = 1;
const CTA_COUNTERS_BYTES: u16 = 2;
const CTA_COUNTERS32_PACKETS: u16 = 3;
const CTA_COUNTERS32_BYTES: u16 = 4;
const CTA_TIMESTAMP_START: u16 = 1;
const CTA_TIMESTAMP_STOP: u16 = 2;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// What a conntrack event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtKind {
    /// A new flow (`IPCTNL_MSG_CT_NEW` with `NLM_F_CREATE`).
    New,
    /// A change to a known flow (`IPCTNL_MSG_CT_NEW` without it; not subscribed).
    Update,
    /// The flow was forgotten (`IPCTNL_MSG_CT_DELETE`).
    Destroy,
}

/// One direction of a flow: addresses, protocol number and ports (0 when the protocol
/// has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CtTuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

/// Packets and bytes of one direction (IP-level: headers included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CtCounters {
    pub packets: u64,
    pub bytes: u64,
}

/// One parsed conntrack event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtEvent {
    pub kind: CtKind,
    /// Address family of the nfgenmsg header (2 = IPv4, 10 = IPv6).
    pub family: u8,
    /// conntrack id (stable for the flow's lifetime).
    pub id: Option<u32>,
    pub orig: CtTuple,
    pub reply: Option<CtTuple>,
    pub status: Option<u32>,
    pub mark: Option<u32>,
    pub zone: Option<u16>,
    /// Present when `nf_conntrack_acct = 1` (when the flow started).
    pub counters_orig: Option<CtCounters>,
    pub counters_reply: Option<CtCounters>,
    /// Wall-clock nanoseconds, present when `nf_conntrack_timestamp = 1`.
    pub start_ns: Option<u64>,
    pub stop_ns: Option<u64>,
}

/// What the parser saw besides events.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ParseStats {
    pub messages: u64,
    pub events: u64,
    /// Messages of other subsystems or types, and control messages.
    pub ignored: u64,
    /// Truncated or inconsistent messages (skipped).
    pub malformed: u64,
    /// `NLMSG_ERROR` / `NLMSG_OVERRUN` messages.
    pub errors: u64,
    /// Why the last malformed message was skipped.
    #[serde(skip)]
    pub last_problem: Option<&'static str>,
}

/// Netlink attributes in a buffer: (type without flags, value). A length that does not
/// fit ends the iteration with an error.
struct Attrs<'a> {
    rest: &'a [u8],
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(s.try_into().ok()?))
}

fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(s.try_into().ok()?))
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = self.rest;
        let parsed = (|| {
            let len = usize::from(ne_u16(rest, 0)?);
            let ty = ne_u16(rest, 2)?;
            let value = rest.get(4..len)?;
            Some((ty & NLA_TYPE_MASK, value, len))
        })();
        match parsed {
            Some((ty, value, len)) => {
                self.rest = rest.get(align4(len)..).unwrap_or(&[]);
                Some(Ok((ty, value)))
            }
            None => {
                self.rest = &[];
                Some(Err("attribute length out of bounds"))
            }
        }
    }
}

fn attrs(b: &[u8]) -> Attrs<'_> {
    Attrs { rest: b }
}

fn be_u16(v: &[u8]) -> Result<u16, &'static str> {
    <[u8; 2]>::try_from(v)
        .map(u16::from_be_bytes)
        .map_err(|_| "u16 attribute of wrong size")
}

fn be_u32(v: &[u8]) -> Result<u32, &'static str> {
    <[u8; 4]>::try_from(v)
        .map(u32::from_be_bytes)
        .map_err(|_| "u32 attribute of wrong size")
}

fn be_u64(v: &[u8]) -> Result<u64, &'static str> {
    <[u8; 8]>::try_from(v)
        .map(u64::from_be_bytes)
        .map_err(|_| "u64 attribute of wrong size")
}

fn ip4(v: &[u8]) -> Result<IpAddr, &'static str> {
    <[u8; 4]>::try_from(v)
        .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
        .map_err(|_| "IPv4 address of wrong size")
}

fn ip6(v: &[u8]) -> Result<IpAddr, &'static str> {
    <[u8; 16]>::try_from(v)
        .map(|a| IpAddr::V6(Ipv6Addr::from(a)))
        .map_err(|_| "IPv6 address of wrong size")
}

fn parse_tuple(v: &[u8]) -> Result<CtTuple, &'static str> {
    let (mut src, mut dst, mut proto, mut sport, mut dport) = (None, None, None, 0, 0);
    for a in attrs(v) {
        let (ty, val) = a?;
        match ty {
            CTA_TUPLE_IP => {
                for b in attrs(val) {
                    let (t, x) = b?;
                    match t {
                        CTA_IP_V4_SRC => src = Some(ip4(x)?),
                        CTA_IP_V4_DST => dst = Some(ip4(x)?),
                        CTA_IP_V6_SRC => src = Some(ip6(x)?),
                        CTA_IP_V6_DST => dst = Some(ip6(x)?),
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for b in attrs(val) {
                    let (t, x) = b?;
                    match t {
                        CTA_PROTO_NUM => match x {
                            [p] => proto = Some(*p),
                            _ => return Err("protocol number of wrong size"),
                        },
                        CTA_PROTO_SRC_PORT => sport = be_u16(x)?,
                        CTA_PROTO_DST_PORT => dport = be_u16(x)?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(CtTuple {
        src: src.ok_or("tuple without a source address")?,
        dst: dst.ok_or("tuple without a destination address")?,
        proto: proto.ok_or("tuple without a protocol")?,
        sport,
        dport,
    })
}

fn parse_counters(v: &[u8]) -> Result<CtCounters, &'static str> {
    let mut c = CtCounters::default();
    for a in attrs(v) {
        let (ty, val) = a?;
        match ty {
            CTA_COUNTERS_PACKETS => c.packets = be_u64(val)?,
            CTA_COUNTERS_BYTES => c.bytes = be_u64(val)?,
            CTA_COUNTERS32_PACKETS => c.packets = u64::from(be_u32(val)?),
            CTA_COUNTERS32_BYTES => c.bytes = u64::from(be_u32(val)?),
            _ => {}
        }
    }
    Ok(c)
}

/// Parse the payload (after the 16-byte netlink header) of one ctnetlink message.
/// `Ok(None)`: not a conntrack NEW/DELETE message.
pub fn parse_message(
    msg_type: u16,
    flags: u16,
    payload: &[u8],
) -> Result<Option<CtEvent>, &'static str> {
    let [subsys, msg] = msg_type.to_be_bytes();
    if subsys != NFNL_SUBSYS_CTNETLINK {
        return Ok(None);
    }
    let kind = match msg {
        IPCTNL_MSG_CT_NEW if flags & (NLM_F_CREATE | NLM_F_EXCL) != 0 => CtKind::New,
        IPCTNL_MSG_CT_NEW => CtKind::Update,
        IPCTNL_MSG_CT_DELETE => CtKind::Destroy,
        _ => return Ok(None),
    };
    let family = *payload.first().ok_or("no nfgenmsg header")?;
    let body = payload
        .get(NFGENMSG_LEN..)
        .ok_or("truncated nfgenmsg header")?;
    let mut ev = CtEvent {
        kind,
        family,
        id: None,
        orig: CtTuple {
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            proto: 0,
            sport: 0,
            dport: 0,
        },
        reply: None,
        status: None,
        mark: None,
        zone: None,
        counters_orig: None,
        counters_reply: None,
        start_ns: None,
        stop_ns: None,
    };
    let mut orig = None;
    for a in attrs(body) {
        let (ty, val) = a?;
        match ty {
            CTA_TUPLE_ORIG => orig = Some(parse_tuple(val)?),
            CTA_TUPLE_REPLY => ev.reply = Some(parse_tuple(val)?),
            CTA_STATUS => ev.status = Some(be_u32(val)?),
            CTA_MARK => ev.mark = Some(be_u32(val)?),
            CTA_ID => ev.id = Some(be_u32(val)?),
            CTA_ZONE => ev.zone = Some(be_u16(val)?),
            CTA_COUNTERS_ORIG => ev.counters_orig = Some(parse_counters(val)?),
            CTA_COUNTERS_REPLY => ev.counters_reply = Some(parse_counters(val)?),
            CTA_TIMESTAMP => {
                for b in attrs(val) {
                    let (t, x) = b?;
                    match t {
                        CTA_TIMESTAMP_START => ev.start_ns = Some(be_u64(x)?),
                        CTA_TIMESTAMP_STOP => ev.stop_ns = Some(be_u64(x)?),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    ev.orig = orig.ok_or("event without an original tuple")?;
    Ok(Some(ev))
}

/// Parse one datagram from the socket (one or more netlink messages) into `out`.
/// Malformed messages are counted in `st` and skipped; a bad length ends the datagram.
pub fn parse_datagram(buf: &[u8], out: &mut Vec<CtEvent>, st: &mut ParseStats) {
    let mut rest = buf;
    while !rest.is_empty() {
        st.messages += 1;
        let hdr = (|| {
            let len = usize::try_from(ne_u32(rest, 0)?).ok()?;
            let ty = ne_u16(rest, 4)?;
            let flags = ne_u16(rest, 6)?;
            let payload = rest.get(NLMSG_HDRLEN..len)?;
            Some((len, ty, flags, payload))
        })();
        let Some((len, ty, flags, payload)) = hdr else {
            st.malformed += 1;
            st.last_problem = Some("netlink message length out of bounds");
            return;
        };
        match ty {
            NLMSG_NOOP | NLMSG_DONE => st.ignored += 1,
            NLMSG_ERROR | NLMSG_OVERRUN => st.errors += 1,
            _ => match parse_message(ty, flags, payload) {
                Ok(Some(e)) => {
                    st.events += 1;
                    out.push(e);
                }
                Ok(None) => st.ignored += 1,
                Err(why) => {
                    st.malformed += 1;
                    st.last_problem = Some(why);
                }
            },
        }
        rest = rest.get(align4(len)..).unwrap_or(&[]);
    }
}

fn put_attr(out: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let len = 4 + value.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(align4(out.len()), 0);
}

fn nested(ty: u16, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut inner = Vec::new();
    f(&mut inner);
    let mut out = Vec::new();
    put_attr(&mut out, ty | NLA_F_NESTED, &inner);
    out
}

fn encode_tuple(ty: u16, t: &CtTuple) -> Vec<u8> {
    nested(ty, |o| {
        o.extend(nested(CTA_TUPLE_IP, |ip| match (t.src, t.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                put_attr(ip, CTA_IP_V4_SRC, &s.octets());
                put_attr(ip, CTA_IP_V4_DST, &d.octets());
            }
            (s, d) => {
                let v6 = |a: IpAddr| match a {
                    IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
                    IpAddr::V6(v) => v.octets(),
                };
                put_attr(ip, CTA_IP_V6_SRC, &v6(s));
                put_attr(ip, CTA_IP_V6_DST, &v6(d));
            }
        }));
        o.extend(nested(CTA_TUPLE_PROTO, |p| {
            put_attr(p, CTA_PROTO_NUM, &[t.proto]);
            put_attr(p, CTA_PROTO_SRC_PORT, &t.sport.to_be_bytes());
            put_attr(p, CTA_PROTO_DST_PORT, &t.dport.to_be_bytes());
        }));
    })
}

fn encode_counters(ty: u16, c: &CtCounters) -> Vec<u8> {
    nested(ty, |o| {
        put_attr(o, CTA_COUNTERS_PACKETS, &c.packets.to_be_bytes());
        put_attr(o, CTA_COUNTERS_BYTES, &c.bytes.to_be_bytes());
    })
}

/// Encode an event as the kernel sends it (one netlink message): for tests and fuzz
/// seeds. Mixed-family tuples are written as IPv6 (v4-mapped).
#[doc(hidden)]
pub fn encode_event(ev: &CtEvent) -> Vec<u8> {
    let mut body = vec![ev.family, 0, 0, 0];
    body.extend(encode_tuple(CTA_TUPLE_ORIG, &ev.orig));
    if let Some(r) = &ev.reply {
        body.extend(encode_tuple(CTA_TUPLE_REPLY, r));
    }
    if let Some(s) = ev.status {
        put_attr(&mut body, CTA_STATUS, &s.to_be_bytes());
    }
    if let Some(m) = ev.mark {
        put_attr(&mut body, CTA_MARK, &m.to_be_bytes());
    }
    if let Some(c) = &ev.counters_orig {
        body.extend(encode_counters(CTA_COUNTERS_ORIG, c));
    }
    if let Some(c) = &ev.counters_reply {
        body.extend(encode_counters(CTA_COUNTERS_REPLY, c));
    }
    if let Some(i) = ev.id {
        put_attr(&mut body, CTA_ID, &i.to_be_bytes());
    }
    if let Some(z) = ev.zone {
        put_attr(&mut body, CTA_ZONE, &z.to_be_bytes());
    }
    if ev.start_ns.is_some() || ev.stop_ns.is_some() {
        body.extend(nested(CTA_TIMESTAMP, |o| {
            if let Some(s) = ev.start_ns {
                put_attr(o, CTA_TIMESTAMP_START, &s.to_be_bytes());
            }
            if let Some(s) = ev.stop_ns {
                put_attr(o, CTA_TIMESTAMP_STOP, &s.to_be_bytes());
            }
        }));
    }
    let (msg, flags) = match ev.kind {
        CtKind::New => (IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL),
        CtKind::Update => (IPCTNL_MSG_CT_NEW, 0),
        CtKind::Destroy => (IPCTNL_MSG_CT_DELETE, 0),
    };
    let ty = u16::from_be_bytes([NFNL_SUBSYS_CTNETLINK, msg]);
    let len = NLMSG_HDRLEN + body.len();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend(body);
    out
}

/// Receive buffer asked for (root may exceed `net.core.rmem_max`): bursts of short
/// connections must not overflow it.
const RCVBUF: usize = 4 << 20;
/// At most this many datagrams per [`CtSocket::drain`], so a flood cannot starve the
/// daemon's other work (the socket stays readable; the next round continues).
const MAX_DATAGRAMS: usize = 20_000;

/// A netlink socket subscribed to conntrack NEW and DESTROY events (non-blocking).
#[derive(Debug)]
pub struct CtSocket {
    fd: OwnedFd,
    buf: Vec<u8>,
    /// Datagrams dropped by the kernel (ENOBUFS reports).
    pub lost: u64,
    /// Datagrams not sent by the kernel (ignored).
    pub foreign: u64,
    pub parse: ParseStats,
}

impl CtSocket {
    /// Open and subscribe (needs CAP_NET_ADMIN). Lives in the caller's network namespace.
    pub fn open() -> Result<CtSocket, ExitError> {
        use nix::sys::socket::{
            AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, setsockopt, socket,
            sockopt,
        };
        let fail = |what: &str, e: nix::errno::Errno| {
            ExitError::Conntrack(format!("netlink socket: {what}: {e}"))
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(|e| fail("socket", e))?;
        let groups = (1 << (NFNLGRP_CONNTRACK_NEW - 1)) | (1 << (NFNLGRP_CONNTRACK_DESTROY - 1));
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))
            .map_err(|e| fail("subscribe to NEW/DESTROY events (needs CAP_NET_ADMIN)", e))?;
        if setsockopt(&fd, sockopt::RcvBufForce, &RCVBUF).is_err() {
            let _ = setsockopt(&fd, sockopt::RcvBuf, &RCVBUF);
        }
        Ok(CtSocket {
            fd,
            buf: vec![0; 64 * 1024],
            lost: 0,
            foreign: 0,
            parse: ParseStats::default(),
        })
    }

    /// Read every pending datagram (up to a bound) into `out`.
    pub fn drain(&mut self, out: &mut Vec<CtEvent>) -> Result<(), ExitError> {
        use nix::errno::Errno;
        use nix::sys::socket::{NetlinkAddr, SockaddrLike, recvfrom};
        for _ in 0..MAX_DATAGRAMS {
            match recvfrom::<NetlinkAddr>(self.fd.as_raw_fd(), &mut self.buf) {
                Ok((0, _)) => return Ok(()),
                Ok((n, from)) => {
                    // Only the kernel (port id 0) sends conntrack events.
                    if from.is_some_and(|a| a.family().is_some() && a.pid() != 0) {
                        self.foreign += 1;
                        continue;
                    }
                    let data = self.buf.get(..n).unwrap_or(&[]);
                    parse_datagram(data, out, &mut self.parse);
                }
                Err(Errno::EAGAIN) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(Errno::ENOBUFS) => self.lost += 1,
                Err(e) => return Err(ExitError::Conntrack(format!("netlink recv: {e}"))),
            }
        }
        Ok(())
    }
}

impl AsFd for CtSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// How the conntrack source runs.
#[derive(Debug, Clone)]
pub struct ConntrackOptions {
    /// Socket tables of the namespace (`/proc/net`, `/proc/thread-self/net`, ...).
    pub net_dir: PathBuf,
    /// `/proc/sys/net/netfilter` of the namespace.
    pub sysctl_dir: PathBuf,
    /// How often the /proc sweep runs.
    pub interval: Duration,
    /// Turn on `nf_conntrack_acct` when it is off (the operator said so).
    pub enable_acct: bool,
}

impl Default for ConntrackOptions {
    fn default() -> Self {
        ConntrackOptions {
            net_dir: PathBuf::from("/proc/net"),
            sysctl_dir: PathBuf::from("/proc/sys/net/netfilter"),
            interval: Duration::from_secs(1),
            enable_acct: false,
        }
    }
}

/// Counters of the conntrack source.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CtStats {
    /// Events received (all flows, all directions).
    pub events: u64,
    /// Outbound flows reported when they started (conntrack NEW).
    pub opened: u64,
    /// ... of which the owning process was found / only the uid / nothing.
    pub owner_process: u64,
    pub owner_uid_only: u64,
    pub owner_unknown: u64,
    /// Outbound flows reported with their byte totals when they ended.
    pub closed_with_bytes: u64,
    /// Outbound flows that ended without counters (accounting off when they started).
    pub closed_without_counters: u64,
    /// Outbound flows that ended, never seen starting (before mamori, or lost).
    pub closed_unseen: u64,
    /// TCP flows picked up mid-stream whose source port is a local listener (inbound).
    pub inbound_pickups: u64,
    /// Outbound connections only the /proc sweep saw (conntrack did not report them).
    pub proc_only: u64,
    /// Outbound connections open when the source started (from the first sweep).
    pub at_start: u64,
    /// Datagrams the kernel dropped (ENOBUFS).
    pub lost: u64,
    /// Messages skipped as malformed.
    pub malformed: u64,
    /// Open-flow entries dropped to bound memory.
    pub evicted: u64,
}

/// A flow key: protocol, original source and destination.
type FlowKey = (u8, SocketAddr, SocketAddr);

#[derive(Debug)]
struct OpenFlow {
    id: Option<u32>,
    rec: ConnRecord,
}

/// At most this many open outbound flows are remembered (their records are reused for
/// the byte report when they end; a forgotten one is reported without its process).
const MAX_OPEN: usize = 65_536;

fn proto_name(p: u8) -> Option<&'static str> {
    match p {
        IPPROTO_TCP => Some("tcp"),
        IPPROTO_UDP => Some("udp"),
        _ => None,
    }
}

fn proto_num(p: &str) -> u8 {
    if p == "tcp" { IPPROTO_TCP } else { IPPROTO_UDP }
}

fn ns_to_ts(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Not a destination of egress: loopback, unspecified, multicast, limited broadcast.
fn not_remote(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            v.is_loopback() || v.is_unspecified() || v.is_multicast() || v.is_broadcast()
        }
        IpAddr::V6(v) => v.is_loopback() || v.is_unspecified() || v.is_multicast(),
    }
}

/// The flow state behind the source: which flows are outbound, their records while
/// they are open, and the counters. Separate from the socket so it can be fed events
/// directly (tests).
#[derive(Debug, Default)]
pub struct Flows {
    local: HashSet<IpAddr>,
    /// When the local addresses were last read; `None` with `fixed_local`.
    local_read: Option<Instant>,
    fixed_local: bool,
    listening: HashSet<u16>,
    open: HashMap<FlowKey, OpenFlow>,
    pub stats: CtStats,
}

impl Flows {
    /// Flows of this host; its addresses are read with getifaddrs (and again, at most
    /// every 2 s, when an unknown source address shows up).
    pub fn new() -> Flows {
        let mut f = Flows::default();
        f.refresh_local();
        f
    }

    /// Flows of a host with these addresses (never re-read).
    pub fn with_local(addrs: impl IntoIterator<Item = IpAddr>) -> Flows {
        Flows {
            local: addrs.into_iter().collect(),
            fixed_local: true,
            ..Flows::default()
        }
    }

    fn refresh_local(&mut self) {
        if self.fixed_local {
            return;
        }
        self.local_read = Some(Instant::now());
        let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
            return;
        };
        self.local = addrs
            .filter_map(|a| a.address)
            .filter_map(|s| {
                s.as_sockaddr_in()
                    .map(|v| IpAddr::V4(v.ip()))
                    .or_else(|| s.as_sockaddr_in6().map(|v| IpAddr::V6(v.ip())))
            })
            .collect();
    }

    fn is_local(&mut self, ip: IpAddr) -> bool {
        if self.local.contains(&ip) {
            return true;
        }
        if !self.fixed_local
            && self
                .local_read
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
        {
            self.refresh_local();
        }
        self.local.contains(&ip)
    }

    /// The flow key when `ev` is a TCP/UDP flow this host started towards another host.
    fn outbound(&mut self, ev: &CtEvent) -> Option<FlowKey> {
        let o = &ev.orig;
        proto_name(o.proto)?;
        if o.src.is_loopback() || not_remote(o.dst) || !self.is_local(o.src) || self.is_local(o.dst)
        {
            return None;
        }
        Some((
            o.proto,
            SocketAddr::new(o.src, o.sport),
            SocketAddr::new(o.dst, o.dport),
        ))
    }

    /// A TCP "flow" from a local listening port is an accepted connection conntrack
    /// picked up mid-stream (the first packet it saw was the server's).
    fn inbound_pickup(&self, key: &FlowKey) -> bool {
        key.0 == IPPROTO_TCP && self.listening.contains(&key.1.port())
    }

    /// Take the listening ports of freshly read tables.
    pub fn set_tables(&mut self, t: &Tables) {
        self.listening.clone_from(&t.listening);
    }

    fn record(key: &FlowKey, ts: f64) -> ConnRecord {
        ConnRecord {
            ts,
            orig_h: Some(key.1.ip()),
            resp_h: key.2.ip(),
            resp_p: key.2.port(),
            proto: proto_name(key.0).unwrap_or("tcp").to_string(),
            orig_bytes: 0,
            resp_bytes: 0,
            conn_state: None,
            local_orig: Some(true),
            local_resp: Some(false),
            host: None,
            process: None,
        }
    }

    fn remember(&mut self, key: FlowKey, id: Option<u32>, rec: ConnRecord) {
        if self.open.len() >= MAX_OPEN {
            // Forget the older half: their end is still reported, without the process.
            let mut ts: Vec<f64> = self.open.values().map(|f| f.rec.ts).collect();
            ts.sort_by(f64::total_cmp);
            let cut = ts.get(ts.len() / 2).copied().unwrap_or(f64::MAX);
            let before = self.open.len();
            self.open.retain(|_, f| f.rec.ts > cut);
            self.stats.evicted += (before - self.open.len()) as u64;
        }
        self.open.insert(key, OpenFlow { id, rec });
    }

    /// Is this connection (from the socket tables) known as an open flow?
    fn knows(&self, proto: &str, local: SocketAddr, remote: SocketAddr) -> bool {
        self.open.contains_key(&(proto_num(proto), local, remote))
    }

    /// Turn events into live events: NEW outbound flows joined with the socket tables
    /// of `sampler` (one table read and one `/proc/*/fd` pass per batch), DESTROYs into
    /// byte reports.
    pub fn handle(&mut self, evs: &[CtEvent], sampler: &mut Sampler) -> Vec<LiveEvent> {
        self.stats.events += evs.len() as u64;
        let mut out = Vec::new();
        let mut new = Vec::new();
        for ev in evs {
            if ev.kind == CtKind::New
                && let Some(key) = self.outbound(ev)
            {
                // Already reported by the /proc sweep (it read the tables before this
                // event was read): take the id, do not report it twice.
                if let Some(f) = self.open.get_mut(&key)
                    && f.id.is_none()
                {
                    f.id = ev.id;
                    continue;
                }
                new.push((key, ev));
            }
        }
        if !new.is_empty() {
            let tables = match sampler.lookup().tables() {
                Ok(t) => {
                    self.set_tables(&t);
                    t
                }
                Err(_) => Tables::default(),
            };
            new.retain(|(key, _)| {
                let pickup = self.inbound_pickup(key);
                self.stats.inbound_pickups += u64::from(pickup);
                !pickup
            });
            let found: Vec<_> = new
                .iter()
                .map(|(key, _)| {
                    let proto = proto_name(key.0).unwrap_or("tcp");
                    tables.find(proto, key.1, key.2).map(|e| (proto, *e))
                })
                .collect();
            let want: HashSet<u64> = found
                .iter()
                .flatten()
                .map(|(_, e)| e.inode)
                .filter(|i| *i != 0)
                .collect();
            let owners = sampler.lookup().owners(&want);
            let now = live::now_ts();
            for ((key, ev), entry) in new.into_iter().zip(found) {
                let uid = entry.and_then(|(p, e)| live::entry_uid(p, &e));
                let pid = entry.and_then(|(_, e)| owners.get(&e.inode).copied());
                let process = sampler.lookup().proc_info(uid, pid);
                match (&process, pid) {
                    (Some(_), Some(_)) => self.stats.owner_process += 1,
                    (Some(_), None) => self.stats.owner_uid_only += 1,
                    (None, _) => self.stats.owner_unknown += 1,
                }
                let mut rec = Self::record(&key, ev.start_ns.map(ns_to_ts).unwrap_or(now));
                rec.process = process;
                self.stats.opened += 1;
                self.remember(key, ev.id, rec.clone());
                out.push(LiveEvent::Opened(rec));
            }
        }
        for ev in evs.iter().filter(|e| e.kind == CtKind::Destroy) {
            let o = &ev.orig;
            if proto_name(o.proto).is_none() {
                continue;
            }
            let key: FlowKey = (
                o.proto,
                SocketAddr::new(o.src, o.sport),
                SocketAddr::new(o.dst, o.dport),
            );
            // The same tuple may be a newer flow: ids must agree when both are known.
            let known = match self.open.get(&key) {
                Some(f) if f.id.is_none() || ev.id.is_none() || f.id == ev.id => {
                    self.open.remove(&key).map(|f| f.rec)
                }
                _ => None,
            };
            let mut rec = match known {
                Some(r) => r,
                None => {
                    // Never seen starting: report it only if it is outbound.
                    if self.outbound(ev).is_none() || self.inbound_pickup(&key) {
                        continue;
                    }
                    if ev.counters_orig.is_some() {
                        self.stats.closed_unseen += 1;
                    }
                    Self::record(&key, 0.0)
                }
            };
            let Some(c) = ev.counters_orig else {
                self.stats.closed_without_counters += 1;
                continue;
            };
            let reply = ev.counters_reply.unwrap_or_default();
            rec.ts = ev.stop_ns.map(ns_to_ts).unwrap_or_else(live::now_ts);
            rec.orig_bytes = c.bytes;
            rec.resp_bytes = reply.bytes;
            rec.conn_state = Some(if reply.packets > 0 { "SF" } else { "S0" }.into());
            self.stats.closed_with_bytes += 1;
            out.push(LiveEvent::Closed(rec));
        }
        out
    }
}

/// conntrack events joined with /proc, plus a /proc sweep every interval that reports
/// what the events did not (connections open at start, flows in a namespace conntrack
/// does not track, events lost).
#[derive(Debug)]
pub struct ConntrackSource {
    sock: CtSocket,
    sampler: Sampler,
    flows: Flows,
    interval: Duration,
    last_sweep: Option<Instant>,
    acct: bool,
    notices: Vec<Notice>,
    said_lost: bool,
    /// The last /proc sweep failed (said once until one succeeds again).
    sweep_failing: bool,
    said_idle: bool,
}

impl ConntrackSource {
    /// Open the socket in the caller's network namespace (the first [`poll`] sweeps
    /// /proc for connections already open). Errors say why conntrack cannot be used.
    ///
    /// [`poll`]: ConntrackSource::poll
    pub fn open(o: &ConntrackOptions) -> Result<ConntrackSource, ExitError> {
        let sysctl = |name: &str| {
            std::fs::read_to_string(o.sysctl_dir.join(name))
                .ok()
                .map(|s| s.trim().to_string())
        };
        if sysctl("nf_conntrack_events").as_deref() == Some("0") {
            return Err(ExitError::Conntrack(
                "net.netfilter.nf_conntrack_events = 0: the kernel sends no events".into(),
            ));
        }
        let sock = CtSocket::open()?;
        if !live::available(&o.net_dir) {
            return Err(ExitError::Conntrack(format!(
                "{} is not readable (needed to find the process of a flow)",
                o.net_dir.display()
            )));
        }
        let mut notices = Vec::new();
        let acct = match sysctl("nf_conntrack_acct").as_deref() {
            Some("1") => true,
            Some(_) if o.enable_acct => {
                let p = o.sysctl_dir.join("nf_conntrack_acct");
                match std::fs::write(&p, "1") {
                    Ok(()) => {
                        notices.push(Notice::AcctEnabled);
                        true
                    }
                    Err(e) => {
                        notices.push(Notice::AcctOff {
                            why: Some(format!("{}: {e}", p.display())),
                        });
                        false
                    }
                }
            }
            _ => {
                notices.push(Notice::AcctOff { why: None });
                false
            }
        };
        if sysctl("nf_conntrack_count").as_deref() == Some("0") {
            notices.push(Notice::CtIdle {
                confirmed: false,
                proc_only: 0,
            });
        }
        Ok(ConntrackSource {
            sock,
            sampler: Sampler::with_net_dir(&o.net_dir),
            flows: Flows::new(),
            interval: o.interval,
            last_sweep: None,
            acct,
            notices,
            said_lost: false,
            sweep_failing: false,
            said_idle: false,
        })
    }

    /// Is byte accounting on (flows started from now on carry counters)?
    pub fn accounting(&self) -> bool {
        self.acct
    }

    /// Counters so far.
    pub fn stats(&self) -> &CtStats {
        &self.flows.stats
    }

    /// Things to tell the operator since the last call.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// The /proc sweep: outbound connections open now that conntrack did not report.
    fn sweep(&mut self) -> Result<Vec<LiveEvent>, ExitError> {
        let first = self.last_sweep.is_none();
        self.last_sweep = Some(Instant::now());
        let tables = self.sampler.lookup().tables()?;
        self.flows.set_tables(&tables);
        // Events queued while the tables were read come first: a connection in the
        // tables has sent its first packet, so its NEW is queued by now.
        let mut evs = Vec::new();
        self.sock.drain(&mut evs)?;
        let mut out = self.flows.handle(&evs, &mut self.sampler);
        let missed: Vec<_> = self
            .sampler
            .fresh(&tables)
            .into_iter()
            .filter(|(p, e)| !self.flows.knows(p, e.local, e.remote))
            .collect();
        if missed.is_empty() {
            return Ok(out);
        }
        let st = &mut self.flows.stats;
        if first {
            st.at_start += missed.len() as u64;
        } else {
            st.proc_only += missed.len() as u64;
            // Nothing at all from conntrack while /proc sees new connections: no rule
            // uses conntrack in this namespace.
            if st.events == 0 && !self.said_idle {
                self.said_idle = true;
                self.notices.push(Notice::CtIdle {
                    confirmed: true,
                    proc_only: st.proc_only,
                });
            }
        }
        // Records come in the order of their entries.
        let recs = self.sampler.records(&missed);
        for ((p, e), r) in missed.iter().zip(recs) {
            self.flows
                .remember((proto_num(p), e.local, e.remote), None, r.clone());
            out.push(LiveEvent::Opened(r));
        }
        Ok(out)
    }

    /// Read what is pending, join it, and sweep /proc when the interval is due.
    pub fn poll(&mut self) -> Result<Vec<LiveEvent>, ExitError> {
        let mut evs = Vec::new();
        self.sock.drain(&mut evs)?;
        let mut out = self.flows.handle(&evs, &mut self.sampler);
        if self.last_sweep.is_none_or(|t| t.elapsed() >= self.interval) {
            // The events above are handled (remembered): a failed sweep must not drop them.
            match self.sweep() {
                Ok(v) => {
                    out.extend(v);
                    self.sweep_failing = false;
                }
                Err(e) => {
                    if !self.sweep_failing {
                        self.notices
                            .push(Notice::SweepFailed { why: e.to_string() });
                    }
                    self.sweep_failing = true;
                }
            }
        }
        self.flows.stats.lost = self.sock.lost;
        self.flows.stats.malformed = self.sock.parse.malformed;
        if self.sock.lost > 0 && !self.said_lost {
            self.said_lost = true;
            self.notices.push(Notice::EventsLost);
        }
        Ok(out)
    }

    /// The socket, for poll(2): readable when events are waiting.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(src: &str, sport: u16, dst: &str, dport: u16, proto: u8) -> CtTuple {
        CtTuple {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto,
            sport,
            dport,
        }
    }

    fn event(kind: CtKind) -> CtEvent {
        CtEvent {
            kind,
            family: 2,
            id: Some(0xdead_beef),
            orig: tuple("198.51.100.1", 40000, "203.0.113.9", 443, IPPROTO_TCP),
            reply: Some(tuple(
                "203.0.113.9",
                443,
                "198.51.100.1",
                40000,
                IPPROTO_TCP,
            )),
            status: Some(0x18e),
            mark: None,
            zone: None,
            counters_orig: Some(CtCounters {
                packets: 12,
                bytes: 5_123,
            }),
            counters_reply: Some(CtCounters {
                packets: 9,
                bytes: 40_000,
            }),
            start_ns: Some(1_700_000_000_123_456_789),
            stop_ns: Some(1_700_000_001_000_000_000),
        }
    }

    #[test]
    fn round_trip_v4_and_v6() {
        for kind in [CtKind::New, CtKind::Update, CtKind::Destroy] {
            let ev = event(kind);
            let b = encode_event(&ev);
            let (mut out, mut st) = (Vec::new(), ParseStats::default());
            parse_datagram(&b, &mut out, &mut st);
            assert_eq!(out, vec![ev], "{st:?}");
        }
        let mut ev = event(CtKind::Destroy);
        ev.family = 10;
        ev.orig = tuple("2001:db8::1", 5353, "2001:db8:1::53", 53, IPPROTO_UDP);
        ev.reply = None;
        ev.counters_orig = None;
        ev.counters_reply = None;
        ev.start_ns = None;
        ev.stop_ns = None;
        ev.zone = Some(7);
        ev.mark = Some(42);
        let mut b = encode_event(&ev);
        // Two messages in one datagram.
        b.extend(encode_event(&event(CtKind::New)));
        let (mut out, mut st) = (Vec::new(), ParseStats::default());
        parse_datagram(&b, &mut out, &mut st);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], ev);
        assert_eq!(st.events, 2);
    }

    #[test]
    fn counters32_and_unknown_attributes() {
        // A destroy with 32-bit counters and an unknown top-level attribute (type 99).
        let ev = event(CtKind::Destroy);
        let mut b = encode_event(&ev);
        let mut extra = Vec::new();
        put_attr(&mut extra, 99, &[1, 2, 3]);
        extra.extend(nested(CTA_COUNTERS_ORIG, |o| {
            put_attr(o, CTA_COUNTERS32_PACKETS, &3u32.to_be_bytes());
            put_attr(o, CTA_COUNTERS32_BYTES, &777u32.to_be_bytes());
        }));
        b.extend(&extra);
        let len = b.len() as u32;
        b[..4].copy_from_slice(&len.to_ne_bytes());
        let (mut out, mut st) = (Vec::new(), ParseStats::default());
        parse_datagram(&b, &mut out, &mut st);
        assert_eq!(
            out[0].counters_orig,
            Some(CtCounters {
                packets: 3,
                bytes: 777
            })
        );
    }

    #[test]
    fn truncations_never_panic_and_are_counted() {
        let b = encode_event(&event(CtKind::Destroy));
        for cut in 0..b.len() {
            let mut t = b[..cut].to_vec();
            // Keep the header's length honest so the body is what is truncated.
            if cut >= 4 {
                t[..4].copy_from_slice(&(cut as u32).to_ne_bytes());
            }
            let (mut out, mut st) = (Vec::new(), ParseStats::default());
            parse_datagram(&t, &mut out, &mut st);
            assert!(out.len() <= 1);
            if out.is_empty() && cut > 0 {
                assert!(st.malformed + st.ignored > 0, "cut {cut}: {st:?}");
            }
        }
        // Corrupt every byte in turn.
        for i in 0..b.len() {
            let mut t = b.clone();
            t[i] ^= 0xff;
            let (mut out, mut st) = (Vec::new(), ParseStats::default());
            parse_datagram(&t, &mut out, &mut st);
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Datagrams captured from Linux 6.18 (x86_64) for one UDP `sendto` of 100 bytes
    /// from 198.51.100.245 to 198.51.100.246:48452, with nf_conntrack_acct and
    /// nf_conntrack_timestamp on: the NEW event, then the DESTROY event.
    const CAPTURED_NEW: &str = "a000000000010006000000000000000002000000340001801400018008000100c63364f508000200c63364f61c0002800500010011000000060002009bb5000006000300bd440000340002801400018008000100c63364f608000200c63364f51c000280050001001100000006000200bd440000060003009bb5000008000c008d52be94080003000000000808000700000000010c001b0018eb2a06229543c5";
    const CAPTURED_DESTROY: &str = "ec00000002010000000000000000000002000000340001801400018008000100c63364f508000200c63364f61c0002800500010011000000060002009bb5000006000300bd440000340002801400018008000100c63364f608000200c63364f51c000280050001001100000006000200bd440000060003009bb5000008000c008d52be9408000300000002081c0009800c00010000000000000000010c00020000000000000000801c000a800c00010000000000000000000c00020000000000000000001c0014800c00010018eb2a062295427b0c00020018eb2a065e0f47720c001b0018eb2a074cf48457";

    #[test]
    fn parses_captured_kernel_events() {
        let (mut out, mut st) = (Vec::new(), ParseStats::default());
        parse_datagram(&hex(CAPTURED_NEW), &mut out, &mut st);
        parse_datagram(&hex(CAPTURED_DESTROY), &mut out, &mut st);
        assert_eq!((st.events, st.malformed), (2, 0), "{st:?}");
        let want = tuple(
            "198.51.100.245",
            39861,
            "198.51.100.246",
            48452,
            IPPROTO_UDP,
        );
        let (n, d) = (&out[0], &out[1]);
        assert_eq!(n.kind, CtKind::New);
        assert_eq!(d.kind, CtKind::Destroy);
        for e in [n, d] {
            assert_eq!(e.family, 2);
            assert_eq!(e.orig, want);
            assert_eq!(
                e.reply,
                Some(tuple("198.51.100.246", 48452, "198.51.100.245", 39861, 17))
            );
            assert_eq!(e.id, Some(0x8d52_be94));
        }
        // NEW carries no counters yet; DESTROY has them (IP bytes: 100 + 28).
        assert_eq!(n.counters_orig, None);
        assert_eq!(
            d.counters_orig,
            Some(CtCounters {
                packets: 1,
                bytes: 128
            })
        );
        assert_eq!(d.counters_reply, Some(CtCounters::default()));
        let (start, stop) = (d.start_ns.unwrap(), d.stop_ns.unwrap());
        assert!(
            stop > start && stop - start < 5_000_000_000,
            "{start} {stop}"
        );
    }

    /// A fake `/proc/net` with the given tcp and udp rows (local, remote, state, uid,
    /// inode).
    fn net_dir(
        tcp: &[(&str, &str, u8, u32, u64)],
        udp: &[(&str, &str, u8, u32, u64)],
    ) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let fmt = |a: &str| {
            let a: SocketAddr = a.parse().unwrap();
            let IpAddr::V4(v) = a.ip() else {
                panic!("v4 only")
            };
            format!("{:08X}:{:04X}", u32::from_ne_bytes(v.octets()), a.port())
        };
        for (name, rows) in [("tcp", tcp), ("udp", udp)] {
            let mut t = String::from(
                "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
            );
            for (i, (l, r, st, uid, ino)) in rows.iter().enumerate() {
                t.push_str(&format!(
                    "{i:4}: {} {} {st:02X} 00000000:00000000 00:00000000 00000000 {uid:5} 0 {ino} 1\n",
                    fmt(l),
                    fmt(r)
                ));
            }
            std::fs::write(d.path().join(name), t).unwrap();
        }
        d
    }

    fn ct(kind: CtKind, proto: u8, src: &str, dst: &str, id: u32, bytes: Option<u64>) -> CtEvent {
        let (s, d): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        CtEvent {
            kind,
            family: 2,
            id: Some(id),
            orig: CtTuple {
                src: s.ip(),
                dst: d.ip(),
                proto,
                sport: s.port(),
                dport: d.port(),
            },
            reply: None,
            status: None,
            mark: None,
            zone: None,
            counters_orig: bytes.map(|b| CtCounters {
                packets: 3,
                bytes: b,
            }),
            counters_reply: bytes.map(|_| CtCounters {
                packets: 2,
                bytes: 90,
            }),
            start_ns: None,
            stop_ns: bytes.map(|_| 1_700_000_100_000_000_000),
        }
    }

    #[test]
    fn flows_join_owners_and_keep_inbound_out() {
        const ME: &str = "198.51.100.1";
        // An inode no process holds: the join finds the uid from the table, no pid.
        const INO: u64 = u64::MAX - 7;
        let dir = net_dir(
            &[
                ("198.51.100.1:40000", "203.0.113.9:443", 0x01, 33, INO),
                ("0.0.0.0:443", "0.0.0.0:0", 0x0A, 0, INO - 1),
                // TIME_WAIT: uid column is 0 whoever owned it.
                ("198.51.100.1:40002", "203.0.113.9:443", 0x06, 0, 0),
            ],
            &[("0.0.0.0:51000", "0.0.0.0:0", 0x07, 65534, INO - 2)],
        );
        let mut sampler = Sampler::with_net_dir(dir.path());
        let mut f = Flows::with_local([ME.parse().unwrap()]);
        let evs = vec![
            ct(
                CtKind::New,
                IPPROTO_TCP,
                "198.51.100.1:40000",
                "203.0.113.9:443",
                1,
                None,
            ),
            ct(
                CtKind::New,
                IPPROTO_UDP,
                "198.51.100.1:51000",
                "203.0.113.53:53",
                2,
                None,
            ),
            ct(
                CtKind::New,
                IPPROTO_TCP,
                "198.51.100.1:40002",
                "203.0.113.9:443",
                3,
                None,
            ),
            // Mid-stream pickup of an accepted connection (source = local listener).
            ct(
                CtKind::New,
                IPPROTO_TCP,
                "198.51.100.1:443",
                "203.0.113.77:55555",
                4,
                None,
            ),
            // Inbound, loopback, local-to-local, multicast, ICMP: not egress.
            ct(
                CtKind::New,
                IPPROTO_TCP,
                "203.0.113.5:1234",
                "198.51.100.1:443",
                5,
                None,
            ),
            ct(
                CtKind::New,
                IPPROTO_TCP,
                "127.0.0.1:1234",
                "127.0.0.1:3306",
                6,
                None,
            ),
            ct(
                CtKind::New,
                IPPROTO_TCP,
                "198.51.100.1:1234",
                "198.51.100.1:3306",
                7,
                None,
            ),
            ct(
                CtKind::New,
                IPPROTO_UDP,
                "198.51.100.1:5353",
                "224.0.0.251:5353",
                8,
                None,
            ),
            ct(CtKind::New, 1, "198.51.100.1:0", "203.0.113.9:0", 9, None),
        ];
        let out = f.handle(&evs, &mut sampler);
        let opened: Vec<&ConnRecord> = out
            .iter()
            .map(|e| match e {
                LiveEvent::Opened(r) => r,
                LiveEvent::Closed(r) => panic!("closed {r:?}"),
            })
            .collect();
        assert_eq!(opened.len(), 3, "{opened:?}");
        let p0 = opened[0].process.as_ref().unwrap();
        assert_eq!((p0.uid, p0.pid), (Some(33), None));
        assert_eq!(opened[1].proto, "udp");
        assert_eq!(opened[1].process.as_ref().unwrap().uid, Some(65534));
        assert_eq!(opened[2].process, None, "TIME_WAIT uid is unknown");
        assert_eq!(f.stats.inbound_pickups, 1);
        assert_eq!(f.stats.owner_uid_only, 2);
        assert_eq!(f.stats.owner_unknown, 1);

        let evs = vec![
            // The first flow ends: bytes, with the owner found when it started.
            ct(
                CtKind::Destroy,
                IPPROTO_TCP,
                "198.51.100.1:40000",
                "203.0.113.9:443",
                1,
                Some(5_000),
            ),
            // Same tuple as the UDP flow, another id: a different (unseen) flow.
            ct(
                CtKind::Destroy,
                IPPROTO_UDP,
                "198.51.100.1:51000",
                "203.0.113.53:53",
                99,
                Some(70),
            ),
            // Started before the source: reported without an owner.
            ct(
                CtKind::Destroy,
                IPPROTO_TCP,
                "198.51.100.1:41000",
                "203.0.113.10:443",
                10,
                Some(800),
            ),
            // No counters (accounting was off): nothing to report.
            ct(
                CtKind::Destroy,
                IPPROTO_TCP,
                "198.51.100.1:40002",
                "203.0.113.9:443",
                3,
                None,
            ),
            // Inbound and pickup flows ending: not egress.
            ct(
                CtKind::Destroy,
                IPPROTO_TCP,
                "203.0.113.5:1234",
                "198.51.100.1:443",
                5,
                Some(9),
            ),
            ct(
                CtKind::Destroy,
                IPPROTO_TCP,
                "198.51.100.1:443",
                "203.0.113.77:55555",
                4,
                Some(9),
            ),
        ];
        let out = f.handle(&evs, &mut sampler);
        let closed: Vec<&ConnRecord> = out
            .iter()
            .map(|e| match e {
                LiveEvent::Closed(r) => r,
                LiveEvent::Opened(r) => panic!("opened {r:?}"),
            })
            .collect();
        assert_eq!(closed.len(), 3, "{closed:?}");
        assert_eq!(closed[0].orig_bytes, 5_000);
        assert_eq!(closed[0].resp_bytes, 90);
        assert_eq!(closed[0].ts, 1_700_000_100.0);
        assert_eq!(closed[0].process.as_ref().unwrap().uid, Some(33));
        assert_eq!(
            (closed[1].orig_bytes, closed[1].process.clone()),
            (70, None)
        );
        assert_eq!((closed[2].orig_bytes, closed[2].resp_p), (800, 443));
        assert_eq!(f.stats.closed_unseen, 2);
        assert_eq!(f.stats.closed_without_counters, 1);
        assert_eq!(f.stats.closed_with_bytes, 3);
        // A flow the /proc sweep reported first: its NEW is not reported again, and its
        // DESTROY (now with the id) carries the bytes.
        let key = (
            IPPROTO_TCP,
            "198.51.100.1:42000".parse().unwrap(),
            "203.0.113.11:443".parse().unwrap(),
        );
        f.remember(key, None, Flows::record(&key, 5.0));
        let a = ct(
            CtKind::New,
            IPPROTO_TCP,
            "198.51.100.1:42000",
            "203.0.113.11:443",
            11,
            None,
        );
        assert!(f.handle(&[a], &mut sampler).is_empty());
        let z = ct(
            CtKind::Destroy,
            IPPROTO_TCP,
            "198.51.100.1:42000",
            "203.0.113.11:443",
            11,
            Some(42),
        );
        let out = f.handle(&[z], &mut sampler);
        assert!(
            matches!(&out[..], [LiveEvent::Closed(r)] if r.orig_bytes == 42),
            "{out:?}"
        );
        // The UDP flow (id 2) is still open.
        assert!(f.knows(
            "udp",
            "198.51.100.1:51000".parse().unwrap(),
            "203.0.113.53:53".parse().unwrap()
        ));
    }

    #[test]
    fn other_messages_are_ignored() {
        let mut ev = encode_event(&event(CtKind::New));
        // Expectation subsystem (2) instead of ctnetlink.
        ev[5] = 2;
        let (mut out, mut st) = (Vec::new(), ParseStats::default());
        parse_datagram(&ev, &mut out, &mut st);
        assert!(out.is_empty());
        assert_eq!(st.ignored, 1);
        let mut err = vec![0u8; 20];
        err[..4].copy_from_slice(&20u32.to_ne_bytes());
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        parse_datagram(&err, &mut out, &mut st);
        assert_eq!(st.errors, 1);
        // A message without an original tuple is malformed.
        let m = parse_message(u16::from_be_bytes([1, 2]), 0, &[2, 0, 0, 0]);
        assert!(m.is_err());
    }
}
