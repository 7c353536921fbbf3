//! mamori-entrance: the entrance layer. Reads web/app access logs and reports attacks
//! as [`mamori_core::Finding`]s.
//!
//! * **Log sources** ([`parse`]): nginx/Apache `combined` and `common`, JSON lines with
//!   nginx variable names (mappable), detected per line; gzip'd rotated files; malformed
//!   lines (binary, invalid UTF-8, lines over 64 KiB) are counted and skipped.
//! * **Per request** ([`classify`]): `attack.request` with evidence `family` ∈
//!   `sqli, xss, traversal, cmdi, sensitive_file, admin_probe, exploit_path, scanner, webshell`.
//! * **Behaviour over time** (replayed by log time, so results are deterministic):
//!   `attack.bruteforce`, `attack.credential_stuffing`, `attack.password_spraying`,
//!   `attack.card_testing` and the slow multi-address `attack.campaign`.
//! * **Responses** ([`block`]): `block.added` / `block.removed` with expiry, applied
//!   through nftables, an nginx deny file, or only reported.
//!
//! * **Follow mode** ([`follow`]): tail logs live for `mamori watch`, through rotation
//!   and copytruncate, resuming at the exact byte after a restart, with the detectors'
//!   memory saved and restored ([`follow::Follower::save_state`]) and blocks applied live.
//!
//! The batch entry point is [`analyze`]:
//!
//! ```no_run
//! use mamori_entrance::{analyze, LogsOptions};
//! use mamori_core::Lang;
//! let opts = LogsOptions { files: vec!["/var/log/nginx/access.log".into()], ..Default::default() };
//! let report = analyze(&opts, "shop-1", Lang::Ja, &|_lines| {})?;
//! for f in &report.findings { println!("{}", f.to_json_line()); }
//! eprintln!("{} lines, {} malformed", report.stats.lines, report.stats.malformed);
//! # Ok::<(), mamori_entrance::EntranceError>(())
//! ```

pub mod block;
pub mod classify;
pub mod config;
pub mod decode;
mod engine;
pub mod follow;
pub mod parse;

pub use block::{BlockBackend, BlockEntry, BlockError, BotVerifier, DnsBotVerifier, NoBotVerifier};
pub use config::{BlockMode, EntranceConfig};
pub use engine::{Advice, EngineStats};
pub use parse::{JsonFields, LogFormat};

use chrono::{DateTime, Utc};
use flate2::read::MultiGzDecoder;
use ipnet::IpNet;
use mamori_core::{Finding, Lang};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Longest line considered; longer ones are counted as malformed and skipped.
pub const MAX_LINE: usize = 64 * 1024;

/// What to analyse and how. `Default` gives sensible defaults (no config file needed).
#[derive(Clone, Default)]
pub struct LogsOptions {
    /// Access logs, plain or gzip (detected by magic bytes, not name). Rotated sets may be
    /// given in any order: files are read in the order of their first timestamp.
    pub files: Vec<PathBuf>,
    /// Ignore lines before this time.
    pub since: Option<DateTime<Utc>>,
    /// Force a format instead of per-line detection.
    pub format: Option<LogFormat>,
    /// Apply blocks through this backend (`None`: no `block.*` findings, nothing applied).
    pub block: Option<BlockBackend>,
    /// Extra allow-listed addresses/networks (added to `config.allow`).
    pub allow: Vec<IpNet>,
    /// The `[entrance]` config section (defaults if absent).
    pub config: EntranceConfig,
    /// Search-bot verification before blocking. `None` uses reverse+forward DNS
    /// ([`DnsBotVerifier`]), which is consulted only for addresses about to be blocked
    /// whose user agent claims a crawler. Tests inject [`NoBotVerifier`] or a fake.
    pub bot_verifier: Option<Arc<dyn BotVerifier>>,
}

impl std::fmt::Debug for LogsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogsOptions")
            .field("files", &self.files)
            .field("since", &self.since)
            .field("format", &self.format)
            .field("block", &self.block)
            .field("allow", &self.allow)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Counters of one run.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct LogsStats {
    pub files: usize,
    /// Lines read (including malformed and skipped ones).
    pub lines: u64,
    /// Lines that could not be parsed (counted and skipped).
    pub malformed: u64,
    /// Lines before `since`.
    pub skipped_before_since: u64,
    /// Parsed lines per format (`combined`, `common`, `json`).
    pub per_format: BTreeMap<String, u64>,
    /// The format detected for each file (from its first parsable lines).
    pub file_formats: BTreeMap<String, String>,
    pub engine: EngineStats,
    pub first_event: Option<DateTime<Utc>>,
    pub last_event: Option<DateTime<Utc>>,
}

/// The result of [`analyze`].
#[derive(Debug, Clone)]
pub struct LogsReport {
    /// Findings ordered by event time. Aggregate findings (campaign, stuffing, spraying,
    /// card testing) carry their final member list in `ips`.
    pub findings: Vec<Finding>,
    pub stats: LogsStats,
    /// Blocks still active at the last event time (what was applied).
    pub active_blocks: Vec<BlockEntry>,
    /// The nftables script or nginx file content applied (or, in dry-run, to apply).
    pub block_script: Option<String>,
    /// Addresses that must not be banned (shared/CGNAT): what to do instead.
    pub advice: Vec<Advice>,
}

/// Errors of [`analyze`]; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum EntranceError {
    #[error("{path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: read error after {line} lines: {source}")]
    Read {
        path: PathBuf,
        line: u64,
        source: std::io::Error,
    },
    #[error("no log files given")]
    NoFiles,
    #[error("blocking through {backend} failed: {source}")]
    Block {
        backend: &'static str,
        source: BlockError,
    },
}

/// Open a log, transparently decompressing gzip.
fn open(path: &Path) -> Result<Box<dyn BufRead>, EntranceError> {
    let mut f = File::open(path).map_err(|e| EntranceError::Open {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(|e| EntranceError::Open {
        path: path.to_path_buf(),
        source: e,
    })?;
    let f = File::open(path).map_err(|e| EntranceError::Open {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            MultiGzDecoder::new(BufReader::with_capacity(64 * 1024, f)),
        ))
    } else {
        Box::new(BufReader::with_capacity(256 * 1024, f))
    })
}

/// Reads lines of at most [`MAX_LINE`] bytes; longer ones are reported as `Err(())` and
/// skipped without being held in memory.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: Vec::with_capacity(4096),
        }
    }

    /// `Ok(None)` at end of input; `Ok(Some(Ok(line)))` or `Ok(Some(Err(())))` for an
    /// over-long line.
    #[allow(clippy::type_complexity)]
    pub fn next_line(&mut self) -> std::io::Result<Option<Result<&[u8], ()>>> {
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            any = true;
            match memchr::memchr(b'\n', avail) {
                Some(p) => {
                    if !too_long && self.buf.len() + p <= MAX_LINE {
                        self.buf.extend_from_slice(&avail[..p]);
                    } else {
                        too_long = true;
                    }
                    self.inner.consume(p + 1);
                    break;
                }
                None => {
                    let n = avail.len();
                    if !too_long && self.buf.len() + n <= MAX_LINE {
                        self.buf.extend_from_slice(avail);
                    } else {
                        too_long = true;
                        self.buf.clear();
                    }
                    self.inner.consume(n);
                }
            }
        }
        if !any {
            return Ok(None);
        }
        if too_long {
            return Ok(Some(Err(())));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some(Ok(&self.buf)))
    }
}

/// First parsable timestamp of a file (to order rotated files), and its format.
fn probe_file(path: &Path, opts: &LogsOptions) -> (Option<i64>, Option<LogFormat>) {
    let Ok(r) = open(path) else {
        return (None, None);
    };
    let mut lr = LineReader::new(r);
    let mut scratch = parse::Scratch::default();
    for _ in 0..50 {
        match lr.next_line() {
            Ok(Some(Ok(line))) => {
                if let Ok(req) =
                    parse::parse_line(line, opts.format, &opts.config.json_fields, &mut scratch)
                {
                    return (Some(req.time), Some(req.format));
                }
            }
            Ok(Some(Err(()))) => continue,
            _ => break,
        }
    }
    (None, None)
}

/// Analyse access logs and return findings and statistics.
///
/// * `host`: the host name findings are about.
/// * `lang`: language of summaries.
/// * `progress`: called with the number of lines read so far, every 65,536 lines and
///   once at the end (drive a spinner or bar; it must be cheap).
///
/// Deterministic: time comes from the logs, never the wall clock (except each finding's
/// `detected_at`). With `opts.block` set, blocks still active at the last event time are
/// applied through the backend at the end (`report.block_script` holds what was applied).
pub fn analyze(
    opts: &LogsOptions,
    host: &str,
    lang: Lang,
    progress: &dyn Fn(u64),
) -> Result<LogsReport, EntranceError> {
    if opts.files.is_empty() {
        return Err(EntranceError::NoFiles);
    }
    let mut cfg = opts.config.clone();
    cfg.allow.extend(opts.allow.iter().copied());
    let verifier: Arc<dyn BotVerifier> = opts
        .bot_verifier
        .clone()
        .unwrap_or_else(|| Arc::new(DnsBotVerifier::default()));
    let cfg = Arc::new(cfg);
    let mut engine = engine::Engine::new(
        Arc::clone(&cfg),
        host,
        lang,
        opts.block.is_some(),
        Some(verifier),
    );
    let mut stats = LogsStats {
        files: opts.files.len(),
        ..Default::default()
    };
    // Order files by their first timestamp (rotated sets: oldest first).
    let mut files: Vec<(Option<i64>, &PathBuf)> = Vec::new();
    for p in &opts.files {
        let (t, fmt) = probe_file(p, opts);
        if let Some(fmt) = fmt {
            stats
                .file_formats
                .insert(p.display().to_string(), fmt.as_str().to_string());
        }
        files.push((t, p));
    }
    files.sort_by_key(|(t, _)| t.unwrap_or(i64::MAX));
    let since = opts.since.map(|s| s.timestamp());
    let mut scratch = parse::Scratch::default();
    let mut per_format = [0u64; 3];
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for (_, path) in files {
        let mut lr = LineReader::new(open(path)?);
        loop {
            let item = lr.next_line().map_err(|e| EntranceError::Read {
                path: path.clone(),
                line: stats.lines,
                source: e,
            })?;
            let Some(item) = item else { break };
            stats.lines += 1;
            if stats.lines & 0xffff == 0 {
                progress(stats.lines);
            }
            let Ok(line) = item else {
                stats.malformed += 1;
                continue;
            };
            match parse::parse_line(line, opts.format, &cfg.json_fields, &mut scratch) {
                Ok(req) => {
                    if since.is_some_and(|s| req.time < s) {
                        stats.skipped_before_since += 1;
                        continue;
                    }
                    per_format[req.format as usize] += 1;
                    first = first.min(req.time);
                    last = last.max(req.time);
                    engine.observe(&req);
                }
                Err(parse::ParseError::Empty) => {}
                Err(_) => stats.malformed += 1,
            }
        }
    }
    progress(stats.lines);
    engine.finish();
    for (i, n) in per_format.iter().enumerate() {
        if *n > 0 {
            let f = [LogFormat::Combined, LogFormat::Common, LogFormat::Json][i];
            stats.per_format.insert(f.as_str().to_string(), *n);
        }
    }
    if first != i64::MAX {
        stats.first_event = DateTime::from_timestamp(first, 0);
        stats.last_event = DateTime::from_timestamp(last, 0);
    }
    let active_blocks = engine.active_blocks();
    let block_script = match &opts.block {
        Some(b) => Some(b.apply(&active_blocks).map_err(|e| EntranceError::Block {
            backend: b.name(),
            source: e,
        })?),
        None => None,
    };
    engine.stats.tracked_ips_peak = engine.stats.tracked_ips_peak.max(engine.tracked());
    stats.engine = engine.stats.clone();
    let advice = std::mem::take(&mut engine.advice);
    let mut findings = std::mem::take(&mut engine.findings);
    findings.sort_by_key(|f| f.time);
    Ok(LogsReport {
        findings,
        stats,
        active_blocks,
        block_script,
        advice,
    })
}

/// Parse one raw line for fuzzing and tests: never panics, whatever the bytes.
pub fn parse_line_for_fuzz(data: &[u8]) -> bool {
    let mut s = parse::Scratch::default();
    let f = JsonFields::default();
    let ok = parse::parse_line(data, None, &f, &mut s).is_ok();
    let (mut o, mut t) = (Vec::new(), Vec::new());
    decode::normalize(data, &mut o, &mut t);
    static CLS: std::sync::OnceLock<classify::Classifier> = std::sync::OnceLock::new();
    let _ = CLS
        .get_or_init(classify::Classifier::new)
        .classify(b"GET", &o, 404, data);
    ok
}
