//! `check` and `watch` scan every new or changed file: a change is reported with what
//! it is (here a webshell), in the same run, with the root-relative path.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Harmless by construction (the condition never holds), shaped like a real webshell.
const SHELL: &str = "<?php\nif (PHP_INT_SIZE === 3) { eval($_POST['c']); }\n";

#[test]
fn check_says_what_a_new_file_is() {
    let d = tempfile::tempdir().unwrap();
    let root = init_tiny_shop(d.path());
    std::fs::write(root.join("vendor/lib/cache.php"), SHELL).unwrap();
    // An ordinary change stays an ordinary change.
    std::fs::write(root.join("vendor/lib/a.php"), "<?php return 42;\n").unwrap();
    let out = mamori(d.path()).args(["--json", "check"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = findings(&out.stdout);
    assert!(
        f.iter()
            .any(|x| x["kind"] == "file.added" && x["path"] == "vendor/lib/cache.php"),
        "{f:?}"
    );
    let shell: Vec<_> = f
        .iter()
        .filter(|x| x["kind"] == "malware.webshell")
        .collect();
    assert_eq!(shell.len(), 1, "{f:?}");
    assert_eq!(shell[0]["path"], "vendor/lib/cache.php");
    assert!(shell[0]["root"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(
        !f.iter()
            .any(|x| x["kind"].as_str().unwrap().starts_with("malware.")
                && x["path"] == "vendor/lib/a.php"),
        "{f:?}"
    );
}

#[test]
fn watch_says_what_a_new_file_is() {
    let d = tempfile::tempdir().unwrap();
    let root = init_tiny_shop(d.path());
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("mamori"))
        .current_dir(d.path())
        .env("LANG", "C.UTF-8")
        .args(["--json", "watch", "--response", "alert"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(root.join("vendor/lib/cache.php"), SHELL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    let hit = loop {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no malware.webshell from watch; got {got:?}");
        }
        let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        let f: serde_json::Value = serde_json::from_str(&l).unwrap();
        if f["kind"] == "malware.webshell" {
            break f;
        }
        got.push(f);
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(hit["path"], "vendor/lib/cache.php", "{hit}");
}
