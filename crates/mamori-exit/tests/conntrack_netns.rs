//! conntrack source test. As root: two network namespaces made by this test, "shop"
//! (`mamori-cth-<pid>`) and "remote" (`mamori-ct-<pid>`), joined by a veth pair on
//! documentation addresses (198.51.100.245 and .246). In the shop namespace only, an nft
//! rule that uses conntrack turns tracking on, accounting is turned on through the
//! source's `enable_acct`, and the TIME_WAIT / UDP timeouts are cut to 1 s so flows end
//! quickly. A test thread enters the shop namespace, opens the source there, and the
//! "web user" (`nobody`) sends from it:
//!
//! * a TCP connection that sends 50 000 bytes and closes at once (shorter than any /proc
//!   poll interval): reported when it starts and, when conntrack forgets it, with its
//!   bytes;
//! * one UDP datagram with `sendto` (never visible in the /proc socket tables as a
//!   connection): reported with its bytes;
//! * a TCP connection held open: reported with the process (pid, exe) and the user;
//! * an inbound connection from the remote namespace: not reported.
//!
//! Traffic goes only to the addresses this test created; both namespaces are removed
//! afterwards. Skips (one line) when not root or tools are missing, unless `CI` is set.

#[path = "support/netns.rs"]
mod netns;

use mamori_exit::LiveSource;
use mamori_exit::conntrack::ConntrackOptions;
use mamori_exit::source::{LiveEvent, Notice, Source};
use mamori_exit::zeek::ConnRecord;
use netns::Net;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SHOP: &str = "198.51.100.245";
const REMOTE: &str = "198.51.100.246";
const TCP_PORT: u16 = 48451;
const UDP_PORT: u16 = 48452;
const HELD_PORT: u16 = 48453;
const INBOUND_PORT: u16 = 48454;
const SENT: usize = 50_000;

fn run(cmd: &str, args: &[&str]) {
    let o = Command::new(cmd).args(args).output().expect("run");
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn skip(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI must run this test, but {why}");
    }
    println!("skipped: {why}");
}

fn python() -> &'static str {
    // The system interpreter: a per-user shim under /root is not reachable by `nobody`.
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn is_flow(r: &ConnRecord, proto: &str, port: u16) -> bool {
    r.proto == proto && r.resp_p == port && r.resp_h.to_string() == REMOTE
}

#[test]
fn conntrack_reports_short_flows_with_bytes_and_owners() {
    if !nix::unistd::Uid::effective().is_root() {
        return skip("conntrack netns test needs root");
    }
    for tool in ["ip", "nft", python()] {
        if Command::new(tool).arg("--version").output().is_err() {
            return skip(&format!("`{tool}` not found"));
        }
    }
    let Some(nobody) = nix::unistd::User::from_name("nobody").ok().flatten() else {
        return skip("no `nobody` user");
    };
    if !netns::netns_works() {
        return skip("`ip netns add` failed (no CAP_SYS_ADMIN here, e.g. in a container)");
    }
    // The shop namespace (`host`) and the remote one, linked; nothing in the test's own.
    let mut g = Net::new(
        "ct",
        &format!("{SHOP}/30"),
        &[&format!("{REMOTE}/30")],
        true,
    );
    let (a, b) = (g.host.clone().expect("isolated"), g.ns.clone());
    // Conntrack hooks in the shop namespace only: a rule that uses ct.
    run(
        "ip",
        &[
            "netns",
            "exec",
            &a,
            "nft",
            "add table inet mamori_test; add chain inet mamori_test out { type filter hook output priority 0; }; add rule inet mamori_test out ct state new counter",
        ],
    );
    for (k, v) in [
        ("net.netfilter.nf_conntrack_tcp_timeout_time_wait", "1"),
        ("net.netfilter.nf_conntrack_tcp_timeout_fin_wait", "1"),
        ("net.netfilter.nf_conntrack_tcp_timeout_close_wait", "1"),
        ("net.netfilter.nf_conntrack_tcp_timeout_last_ack", "1"),
        ("net.netfilter.nf_conntrack_tcp_timeout_close", "1"),
        ("net.netfilter.nf_conntrack_udp_timeout", "1"),
        ("net.netfilter.nf_conntrack_udp_timeout_stream", "1"),
    ] {
        run(
            "ip",
            &["netns", "exec", &a, "sysctl", "-qw", &format!("{k}={v}")],
        );
    }

    // The remote end: a TCP sink, a held listener and a UDP sink; "ready" when bound.
    let server = format!(
        "import socket,threading,sys\n\
         def sink(p):\n  s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('{REMOTE}',p));s.listen(8)\n  def serve(c):\n    while c.recv(65536): pass\n    c.close()\n  def loop():\n    while True:\n      c,_=s.accept();threading.Thread(target=serve,args=(c,),daemon=True).start()\n  threading.Thread(target=loop,daemon=True).start()\n\
         sink({TCP_PORT});sink({HELD_PORT})\n\
         u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);u.bind(('{REMOTE}',{UDP_PORT}))\n\
         threading.Thread(target=lambda:[u.recv(65536) for _ in iter(int,1)],daemon=True).start()\n\
         print('ready',flush=True)\nsys.stdin.read()\n"
    );
    let mut srv = Command::new("ip")
        .args(["netns", "exec", &b, python(), "-c", &server])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server");
    let mut out = srv.stdout.take().expect("stdout");
    g.children.push(srv);
    let mut buf = [0u8; 6];
    out.read_exact(&mut buf).expect("server ready");
    // A listener in the shop namespace, for the inbound connection.
    let inbound_srv = format!(
        "import socket,sys\ns=socket.socket();s.bind(('{SHOP}',{INBOUND_PORT}));s.listen(8)\nprint('ready',flush=True)\nc,_=s.accept();c.sendall(b'y'*1000);sys.stdin.read()\n"
    );
    let mut isrv = Command::new("ip")
        .args(["netns", "exec", &a, python(), "-c", &inbound_srv])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("inbound server");
    let mut iout = isrv.stdout.take().expect("stdout");
    g.children.push(isrv);
    iout.read_exact(&mut buf).expect("inbound server ready");

    let ns_file = PathBuf::from("/run/netns").join(&a);
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    let b_ns = b.clone();
    // Everything that must run inside the shop namespace runs on this thread.
    let t = std::thread::spawn(move || {
        let f = std::fs::File::open(&ns_file).expect("netns file");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let opts = ConntrackOptions {
            net_dir: PathBuf::from("/proc/thread-self/net"),
            interval: Duration::from_millis(500),
            enable_acct: true,
            ..ConntrackOptions::default()
        };
        let (mut src, notices) =
            Source::open_with(LiveSource::Conntrack, &opts).expect("open conntrack");
        assert_eq!(src.name(), "conntrack");
        assert!(
            notices.contains(&Notice::AcctEnabled)
                || !notices.iter().any(|n| matches!(n, Notice::AcctOff { .. })),
            "{notices:?}"
        );
        let mut seen: Vec<LiveEvent> = Vec::new();
        let pump = |src: &mut Source, seen: &mut Vec<LiveEvent>, ms: u64| {
            let end = Instant::now() + Duration::from_millis(ms);
            while Instant::now() < end {
                if let Some(fd) = src.fd() {
                    let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
                    let _ = nix::poll::poll(&mut fds, 50u16);
                }
                seen.extend(src.poll().expect("poll"));
            }
        };
        pump(&mut src, &mut seen, 300);

        // 1. A short TCP connection: connect, send, close, exit.
        let short = Command::new(python())
            .arg("-c")
            .arg(format!(
                "import socket\ns=socket.create_connection(('{REMOTE}',{TCP_PORT}))\ns.sendall(b'x'*{SENT})\ns.close()"
            ))
            .uid(uid)
            .gid(gid)
            .status()
            .expect("short client");
        assert!(short.success());
        // 2. One UDP datagram with sendto.
        let udp = Command::new(python())
            .arg("-c")
            .arg(format!(
                "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.sendto(b'u'*1200,('{REMOTE}',{UDP_PORT}))"
            ))
            .uid(uid)
            .gid(gid)
            .status()
            .expect("udp client");
        assert!(udp.success());
        // 3. A held connection (the process stays until told to go).
        let mut held = Command::new(python())
            .arg("-c")
            .arg(format!(
                "import socket,sys\ns=socket.create_connection(('{REMOTE}',{HELD_PORT}))\ns.sendall(b'h'*300)\nprint('ok',flush=True)\nsys.stdin.read()"
            ))
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("held client");
        let held_pid = held.id();
        let mut line = String::new();
        BufReader::new(held.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("held connected");
        // 4. An inbound connection from the remote namespace.
        let inbound = Command::new("ip")
            .args(["netns", "exec", &b_ns, python(), "-c"])
            .arg(format!(
                "import socket\ns=socket.create_connection(('{SHOP}',{INBOUND_PORT}))\ns.recv(1000)\ns.close()"
            ))
            .status()
            .expect("inbound client");
        assert!(inbound.success());

        pump(&mut src, &mut seen, 1_000);
        let opened = |seen: &[LiveEvent], proto: &str, port: u16| {
            seen.iter().find_map(|e| match e {
                LiveEvent::Opened(r) if is_flow(r, proto, port) => Some(r.clone()),
                _ => None,
            })
        };
        let held_rec = opened(&seen, "tcp", HELD_PORT)
            .unwrap_or_else(|| panic!("held connection not reported: {seen:?}"));
        let p = held_rec
            .process
            .clone()
            .expect("owner of the held connection");
        assert_eq!(p.pid, Some(held_pid), "{p:?}");
        assert_eq!(p.uid, Some(uid), "{p:?}");
        assert_eq!(p.user.as_deref(), Some(nobody.name.as_str()), "{p:?}");
        assert!(
            p.exe.as_deref().is_some_and(|e| e.contains("python3")),
            "{p:?}"
        );
        assert!(
            opened(&seen, "tcp", TCP_PORT).is_some(),
            "short TCP: {seen:?}"
        );
        assert!(
            opened(&seen, "udp", UDP_PORT).is_some(),
            "UDP sendto: {seen:?}"
        );
        assert!(
            !seen.iter().any(|e| matches!(e,
                LiveEvent::Opened(r) | LiveEvent::Closed(r) if r.resp_p == INBOUND_PORT || r.orig_h.is_some_and(|h| h.to_string() == REMOTE))),
            "inbound connection reported as egress: {seen:?}"
        );
        if let Some(mut i) = held.stdin.take() {
            let _ = i.write_all(b"bye");
        }
        drop(held.stdin.take());
        let _ = held.wait();

        // Byte totals arrive when conntrack forgets the flows (1 s timeouts here, plus
        // the kernel's garbage collection).
        let deadline = Instant::now() + Duration::from_secs(120);
        let closed = |seen: &[LiveEvent], proto: &str, port: u16| {
            seen.iter().find_map(|e| match e {
                LiveEvent::Closed(r) if is_flow(r, proto, port) => Some(r.clone()),
                _ => None,
            })
        };
        while Instant::now() < deadline
            && [("tcp", TCP_PORT), ("udp", UDP_PORT), ("tcp", HELD_PORT)]
                .iter()
                .any(|(p, port)| closed(&seen, p, *port).is_none())
        {
            pump(&mut src, &mut seen, 500);
        }
        let tcp = closed(&seen, "tcp", TCP_PORT)
            .unwrap_or_else(|| panic!("no byte report for the short TCP flow: {seen:?}"));
        // IP-level bytes: payload plus headers.
        assert!(tcp.orig_bytes >= SENT as u64, "{tcp:?}");
        assert!(tcp.orig_bytes < SENT as u64 + 20_000, "{tcp:?}");
        let udp = closed(&seen, "udp", UDP_PORT)
            .unwrap_or_else(|| panic!("no byte report for the UDP flow: {seen:?}"));
        assert_eq!(udp.orig_bytes, 1200 + 28, "{udp:?}");
        let held = closed(&seen, "tcp", HELD_PORT).expect("held flow ended");
        // The end report carries the owner found when it started.
        assert_eq!(held.process.and_then(|p| p.pid), Some(held_pid));
        let stats = match &src {
            Source::Conntrack(c) => c.stats().clone(),
            Source::Proc(_) => unreachable!(),
        };
        println!("conntrack: {stats:?}");
        assert_eq!(stats.lost, 0);
        assert_eq!(stats.malformed, 0);
    });
    let r = t.join();
    // Stop the servers before the namespaces go.
    for c in &mut g.children {
        drop(c.stdin.take());
    }
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
}
