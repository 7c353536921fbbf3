//! Progress bars on stderr (hidden when stderr is not a terminal or with --quiet), so
//! stdout stays clean for --json.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub fn bar(quiet: bool, len: Option<u64>, msg: &str) -> ProgressBar {
    let pb = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if quiet {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        pb.set_draw_target(ProgressDrawTarget::stderr());
    }
    let style = match len {
        Some(_) => ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta})",
        ),
        None => ProgressStyle::with_template("{spinner} {msg} {pos} ({per_sec})"),
    };
    if let Ok(s) = style {
        pb.set_style(s.progress_chars("=> "));
    }
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// Run `work` while a spinner on stderr shows `counter` (entries seen so far).
pub fn with_counter<T>(
    quiet: bool,
    msg: &str,
    counter: &std::sync::atomic::AtomicU64,
    work: impl FnOnce() -> T,
) -> T {
    use std::sync::atomic::{AtomicBool, Ordering};
    let pb = bar(quiet, None, msg);
    let done = AtomicBool::new(false);
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                pb.set_position(counter.load(Ordering::Relaxed));
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
        let out = work();
        done.store(true, Ordering::Relaxed);
        out
    });
    pb.finish_and_clear();
    out
}
