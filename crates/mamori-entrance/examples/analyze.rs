//! What `mamori logs --json FILE…` will do, without the CLI: analyse the files and print
//! findings as JSON Lines on stdout, statistics on stderr. Used by `bench/entrance.sh`
//! until the binary is wired.

use mamori_entrance::{LogsOptions, analyze};

fn main() {
    let files: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    let opts = LogsOptions {
        files,
        ..Default::default()
    };
    match analyze(&opts, "localhost", mamori_core::Lang::En, &|_| {}) {
        Ok(rep) => {
            let mut out = std::io::stdout().lock();
            if let Err(e) = mamori_core::output::write_json_lines(&mut out, &rep.findings) {
                eprintln!("stdout: {e}");
                std::process::exit(2);
            }
            eprintln!(
                "{} lines, {} malformed, {} findings, peak tracked IPs {}",
                rep.stats.lines,
                rep.stats.malformed,
                rep.findings.len(),
                rep.stats.engine.tracked_ips_peak
            );
        }
        Err(e) => {
            eprintln!("mamori: {e}");
            std::process::exit(2);
        }
    }
}
