//! `mamori scan` end to end: no config needed, a config refines it, clean JSON Lines,
//! exit codes, bad input (rule syntax errors, binary, huge, unreadable and special
//! files), the public fixtures, and false positives on real PHP code (the Debian corpus
//! of bench/debcorpus.sh).

mod common;

use common::{findings, is_root, mamori, need, shopsim};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn write(root: &Path, rel: &str, content: &[u8]) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, content).unwrap();
    p
}

const WEBSHELL: &[u8] = b"<?php\nif (PHP_INT_SIZE === 3) { @eval($_POST['x']); }\n";
const CLEAN: &[u8] =
    b"<?php\nnamespace App;\nfunction total(array $items): int { return array_sum($items); }\n";

#[test]
fn works_without_config_and_prints_clean_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "shop/html/user_data/x.php", WEBSHELL);
    write(dir.path(), "shop/src/Total.php", CLEAN);
    write(dir.path(), "shop/.hidden/y.php", WEBSHELL);
    assert!(!dir.path().join("mamori.toml").exists());
    let out = mamori(dir.path())
        .args(["--json", "scan", "shop"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let f = findings(&out.stdout);
    let paths: Vec<&str> = f.iter().map(|x| x["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["shop/.hidden/y.php", "shop/html/user_data/x.php"],
        "{f:?}"
    );
    for x in &f {
        assert_eq!(x["kind"], "malware.webshell");
        assert_eq!(x["severity"], "critical");
        assert_eq!(x["layer"], "internal");
        assert_eq!(x["evidence"]["tier"], "confirmed");
        let rule = &x["evidence"]["rules"][0];
        assert_eq!(rule["rule"], "mamori_php_exec_request_direct");
        assert_eq!(rule["matches"][0]["line"], 2);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 files"), "{err}");
}

#[test]
fn clean_tree_exits_0_and_japanese_summaries() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "shop/a.php", CLEAN);
    mamori(dir.path())
        .args(["--json", "scan", "shop"])
        .assert()
        .code(0)
        .stdout("");
    write(dir.path(), "shop/b.php", WEBSHELL);
    let out = mamori(dir.path())
        .args(["--lang", "ja", "scan", "shop"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Web シェル"), "{text}");
    // --fail-on critical still exits 1; a heuristic-only tree would not.
    mamori(dir.path())
        .args(["--json", "--fail-on", "critical", "scan", "shop"])
        .assert()
        .code(1);
}

#[test]
fn config_scan_table_refines_and_rules_flag_adds() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "myrules/shop.yar",
        b"rule shop_marker {\n  meta:\n    kind = \"malware.skimmer\"\n    tier = \"confirmed\"\n    severity = \"critical\"\n    description = \"our own marker\"\n  strings:\n    $m = \"MAMORI-TEST-MARKER\"\n  condition:\n    $m\n}\n",
    );
    write(
        dir.path(),
        "shop/app/m.js",
        b"var x = 'MAMORI-TEST-MARKER';\n",
    );
    write(
        dir.path(),
        "shop/vendor/lib/m.js",
        b"var x = 'MAMORI-TEST-MARKER';\n",
    );
    // --rules with no config
    let out = mamori(dir.path())
        .args(["--json", "scan", "--rules", "myrules", "shop"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let f = findings(&out.stdout);
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0]["kind"], "malware.skimmer");
    assert_eq!(f[0]["evidence"]["rules"][0]["file"], "myrules/shop.yar");
    // the config adds the same directory and excludes vendor/
    std::fs::write(
        dir.path().join("mamori.toml"),
        "[scan]\nrules = [\"myrules\"]\nexclude = [\"vendor/\"]\n",
    )
    .unwrap();
    let out = mamori(dir.path())
        .args(["--json", "scan", "shop"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let f = findings(&out.stdout);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["path"], "shop/app/m.js");
    // a bad key in [scan]: one line, names the key, exit 2
    std::fs::write(dir.path().join("mamori.toml"), "[scan]\nmax_sise = 1\n").unwrap();
    let out = mamori(dir.path())
        .args(["scan", "shop"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("max_sise"), "{err}");
}

#[test]
fn rule_syntax_error_is_one_line_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad/broken.yar",
        b"rule fine { condition: true }\n\nrule broken {\n  strings:\n    $a = \"x\"\n  condition:\n    $a or or\n}\n",
    );
    write(dir.path(), "shop/a.php", CLEAN);
    let out = mamori(dir.path())
        .args(["--json", "scan", "--rules", "bad", "shop"])
        .assert()
        .code(2)
        .stdout("")
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("bad/broken.yar:7:"), "{err}");
    // A missing rules directory and a missing path: exit 2 too.
    mamori(dir.path())
        .args(["scan", "--rules", "nope", "shop"])
        .assert()
        .code(2);
    let out = mamori(dir.path())
        .args(["scan", "no-such-dir"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-dir"));
}

#[test]
fn binary_huge_special_and_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let shop = dir.path().join("shop");
    // Binary: pseudo-random bytes with NULs, and an ELF-like header.
    let mut bin = b"\x7fELF\x02\x01\x01\x00".to_vec();
    let mut x: u32 = 12345;
    for _ in 0..200_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        bin.push((x >> 16) as u8);
    }
    write(&shop, "bin/tool", &bin);
    // A 2 GB sparse file: over the size cap, noted, not read.
    let big = std::fs::File::create(shop.join("huge.sql")).unwrap();
    big.set_len(2 << 30).unwrap();
    drop(big);
    // A FIFO must not block the scan; a symlink to the webshell is not followed.
    let w = write(&shop, "real/w.php", WEBSHELL);
    nix::unistd::mkfifo(
        &shop.join("pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    std::os::unix::fs::symlink(&w, shop.join("link.php")).unwrap();
    // Unreadable (root reads it anyway).
    let locked = write(&shop, "locked.php", WEBSHELL);
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();

    let out = mamori(dir.path())
        .args(["--json", "scan", "shop"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let f = findings(&out.stdout);
    let paths: Vec<&str> = f.iter().map(|x| x["path"].as_str().unwrap()).collect();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(paths.contains(&"shop/real/w.php"), "{paths:?}");
    assert!(!paths.contains(&"shop/link.php"), "links are not followed");
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("bin/") || p.contains("huge"))
    );
    assert!(
        err.contains("huge.sql") && err.contains("over the scan limit"),
        "{err}"
    );
    assert!(err.contains("1 too large"), "{err}");
    if is_root() {
        eprintln!(
            "note: running as root, which reads mode-000 files; unreadable case checked as found"
        );
        assert!(paths.contains(&"shop/locked.php"), "{paths:?}");
    } else {
        assert!(
            err.contains("locked.php") && err.contains("1 unreadable"),
            "{err}"
        );
        // Named explicitly, an unreadable file is an error (exit 2).
        mamori(dir.path())
            .args(["scan", "shop/locked.php"])
            .assert()
            .code(2);
    }
    // --max-size below the webshell's size: nothing scanned, exit 0.
    mamori(dir.path())
        .args(["--json", "scan", "--max-size", "10", "shop/real"])
        .assert()
        .code(0)
        .stdout("");
}

#[test]
fn public_fixtures_through_the_binary() {
    let Some(kit) = shopsim() else { return };
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("fx");
    let st = std::process::Command::new("python3")
        .arg(&kit)
        .arg("fixtures")
        .arg(&fx)
        .args(["--seed", "11"])
        .output()
        .unwrap();
    assert!(st.status.success());
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.join("truth.json")).unwrap()).unwrap();
    let out = mamori(dir.path())
        .args(["--json", "--fail-on", "critical", "scan", "fx"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let mut by_path: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in findings(&out.stdout) {
        let p = f["path"]
            .as_str()
            .unwrap()
            .trim_start_matches("fx/")
            .to_string();
        by_path
            .entry(p)
            .or_default()
            .push(f["kind"].as_str().unwrap().to_string());
    }
    let mut bad = Vec::new();
    for (rel, t) in truth["files"].as_object().unwrap() {
        let kind = t["kind"].as_str().unwrap();
        let mut ok: Vec<&str> = vec![kind];
        if let Some(a) = t["accept"].as_array() {
            ok.extend(a.iter().filter_map(|k| k.as_str()));
        }
        let got = by_path.remove(rel).unwrap_or_default();
        let right = if kind == "clean" {
            got.is_empty()
        } else {
            !got.is_empty() && got.iter().all(|g| ok.contains(&g.as_str()))
        };
        if !right {
            bad.push(format!("{rel}: expected {ok:?}, got {got:?}"));
        }
    }
    by_path.remove("truth.json");
    assert!(
        by_path.is_empty(),
        "findings on files not in truth: {by_path:?}"
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The Debian PHP corpus (bench/debcorpus.sh): real applications and libraries must not
/// raise a high or critical finding; low/medium are counted per 10k files.
#[test]
fn debian_php_corpus_false_positives() {
    let corpus = std::env::var_os("MAMORI_DEB_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/mamori/debcorpus"));
    let what = format!(
        "the Debian PHP corpus at {} (run bench/debcorpus.sh)",
        corpus.display()
    );
    if !need(corpus.join(".complete").exists(), &what) {
        return;
    }
    let out = mamori(Path::new("/"))
        .args(["--json", "--lang", "en", "scan"])
        .arg(&corpus)
        .output()
        .unwrap();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let files: u64 = err
        .split(" files (")
        .next()
        .and_then(|s| s.rsplit(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no file count in: {err}"));
    assert!(files > 10_000, "corpus too small: {files} files");
    let f = findings(&out.stdout);
    let high: Vec<String> = f
        .iter()
        .filter(|x| matches!(x["severity"].as_str(), Some("high" | "critical")))
        .map(|x| format!("{} {} {}", x["kind"], x["path"], x["evidence"]["rules"]))
        .collect();
    let low_medium: Vec<String> = f
        .iter()
        .filter(|x| matches!(x["severity"].as_str(), Some("low" | "medium")))
        .map(|x| format!("{} {} {}", x["severity"], x["kind"], x["path"]))
        .collect();
    let per_10k = low_medium.len() as f64 * 10_000.0 / files as f64;
    eprintln!(
        "debian corpus: {files} files, {} high/critical, {} low/medium = {per_10k:.2} per 10k files",
        high.len(),
        low_medium.len()
    );
    for l in &low_medium {
        eprintln!("  {l}");
    }
    assert!(
        high.is_empty(),
        "high/critical on real code:\n{}",
        high.join("\n")
    );
    assert!(per_10k <= 1.0, "{per_10k:.2} low/medium per 10k files");
}

/// As root every file is readable, so the unreadable case runs as `nobody` (setpriv):
/// a file it may not read is counted and named on stderr, the rest is still scanned, and
/// naming that file alone is one clear error with exit 2.
#[test]
fn unreadable_files_as_an_unprivileged_user() {
    if !is_root() {
        return; // covered by binary_huge_special_and_unreadable_files as this user
    }
    let setpriv = std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok();
    if !need(setpriv, "setpriv is missing (util-linux)") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let shop = dir.path().join("shop");
    write(&shop, "real/w.php", WEBSHELL);
    let locked = write(&shop, "locked.php", WEBSHELL);
    for d in [&shop, &shop.join("real")] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(
        shop.join("real/w.php"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let as_nobody = |args: &[&str]| {
        let mut c = std::process::Command::new("setpriv");
        c.current_dir(dir.path())
            .env("LANG", "C.UTF-8")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(assert_cmd::cargo::cargo_bin("mamori"))
            .args(args);
        c.output().unwrap()
    };
    let out = as_nobody(&["--json", "scan", "shop"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let f = findings(&out.stdout);
    let paths: Vec<&str> = f.iter().map(|x| x["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&"shop/real/w.php"), "{paths:?}");
    assert!(!paths.contains(&"shop/locked.php"), "{paths:?}");
    assert!(
        err.contains("locked.php") && err.contains("1 unreadable"),
        "{err}"
    );
    let out = as_nobody(&["scan", "shop/locked.php"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("locked.php"), "{err}");
}
