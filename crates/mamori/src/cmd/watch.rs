//! `mamori watch`: the daemon. Kernel events → findings in milliseconds → responses.

use crate::ctx::Ctx;
use anyhow::Result;
use clap::{Args, ValueEnum};
use indexmap::IndexMap;
use mamori_core::config::{Loaded, Response};
use mamori_core::store::{ChainStatus, Store};
use mamori_core::{Finding, Kind, Severity, tr};
use mamori_internal::check::{self, CheckOptions};
use mamori_internal::watch::engine::{Detected, Engine, EngineBuilder};
use mamori_internal::watch::{Event, EventKind, Source, Writer, deny, fan, ino, respond};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Mode {
    /// fanotify if permitted, else inotify, else polling.
    Auto,
    Fanotify,
    Inotify,
    Poll,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Event source.
    #[arg(long, value_enum, default_value = "auto")]
    pub mode: Mode,
    /// Override `response.critical` for this run: alert, restore or deny.
    #[arg(long, value_name = "RESPONSE")]
    pub response: Option<ResponseArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ResponseArg {
    Alert,
    Restore,
    Deny,
}

struct Daemon<'a> {
    ctx: &'a Ctx,
    loaded: &'a Loaded,
    store: Store,
    engine: Engine,
    /// Set when critical files are restored (response `restore`).
    responder: Option<respond::Responder>,
    host: String,
    alerts: Option<mamori_alert::AlertDispatcher>,
    /// Content scanning of every new or changed file (rules compiled once, one scanner
    /// kept for every scan).
    scanner: Option<super::scan::ChangeWorker<'a>>,
    /// Findings already on stdout and with the alert sinks, not yet in the store: they
    /// are stored together once the events read at once are handled (one transaction
    /// instead of one per finding: a burst of new files is thousands of findings).
    unstored: Vec<Finding>,
}

/// Findings held before they are stored regardless of where the loop is.
const UNSTORED_MAX: usize = 256;

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        self.store_findings();
    }
}

impl Daemon<'_> {
    fn emit(&mut self, findings: Vec<Finding>) {
        if findings.is_empty() {
            return;
        }
        {
            let mut out = std::io::stdout().lock();
            for f in &findings {
                let line = if self.ctx.json {
                    f.to_json_line()
                } else {
                    format!(
                        "{}  {:<8}  {:<16}  {}",
                        f.detected_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                        f.severity.label(self.ctx.lang),
                        f.kind.as_str(),
                        mamori_core::pan::mask_pans(&f.summary)
                    )
                };
                let _ = writeln!(out, "{line}");
            }
            let _ = out.flush();
        }
        if let Some(a) = &self.alerts {
            for f in &findings {
                a.send(f);
            }
        }
        self.unstored.extend(findings);
        if self.unstored.len() >= UNSTORED_MAX {
            self.store_findings();
        }
    }

    /// Append what [`Daemon::emit`] reported to the event log (the main loop calls this
    /// after every batch of events; a stop or an error return does on drop).
    fn store_findings(&mut self) {
        if self.unstored.is_empty() {
            return;
        }
        if let Err(e) = self.store.append_findings(&self.unstored) {
            self.ctx.warn(&e.localized(self.ctx.lang));
        }
        self.unstored.clear();
        if self.unstored.capacity() > UNSTORED_MAX {
            self.unstored.shrink_to(UNSTORED_MAX);
        }
    }

    fn copy(&self, root: &str, path: &[u8]) -> Option<Vec<u8>> {
        let (codec, data) = self.store.baseline_copy(root, path).ok()??;
        check::decode_copy(&codec, &data, self.loaded.config.baseline.max_copy_size)
    }

    /// Report a detection, then respond to it.
    fn handle(&mut self, d: Detected) {
        let critical = d.entry.as_ref().is_some_and(|e| e.is_critical());
        // A path changing again soon after its report: only what the content is matters
        // (payment code is always reported and acted on).
        let quiet = d.repeat && !critical;
        let mut batch = if quiet {
            Vec::new()
        } else {
            vec![d.finding.clone()]
        };
        let act = matches!(d.finding.kind, Kind::FileModified | Kind::FileDeleted) && critical;
        if act
            && self.responder.is_some()
            && let Some(entry) = &d.entry
        {
            // Restore first, report after: while the altered payment code is live every
            // checkout may be copied, and reporting (store, alerts) takes milliseconds.
            let good = self.copy(&entry.root, &entry.path);
            let rel = d.finding.path.clone().unwrap_or_default();
            let Some(r) = &self.responder else { return };
            match r.restore(&d.abs, &rel, entry, good) {
                Ok(fs) => {
                    self.engine.forget(d.root, &d.abs);
                    // The altered content now lives in its quarantined copy.
                    if let Some(q) = fs.iter().find_map(|f| f.evidence["quarantine"].as_str()) {
                        self.scan_into(&mut batch, &d, Path::new(q));
                    }
                    batch.extend(fs);
                    self.emit(batch);
                    return;
                }
                Err(e) => {
                    let lang = self.ctx.lang;
                    self.ctx.warn(&tr!(
                        lang,
                        "could not restore {rel}: {e}",
                        "{rel} を復元できませんでした: {e}"
                    ));
                }
            }
        }
        self.scan_into(&mut batch, &d, &d.abs);
        self.emit(batch);
    }

    /// Say what a new or changed file is (skimmer, webshell, stash) in the same breath.
    fn scan_into(&mut self, batch: &mut Vec<Finding>, d: &Detected, file: &Path) {
        if let Some(sc) = &mut self.scanner
            && matches!(d.finding.kind, Kind::FileAdded | Kind::FileModified)
            && let (Some(rel), Some(root)) = (&d.finding.path, &d.finding.root)
            && std::fs::symlink_metadata(file).is_ok_and(|m| m.is_file())
        {
            sc.scan_into(self.ctx, batch, file, root, rel);
        }
    }

    /// Run `f` with the check options and the copy fetcher of this daemon.
    fn with_opts<T>(
        &mut self,
        f: impl FnOnce(&mut Engine, &check::CopyFn<'_>, &CheckOptions<'_>) -> T,
    ) -> T {
        let cfg = &self.loaded.config.baseline;
        let opts = CheckOptions {
            cfg,
            full: false,
            host: &self.host,
            lang: self.ctx.lang,
            diff_lines: 200,
        };
        let store = &self.store;
        let max_copy = cfg.max_copy_size;
        let copy = |root: &str, path: &[u8]| -> Option<Vec<u8>> {
            let (codec, data) = store.baseline_copy(root, path).ok()??;
            check::decode_copy(&codec, &data, max_copy)
        };
        f(&mut self.engine, &copy, &opts)
    }

    fn sweep(&mut self, late: bool) {
        let (mut sweep, warnings) = self.with_opts(|e, _, opts| e.sweep_start(opts, late));
        super::print_warnings(self.ctx, &warnings);
        // A batch at a time: reported, stored and acted on before the next is made.
        while !sweep.is_done() {
            let det = self.with_opts(|e, copy, opts| e.sweep_next(&mut sweep, copy, opts, 256));
            for d in det {
                self.handle(d);
            }
            self.store_findings();
        }
        release_free_memory();
    }

    fn on_event(&mut self, ev: &Event) {
        match self.with_opts(|e, copy, opts| e.on_event(ev, copy, opts)) {
            Ok(Some(d)) => self.handle(d),
            Ok(None) => {}
            Err(w) => self.ctx.warn(&w.localized(self.ctx.lang)),
        }
        // After the response: a file appended to again and again (a stash).
        let grown = self.with_opts(|e, _, opts| {
            e.watch_growth(ev, opts);
            e.take_grown()
        });
        if !grown.is_empty() {
            self.emit(grown);
        }
    }
}

const TAIL_DOC: &str = "entrance/tail/";
/// The detectors' memory and the read positions it covers (one signed document).
const ENTRANCE_STATE_DOC: &str = "entrance/state";

/// The live entrance layer: the follower and when its memory was last saved.
struct LiveEntrance {
    follower: mamori_entrance::follow::Follower,
    save_every: Duration,
    last_save: Instant,
}

/// The detectors' memory saved by the last run, if it can be used (else a warning).
fn saved_entrance_state(d: &Daemon<'_>) -> Option<mamori_entrance::follow::FollowState> {
    use mamori_core::store::Doc;
    let lang = d.ctx.lang;
    let fresh = |why: String| {
        d.ctx.warn(&tr!(
            lang,
            "the saved memory of the access-log detectors cannot be used ({why}); they start fresh",
            "アクセスログ検知の保存済みの記憶を使えません ({why})。新たに記憶を始めます"
        ));
        None
    };
    match d.store.doc_get(ENTRANCE_STATE_DOC) {
        Ok(Doc::Missing) => None,
        Ok(Doc::Valid { body, .. }) => match mamori_entrance::follow::FollowState::decode(&body) {
            Ok(s) => Some(s),
            Err(e) => fresh(e.to_string()),
        },
        Ok(Doc::Tampered) => fresh(tr!(
            lang,
            "it failed its signature check",
            "署名検査に失敗しました"
        )),
        Err(e) => fresh(e.localized(lang)),
    }
}

/// Follow the access logs of `[entrance] follow`, resuming where the last run stopped:
/// read positions, the detectors' memory and the blocks in force.
fn start_follower(
    d: &Daemon<'_>,
    cfg: mamori_entrance::EntranceConfig,
) -> Result<Option<LiveEntrance>> {
    use mamori_core::store::Doc;
    use mamori_entrance::follow::{FollowOptions, Follower, TailState};
    if cfg.follow.is_empty() {
        return Ok(None);
    }
    let lang = d.ctx.lang;
    let block = cfg.block_backend().map_err(|e| {
        super::UserError(tr!(
            lang,
            "{}: [entrance]: {e}; see docs/entrance.md",
            "{}: [entrance] の設定が不正です: {e}。docs/entrance.md を参照してください",
            d.ctx.config_path.display()
        ))
    })?;
    let mut files = Vec::new();
    for p in &cfg.follow {
        let name = format!("{TAIL_DOC}{}", p.display());
        let saved = match d.store.doc_get(&name) {
            Ok(Doc::Valid { body, .. }) => serde_json::from_slice::<TailState>(&body).ok(),
            Ok(Doc::Tampered) => {
                d.ctx.warn(&tr!(
                    lang,
                    "the saved read position of {} failed its signature check; following from the end",
                    "{} の保存済み読み取り位置の署名検査に失敗しました。末尾から追跡します",
                    p.display()
                ));
                None
            }
            _ => None,
        };
        if !p.exists() {
            d.ctx.warn(&tr!(
                lang,
                "{}: access log not found (yet); it is followed once it appears",
                "{}: アクセスログがまだありません。作成され次第追跡します",
                p.display()
            ));
        }
        files.push((p.clone(), saved));
    }
    let state = saved_entrance_state(d);
    if let Some(s) = &state {
        let c = s.counts();
        d.ctx.note(&tr!(
            lang,
            "access-log detectors resume their memory: {} addresses, {} attack episodes, {} blocks",
            "アクセスログ検知の記憶を復元しました: アドレス {} 件、攻撃エピソード {} 件、遮断 {} 件",
            c.ips,
            c.episodes,
            c.blocks
        ));
    }
    if let Some(b) = &block {
        let dry = cfg.block_dry_run;
        let name = b.name();
        d.ctx.note(&if dry {
            tr!(
                lang,
                "blocking live through {name} (dry run: decided and reported, nothing applied)",
                "{name} でリアルタイムに遮断します (ドライラン: 判定と報告のみ、適用しません)"
            )
        } else {
            tr!(
                lang,
                "blocking live through {name} (never allow-listed addresses, verified search bots or shared carrier addresses)",
                "{name} でリアルタイムに遮断します (許可リスト、確認済みの検索ボット、キャリアの共有アドレスは遮断しません)"
            )
        });
    }
    let n = files.len();
    let save_every = Duration::from_secs(cfg.save_interval_secs.max(1));
    let opts = FollowOptions {
        block,
        state,
        ..Default::default()
    };
    let follower = Follower::with_options(&files, cfg, &d.host, lang, opts);
    // Said once the logs are open: from here on no appended line is missed.
    d.ctx.note(&tr!(
        lang,
        "following {n} access log(s) live (attacks, brute force, stuffing, card testing, campaigns)",
        "{n} 個のアクセスログをリアルタイムで追跡します (攻撃、総当たり、リスト型攻撃、クレジットマスター、キャンペーン)"
    ));
    Ok(Some(LiveEntrance {
        follower,
        save_every,
        last_save: Instant::now(),
    }))
}

impl Daemon<'_> {
    /// One round of the live entrance layer: new lines → findings → blocks; positions
    /// saved; the detectors' memory saved with them every `save_interval_secs`.
    fn follow(&mut self, e: &mut LiveEntrance) {
        let lang = self.ctx.lang;
        let f = &mut e.follower;
        let before = f.states();
        let findings = f.poll(chrono::Utc::now().timestamp());
        self.emit(findings);
        for a in f.take_advice() {
            self.ctx
                .note(&format!("{}: {} — {}", a.ip, a.reason, a.advice));
        }
        if let Err(err) = f.apply_blocks() {
            let name = f.block_backend().map(|b| b.name()).unwrap_or("-");
            self.ctx.warn(&tr!(
                lang,
                "blocking through {name} failed: {err} (retried in a minute)",
                "{name} による遮断に失敗しました: {err} (1 分後に再試行します)"
            ));
        }
        if f.states() != before {
            self.save_tails(f);
        }
        if f.changed() && e.last_save.elapsed() >= e.save_every {
            self.save_entrance(e);
        }
    }

    fn save_tails(&mut self, f: &mamori_entrance::follow::Follower) {
        for (p, st) in f.states() {
            let name = format!("{TAIL_DOC}{}", p.display());
            if let Ok(body) = serde_json::to_vec(&st)
                && let Err(e) = self.store.doc_put(&name, &body)
            {
                self.ctx.warn(&e.localized(self.ctx.lang));
            }
        }
    }

    /// Save the detectors' memory with the positions it covers (one document, so they
    /// always agree); the per-log positions are written first, in the same round.
    fn save_entrance(&mut self, e: &mut LiveEntrance) {
        e.last_save = Instant::now();
        if !e.follower.changed() {
            return;
        }
        self.save_tails(&e.follower);
        let body = e.follower.save_state();
        if let Err(err) = self.store.doc_put(ENTRANCE_STATE_DOC, &body) {
            self.ctx.warn(&err.localized(self.ctx.lang));
        }
    }
}

const EGRESS_DOC: &str = "exit/state";
/// conntrack events are read at most this often: each batch of new outbound flows costs
/// one socket-table read and one /proc/*/fd pass, so bursts are joined together.
const EGRESS_MIN_GAP: Duration = Duration::from_millis(10);

/// The live exit layer: conntrack events or the /proc sampler feeding the egress
/// detectors, whose learning is kept in the store.
struct LiveEgress {
    source: mamori_exit::source::Source,
    det: mamori_exit::Detector,
    names: mamori_exit::names::NameIndex,
    interval: Duration,
    last_poll: Instant,
    last_save: Instant,
    dirty: bool,
    /// When a read error was last said (a socket that keeps failing is said once a minute).
    warned_at: Option<Instant>,
}

impl LiveEgress {
    /// The conntrack socket when it may be read now (not within EGRESS_MIN_GAP of the
    /// last read).
    fn ready_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        (self.last_poll.elapsed() >= EGRESS_MIN_GAP)
            .then(|| self.source.fd().map(|f| f.as_raw_fd()))
            .flatten()
    }
}

fn say_notices(ctx: &Ctx, notices: &[mamori_exit::source::Notice]) {
    for n in notices {
        let m = n.message(ctx.lang);
        if n.is_warning() {
            ctx.warn(&m);
        } else {
            ctx.note(&m);
        }
    }
}

fn start_egress(d: &Daemon<'_>, cfg: mamori_exit::ExitConfig) -> Result<Option<LiveEgress>> {
    use mamori_core::store::Doc;
    use mamori_exit::LiveSource;
    if !cfg.live {
        return Ok(None);
    }
    let lang = d.ctx.lang;
    let (source, notices) = match mamori_exit::source::Source::open(&cfg) {
        Ok(s) => s,
        Err(e) if cfg.live_source == LiveSource::Conntrack => {
            anyhow::bail!(super::UserError(tr!(
                lang,
                "[exit] live_source = \"conntrack\", but conntrack events cannot be used ({e}); they need root (CAP_NET_ADMIN) and nf_conntrack; set live_source = \"auto\" or \"proc\"",
                "[exit] live_source = \"conntrack\" ですが conntrack のイベントを使えません ({e})。root (CAP_NET_ADMIN) と nf_conntrack が必要です。live_source = \"auto\" か \"proc\" にしてください"
            )));
        }
        Err(e) => {
            d.ctx.warn(&tr!(
                lang,
                "live egress watching is off: {e}",
                "外向き通信のリアルタイム監視を停止: {e}"
            ));
            return Ok(None);
        }
    };
    say_notices(d.ctx, &notices);
    let state = match d.store.doc_get(EGRESS_DOC) {
        Ok(Doc::Valid { body, .. }) => serde_json::from_slice(&body).ok(),
        Ok(Doc::Tampered) => {
            d.ctx.warn(&tr!(
                lang,
                "the saved egress learning failed its signature check; learning starts over",
                "保存済みの外向き通信の学習データの署名検査に失敗しました。学習をやり直します"
            ));
            None
        }
        _ => None,
    };
    let interval = Duration::from_millis(cfg.live_interval_ms);
    let ms = interval.as_millis();
    d.ctx.note(&match source.name() {
        "conntrack" => tr!(
            lang,
            "watching outbound connections live from conntrack events (every TCP/UDP flow, short ones and UDP sendto included, bytes when a flow ends) with process and user from /proc, which is also swept every {ms} ms",
            "conntrack のイベントで外向き通信をリアルタイム監視します (短い接続や sendto の UDP を含むすべての TCP/UDP 通信、終了時にバイト数)。プロセスとユーザーは /proc から取得し、/proc も {ms} ミリ秒ごとに走査します"
        ),
        _ => tr!(
            lang,
            "watching outbound connections live every {ms} ms from /proc (with process and user; connections shorter than that can be missed, UDP sent without connect() is not seen, no byte counts)",
            "/proc から {ms} ミリ秒ごとに外向き通信を監視します (プロセスとユーザー付き。それより短い接続は見逃すことがあり、connect() しない UDP は見えず、バイト数も分かりません)"
        ),
    });
    let det = match state {
        Some(s) => mamori_exit::Detector::with_state(cfg.detect, s, &d.host, lang),
        None => mamori_exit::Detector::new(cfg.detect, &d.host, lang),
    };
    Ok(Some(LiveEgress {
        source,
        det,
        names: mamori_exit::names::NameIndex::new(&[]),
        interval,
        // First poll at once (an interval longer than the uptime cannot be subtracted).
        last_poll: Instant::now()
            .checked_sub(interval)
            .unwrap_or_else(Instant::now),
        last_save: Instant::now(),
        dirty: false,
        warned_at: None,
    }))
}

impl Daemon<'_> {
    fn egress(&mut self, e: &mut LiveEgress) {
        use mamori_exit::source::LiveEvent;
        e.last_poll = Instant::now();
        let polled = e.source.poll();
        say_notices(self.ctx, &e.source.take_notices());
        let events = match polled {
            Ok(c) => c,
            Err(err) => {
                if e.warned_at
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
                {
                    e.warned_at = Some(Instant::now());
                    self.ctx.warn(&err.to_string());
                }
                return;
            }
        };
        let mut out = Vec::new();
        for ev in &events {
            match ev {
                LiveEvent::Opened(c) => {
                    let t = mamori_exit::target_of(c, &e.names);
                    out.extend(e.det.observe_conn(c, &t));
                }
                LiveEvent::Closed(c) => {
                    let t = mamori_exit::target_of(c, &e.names);
                    out.extend(e.det.observe_bytes(c, &t));
                }
            }
        }
        e.dirty |= !events.is_empty();
        self.emit(out);
        if e.dirty && e.last_save.elapsed() >= Duration::from_secs(60) {
            self.save_egress(e);
        }
    }

    fn save_egress(&mut self, e: &mut LiveEgress) {
        e.last_save = Instant::now();
        if !e.dirty {
            return;
        }
        e.dirty = false;
        if let Ok(body) = serde_json::to_vec(&e.det.state)
            && let Err(err) = self.store.doc_put(EGRESS_DOC, &body)
        {
            self.ctx.warn(&err.localized(self.ctx.lang));
        }
    }
}

/// The signed baseline as the daemon holds it.
struct DaemonBaseline {
    engine: Engine,
    /// Critical files and their known-good hash, for the deny listener.
    guarded: deny::Guarded,
    /// Why the signature failed to verify, if it did.
    tampered: Option<String>,
}

/// Stream the baseline out of the store into the engine, which packs each row as it
/// comes: a 100k-file shop's daemon never holds the unpacked baseline.
fn load_baseline(
    store: &mamori_core::store::Store,
    rules: &[Arc<mamori_internal::rules::RootRules>],
) -> Result<Option<DaemonBaseline>> {
    let mut engine = EngineBuilder::new(rules);
    let mut guarded = deny::Guarded::new();
    let Some((_, tampered)) = store.baseline_each(|e| {
        let Some(ri) = engine.root_of(&e) else {
            return; // a root no longer configured
        };
        if e.is_critical()
            && let Some(h) = e.blake3
        {
            let rel = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&e.path);
            guarded.insert(rules[ri].root.join(rel), h);
        }
        engine.push(e);
    })?
    else {
        return Ok(None);
    };
    Ok(Some(DaemonBaseline {
        engine: engine.finish(),
        guarded,
        tampered,
    }))
}

/// A sweep allocates and frees a tree-sized amount of memory; hand it back to the system
/// so a daemon that runs for months keeps a small resident size.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Tell systemd we are ready (Type=notify), if it is listening.
fn sd_notify_ready() {
    let Some(sock) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let mut path = sock.to_string_lossy().into_owned();
    if let Some(stripped) = path.strip_prefix('@') {
        path = format!("\0{stripped}");
    }
    if let Ok(s) = std::os::unix::net::UnixDatagram::unbound() {
        let _ = s.send_to(b"READY=1", &path);
    }
}

/// Raise the daemon's scheduling priority by `boost` nice levels (auditd's
/// `priority_boost`), before any thread starts so every thread has it. Needs root
/// (CAP_SYS_NICE); without it the priority stays as it is, with a note.
fn boost_priority(ctx: &Ctx, boost: u8) {
    use nix::libc;
    if boost == 0 {
        return;
    }
    let lang = ctx.lang;
    // SAFETY: plain syscalls on this process; getpriority's -1 is ambiguous, so errno is
    // cleared first and read after.
    let now = unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, 0)
    };
    if std::io::Error::last_os_error().raw_os_error().unwrap_or(0) != 0 {
        return;
    }
    let want = (now - i32::from(boost)).max(-20);
    if want >= now {
        return;
    }
    // SAFETY: as above.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, want) } == 0 {
        ctx.note(&tr!(
            lang,
            "scheduling priority raised to nice {want} ([watch] priority_boost)",
            "スケジューリング優先度を nice {want} に上げました ([watch] priority_boost)"
        ));
    } else {
        let e = std::io::Error::last_os_error();
        ctx.note(&tr!(
            lang,
            "scheduling priority left at nice {now} ({e}; raising it needs root)",
            "スケジューリング優先度は nice {now} のままです ({e}。上げるには root が必要です)"
        ));
    }
}

pub fn run(ctx: &Ctx, a: &WatchArgs) -> Result<u8> {
    // First of all: a SIGTERM during start-up (the sweep can take a while on a big shop)
    // is an orderly stop, never the default death half-way through a restore.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let lang = ctx.lang;
    let loaded = ctx.config()?;
    let rules = super::check::root_rules(loaded, lang)?;
    let store = crate::ctx::open_store(&loaded.db_path(), &loaded.key_file())?;
    let Some(base) = load_baseline(&store, &rules)? else {
        return Err(mamori_core::Error::NoBaseline {
            state: loaded.state_dir(),
        }
        .into());
    };
    let host = loaded.host();
    let mut critical_response = match a.response {
        Some(ResponseArg::Alert) => Response::Alert,
        Some(ResponseArg::Restore) => Response::Restore,
        Some(ResponseArg::Deny) => Response::Deny,
        None => loaded.config.response.critical,
    };
    let mut startup = Vec::new();
    if let Some(reason) = &base.tampered {
        startup.push(
            Finding::new(
                Kind::BaselineTampered,
                Severity::Critical,
                chrono::Utc::now(),
                &host,
                tr!(
                    lang,
                    "the signed baseline failed its integrity check ({reason}); restore and deny are off until it is rebuilt",
                    "署名付きベースラインの完全性検査に失敗しました ({reason})。再作成するまで復元と拒否は停止します"
                ),
            )
            .with_evidence(json!({"what": "baseline", "reason": reason})),
        );
        critical_response = Response::Alert;
    }
    if let ChainStatus::Broken { reason, .. } = store.verify_events()? {
        startup.push(
            Finding::new(
                Kind::BaselineTampered,
                Severity::Critical,
                chrono::Utc::now(),
                &host,
                tr!(
                    lang,
                    "the event log failed its hash-chain check ({reason})",
                    "イベントログのハッシュチェーン検査に失敗しました ({reason})"
                ),
            )
            .with_evidence(json!({"what": "event_log", "reason": reason})),
        );
    }
    let deny_state = deny::DenyState {
        guarded: Arc::new(std::sync::RwLock::new(base.guarded)),
        active: Arc::new(AtomicBool::new(true)),
    };
    let engine = base.engine;
    let roots: Vec<PathBuf> = rules.iter().map(|r| r.root.clone()).collect();

    // Choose the event source and say why.
    let mut source: Option<Box<dyn Source>> = None;
    let mut why = String::new();
    if matches!(a.mode, Mode::Auto | Mode::Fanotify) {
        match fan::Fanotify::new(&roots) {
            Ok(f) => source = Some(Box::new(f)),
            Err(e) => {
                if a.mode == Mode::Fanotify {
                    anyhow::bail!(super::UserError(tr!(
                        lang,
                        "fanotify is not available ({e}); it needs root (CAP_SYS_ADMIN) and Linux 5.9+; use --mode inotify",
                        "fanotify を使えません ({e})。root (CAP_SYS_ADMIN) と Linux 5.9 以降が必要です。--mode inotify を使ってください"
                    )));
                }
                why = e.to_string();
            }
        }
    }
    if source.is_none() && matches!(a.mode, Mode::Auto | Mode::Inotify) {
        match ino::Inotify::new(&rules) {
            Ok(i) => {
                if let Some(d) = &i.degraded {
                    ctx.warn(d);
                }
                source = Some(Box::new(i));
            }
            Err(e) => why = format!("{why}; inotify: {e}"),
        }
    }
    let mode_name = source.as_ref().map(|s| s.name()).unwrap_or("poll");
    let sweep_every = Duration::from_secs(loaded.config.watch.sweep_interval.max(1));
    let msg = match mode_name {
        "fanotify" => tr!(
            lang,
            "watching {} root(s) with fanotify (whole-filesystem marks; the writing process is reported)",
            "fanotify で {} 個のルートを監視します (ファイルシステム全体、書き込んだプロセスも報告)",
            roots.len()
        ),
        "inotify" => tr!(
            lang,
            "watching {} root(s) with inotify (fanotify not permitted: {why}); writers cannot be named in this mode",
            "inotify で {} 個のルートを監視します (fanotify は使えません: {why})。このモードでは書き込んだプロセスは分かりません",
            roots.len()
        ),
        _ => tr!(
            lang,
            "watching {} root(s) by polling every {} s (no kernel events: {why})",
            "{} 個のルートを {} 秒ごとの走査で監視します (カーネル通知なし: {why})",
            roots.len(),
            sweep_every.as_secs()
        ),
    };
    ctx.note(&msg);
    // Before the deny and page threads start, so they inherit it.
    boost_priority(ctx, loaded.config.watch.priority_boost);

    let (deny_tx, deny_rx) = crossbeam_channel::bounded::<deny::Denied>(1024);
    if critical_response == Response::Deny {
        let private = vec![loaded.state_dir(), loaded.quarantine_dir()];
        match deny::start(deny_state.clone(), &private, loaded.config.baseline.max_hash_size, deny_tx) {
            Ok(g) => ctx.note(&tr!(
                lang,
                "deny: opening a critical file whose content differs from the baseline is refused ({} directories guarded)",
                "拒否モード: ベースラインと内容が異なる重要ファイルを開くことを拒否します ({} ディレクトリを保護)",
                g.marked_dirs
            )),
            Err(e) => {
                ctx.warn(&tr!(
                    lang,
                    "deny mode unavailable ({e}); falling back to restore",
                    "拒否モードを使えません ({e})。復元モードにします"
                ));
                critical_response = Response::Restore;
            }
        }
    }

    let php_fpm = match &loaded.config.response.php_fpm {
        None => None,
        Some(a) => Some(mamori_internal::watch::fpm::Fpm {
            addr: mamori_internal::watch::fpm::FpmAddr::parse(a)
                .map_err(|e| super::UserError(format!("{}: {e}", loaded.path.display())))?,
            script_dir: loaded
                .config
                .response
                .php_fpm_script_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("/run/mamori-fpm")),
            timeout: Duration::from_secs(3),
        }),
    };
    let responder = (critical_response == Response::Restore).then(|| respond::Responder {
        quarantine: loaded.quarantine_dir(),
        php_reload: loaded.config.response.php_reload.clone(),
        php_fpm,
        host: host.clone(),
        lang,
    });
    let alerts = crate::ctx::alerts(lang, loaded)?;
    let change_scanner = match super::scan::ChangeScanner::isolated(ctx) {
        Ok(s) => Some(s),
        Err(e) => {
            // A broken rule file must not stop tamper detection: say so and go on.
            ctx.warn(&tr!(
                lang,
                "content scanning is off: {e}",
                "内容の検査を停止しています: {e}"
            ));
            None
        }
    };
    let mut d = Daemon {
        unstored: Vec::new(),
        scanner: change_scanner.as_ref().map(|s| s.worker()),
        alerts,
        ctx,
        loaded,
        store,
        engine,
        responder,
        host,
    };
    d.emit(startup);
    // Whatever changed while mamori was not running is reported now (late).
    d.sweep(true);
    let mut follower = start_follower(&d, super::logs::entrance_config(ctx)?)?;
    let mut last_follow = Instant::now();
    let mut egress = start_egress(&d, super::egress::exit_config(ctx)?)?;
    // Payment pages: the scheduled check and the CSP report endpoint (docs/page.md).
    let (page_tx, page_rx) = crossbeam_channel::bounded::<mamori_page::PageEvent>(1024);
    let _page = super::page::start_for_watch(ctx, loaded, page_tx)?;
    sd_notify_ready();

    let me = std::process::id() as i32;
    let mut events = Vec::new();
    let mut pending: HashMap<PathBuf, (Instant, Option<Writer>)> = HashMap::new();
    let mut last_sweep = Instant::now();
    let mut denied_at: HashMap<PathBuf, Instant> = HashMap::new();
    let mut generation = d.store.baseline_generation().unwrap_or(0);
    let mut deploying = false;
    let mut last_state_poll = Instant::now();
    // Events were handled since memory was last released.
    let mut busy = false;
    while !stop.load(Ordering::Relaxed) {
        // Whatever the last round reported (log lines, egress, denials, pages) is stored
        // before waiting again.
        d.store_findings();
        // An approval or a deploy changes the baseline: follow it. During a deploy, hold
        // findings and responses (restoring would revert the release).
        if last_state_poll.elapsed() >= Duration::from_millis(500) {
            last_state_poll = Instant::now();
            let now_deploying = d.store.meta_get("deploy").ok().flatten().is_some();
            deny_state.active.store(!now_deploying, Ordering::Relaxed);
            if now_deploying && !deploying {
                ctx.note(&tr!(
                    lang,
                    "deploy in progress: holding findings and responses",
                    "デプロイ中: 検出と対応を保留します"
                ));
            }
            let g = d.store.baseline_generation().unwrap_or(generation);
            if !now_deploying && (g != generation || deploying) {
                if let Ok(Some(b)) = load_baseline(&d.store, &rules)
                    && b.tampered.is_none()
                {
                    if let Ok(mut g) = deny_state.guarded.write() {
                        *g = b.guarded;
                    }
                    d.engine = b.engine;
                    generation = g;
                    ctx.note(&tr!(
                        lang,
                        "baseline {g} loaded",
                        "ベースライン {g} を読み込みました"
                    ));
                }
                pending.clear();
                d.sweep(false);
            }
            deploying = now_deploying;
        }
        if let Some(f) = follower.as_mut()
            && last_follow.elapsed() >= Duration::from_secs(1)
        {
            last_follow = Instant::now();
            d.follow(f);
        }
        if let Some(e) = egress.as_mut()
            && e.last_poll.elapsed() >= e.interval
        {
            d.egress(e);
        }
        let mut timeout_ms: u16 = if pending.is_empty() { 250 } else { 20 };
        let src_fd = source.as_ref().map(|s| s.raw_fd());
        let egress_fd = egress.as_ref().and_then(LiveEgress::ready_fd);
        if egress_fd.is_none() && egress.as_ref().is_some_and(|e| e.source.fd().is_some()) {
            // Within the gap after a conntrack read: come back for the socket soon.
            timeout_ms = timeout_ms.min(10);
        }
        let (mut src_ready, mut egress_ready) = (false, false);
        if src_fd.is_none() && egress_fd.is_none() {
            std::thread::sleep(Duration::from_millis(timeout_ms.into()));
        } else {
            let mut fds: Vec<nix::poll::PollFd<'_>> = [src_fd, egress_fd]
                .into_iter()
                .flatten()
                // SAFETY: the fds live as long as `source` and `egress`, which outlive
                // this poll.
                .map(|fd| {
                    nix::poll::PollFd::new(
                        unsafe { BorrowedFd::borrow_raw(fd) },
                        nix::poll::PollFlags::POLLIN,
                    )
                })
                .collect();
            match nix::poll::poll(&mut fds, timeout_ms) {
                Ok(n) if n > 0 => {
                    let ready =
                        |p: &nix::poll::PollFd<'_>| p.revents().is_some_and(|r| !r.is_empty());
                    let mut it = fds.iter();
                    if src_fd.is_some() {
                        src_ready = it.next().is_some_and(ready);
                    }
                    if egress_fd.is_some() {
                        egress_ready = it.next().is_some_and(ready);
                    }
                }
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(std::io::Error::from(e).into()),
            }
        }
        events.clear();
        if src_ready
            && let Some(src) = source.as_mut()
            && let Err(e) = src.read(&mut events)
        {
            ctx.warn(&e.to_string());
        }
        if egress_ready && let Some(e) = egress.as_mut() {
            d.egress(e);
        }
        if deploying {
            // The release is changing files: what it does is approved afterwards.
            events.clear();
            pending.clear();
            continue;
        }
        let mut overflow = false;
        // Coalesce: the last event per path in this batch decides; writes still open wait.
        // By path, in arrival order (a burst reads thousands of events at once).
        let mut batch: IndexMap<PathBuf, (EventKind, Option<Writer>)> = IndexMap::new();
        for ev in events.drain(..) {
            if ev.kind == EventKind::Overflow {
                overflow = true;
                continue;
            }
            if ev.writer.as_ref().is_some_and(|w| w.pid == me) || !d.engine.relevant(&ev.path) {
                continue;
            }
            if ev.kind == EventKind::Modified {
                pending
                    .entry(ev.path)
                    .or_insert((Instant::now() + Duration::from_millis(200), ev.writer));
                continue;
            }
            pending.remove(&ev.path);
            let (kind, writer) = batch.entry(ev.path).or_insert((ev.kind, None));
            *kind = ev.kind;
            if writer.is_none() {
                *writer = ev.writer;
            }
        }
        let now = Instant::now();
        let due: Vec<PathBuf> = pending
            .iter()
            .filter(|(_, (t, _))| *t <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for p in due {
            if let Some((_, writer)) = pending.remove(&p) {
                batch.insert(p, (EventKind::Changed, writer));
            }
        }
        if batch.is_empty() && pending.is_empty() && !src_ready && busy {
            // Quiet again after a burst: hand its memory back (the coalescing map and
            // the event buffer keep their capacity otherwise).
            busy = false;
            pending.shrink_to_fit();
            events.shrink_to_fit();
            release_free_memory();
        }
        busy |= !batch.is_empty();
        for (path, (kind, writer)) in batch {
            d.on_event(&Event { path, kind, writer });
        }
        d.store_findings();
        while let Ok(den) = deny_rx.try_recv() {
            let fresh = denied_at
                .get(&den.path)
                .is_none_or(|t| t.elapsed() > Duration::from_secs(60));
            if !fresh {
                continue;
            }
            denied_at.insert(den.path.clone(), Instant::now());
            let rel = roots
                .iter()
                .find_map(|r| den.path.strip_prefix(r).ok())
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| den.path.to_string_lossy().into_owned());
            let f = Finding::new(
                Kind::FileDenied,
                Severity::Critical,
                chrono::Utc::now(),
                &d.host,
                tr!(
                    lang,
                    "refused to open {rel}: its content differs from the signed baseline (the shop fails closed instead of running altered payment code)",
                    "{rel} を開くことを拒否しました: 署名付きベースラインと内容が異なります (改ざんされた決済コードを動かさず、安全側で停止しています)"
                ),
            )
            .with_path(rel)
            .with_checklist(&["20-1.1", "pci:11.5.2"])
            .with_evidence(json!({ "opener": mamori_internal::watch::process_info(den.pid) }));
            d.emit(vec![f]);
        }
        while let Ok(ev) = page_rx.try_recv() {
            match ev {
                mamori_page::PageEvent::Finding(f) => d.emit(vec![*f]),
                mamori_page::PageEvent::Error { message, .. } => ctx.warn(&message),
                mamori_page::PageEvent::Round { .. } => {}
            }
        }
        if overflow {
            ctx.warn(&tr!(
                lang,
                "the kernel event queue overflowed; sweeping the whole tree so nothing is missed",
                "カーネルのイベントキューがあふれました。見落としがないよう全体を走査します"
            ));
            d.sweep(true);
            last_sweep = Instant::now();
        } else if last_sweep.elapsed() >= sweep_every {
            d.sweep(source.is_some());
            last_sweep = Instant::now();
        }
    }
    if let Some(e) = egress.as_mut() {
        d.save_egress(e);
    }
    if let Some(e) = follower.as_mut() {
        d.save_entrance(e);
    }
    ctx.note(&tr!(
        lang,
        "mamori watch stopped",
        "mamori watch を停止しました"
    ));
    Ok(0)
}
