//! Score the entrance layer on a shopsim log: `cargo run --release -p mamori-entrance
//! --example eval -- [--markdown LABEL] LOG [LOG…]` (needs LOG.truth.jsonl /
//! .benign.jsonl / .labels.csv). Also prints throughput (lines/s of `analyze` alone).
//! `--markdown LABEL` prints only one row of the table in docs/entrance.md per log
//! (`bench/entrance-detect.sh` assembles the table).

#[path = "../tests/common/mod.rs"]
mod common;

use mamori_entrance::{BlockBackend, LogsOptions, NoBotVerifier, analyze};
use std::sync::Arc;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let markdown = match args.iter().position(|a| a == "--markdown") {
        Some(i) if i + 1 < args.len() => {
            let label = args.remove(i + 1);
            args.remove(i);
            Some(label)
        }
        Some(_) => {
            eprintln!("--markdown needs a LABEL");
            std::process::exit(2);
        }
        None => None,
    };
    for log in args {
        let opts = LogsOptions {
            files: vec![log.clone().into()],
            block: Some(BlockBackend::PrintOnly),
            bot_verifier: Some(Arc::new(NoBotVerifier)),
            ..Default::default()
        };
        let t0 = std::time::Instant::now();
        let rep = match analyze(&opts, "shop", mamori_core::Lang::En, &|_| {}) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        let dt = t0.elapsed().as_secs_f64();
        if let Some(label) = &markdown {
            let s = common::score(std::path::Path::new(&log), &rep.findings);
            println!("{}", s.markdown_row(label));
            continue;
        }
        let mut kinds = std::collections::BTreeMap::new();
        for f in &rep.findings {
            *kinds.entry(f.kind.as_str()).or_insert(0) += 1;
        }
        println!(
            "{log}: {} lines in {dt:.2} s = {:.0} lines/s; malformed {}; findings {:?}; peak tracked IPs {}",
            rep.stats.lines,
            rep.stats.lines as f64 / dt,
            rep.stats.malformed,
            kinds,
            rep.stats.engine.tracked_ips_peak
        );
        if std::env::var_os("EVAL_DUMP").is_some() {
            for f in &rep.findings {
                println!("{}", f.to_json_line());
            }
        }
        let s = common::score(std::path::Path::new(&log), &rep.findings);
        println!("{}", s.table());
    }
}
