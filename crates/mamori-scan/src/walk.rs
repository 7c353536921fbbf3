//! `scan PATH…`: walk the paths (never following links, not skipping hidden files or
//! anything a `.gitignore` says: an attacker can write one), feed the files to one
//! worker per core, and count what could not be scanned.

use crate::engine::Engine;
use crate::{ScanError, ScanOptions};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use mamori_core::{Finding, Lang};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counts of one scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Files scanned.
    pub files: u64,
    /// Bytes scanned.
    pub bytes: u64,
    /// Entries not scanned because they are not regular files (links, FIFOs, devices) or
    /// are excluded by `[scan] exclude`.
    pub skipped: u64,
    /// Files or directories that could not be read.
    pub unreadable: u64,
    /// Files over `max_size`, not scanned.
    pub too_large: u64,
    /// Files whose rules ran past the time limit.
    pub timeouts: u64,
    /// Rules compiled, from how many files, and how long that took.
    pub rules: usize,
    pub rule_files: usize,
    pub compile_time: Duration,
    /// Wall time of the walk and scan (compile time not included).
    pub elapsed: Duration,
    pub threads: usize,
}

/// What `scan` found.
#[derive(Debug, Default)]
pub struct ScanReport {
    /// Sorted by path, then kind.
    pub findings: Vec<Finding>,
    pub stats: ScanStats,
    /// What could not be scanned, one entry per file or directory (too large,
    /// unreadable, timed out); the binary prints them as notes.
    pub problems: Vec<ScanError>,
}

/// Compile the rules of `opts` and scan `paths`. `progress` is called with the number of
/// files done so far (from worker threads).
pub fn scan_paths(
    paths: &[PathBuf],
    opts: &ScanOptions,
    host: &str,
    lang: Lang,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ScanReport, ScanError> {
    let engine = Engine::new(opts)?;
    engine.scan_paths(paths, host, lang, progress)
}

struct Root {
    path: PathBuf,
    excludes: Gitignore,
}

impl Engine {
    /// Scan every regular file under `paths` (files or directories). A path that does not
    /// exist is an error; anything that goes wrong with one file is counted in the
    /// report and the scan goes on.
    pub fn scan_paths(
        &self,
        paths: &[PathBuf],
        host: &str,
        lang: Lang,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<ScanReport, ScanError> {
        let start = Instant::now();
        let mut roots = Vec::new();
        for p in paths {
            if std::fs::symlink_metadata(p).is_err() {
                return Err(ScanError::NoSuchPath { path: p.clone() });
            }
            let mut b = GitignoreBuilder::new(p);
            for pat in &self.opts.exclude {
                b.add_line(None, pat).map_err(|e| ScanError::Setting {
                    key: "exclude".into(),
                    msg: format!("`{pat}`: {e}"),
                })?;
            }
            let excludes = b.build().map_err(|e| ScanError::Setting {
                key: "exclude".into(),
                msg: e.to_string(),
            })?;
            roots.push(Root {
                path: p.clone(),
                excludes,
            });
        }
        let threads = match self.opts.threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };

        let done = AtomicU64::new(0);
        let findings = Mutex::new(Vec::new());
        let problems = Mutex::new(Vec::new());
        let stats = Mutex::new(ScanStats::default());
        let (tx, rx) = crossbeam_channel::bounded::<(PathBuf, String)>(4096);

        std::thread::scope(|s| {
            for _ in 0..threads {
                let rx = rx.clone();
                let (done, findings, problems, stats) = (&done, &findings, &problems, &stats);
                s.spawn(move || {
                    let mut w = self.worker();
                    let mut local = ScanStats::default();
                    let mut found = Vec::new();
                    let mut probs = Vec::new();
                    for (path, shown) in rx.iter() {
                        match w.scan_file_counted(&path, &shown, host, lang) {
                            Ok((f, bytes)) => {
                                local.files += 1;
                                local.bytes += bytes;
                                found.extend(f);
                            }
                            Err(e) => {
                                match &e {
                                    ScanError::TooLarge { .. } => local.too_large += 1,
                                    ScanError::NotRegular { .. } => local.skipped += 1,
                                    ScanError::Timeout { .. } => local.timeouts += 1,
                                    _ => local.unreadable += 1,
                                }
                                if !matches!(e, ScanError::NotRegular { .. }) {
                                    probs.push(e);
                                }
                            }
                        }
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                    }
                    findings
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend(found);
                    problems
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend(probs);
                    let mut st = stats.lock().unwrap_or_else(|p| p.into_inner());
                    st.files += local.files;
                    st.bytes += local.bytes;
                    st.too_large += local.too_large;
                    st.skipped += local.skipped;
                    st.timeouts += local.timeouts;
                    st.unreadable += local.unreadable;
                });
            }
            drop(rx);
            // The walk, on this thread.
            let mut walk_stats = ScanStats::default();
            let mut walk_problems = Vec::new();
            for root in &roots {
                walk_root(root, &tx, &mut walk_stats, &mut walk_problems);
            }
            drop(tx);
            let mut st = stats.lock().unwrap_or_else(|p| p.into_inner());
            st.skipped += walk_stats.skipped;
            st.unreadable += walk_stats.unreadable;
            problems
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(walk_problems);
        });

        let mut findings = findings.into_inner().unwrap_or_else(|p| p.into_inner());
        findings.sort_by(|a, b| (&a.path, a.kind.as_str()).cmp(&(&b.path, b.kind.as_str())));
        let mut problems = problems.into_inner().unwrap_or_else(|p| p.into_inner());
        problems.sort_by_key(|e| e.to_string());
        let mut stats = stats.into_inner().unwrap_or_else(|p| p.into_inner());
        stats.rules = self.rules.len();
        stats.rule_files = self.rules.files.len();
        stats.compile_time = self.rules.compile_time;
        stats.elapsed = start.elapsed();
        stats.threads = threads;
        Ok(ScanReport {
            findings,
            stats,
            problems,
        })
    }
}

fn walk_root(
    root: &Root,
    tx: &crossbeam_channel::Sender<(PathBuf, String)>,
    stats: &mut ScanStats,
    problems: &mut Vec<ScanError>,
) {
    let send = |p: &Path| {
        let shown = p.to_string_lossy().into_owned();
        // A closed channel means the workers are gone: nothing more to do.
        let _ = tx.send((p.to_path_buf(), shown));
    };
    // A file named on the command line is scanned even if it is a link to a file.
    match std::fs::metadata(&root.path) {
        Ok(m) if m.is_file() => {
            let real = std::fs::canonicalize(&root.path).unwrap_or_else(|_| root.path.clone());
            let shown = root.path.to_string_lossy().into_owned();
            let _ = tx.send((real, shown));
            return;
        }
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            stats.skipped += 1;
            return;
        }
        Err(e) => {
            stats.unreadable += 1;
            problems.push(ScanError::Read {
                path: root.path.clone(),
                source: e,
            });
            return;
        }
    }
    let ex = root.excludes.clone();
    let skipped = std::sync::Arc::new(AtomicU64::new(0));
    let sk = skipped.clone();
    let walker = ignore::WalkBuilder::new(&root.path)
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .filter_entry(move |e| {
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            let skip = e.depth() > 0 && ex.matched(e.path(), is_dir).is_ignore();
            if skip {
                sk.fetch_add(1, Ordering::Relaxed);
            }
            !skip
        })
        .build();
    for entry in walker {
        match entry {
            Ok(e) => match e.file_type() {
                Some(t) if t.is_file() => send(e.path()),
                Some(t) if t.is_dir() => {}
                _ => stats.skipped += 1,
            },
            Err(err) => {
                stats.unreadable += 1;
                let path = match &err {
                    ignore::Error::WithPath { path, .. } => path.clone(),
                    _ => root.path.clone(),
                };
                let source = match err.into_io_error() {
                    Some(io) => io,
                    None => std::io::Error::other("walk error"),
                };
                problems.push(ScanError::Read { path, source });
            }
        }
    }
    stats.skipped += skipped.load(Ordering::Relaxed);
}
