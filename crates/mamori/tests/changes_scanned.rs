//! `check` and `watch` scan every new or changed file: a change is reported with what
//! it is (here a webshell), in the same run, with the root-relative path.

mod common;
use common::*;
use std::process::Command;

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
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("mamori"));
    c.current_dir(d.path())
        .env("LANG", "C.UTF-8")
        .args(["--json", "watch", "--response", "alert"]);
    let (w, _) = Watch::start(c);
    std::fs::write(root.join("vendor/lib/cache.php"), SHELL).unwrap();
    let hit = w.wait_kind("malware.webshell");
    assert_eq!(hit["path"], "vendor/lib/cache.php", "{hit}");
}
