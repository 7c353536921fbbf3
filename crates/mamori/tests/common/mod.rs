//! Shared helpers of the end-to-end tests.
#![allow(dead_code)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};

/// `../shared/` beside the checkout (CI has it too).
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// The shopsim kit, or `None` with a one-line reason printed (a failure under CI).
pub fn shopsim() -> Option<PathBuf> {
    let p = shared_dir().join("scenarios/shopsim.py");
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok();
    let what = format!("python3 and {} (the scenario kit) are needed", p.display());
    need(p.exists() && python, &what).then_some(p)
}

/// Generate a shop tree with shopsim: returns (root, manifest json).
pub fn shop_tree(
    dir: &Path,
    files: u32,
    flavor: &str,
    seed: u32,
) -> Option<(PathBuf, serde_json::Value)> {
    let kit = shopsim()?;
    let root = dir.join("shop");
    let st = std::process::Command::new("python3")
        .arg(&kit)
        .args(["tree"])
        .arg(&root)
        .args([
            "--files",
            &files.to_string(),
            "--flavor",
            flavor,
            "--seed",
            &seed.to_string(),
        ])
        .output()
        .expect("run shopsim");
    assert!(
        st.status.success(),
        "shopsim failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("shop.manifest.json")).unwrap()).unwrap();
    Some((root, manifest))
}

/// A small hand-made shop (no kit needed).
pub fn tiny_shop(dir: &Path) -> PathBuf {
    let root = dir.join("shop");
    for (p, c) in [
        (
            "index.php",
            "<?php require 'app/Plugin/Payment/CardPayment.php';\n",
        ),
        (
            "app/Plugin/Payment/CardPayment.php",
            "<?php\nfunction pay($card) {\n  return gateway($card);\n}\n",
        ),
        (
            "app/template/default/Shopping/index.twig",
            "<form action=\"/pay\">\n</form>\n",
        ),
        ("html/upload/save_image/item.jpg", "\u{ff}JPEG"),
        ("vendor/lib/a.php", "<?php return 1;\n"),
        ("var/cache/x.php", "<?php // cache\n"),
    ] {
        let f = root.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, c).unwrap();
    }
    std::fs::create_dir_all(root.join("src/Eccube")).unwrap();
    root
}

/// A tiny shop in `dir`, with `mamori init` run on it (config and state in `dir`).
pub fn init_tiny_shop(dir: &Path) -> PathBuf {
    let root = tiny_shop(dir);
    mamori(dir)
        .args(["init", "--root"])
        .arg(&root)
        .assert()
        .success();
    root
}

/// Skip (printing why), or fail under CI, when a prerequisite is missing.
pub fn need(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI must run this test, but {what}");
    }
    eprintln!("skipped: {what}");
    false
}

/// `mamori` with the config in `dir`, English, no colour, no LANG surprises.
pub fn mamori(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("mamori").unwrap();
    c.current_dir(dir)
        .env_remove("MAMORI_CONFIG")
        .env("LANG", "C.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("NO_COLOR", "1");
    c
}

/// Parse JSON Lines output.
pub fn findings(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(stdout.to_vec())
        .expect("stdout is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

pub fn is_root() -> bool {
    nix::unistd::Uid::current().is_root()
}
