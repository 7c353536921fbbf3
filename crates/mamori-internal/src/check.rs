//! `check`: compare every root with the baseline.
//!
//! A file is re-hashed when its size, mtime, ctime or inode differ from the baseline (or
//! always with `full`). ctime cannot be set from user space, so a content change whose
//! mtime was put back with `touch -r` is still caught; `full` also covers a clock that
//! was turned back. Equal content means no content finding, whatever the times say.

use crate::baseline::{self, describe, entry_from_meta};
use crate::error::{WarnKind, Warning};
use crate::hash::{HashError, hash_file, hex};
use crate::rules::{RootRules, is_code};
use crate::walk::{self, display, path_bytes};
use chrono::{DateTime, TimeZone, Utc};
use mamori_core::config::BaselineConfig;
use mamori_core::store::{BaselineEntry, FileType, flags};
use mamori_core::{Finding, Kind, Lang, Severity, tr};
use serde_json::json;
use std::borrow::Cow;
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Checklist ids every file-integrity finding bears on.
pub const CHECKLIST: &[&str] = &["20-1.1", "pci:11.5.2"];

/// Fetches the decompressed known-good copy of (root, path), if one is stored.
pub type CopyFn<'a> = dyn Fn(&str, &[u8]) -> Option<Vec<u8>> + 'a;

pub struct CheckOptions<'a> {
    pub cfg: &'a BaselineConfig,
    /// Re-hash every file, not only those whose metadata changed.
    pub full: bool,
    pub host: &'a str,
    pub lang: Lang,
    /// Lines of diff kept in evidence (0 = no diffs).
    pub diff_lines: usize,
}

#[derive(Debug, Default)]
pub struct CheckOutcome {
    pub findings: Vec<Finding>,
    pub warnings: Vec<Warning>,
    pub rehashed: u64,
    pub bytes_hashed: u64,
}

/// What the walk saw that differs from the baseline.
#[derive(Debug)]
pub(crate) enum Obs {
    Added {
        new: BaselineEntry,
        content: Option<Vec<u8>>,
    },
    Changed {
        idx: usize,
        new: BaselineEntry,
        content_changed: bool,
        meta_changed: bool,
        content: Option<Vec<u8>>,
    },
}

fn ns_to_time(ns: i64) -> DateTime<Utc> {
    Utc.timestamp_nanos(ns)
}

fn mode_str(m: u32) -> String {
    format!("{:04o}", m & 0o7777)
}

fn owner(uid: u32, gid: u32) -> String {
    let u = nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    let g = nix::unistd::Group::from_gid(gid.into())
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| gid.to_string());
    format!("{u}:{g}")
}

fn meta_differs(a: &BaselineEntry, b: &BaselineEntry) -> bool {
    a.mode != b.mode || a.uid != b.uid || a.gid != b.gid
}

/// Look at one walked item against the baseline entry (if any).
pub(crate) fn observe(
    rules: &RootRules,
    root_key: &str,
    item: &walk::Item<'_>,
    base: Option<(usize, &BaselineEntry)>,
    opts: &CheckOptions<'_>,
    rehashed: &AtomicU64,
    hashed_bytes: &AtomicU64,
) -> Result<Option<Obs>, Warning> {
    let Some((idx, old)) = base else {
        // New entry. Directories themselves are not reported: what is inside is.
        if item.meta.file_type().is_dir() {
            return Ok(None);
        }
        let (e, content, w) = describe(rules, root_key, item, opts.cfg);
        return match (e, w) {
            (Some(new), _) => Ok(Some(Obs::Added { new, content })),
            (None, Some(w)) => Err(w),
            (None, None) => Ok(None),
        };
    };
    let cur = entry_from_meta(root_key, path_bytes(item.rel), &item.meta);
    if cur.ftype != old.ftype {
        let (e, content, _) = describe(rules, root_key, item, opts.cfg);
        let new = e.unwrap_or(cur);
        return Ok(Some(Obs::Changed {
            idx,
            meta_changed: meta_differs(old, &new),
            new,
            content_changed: true,
            content,
        }));
    }
    match cur.ftype {
        FileType::Dir | FileType::Special => Ok(meta_differs(old, &cur).then_some(Obs::Changed {
            idx,
            new: cur,
            content_changed: false,
            meta_changed: true,
            content: None,
        })),
        FileType::Symlink => {
            let target = std::fs::read_link(item.abs).ok().map(|t| path_bytes(&t));
            let content_changed = target != old.link;
            let meta_changed = meta_differs(old, &cur);
            let mut new = cur;
            new.link = target;
            Ok((content_changed || meta_changed).then_some(Obs::Changed {
                idx,
                new,
                content_changed,
                meta_changed,
                content: None,
            }))
        }
        FileType::File => {
            let stat_changed = cur.size != old.size
                || cur.mtime_ns != old.mtime_ns
                || cur.ctime_ns != old.ctime_ns
                || cur.ino != old.ino;
            let meta_changed = meta_differs(old, &cur);
            if !stat_changed && (!opts.full || old.flags & flags::TOO_LARGE != 0) {
                return Ok(meta_changed.then_some(Obs::Changed {
                    idx,
                    new: cur,
                    content_changed: false,
                    meta_changed,
                    content: None,
                }));
            }
            if old.flags & flags::TOO_LARGE != 0 {
                // Metadata-only file: a stat change is all we can know.
                return Ok(Some(Obs::Changed {
                    idx,
                    new: cur,
                    content_changed: true,
                    meta_changed,
                    content: None,
                }));
            }
            let keep = (opts.diff_lines > 0 && old.flags & flags::COPY != 0)
                .then_some(opts.cfg.max_copy_size);
            rehashed.fetch_add(1, Ordering::Relaxed);
            match hash_file(item.abs, opts.cfg.max_hash_size, old.sha256.is_some(), keep) {
                Ok(h) => {
                    hashed_bytes.fetch_add(h.meta.len(), Ordering::Relaxed);
                    let mut new = entry_from_meta(root_key, path_bytes(item.rel), &h.meta);
                    new.flags = old.flags & flags::CRITICAL;
                    new.blake3 = Some(h.blake3);
                    new.sha256 = h.sha256;
                    let content_changed = old.blake3 != Some(h.blake3);
                    let meta_changed = meta_differs(old, &new);
                    Ok((content_changed || meta_changed).then_some(Obs::Changed {
                        idx,
                        new,
                        content_changed,
                        meta_changed,
                        content: if content_changed { h.content } else { None },
                    }))
                }
                Err(HashError::TooLarge(_)) => {
                    let mut new = cur;
                    new.flags |= flags::TOO_LARGE;
                    Ok(Some(Obs::Changed {
                        idx,
                        new,
                        content_changed: true,
                        meta_changed,
                        content: None,
                    }))
                }
                Err(HashError::NotRegular) => Ok(None),
                Err(HashError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Err(Warning {
                    path: display(&path_bytes(item.rel)),
                    kind: WarnKind::Vanished,
                }),
                Err(HashError::Io(e)) => Err(Warning {
                    path: display(&path_bytes(item.rel)),
                    kind: WarnKind::Unreadable(e.to_string()),
                }),
            }
        }
    }
}

/// Compare `roots` with `baseline`. `copy` fetches a known-good copy (decompressed) for
/// diffs. Entries of roots no longer configured are left alone.
///
/// Without `full`, this is [`walk_roots`] then a [`Merge`] with the baseline: a caller
/// with the baseline still in the store streams it into the merge instead of loading it.
pub fn check(
    roots: &[Arc<RootRules>],
    baseline: &[BaselineEntry],
    copy: &CopyFn<'_>,
    opts: &CheckOptions<'_>,
    counter: &AtomicU64,
) -> CheckOutcome {
    if !opts.full {
        let mut merge = Merge::new(roots, walk_roots(roots, opts.cfg, counter));
        let mut sorted: Vec<&BaselineEntry> = baseline.iter().collect();
        sorted.sort_unstable_by(|a, b| (&a.root, &a.path).cmp(&(&b.root, &b.path)));
        for e in sorted {
            merge.feed(e);
        }
        return merge.finish(copy, opts);
    }
    let mut out = CheckOutcome::default();
    for rules in roots {
        let root_key = rules.key();
        let entries: Vec<&BaselineEntry> = baseline.iter().filter(|e| e.root == root_key).collect();
        let index: HashMap<&[u8], usize> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.path.as_slice(), i))
            .collect();
        let root = RootBaseline {
            len: entries.len(),
            entry: |i| Cow::Borrowed(entries[i]),
            find: |p: &[u8]| index.get(p).copied(),
        };
        check_root(rules, &root, copy, opts, counter, &mut out);
    }
    sort_outcome(&mut out);
    out
}

fn sort_outcome(out: &mut CheckOutcome) {
    out.findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.kind.as_str().cmp(b.kind.as_str()))
    });
    out.warnings.sort_by(|a, b| a.path.cmp(&b.path));
}

/// What `check` compares without opening a file: one walked entry's `lstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    ftype: FileType,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
}

impl Stat {
    fn of(m: &std::fs::Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat {
            ftype: baseline::file_type(m),
            size: m.size(),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            ino: m.ino(),
        }
    }

    /// Whether this entry, against its baseline entry, can be passed without a closer
    /// look: same type, owner and mode, and for a file the same size, times and inode
    /// (the rule [`observe`] applies without `full`). Symlinks always get the closer
    /// look (their target is read).
    fn unchanged(&self, old: &BaselineEntry) -> bool {
        if self.ftype != old.ftype
            || self.mode != old.mode
            || self.uid != old.uid
            || self.gid != old.gid
        {
            return false;
        }
        match self.ftype {
            FileType::Dir | FileType::Special => true,
            FileType::Symlink => false,
            FileType::File => {
                self.size == old.size
                    && self.mtime_ns == old.mtime_ns
                    && self.ctime_ns == old.ctime_ns
                    && self.ino == old.ino
            }
        }
    }
}

/// The stat walk of every root, done before (or while) the baseline is loaded: per
/// root, each entry's relative path and [`Stat`], and the walk's warnings.
#[derive(Debug, Default)]
pub struct Walked {
    roots: Vec<WalkedRoot>,
}

/// One root's walk: (relative path, stat) per entry, and the walk's warnings.
type WalkedRoot = (Vec<(Box<[u8]>, Stat)>, Vec<Warning>);

/// Walk `roots` (stat only, nothing opened), for a [`Merge`].
pub fn walk_roots(roots: &[Arc<RootRules>], cfg: &BaselineConfig, counter: &AtomicU64) -> Walked {
    let threads = walk::threads(cfg.threads);
    Walked {
        roots: roots
            .iter()
            .map(|rules| {
                walk::walk(rules, threads, counter, |item| {
                    Ok(Some((
                        item.rel.as_os_str().as_bytes().into(),
                        Stat::of(&item.meta),
                    )))
                })
            })
            .collect(),
    }
}

/// One root's side of a [`Merge`].
struct RootMerge {
    rules: Arc<RootRules>,
    key: String,
    /// The walk's entries, sorted by path (the store's order).
    items: Vec<(Box<[u8]>, Stat)>,
    cursor: usize,
    warnings: Vec<Warning>,
    /// Baseline entries fed for this root.
    fed: usize,
    /// Baseline entries the walk did not see (deletion candidates).
    gone: Vec<BaselineEntry>,
}

/// Compare what [`walk_roots`] saw with the baseline as it streams out of the store, in
/// (root, path) order ([`Merge::feed`]), as [`check`] does without `full`: a merge of two
/// sorted lists. An entry whose stat matches its baseline entry is passed; only the
/// baseline entries of what changed or went are kept, so a 100k-file shop's baseline is
/// never held in memory. [`Merge::finish`] looks again (from the disk, in parallel, with
/// the same [`observe`] as the one-phase walk) at the rest and reports.
pub struct Merge {
    roots: Vec<RootMerge>,
    /// The root of the previous fed entry (entries come grouped by root).
    last: usize,
    /// Entries to look at again: (root, relative path, position in `kept`).
    closer: Vec<(usize, Box<[u8]>, Option<usize>)>,
    /// The baseline entries of `closer`.
    kept: Vec<BaselineEntry>,
}

impl Merge {
    pub fn new(roots: &[Arc<RootRules>], walked: Walked) -> Merge {
        let roots = roots
            .iter()
            .zip(walked.roots)
            .map(|(rules, (mut items, warnings))| {
                items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                RootMerge {
                    rules: Arc::clone(rules),
                    key: rules.key(),
                    items,
                    cursor: 0,
                    warnings,
                    fed: 0,
                    gone: Vec::new(),
                }
            })
            .collect();
        Merge {
            roots,
            last: 0,
            closer: Vec::new(),
            kept: Vec::new(),
        }
    }

    /// Walked entries of root `ri` before `upto` (all with `None`) that the baseline does
    /// not have: new (directories themselves are not reported, what is inside them is).
    fn added_until(&mut self, ri: usize, upto: Option<&[u8]>) {
        let r = &mut self.roots[ri];
        while let Some((rel, st)) = r.items.get_mut(r.cursor) {
            if upto.is_some_and(|p| &rel[..] >= p) {
                break;
            }
            if st.ftype != FileType::Dir {
                self.closer.push((ri, std::mem::take(rel), None));
            }
            r.cursor += 1;
        }
    }

    /// The next baseline entry, in (root, path) order. Entries of roots not configured
    /// any more are left alone.
    pub fn feed(&mut self, e: &BaselineEntry) {
        let ri = if self.roots.get(self.last).is_some_and(|r| r.key == e.root) {
            self.last
        } else {
            match self.roots.iter().position(|r| r.key == e.root) {
                Some(i) => i,
                None => return,
            }
        };
        self.last = ri;
        self.roots[ri].fed += 1;
        self.added_until(ri, Some(&e.path));
        let r = &mut self.roots[ri];
        match r.items.get_mut(r.cursor) {
            Some((rel, st)) if rel[..] == e.path[..] => {
                if !st.unchanged(e) {
                    self.kept.push(e.clone());
                    self.closer
                        .push((ri, std::mem::take(rel), Some(self.kept.len() - 1)));
                }
                r.cursor += 1;
            }
            _ => {
                if e.ftype != FileType::Dir {
                    r.gone.push(e.clone());
                }
            }
        }
    }

    /// Look again at what changed and report, as [`check`] does.
    pub fn finish(mut self, copy: &CopyFn<'_>, opts: &CheckOptions<'_>) -> CheckOutcome {
        use rayon::prelude::*;
        let mut out = CheckOutcome::default();
        for ri in 0..self.roots.len() {
            if self.roots[ri].fed == 0 {
                // No baseline for this root yet: say so, report nothing of it.
                out.warnings
                    .push(no_baseline_yet(self.roots[ri].key.clone(), opts.lang));
                continue;
            }
            self.added_until(ri, None);
        }
        let rehashed = AtomicU64::new(0);
        let hashed = AtomicU64::new(0);
        let (roots, kept) = (&self.roots, &self.kept);
        let looked: Vec<(usize, Result<Option<Obs>, Warning>)> = self
            .closer
            .par_iter()
            .map(|(ri, rel, k)| {
                let r = &roots[*ri];
                let relp = Path::new(std::ffi::OsStr::from_bytes(rel));
                let abs = r.rules.root.join(relp);
                let looked = std::fs::symlink_metadata(&abs)
                    .map_err(|e| Warning {
                        path: display(rel),
                        kind: if e.kind() == std::io::ErrorKind::NotFound {
                            WarnKind::Vanished
                        } else {
                            WarnKind::Unreadable(e.to_string())
                        },
                    })
                    .and_then(|meta| {
                        let item = walk::Item {
                            rel: relp,
                            abs: &abs,
                            meta,
                        };
                        let base = k.map(|k| (k, &kept[k]));
                        observe(&r.rules, &r.key, &item, base, opts, &rehashed, &hashed)
                    });
                (*ri, looked)
            })
            .collect();
        out.rehashed += rehashed.load(Ordering::Relaxed);
        out.bytes_hashed += hashed.load(Ordering::Relaxed);
        for (ri, r) in looked {
            let root = &roots[ri];
            match r {
                Ok(Some(o)) => out.findings.push(finding_for(
                    &root.rules,
                    &root.key,
                    &o,
                    |i| Cow::Borrowed(&kept[i]),
                    copy,
                    opts,
                )),
                Ok(None) => {}
                Err(w) => out.warnings.push(w),
            }
        }
        for r in roots.iter().filter(|r| r.fed > 0) {
            let gone = gone(
                &r.rules,
                &r.warnings,
                r.gone.len(),
                |i| Cow::Borrowed(&r.gone[i]),
                |_| false,
            );
            for i in gone {
                out.findings.push(deleted(&r.key, &r.gone[i], opts));
            }
        }
        for r in self.roots {
            out.warnings.extend(r.warnings);
        }
        sort_outcome(&mut out);
        out
    }
}

/// Baseline entries of a root not seen by its walk (positions), except directories,
/// ignored paths and what lies under a directory the walk could not list (unknown, not
/// gone): the `file.deleted` findings to make.
fn gone<'e>(
    rules: &RootRules,
    warnings: &[Warning],
    len: usize,
    entry: impl Fn(usize) -> Cow<'e, BaselineEntry>,
    was_seen: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let unlisted: Vec<&[u8]> = warnings
        .iter()
        .filter(|w| matches!(w.kind, WarnKind::WalkError(_)))
        .map(|w| w.path.as_bytes())
        .collect();
    let mut out = Vec::new();
    for i in 0..len {
        if was_seen(i) {
            continue;
        }
        let e = entry(i);
        if e.ftype == FileType::Dir {
            continue;
        }
        let rel = Path::new(std::ffi::OsStr::from_bytes(&e.path));
        if rules.is_ignored(rel, false)
            || unlisted
                .iter()
                .any(|u| e.path.starts_with(u) && e.path.get(u.len()) == Some(&b'/'))
        {
            continue;
        }
        out.push(i);
    }
    out
}

/// One root's baseline as the caller holds it: `len` entries, `entry(i)`, and `find`
/// from a relative path to its position. `watch` passes the index it already keeps, so
/// a sweep of a 100k-file shop builds no second one; its entries are kept packed and
/// come out as owned values (`Cow::Owned`), a caller with a slice lends them.
pub struct RootBaseline<E, F> {
    pub len: usize,
    pub entry: E,
    pub find: F,
}

/// What a walk of one root saw against its baseline, before any finding is made of it
/// (a finding, with its evidence and diff, is some kilobytes; a caller facing thousands of
/// changes turns these into findings a batch at a time).
#[derive(Default)]
pub(crate) struct RootObs {
    /// Added or changed entries.
    pub obs: Vec<Obs>,
    /// Baseline positions of entries gone.
    pub gone: Vec<usize>,
    pub warnings: Vec<Warning>,
    pub rehashed: u64,
    pub bytes_hashed: u64,
}

/// Walk one root and compare it with its baseline (see [`RootObs`]). A root with no
/// baseline yet gives only a warning.
pub(crate) fn observe_root<'e, E, F>(
    rules: &Arc<RootRules>,
    base: &RootBaseline<E, F>,
    opts: &CheckOptions<'_>,
    counter: &AtomicU64,
) -> RootObs
where
    E: Fn(usize) -> Cow<'e, BaselineEntry> + Sync,
    F: Fn(&[u8]) -> Option<usize> + Sync,
{
    let root_key = rules.key();
    if base.len == 0 {
        return RootObs {
            warnings: vec![no_baseline_yet(root_key, opts.lang)],
            ..RootObs::default()
        };
    }
    let threads = walk::threads(opts.cfg.threads);
    let seen: Vec<AtomicBool> = (0..base.len).map(|_| AtomicBool::new(false)).collect();
    let rehashed = AtomicU64::new(0);
    let hashed = AtomicU64::new(0);
    let (obs, warnings) = walk::walk(rules, threads, counter, |item| {
        let key = item.rel.as_os_str().as_bytes();
        let found = (base.find)(key).map(|i| {
            seen[i].store(true, Ordering::Relaxed);
            (i, (base.entry)(i))
        });
        let found = found.as_ref().map(|(i, e)| (*i, &**e));
        observe(rules, &root_key, &item, found, opts, &rehashed, &hashed)
    });
    let gone = gone(rules, &warnings, base.len, &base.entry, |i| {
        seen[i].load(Ordering::Relaxed)
    });
    RootObs {
        obs,
        gone,
        warnings,
        rehashed: rehashed.load(Ordering::Relaxed),
        bytes_hashed: hashed.load(Ordering::Relaxed),
    }
}

/// Compare one root with its baseline, adding findings and warnings to `out` (unsorted).
pub fn check_root<'e, E, F>(
    rules: &Arc<RootRules>,
    base: &RootBaseline<E, F>,
    copy: &CopyFn<'_>,
    opts: &CheckOptions<'_>,
    counter: &AtomicU64,
    out: &mut CheckOutcome,
) where
    E: Fn(usize) -> Cow<'e, BaselineEntry> + Sync,
    F: Fn(&[u8]) -> Option<usize> + Sync,
{
    let root_key = rules.key();
    let ro = observe_root(rules, base, opts, counter);
    out.rehashed += ro.rehashed;
    out.bytes_hashed += ro.bytes_hashed;
    for o in &ro.obs {
        out.findings
            .push(finding_for(rules, &root_key, o, &base.entry, copy, opts));
    }
    for i in ro.gone {
        out.findings
            .push(deleted(&root_key, &(base.entry)(i), opts));
    }
    out.warnings.extend(ro.warnings);
}

fn no_baseline_yet(root_key: String, lang: Lang) -> Warning {
    Warning {
        path: root_key,
        kind: WarnKind::WalkError(tr!(
            lang,
            "this root has no baseline yet; run `mamori baseline --approve`",
            "このルートにはまだベースラインがありません。`mamori baseline --approve` を実行してください"
        )),
    }
}

fn base_evidence(old: Option<&BaselineEntry>, new: Option<&BaselineEntry>) -> serde_json::Value {
    let side = |e: &BaselineEntry| {
        json!({
            "blake3": e.blake3.map(|h| hex(&h)),
            "sha256": e.sha256.map(|h| hex(&h)),
            "size": e.size,
            "mode": mode_str(e.mode),
            "owner": owner(e.uid, e.gid),
            "uid": e.uid,
            "gid": e.gid,
            "mtime": ns_to_time(e.mtime_ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "ctime": ns_to_time(e.ctime_ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "inode": e.ino,
            "link": e.link.as_ref().map(|l| display(l)),
        })
    };
    json!({
        "old": old.map(side),
        "new": new.map(side),
    })
}

pub(crate) fn finding_for<'e>(
    rules: &RootRules,
    root_key: &str,
    o: &Obs,
    old_of: impl Fn(usize) -> Cow<'e, BaselineEntry>,
    copy: &CopyFn<'_>,
    opts: &CheckOptions<'_>,
) -> Finding {
    let lang = opts.lang;
    match o {
        Obs::Added { new, content } => {
            let p = display(&new.path);
            let rel = Path::new(std::ffi::OsStr::from_bytes(&new.path));
            let code = is_code(rel);
            let upload = rules.in_upload_dir(rel);
            let critical = new.is_critical();
            let (sev, summary) = if code && upload {
                (
                    Severity::Critical,
                    tr!(
                        lang,
                        "new program file in an upload directory: {p} (uploads never contain code; a typical webshell or skimmer drop)",
                        "アップロード用ディレクトリに新しいプログラムファイル: {p} (アップロード先にコードは置かれません。Web シェルやスキマー設置の典型です)"
                    ),
                )
            } else if critical {
                (
                    if code {
                        Severity::Critical
                    } else {
                        Severity::High
                    },
                    tr!(
                        lang,
                        "new file among payment/checkout files: {p}",
                        "決済・購入処理のファイル群に新しいファイル: {p}"
                    ),
                )
            } else if code {
                (
                    Severity::High,
                    tr!(
                        lang,
                        "new program file: {p}",
                        "新しいプログラムファイル: {p}"
                    ),
                )
            } else if upload {
                (
                    Severity::Info,
                    tr!(lang, "new upload: {p}", "新しいアップロードファイル: {p}"),
                )
            } else {
                (
                    Severity::Low,
                    tr!(lang, "new file: {p}", "新しいファイル: {p}"),
                )
            };
            let mut ev = base_evidence(None, Some(new));
            if let (Some(c), true) = (content, opts.diff_lines > 0) {
                ev["diff"] = json!(crate::diff::unified(b"", c, &p, opts.diff_lines));
            }
            ev["upload_dir"] = json!(upload);
            ev["critical"] = json!(critical);
            Finding::new(
                Kind::FileAdded,
                sev,
                ns_to_time(new.ctime_ns),
                opts.host,
                summary,
            )
            .with_path(p)
            .with_root(root_key)
            .with_checklist(CHECKLIST)
            .with_evidence(ev)
        }
        Obs::Changed {
            idx,
            new,
            content_changed,
            meta_changed,
            content,
        } => {
            let old = old_of(*idx);
            let p = display(&new.path);
            let rel = Path::new(std::ffi::OsStr::from_bytes(&new.path));
            let code = is_code(rel);
            let critical = old.is_critical();
            let mut ev = base_evidence(Some(&old), Some(new));
            ev["critical"] = json!(critical);
            if *content_changed {
                let hidden = new.mtime_ns == old.mtime_ns && new.ftype == FileType::File;
                let (sev, mut summary) = if critical {
                    (
                        Severity::Critical,
                        tr!(
                            lang,
                            "payment/checkout code changed: {p}",
                            "決済・購入処理のコードが変更されました: {p}"
                        ),
                    )
                } else if code {
                    (
                        Severity::High,
                        tr!(
                            lang,
                            "program file changed: {p}",
                            "プログラムファイルが変更されました: {p}"
                        ),
                    )
                } else {
                    (
                        Severity::Medium,
                        tr!(lang, "file changed: {p}", "ファイルが変更されました: {p}"),
                    )
                };
                if hidden {
                    summary.push_str(&tr!(
                        lang,
                        " — its modification time was put back, a typical way of hiding a change",
                        " — 更新日時が元に戻されています (変更を隠す典型的な手口です)"
                    ));
                }
                if new.ftype != old.ftype {
                    ev["type_changed"] = json!(true);
                }
                ev["mtime_restored"] = json!(hidden);
                if opts.diff_lines > 0
                    && old.flags & flags::COPY != 0
                    && let Some(newc) = content
                {
                    match copy(root_key, &old.path) {
                        Some(oldc) if old.blake3 == Some(*blake3::hash(&oldc).as_bytes()) => {
                            ev["diff"] =
                                json!(crate::diff::unified(&oldc, newc, &p, opts.diff_lines));
                        }
                        Some(_) => {
                            ev["diff_unavailable"] =
                                json!("the stored known-good copy does not match its hash");
                        }
                        None => {}
                    }
                }
                let mut f = Finding::new(
                    Kind::FileModified,
                    sev,
                    ns_to_time(new.ctime_ns),
                    opts.host,
                    summary,
                );
                if *meta_changed {
                    ev["meta_changed"] = json!(true);
                }
                f = f
                    .with_path(p)
                    .with_root(root_key)
                    .with_checklist(CHECKLIST)
                    .with_evidence(ev);
                f
            } else {
                let (om, nm) = (mode_str(old.mode), mode_str(new.mode));
                let world_writable = new.mode & 0o002 != 0 && new.ftype != FileType::Symlink;
                let setid = new.mode & 0o6000 != 0 && old.mode & 0o6000 == 0;
                let owner_changed = old.uid != new.uid || old.gid != new.gid;
                let sev = if world_writable || setid || critical {
                    Severity::High
                } else if code && owner_changed {
                    Severity::Medium
                } else {
                    Severity::Low
                };
                let mut summary = if om != nm {
                    tr!(
                        lang,
                        "permissions changed: {p} {om} → {nm}",
                        "権限が変更されました: {p} {om} → {nm}"
                    )
                } else {
                    let (oo, no) = (owner(old.uid, old.gid), owner(new.uid, new.gid));
                    tr!(
                        lang,
                        "owner changed: {p} {oo} → {no}",
                        "所有者が変更されました: {p} {oo} → {no}"
                    )
                };
                if world_writable {
                    summary.push_str(&tr!(
                        lang,
                        " — anyone on the server can now change it",
                        " — サーバー上の誰でも書き換えられる状態です"
                    ));
                }
                ev["world_writable"] = json!(world_writable);
                Finding::new(
                    Kind::FileMeta,
                    sev,
                    ns_to_time(new.ctime_ns),
                    opts.host,
                    summary,
                )
                .with_path(p)
                .with_root(root_key)
                .with_checklist(CHECKLIST)
                .with_evidence(ev)
            }
        }
    }
}

pub(crate) fn deleted(root_key: &str, e: &BaselineEntry, opts: &CheckOptions<'_>) -> Finding {
    let p = display(&e.path);
    let rel = Path::new(std::ffi::OsStr::from_bytes(&e.path));
    let sev = if e.is_critical() {
        Severity::High
    } else if is_code(rel) {
        Severity::Medium
    } else {
        Severity::Low
    };
    let summary = if e.is_critical() {
        tr!(
            opts.lang,
            "payment/checkout file deleted: {p}",
            "決済・購入処理のファイルが削除されました: {p}"
        )
    } else {
        tr!(
            opts.lang,
            "file deleted: {p}",
            "ファイルが削除されました: {p}"
        )
    };
    let mut ev = base_evidence(Some(e), None);
    ev["critical"] = json!(e.is_critical());
    ev["time_note"] = json!("deletion time unknown: `time` is when it was noticed");
    Finding::new(Kind::FileDeleted, sev, Utc::now(), opts.host, summary)
        .with_path(p)
        .with_root(root_key)
        .with_checklist(CHECKLIST)
        .with_evidence(ev)
}

/// Decompress a stored copy (helper for callers wiring the store).
pub fn decode_copy(codec: &str, data: &[u8], limit: u64) -> Option<Vec<u8>> {
    (codec == baseline::COPY_CODEC)
        .then(|| baseline::decompress(data, limit))
        .flatten()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mamori_core::config::Flavor;

    /// A tiny EC-CUBE root at `<tmp>/shop`: a payment module and one vendor file.
    pub(crate) fn setup() -> (tempfile::TempDir, Arc<RootRules>) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("shop");
        for (p, c) in [
            ("app/Plugin/Payment/CardPayment.php", "<?php // pay\n"),
            ("vendor/a.php", "<?php // a\n"),
        ] {
            std::fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
            std::fs::write(root.join(p), c).unwrap();
        }
        let rc = crate::flavor::preset(&root, Flavor::Eccube);
        let rules = Arc::new(RootRules::new(&rc, Path::new("m.toml")).unwrap());
        (d, rules)
    }

    fn run(rules: &Arc<RootRules>, base: Vec<BaselineEntry>, full: bool) -> CheckOutcome {
        let cfg = BaselineConfig::default();
        let opts = CheckOptions {
            cfg: &cfg,
            full,
            host: "h",
            lang: Lang::En,
            diff_lines: 10,
        };
        check(
            std::slice::from_ref(rules),
            &base,
            &|_, _| None,
            &opts,
            &AtomicU64::new(0),
        )
    }

    #[test]
    fn full_rehash_catches_content_change_with_identical_metadata() {
        // A content change whose size, mtime, ctime and inode all match the baseline
        // (a clock turned back) is invisible to the stat pass, but not to --full.
        let (_d, rules) = setup();
        let cfg = BaselineConfig::default();
        let mut built =
            crate::baseline::build(std::slice::from_ref(&rules), &cfg, &AtomicU64::new(0));
        for e in &mut built.entries {
            if e.path == b"vendor/a.php" {
                e.blake3 = Some([0; 32]);
            }
        }
        assert!(
            run(&rules, built.entries.clone(), false)
                .findings
                .is_empty()
        );
        let out = run(&rules, built.entries, true);
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].kind, Kind::FileModified);
        assert_eq!(out.findings[0].path.as_deref(), Some("vendor/a.php"));
        assert_eq!(out.rehashed, 2);
    }

    #[test]
    fn equal_content_after_touch_is_not_a_finding() {
        let (d, rules) = setup();
        let cfg = BaselineConfig::default();
        let built = crate::baseline::build(std::slice::from_ref(&rules), &cfg, &AtomicU64::new(0));
        // Rewrite the same bytes: mtime and ctime change, content does not.
        let p = d.path().join("shop/vendor/a.php");
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&p, "<?php // a\n").unwrap();
        let out = run(&rules, built.entries, false);
        assert!(out.findings.is_empty(), "{:?}", out.findings);
        assert_eq!(out.rehashed, 1);
    }

    #[test]
    fn the_stat_walk_then_compare_reports_what_the_visiting_walk_reports() {
        use std::os::unix::fs::PermissionsExt;
        let (d, rules) = setup();
        let root = d.path().join("shop");
        for (p, c) in [
            ("vendor/b.php", "<?php // b\n"),
            ("vendor/gone.php", "<?php // gone\n"),
            ("vendor/dir_later.txt", "x"),
            ("html/index.html", "<html>"),
        ] {
            std::fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
            std::fs::write(root.join(p), c).unwrap();
        }
        std::os::unix::fs::symlink("a.php", root.join("vendor/link")).unwrap();
        let cfg = BaselineConfig::default();
        let built = crate::baseline::build(std::slice::from_ref(&rules), &cfg, &AtomicU64::new(0));
        std::thread::sleep(std::time::Duration::from_millis(10));
        // Content changed with the mtime put back (size kept).
        let pay = root.join("app/Plugin/Payment/CardPayment.php");
        let mtime = std::fs::metadata(&pay).unwrap().modified().unwrap();
        std::fs::write(&pay, "<?php // PAY\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&pay)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        std::fs::remove_file(root.join("vendor/gone.php")).unwrap();
        std::fs::set_permissions(
            root.join("vendor/b.php"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        std::fs::remove_file(root.join("vendor/link")).unwrap();
        std::os::unix::fs::symlink("b.php", root.join("vendor/link")).unwrap();
        std::fs::remove_file(root.join("vendor/dir_later.txt")).unwrap();
        std::fs::create_dir(root.join("vendor/dir_later.txt")).unwrap();
        std::fs::create_dir_all(root.join("html/upload/new")).unwrap();
        std::fs::write(
            root.join("html/upload/new/shell.php"),
            "<?php system($_GET[1]);",
        )
        .unwrap();
        // Rewritten with the same bytes: looked at, not reported.
        std::fs::write(root.join("html/index.html"), "<html>").unwrap();

        let opts = CheckOptions {
            cfg: &cfg,
            full: false,
            host: "h",
            lang: Lang::En,
            diff_lines: 10,
        };
        let key = rules.key();
        let entries: Vec<&BaselineEntry> = built.entries.iter().collect();
        let index: HashMap<&[u8], usize> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.path.as_slice(), i))
            .collect();
        let mut visiting = CheckOutcome::default();
        check_root(
            &rules,
            &RootBaseline {
                len: entries.len(),
                entry: |i| Cow::Borrowed(entries[i]),
                find: |p: &[u8]| index.get(p).copied(),
            },
            &|_, _| None,
            &opts,
            &AtomicU64::new(0),
            &mut visiting,
        );
        sort_outcome(&mut visiting);
        // check() without full: the stat walk, then the merge with the baseline.
        let two_phase = run(&rules, built.entries.clone(), false);
        let sum = |o: &CheckOutcome| {
            o.findings
                .iter()
                .map(|f| (f.kind, f.path.clone(), f.severity, f.root.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(sum(&two_phase), sum(&visiting));
        assert_eq!(two_phase.rehashed, visiting.rehashed);
        let got = sum(&two_phase);
        for (kind, path) in [
            (Kind::FileModified, "app/Plugin/Payment/CardPayment.php"),
            (Kind::FileDeleted, "vendor/gone.php"),
            (Kind::FileMeta, "vendor/b.php"),
            (Kind::FileModified, "vendor/link"),
            (Kind::FileModified, "vendor/dir_later.txt"),
            (Kind::FileAdded, "html/upload/new/shell.php"),
        ] {
            assert!(
                got.iter().any(|(k, p, _, r)| *k == kind
                    && p.as_deref() == Some(path)
                    && r.as_deref() == Some(key.as_str())),
                "{kind:?} {path} missing from {got:?}"
            );
        }
        assert_eq!(got.len(), 6, "{got:?}");
    }

    #[test]
    fn ignored_paths_are_not_reported_deleted() {
        let (d, rules) = setup();
        let cfg = BaselineConfig::default();
        let built = crate::baseline::build(std::slice::from_ref(&rules), &cfg, &AtomicU64::new(0));
        std::fs::create_dir_all(d.path().join("shop/var/cache")).unwrap();
        std::fs::write(d.path().join("shop/var/cache/x.php"), "x").unwrap();
        let out = run(&rules, built.entries, false);
        assert!(out.findings.is_empty(), "{:?}", out.findings);
    }
}
