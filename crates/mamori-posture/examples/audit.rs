//! Audit this machine and print the table (stand-in for `mamori audit` until the binary
//! wires it): `cargo run -p mamori-posture --example audit -- [--url URL] [--ja] [--json]`.

use mamori_core::Lang;
use mamori_posture::{AuditOptions, audit, render_table};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let lang = if args.iter().any(|a| a == "--ja") {
        Lang::Ja
    } else {
        Lang::En
    };
    let url = args
        .iter()
        .position(|a| a == "--url")
        .and_then(|i| args.get(i + 1).cloned());
    let opts = AuditOptions {
        url,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    match audit(&opts, &mamori_core::finding::local_host_name(), lang) {
        Ok(r) if args.iter().any(|a| a == "--json") => {
            for f in r.findings() {
                println!("{}", f.to_json_line());
            }
        }
        Ok(r) => {
            print!("{}", render_table(&r, lang));
            eprintln!("({:.2} s)", started.elapsed().as_secs_f64());
        }
        Err(e) => {
            eprintln!("{}", e.localized(lang));
            std::process::exit(2);
        }
    }
}
