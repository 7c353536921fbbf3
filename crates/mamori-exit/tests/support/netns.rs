//! Network namespaces for the live egress tests, shared by `crates/mamori-exit/tests` and
//! `crates/mamori/tests` (included with `#[path]`): a private namespace joined by a veth
//! pair to the test's own namespace, or to a second private one (`isolated`: then nothing
//! the test does touches the machine's namespace, e.g. a firewall policy); the processes
//! the test started there. Everything is killed and removed when dropped. Documentation
//! addresses only. Needs root and `ip` (iproute2).
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};

/// Run `ip` with `args`; panics with its stderr when it fails.
pub fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Whether `tool --version` runs.
pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether namespaces can be made here (not in a container without CAP_SYS_ADMIN).
pub fn netns_works() -> bool {
    let probe = format!("mamori-probe-{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &probe])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    }
    ok
}

/// A namespace `ns` (the far side, "the internet") linked to `host` (the test's own
/// namespace when `None`).
pub struct Net {
    pub ns: String,
    /// The near side's own namespace, when isolated.
    pub host: Option<String>,
    /// The near end of the veth pair (in `host`).
    pub veth: String,
    /// The far end (in `ns`).
    pub peer: String,
    pub children: Vec<Child>,
}

impl Net {
    /// `tag`: two or three letters unique to the test (names stay under 16 bytes).
    /// `host_cidr` goes on the near end, each of `ns_cidrs` on the far end.
    pub fn new(tag: &str, host_cidr: &str, ns_cidrs: &[&str], isolated: bool) -> Net {
        let pid = std::process::id();
        let n = Net {
            ns: format!("mamori-{tag}-{pid}"),
            host: isolated.then(|| format!("mamori-{tag}h-{pid}")),
            veth: format!("m{tag}a{}", pid % 1_000_000),
            peer: format!("m{tag}b{}", pid % 1_000_000),
            children: Vec::new(),
        };
        ip(&["netns", "add", &n.ns]);
        if let Some(h) = &n.host {
            ip(&["netns", "add", h]);
        }
        ip(&[
            "link", "add", &n.veth, "type", "veth", "peer", "name", &n.peer,
        ]);
        ip(&["link", "set", &n.peer, "netns", &n.ns]);
        if let Some(h) = &n.host {
            ip(&["link", "set", &n.veth, "netns", h]);
        }
        n.ip_host(&["addr", "add", host_cidr, "dev", &n.veth]);
        n.ip_host(&["link", "set", &n.veth, "up"]);
        n.ip_host(&["link", "set", "lo", "up"]);
        for c in ns_cidrs {
            ip(&["-n", &n.ns, "addr", "add", c, "dev", &n.peer]);
        }
        ip(&["-n", &n.ns, "link", "set", &n.peer, "up"]);
        ip(&["-n", &n.ns, "link", "set", "lo", "up"]);
        n
    }

    fn ip_host(&self, args: &[&str]) {
        match &self.host {
            Some(h) => {
                let mut a = vec!["-n", h.as_str()];
                a.extend_from_slice(args);
                ip(&a);
            }
            None => ip(args),
        }
    }

    /// `program` in the far namespace.
    pub fn in_ns(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }

    /// `program` on the near side (its own namespace when isolated).
    pub fn in_host(&self, program: &str) -> Command {
        match &self.host {
            Some(h) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", h, program]);
                c
            }
            None => Command::new(program),
        }
    }

    /// A TCP listener on `addr:port` in the far namespace that accepts (and keeps open) every
    /// connection; returns once it listens.
    pub fn listen(&mut self, addr: &str, port: u16) {
        let mut c = self
            .in_ns("python3")
            .arg("-c")
            .arg(format!(
                "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{addr}',{port}))\ns.listen(16)\nprint('ready',flush=True)\nkeep=[]\nwhile True:\n  c,_=s.accept()\n  keep.append(c)"
            ))
            .stdout(Stdio::piped())
            .spawn()
            .expect("listener");
        let mut out = c.stdout.take().expect("stdout");
        self.children.push(c);
        let mut buf = [0u8; 6];
        std::io::Read::read_exact(&mut out, &mut buf).expect("listener ready");
        assert_eq!(&buf[..5], b"ready");
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Deleting a namespace deletes the veth end in it, and with it the pair.
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .stderr(Stdio::null())
            .status();
        for ns in std::iter::once(&self.ns).chain(self.host.as_ref()) {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}
