//! The state of a running watch: the baseline per root, what was already reported, and
//! the per-path examination shared by events and sweeps.

use super::{Event, EventKind};
use crate::check::{self, CheckOptions, CopyFn, Obs};
use crate::error::Warning;
use crate::rules::RootRules;
use crate::walk::Item;
use hashbrown::HashTable;
use mamori_core::store::BaselineEntry;
use mamori_core::{Finding, Kind};
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
    /// The root's entries with their `root` left empty (it is `key`, and 100k copies of
    /// it were ~5 MiB of a 100k-file shop's daemon); [`RootState::entry_out`] puts it
    /// back for anything leaving the engine.
    entries: Vec<BaselineEntry>,
    /// Positions in `entries`, hashed by path: the paths are not stored twice (on a
    /// 100k-file shop this saves ~10 MiB of a daemon that runs for months).
    index: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
}

impl RootState {
    /// A copy of entry `i` for use outside the engine, with its root.
    fn entry_out(&self, i: usize) -> BaselineEntry {
        let mut e = self.entries[i].clone();
        e.root.clone_from(&self.key);
        e
    }

    fn find(&self, rel: &[u8]) -> Option<usize> {
        let h = self.hasher.hash_one(rel);
        self.index
            .find(h, |&i| self.entries[i as usize].path == rel)
            .map(|&i| i as usize)
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
    /// BLAKE3 of the whole content when last seen (to tell an append from a rewrite).
    hash: [u8; 32],
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

pub struct Engine {
    roots: Vec<RootState>,
    reported: HashMap<(usize, Vec<u8>), Reported>,
    growth: HashMap<(usize, Vec<u8>), Growth>,
    /// `data.growing` findings not yet taken by the daemon ([`Engine::take_grown`]).
    grown: Vec<Finding>,
    /// The same changed state is not reported again; a path that keeps changing is
    /// reported at most once per this interval.
    pub repeat_after: Duration,
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
    /// The daemon streams the store into [`Engine::from_roots`] instead.
    pub fn new(rules: &[Arc<RootRules>], baseline: Vec<BaselineEntry>) -> Engine {
        let keys: Vec<String> = rules.iter().map(|r| r.key()).collect();
        let mut per_root: Vec<Vec<BaselineEntry>> = vec![Vec::new(); rules.len()];
        for e in baseline {
            if let Some(i) = keys.iter().position(|k| *k == e.root) {
                per_root[i].push(e);
            }
        }
        Engine::from_roots(rules, per_root)
    }

    /// An engine from each root's entries, in `rules` order. Their `root` strings are
    /// dropped (the root's key stands for them): a caller streaming the baseline out of
    /// the store should drop each as it comes, so that 100k of them are never allocated.
    pub fn from_roots(rules: &[Arc<RootRules>], per_root: Vec<Vec<BaselineEntry>>) -> Engine {
        let mut roots: Vec<RootState> = rules
            .iter()
            .zip(per_root.into_iter().chain(std::iter::repeat_with(Vec::new)))
            .map(|(r, entries)| RootState {
                key: r.key(),
                rules: Arc::clone(r),
                entries,
                index: HashTable::new(),
                hasher: foldhash::fast::FixedState::default(),
            })
            .collect();
        for r in &mut roots {
            r.entries.shrink_to_fit();
            for e in &mut r.entries {
                e.root = String::new();
            }
            r.index.reserve(r.entries.len(), |_| 0);
            let RootState {
                entries,
                index,
                hasher,
                ..
            } = r;
            for (i, e) in entries.iter().enumerate() {
                let h = hasher.hash_one(&e.path[..]);
                index.insert_unique(h, i as u32, |&j| {
                    hasher.hash_one(&entries[j as usize].path[..])
                });
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
        let rel_b = rel.as_os_str().as_bytes().to_vec();
        let base = r.find(&rel_b).map(|i| (i, &r.entries[i]));
        let meta = match std::fs::symlink_metadata(&ev.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some((_, old)) = base else {
                    return Ok(None);
                };
                if old.ftype == mamori_core::store::FileType::Dir || r.rules.is_ignored(rel, false)
                {
                    return Ok(None);
                }
                let f = check::deleted(&r.key, old, opts);
                let entry = base.map(|(i, _)| r.entry_out(i));
                return Ok(self.dedupe(ri, rel_b, f, entry, ev));
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
        let obs = check::observe(&r.rules, &r.key, &item, base, opts, &a, &b)?;
        let Some(obs) = obs else {
            // Back to the known-good state: forget earlier reports of this path.
            self.reported.remove(&(ri, rel_b));
            return Ok(None);
        };
        let entry = match &obs {
            Obs::Changed { idx, .. } => Some(r.entry_out(*idx)),
            Obs::Added { .. } => None,
        };
        let f = check::finding_for(&r.rules, &r.key, &obs, |i| &r.entries[i], copy, opts);
        Ok(self.dedupe(ri, rel_b, f, entry, ev))
    }

    fn dedupe(
        &mut self,
        ri: usize,
        rel: Vec<u8>,
        mut f: Finding,
        entry: Option<BaselineEntry>,
        ev: &Event,
    ) -> Option<Detected> {
        let state = fingerprint(&f);
        let now = Instant::now();
        let key = (ri, rel);
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

    /// A full sweep of every root (start-up, overflow, polling). Findings already
    /// reported in the same state are not repeated; `late` marks them as found by a
    /// sweep rather than by an event.
    pub fn sweep(
        &mut self,
        copy: &CopyFn<'_>,
        opts: &CheckOptions<'_>,
        late: bool,
    ) -> (Vec<Detected>, Vec<Warning>) {
        // Root by root over the entries the engine already holds (no copy of the baseline).
        let mut findings = Vec::new();
        let mut warnings = Vec::new();
        for r in &self.roots {
            let mut out = check::CheckOutcome::default();
            // The engine's own index, not a second one built for the sweep.
            let base = check::RootBaseline {
                len: r.entries.len(),
                entry: |i| &r.entries[i],
                find: |p: &[u8]| r.find(p),
            };
            check::check_root(&r.rules, &base, copy, opts, &AtomicU64::new(0), &mut out);
            findings.extend(out.findings);
            warnings.extend(out.warnings);
        }
        let mut det = Vec::new();
        for mut f in findings {
            let Some(path) = f.path.clone() else { continue };
            let Some(ri) = self
                .roots
                .iter()
                .position(|r| Some(&r.key) == f.root.as_ref())
            else {
                continue;
            };
            if late {
                f.evidence["late"] = serde_json::json!(true);
            }
            let abs = self.roots[ri].rules.root.join(&path);
            let rel = abs
                .strip_prefix(&self.roots[ri].rules.root)
                .map(|p| p.as_os_str().as_bytes().to_vec())
                .unwrap_or_default();
            let entry = self.roots[ri]
                .find(&rel)
                .map(|i| self.roots[ri].entry_out(i));
            let ev = Event {
                path: abs,
                kind: EventKind::Changed,
                writer: None,
            };
            if let Some(d) = self.dedupe(ri, rel, f, entry, &ev) {
                det.push(d);
            }
        }
        (det, warnings)
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
        let key = (ri, rel.as_os_str().as_bytes().to_vec());
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
        key: (usize, Vec<u8>),
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
        if !self.growth.contains_key(&key) && self.growth.len() >= GROWTH_TRACKED {
            // Drop the quietest half rather than grow without bound.
            let mut ats: Vec<Instant> = self.growth.values().map(|g| g.at).collect();
            ats.sort_unstable();
            let cut = ats[ats.len() / 2];
            self.growth.retain(|_, g| g.at > cut);
        }
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
                .remove(&(root, rel.as_os_str().as_bytes().to_vec()));
        }
    }
}

/// BLAKE3 of the first `prefix_len` bytes of `path` (None if it is shorter) and of the
/// whole file, in one read. None if it cannot be read.
fn hash_with_prefix(path: &Path, prefix_len: u64) -> Option<(Option<[u8; 32]>, [u8; 32])> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    let mut prefix = (prefix_len == 0).then(|| *blake3::hash(b"").as_bytes());
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
            prefix = Some(*h.finalize().as_bytes());
        }
    }
    Some((prefix, *h.finalize().as_bytes()))
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
