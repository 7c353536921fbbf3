//! The parallel walk of one root: never follows symlinks (so no loops), prunes ignored
//! directories before descending, and hands each entry with its `lstat` to a visitor
//! running on the walker's threads (so hashing is parallel too).

use crate::error::{WarnKind, Warning};
use crate::rules::RootRules;
use ignore::{WalkBuilder, WalkState};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One entry found by the walk.
#[derive(Debug)]
pub struct Item<'a> {
    /// Path relative to the root (empty for the root itself).
    pub rel: &'a Path,
    pub abs: &'a Path,
    /// `lstat` of the entry.
    pub meta: std::fs::Metadata,
}

/// Raw bytes of a path.
pub fn path_bytes(p: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes().to_vec()
}

/// A path for people and JSON: lossy UTF-8 (non-UTF-8 bytes become U+FFFD).
pub fn display(rel: &[u8]) -> String {
    if rel.is_empty() {
        ".".into()
    } else {
        String::from_utf8_lossy(rel).into_owned()
    }
}

pub fn threads(configured: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    }
}

/// Walk `rules.root`, calling `visit` for every non-ignored entry (files, dirs, links,
/// specials). Returns what the visitors produced and the warnings. `counter` is bumped
/// per entry for progress bars.
pub fn walk<T, F>(
    rules: &Arc<RootRules>,
    threads: usize,
    counter: &AtomicU64,
    visit: F,
) -> (Vec<T>, Vec<Warning>)
where
    T: Send,
    F: Fn(Item<'_>) -> Result<Option<T>, Warning> + Sync,
{
    let root = rules.root.clone();
    let filt_rules = Arc::clone(rules);
    let mut builder = WalkBuilder::new(&root);
    builder
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .threads(threads)
        .filter_entry(move |e| {
            let rel = e.path().strip_prefix(&filt_rules.root).unwrap_or(e.path());
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            !filt_rules.is_ignored(rel, is_dir)
        });
    let (tx, rx) = crossbeam_channel::unbounded::<Result<T, Warning>>();
    let visit = &visit;
    let root_ref: &PathBuf = &root;
    builder.build_parallel().run(|| {
        let tx = tx.clone();
        Box::new(move |res| {
            let entry = match res {
                Ok(e) => e,
                Err(err) => {
                    let path = walk_error_path(&err)
                        .map(|p| p.strip_prefix(root_ref).unwrap_or(&p).to_path_buf())
                        .map(|p| display(&path_bytes(&p)))
                        .unwrap_or_else(|| ".".into());
                    let _ = tx.send(Err(Warning {
                        path,
                        kind: WarnKind::WalkError(io_message(&err)),
                    }));
                    return WalkState::Continue;
                }
            };
            counter.fetch_add(1, Ordering::Relaxed);
            let abs = entry.path();
            let rel = abs.strip_prefix(root_ref).unwrap_or(Path::new(""));
            let meta = match std::fs::symlink_metadata(abs) {
                Ok(m) => m,
                Err(e) => {
                    let kind = if e.kind() == std::io::ErrorKind::NotFound {
                        WarnKind::Vanished
                    } else {
                        WarnKind::Unreadable(e.to_string())
                    };
                    let _ = tx.send(Err(Warning {
                        path: display(&path_bytes(rel)),
                        kind,
                    }));
                    return WalkState::Continue;
                }
            };
            match visit(Item { rel, abs, meta }) {
                Ok(Some(t)) => {
                    let _ = tx.send(Ok(t));
                }
                Ok(None) => {}
                Err(w) => {
                    let _ = tx.send(Err(w));
                }
            }
            WalkState::Continue
        })
    });
    drop(tx);
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for r in rx {
        match r {
            Ok(t) => out.push(t),
            Err(w) => warnings.push(w),
        }
    }
    (out, warnings)
}

fn walk_error_path(e: &ignore::Error) -> Option<PathBuf> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } => walk_error_path(err),
        ignore::Error::WithLineNumber { err, .. } => walk_error_path(err),
        ignore::Error::Loop { child, .. } => Some(child.clone()),
        _ => None,
    }
}

fn io_message(e: &ignore::Error) -> String {
    match e {
        ignore::Error::WithPath { err, .. } => io_message(err),
        ignore::Error::WithDepth { err, .. } => io_message(err),
        ignore::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}
