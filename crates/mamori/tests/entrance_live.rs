//! Follow mode end to end: the detectors' memory survives a restart of `mamori watch`
//! (SIGTERM and SIGKILL), and blocks are decided live, in dry run so the host's
//! firewall is not touched.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn append(p: &Path, s: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap()
        .write_all(s.as_bytes())
        .unwrap();
}

fn stamp() -> String {
    chrono::Utc::now()
        .format("%d/%b/%Y:%H:%M:%S +0000")
        .to_string()
}

/// A failed customer login (the form answered again with 200).
fn login_fail(ip: &str) -> String {
    format!(
        "{ip} - - [{}] \"POST /mypage/login HTTP/1.1\" 200 3120 \"-\" \"Mozilla/5.0 (Windows NT 10.0) Chrome/120\"\n",
        stamp()
    )
}

/// An injection attempt: reported at once, so the test knows the lines before it are read.
fn marker(ip: &str) -> String {
    format!(
        "{ip} - - [{}] \"GET /products/list?id=1%27%20UNION%20SELECT%20login_id,password%20FROM%20dtb_member-- HTTP/1.1\" 200 812 \"-\" \"Mozilla/5.0\"\n",
        stamp()
    )
}

fn failed_payment(ip: &str) -> String {
    format!(
        "{ip} - - [{}] \"POST /shopping/checkout HTTP/1.1\" 200 2048 \"-\" \"Mozilla/5.0 (iPhone) Safari/604.1\"\n",
        stamp()
    )
}

/// A tiny shop with `[entrance]` following `access.log` (plus `extra` settings).
fn setup(dir: &Path, extra: &str) -> std::path::PathBuf {
    init_tiny_shop(dir);
    let log = dir.join("access.log");
    append(&log, "");
    append(
        &dir.join("mamori.toml"),
        &format!(
            "\n[entrance]\nfollow = [{:?}]\n{extra}",
            log.display().to_string()
        ),
    );
    log
}

fn watch(dir: &Path) -> Watch {
    Watch::start_until(watch_cmd(dir), Some("access log(s) live")).0
}

fn ips(f: &serde_json::Value) -> Vec<String> {
    f["ips"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Six addresses fail the customer login, watch stops, six more fail after the
/// restart: only together are they ≥ 10 addresses within 30 minutes, so the
/// credential-stuffing finding needs the memory of the first run.
fn stuffing_across_restart(dir: &Path, log: &Path, stop: impl FnOnce(Watch)) {
    let w = watch(dir);
    for i in 0..6 {
        append(log, &login_fail(&format!("198.51.100.{}", 10 + i)));
    }
    append(log, &marker("203.0.113.50"));
    w.wait_for_ips(&["203.0.113.50"]);
    stop(w);
    let w = watch(dir);
    for i in 6..12 {
        append(log, &login_fail(&format!("198.51.100.{}", 10 + i)));
    }
    let f = w.wait_kind("attack.credential_stuffing");
    let members = ips(&f);
    assert!(
        members.contains(&"198.51.100.10".to_string()),
        "first half missing: {members:?}"
    );
    assert!(
        members.contains(&"198.51.100.19".to_string()),
        "second half missing: {members:?}"
    );
    let later = w.drain(std::time::Duration::from_millis(1500));
    assert!(
        !later.iter().any(|f| f["ip"] == "203.0.113.50"),
        "reported again after the restart: {later:?}"
    );
}

#[test]
fn detector_memory_survives_sigterm() {
    let d = tempfile::tempdir().unwrap();
    let log = setup(d.path(), "");
    stuffing_across_restart(d.path(), &log, |w| w.terminate());
}

#[test]
fn detector_memory_survives_sigkill_after_a_periodic_save() {
    let d = tempfile::tempdir().unwrap();
    let log = setup(d.path(), "save_interval_secs = 1\n");
    stuffing_across_restart(d.path(), &log, |w| {
        // The memory is saved once a second when it changed: let a save happen.
        std::thread::sleep(std::time::Duration::from_millis(2500));
        drop(w); // SIGKILL
    });
}

#[test]
fn live_blocking_in_dry_run_spares_the_allow_list_and_survives_restart() {
    let d = tempfile::tempdir().unwrap();
    let log = setup(
        d.path(),
        "allow = [\"192.0.2.0/24\"]\nblock = \"nftables\"\nblock_dry_run = true\n",
    );
    let w = watch(d.path());
    for _ in 0..6 {
        append(&log, &failed_payment("192.0.2.10"));
        append(&log, &failed_payment("203.0.113.7"));
    }
    let mut rest = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !rest
        .iter()
        .any(|f: &serde_json::Value| f["kind"] == "block.added")
        && std::time::Instant::now() < deadline
    {
        rest.extend(w.drain(std::time::Duration::from_millis(500)));
    }
    // Keep reading a moment, so a block of the allow-listed address would show.
    rest.extend(w.drain(std::time::Duration::from_millis(2500)));
    let added = rest
        .iter()
        .find(|f| f["kind"] == "block.added")
        .unwrap_or_else(|| panic!("no block.added: {rest:?}"));
    assert_eq!(added["ip"], "203.0.113.7/32", "{added}");
    assert_eq!(added["evidence"]["reason"], "card_testing", "{added}");
    let blocked: Vec<&serde_json::Value> =
        rest.iter().filter(|f| f["kind"] == "block.added").collect();
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert!(
        rest.iter()
            .any(|f| f["kind"] == "attack.card_testing" && ips(f) == ["203.0.113.7"]),
        "{rest:?}"
    );
    w.terminate();
    // After a restart the block is remembered: more failures neither block again nor
    // start a new card-testing episode.
    let w = watch(d.path());
    for _ in 0..6 {
        append(&log, &failed_payment("203.0.113.7"));
    }
    append(&log, &marker("203.0.113.51"));
    let got = w.wait_for_ips(&["203.0.113.51"]);
    assert!(
        !got.iter()
            .any(|f| f["kind"] == "block.added" || f["kind"] == "attack.card_testing"),
        "{got:?}"
    );
}

fn have(cmd: &str) -> bool {
    ["--version", "-V"].iter().any(|a| {
        Command::new(cmd)
            .arg(a)
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// A throw-away network namespace, deleted whatever happens.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn nft_set(ns: &Netns) -> String {
    let o = Command::new("ip")
        .args([
            "netns", "exec", &ns.0, "nft", "list", "set", "inet", "mamori", "deny4",
        ])
        .output()
        .expect("nft list");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The real nftables backend, live: watch runs inside a network namespace of its own,
/// so its `nft` changes only that namespace's ruleset.
#[test]
fn live_blocking_with_real_nftables_in_a_namespace() {
    let ok = is_root() && have("ip") && have("nft");
    if !need(ok, "live nftables blocking needs root, `ip` and `nft`") {
        return;
    }
    let ns = Netns(format!("mamori-live-{}", std::process::id()));
    let st = Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .unwrap();
    if !need(
        st.success(),
        "`ip netns add` failed (no CAP_SYS_ADMIN here, e.g. in a container)",
    ) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let log = setup(
        d.path(),
        "allow = [\"192.0.2.0/24\"]\nblock = \"nftables\"\n",
    );
    let start = || {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns.0])
            .arg(assert_cmd::cargo::cargo_bin("mamori"))
            .current_dir(d.path())
            .env("LANG", "C.UTF-8")
            .args(["--json", "watch", "--response", "alert"]);
        Watch::start_until(c, Some("access log(s) live")).0
    };
    let w = start();
    for _ in 0..6 {
        append(&log, &failed_payment("192.0.2.10"));
        append(&log, &failed_payment("203.0.113.7"));
    }
    let added = w.wait_kind("block.added");
    assert_eq!(added["ip"], "203.0.113.7/32", "{added}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut set = nft_set(&ns);
    while !set.contains("203.0.113.7") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        set = nft_set(&ns);
    }
    assert!(set.contains("203.0.113.7"), "not in the set: {set}");
    assert!(
        !set.contains("192.0.2.10"),
        "allow-listed address blocked: {set}"
    );
    assert!(set.contains("expires"), "blocks carry their timeout: {set}");
    w.terminate();
    // After a restart the ruleset is applied again from the saved memory (here after
    // it was wiped, as by a reboot), with the remaining time.
    let st = Command::new("ip")
        .args(["netns", "exec", &ns.0, "nft", "flush", "ruleset"])
        .status()
        .unwrap();
    assert!(st.success());
    let w = start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut set = nft_set(&ns);
    while !set.contains("203.0.113.7") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        set = nft_set(&ns);
    }
    assert!(set.contains("203.0.113.7"), "not restored: {set}");
    drop(w);
}
