//! How big follow mode's saved state gets: `state_size LOG` follows LOG from its first
//! byte (all detectors, blocking decided but not applied), then prints the size of the
//! encoded state, what it holds, and how long encoding and decoding took.

use mamori_entrance::follow::{FollowOptions, FollowState, Follower, TailState};
use mamori_entrance::{BlockBackend, EntranceConfig, NoBotVerifier};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let Some(path) = std::env::args_os().nth(1).map(std::path::PathBuf::from) else {
        eprintln!("usage: state_size LOG");
        std::process::exit(2);
    };
    let m = std::fs::metadata(&path).unwrap_or_else(|e| {
        eprintln!("{}: {e}", path.display());
        std::process::exit(2);
    });
    let from_start = TailState {
        dev: m.dev(),
        ino: m.ino(),
        offset: 0,
    };
    let opts = FollowOptions {
        block: Some(BlockBackend::PrintOnly),
        bot_verifier: Some(Arc::new(NoBotVerifier)),
        ..Default::default()
    };
    let mut f = Follower::with_options(
        &[(path.clone(), Some(from_start))],
        EntranceConfig::default(),
        "localhost",
        mamori_core::Lang::En,
        opts,
    );
    let t = Instant::now();
    let mut findings = 0usize;
    // Event time comes from the log only (`i64::MIN`: never advanced by the clock).
    while f.states().first().is_some_and(|(_, s)| s.offset < m.len()) {
        findings += f.poll(i64::MIN).len();
    }
    let read = t.elapsed();
    let t = Instant::now();
    let bytes = f.save_state();
    let enc = t.elapsed();
    let t = Instant::now();
    let state = FollowState::decode(&bytes).expect("decodes");
    let dec = t.elapsed();
    let c = state.counts();
    println!(
        "{} lines in {:.2} s, {findings} findings; state {} bytes ({:.2} MiB), encoded in {} ms, decoded in {} ms",
        f.stats().lines,
        read.as_secs_f64(),
        bytes.len(),
        bytes.len() as f64 / (1024.0 * 1024.0),
        enc.as_millis(),
        dec.as_millis()
    );
    println!(
        "holds {} addresses, {} prefixes, {} path shapes, {} episodes, {} blocks, {} pending",
        c.ips, c.prefixes, c.known_paths, c.episodes, c.blocks, c.pending
    );
}
