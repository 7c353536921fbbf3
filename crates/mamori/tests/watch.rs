//! End-to-end: `mamori watch` against the live incident replay (a PHP checkout under
//! `php -S`, tampered mid-run with its mtime put back), restarts, and non-root mode.

mod common;
use common::*;
use std::process::Command;

fn have(cmd: &str) -> bool {
    Command::new(cmd).arg("--version").output().is_ok()
}

/// The replays measure how fast watch answers a tamper (cards skimmed at 20 checkouts a
/// second): they run one at a time, not against each other's PHP server, Python driver
/// and daemon on the same two cores. The other tests of this file still run beside them.
static REPLAY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn replay(dir: &std::path::Path, response: &str) -> (serde_json::Value, Vec<serde_json::Value>) {
    let _one_at_a_time = REPLAY.lock().unwrap_or_else(|e| e.into_inner());
    let kit = shopsim().expect("kit");
    let bin = assert_cmd::cargo::cargo_bin("mamori");
    let cfg = dir.join("m.toml");
    let out = dir.join("out.jsonl");
    let guard = format!(
        "sh -c '{b} --config {c} init --root \"$SHOP_ROOT\" --force >/dev/null 2>&1 && exec {b} --config {c} --json watch --response {response} > {o} 2>{e}'",
        b = bin.display(),
        c = cfg.display(),
        o = out.display(),
        e = dir.join("err.txt").display(),
    );
    let r = Command::new("python3")
        .arg(&kit)
        .args([
            "replay",
            "--duration",
            "6",
            "--tamper-at",
            "2",
            "--guard-warmup",
            "2",
        ])
        .arg("--guard-start")
        .arg(&guard)
        .env("LANG", "C.UTF-8")
        .output()
        .expect("replay runs");
    assert!(
        r.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&r.stdout).expect("replay prints JSON");
    let findings = findings(&std::fs::read(&out).unwrap_or_default());
    (result, findings)
}

#[test]
fn replay_restore_mode_skims_at_most_one_card() {
    if shopsim().is_none()
        || !need(
            have("php"),
            "php-cli is not installed (apt-get install php-cli)",
        )
    {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (r, f) = replay(d.path(), "restore");
    let after = r["cards_after_tamper"].as_u64().unwrap();
    let skimmed = r["cards_skimmed"].as_u64().unwrap();
    assert!(after > 20, "the replay must tamper mid-run: {r}");
    assert!(
        skimmed <= 1,
        "restore mode let {skimmed} of {after} cards be skimmed: {r}"
    );
    assert_eq!(r["checkout_errors"], 0, "{r}");
    let payment = r["payment_module"].as_str().unwrap();
    let m = f
        .iter()
        .find(|x| x["kind"] == "file.modified" && x["path"] == payment)
        .unwrap_or_else(|| panic!("no file.modified for {payment}: {f:?}"));
    assert_eq!(m["severity"], "critical");
    assert!(
        f.iter()
            .any(|x| x["kind"] == "file.restored" && x["path"] == payment),
        "{f:?}"
    );
    assert!(f.iter().any(|x| x["kind"] == "file.quarantined"), "{f:?}");
    if is_root() {
        // fanotify names the writer: the replay's python process.
        let exe = m["evidence"]["writer"]["exe"].as_str().unwrap_or("");
        assert!(exe.contains("python"), "writer: {}", m["evidence"]);
    }
}

#[test]
fn replay_deny_mode_fails_closed() {
    if shopsim().is_none()
        || !need(
            have("php"),
            "php-cli is not installed (apt-get install php-cli)",
        )
        || !need(
            is_root(),
            "deny mode needs root (fanotify permission events)",
        )
    {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (r, f) = replay(d.path(), "deny");
    let after = r["cards_after_tamper"].as_u64().unwrap();
    assert!(after > 20, "{r}");
    assert_eq!(r["cards_skimmed"], 0, "deny mode must skim nothing: {r}");
    // Every checkout after the tamper fails closed (one may straddle the tamper).
    let errors = r["checkout_errors"].as_u64().unwrap();
    assert!(
        errors + 1 >= after,
        "{errors} errors for {after} checkouts after the tamper: {r}"
    );
    assert!(f.iter().any(|x| x["kind"] == "file.denied"), "{f:?}");
}

#[test]
fn changes_while_killed_are_reported_after_restart() {
    let d = tempfile::tempdir().unwrap();
    let root = init_tiny_shop(d.path());
    let (w, _) = Watch::start(watch_cmd(d.path()));
    std::fs::write(root.join("vendor/lib/a.php"), "<?php return 'live';\n").unwrap();
    w.wait_for(&[("file.modified", "vendor/lib/a.php")]);
    // SIGKILL: no chance to clean up.
    drop(w);
    std::fs::write(root.join("vendor/lib/b.php"), "<?php // while down\n").unwrap();
    std::fs::remove_file(root.join("app/template/default/Shopping/index.twig")).unwrap();
    let (w, _) = Watch::start(watch_cmd(d.path()));
    let got = w.wait_for(&[
        ("file.added", "vendor/lib/b.php"),
        ("file.deleted", "app/template/default/Shopping/index.twig"),
    ]);
    for f in got.iter().filter(|f| f["path"] == "vendor/lib/b.php") {
        assert_eq!(
            f["evidence"]["late"], true,
            "found by the start-up sweep: {f}"
        );
    }
}

/// Findings reach stdout at once and the event log in batches (one transaction per batch
/// of events read): after an orderly stop every finding printed is stored, more than one
/// batch's worth included.
#[test]
fn every_finding_printed_is_in_the_event_log_after_a_stop() {
    let d = tempfile::tempdir().unwrap();
    let root = init_tiny_shop(d.path());
    let (w, _) = Watch::start(watch_cmd(d.path()));
    let dir = root.join("vendor/burst");
    std::fs::create_dir(&dir).unwrap();
    let names: Vec<String> = (0..300)
        .map(|i| format!("vendor/burst/f{i:03}.php"))
        .collect();
    for n in &names {
        std::fs::write(root.join(n), "<?php // new\n").unwrap();
    }
    let want: Vec<(&str, &str)> = names.iter().map(|n| ("file.added", n.as_str())).collect();
    let printed = w.wait_for(&want);
    w.terminate();
    let out = mamori(d.path())
        .args([
            "--json",
            "events",
            "--kind",
            "file.added",
            "--limit",
            "100000",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stored: std::collections::HashSet<String> = findings(&out.stdout)
        .iter()
        .map(|f| f["id"].as_str().unwrap_or_default().to_string())
        .collect();
    for f in printed.iter().filter(|f| f["kind"] == "file.added") {
        let id = f["id"].as_str().unwrap_or_default();
        assert!(stored.contains(id), "printed but not stored: {f}");
    }
    assert!(stored.len() >= 300, "{} stored", stored.len());
}

#[test]
fn non_root_runs_in_inotify_mode() {
    if !is_root() {
        // Already unprivileged: run as we are.
        let d = tempfile::tempdir().unwrap();
        let root = tiny_shop(d.path());
        mamori(d.path())
            .args(["init", "--root"])
            .arg(&root)
            .assert()
            .success();
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("mamori"));
        c.current_dir(d.path())
            .env("LANG", "C.UTF-8")
            .args(["--json", "watch"]);
        let (w, banner) = Watch::start(c);
        assert!(banner.contains("inotify"), "{banner}");
        std::fs::write(root.join("vendor/lib/new.php"), "<?php").unwrap();
        w.wait_for(&[("file.added", "vendor/lib/new.php")]);
        return;
    }
    if !need(have("setpriv"), "setpriv is missing (util-linux)") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let root = tiny_shop(d.path());
    // Hand the shop to nobody, as a web user would own it.
    let st = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success());
    let as_nobody = |args: &[&str]| {
        let mut c = Command::new("setpriv");
        c.current_dir(d.path())
            .env("LANG", "C.UTF-8")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(assert_cmd::cargo::cargo_bin("mamori"))
            .args(args);
        c
    };
    let st = as_nobody(&["init", "--root", root.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let (w, banner) = Watch::start(as_nobody(&["--json", "watch"]));
    assert!(
        banner.contains("inotify") && banner.contains("fanotify"),
        "must say which mode and why: {banner}"
    );
    std::fs::create_dir_all(root.join("html/upload/save_image/2026")).unwrap();
    std::fs::write(root.join("html/upload/save_image/2026/x.php"), "<?php").unwrap();
    std::fs::write(root.join("vendor/lib/a.php"), "<?php return 3;\n").unwrap();
    let got = w.wait_for(&[
        ("file.added", "html/upload/save_image/2026/x.php"),
        ("file.modified", "vendor/lib/a.php"),
    ]);
    let added = got.iter().find(|f| f["kind"] == "file.added").unwrap();
    assert_eq!(added["severity"], "critical");
}

fn attack_line(ip: &str) -> String {
    let stamp = chrono::Utc::now().format("%d/%b/%Y:%H:%M:%S +0000");
    format!(
        "{ip} - - [{stamp}] \"GET /products/list?id=1%27%20UNION%20SELECT%20login_id,password%20FROM%20dtb_member-- HTTP/1.1\" 200 812 \"-\" \"Mozilla/5.0\"\n"
    )
}

fn append(p: &std::path::Path, s: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap()
        .write_all(s.as_bytes())
        .unwrap();
}

/// Follow mode: attacks in the access log are reported live; after SIGKILL, lines written
/// meanwhile (and a rotation) are read on restart, and nothing is reported twice.
#[test]
fn access_log_is_followed_across_kill_and_rotation() {
    let d = tempfile::tempdir().unwrap();
    init_tiny_shop(d.path());
    let log = d.path().join("access.log");
    append(&log, "");
    append(
        &d.path().join("mamori.toml"),
        &format!("\n[entrance]\nfollow = [{:?}]\n", log.display().to_string()),
    );
    let watch_cmd = || {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("mamori"));
        c.current_dir(d.path()).env("LANG", "C.UTF-8").args([
            "--json",
            "watch",
            "--response",
            "alert",
        ]);
        c
    };
    let (w, _) = Watch::start_until(watch_cmd(), Some("access log(s) live"));
    append(&log, &attack_line("203.0.113.10"));
    w.wait_for_ips(&["203.0.113.10"]);
    drop(w); // SIGKILL
    append(&log, &attack_line("203.0.113.11"));
    std::fs::rename(&log, d.path().join("access.log.1")).unwrap();
    append(&log, &attack_line("203.0.113.12"));
    let (w, _) = Watch::start_until(watch_cmd(), Some("access log(s) live"));
    let got = w.wait_for_ips(&["203.0.113.11", "203.0.113.12"]);
    let again = got.iter().filter(|f| f["ip"] == "203.0.113.10").count();
    assert_eq!(
        again, 0,
        "a line read before the kill was read again: {got:?}"
    );
}
