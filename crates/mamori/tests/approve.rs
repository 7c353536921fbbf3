//! End-to-end: approved changes (`approve PATH…`, `deploy -- CMD`).

mod common;
use common::*;

#[test]
fn approve_accepts_exactly_the_named_paths() {
    let d = tempfile::tempdir().unwrap();
    let root = init_tiny_shop(d.path());
    std::fs::write(root.join("vendor/lib/a.php"), "<?php return 'fixed';\n").unwrap();
    std::fs::write(root.join("vendor/lib/new.php"), "<?php\n").unwrap();
    std::fs::remove_file(root.join("index.php")).unwrap();
    mamori(d.path())
        .args(["approve", "--note", "hotfix"])
        .arg(root.join("vendor/lib"))
        .arg(root.join("index.php"))
        .assert()
        .success();
    let out = mamori(d.path()).args(["check", "--json"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty());
    // Outside every root: refused.
    mamori(d.path())
        .args(["approve", "/etc/hostname"])
        .assert()
        .code(2);
    // The approval is in the event log.
    let ev = mamori(d.path())
        .args(["--json", "events", "--kind", "baseline.approved"])
        .output()
        .unwrap();
    let f = findings(&ev.stdout);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["evidence"]["note"], "hotfix");
}

#[test]
fn deploy_approves_what_the_command_changed() {
    let d = tempfile::tempdir().unwrap();
    let root = init_tiny_shop(d.path());
    let script = format!(
        "echo '<?php // v2' > {0}/app/Plugin/Payment/CardPayment.php && touch {0}/vendor/lib/v2.php",
        root.display()
    );
    mamori(d.path())
        .args(["deploy", "--", "sh", "-c", &script])
        .assert()
        .success();
    mamori(d.path())
        .args(["check", "--json"])
        .assert()
        .code(0)
        .stdout("");
    // A failing deploy command: its changes are not approved.
    let bad = format!("echo x > {}/vendor/lib/v3.php; exit 3", root.display());
    mamori(d.path())
        .args(["deploy", "--", "sh", "-c", &bad])
        .assert()
        .code(2);
    let out = mamori(d.path()).args(["check", "--json"]).output().unwrap();
    let f = findings(&out.stdout);
    assert!(
        f.iter()
            .any(|x| x["kind"] == "file.added" && x["path"] == "vendor/lib/v3.php"),
        "{f:?}"
    );
    // Unapproved changes from before a deploy: refused without --force.
    mamori(d.path())
        .args(["deploy", "--", "true"])
        .assert()
        .code(2);
    mamori(d.path())
        .args(["deploy", "--force", "--", "true"])
        .assert()
        .success();
}
