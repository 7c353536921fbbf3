//! `mamori watch` with `[exit] live = true`: a process started by the test as the web user
//! (`nobody`) connects to an address of a network namespace the test created, and watch
//! reports `egress.new_destination` naming the process and the user. Traffic goes only to
//! the test's own addresses; everything is removed afterwards. Needs root (skips with a
//! reason otherwise, fails under CI).

mod common;
#[path = "../../mamori-exit/tests/support/netns.rs"]
mod netns;

use common::*;
use netns::{Net, have};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NS_ADDR: &str = "198.51.100.250";
const HOST_ADDR: &str = "198.51.100.249/30";
const PORT: u16 = 48444;

#[test]
fn watch_reports_web_user_connection_with_process_and_user() {
    if !need(
        is_root(),
        "live egress test needs root (network namespaces)",
    ) {
        return;
    }
    if !need(
        have("ip") && have("python3"),
        "`ip` (iproute2) or python3 missing",
    ) {
        return;
    }
    let Some(nobody) = nix::unistd::User::from_name("nobody").ok().flatten() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have a `nobody` user"
        );
        eprintln!("skipped: no `nobody` user");
        return;
    };
    let d = tempfile::tempdir().unwrap();
    init_tiny_shop(d.path());
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(d.path().join("mamori.toml"))
            .unwrap();
        // No learning period: the first contact is reported at once.
        writeln!(
            f,
            "\n[exit]\nlive = true\nlive_interval_ms = 200\nlearning_days = 0.0"
        )
        .unwrap();
    }

    let ns_cidr = format!("{NS_ADDR}/30");
    let mut g = Net::new("wx", HOST_ADDR, &[&ns_cidr], false);
    g.listen(NS_ADDR, PORT);

    // The daemon.
    let mut watch = watch_cmd(d.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch");
    let wout = watch.stdout.take().unwrap();
    let werr = watch.stderr.take().unwrap();
    g.children.push(watch);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(wout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let (etx, erx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(werr).lines().map_while(Result::ok) {
            let _ = etx.send(l);
        }
    });
    // Wait until watch says it samples outbound connections.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut banner = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "watch never started: {banner:?}");
        if let Ok(l) = erx.recv_timeout(Duration::from_millis(100)) {
            let live = l.contains("outbound connections live");
            banner.push(l);
            if live {
                break;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));

    // The "web user" connects and holds the connection open.
    let client = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import socket,time\ns=socket.create_connection(('{NS_ADDR}',{PORT}))\nprint('ok',flush=True)\ntime.sleep(60)"
        ))
        .uid(nobody.uid.as_raw())
        .gid(nobody.gid.as_raw())
        .stdout(Stdio::piped())
        .spawn()
        .expect("client");
    let client_pid = client.id();
    g.children.push(client);
    let mut cout = g.children.last_mut().and_then(|c| c.stdout.take()).unwrap();
    let mut ok = [0u8; 3];
    cout.read_exact(&mut ok).expect("client connected");

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    let hit = loop {
        assert!(Instant::now() < deadline, "no egress finding; got {got:?}");
        let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        let f: serde_json::Value = serde_json::from_str(&l).expect("JSON line");
        if f["kind"] == "egress.new_destination" && f["evidence"]["port"] == PORT {
            break f;
        }
        got.push(f);
    };
    let p = &hit["evidence"]["process"];
    assert_eq!(p["user"], nobody.name.as_str(), "{hit}");
    assert_eq!(p["pid"], client_pid, "{hit}");
    assert!(
        p["exe"].as_str().is_some_and(|e| e.contains("python3")),
        "{hit}"
    );
    assert_eq!(hit["evidence"]["ip"], NS_ADDR, "{hit}");
    assert_eq!(hit["evidence"]["web_user"], true, "{hit}");
}
