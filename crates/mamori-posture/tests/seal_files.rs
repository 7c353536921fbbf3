//! Sealing files: round trips, no partial plaintext on failure, interop with `age`,
//! and the seal.watch sweep.

mod common;
use mamori_core::{Kind, Lang, Severity};
use mamori_posture::seal::{keygen, seal_file, sweep_seal_dir, unseal_file};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn data(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

#[test]
fn file_round_trip_multi_chunk() {
    let d = tempfile::tempdir().unwrap();
    let (id, r) = keygen();
    let p = d.path().join("orders.csv");
    let body = data(300_000); // several 64 KiB chunks, last one partial
    std::fs::write(&p, &body).unwrap();
    let sealed = seal_file(&p, None, std::slice::from_ref(&r)).unwrap();
    assert_eq!(sealed, d.path().join("orders.csv.age"));
    std::fs::remove_file(&p).unwrap();
    let back = unseal_file(&sealed, None, &[id]).unwrap();
    assert_eq!(std::fs::read(back).unwrap(), body);
    // Refuses to overwrite.
    assert!(seal_file(&p, None, &[r]).is_err());
}

#[test]
fn wrong_identity_truncation_and_tampering_leave_no_plaintext() {
    let d = tempfile::tempdir().unwrap();
    let (id, r) = keygen();
    let p = d.path().join("dump.sql");
    std::fs::write(&p, data(200_000)).unwrap();
    let sealed = seal_file(&p, None, &[r]).unwrap();
    std::fs::remove_file(&p).unwrap();
    let bytes = std::fs::read(&sealed).unwrap();
    let out = d.path().join("out.sql");

    let (other, _) = keygen();
    let e = unseal_file(&sealed, Some(&out), &[other]).unwrap_err();
    assert!(e.to_string().contains("dump.sql.age"), "{e}");
    assert!(e.localized(Lang::Ja).contains("平文は書き出していません"));

    let trunc = d.path().join("trunc.age");
    std::fs::write(&trunc, &bytes[..bytes.len() - 1000]).unwrap();
    let e = unseal_file(&trunc, Some(&out), std::slice::from_ref(&id)).unwrap_err();
    assert!(e.to_string().contains("trunc.age"), "{e}");

    let tam = d.path().join("tampered.age");
    let mut t = bytes.clone();
    let mid = t.len() / 2;
    t[mid] ^= 0x40;
    std::fs::write(&tam, &t).unwrap();
    let e = unseal_file(&tam, Some(&out), std::slice::from_ref(&id)).unwrap_err();
    assert!(e.to_string().contains("tampered.age"), "{e}");

    assert_eq!(
        names(d.path()),
        vec!["dump.sql.age", "tampered.age", "trunc.age"],
        "no output and no temp file left"
    );
}

#[test]
fn interop_with_the_age_tool() {
    if mamori_posture::sys::which("age").is_none() {
        common::skip("the `age` binary is not installed (apt-get install age)");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (id, r) = keygen();
    let idf = d.path().join("key.txt");
    std::fs::write(&idf, format!("# test\n{id}\n")).unwrap();
    let p = d.path().join("a.bin");
    let body = data(150_000);
    std::fs::write(&p, &body).unwrap();

    // ours → age -d
    let sealed = seal_file(&p, None, std::slice::from_ref(&r)).unwrap();
    let o = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&idf)
        .arg(&sealed)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "age -d: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.stdout, body);

    // age -r → ours
    let theirs = d.path().join("b.age");
    let st = Command::new("age")
        .args(["-r", &r, "-o"])
        .arg(&theirs)
        .arg(&p)
        .status()
        .unwrap();
    assert!(st.success());
    let ids = mamori_posture::seal::read_identity_file(&idf).unwrap();
    let out = unseal_file(&theirs, Some(&d.path().join("b.out")), &ids).unwrap();
    assert_eq!(std::fs::read(out).unwrap(), body);
}

#[test]
fn sweep_seals_and_removes_plaintext_or_reports_lingering_pii() {
    let d = tempfile::tempdir().unwrap();
    let (id, r) = keygen();
    std::fs::write(
        d.path().join("export.csv"),
        "name,mail,card\nTaro,taro@example.jp,4111111111111111\n",
    )
    .unwrap();
    std::fs::write(d.path().join("old.csv.age"), "already sealed").unwrap();

    // No recipients: nothing sealed, the personal data is reported, masked.
    let f = sweep_seal_dir(d.path(), &[], Duration::ZERO, "shop-1", Lang::En);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].kind, f[0].severity),
        (Kind::PostureFail, Severity::High)
    );
    assert_eq!(f[0].check.as_deref(), Some("seal.plaintext_pii"));
    assert_eq!(f[0].evidence["card_numbers"], 1);
    assert!(!f[0].to_json_line().contains("4111111111111111"));
    assert!(d.path().join("export.csv").exists());

    // Too young: left for the next sweep.
    assert!(
        sweep_seal_dir(
            d.path(),
            std::slice::from_ref(&r),
            Duration::from_secs(3600),
            "shop-1",
            Lang::En
        )
        .is_empty()
    );

    let f = sweep_seal_dir(
        d.path(),
        std::slice::from_ref(&r),
        Duration::ZERO,
        "shop-1",
        Lang::En,
    );
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].kind, Kind::PosturePass);
    assert_eq!(names(d.path()), vec!["export.csv.age", "old.csv.age"]);
    let back = unseal_file(
        &d.path().join("export.csv.age"),
        Some(&d.path().join("x")),
        &[id],
    )
    .unwrap();
    assert!(
        std::fs::read_to_string(back)
            .unwrap()
            .contains("taro@example.jp")
    );
}
