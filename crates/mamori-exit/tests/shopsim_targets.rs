//! Targets on the kit's `shopsim.py conns` data (seeds 1-3): every exfiltration found at
//! first contact, the sparse one confirmed as checkout-correlated within 24 h, the beacon
//! as `egress.beacon`, the burst as `egress.volume`, benign alerts after learning at most
//! 0.5 a day, and the payment gateway never flagged.
//!
//! Skips (with a one-line reason) when python3 or the kit is missing, unless `CI` is set.

use chrono::{DateTime, Utc};
use mamori_core::{Kind, Lang};
use mamori_exit::{EgressOptions, analyze};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn kit() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let kit = root.join("../shared/scenarios/shopsim.py");
    let py = Command::new("python3").arg("--version").output();
    let why = if py.map(|o| !o.status.success()).unwrap_or(true) {
        Some("python3 not found".to_string())
    } else if !kit.is_file() {
        Some(format!("kit not found at {}", kit.display()))
    } else {
        None
    };
    match why {
        None => Some(kit),
        Some(w) if std::env::var_os("CI").is_some() => panic!("CI is set but {w}"),
        Some(w) => {
            println!("skipped: {w}");
            None
        }
    }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("truth time")
        .with_timezone(&Utc)
}

struct Truth {
    dest: String,
    class: String,
    label: String,
    service: String,
    first_seen: DateTime<Utc>,
}

fn generate(kit: &Path, dir: &Path, seed: u32) -> (PathBuf, Vec<Truth>) {
    let out = dir.join(format!("conn{seed}.log"));
    let st = Command::new("python3")
        .arg(kit)
        .args(["conns"])
        .arg(&out)
        .args(["--days", "30", "--seed", &seed.to_string()])
        .output()
        .expect("run shopsim");
    assert!(
        st.status.success(),
        "shopsim failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let truth = std::fs::read_to_string(format!("{}.truth.jsonl", out.display())).expect("truth");
    let truth = truth
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("truth line");
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            Truth {
                dest: s("dest"),
                class: s("class"),
                label: s("label"),
                service: s("service"),
                first_seen: t(v["first_seen"].as_str().expect("first_seen")),
            }
        })
        .collect();
    (out, truth)
}

fn opts(out: &Path, gateway: bool) -> EgressOptions {
    let mut o = EgressOptions::new(out);
    o.dns_log = Some(PathBuf::from(format!("{}.dns.log", out.display())));
    o.orders = Some(PathBuf::from(format!("{}.orders.jsonl", out.display())));
    if gateway {
        o.config.detect.gateways = vec!["api.pay-gateway.example".into()];
    }
    o
}

#[test]
fn shopsim_conns_targets_seeds_1_to_3() {
    let Some(kit) = kit() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    for seed in 1..=3 {
        let (out, truth) = generate(&kit, dir.path(), seed);
        for with_gateway in [true, false] {
            let r = analyze(&opts(&out, with_gateway), "shop-1", Lang::En).expect("analyze");
            assert!(r.stats.detect.learning_complete);
            let find = |kind: Kind, dest: &str| {
                r.findings
                    .iter()
                    .filter(|f| f.kind == kind && f.dest.as_deref() == Some(dest))
                    .map(|f| f.time)
                    .min()
            };
            for x in truth.iter().filter(|x| x.label == "exfil") {
                let nd = find(Kind::EgressNewDestination, &x.dest)
                    .unwrap_or_else(|| panic!("seed {seed}: no new_destination for {}", x.dest));
                let lat = (nd - x.first_seen).num_milliseconds().abs();
                assert!(
                    lat <= 1000,
                    "seed {seed}: {} first contact off by {lat} ms",
                    x.class
                );
                let (kind, max_h) = match x.class.as_str() {
                    "beacon" => (Kind::EgressBeacon, 48),
                    "sparse_checkout_tied" => (Kind::EgressCheckoutCorrelated, 24),
                    "burst" => (Kind::EgressVolume, 24),
                    other => panic!("unknown exfil class {other}"),
                };
                let at = find(kind, &x.dest).unwrap_or_else(|| {
                    panic!("seed {seed}: no {kind} for {} ({})", x.dest, x.class)
                });
                let h = (at - x.first_seen).num_seconds() as f64 / 3600.0;
                assert!(
                    (0.0..=max_h as f64).contains(&h),
                    "seed {seed}: {kind} for {} after {h:.1} h",
                    x.class
                );
                if with_gateway {
                    println!(
                        "seed {seed}: {:<22} new_destination +{:.1}s, {kind} +{h:.1} h",
                        x.class,
                        lat as f64 / 1000.0
                    );
                }
            }
            // Benign alerts after learning.
            let learn_end = t(r
                .stats
                .detect
                .learning_end
                .as_deref()
                .expect("learning end"));
            let end = DateTime::from_timestamp(r.state.last_ts as i64, 0).expect("last time");
            let days = ((end - learn_end).num_seconds() as f64 / 86400.0).max(1.0);
            let exfil: Vec<&str> = truth
                .iter()
                .filter(|x| x.label == "exfil")
                .map(|x| x.dest.as_str())
                .collect();
            let class_of = |d: &str| {
                truth
                    .iter()
                    .find(|x| x.dest == d)
                    .map(|x| {
                        if x.service.is_empty() {
                            x.class.clone()
                        } else {
                            x.service.clone()
                        }
                    })
                    .unwrap_or_else(|| "other".into())
            };
            let mut per: BTreeMap<String, usize> = BTreeMap::new();
            for f in &r.findings {
                let d = f.dest.as_deref().unwrap_or("");
                if f.time >= learn_end && !exfil.contains(&d) {
                    *per.entry(format!("{}:{}", class_of(d), f.kind))
                        .or_default() += 1;
                }
            }
            let total: usize = per.values().sum();
            let rate = total as f64 / days;
            println!(
                "seed {seed} (gateway {}): benign alerts {total} in {days:.1} days = {rate:.2}/day {per:?}",
                if with_gateway {
                    "configured"
                } else {
                    "learned"
                }
            );
            assert!(
                rate <= 0.5,
                "seed {seed}: {rate:.2} benign alerts/day: {per:?}"
            );
            assert!(
                !r.findings
                    .iter()
                    .any(|f| f.dest.as_deref() == Some("api.pay-gateway.example")),
                "seed {seed}: payment gateway flagged"
            );
        }
    }
}
