//! `check` and `watch` scan every new or changed file: a change is reported with what
//! it is (here a webshell), in the same run, with the root-relative path.

mod common;
use common::*;

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
    let (w, _) = Watch::start(watch_cmd(d.path()));
    std::fs::write(root.join("vendor/lib/cache.php"), SHELL).unwrap();
    let hit = w.wait_kind("malware.webshell");
    assert_eq!(hit["path"], "vendor/lib/cache.php", "{hit}");
}

/// `watch` has its rules compiled by a child (`mamori compile-rules`): the child's output
/// is yara-x's serialized form, and a rule error is its one line, which `watch` repeats
/// and goes on watching without content scanning.
#[test]
fn rules_compiled_in_a_child_and_a_broken_rule_file_named() {
    use std::io::BufRead;
    let d = tempfile::tempdir().unwrap();
    let root = init_tiny_shop(d.path());
    let out = mamori(d.path()).arg("compile-rules").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.starts_with(b"YARA-X"),
        "serialized rules on stdout"
    );

    let bad = d.path().join("bad.yar");
    std::fs::write(&bad, "rule broken {\n  condition:\n    true and and\n}\n").unwrap();
    let cfg = d.path().join("mamori.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[scan]\nrules = [\"bad.yar\"]\n");
    std::fs::write(&cfg, text).unwrap();
    let out = mamori(d.path()).arg("compile-rules").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("{}:3:", bad.display())), "{err}");

    let mut child = watch_cmd(d.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(l);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut said = None;
    while said.is_none() && std::time::Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(200))
            && l.contains("content scanning is off")
        {
            said = Some(l);
        }
    }
    let said = said.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("watch did not say that content scanning is off")
    });
    assert!(
        said.contains(&format!("content scanning is off: {}:3:", bad.display())),
        "the child's error, once: {said}"
    );
    // Tamper detection goes on.
    std::fs::write(root.join("vendor/lib/a.php"), "<?php return 7;\n").unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ftx, frx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = ftx.send(l);
        }
    });
    let mut seen = false;
    while !seen && std::time::Instant::now() < deadline {
        if let Ok(l) = frx.recv_timeout(std::time::Duration::from_millis(200)) {
            seen = l.contains("\"file.modified\"") && l.contains("vendor/lib/a.php");
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "the change is still reported");
}
