//! The engine: compiled rules shared by every thread, one yara-x scanner per worker, the
//! card-stash finder and the magic check, and the findings they turn into.

use crate::rules::{RuleInfo, RuleSet, Tier};
use crate::stash::{self, StashOptions};
use crate::{ScanError, ScanOptions, magic};
use chrono::{DateTime, Utc};
use mamori_core::{Finding, Kind, Lang, Severity, pan, tr};
use serde_json::{Value, json};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

/// Matches listed per rule in a finding's evidence.
const MAX_MATCHES_SHOWN: usize = 5;
/// Bytes of matched text shown per match.
const SNIPPET_BYTES: usize = 120;

/// Compiled rules and settings; `Send + Sync`, build it once and share it.
pub struct Engine {
    pub(crate) rules: RuleSet,
    pub(crate) opts: ScanOptions,
    stash: StashOptions,
}

impl Engine {
    /// Compile the rules (built-in unless switched off, plus `opts.rules`).
    pub fn new(opts: &ScanOptions) -> Result<Engine, ScanError> {
        opts.validate()?;
        let rules = crate::rules::compile(opts.builtin_rules, &opts.rules)?;
        Ok(Engine::with_rules(opts, rules))
    }

    /// The rules of `opts` compiled elsewhere ([`crate::rules::compile_to_bytes`] in a
    /// process of this binary), loaded.
    pub fn from_compiled(opts: &ScanOptions, bytes: &[u8]) -> Result<Engine, ScanError> {
        opts.validate()?;
        let rules = crate::rules::load(opts.builtin_rules, &opts.rules, bytes)?;
        Ok(Engine::with_rules(opts, rules))
    }

    fn with_rules(opts: &ScanOptions, rules: RuleSet) -> Engine {
        Engine {
            rules,
            opts: opts.clone(),
            stash: StashOptions {
                min_cards: opts.min_cards,
                ..StashOptions::default()
            },
        }
    }

    /// The compiled rules (names, kinds, tiers, compile time).
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn options(&self) -> &ScanOptions {
        &self.opts
    }

    /// A scanner for one thread. Reuse it for many files: creating one costs more than
    /// scanning a small file.
    pub fn worker(&self) -> Worker<'_> {
        let mut scanner = yara_x::Scanner::new(&self.rules.rules);
        scanner.set_timeout(Duration::from_secs(self.opts.timeout_secs));
        Worker {
            engine: self,
            scanner,
            buf: Vec::new(),
        }
    }

    /// Scan one file (for `check` and `watch`: every new or changed file). `shown` is the
    /// path the findings carry (relative to the watched root there). A file over
    /// `max_size`, a non-regular file or an unreadable one is an `Err` the caller
    /// notes and goes on.
    pub fn scan_file(
        &self,
        path: &Path,
        shown: &str,
        host: &str,
        lang: Lang,
    ) -> Result<Vec<Finding>, ScanError> {
        self.worker().scan_file(path, shown, host, lang)
    }
}

/// One thread's scanner and read buffer.
pub struct Worker<'e> {
    engine: &'e Engine,
    scanner: yara_x::Scanner<'e>,
    buf: Vec<u8>,
}

impl<'e> Worker<'e> {
    /// Read and scan the regular file at `path` (never following a symbolic link at the
    /// last component, never blocking on a FIFO).
    pub fn scan_file(
        &mut self,
        path: &Path,
        shown: &str,
        host: &str,
        lang: Lang,
    ) -> Result<Vec<Finding>, ScanError> {
        self.scan_file_counted(path, shown, host, lang)
            .map(|(findings, _)| findings)
    }

    /// As [`Worker::scan_file`], also returning the bytes scanned.
    pub fn scan_file_counted(
        &mut self,
        path: &Path,
        shown: &str,
        host: &str,
        lang: Lang,
    ) -> Result<(Vec<Finding>, u64), ScanError> {
        let read_err = |source| ScanError::Read {
            path: path.to_path_buf(),
            source,
        };
        let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits())
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(nix::libc::ELOOP) {
                    ScanError::NotRegular {
                        path: path.to_path_buf(),
                    }
                } else {
                    read_err(e)
                }
            })?;
        let meta = f.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(ScanError::NotRegular {
                path: path.to_path_buf(),
            });
        }
        let size = meta.len();
        if size > self.engine.opts.max_size {
            return Err(ScanError::TooLarge {
                path: path.to_path_buf(),
                size,
                limit: self.engine.opts.max_size,
            });
        }
        let mtime = meta.modified().ok().map(DateTime::<Utc>::from);
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.reserve(size as usize);
        // Read at most max_size + 1 bytes: a file growing while we read stays bounded.
        let res = (&mut f)
            .take(self.engine.opts.max_size + 1)
            .read_to_end(&mut buf);
        let out = match res {
            Err(e) => Err(read_err(e)),
            Ok(_) if buf.len() as u64 > self.engine.opts.max_size => Err(ScanError::TooLarge {
                path: path.to_path_buf(),
                size: buf.len() as u64,
                limit: self.engine.opts.max_size,
            }),
            Ok(_) => self
                .scan_bytes_at(&buf, path, shown, mtime, host, lang)
                .map(|findings| (findings, buf.len() as u64)),
        };
        if buf.capacity() > 8 << 20 {
            buf = Vec::new();
        }
        self.buf = buf;
        out
    }

    /// Scan bytes already in memory. `shown` decides the extension checks and is the
    /// findings' `path`; `mtime` is their `time` (now if unknown).
    pub fn scan_bytes(
        &mut self,
        data: &[u8],
        shown: &str,
        mtime: Option<DateTime<Utc>>,
        host: &str,
        lang: Lang,
    ) -> Result<Vec<Finding>, ScanError> {
        self.scan_bytes_at(data, Path::new(shown), shown, mtime, host, lang)
    }

    fn scan_bytes_at(
        &mut self,
        data: &[u8],
        path: &Path,
        shown: &str,
        mtime: Option<DateTime<Utc>>,
        host: &str,
        lang: Lang,
    ) -> Result<Vec<Finding>, ScanError> {
        let engine = self.engine;
        let time = mtime.unwrap_or_else(Utc::now);
        let mut findings = Vec::new();

        // 1. The rules.
        let mut hits: Vec<(&RuleInfo, Vec<Value>)> = Vec::new();
        {
            let results = match self.scanner.scan(data) {
                Ok(r) => r,
                Err(yara_x::ScanError::Timeout) => {
                    return Err(ScanError::Timeout {
                        path: path.to_path_buf(),
                        secs: engine.opts.timeout_secs,
                    });
                }
                Err(e) => {
                    return Err(ScanError::Engine {
                        path: path.to_path_buf(),
                        msg: e.to_string(),
                    });
                }
            };
            for r in results.matching_rules() {
                let Some(info) = engine.rules.info(r.namespace(), r.identifier()) else {
                    continue;
                };
                let mut shown_matches = Vec::new();
                'pats: for p in r.patterns() {
                    for m in p.matches() {
                        if shown_matches.len() >= MAX_MATCHES_SHOWN {
                            break 'pats;
                        }
                        let range = m.range();
                        shown_matches.push(json!({
                            "pattern": p.identifier(),
                            "offset": range.start,
                            "length": range.len(),
                            "line": line_of(data, range.start),
                            "snippet": snippet(m.data()),
                        }));
                    }
                }
                hits.push((info, shown_matches));
            }
        }

        let magic = if engine.opts.magic {
            magic::check(shown, data)
        } else {
            magic::Magic::Ok
        };
        let magic_json = magic_evidence(&magic);

        if !hits.is_empty() {
            findings.push(rule_finding(
                &hits,
                shown,
                time,
                host,
                lang,
                data.len(),
                magic_json.clone(),
            ));
        }

        // 2. Card numbers at rest.
        if engine.opts.card_stash {
            let rep = stash::analyze(data);
            let docs = stash::is_docs_or_test(shown);
            if rep.is_stash(&engine.stash, docs) {
                findings.push(stash_finding(&rep, shown, time, host, lang, magic_json));
            } else if hits.is_empty() && magic != magic::Magic::Ok {
                findings.push(magic_finding(&magic, shown, time, host, lang, magic_json));
            }
        } else if hits.is_empty() && magic != magic::Magic::Ok {
            findings.push(magic_finding(&magic, shown, time, host, lang, magic_json));
        }
        Ok(findings)
    }
}

/// 1-based line of byte `offset`.
fn line_of(data: &[u8], offset: usize) -> usize {
    memchr::memchr_iter(b'\n', &data[..offset.min(data.len())]).count() + 1
}

/// Matched bytes as one printable line, cut, card numbers masked.
fn snippet(d: &[u8]) -> String {
    let cut = &d[..d.len().min(SNIPPET_BYTES)];
    let s: String = String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut s = pan::mask_pans(&s).into_owned();
    if d.len() > SNIPPET_BYTES {
        s.push('…');
    }
    s
}

/// Which kind wins when rules of several kinds match one file.
fn precedence(k: Kind) -> u8 {
    match k {
        Kind::MalwareSkimmer => 4,
        Kind::MalwareWebshell => 3,
        Kind::DataCardStash => 2,
        _ => 1,
    }
}

fn what(kind: Kind, tier: Tier, lang: Lang) -> String {
    let sure = tier == Tier::Confirmed;
    match (kind, sure) {
        (Kind::MalwareSkimmer, true) => tr!(
            lang,
            "card skimmer code",
            "カード情報を盗むスキマーのコード"
        ),
        (Kind::MalwareSkimmer, false) => tr!(
            lang,
            "possible card skimmer code",
            "スキマーの疑いがあるコード"
        ),
        (Kind::MalwareWebshell, true) => tr!(
            lang,
            "webshell (remote control backdoor)",
            "Web シェル (遠隔操作の裏口)"
        ),
        (Kind::MalwareWebshell, false) => {
            tr!(lang, "possible webshell", "Web シェルの疑いがあるコード")
        }
        (Kind::DataCardStash, _) => tr!(lang, "card-number stash", "カード番号の隠し保存"),
        (_, true) => tr!(lang, "obfuscated code", "難読化されたコード"),
        (_, false) => tr!(lang, "possibly obfuscated code", "難読化の疑いがあるコード"),
    }
}

fn rule_finding(
    hits: &[(&RuleInfo, Vec<Value>)],
    shown: &str,
    time: DateTime<Utc>,
    host: &str,
    lang: Lang,
    size: usize,
    magic: Option<Value>,
) -> Finding {
    let best = hits
        .iter()
        .max_by_key(|(i, _)| (i.tier, precedence(i.kind), i.severity))
        .map(|(i, _)| *i)
        .expect("hits is not empty");
    let severity = hits
        .iter()
        .map(|(i, _)| i.severity)
        .max()
        .unwrap_or(Severity::Medium);
    let tier = hits
        .iter()
        .map(|(i, _)| i.tier)
        .max()
        .unwrap_or(Tier::Heuristic);
    let w = what(best.kind, tier, lang);
    let rule = &best.name;
    let more = hits.len() - 1;
    let summary = if more == 0 {
        tr!(
            lang,
            "{w} in {shown} (rule {rule})",
            "{shown} に{w} (ルール {rule})"
        )
    } else {
        tr!(
            lang,
            "{w} in {shown} (rule {rule} and {more} more)",
            "{shown} に{w} (ルール {rule} ほか {more} 件)"
        )
    };
    let rules: Vec<Value> = hits
        .iter()
        .map(|(i, m)| {
            json!({
                "rule": i.name,
                "file": i.source,
                "kind": i.kind.as_str(),
                "tier": i.tier.as_str(),
                "severity": i.severity.as_str(),
                "description": i.description,
                "matches": m,
            })
        })
        .collect();
    let mut ev = json!({
        "tier": tier.as_str(),
        "rules": rules,
        "size": size,
    });
    if let Some(m) = magic {
        ev["magic"] = m;
    }
    Finding::new(best.kind, severity, time, host, summary)
        .with_path(shown)
        .with_checklist(&["20-1.1", "pci:5.2", "pci:11.5.1"])
        .with_evidence(ev)
}

fn magic_evidence(m: &magic::Magic) -> Option<Value> {
    match m {
        magic::Magic::Ok => None,
        magic::Magic::TextInBinaryName { ext, what } => Some(json!({
            "extension": ext, "content": what, "note": "the name says binary, the content is text"
        })),
        magic::Magic::TextAppended {
            ext,
            format,
            offset,
            len,
        } => Some(json!({
            "extension": ext, "format": format, "appended_at": offset, "appended_bytes": len,
            "note": "text after the end of the image data"
        })),
    }
}

fn stash_finding(
    rep: &stash::StashReport,
    shown: &str,
    time: DateTime<Utc>,
    host: &str,
    lang: Lang,
    magic: Option<Value>,
) -> Finding {
    let n = rep.count;
    let enc: Vec<&str> = rep.encodings.iter().map(String::as_str).collect();
    let e = enc.join(", ");
    let summary = tr!(
        lang,
        "{n} card number(s) stored in {shown} ({e}): a skimmer's stash?",
        "{shown} にカード番号 {n} 件が保存されています ({e})。スキマーの隠し保存の可能性"
    );
    let mut ev = json!({
        "tier": "confirmed",
        "count": n,
        "encoding": enc.first().copied().unwrap_or("plain"),
        "encodings": enc,
        "samples": rep.samples,
        "brands": rep.brands,
        "card_shaped": rep.shaped,
        "luhn_valid": rep.valid,
        "with_context": rep.with_context,
        "test_numbers_ignored": rep.test_numbers,
    });
    if let Some(m) = magic {
        ev["magic"] = m;
    }
    Finding::new(Kind::DataCardStash, Severity::Critical, time, host, summary)
        .with_path(shown)
        .with_checklist(&["20-1.1", "pci:3.3.1", "pci:3.5.1"])
        .with_evidence(ev)
}

fn magic_finding(
    m: &magic::Magic,
    shown: &str,
    time: DateTime<Utc>,
    host: &str,
    lang: Lang,
    magic: Option<Value>,
) -> Finding {
    let summary = match m {
        magic::Magic::TextAppended { format, .. } => tr!(
            lang,
            "{shown}: text hidden after the {format} image data (a disguised stash or code?)",
            "{shown}: {format} 画像データの後ろにテキストが隠されています (偽装した保存ファイルかコードの可能性)"
        ),
        _ => tr!(
            lang,
            "{shown}: an image or font name but the content is text (a disguised file?)",
            "{shown}: 画像/フォントの名前なのに中身がテキストです (偽装ファイルの可能性)"
        ),
    };
    let mut ev = json!({ "tier": "heuristic", "count": 0 });
    if let Some(v) = magic {
        ev["magic"] = v;
    }
    Finding::new(Kind::DataCardStash, Severity::Medium, time, host, summary)
        .with_path(shown)
        .with_checklist(&["20-1.1"])
        .with_evidence(ev)
}
