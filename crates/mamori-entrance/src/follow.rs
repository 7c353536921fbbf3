//! Follow mode: tail access logs as they grow (for `mamori watch`), survive rotation by
//! rename and by copytruncate, and resume at the exact byte after a restart.
//!
//! Offsets count only complete lines: a line still being written is re-read from its
//! start after a restart, never half-parsed and never skipped. The saved position is
//! `(dev, ino, offset)`; on restart a log that was rotated while mamori was down is
//! found by its inode among `<log>.1` / `<log>-YYYYMMDD` siblings and its tail read
//! first, so the lines written between the stop and the rotation are not lost.

use crate::MAX_LINE;
use crate::config::EntranceConfig;
use crate::engine::Engine;
use crate::parse::{self, LogFormat};
use mamori_core::{Finding, Lang};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a tailed log was left: persisted by the caller (the store) after each poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailState {
    pub dev: u64,
    pub ino: u64,
    /// Bytes of complete lines consumed.
    pub offset: u64,
}

/// Counters of one tailed log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TailStats {
    pub lines: u64,
    pub malformed: u64,
    pub too_long: u64,
    pub rotations: u64,
    pub truncations: u64,
    /// Lines read from a rotated sibling found at start-up (written while mamori was down).
    pub recovered_lines: u64,
}

/// One followed file.
pub struct Tailer {
    path: PathBuf,
    file: Option<File>,
    dev: u64,
    ino: u64,
    /// End of the last complete line read (what is persisted).
    offset: u64,
    /// Current read position in `file`.
    pos: u64,
    partial: Vec<u8>,
    /// Dropping an over-long line until its newline.
    skipping: bool,
    pub stats: TailStats,
    /// A rotated predecessor to drain first (found at start-up).
    backlog: Option<(File, u64)>,
}

/// Read at most this much per file per poll, so one huge burst cannot starve the daemon.
const MAX_READ_PER_POLL: usize = 8 << 20;

impl Tailer {
    /// Follow `path`, resuming at `saved` when it still describes the file. A new log
    /// (nothing saved) starts at its end: history is for `mamori logs`.
    pub fn new(path: impl Into<PathBuf>, saved: Option<TailState>) -> Tailer {
        let mut t = Tailer {
            path: path.into(),
            file: None,
            dev: 0,
            ino: 0,
            offset: 0,
            pos: 0,
            partial: Vec::new(),
            skipping: false,
            stats: TailStats::default(),
            backlog: None,
        };
        t.open_current(saved);
        t
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The position to persist.
    pub fn state(&self) -> Option<TailState> {
        self.file.as_ref().map(|_| TailState {
            dev: self.dev,
            ino: self.ino,
            offset: self.offset,
        })
    }

    fn open_current(&mut self, saved: Option<TailState>) {
        let Ok(mut f) = File::open(&self.path) else {
            return;
        };
        let Ok(m) = f.metadata() else { return };
        let (dev, ino, len) = (m.dev(), m.ino(), m.len());
        let start = match saved {
            Some(s) if s.dev == dev && s.ino == ino => {
                if s.offset <= len {
                    s.offset
                } else {
                    // Truncated while we were down (copytruncate): start over.
                    self.stats.truncations += 1;
                    0
                }
            }
            Some(s) => {
                // Rotated while we were down: drain the predecessor, then all of this one.
                if let Some(old) = find_rotated(&self.path, s) {
                    self.backlog = Some((old, s.offset));
                }
                self.stats.rotations += 1;
                0
            }
            None => len,
        };
        if f.seek(SeekFrom::Start(start)).is_err() {
            return;
        }
        self.file = Some(f);
        self.dev = dev;
        self.ino = ino;
        self.offset = start;
        self.pos = start;
        self.partial.clear();
        self.skipping = false;
    }

    /// Read what was appended and call `on_line` for each complete line (without the
    /// newline or a trailing CR). Handles rotation and truncation.
    pub fn poll(&mut self, on_line: &mut dyn FnMut(&[u8])) {
        if let Some((mut old, off)) = self.backlog.take()
            && old.seek(SeekFrom::Start(off)).is_ok()
        {
            // Streamed in chunks like the live file: a huge rotated log costs no memory.
            let (mut partial, mut skipping, mut n) = (Vec::new(), false, 0u64);
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let got = match old.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(got) => got,
                };
                split_lines_counting(
                    &buf[..got],
                    &mut partial,
                    &mut skipping,
                    &mut self.stats.too_long,
                    &mut |l| {
                        n += 1;
                        on_line(l);
                    },
                );
            }
            if !partial.is_empty() && !skipping {
                n += 1;
                on_line(trim_cr(&partial));
            }
            self.stats.recovered_lines += n;
            self.stats.lines += n;
        }
        if self.file.is_none() {
            self.open_current(None);
            if self.file.is_some() {
                // A log created after start: read it from the beginning.
                self.rewind();
            }
        }
        self.read_available(on_line);
        // Rotation or truncation shows only once we are at the end of what we have.
        let Ok(cur) = std::fs::metadata(&self.path) else {
            return; // removed: keep the old descriptor until a new file appears
        };
        if cur.dev() != self.dev || cur.ino() != self.ino {
            // Renamed away (logrotate `create`): finish the old file, then the new one.
            self.read_available(on_line);
            if !self.partial.is_empty() && !self.skipping {
                let p = std::mem::take(&mut self.partial);
                self.stats.lines += 1;
                on_line(trim_cr(&p));
            }
            self.stats.rotations += 1;
            self.file = None;
            self.open_current(None);
            self.rewind();
            self.read_available(on_line);
        } else if cur.len() < self.pos {
            // copytruncate: the file was emptied under us.
            self.stats.truncations += 1;
            self.rewind();
            self.read_available(on_line);
        }
    }

    fn rewind(&mut self) {
        if let Some(f) = self.file.as_mut()
            && f.seek(SeekFrom::Start(0)).is_ok()
        {
            self.offset = 0;
            self.pos = 0;
            self.partial.clear();
            self.skipping = false;
        }
    }

    fn read_available(&mut self, on_line: &mut dyn FnMut(&[u8])) {
        let Some(f) = self.file.as_mut() else { return };
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0usize;
        while total < MAX_READ_PER_POLL {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let data = &buf[..n];
            let mut lines = 0u64;
            split_lines_counting(
                data,
                &mut self.partial,
                &mut self.skipping,
                &mut self.stats.too_long,
                &mut |l| {
                    lines += 1;
                    on_line(l);
                },
            );
            self.stats.lines += lines;
            // The saved offset is just after the last newline read: a line still being
            // written (or an over-long one being skipped) is re-read after a restart.
            if let Some(i) = memchr::memrchr(b'\n', data) {
                self.offset = self.pos + i as u64 + 1;
            }
            self.pos += n as u64;
            total += n;
        }
    }
}

fn trim_cr(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// Split `data` (appended after `partial`) into lines. Returns `data.len()`; `partial`
/// keeps the bytes after the last newline (capped: an over-long line is dropped and
/// counted in `too_long`).
fn split_lines_counting(
    data: &[u8],
    partial: &mut Vec<u8>,
    skipping: &mut bool,
    too_long: &mut u64,
    on_line: &mut dyn FnMut(&[u8]),
) {
    let mut rest = data;
    while let Some(p) = memchr::memchr(b'\n', rest) {
        let chunk = &rest[..p];
        if *skipping {
            *skipping = false;
        } else if partial.is_empty() && chunk.len() <= MAX_LINE {
            on_line(trim_cr(chunk));
        } else if partial.len() + chunk.len() <= MAX_LINE {
            partial.extend_from_slice(chunk);
            on_line(trim_cr(partial));
        } else {
            *too_long += 1;
        }
        partial.clear();
        rest = &rest[p + 1..];
    }
    if !rest.is_empty() && !*skipping {
        if partial.len() + rest.len() <= MAX_LINE {
            partial.extend_from_slice(rest);
        } else {
            partial.clear();
            *skipping = true;
            *too_long += 1;
        }
    }
}

/// The rotated predecessor of `path` that still has inode `s.ino`.
fn find_rotated(path: &Path, s: TailState) -> Option<File> {
    let dir = path.parent()?;
    let name = path.file_name()?.to_string_lossy().into_owned();
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n == name || !n.starts_with(&name) || n.ends_with(".gz") {
            continue;
        }
        if let Ok(m) = e.metadata()
            && m.dev() == s.dev
            && m.ino() == s.ino
        {
            return File::open(e.path()).ok();
        }
    }
    None
}

/// Counters of a follower (all its logs).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FollowStats {
    pub lines: u64,
    pub malformed: u64,
    pub too_long: u64,
    pub rotations: u64,
    pub truncations: u64,
    pub recovered_lines: u64,
}

/// The entrance layer live: tailers feeding one detection engine.
pub struct Follower {
    engine: Engine,
    cfg: Arc<EntranceConfig>,
    format: Option<LogFormat>,
    tailers: Vec<Tailer>,
    scratch: parse::Scratch,
    malformed: u64,
}

impl Follower {
    /// Follow `files`, resuming each at its saved state.
    pub fn new(
        files: &[(PathBuf, Option<TailState>)],
        cfg: EntranceConfig,
        format: Option<LogFormat>,
        host: &str,
        lang: Lang,
    ) -> Follower {
        let cfg = Arc::new(cfg);
        Follower {
            engine: Engine::new(Arc::clone(&cfg), host, lang, false, None),
            cfg,
            format,
            tailers: files
                .iter()
                .map(|(p, s)| Tailer::new(p.clone(), *s))
                .collect(),
            scratch: parse::Scratch::default(),
            malformed: 0,
        }
    }

    /// Read what the logs gained, run the detectors (event time from the lines, then
    /// advanced to `now`, Unix seconds) and return the new findings.
    pub fn poll(&mut self, now: i64) -> Vec<Finding> {
        let Follower {
            engine,
            cfg,
            format,
            tailers,
            scratch,
            malformed,
        } = self;
        for t in tailers.iter_mut() {
            t.poll(
                &mut |line| match parse::parse_line(line, *format, &cfg.json_fields, scratch) {
                    Ok(req) => engine.observe(&req),
                    Err(parse::ParseError::Empty) => {}
                    Err(_) => *malformed += 1,
                },
            );
        }
        engine.advance(now);
        engine.take_new()
    }

    /// Positions to persist, per followed path.
    pub fn states(&self) -> Vec<(PathBuf, TailState)> {
        self.tailers
            .iter()
            .filter_map(|t| Some((t.path.clone(), t.state()?)))
            .collect()
    }

    pub fn stats(&self) -> FollowStats {
        let mut s = FollowStats {
            malformed: self.malformed,
            ..Default::default()
        };
        for t in &self.tailers {
            s.lines += t.stats.lines;
            s.too_long += t.stats.too_long;
            s.rotations += t.stats.rotations;
            s.truncations += t.stats.truncations;
            s.recovered_lines += t.stats.recovered_lines;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(p: &Path, s: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    fn lines(t: &mut Tailer) -> Vec<String> {
        let mut out = Vec::new();
        t.poll(&mut |l| out.push(String::from_utf8_lossy(l).into_owned()));
        out
    }

    #[test]
    fn new_log_starts_at_end_then_follows_whole_lines_only() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("access.log");
        append(&p, "old 1\nold 2\n");
        let mut t = Tailer::new(&p, None);
        assert!(lines(&mut t).is_empty(), "history is not replayed");
        append(&p, "a\nb\r\npart");
        assert_eq!(lines(&mut t), ["a", "b"]);
        append(&p, "ial\n");
        assert_eq!(lines(&mut t), ["partial"]);
        assert_eq!(
            t.state().unwrap().offset,
            std::fs::metadata(&p).unwrap().len()
        );
    }

    #[test]
    fn rename_rotation_loses_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("access.log");
        append(&p, "");
        let mut t = Tailer::new(&p, None);
        append(&p, "1\n2\n");
        assert_eq!(lines(&mut t), ["1", "2"]);
        // Written after our last read, then rotated away (logrotate `create`).
        append(&p, "3\n4");
        std::fs::rename(&p, d.path().join("access.log.1")).unwrap();
        append(&p, "5\n");
        assert_eq!(lines(&mut t), ["3", "4", "5"]);
        assert_eq!(t.stats.rotations, 1);
        append(&p, "6\n");
        assert_eq!(lines(&mut t), ["6"]);
    }

    #[test]
    fn copytruncate_is_followed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("access.log");
        append(&p, "");
        let mut t = Tailer::new(&p, None);
        append(&p, "1\n2\n");
        assert_eq!(lines(&mut t), ["1", "2"]);
        std::fs::copy(&p, d.path().join("access.log.1")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&p, "3\n");
        assert_eq!(lines(&mut t), ["3"]);
        assert_eq!(t.stats.truncations, 1);
    }

    #[test]
    fn restart_resumes_at_the_exact_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("access.log");
        append(&p, "");
        let mut t = Tailer::new(&p, None);
        append(&p, "1\n2\nhalf");
        assert_eq!(lines(&mut t), ["1", "2"]);
        let saved = t.state();
        drop(t);
        append(&p, " done\n3\n");
        let mut t = Tailer::new(&p, saved);
        assert_eq!(
            lines(&mut t),
            ["half done", "3"],
            "no line skipped or repeated"
        );
    }

    #[test]
    fn rotation_while_down_reads_the_rotated_tail_first() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("access.log");
        append(&p, "");
        let mut t = Tailer::new(&p, None);
        append(&p, "1\n");
        assert_eq!(lines(&mut t), ["1"]);
        let saved = t.state();
        drop(t);
        append(&p, "2\n3\n");
        std::fs::rename(&p, d.path().join("access.log.1")).unwrap();
        append(&p, "4\n");
        let mut t = Tailer::new(&p, saved);
        assert_eq!(lines(&mut t), ["2", "3", "4"]);
        assert_eq!(t.stats.recovered_lines, 2);
    }

    #[test]
    fn truncated_while_down_starts_over() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("access.log");
        append(&p, "");
        let mut t = Tailer::new(&p, None);
        append(&p, "1\n2\n3\n");
        assert_eq!(lines(&mut t).len(), 3);
        let saved = t.state();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&p, "4\n");
        let mut t = Tailer::new(&p, saved);
        assert_eq!(lines(&mut t), ["4"]);
    }

    #[test]
    fn over_long_and_binary_lines_are_counted_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("access.log");
        append(&p, "");
        let mut t = Tailer::new(&p, None);
        let long = "x".repeat(MAX_LINE + 10);
        append(&p, &format!("a\n{long}\nb\n"));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"\xff\x00\xfe\nc\n")
            .unwrap();
        let got = lines(&mut t);
        assert_eq!(got.first().map(String::as_str), Some("a"));
        assert_eq!(got.last().map(String::as_str), Some("c"));
        assert!(got.contains(&"b".to_string()));
        assert!(!got.iter().any(|l| l.len() > MAX_LINE));
        assert_eq!(t.stats.too_long, 1);
    }

    #[test]
    fn follower_reports_attacks_as_they_are_written() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("access.log");
        append(&p, "");
        let mut f = Follower::new(
            &[(p.clone(), None)],
            EntranceConfig::default(),
            None,
            "shop",
            Lang::En,
        );
        let now = chrono::Utc::now();
        assert!(f.poll(now.timestamp()).is_empty());
        let stamp = now.format("%d/%b/%Y:%H:%M:%S +0000");
        append(
            &p,
            &format!(
                "203.0.113.9 - - [{stamp}] \"GET /products?id=1%27%20UNION%20SELECT%20password%20FROM%20dtb_member-- HTTP/1.1\" 200 512 \"-\" \"sqlmap/1.7\"\n\
                 garbage that is no log line\n"
            ),
        );
        let got = f.poll(now.timestamp());
        assert!(
            got.iter()
                .any(|x| x.kind == mamori_core::Kind::AttackRequest
                    && x.ip.as_deref() == Some("203.0.113.9")),
            "{got:?}"
        );
        assert_eq!(f.stats().malformed, 1);
        // Handed out once only.
        assert!(f.poll(now.timestamp()).is_empty());
        assert_eq!(f.states()[0].1.offset, std::fs::metadata(&p).unwrap().len());
    }
}
