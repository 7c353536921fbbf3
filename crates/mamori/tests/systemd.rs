//! `mamori watch` under systemd: the shipped unit is valid, and READY=1 (Type=notify)
//! means the catch-up sweep is done.

mod common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../dist/systemd/mamori-watch.service"
);

#[test]
fn the_shipped_unit_is_valid() {
    let have = Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !need(have, "systemd-analyze is missing (package systemd)") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // systemd-analyze checks that ExecStart's program exists: point it at this build.
    let text = std::fs::read_to_string(UNIT).unwrap();
    assert!(
        text.contains("Type=notify"),
        "the daemon says when it is ready"
    );
    assert!(
        text.contains("ExecStart=/usr/local/bin/mamori "),
        "the path the unit's header installs to"
    );
    let unit = d.path().join("mamori-watch.service");
    let bin = assert_cmd::cargo::cargo_bin("mamori");
    std::fs::write(
        &unit,
        text.replace("/usr/local/bin/mamori", bin.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Lines about this unit (other units on the host may have their own complaints).
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("mamori-watch.service"))
        .collect();
    assert!(out.status.success() && ours.is_empty(), "{err}");
}

#[test]
fn ready_comes_after_the_catch_up_sweep() {
    let d = tempfile::tempdir().unwrap();
    let root = init_tiny_shop(d.path());
    // Changed while mamori was not running: the start-up sweep reports it (late).
    std::fs::write(root.join("vendor/lib/a.php"), "<?php // while down\n").unwrap();
    let sock_path = d.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    // Whatever this machine permits; READY=1 is the same in every mode.
    let child = watch_cmd(d.path())
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let got = sock.recv(&mut buf);
    // Stop it at once: whatever it printed before READY=1 is on its stdout.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let out = child.wait_with_output().unwrap();
    let n = got.expect("READY=1 within 60 s");
    assert_eq!(&buf[..n], b"READY=1");
    let f = findings(&out.stdout);
    let late = f
        .iter()
        .find(|x| x["kind"] == "file.modified" && x["path"] == "vendor/lib/a.php")
        .unwrap_or_else(|| panic!("reported before READY=1: {f:?}"));
    assert_eq!(late["evidence"]["late"], true);
    assert!(out.status.success(), "SIGTERM is an orderly stop");
    assert!(Path::new(&sock_path).exists());
}
