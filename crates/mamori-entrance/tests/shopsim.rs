//! End-to-end: generate a shop log with the shared kit's `shopsim.py`, analyse it and
//! check detection and false-positive targets against the ground truth.
//! Skips (with one line on stderr) when python3 or the kit is missing, unless `CI` is set.

mod common;

use mamori_entrance::{BlockBackend, LogsOptions, NoBotVerifier, analyze};
use std::process::Command;
use std::sync::Arc;

fn python_ok() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set and {why}");
    }
    eprintln!("skipping shopsim test: {why}");
}

fn run_seed(seed: u32, format: &str) {
    let Some(kit) = common::shopsim() else {
        return skip_or_fail("../shared/scenarios/shopsim.py is missing");
    };
    if !python_ok() {
        return skip_or_fail("python3 is missing");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join(format!("shop-{seed}.log"));
    let out = Command::new("python3")
        .arg(&kit)
        .args(["access-log"])
        .arg(&log)
        .args([
            "--days",
            "30",
            "--lines",
            "200000",
            "--seed",
            &seed.to_string(),
        ])
        .args(["--format", format])
        .output()
        .expect("run shopsim");
    assert!(
        out.status.success(),
        "shopsim failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let opts = LogsOptions {
        files: vec![log.clone()],
        block: Some(BlockBackend::PrintOnly),
        bot_verifier: Some(Arc::new(NoBotVerifier)),
        ..Default::default()
    };
    let rep = analyze(&opts, "shop-test", mamori_core::Lang::Ja, &|_| {}).expect("analyze");
    assert_eq!(rep.stats.malformed, 0);
    let s = common::score(&log, &rep.findings);
    eprintln!("seed {seed} ({format}): {}", s.table());
    assert!(
        s.campaign_total >= 150,
        "the campaign must exist at this size: {}",
        s.campaign_total
    );
    assert!(
        s.campaign_pct() >= 95.0,
        "campaign recall {:.1} %",
        s.campaign_pct()
    );
    let lead = s
        .campaign_lead_secs
        .expect("a campaign finding and an admin-login success");
    assert!(
        lead > 0,
        "first campaign finding must precede the admin-login success ({lead} s)"
    );
    let scan = s.scanner_latency.expect("scanner found");
    assert!((0..=60).contains(&scan), "scanner latency {scan} s");
    assert!(
        s.stuffing_pct() >= 90.0,
        "stuffing recall {:.1} %",
        s.stuffing_pct()
    );
    let spray = s.spraying_latency.expect("spraying found");
    assert!(
        (0..=48 * 3600).contains(&spray),
        "spraying latency {spray} s"
    );
    let card = s.cardtest_latency.expect("card testing found");
    assert!((0..=600).contains(&card), "card testing latency {card} s");
    assert!(
        s.benign_pct() <= 0.1,
        "benign flagged {:.3} %: {:?}",
        s.benign_pct(),
        s.benign_flagged
    );
    assert!(
        s.protected_flagged.is_empty(),
        "office/bot/carrier flagged: {:?}",
        s.protected_flagged
    );
    // Summaries are in the requested language and never carry a full card number.
    for f in &rep.findings {
        assert!(!f.summary.is_empty());
        assert_eq!(
            f.to_json_line(),
            mamori_core::pan::mask_pans(&f.to_json_line())
        );
    }
}

#[test]
fn shopsim_seed_1_combined() {
    run_seed(1, "combined");
}

#[test]
fn shopsim_seed_2_json() {
    run_seed(2, "json");
}

#[test]
fn shopsim_seed_3_combined() {
    run_seed(3, "combined");
}
