//! Follow mode: tail access logs as they grow (for `mamori watch`), survive rotation by
//! rename and by copytruncate, and resume at the exact byte after a restart.
//!
//! Offsets count only complete lines: a line still being written is re-read from its
//! start after a restart, never half-parsed and never skipped. The saved position is
//! `(dev, ino, offset)`; on restart a log that was rotated while mamori was down is
//! found by its inode among `<log>.1` / `<log>-YYYYMMDD` siblings and its tail read
//! first, so the lines written between the stop and the rotation are not lost.
//!
//! The detectors' memory persists too: [`Follower::save_state`] encodes the engine's
//! state (pruned, versioned, postcard) together with the read positions it corresponds
//! to, and [`FollowOptions::state`] resumes from it. Lines read after that save but
//! before an unclean stop are read again on restart and fed to the detectors with their
//! findings withheld (they were handed out before the stop), so the detectors neither
//! count a line twice nor miss one, and nothing is reported twice.

use crate::MAX_LINE;
use crate::block::{BlockBackend, BlockEntry, BlockError, BotVerifier, DnsBotVerifier};
use crate::config::EntranceConfig;
use crate::engine::{Advice, Engine, Snapshot};
use crate::parse::{self, LogFormat};
use ipnet::IpNet;
use mamori_core::{Finding, Lang};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::engine::SnapshotCounts as StateCounts;

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
    /// (dev, ino) of the backlog file.
    backlog_id: (u64, u64),
    /// Lines up to this position were already read before a restart (see
    /// [`Tailer::resume`]): they are marked `replayed`.
    replay_to: Option<TailState>,
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
            backlog_id: (0, 0),
            replay_to: None,
        };
        t.open_current(saved);
        t
    }

    /// Follow `path` from `saved`, knowing that the lines up to `read_to` (a later
    /// position of the same log, or of the file it was rotated to) were read before the
    /// restart: [`Tailer::poll_marked`] marks them `replayed`. A `read_to` that is not
    /// ahead of `saved` on the files at hand is ignored.
    pub fn resume(
        path: impl Into<PathBuf>,
        saved: Option<TailState>,
        read_to: Option<TailState>,
    ) -> Tailer {
        let path = path.into();
        // Emptied while we were down (copytruncate) below the position read to: the
        // file holds only new lines, even when they reach past the older `saved`
        // position (which alone would not show the truncation).
        if let Some(r) = read_to
            && let Ok(m) = std::fs::metadata(&path)
            && (m.dev(), m.ino()) == (r.dev, r.ino)
            && m.len() < r.offset
        {
            return Tailer::new(path, Some(r));
        }
        let mut t = Tailer::new(path, saved);
        if let (Some(s), Some(r)) = (saved, read_to) {
            let id = (r.dev, r.ino);
            // A log truncated while we were down (copytruncate) holds only new lines:
            // none of them was read before, whatever the old mark says.
            let in_current = t.file.is_some()
                && id == (t.dev, t.ino)
                && t.stats.truncations == 0
                && (t.backlog.is_some() || r.offset > t.offset);
            let in_backlog = t.backlog.is_some() && id == t.backlog_id && r.offset > s.offset;
            if in_current || in_backlog {
                t.replay_to = Some(r);
            }
        }
        t
    }

    /// A file was read to its end without reaching the mark in it (it shrank): what
    /// follows was not read before, whatever file it is in.
    fn forget_mark_in(&mut self, dev: u64, ino: u64) {
        if self.replay_to.is_some_and(|r| (r.dev, r.ino) == (dev, ino)) {
            self.replay_to = None;
        }
    }

    /// Whether the line ending at `end` in file `(dev, ino)` was read before a restart.
    fn replayed(&mut self, dev: u64, ino: u64, end: u64) -> bool {
        let Some(r) = self.replay_to else {
            return false;
        };
        if (r.dev, r.ino) != (dev, ino) {
            // A file before the one holding the mark (the rotated predecessor).
            return true;
        }
        if end >= r.offset {
            self.replay_to = None;
        }
        end <= r.offset
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
                    self.backlog_id = (s.dev, s.ino);
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
        self.poll_marked(&mut |l, _| on_line(l));
    }

    /// [`Tailer::poll`], also telling for each line whether it was read before a restart
    /// (see [`Tailer::resume`]).
    pub fn poll_marked(&mut self, on_line: &mut dyn FnMut(&[u8], bool)) {
        if let Some((mut old, off)) = self.backlog.take()
            && old.seek(SeekFrom::Start(off)).is_ok()
        {
            // Streamed in chunks like the live file: a huge rotated log costs no memory.
            let (mut partial, mut skipping, mut n) = (Vec::new(), false, 0u64);
            let (dev, ino) = self.backlog_id;
            let mut pos = off;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let got = match old.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(got) => got,
                };
                let mut too_long = self.stats.too_long;
                split_lines_counting(
                    &buf[..got],
                    &mut partial,
                    &mut skipping,
                    &mut too_long,
                    &mut |l, end| {
                        n += 1;
                        let r = self.replayed(dev, ino, pos + end as u64);
                        on_line(l, r);
                    },
                );
                self.stats.too_long = too_long;
                pos += got as u64;
            }
            if !partial.is_empty() && !skipping {
                n += 1;
                let r = self.replayed(dev, ino, pos);
                on_line(trim_cr(&partial), r);
            }
            self.stats.recovered_lines += n;
            self.stats.lines += n;
            self.forget_mark_in(dev, ino);
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
                let r = self.replayed(self.dev, self.ino, self.pos);
                on_line(trim_cr(&p), r);
            }
            self.stats.rotations += 1;
            self.forget_mark_in(self.dev, self.ino);
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
        // What was read before a restart lies behind us now.
        self.replay_to = None;
        if let Some(f) = self.file.as_mut()
            && f.seek(SeekFrom::Start(0)).is_ok()
        {
            self.offset = 0;
            self.pos = 0;
            self.partial.clear();
            self.skipping = false;
        }
    }

    fn read_available(&mut self, on_line: &mut dyn FnMut(&[u8], bool)) {
        if self.file.is_none() {
            return;
        }
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0usize;
        let (dev, ino) = (self.dev, self.ino);
        while total < MAX_READ_PER_POLL {
            let Some(f) = self.file.as_mut() else { return };
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let data = &buf[..n];
            let mut lines = 0u64;
            let (mut partial, mut skipping, mut too_long) = (
                std::mem::take(&mut self.partial),
                self.skipping,
                self.stats.too_long,
            );
            let pos = self.pos;
            split_lines_counting(
                data,
                &mut partial,
                &mut skipping,
                &mut too_long,
                &mut |l, end| {
                    lines += 1;
                    let r = self.replayed(dev, ino, pos + end as u64);
                    on_line(l, r);
                },
            );
            self.partial = partial;
            self.skipping = skipping;
            self.stats.too_long = too_long;
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

/// Split `data` (appended after `partial`) into lines; `on_line` gets each line and
/// the index in `data` just after its newline. `partial` keeps the bytes after the last
/// newline (capped: an over-long line is dropped and counted in `too_long`).
fn split_lines_counting(
    data: &[u8],
    partial: &mut Vec<u8>,
    skipping: &mut bool,
    too_long: &mut u64,
    on_line: &mut dyn FnMut(&[u8], usize),
) {
    let mut rest = data;
    let mut at = 0usize;
    while let Some(p) = memchr::memchr(b'\n', rest) {
        let chunk = &rest[..p];
        at += p + 1;
        if *skipping {
            *skipping = false;
        } else if partial.is_empty() && chunk.len() <= MAX_LINE {
            on_line(trim_cr(chunk), at);
        } else if partial.len() + chunk.len() <= MAX_LINE {
            partial.extend_from_slice(chunk);
            on_line(trim_cr(partial), at);
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

/// The envelope of a saved state: magic, then the format version (u16 LE), then postcard.
const STATE_MAGIC: &[u8; 4] = b"MMES";

/// The format version of [`Follower::save_state`]; a state of another version is not
/// read (the detectors start fresh, with a warning naming both versions).
/// 2: campaign memory per IPv4 /24 and /16, IPv6 /64, /48 and /32 (1 had /16 and /32).
pub const STATE_VERSION: u16 = 2;

#[derive(Serialize, Deserialize)]
struct StateWire {
    /// Followed path (raw bytes) and the position the engine has read to.
    tails: Vec<(Vec<u8>, TailState)>,
    engine: Snapshot,
}

/// A saved follower state that could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    #[error("not a saved follow-mode state")]
    NotState,
    #[error(
        "saved state format version {found} is not understood (this mamori reads {STATE_VERSION})"
    )]
    Version { found: u16 },
    #[error("saved state is damaged: {0}")]
    Decode(String),
}

/// What a follower remembers: the detectors' memory and the read positions it covers.
/// Made by [`Follower::save_state`], read by [`FollowState::decode`].
#[derive(Debug, Clone)]
pub struct FollowState {
    tails: Vec<(PathBuf, TailState)>,
    engine: Snapshot,
}

impl FollowState {
    /// Decode saved bytes; any version other than [`STATE_VERSION`] is refused.
    pub fn decode(bytes: &[u8]) -> Result<FollowState, StateError> {
        let Some(rest) = bytes.strip_prefix(STATE_MAGIC) else {
            return Err(StateError::NotState);
        };
        let (Some(v), Some(body)) = (rest.get(..2), rest.get(2..)) else {
            return Err(StateError::NotState);
        };
        let found = u16::from_le_bytes([v[0], v[1]]);
        if found != STATE_VERSION {
            return Err(StateError::Version { found });
        }
        let w: StateWire =
            postcard::from_bytes(body).map_err(|e| StateError::Decode(e.to_string()))?;
        Ok(FollowState {
            tails: w
                .tails
                .into_iter()
                .map(|(p, t)| (PathBuf::from(OsString::from_vec(p)), t))
                .collect(),
            engine: w.engine,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let w = StateWire {
            tails: self
                .tails
                .iter()
                .map(|(p, t)| (p.as_os_str().as_bytes().to_vec(), *t))
                .collect(),
            engine: self.engine.clone(),
        };
        let mut out = Vec::with_capacity(64 * 1024);
        out.extend_from_slice(STATE_MAGIC);
        out.extend_from_slice(&STATE_VERSION.to_le_bytes());
        // Serialising plain data into a Vec cannot fail.
        out.extend(postcard::to_stdvec(&w).unwrap_or_default());
        out
    }

    /// The position the saved detectors had read `path` to.
    pub fn tail(&self, path: &Path) -> Option<TailState> {
        self.tails.iter().find(|(p, _)| p == path).map(|(_, t)| *t)
    }

    /// How much it holds.
    pub fn counts(&self) -> StateCounts {
        self.engine.counts()
    }
}

/// How a [`Follower`] runs; `Default` = detect and report only, fresh memory.
#[derive(Default)]
pub struct FollowOptions {
    /// Force a format instead of per-line detection.
    pub format: Option<LogFormat>,
    /// Block what is found, through this backend ([`Follower::apply_blocks`]), with the
    /// safeguards of `mamori logs --block` (allow-list, learned staff, verified search
    /// bots, shared addresses → [`Follower::take_advice`]).
    pub block: Option<BlockBackend>,
    /// Search-bot verification before a block (`None`: reverse+forward DNS).
    pub bot_verifier: Option<Arc<dyn BotVerifier>>,
    /// Resume the detectors' memory. Followed paths it knows start at its positions;
    /// the positions passed to [`Follower::with_options`] then mark what was already
    /// read (and reported) before the restart: those lines are fed to the detectors
    /// again with their findings withheld.
    pub state: Option<FollowState>,
}

/// The entrance layer live: tailers feeding one detection engine.
pub struct Follower {
    engine: Engine,
    cfg: Arc<EntranceConfig>,
    format: Option<LogFormat>,
    tailers: Vec<Tailer>,
    scratch: parse::Scratch,
    malformed: u64,
    block: Option<BlockBackend>,
    /// Networks last applied through the backend (`None`: never applied).
    applied: Option<Vec<IpNet>>,
    /// Event time before which a failed application is not retried.
    retry_at: i64,
    advice_taken: usize,
    /// Something the saved state would show changed since the last save.
    changed: bool,
}

impl Follower {
    /// Follow `files`, resuming each at its saved state (fresh detector memory, no
    /// blocking): [`Follower::with_options`] with the defaults.
    pub fn new(
        files: &[(PathBuf, Option<TailState>)],
        cfg: EntranceConfig,
        format: Option<LogFormat>,
        host: &str,
        lang: Lang,
    ) -> Follower {
        let opts = FollowOptions {
            format,
            ..Default::default()
        };
        Follower::with_options(files, cfg, host, lang, opts)
    }

    /// Follow `files`, each with the last position read (persisted after every poll).
    pub fn with_options(
        files: &[(PathBuf, Option<TailState>)],
        cfg: EntranceConfig,
        host: &str,
        lang: Lang,
        opts: FollowOptions,
    ) -> Follower {
        let cfg = Arc::new(cfg);
        let verifier: Option<Arc<dyn BotVerifier>> = opts.block.as_ref().map(|_| {
            opts.bot_verifier
                .clone()
                .unwrap_or_else(|| Arc::new(DnsBotVerifier::default()))
        });
        let mut engine = Engine::new(Arc::clone(&cfg), host, lang, opts.block.is_some(), verifier);
        let mut tailers = Vec::new();
        let restored = opts.state.is_some();
        match opts.state {
            Some(state) => {
                for (p, last_read) in files {
                    tailers.push(match state.tail(p) {
                        Some(saved) => Tailer::resume(p.clone(), Some(saved), *last_read),
                        // Not followed when the state was saved.
                        None => Tailer::new(p.clone(), *last_read),
                    });
                }
                engine.restore(state.engine);
            }
            None => {
                for (p, s) in files {
                    tailers.push(Tailer::new(p.clone(), *s));
                }
            }
        }
        Follower {
            // Advice restored with the state was handed out before.
            advice_taken: engine.advice.len(),
            engine,
            cfg,
            format: opts.format,
            tailers,
            scratch: parse::Scratch::default(),
            malformed: 0,
            block: opts.block,
            applied: None,
            retry_at: i64::MIN,
            changed: !restored,
        }
    }

    /// Read what the logs gained, run the detectors (event time from the lines, then
    /// advanced to `now`, Unix seconds) and return the new findings. Lines read before
    /// a restart (see [`FollowOptions::state`]) are fed to the detectors but their
    /// findings withheld.
    pub fn poll(&mut self, now: i64) -> Vec<Finding> {
        let Follower {
            engine,
            cfg,
            format,
            tailers,
            scratch,
            malformed,
            changed,
            ..
        } = self;
        let mut out = Vec::new();
        for t in tailers.iter_mut() {
            t.poll_marked(&mut |line, replayed| {
                *changed = true;
                if replayed {
                    // Hand out what earlier lines made, then drop what this one makes.
                    out.extend(engine.take_new());
                }
                match parse::parse_line(line, *format, &cfg.json_fields, scratch) {
                    Ok(req) => engine.observe(&req),
                    Err(parse::ParseError::Empty) => {}
                    Err(_) => *malformed += 1,
                }
                if replayed {
                    drop(engine.take_new());
                }
            });
        }
        *changed |= engine.advance(now);
        out.extend(engine.take_new());
        *changed |= !out.is_empty();
        out
    }

    /// Positions to persist, per followed path.
    pub fn states(&self) -> Vec<(PathBuf, TailState)> {
        self.tailers
            .iter()
            .filter_map(|t| Some((t.path.clone(), t.state()?)))
            .collect()
    }

    /// Whether the state changed since the last [`Follower::save_state`] (or start).
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// The detectors' memory and the read positions it covers, encoded (versioned,
    /// pruned of expired entries) for the caller to persist in one piece.
    pub fn save_state(&mut self) -> Vec<u8> {
        self.changed = false;
        FollowState {
            tails: self.states(),
            engine: self.engine.snapshot(),
        }
        .encode()
    }

    /// Blocks in force now, with their remaining time.
    pub fn active_blocks(&self) -> Vec<BlockEntry> {
        self.engine.active_blocks()
    }

    /// Apply the active blocks through the backend when they changed since the last
    /// application (always the first time, so blocks restored from a saved state are in
    /// force again and expired ones leave an nginx deny file). `Ok(None)`: nothing to do
    /// (or no backend). A failure is retried a minute later, not every poll.
    pub fn apply_blocks(&mut self) -> Result<Option<String>, BlockError> {
        let Some(backend) = &self.block else {
            return Ok(None);
        };
        let active = self.engine.active_blocks();
        let nets: Vec<IpNet> = active.iter().map(|b| b.net).collect();
        let now = self.engine.now();
        if self.applied.as_ref() == Some(&nets) || now < self.retry_at {
            return Ok(None);
        }
        match backend.replace(&active) {
            Ok(script) => {
                self.applied = Some(nets);
                Ok(Some(script))
            }
            Err(e) => {
                self.retry_at = now.saturating_add(60);
                Err(e)
            }
        }
    }

    /// The backend blocks go through, if any.
    pub fn block_backend(&self) -> Option<&BlockBackend> {
        self.block.as_ref()
    }

    /// Shared addresses (carrier NAT, proxies) that were not blocked, with what to do
    /// instead; each is handed out once.
    pub fn take_advice(&mut self) -> Vec<Advice> {
        let all = &self.engine.advice;
        let new = all.get(self.advice_taken..).unwrap_or_default().to_vec();
        self.advice_taken = all.len();
        new
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

    fn stamp(t: i64) -> String {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .format("%d/%b/%Y:%H:%M:%S +0000")
            .to_string()
    }

    fn login_fail(ip: &str, t: i64) -> String {
        format!(
            "{ip} - - [{}] \"POST /mypage/login HTTP/1.1\" 200 100 \"-\" \"Mozilla/5.0 Chrome/120\"\n",
            stamp(t)
        )
    }

    fn sqli(ip: &str, t: i64) -> String {
        format!(
            "{ip} - - [{}] \"GET /products?id=1%27%20UNION%20SELECT%20password%20FROM%20dtb_member-- HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\"\n",
            stamp(t)
        )
    }

    fn follower(p: &Path, last: Option<TailState>, opts: FollowOptions) -> Follower {
        Follower::with_options(
            &[(p.to_path_buf(), last)],
            EntranceConfig::default(),
            "shop",
            Lang::En,
            opts,
        )
    }

    fn restored(bytes: &[u8]) -> FollowOptions {
        FollowOptions {
            state: Some(FollowState::decode(bytes).unwrap()),
            ..Default::default()
        }
    }

    fn of_kind(v: &[Finding], k: mamori_core::Kind) -> Vec<&Finding> {
        v.iter().filter(|f| f.kind == k).collect()
    }

    #[test]
    fn detector_memory_survives_a_restart() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("access.log");
        append(&p, "");
        let now = chrono::Utc::now().timestamp() - 600;
        let mut f = follower(&p, None, FollowOptions::default());
        for i in 0..6 {
            append(&p, &login_fail(&format!("198.51.100.{i}"), now + i));
        }
        f.poll(now + 10);
        let saved = f.save_state();
        assert!(!f.changed());
        let last = f.states()[0].1;
        drop(f);
        for i in 6..12 {
            append(&p, &login_fail(&format!("198.51.100.{i}"), now + 20 + i));
        }
        // Without the saved memory the second half alone is too small to call.
        let mut fresh = follower(&p, Some(last), FollowOptions::default());
        let got = fresh.poll(now + 40);
        assert!(
            of_kind(&got, mamori_core::Kind::AttackCredentialStuffing).is_empty(),
            "{got:?}"
        );
        drop(fresh);
        let mut f = follower(&p, Some(last), restored(&saved));
        let got = f.poll(now + 40);
        let st = of_kind(&got, mamori_core::Kind::AttackCredentialStuffing);
        assert_eq!(st.len(), 1, "{got:?}");
        let ips = st[0].ips.clone().unwrap();
        assert!(ips.contains(&"198.51.100.0".to_string()), "{ips:?}");
        // The episode starts with the 10th address (the rest join once confirmed).
        assert!(ips.contains(&"198.51.100.9".to_string()), "{ips:?}");
        assert_eq!(ips.len(), 10, "{ips:?}");
    }

    #[test]
    fn lines_read_after_the_save_are_replayed_silently() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("access.log");
        append(&p, "");
        let now = chrono::Utc::now().timestamp();
        let mut f = follower(&p, None, FollowOptions::default());
        append(&p, &sqli("203.0.113.10", now));
        assert_eq!(f.poll(now).len(), 1);
        let saved = f.save_state();
        append(&p, &sqli("203.0.113.11", now));
        assert_eq!(f.poll(now).len(), 1);
        // What the store holds after each poll; then the process dies (no second save).
        let last = f.states()[0].1;
        drop(f);
        append(&p, &sqli("203.0.113.12", now));
        let mut f = follower(&p, Some(last), restored(&saved));
        let got = f.poll(now);
        let ips: Vec<_> = got.iter().filter_map(|x| x.ip.clone()).collect();
        assert_eq!(ips, ["203.0.113.12"], "{got:?}");
        // .11 was fed to the detectors during the replay: not reported as new again.
        append(&p, &sqli("203.0.113.11", now));
        assert!(f.poll(now).is_empty());
        assert_eq!(f.states()[0].1.offset, std::fs::metadata(&p).unwrap().len());
    }

    /// A follower of a new log in `dir` that read one attack, and the state it saved
    /// then: (log, now, follower, state).
    fn saved_after_one(dir: &Path) -> (PathBuf, i64, Follower, Vec<u8>) {
        let p = dir.join("access.log");
        append(&p, "");
        let now = chrono::Utc::now().timestamp();
        let mut f = follower(&p, None, FollowOptions::default());
        append(&p, &sqli("203.0.113.10", now));
        f.poll(now);
        let saved = f.save_state();
        (p, now, f, saved)
    }

    #[test]
    fn replay_follows_a_rotation_between_save_and_stop() {
        let d = tempfile::tempdir().unwrap();
        let (p, now, mut f, saved) = saved_after_one(d.path());
        append(&p, &sqli("203.0.113.11", now));
        std::fs::rename(&p, d.path().join("access.log.1")).unwrap();
        append(&p, &sqli("203.0.113.12", now));
        assert_eq!(f.poll(now).len(), 2);
        let last = f.states()[0].1;
        drop(f);
        append(&p, &sqli("203.0.113.13", now));
        let mut f = follower(&p, Some(last), restored(&saved));
        let got = f.poll(now);
        let ips: Vec<_> = got.iter().filter_map(|x| x.ip.clone()).collect();
        assert_eq!(ips, ["203.0.113.13"], "{got:?}");
    }

    #[test]
    fn a_log_truncated_while_down_is_read_as_new() {
        let d = tempfile::tempdir().unwrap();
        let (p, now, mut f, saved) = saved_after_one(d.path());
        append(&p, &sqli("203.0.113.11", now));
        append(&p, &sqli("203.0.113.12", now));
        f.poll(now);
        let last = f.states()[0].1;
        drop(f);
        // copytruncate while down; fewer bytes written since than were read before.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&p, &sqli("203.0.113.13", now));
        let mut f = follower(&p, Some(last), restored(&saved));
        let got = f.poll(now);
        let ips: Vec<_> = got.iter().filter_map(|x| x.ip.clone()).collect();
        assert_eq!(
            ips,
            ["203.0.113.13"],
            "a new line is never taken for a replay: {got:?}"
        );
    }

    #[test]
    fn unusable_states_are_refused_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("access.log");
        append(&p, "");
        let mut f = follower(&p, None, FollowOptions::default());
        let good = f.save_state();
        assert!(FollowState::decode(&good).is_ok());
        assert!(matches!(
            FollowState::decode(b"{}"),
            Err(StateError::NotState)
        ));
        let mut v2 = good.clone();
        v2[4] = 99;
        assert!(matches!(
            FollowState::decode(&v2),
            Err(StateError::Version { found: 99 })
        ));
        // A state saved by version 1 (campaign prefixes /16 and /32 only) is refused
        // with a message naming both versions; the detectors then start fresh.
        let mut v1 = good.clone();
        v1[4..6].copy_from_slice(&1u16.to_le_bytes());
        let e = FollowState::decode(&v1).unwrap_err();
        assert_eq!(e, StateError::Version { found: 1 });
        assert_eq!(
            e.to_string(),
            format!(
                "saved state format version 1 is not understood (this mamori reads {STATE_VERSION})"
            )
        );
        assert!(matches!(
            FollowState::decode(&good[..good.len() / 2]),
            Err(StateError::Decode(_))
        ));
        let mut junk = good[..6].to_vec();
        junk.extend([0xff; 40]);
        assert!(FollowState::decode(&junk).is_err());
    }

    #[test]
    fn live_blocking_with_safeguards_restart_and_expiry() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("access.log");
        let deny = d.path().join("deny.conf");
        append(&p, "");
        let cfg = EntranceConfig {
            allow: vec!["192.0.2.0/24".parse().unwrap()],
            ..Default::default()
        };
        let opts = || FollowOptions {
            block: Some(BlockBackend::NginxDeny { path: deny.clone() }),
            bot_verifier: Some(Arc::new(crate::NoBotVerifier)),
            ..Default::default()
        };
        let mk = |last, o| {
            Follower::with_options(&[(p.clone(), last)], cfg.clone(), "shop", Lang::En, o)
        };
        let now = chrono::Utc::now().timestamp();
        let mut f = mk(None, opts());
        for ip in ["203.0.113.7", "192.0.2.10", "100.64.3.3"] {
            for i in 0..6 {
                append(
                    &p,
                    &format!(
                        "{ip} - - [{}] \"POST /shopping/checkout HTTP/1.1\" 200 100 \"-\" \"Mozilla/5.0 Chrome/120\"\n",
                        stamp(now + i * 10)
                    ),
                );
            }
        }
        let got = f.poll(now + 60);
        let added = of_kind(&got, mamori_core::Kind::BlockAdded);
        assert_eq!(added.len(), 1, "{got:?}");
        assert_eq!(added[0].ip.as_deref(), Some("203.0.113.7/32"));
        let advice = f.take_advice();
        assert_eq!(advice.len(), 1, "carrier NAT gets advice: {advice:?}");
        assert_eq!(advice[0].ip, "100.64.3.3");
        assert!(f.take_advice().is_empty());
        let body = f.apply_blocks().unwrap().expect("applied");
        assert!(body.contains("deny 203.0.113.7/32;"), "{body}");
        assert!(!body.contains("192.0.2.10"), "{body}");
        assert_eq!(f.apply_blocks().unwrap(), None, "unchanged: not re-applied");
        // Restart: the block is still in force, applied again from the saved state.
        let saved = f.save_state();
        let last = f.states()[0].1;
        drop(f);
        std::fs::remove_file(&deny).unwrap();
        let mut o = opts();
        o.state = Some(FollowState::decode(&saved).unwrap());
        let mut f = mk(Some(last), o);
        assert!(f.poll(now + 120).is_empty(), "nothing reported twice");
        assert!(f.take_advice().is_empty(), "advice not repeated");
        assert_eq!(f.active_blocks().len(), 1);
        f.apply_blocks().unwrap().expect("applied after restart");
        assert!(
            std::fs::read_to_string(&deny)
                .unwrap()
                .contains("203.0.113.7/32")
        );
        // A day later the block expires.
        let got = f.poll(now + 25 * 3600);
        assert_eq!(
            of_kind(&got, mamori_core::Kind::BlockRemoved).len(),
            1,
            "{got:?}"
        );
        f.apply_blocks().unwrap().expect("applied after expiry");
        assert!(
            !std::fs::read_to_string(&deny)
                .unwrap()
                .contains("203.0.113.7")
        );
    }
}
