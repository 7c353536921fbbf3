#![allow(dead_code)]
use std::path::Path;

/// Write `rel` (an absolute host path) under `root`.
pub fn put(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let p = root.join(rel.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// Skip (return true) with a one-line reason locally; fail under `CI`.
pub fn skip(reason: &str) -> bool {
    if std::env::var_os("CI").is_some() {
        panic!("required under CI: {reason}");
    }
    eprintln!("skipped: {reason}");
    true
}

pub fn ssh_blob(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for p in parts {
        v.extend_from_slice(&(p.len() as u32).to_be_bytes());
        v.extend_from_slice(p);
    }
    v
}

/// A self-signed P-256 certificate for `cn`, valid `days` days, made by the openssl CLI
/// and written to `cert` (its key to `key`).
pub fn make_cert(cert: &Path, key: &Path, cn: &str, days: u32) {
    let o = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-days",
            &days.to_string(),
        ])
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .output()
        .expect("run openssl req");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
