//! Live sampler test. As root: a private network namespace `mamori-xe-<pid>` with a
//! veth pair on documentation addresses (198.51.100.253/30 here, .254 inside), a
//! listener inside, and a connection from a non-root "web user" (`nobody`) in the root
//! namespace. The /proc sampler must report it with the process exe and user. Traffic
//! goes only to the address this test created; everything is removed afterwards.
//! Skips (one line) when not root, unless `CI` is set.

#[path = "support/netns.rs"]
mod netns;

use mamori_exit::live::Sampler;
use netns::Net;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

const NS_ADDR: &str = "198.51.100.254";
const HOST_ADDR: &str = "198.51.100.253/30";
const PORT: u16 = 48443;

fn skip(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but {why}");
    }
    println!("skipped: {why}");
}

#[test]
fn sampler_sees_web_user_connection_in_private_netns() {
    if !nix::unistd::Uid::effective().is_root() {
        return skip("live netns test needs root");
    }
    for tool in ["ip", "python3", "bash"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return skip(&format!("`{tool}` not found"));
        }
    }
    let nobody = nix::unistd::User::from_name("nobody").ok().flatten();
    let Some(nobody) = nobody else {
        return skip("no `nobody` user");
    };
    let mut g = Net::new("xe", HOST_ADDR, &[&format!("{NS_ADDR}/30")], false);
    // Listener inside the namespace.
    g.listen(NS_ADDR, PORT);

    // The "web user" connects from the root namespace.
    let client = Command::new("bash")
        .args([
            "-c",
            &format!("exec 3<>/dev/tcp/{NS_ADDR}/{PORT}; echo ok; read -r -t 60 _"),
        ])
        .uid(nobody.uid.as_raw())
        .gid(nobody.gid.as_raw())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("client");
    let client_pid = client.id();
    g.children.push(client);
    let stdout = g
        .children
        .last_mut()
        .and_then(|c| c.stdout.take())
        .expect("client stdout");
    let mut ok = [0u8; 3];
    std::io::Read::read_exact(&mut { stdout }, &mut ok).expect("client connected");

    let mut s = Sampler::new();
    let recs = s.poll().expect("poll");
    let hit = recs
        .iter()
        .find(|r| r.resp_h.to_string() == NS_ADDR && r.resp_p == PORT)
        .unwrap_or_else(|| panic!("sampler did not report the connection: {recs:?}"));
    let p = hit.process.as_ref().expect("process info");
    assert_eq!(p.pid, Some(client_pid), "{p:?}");
    assert!(
        p.exe.as_deref().is_some_and(|e| e.ends_with("bash")),
        "{p:?}"
    );
    assert_eq!(p.uid, Some(nobody.uid.as_raw()));
    assert_eq!(p.user.as_deref(), Some(nobody.name.as_str()));
    // Reported once only.
    assert!(!s.poll().expect("poll").iter().any(|r| r.resp_p == PORT));
    println!(
        "live: {} {}:{} pid {:?} exe {:?} user {:?}",
        hit.proto, hit.resp_h, hit.resp_p, p.pid, p.exe, p.user
    );
}
