//! What `mamori logs --json FILE…` does, without the CLI (no config, store or progress
//! bar): analyse the files and print findings as JSON Lines on stdout, statistics on
//! stderr. `bench/entrance.sh` times it unless the release `mamori` binary is built: the
//! library call is the same, and this builds in a fraction of the binary's time.

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
