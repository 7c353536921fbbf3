//! Stand-in for `mamori egress` until the binary wires it:
//! `cargo run --release -p mamori-exit --example egress_bench -- CONN_LOG [--dns-log F]
//!  [--orders F | --access-log F] [--gateway NAME]... [--json] [--policy]`
//! Prints findings (JSON lines with `--json`, else one line each) on stdout and the
//! analysis time and stats on stderr.

use mamori_core::Lang;
use mamori_exit::{EgressOptions, analyze, policy};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut opts = EgressOptions::default();
    let (mut json, mut pol) = (false, false);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dns-log" => opts.dns_log = args.next().map(Into::into),
            "--orders" => opts.orders = args.next().map(Into::into),
            "--access-log" => opts.access_log = args.next().map(Into::into),
            "--gateway" => opts.config.detect.gateways.extend(args.next()),
            "--json" => json = true,
            "--policy" => pol = true,
            _ => opts.conn_log = a.into(),
        }
    }
    let t = Instant::now();
    match analyze(&opts, "shop-1", Lang::En) {
        Ok(r) => {
            let el = t.elapsed();
            for f in &r.findings {
                if json {
                    println!("{}", f.to_json_line());
                } else {
                    println!(
                        "{} {:<28} {:<8} {}",
                        f.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        f.kind.as_str(),
                        f.severity.as_str(),
                        f.summary
                    );
                }
            }
            if pol {
                print!("{}", policy::render(&r.policy_input(&opts.config)));
            }
            eprintln!(
                "analysis_seconds={:.3} findings={} stats={}",
                el.as_secs_f64(),
                r.findings.len(),
                serde_json::to_string(&r.stats).unwrap_or_default()
            );
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
