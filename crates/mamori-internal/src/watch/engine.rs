//! The state of a running watch: the baseline per root, what was already reported, and
//! the per-path examination shared by events and sweeps.

use super::{Event, EventKind};
use crate::check::{self, CheckOptions, CopyFn, Obs};
use crate::error::Warning;
use crate::rules::RootRules;
use crate::walk::Item;
use hashbrown::HashTable;
use mamori_core::store::{BaselineEntry, FileType};
use mamori_core::{Finding, Kind};
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

struct RootState {
    rules: Arc<RootRules>,
    key: String,
    /// The root's baseline, packed ([`Packed`]): a `BaselineEntry` is ~200 bytes plus two
    /// allocations, ~26 MiB for a 100k-file shop; packed it is about half of that.
    entries: Packed,
    /// Positions in `entries`, hashed by path: the paths are not stored twice (on a
    /// 100k-file shop this saves ~10 MiB of a daemon that runs for months).
    index: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
}

/// No link target, no SHA-256 (in [`Slim`]).
const NONE: u32 = u32::MAX;

/// One baseline entry as the engine keeps it: no root (the [`RootState`] has it), path
/// and link target in the root's name arena, the rare SHA-256 (critical files only) in a
/// side table.
#[derive(Clone, Copy)]
struct Slim {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    dev: u64,
    blake3: [u8; 32],
    /// Where the path and the link target start in [`Packed::names`].
    path_at: usize,
    link_at: usize,
    path_len: u32,
    /// [`NONE`]: no link target.
    link_len: u32,
    /// Position in [`Packed::sha256`], or [`NONE`].
    sha256: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    flags: u32,
    ftype: FileType,
    has_blake3: bool,
}

/// A root's baseline entries, packed (see [`Slim`]).
#[derive(Default)]
struct Packed {
    slims: Vec<Slim>,
    names: Vec<u8>,
    sha256: Vec<[u8; 32]>,
}

impl Packed {
    fn push(&mut self, e: BaselineEntry) {
        let path_at = self.names.len();
        self.names.extend_from_slice(&e.path);
        let link_at = self.names.len();
        let link_len = match &e.link {
            Some(l) => {
                self.names.extend_from_slice(l);
                l.len() as u32
            }
            None => NONE,
        };
        let sha256 = match e.sha256 {
            Some(h) => {
                self.sha256.push(h);
                (self.sha256.len() - 1) as u32
            }
            None => NONE,
        };
        self.slims.push(Slim {
            size: e.size,
            mtime_ns: e.mtime_ns,
            ctime_ns: e.ctime_ns,
            ino: e.ino,
            dev: e.dev,
            blake3: e.blake3.unwrap_or_default(),
            path_at,
            link_at,
            path_len: e.path.len() as u32,
            link_len,
            sha256,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            flags: e.flags,
            ftype: e.ftype,
            has_blake3: e.blake3.is_some(),
        });
    }

    fn len(&self) -> usize {
        self.slims.len()
    }

    fn path(&self, i: usize) -> &[u8] {
        let s = &self.slims[i];
        &self.names[s.path_at..s.path_at + s.path_len as usize]
    }

    /// Entry `i` as a `BaselineEntry` with `root`.
    fn get(&self, i: usize, root: &str) -> BaselineEntry {
        let s = &self.slims[i];
        BaselineEntry {
            root: root.to_owned(),
            path: self.path(i).to_vec(),
            ftype: s.ftype,
            size: s.size,
            mode: s.mode,
            uid: s.uid,
            gid: s.gid,
            mtime_ns: s.mtime_ns,
            ctime_ns: s.ctime_ns,
            ino: s.ino,
            dev: s.dev,
            blake3: s.has_blake3.then_some(s.blake3),
            sha256: (s.sha256 != NONE).then(|| self.sha256[s.sha256 as usize]),
            flags: s.flags,
            link: (s.link_len != NONE)
                .then(|| self.names[s.link_at..s.link_at + s.link_len as usize].to_vec()),
        }
    }

    fn shrink_to_fit(&mut self) {
        self.slims.shrink_to_fit();
        self.names.shrink_to_fit();
        self.sha256.shrink_to_fit();
    }
}

impl RootState {
    /// Entry `i` for use outside the engine, with its root.
    fn entry_out(&self, i: usize) -> BaselineEntry {
        self.entries.get(i, &self.key)
    }

    fn find(&self, rel: &[u8]) -> Option<usize> {
        let h = self.hasher.hash_one(rel);
        self.index
            .find(h, |&i| self.entries.path(i as usize) == rel)
            .map(|&i| i as usize)
    }
}

/// Fills an [`Engine`] from a baseline streamed out of the store, entry by entry, so that
/// the unpacked baseline is never all in memory.
pub struct EngineBuilder {
    rules: Vec<Arc<RootRules>>,
    keys: Vec<String>,
    roots: Vec<Packed>,
    last: usize,
}

impl EngineBuilder {
    pub fn new(rules: &[Arc<RootRules>]) -> EngineBuilder {
        EngineBuilder {
            rules: rules.to_vec(),
            keys: rules.iter().map(|r| r.key()).collect(),
            roots: rules.iter().map(|_| Packed::default()).collect(),
            last: 0,
        }
    }

    /// Which root an entry belongs to (by its `root` key), if it is one of the rules'.
    pub fn root_of(&mut self, e: &BaselineEntry) -> Option<usize> {
        if self.keys.get(self.last) != Some(&e.root) {
            self.last = self.keys.iter().position(|k| *k == e.root)?;
        }
        Some(self.last)
    }

    /// Add an entry; one of a root not in the rules is left out.
    pub fn push(&mut self, e: BaselineEntry) {
        if let Some(i) = self.root_of(&e) {
            self.roots[i].push(e);
        }
    }

    pub fn finish(self) -> Engine {
        let mut roots: Vec<RootState> = self
            .rules
            .into_iter()
            .zip(self.keys)
            .zip(self.roots)
            .map(|((rules, key), entries)| RootState {
                rules,
                key,
                entries,
                index: HashTable::new(),
                hasher: foldhash::fast::FixedState::default(),
            })
            .collect();
        for r in &mut roots {
            r.entries.shrink_to_fit();
            r.index.reserve(r.entries.len(), |_| 0);
            let RootState {
                entries,
                index,
                hasher,
                ..
            } = r;
            for i in 0..entries.len() {
                let h = hasher.hash_one(entries.path(i));
                index.insert_unique(h, i as u32, |&j| hasher.hash_one(entries.path(j as usize)));
            }
        }
        Engine {
            roots,
            reported: HashMap::new(),
            growth: HashMap::new(),
            grown: Vec::new(),
            repeat_after: Duration::from_secs(60),
        }
    }
}

/// The last report per path: what state it described, and when.
struct Reported {
    kind: Kind,
    /// The reported state: 128 bits of BLAKE3 of its [`fingerprint`] (a 10,000-file
    /// burst keeps 10,000 of these for as long as the daemon runs).
    state: [u8; 16],
    at: Instant,
}

/// How a file has grown while watched: appends (the old content kept as the prefix) since
/// `since`. A skimmer stashes cards this way, a line per checkout, in a file under the web
/// root that the attacker fetches later; caches, logs and sessions are ignored paths.
struct Growth {
    size: u64,
    /// BLAKE3 of the whole content when last seen, 128 bits (to tell an append from a
    /// rewrite).
    hash: [u8; 16],
    appends: u32,
    first_size: u64,
    since: chrono::DateTime<chrono::Utc>,
    at: Instant,
    reported: bool,
}

/// Appends that make a file "keep growing", within [`GROWTH_WINDOW`].
const GROWTH_APPENDS: u32 = 3;
const GROWTH_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Files tracked at most (the oldest are dropped first); files larger than
/// [`GROWTH_MAX_SIZE`] are not tracked (they are read whole at each write).
const GROWTH_TRACKED: usize = 10_000;
const GROWTH_MAX_SIZE: u64 = 64 << 20;
/// Reports remembered at most (~65 bytes each).
const REPORTED_KEPT: usize = 100_000;

/// A path of a root as a map key: 128 bits of BLAKE3 of (root, path), 16 bytes where
/// the path itself would be a `Vec` (24 bytes and an allocation) per tracked file.
type PathKey = u128;

fn path_key(root: usize, rel: &[u8]) -> PathKey {
    let mut h = blake3::Hasher::new();
    h.update(&(root as u64).to_le_bytes());
    h.update(rel);
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.finalize().as_bytes()[..16]);
    u128::from_le_bytes(k)
}

/// Drop the older half of `map` (by `at`) once it holds `max` entries and `key` is new.
fn make_room<V>(
    map: &mut HashMap<PathKey, V>,
    key: &PathKey,
    max: usize,
    at: impl Fn(&V) -> Instant,
) {
    if map.len() < max || map.contains_key(key) {
        return;
    }
    let mut ats: Vec<Instant> = map.values().map(&at).collect();
    ats.sort_unstable();
    let cut = ats[ats.len() / 2];
    map.retain(|_, v| at(v) > cut);
    map.shrink_to_fit();
}

pub struct Engine {
    roots: Vec<RootState>,
    /// At most [`REPORTED_KEPT`] (the oldest half is forgotten beyond that: a later sweep
    /// may then report such a path again, never less).
    reported: HashMap<PathKey, Reported>,
    growth: HashMap<PathKey, Growth>,
    /// `data.growing` findings not yet taken by the daemon ([`Engine::take_grown`]).
    grown: Vec<Finding>,
    /// The same changed state is not reported again; a path that keeps changing is
    /// reported at most once per this interval.
    pub repeat_after: Duration,
}

/// A sweep under way ([`Engine::sweep_start`]): per root, the changes and the baseline
/// positions of what is gone, not yet turned into findings.
pub struct Sweep {
    late: bool,
    roots: Vec<(usize, std::vec::IntoIter<Obs>, std::vec::IntoIter<usize>)>,
}

impl Sweep {
    /// Every finding of the sweep was handed out.
    pub fn is_done(&self) -> bool {
        self.roots.is_empty()
    }
}

/// A finding with what the responder needs to act on it.
pub struct Detected {
    pub finding: Finding,
    pub root: usize,
    /// The baseline entry of a modified or deleted path.
    pub entry: Option<BaselineEntry>,
    pub abs: std::path::PathBuf,
    /// The path was already reported in the same way (same kind) less than
    /// `repeat_after` ago and has changed again since: the daemon keeps quiet about the
    /// change itself but still looks at the new content (a file created empty and filled
    /// a moment later must not escape the scan), and acts on payment code as always.
    pub repeat: bool,
}

/// The state a finding reports (content, mode, owner, link target).
fn fingerprint(f: &Finding) -> [u8; 16] {
    let n = &f.evidence["new"];
    let s = format!(
        "{}|{}|{}|{}|{}",
        n["blake3"], n["mode"], n["uid"], n["gid"], n["link"]
    );
    let mut out = [0u8; 16];
    out.copy_from_slice(&blake3::hash(s.as_bytes()).as_bytes()[..16]);
    out
}

impl Engine {
    /// An engine from a loaded baseline (entries of roots not in `rules` are left out).
    /// The daemon streams the store into an [`EngineBuilder`] instead.
    pub fn new(rules: &[Arc<RootRules>], baseline: Vec<BaselineEntry>) -> Engine {
        let mut b = EngineBuilder::new(rules);
        for e in baseline {
            b.push(e);
        }
        b.finish()
    }

    pub fn entries(&self) -> usize {
        self.roots.iter().map(|r| r.entries.len()).sum()
    }

    pub fn root_rules(&self, i: usize) -> &Arc<RootRules> {
        &self.roots[i].rules
    }

    fn root_of(&self, abs: &Path) -> Option<(usize, &RootState)> {
        self.roots
            .iter()
            .enumerate()
            .filter(|(_, r)| abs.starts_with(&r.rules.root))
            .max_by_key(|(_, r)| r.rules.root.as_os_str().len())
    }

    /// Whether an event path is worth examining at all (inside a root, not ignored).
    pub fn relevant(&self, abs: &Path) -> bool {
        let Some((_, r)) = self.root_of(abs) else {
            return false;
        };
        let Ok(rel) = abs.strip_prefix(&r.rules.root) else {
            return false;
        };
        !(r.rules.is_ignored(rel, false) && r.rules.is_ignored(rel, true))
    }

    /// Examine one path after an event.
    pub fn on_event(
        &mut self,
        ev: &Event,
        copy: &CopyFn<'_>,
        opts: &CheckOptions<'_>,
    ) -> Result<Option<Detected>, Warning> {
        if ev.kind == EventKind::Overflow {
            return Ok(None);
        }
        let Some((ri, _)) = self.root_of(&ev.path) else {
            return Ok(None);
        };
        let r = &self.roots[ri];
        let Ok(rel) = ev.path.strip_prefix(&r.rules.root) else {
            return Ok(None);
        };
        let rel_b = rel.as_os_str().as_bytes();
        let key = path_key(ri, rel_b);
        let base = r.find(rel_b).map(|i| (i, r.entry_out(i)));
        let meta = match std::fs::symlink_metadata(&ev.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some((_, old)) = base else {
                    return Ok(None);
                };
                if old.ftype == FileType::Dir || r.rules.is_ignored(rel, false) {
                    return Ok(None);
                }
                let f = check::deleted(&r.key, &old, opts);
                return Ok(self.dedupe(ri, key, f, Some(old), ev));
            }
            Err(e) => {
                return Err(Warning {
                    path: rel.to_string_lossy().into_owned(),
                    kind: crate::error::WarnKind::Unreadable(e.to_string()),
                });
            }
        };
        if r.rules.is_ignored(rel, meta.is_dir()) {
            return Ok(None);
        }
        let item = Item {
            rel,
            abs: &ev.path,
            meta,
        };
        let (a, b) = (AtomicU64::new(0), AtomicU64::new(0));
        let obs = check::observe(
            &r.rules,
            &r.key,
            &item,
            base.as_ref().map(|(i, e)| (*i, e)),
            opts,
            &a,
            &b,
        )?;
        let Some(obs) = obs else {
            // Back to the known-good state: forget earlier reports of this path.
            self.reported.remove(&key);
            return Ok(None);
        };
        let entry = match &obs {
            Obs::Changed { .. } => base.map(|(_, e)| e),
            Obs::Added { .. } => None,
        };
        let f = match &entry {
            // The only index an observation of this path can name is its own.
            Some(e) => check::finding_for(&r.rules, &r.key, &obs, |_| Cow::Borrowed(e), copy, opts),
            None => check::finding_for(
                &r.rules,
                &r.key,
                &obs,
                |i| Cow::Owned(r.entry_out(i)),
                copy,
                opts,
            ),
        };
        Ok(self.dedupe(ri, key, f, entry, ev))
    }

    fn dedupe(
        &mut self,
        ri: usize,
        key: PathKey,
        mut f: Finding,
        entry: Option<BaselineEntry>,
        ev: &Event,
    ) -> Option<Detected> {
        let state = fingerprint(&f);
        let now = Instant::now();
        let mut repeat = false;
        let mut at = now;
        if let Some(prev) = self.reported.get(&key)
            && prev.kind == f.kind
        {
            if prev.state == state {
                return None;
            }
            if now.duration_since(prev.at) < self.repeat_after {
                repeat = true;
                at = prev.at;
            }
        }
        make_room(&mut self.reported, &key, REPORTED_KEPT, |r| r.at);
        self.reported.insert(
            key,
            Reported {
                kind: f.kind,
                state,
                at,
            },
        );
        if let Some(w) = &ev.writer {
            f.evidence["writer"] = (*w.facts).clone();
        }
        Some(Detected {
            finding: f,
            root: ri,
            entry,
            abs: ev.path.clone(),
            repeat,
        })
    }

    /// Start a full sweep of every root (start-up, overflow, polling): walk them and
    /// compare with the baseline; [`Engine::sweep_next`] then hands out the findings a
    /// batch at a time, so that a sweep after 10,000 changes never holds 10,000 findings
    /// (~40 MiB with their evidence) at once. `late` marks them as found by a sweep
    /// rather than by an event.
    pub fn sweep_start(&self, opts: &CheckOptions<'_>, late: bool) -> (Sweep, Vec<Warning>) {
        let mut roots = Vec::new();
        let mut warnings = Vec::new();
        for (ri, r) in self.roots.iter().enumerate() {
            // The engine's own index, not a second one built for the sweep.
            let base = check::RootBaseline {
                len: r.entries.len(),
                entry: |i| Cow::Owned(r.entry_out(i)),
                find: |p: &[u8]| r.find(p),
            };
            let ro = check::observe_root(&r.rules, &base, opts, &AtomicU64::new(0));
            warnings.extend(ro.warnings);
            if !ro.obs.is_empty() || !ro.gone.is_empty() {
                roots.push((ri, ro.obs.into_iter(), ro.gone.into_iter()));
            }
        }
        (Sweep { late, roots }, warnings)
    }

    /// Up to `max` findings of a sweep (fewer, even none, while it is not
    /// [`Sweep::is_done`]: what was already reported in the same state is not repeated).
    pub fn sweep_next(
        &mut self,
        s: &mut Sweep,
        copy: &CopyFn<'_>,
        opts: &CheckOptions<'_>,
        max: usize,
    ) -> Vec<Detected> {
        let mut det = Vec::new();
        let mut made = 0;
        while made < max {
            let Some((ri, obs, gone)) = s.roots.first_mut() else {
                break;
            };
            let ri = *ri;
            let r = &self.roots[ri];
            let (mut f, entry, rel) = if let Some(o) = obs.next() {
                let (entry, rel) = match &o {
                    Obs::Changed { idx, new, .. } => (Some(r.entry_out(*idx)), new.path.clone()),
                    Obs::Added { new, .. } => (None, new.path.clone()),
                };
                let f = match &entry {
                    // The only index an observation names is its own entry's.
                    Some(e) => {
                        check::finding_for(&r.rules, &r.key, &o, |_| Cow::Borrowed(e), copy, opts)
                    }
                    None => check::finding_for(
                        &r.rules,
                        &r.key,
                        &o,
                        |i| Cow::Owned(r.entry_out(i)),
                        copy,
                        opts,
                    ),
                };
                (f, entry, rel)
            } else if let Some(i) = gone.next() {
                let e = r.entry_out(i);
                let rel = e.path.clone();
                (check::deleted(&r.key, &e, opts), Some(e), rel)
            } else {
                s.roots.remove(0);
                continue;
            };
            made += 1;
            if s.late {
                f.evidence["late"] = serde_json::json!(true);
            }
            let ev = Event {
                path: r.rules.root.join(std::ffi::OsStr::from_bytes(&rel)),
                kind: EventKind::Changed,
                writer: None,
            };
            if let Some(d) = self.dedupe(ri, path_key(ri, &rel), f, entry, &ev) {
                det.push(d);
            }
        }
        det
    }

    /// Follow the size of the file of an event (after the event was examined and acted
    /// on, so that a restore never waits for it); see [`Engine::take_grown`].
    pub fn watch_growth(&mut self, ev: &Event, opts: &CheckOptions<'_>) {
        if ev.kind == EventKind::Overflow || ev.kind == EventKind::Removed {
            return;
        }
        let Some((ri, r)) = self.root_of(&ev.path) else {
            return;
        };
        let Ok(rel) = ev.path.strip_prefix(&r.rules.root) else {
            return;
        };
        let Ok(meta) = std::fs::symlink_metadata(&ev.path) else {
            return;
        };
        if !meta.is_file() || r.rules.is_ignored(rel, false) {
            return;
        }
        let key = path_key(ri, rel.as_os_str().as_bytes());
        let rel_s = rel.to_string_lossy().into_owned();
        self.track_growth(key, &ev.path, &rel_s, meta.len(), opts);
    }

    /// `data.growing` findings made since the last call.
    pub fn take_grown(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.grown)
    }

    /// Follow one file's size: an append (the old content is the new one's prefix) counts;
    /// a rewrite, a shrink or a quiet day starts over. The third append within a day is
    /// reported once (medium: a heuristic; logs and caches are ignored paths).
    fn track_growth(
        &mut self,
        key: PathKey,
        abs: &Path,
        rel: &str,
        size: u64,
        opts: &CheckOptions<'_>,
    ) {
        if size > GROWTH_MAX_SIZE {
            self.growth.remove(&key);
            return;
        }
        let prev = self.growth.get(&key).map(|g| g.size);
        if prev == Some(size) {
            return;
        }
        // One pass: the hash of the old length's prefix, and of the whole.
        let Some((prefix, whole)) = hash_with_prefix(abs, prev.unwrap_or(0)) else {
            return;
        };
        let now = Instant::now();
        let appended = match self.growth.get(&key) {
            Some(g) => size > g.size && prefix == Some(g.hash),
            None => false,
        };
        // Drop the quietest half rather than grow without bound.
        make_room(&mut self.growth, &key, GROWTH_TRACKED, |g| g.at);
        let g = self.growth.entry(key).or_insert_with(|| Growth {
            size,
            hash: whole,
            appends: 0,
            first_size: size,
            since: chrono::Utc::now(),
            at: now,
            reported: false,
        });
        if appended && now.duration_since(g.at) <= GROWTH_WINDOW {
            if g.appends == 0 {
                g.first_size = g.size;
                g.since = chrono::Utc::now();
            }
            g.appends += 1;
        } else if g.size != size || g.hash != whole {
            // Rewritten, shrunk, or quiet too long: start over from here.
            g.appends = 0;
            g.first_size = size;
            g.since = chrono::Utc::now();
        }
        g.size = size;
        g.hash = whole;
        g.at = now;
        if g.appends >= GROWTH_APPENDS && !g.reported {
            g.reported = true;
            let (n, first, since) = (g.appends, g.first_size, g.since);
            let since_s = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let f = Finding::new(
                Kind::DataGrowing,
                mamori_core::Severity::Medium,
                chrono::Utc::now(),
                opts.host,
                mamori_core::tr!(
                    opts.lang,
                    "{rel} keeps growing: appended to {n} times since {since_s} ({first} → {size} bytes); skimmers stash stolen cards this way, a line per checkout, in a file the attacker fetches later",
                    "{rel} が増え続けています: {since_s} 以降 {n} 回追記されました ({first} → {size} バイト)。スキマーは盗んだカード情報をこのように 1 件ずつファイルにため、後で攻撃者が取りに来ます"
                ),
            )
            .with_path(rel)
            .with_checklist(&["20-1.1"])
            .with_evidence(serde_json::json!({
                "appends": n,
                "first_size": first,
                "size": size,
                "since": since_s,
            }));
            self.grown.push(f);
        }
    }

    /// After a restore: the path is known-good again.
    pub fn forget(&mut self, root: usize, abs: &Path) {
        if let Ok(rel) = abs.strip_prefix(&self.roots[root].rules.root) {
            self.reported
                .remove(&path_key(root, rel.as_os_str().as_bytes()));
        }
    }
}

/// BLAKE3 of the first `prefix_len` bytes of `path` (None if it is shorter) and of the
/// whole file (128 bits each), in one read. None if it cannot be read.
fn hash_with_prefix(path: &Path, prefix_len: u64) -> Option<(Option<[u8; 16]>, [u8; 16])> {
    let h128 = |h: blake3::Hash| {
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.as_bytes()[..16]);
        out
    };
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    let mut prefix = (prefix_len == 0).then(|| h128(blake3::hash(b"")));
    loop {
        let want = if prefix.is_none() {
            (prefix_len - done).min(buf.len() as u64) as usize
        } else {
            buf.len()
        };
        let n = f.read(&mut buf[..want]).ok()?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        done += n as u64;
        if prefix.is_none() && done == prefix_len {
            prefix = Some(h128(h.finalize()));
        }
    }
    Some((prefix, h128(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_core::config::BaselineConfig;
    use mamori_core::i18n::Lang;

    /// Run `f` on a close event for `p` with test options.
    fn closed<T>(p: &Path, f: impl FnOnce(&Event, &CheckOptions<'_>) -> T) -> T {
        let cfg = BaselineConfig::default();
        let opts = CheckOptions {
            cfg: &cfg,
            full: false,
            host: "h",
            lang: Lang::En,
            diff_lines: 10,
        };
        let ev = Event {
            path: p.to_path_buf(),
            kind: EventKind::Closed,
            writer: None,
        };
        f(&ev, &opts)
    }

    fn event(e: &mut Engine, p: &Path) -> Option<Detected> {
        closed(p, |ev, opts| e.on_event(ev, &|_, _| None, opts).unwrap())
    }

    #[test]
    fn a_file_filled_after_its_report_is_looked_at_again() {
        let (d, rules) = crate::check::tests::setup();
        let root = d.path().join("shop");
        let cfg = BaselineConfig::default();
        let built = crate::baseline::build(
            std::slice::from_ref(&rules),
            &cfg,
            &std::sync::atomic::AtomicU64::new(0),
        );
        let mut e = Engine::new(&[rules], built.entries);

        // Created empty: reported.
        let new = root.join("vendor/cache.php");
        std::fs::write(&new, "").unwrap();
        let first = event(&mut e, &new).expect("the new file is reported");
        assert_eq!(first.finding.kind, Kind::FileAdded);
        assert!(!first.repeat);
        // The same state again: nothing.
        assert!(event(&mut e, &new).is_none());
        // Filled a moment later: handed back as a repeat, so its content is scanned.
        std::fs::write(&new, "<?php eval($_POST['c']);\n").unwrap();
        let again = event(&mut e, &new).expect("new content is looked at");
        assert!(again.repeat);
        // Gone: a different kind of change is never a repeat.
        std::fs::remove_file(&new).unwrap();
        assert!(
            event(&mut e, &new).is_none(),
            "an unbaselined file that vanished"
        );
        // Payment code modified: reported, not a repeat.
        let pay = root.join("app/Plugin/Payment/CardPayment.php");
        std::fs::write(&pay, "<?php // skim\n").unwrap();
        let m = event(&mut e, &pay).expect("payment code change");
        assert_eq!(m.finding.kind, Kind::FileModified);
        assert!(!m.repeat);
    }

    #[test]
    fn packed_entries_come_back_as_they_went_in() {
        let (d, rules) = crate::check::tests::setup();
        let root = d.path().join("shop");
        std::os::unix::fs::symlink("../vendor/a.php", root.join("app/link.php")).unwrap();
        std::fs::write(root.join("vendor/\u{65e5}\u{672c}.php"), "<?php\n").unwrap();
        let cfg = BaselineConfig::default();
        let built = crate::baseline::build(
            std::slice::from_ref(&rules),
            &cfg,
            &std::sync::atomic::AtomicU64::new(0),
        );
        let mut want = built.entries.clone();
        want.sort_by(|a, b| a.path.cmp(&b.path));
        // Each kind the packing treats apart is in the tree.
        assert!(want.iter().any(|e| e.link.is_some()), "a symlink");
        assert!(want.iter().any(|e| e.sha256.is_some()), "a critical file");
        assert!(want.iter().any(|e| e.blake3.is_none()), "a directory");
        let e = Engine::new(&[rules], built.entries);
        let r = &e.roots[0];
        let mut got: Vec<BaselineEntry> = (0..r.entries.len()).map(|i| r.entry_out(i)).collect();
        got.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(got, want);
        for (i, w) in want.iter().enumerate() {
            let at = r.find(&w.path).expect("indexed");
            assert_eq!(r.entry_out(at), want[i]);
        }
        assert_eq!(r.find(b"vendor/none.php"), None);
    }

    #[test]
    fn a_sweep_hands_out_its_findings_a_batch_at_a_time_and_once() {
        use std::os::unix::ffi::OsStrExt;
        let (d, rules) = crate::check::tests::setup();
        let root = d.path().join("shop");
        std::fs::write(root.join("vendor/b.php"), "<?php // b\n").unwrap();
        let cfg = BaselineConfig::default();
        let built = crate::baseline::build(
            std::slice::from_ref(&rules),
            &cfg,
            &std::sync::atomic::AtomicU64::new(0),
        );
        let mut e = Engine::new(&[rules], built.entries);
        // Five new files (one named in bytes that are not UTF-8), one changed, one gone.
        for i in 0..4 {
            std::fs::write(root.join(format!("vendor/new{i}.php")), "<?php\n").unwrap();
        }
        let odd = root.join(std::ffi::OsStr::from_bytes(b"vendor/\xff\xfe.php"));
        std::fs::write(&odd, "<?php\n").unwrap();
        std::fs::write(root.join("vendor/a.php"), "<?php // changed\n").unwrap();
        std::fs::remove_file(root.join("vendor/b.php")).unwrap();

        let sweep_all = |e: &mut Engine| {
            closed(&odd, |_, opts| {
                let (mut s, w) = e.sweep_start(opts, true);
                assert!(w.is_empty(), "{w:?}");
                let mut batches = Vec::new();
                while !s.is_done() {
                    batches.push(e.sweep_next(&mut s, &|_, _| None, opts, 2));
                }
                batches
            })
        };
        let batches = sweep_all(&mut e);
        assert!(batches.iter().all(|b| b.len() <= 2), "batches of at most 2");
        let all: Vec<&Detected> = batches.iter().flatten().collect();
        let count = |k: Kind| all.iter().filter(|d| d.finding.kind == k).count();
        assert_eq!(count(Kind::FileAdded), 5);
        assert_eq!(count(Kind::FileModified), 1);
        assert_eq!(count(Kind::FileDeleted), 1);
        assert_eq!(all.len(), 7);
        assert!(all.iter().all(|d| d.finding.evidence["late"] == true));
        let gone = all
            .iter()
            .find(|d| d.finding.kind == Kind::FileDeleted)
            .unwrap();
        assert_eq!(
            gone.entry.as_ref().map(|e| &e.path[..]),
            Some(&b"vendor/b.php"[..])
        );
        assert_eq!(gone.abs, root.join("vendor/b.php"));
        let odd_d = all
            .iter()
            .find(|d| d.abs == odd)
            .expect("the odd name, by its bytes");
        assert_eq!(odd_d.finding.kind, Kind::FileAdded);

        // Reported once: an event on the same state, or another sweep, says nothing new.
        assert!(event(&mut e, &odd).is_none());
        assert!(sweep_all(&mut e).iter().all(|b| b.is_empty()));
    }

    fn grow(e: &mut Engine, p: &Path) -> Vec<Finding> {
        closed(p, |ev, opts| e.watch_growth(ev, opts));
        e.take_grown()
    }

    fn append(p: &Path, s: &str) {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap()
            .write_all(s.as_bytes())
            .unwrap();
    }

    #[test]
    fn a_file_appended_to_again_and_again_is_reported_once() {
        let (d, rules) = crate::check::tests::setup();
        let root = d.path().join("shop");
        let mut e = Engine::new(&[rules], Vec::new());
        let stash = root.join("html/upload/save_image/0412_main2.jpg");
        std::fs::create_dir_all(stash.parent().unwrap()).unwrap();
        append(&stash, "");
        assert!(grow(&mut e, &stash).is_empty());
        let mut got = Vec::new();
        for i in 0..6 {
            append(&stash, &format!("Taro|4111111111111111|12/29|12{i}\n"));
            got.extend(grow(&mut e, &stash));
            if i < 2 {
                assert!(got.is_empty(), "reported after {} appends", i + 1);
            }
        }
        assert_eq!(got.len(), 1, "reported once: {got:?}");
        let f = &got[0];
        assert_eq!(f.kind, Kind::DataGrowing);
        assert_eq!(f.severity, mamori_core::Severity::Medium);
        assert_eq!(
            f.path.as_deref(),
            Some("html/upload/save_image/0412_main2.jpg")
        );
        assert_eq!(f.evidence["appends"], 3);
        assert_eq!(f.evidence["first_size"], 0);
    }

    #[test]
    fn rewrites_that_grow_and_ignored_paths_are_not_growth() {
        let (d, rules) = crate::check::tests::setup();
        let root = d.path().join("shop");
        let mut e = Engine::new(&[rules], Vec::new());
        // An edited file saved again and again, longer each time, is not an append.
        let edited = root.join("vendor/a.php");
        let mut body = String::from("<?php\n");
        for i in 0..6 {
            body.insert_str(6, &format!("// line {i}\n"));
            std::fs::write(&edited, &body).unwrap();
            assert!(grow(&mut e, &edited).is_empty(), "edit {i}");
        }
        // A log under an ignored path (EC-CUBE var/) grows by design.
        let log = root.join("var/log/prod/site.log");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        for i in 0..6 {
            append(&log, &format!("line {i}\n"));
            assert!(grow(&mut e, &log).is_empty());
        }
    }
}
