//! End-to-end: `init`, `check`, `baseline`, tamper evidence, on generated shops.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn the_four_changes_on_a_20k_shop() {
    let d = tempfile::tempdir().unwrap();
    let Some((root, manifest)) = shop_tree(d.path(), 20000, "eccube", 11) else {
        return;
    };
    mamori(d.path())
        .args(["init", "--root"])
        .arg(&root)
        .assert()
        .success();

    let out = mamori(d.path()).args(["check", "--json"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "unchanged tree must report nothing");

    let payment = manifest["critical"][0].as_str().unwrap().to_string();
    let template = manifest["critical"][3].as_str().unwrap().to_string();
    let media = manifest["media_dir"].as_str().unwrap().to_string();
    // (a) one byte changed in the payment module, mtime put back (touch -r).
    let pm = root.join(&payment);
    let before = std::fs::metadata(&pm).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&pm).unwrap();
    let pos = bytes.iter().position(|&b| b == b'$').unwrap();
    bytes[pos + 1] ^= 0x01;
    std::fs::write(&pm, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&pm)
        .unwrap()
        .set_modified(before)
        .unwrap();
    assert_eq!(std::fs::metadata(&pm).unwrap().modified().unwrap(), before);
    // (b) a new .php under the upload dir, (c) a deleted template, (d) chmod 777.
    let evil = format!("{media}/thumb_0412.php");
    std::fs::write(root.join(&evil), "<?php @eval($_POST['c']);").unwrap();
    std::fs::remove_file(root.join(&template)).unwrap();
    std::fs::set_permissions(
        root.join("index.php"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();

    let out = mamori(d.path()).args(["check", "--json"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = findings(&out.stdout);
    let mut got: Vec<(String, String)> = f
        .iter()
        .map(|x| {
            (
                x["kind"].as_str().unwrap().into(),
                x["path"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        ("file.modified".to_string(), payment.clone()),
        ("file.added".to_string(), evil.clone()),
        ("file.deleted".to_string(), template.clone()),
        ("file.meta".to_string(), "index.php".to_string()),
        // check scans what it finds new or changed: the upload is recognised as a webshell.
        ("malware.webshell".to_string(), evil.clone()),
    ];
    want.sort();
    assert_eq!(got, want);
    let m = f.iter().find(|x| x["kind"] == "file.modified").unwrap();
    assert_eq!(m["severity"], "critical");
    assert_eq!(m["layer"], "internal");
    assert_eq!(m["evidence"]["mtime_restored"], true);
    let diff = m["evidence"]["diff"]
        .as_str()
        .expect("diff for the payment module");
    assert!(
        diff.contains(&format!("--- a/{payment}")) && diff.contains("\n-") && diff.contains("\n+"),
        "{diff}"
    );
    let added = f.iter().find(|x| x["kind"] == "file.added").unwrap();
    assert_eq!(added["severity"], "critical");
    let meta = f.iter().find(|x| x["kind"] == "file.meta").unwrap();
    assert_eq!(meta["evidence"]["new"]["mode"], "0777");
    for x in &f {
        for key in [
            "id",
            "time",
            "detected_at",
            "host",
            "summary",
            "checklist",
            "evidence",
        ] {
            assert!(x.get(key).is_some(), "{key} missing in {x}");
        }
    }

    // The findings were stored in the event log, chained.
    let ev = mamori(d.path())
        .args(["events", "--json", "--kind", "file."])
        .output()
        .unwrap();
    assert_eq!(findings(&ev.stdout).len(), 4);

    // Without --approve, the baseline is not rebuilt over changes.
    mamori(d.path()).args(["baseline"]).assert().code(2);
    mamori(d.path())
        .args(["baseline", "--approve", "--note", "test"])
        .assert()
        .success();
    let out = mamori(d.path()).args(["check", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

fn sqlite(db: &std::path::Path, sql: &str) {
    let c = rusqlite_free_exec(db, sql);
    assert!(c, "sqlite edit failed");
}

/// Edit the store as an attacker would, with the sqlite3 library through python3.
fn rusqlite_free_exec(db: &std::path::Path, sql: &str) -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()"])
        .arg(db)
        .arg(sql)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn editing_the_baseline_by_hand_is_reported() {
    if shopsim().is_none() {
        return; // python3 is needed to play the attacker
    }
    for sql in [
        "UPDATE baseline SET blake3 = zeroblob(32) WHERE path = CAST('index.php' AS BLOB)",
        "UPDATE baseline SET mode = 33279 WHERE path = CAST('vendor/lib/a.php' AS BLOB)",
        "DELETE FROM baseline WHERE path = CAST('app/Plugin/Payment/CardPayment.php' AS BLOB)",
        "INSERT INTO baseline SELECT root, CAST('x.php' AS BLOB), ftype, size, mode, uid, gid, mtime_ns, ctime_ns, ino, dev, blake3, sha256, flags, link FROM baseline LIMIT 1",
        "UPDATE baseline_sig SET note = 'edited'",
    ] {
        let d = tempfile::tempdir().unwrap();
        let root = tiny_shop(d.path());
        mamori(d.path())
            .args(["init", "--root"])
            .arg(&root)
            .assert()
            .success();
        sqlite(&d.path().join(".mamori/mamori.db"), sql);
        let out = mamori(d.path()).args(["check", "--json"]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{sql}");
        let f = findings(&out.stdout);
        assert!(
            f.iter()
                .any(|x| x["kind"] == "baseline.tampered" && x["severity"] == "critical"),
            "{sql}: {f:?}"
        );
    }
}

#[test]
fn editing_the_event_log_is_reported() {
    if shopsim().is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = init_tiny_shop(d.path());
    std::fs::write(root.join("vendor/lib/a.php"), "<?php return 2;\n").unwrap();
    mamori(d.path()).args(["check", "--json"]).assert().code(1);
    // The attacker erases the finding about their change.
    sqlite(
        &d.path().join(".mamori/mamori.db"),
        "DELETE FROM events WHERE kind = 'file.modified'",
    );
    let out = mamori(d.path()).args(["check", "--json"]).output().unwrap();
    let f = findings(&out.stdout);
    assert!(
        f.iter()
            .any(|x| x["kind"] == "baseline.tampered" && x["evidence"]["what"] == "event_log"),
        "{f:?}"
    );
}

#[test]
fn japanese_messages() {
    let d = tempfile::tempdir().unwrap();
    let root = init_tiny_shop(d.path());
    std::fs::write(
        root.join("app/Plugin/Payment/CardPayment.php"),
        "<?php // skimmer\n",
    )
    .unwrap();
    let out = mamori(d.path())
        .args(["--lang", "ja", "check"])
        .output()
        .unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("決済・購入処理のコードが変更されました"), "{s}");
    assert!(s.contains("緊急"), "{s}");
    // LANG alone selects Japanese too.
    let out = mamori(d.path())
        .env("LANG", "ja_JP.UTF-8")
        .args(["check", "--json"])
        .output()
        .unwrap();
    let f = findings(&out.stdout);
    assert!(f[0]["summary"].as_str().unwrap().contains("変更されました"));
}
