//! `mamori egress policy --apply` for real: in a network namespace the test makes (the
//! "shop server", linked to a second one standing for the internet, so the machine's own
//! firewall is never touched), the policy learned from a conn.log is installed with nft,
//! and then the web user (`nobody`, via setpriv) reaches the learned destination and is
//! rejected at another address, while root still reaches both. No config file: the
//! default web users include `nobody`. Needs root, ip, nft, setpriv (skips with a reason
//! otherwise, fails under CI).

mod common;
#[path = "../../mamori-exit/tests/support/netns.rs"]
mod netns;

use common::{is_root, need};
use netns::{Net, have};

const HOST: &str = "203.0.113.1/24";
const ALLOWED: &str = "203.0.113.2";
const DENIED: &str = "203.0.113.3";
const PORT: u16 = 48445;

/// Whether `uid` (0 = root) can open a TCP connection to `addr:PORT` from the shop side.
fn connects(net: &Net, uid: u32, gid: u32, addr: &str) -> bool {
    let out = net
        .in_host("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .args(["--clear-groups", "timeout", "5", "bash", "-c"])
        .arg(format!("exec 3<>/dev/tcp/{addr}/{PORT} && echo connected"))
        .output()
        .expect("setpriv");
    String::from_utf8_lossy(&out.stdout).contains("connected")
}

#[test]
fn applied_policy_confines_the_web_user_only() {
    if !need(
        is_root(),
        "the egress policy test needs root (namespaces, nft)",
    ) {
        return;
    }
    let tools = ["ip", "nft", "setpriv", "bash", "python3"];
    if !need(
        tools.iter().all(|t| have(t)),
        "ip, nft, setpriv, bash and python3 are needed",
    ) {
        return;
    }
    let Some(nobody) = nix::unistd::User::from_name("nobody").ok().flatten() else {
        assert!(std::env::var_os("CI").is_none(), "CI must have `nobody`");
        eprintln!("skipped: no `nobody` user");
        return;
    };
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    let mut net = Net::new(
        "po",
        HOST,
        &[&format!("{ALLOWED}/24"), &format!("{DENIED}/24")],
        true,
    );
    net.listen(ALLOWED, PORT);
    net.listen(DENIED, PORT);
    // Before: the web user reaches both (so a refusal below is the policy's doing).
    assert!(connects(&net, uid, gid, ALLOWED));
    assert!(connects(&net, uid, gid, DENIED));

    let dir = tempfile::tempdir().unwrap();
    let conn = dir.path().join("conn.log");
    std::fs::write(
        &conn,
        format!(
            "{{\"ts\":1700000000.0,\"id.orig_h\":\"203.0.113.1\",\"id.orig_p\":40000,\"id.resp_h\":\"{ALLOWED}\",\"id.resp_p\":{PORT},\"proto\":\"tcp\",\"orig_bytes\":10}}\n"
        ),
    )
    .unwrap();
    let apply = || {
        let out = net
            .in_host(assert_cmd::cargo::cargo_bin("mamori").to_str().unwrap())
            .current_dir(dir.path())
            .env("LANG", "C.UTF-8")
            .env_remove("MAMORI_CONFIG")
            .args(["egress", "policy", "--apply", "--conn-log"])
            .arg(&conn)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(out.stdout.is_empty());
        assert!(err.contains("egress policy installed"), "{err}");
    };
    apply();
    // Applying again replaces the table (no duplicate rules, no error).
    apply();
    let list = net
        .in_host("nft")
        .args(["list", "table", "inet", "mamori_egress"])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&list.stdout);
    assert!(
        rules.contains(&format!("{ALLOWED} . tcp . {PORT}")),
        "{rules}"
    );
    assert_eq!(rules.matches("reject").count(), 1, "{rules}");

    assert!(
        connects(&net, uid, gid, ALLOWED),
        "web user to the learned destination"
    );
    assert!(
        !connects(&net, uid, gid, DENIED),
        "web user elsewhere must be rejected"
    );
    assert!(connects(&net, 0, 0, DENIED), "root is not confined");
    // The test's own namespace has no such table.
    let here = std::process::Command::new("nft")
        .args(["list", "table", "inet", "mamori_egress"])
        .output()
        .unwrap();
    assert!(
        !here.status.success(),
        "the policy leaked out of the namespace"
    );
}
