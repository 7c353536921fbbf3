//! Bad input: one clear error line and exit 2, or a warning for one file; never a panic.

mod common;
use common::*;
use predicates::prelude::*;

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn no_panic(out: &std::process::Output) {
    let e = stderr_of(out);
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn missing_root() {
    let d = tempfile::tempdir().unwrap();
    let out = mamori(d.path())
        .args(["init", "--root", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = stderr_of(&out);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("nope") && e.contains("--root"), "{e}");
}

#[test]
fn root_removed_after_init() {
    let d = tempfile::tempdir().unwrap();
    let root = init_tiny_shop(d.path());
    std::fs::rename(&root, d.path().join("moved")).unwrap();
    mamori(d.path())
        .arg("check")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("shop root does not exist"));
}

#[test]
fn no_config() {
    let d = tempfile::tempdir().unwrap();
    mamori(d.path())
        .arg("check")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "mamori.toml: config file not found",
        ));
}

#[test]
fn broken_config_names_line_and_key() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("mamori.toml"),
        "lang = \"en\"\n[[root]]\npath = \"/srv\"\nflavour = \"eccube\"\n",
    )
    .unwrap();
    let out = mamori(d.path()).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = stderr_of(&out);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("mamori.toml:4:") && e.contains("flavour") && e.contains("flavor"),
        "{e}"
    );
    std::fs::write(d.path().join("mamori.toml"), "lang = \"fr\"\n").unwrap();
    let out = mamori(d.path()).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("mamori.toml:1:"),
        "{}",
        stderr_of(&out)
    );
    std::fs::write(d.path().join("mamori.toml"), "[[root]\n").unwrap();
    mamori(d.path()).arg("check").assert().code(2);
    std::fs::write(d.path().join("mamori.toml"), b"lang = \"\xff\"\n").unwrap();
    mamori(d.path())
        .arg("check")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("UTF-8"));
}

#[test]
fn broken_config_in_japanese() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("mamori.toml"), "[[root]]\npath = 3\n").unwrap();
    let out = mamori(d.path())
        .args(["--lang", "ja", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("エラー"), "{}", stderr_of(&out));
}

#[test]
fn state_inside_root_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let root = tiny_shop(d.path());
    let out = mamori(d.path())
        .args(["init", "--root"])
        .arg(&root)
        .arg("--state")
        .arg(root.join(".mamori"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("inside the shop root"),
        "{}",
        stderr_of(&out)
    );
    assert!(!root.join(".mamori").exists());
    // A config inside the root puts the default state there too: refused.
    let out = mamori(&root)
        .args(["init", "--root", "."])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn odd_files_are_handled() {
    let d = tempfile::tempdir().unwrap();
    let root = tiny_shop(d.path());
    // symlink loop, dangling link, FIFO, socket, non-UTF-8 name, 10 GB sparse file
    std::os::unix::fs::symlink("loop_b", root.join("loop_a")).unwrap();
    std::os::unix::fs::symlink("loop_a", root.join("loop_b")).unwrap();
    std::os::unix::fs::symlink("/nonexistent", root.join("dangling")).unwrap();
    std::os::unix::fs::symlink(&root, root.join("vendor/self")).unwrap();
    let fifo = root.join("pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let _sock = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    use std::os::unix::ffi::OsStrExt;
    let weird = root.join(std::ffi::OsStr::from_bytes(b"caf\xe9.php"));
    std::fs::write(&weird, "<?php").unwrap();
    let sparse = std::fs::File::create(root.join("backup.tar")).unwrap();
    sparse.set_len(10 << 30).unwrap();
    drop(sparse);

    let out = mamori(d.path())
        .args(["init", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("backup.tar"),
        "the huge file gets a warning"
    );

    let out = mamori(d.path()).args(["check", "--json"]).output().unwrap();
    no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(out.stdout.is_empty());

    // A new non-UTF-8 name is reported (lossily) and the JSON stays valid.
    let weird2 = root.join(std::ffi::OsStr::from_bytes(b"shell\xff.php"));
    std::fs::write(&weird2, "<?php").unwrap();
    // Growing the sparse file is a change we can see by metadata.
    std::fs::File::options()
        .write(true)
        .open(root.join("backup.tar"))
        .unwrap()
        .set_len(11 << 30)
        .unwrap();
    let out = mamori(d.path()).args(["check", "--json"]).output().unwrap();
    no_panic(&out);
    let f = findings(&out.stdout);
    assert!(
        f.iter()
            .any(|x| x["kind"] == "file.added" && x["path"] == "shell\u{fffd}.php"),
        "{f:?}"
    );
    assert!(
        f.iter()
            .any(|x| x["kind"] == "file.modified" && x["path"] == "backup.tar"),
        "{f:?}"
    );
}

#[test]
fn unreadable_file_is_a_warning_not_an_abort() {
    let d = tempfile::tempdir().unwrap();
    let root = tiny_shop(d.path());
    let secret = root.join("vendor/lib/secret.php");
    std::fs::write(&secret, "<?php").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = mamori(d.path());
    if is_root() {
        // root reads everything: run mamori as `nobody` so the file really is unreadable.
        if std::process::Command::new("setpriv")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("skipped: needs setpriv to drop root");
            return;
        }
        for p in [d.path(), root.as_path()] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let bin = assert_cmd::cargo::cargo_bin("mamori");
        cmd = assert_cmd::Command::new("setpriv");
        cmd.current_dir(d.path())
            .env("LANG", "C.UTF-8")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(bin);
    }
    let out = cmd.args(["init", "--root"]).arg(&root).output().unwrap();
    no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let e = stderr_of(&out);
    assert!(e.contains("secret.php") && e.contains("cannot read"), "{e}");
}

#[test]
fn files_vanishing_during_a_check() {
    let d = tempfile::tempdir().unwrap();
    let root = tiny_shop(d.path());
    let churn = root.join("vendor/churn");
    std::fs::create_dir_all(&churn).unwrap();
    for i in 0..2000 {
        std::fs::write(churn.join(format!("f{i}.php")), "<?php").unwrap();
    }
    mamori(d.path())
        .args(["init", "--root"])
        .arg(&root)
        .assert()
        .success();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let c2 = churn.clone();
    let t = std::thread::spawn(move || {
        let mut i = 0u64;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let p = c2.join(format!("f{}.php", i % 2000));
            let _ = std::fs::remove_file(&p);
            let _ = std::fs::write(&p, format!("<?php // {i}"));
            i += 1;
        }
    });
    for _ in 0..3 {
        let out = mamori(d.path()).args(["check", "--json"]).output().unwrap();
        no_panic(&out);
        assert!(
            matches!(out.status.code(), Some(0) | Some(1)),
            "{}",
            stderr_of(&out)
        );
        let _ = findings(&out.stdout); // valid JSON Lines
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    t.join().unwrap();
}

#[test]
fn usage_errors_exit_2() {
    let d = tempfile::tempdir().unwrap();
    mamori(d.path()).args(["check", "--bogus"]).assert().code(2);
    mamori(d.path())
        .args(["--fail-on", "urgent", "check"])
        .assert()
        .code(2);
    mamori(d.path()).arg("--help").assert().code(0);
}
