//! Building the baseline: every non-ignored entry of every root with its metadata,
//! BLAKE3 (SHA-256 too for critical files) and, for critical text files, a compressed
//! known-good copy for diffs and restore.

use crate::error::{WarnKind, Warning};
use crate::hash::{HashError, hash_file};
use crate::rules::RootRules;
use crate::walk::{self, Item, path_bytes};
use mamori_core::config::BaselineConfig;
use mamori_core::store::{BaselineEntry, FileType, flags};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// The codec of stored copies.
pub const COPY_CODEC: &str = "zlib";

/// A compressed known-good copy: (root, path, codec, data).
pub type Copy = (String, Vec<u8>, &'static str, Vec<u8>);

#[derive(Debug, Default)]
pub struct Built {
    pub entries: Vec<BaselineEntry>,
    pub copies: Vec<Copy>,
    pub warnings: Vec<Warning>,
    pub bytes_hashed: u64,
}

pub fn file_type(m: &std::fs::Metadata) -> FileType {
    let t = m.file_type();
    if t.is_file() {
        FileType::File
    } else if t.is_dir() {
        FileType::Dir
    } else if t.is_symlink() {
        FileType::Symlink
    } else {
        FileType::Special
    }
}

/// A baseline entry from metadata (no hash yet).
pub fn entry_from_meta(root: &str, rel: Vec<u8>, m: &std::fs::Metadata) -> BaselineEntry {
    BaselineEntry {
        root: root.to_string(),
        path: rel,
        ftype: file_type(m),
        size: m.size(),
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
        ino: m.ino(),
        dev: m.dev(),
        blake3: None,
        sha256: None,
        flags: 0,
        link: None,
    }
}

pub fn compress(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

pub fn decompress(data: &[u8], limit: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(limit)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// Describe one walked item as a baseline entry, hashing regular files.
/// Returns the entry, the content to keep (critical text), and a warning if any.
pub fn describe(
    rules: &RootRules,
    root_key: &str,
    item: &Item<'_>,
    cfg: &BaselineConfig,
) -> (Option<BaselineEntry>, Option<Vec<u8>>, Option<Warning>) {
    let rel = path_bytes(item.rel);
    let is_dir = item.meta.file_type().is_dir();
    let critical = rules.is_critical(item.rel, is_dir);
    let mut e = entry_from_meta(root_key, rel, &item.meta);
    if critical {
        e.flags |= flags::CRITICAL;
    }
    match e.ftype {
        FileType::Dir | FileType::Special => (Some(e), None, None),
        FileType::Symlink => {
            match std::fs::read_link(item.abs) {
                Ok(t) => e.link = Some(path_bytes(&t)),
                Err(err) => {
                    let w = Warning {
                        path: walk::display(&e.path),
                        kind: WarnKind::Unreadable(err.to_string()),
                    };
                    e.flags |= flags::UNREADABLE;
                    return (Some(e), None, Some(w));
                }
            }
            (Some(e), None, None)
        }
        FileType::File => {
            let keep = critical.then_some(cfg.max_copy_size);
            match hash_file(item.abs, cfg.max_hash_size, critical, keep) {
                Ok(h) => {
                    // Use the fstat of what we hashed, so metadata and hash agree.
                    let mut e2 = entry_from_meta(root_key, std::mem::take(&mut e.path), &h.meta);
                    e2.flags = e.flags;
                    e2.blake3 = Some(h.blake3);
                    e2.sha256 = h.sha256;
                    if h.content.is_some() {
                        e2.flags |= flags::COPY;
                    }
                    (Some(e2), h.content, None)
                }
                Err(HashError::TooLarge(n)) => {
                    e.flags |= flags::TOO_LARGE;
                    let w = Warning {
                        path: walk::display(&e.path),
                        kind: WarnKind::TooLarge(n),
                    };
                    (Some(e), None, Some(w))
                }
                Err(HashError::NotRegular) => (None, None, None),
                Err(HashError::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => (
                    None,
                    None,
                    Some(Warning {
                        path: walk::display(&e.path),
                        kind: WarnKind::Vanished,
                    }),
                ),
                Err(HashError::Io(err)) => {
                    e.flags |= flags::UNREADABLE;
                    let w = Warning {
                        path: walk::display(&e.path),
                        kind: WarnKind::Unreadable(err.to_string()),
                    };
                    (Some(e), None, Some(w))
                }
            }
        }
    }
}

/// Build the baseline of all `roots`: entries sorted by (root, path), the order the
/// store signs them in.
pub fn build(roots: &[Arc<RootRules>], cfg: &BaselineConfig, counter: &AtomicU64) -> Built {
    let mut built = Built::default();
    let threads = walk::threads(cfg.threads);
    let copies = std::sync::Mutex::new(Vec::new());
    let soft = std::sync::Mutex::new(Vec::new());
    // The hashing threads push straight into one vector: a large vector grows by the
    // allocator remapping it, where gathering per directory and concatenating at the
    // end held every entry twice (the peak of a 100k-file shop's baseline).
    let entries = std::sync::Mutex::new(std::mem::take(&mut built.entries));
    for rules in roots {
        let root_key = rules.key();
        let (_, warnings) = walk::walk(rules, threads, counter, |item| {
            let (e, content, w) = describe(rules, &root_key, &item, cfg);
            if let Some(w) = w {
                if e.is_none() {
                    return Err(w);
                }
                soft.lock().unwrap_or_else(|p| p.into_inner()).push(w);
            }
            if let Some(e) = e {
                if let Some(c) = content {
                    let c = compress(&c);
                    copies.lock().unwrap_or_else(|p| p.into_inner()).push((
                        root_key.clone(),
                        e.path.clone(),
                        COPY_CODEC,
                        c,
                    ));
                }
                entries.lock().unwrap_or_else(|p| p.into_inner()).push(e);
            }
            Ok(None::<()>)
        });
        built.warnings.extend(warnings);
    }
    built.entries = entries.into_inner().unwrap_or_else(|p| p.into_inner());
    built.entries.shrink_to_fit();
    built.bytes_hashed = built
        .entries
        .iter()
        .filter(|e| e.ftype == FileType::File && e.blake3.is_some())
        .map(|e| e.size)
        .sum();
    built
        .warnings
        .extend(soft.into_inner().unwrap_or_else(|p| p.into_inner()));
    built.copies = copies.into_inner().unwrap_or_else(|p| p.into_inner());
    built
        .entries
        .sort_unstable_by(|a, b| (&a.root, &a.path).cmp(&(&b.root, &b.path)));
    built.warnings.sort_by(|a, b| a.path.cmp(&b.path));
    built
}
