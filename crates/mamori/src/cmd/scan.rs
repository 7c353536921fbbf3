//! `mamori scan PATH…`: content scanning (skimmers, webshells, obfuscation, card-number
//! stashes). Works with no config file; a `[scan]` table refines it.

use crate::ctx::Ctx;
use anyhow::Result;
use clap::Args;
use mamori_core::tr;
use mamori_scan::{Engine, ScanError, ScanOptions};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Files or directories to scan (directories recursively; links are not followed,
    /// hidden files are scanned).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// A directory (or file) of extra YARA rules (.yar/.yara); may be repeated. Added to
    /// the built-in rules and to `[scan] rules`.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Only these rules: do not load the built-in rule set (needs --rules).
    #[arg(long)]
    pub no_builtin_rules: bool,
    /// Do not scan files larger than this many bytes (default 64 MiB, or [scan] max_size).
    #[arg(long, value_name = "BYTES")]
    pub max_size: Option<u64>,
    /// Worker threads (default: one per core, or [scan] threads).
    #[arg(long, short = 'j', value_name = "N")]
    pub threads: Option<usize>,
}

/// Problems listed one by one before a count.
const SHOW_PROBLEMS: usize = 10;

/// The scan options of the config (`[scan]`), or the defaults without one; also used by
/// `check` and `watch` to scan every new or changed file.
pub fn config_options(ctx: &Ctx) -> Result<ScanOptions> {
    let lang = ctx.lang;
    Ok(match ctx.config_opt() {
        Some(l) => {
            let mut o = match l.config.scan.clone() {
                Some(t) => ScanOptions::from_table(t).map_err(|e| {
                    super::UserError(format!("{}: {}", l.path.display(), e.localized(lang)))
                })?,
                None => ScanOptions::default(),
            };
            o.rules = o.rules.iter().map(|p| l.resolve(p)).collect();
            o
        }
        None => ScanOptions::default(),
    })
}

fn options(ctx: &Ctx, a: &ScanArgs) -> Result<ScanOptions> {
    let mut opts = config_options(ctx)?;
    opts.rules.extend(a.rules.iter().cloned());
    if a.no_builtin_rules {
        opts.builtin_rules = false;
    }
    if let Some(m) = a.max_size {
        opts.max_size = m;
    }
    if let Some(t) = a.threads {
        opts.threads = t;
    }
    Ok(opts)
}

/// `mamori compile-rules` (hidden): the config's rules, compiled, on stdout, for
/// [`ChangeScanner::isolated`].
pub fn compile_rules(ctx: &Ctx) -> Result<u8> {
    use std::io::Write;
    let lang = ctx.lang;
    let opts = config_options(ctx)?;
    let bytes = mamori_scan::rules::compile_to_bytes(opts.builtin_rules, &opts.rules)
        .map_err(|e| super::UserError(e.localized(lang)))?;
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(0)
}

pub fn run(ctx: &Ctx, a: &ScanArgs) -> Result<u8> {
    let lang = ctx.lang;
    let opts = options(ctx, a)?;
    let user = |e: ScanError| super::UserError(e.localized(lang));
    let engine = Engine::new(&opts).map_err(user)?;
    let host = ctx.host();
    let pb = crate::progress::bar(
        ctx.quiet,
        None,
        &tr!(lang, "scanning files", "ファイルを検査中"),
    );
    let rep = engine
        .scan_paths(&a.paths, &host, lang, &|n| pb.set_position(n))
        .map_err(user)?;
    pb.finish_and_clear();

    // A file named on the command line that cannot be read: the scan did not do what
    // was asked (exit 2). Unreadable files found inside a directory are warnings.
    for arg in &a.paths {
        let real = std::fs::canonicalize(arg).unwrap_or_else(|_| arg.clone());
        if real.is_file()
            && let Some(e) = rep
                .problems
                .iter()
                .find(|e| matches!(e, ScanError::Read { path, .. } if *path == real))
        {
            return Err(super::UserError(e.localized(lang)).into());
        }
    }

    for p in rep.problems.iter().take(SHOW_PROBLEMS) {
        ctx.warn(&p.localized(lang));
    }
    if rep.problems.len() > SHOW_PROBLEMS {
        let n = rep.problems.len() - SHOW_PROBLEMS;
        ctx.warn(&tr!(lang, "… and {n} more", "… ほか {n} 件"));
    }
    let s = &rep.stats;
    let (files, mib, secs) = (
        s.files,
        s.bytes as f64 / (1024.0 * 1024.0),
        s.elapsed.as_secs_f64(),
    );
    let (rules, ms) = (s.rules, s.compile_time.as_millis());
    let (large, unread, skipped, timeouts) = (s.too_large, s.unreadable, s.skipped, s.timeouts);
    ctx.note(&tr!(
        lang,
        "{files} files ({mib:.1} MiB) scanned in {secs:.1} s with {rules} rules (compiled in {ms} ms); not scanned: {large} too large, {unread} unreadable, {timeouts} timed out, {skipped} skipped (links, devices, excluded)",
        "{files} ファイル ({mib:.1} MiB) を {secs:.1} 秒で検査しました (ルール {rules} 件、コンパイル {ms} ms)。未検査: 大きすぎる {large} 件、読めない {unread} 件、時間切れ {timeouts} 件、対象外 {skipped} 件 (リンク、デバイス、除外)"
    ));
    if let Some(l) = ctx.config_opt()
        && let Ok(mut store) = crate::ctx::open_store(&l.db_path(), &l.key_file())
    {
        store.append_findings(&rep.findings)?;
    }
    ctx.emit(&rep.findings)
}

/// Scan the files that `check` or `watch` found new or changed, so a finding says *what*
/// the change is (skimmer, webshell, stash), not only *that* a file changed. Findings
/// carry the root and the root-relative path of the change.
pub struct ChangeScanner {
    engine: Engine,
    host: String,
    lang: mamori_core::Lang,
}

impl ChangeScanner {
    /// Compile the rules of the config once (built-in rules plus `[scan] rules`).
    pub fn new(ctx: &Ctx) -> Result<ChangeScanner> {
        let lang = ctx.lang;
        let opts = config_options(ctx)?;
        let engine =
            Engine::new(&opts).map_err(|e: ScanError| super::UserError(e.localized(lang)))?;
        Ok(ChangeScanner::with_engine(ctx, engine))
    }

    /// [`ChangeScanner::new`] for a long-running daemon: the rules are compiled by a
    /// child process of this same binary (`mamori compile-rules`) and loaded here, so
    /// the compiler's code (cranelift: ~5.5 MiB of resident code in a 100k-file shop's
    /// `watch`) and its working memory are never the daemon's. A rule error is the
    /// child's one line; if no child can be run, the rules are compiled here.
    pub fn isolated(ctx: &Ctx) -> Result<ChangeScanner> {
        let lang = ctx.lang;
        let opts = config_options(ctx)?;
        let user = |e: ScanError| super::UserError(e.localized(lang));
        // This very binary, even if the file was replaced since it started.
        let mut child = std::process::Command::new("/proc/self/exe");
        if let Some(l) = ctx.config_opt() {
            child.arg("--config").arg(&l.path);
        }
        child
            .args(["--lang", lang.code(), "compile-rules"])
            .env_remove("NOTIFY_SOCKET")
            .stdin(std::process::Stdio::null());
        let engine = match child.output() {
            Ok(out) if out.status.success() => {
                Engine::from_compiled(&opts, &out.stdout).map_err(user)?
            }
            Ok(out) if out.status.code() == Some(2) => {
                // "mamori: error: WHAT": the child's one line, as this process would say it.
                let err = String::from_utf8_lossy(&out.stderr);
                let line = err.lines().last().unwrap_or_default();
                let msg = line
                    .split_once(": ")
                    .and_then(|(_, rest)| rest.split_once(": "))
                    .map_or(line, |(_, m)| m);
                return Err(super::UserError(msg.to_string()).into());
            }
            _ => Engine::new(&opts).map_err(user)?,
        };
        Ok(ChangeScanner::with_engine(ctx, engine))
    }

    fn with_engine(ctx: &Ctx, engine: Engine) -> ChangeScanner {
        ChangeScanner {
            engine,
            host: ctx.host(),
            lang: ctx.lang,
        }
    }

    /// Scan changed files (absolute path, root key, relative path) with one scanner; a
    /// file that cannot be scanned is a warning, not an error.
    pub fn scan(
        &self,
        ctx: &Ctx,
        targets: &[(PathBuf, String, String)],
    ) -> Vec<mamori_core::Finding> {
        let mut worker = self.worker();
        let mut out = Vec::new();
        for (abs, root, rel) in targets {
            worker.scan_into(ctx, &mut out, abs, root, rel);
        }
        out
    }

    /// A scanner kept for many scans (a daemon's: creating yara-x's scanner costs more
    /// than scanning a small file, and a burst of new files is thousands of scans).
    pub fn worker(&self) -> ChangeWorker<'_> {
        ChangeWorker {
            scanner: self,
            worker: self.engine.worker(),
        }
    }

    /// The findings of `check`/`watch` whose files should be scanned: added or modified
    /// regular files. Returns (absolute path, root key, relative path).
    pub fn targets(
        rules: &[std::sync::Arc<mamori_internal::rules::RootRules>],
        findings: &[mamori_core::Finding],
    ) -> Vec<(PathBuf, String, String)> {
        use mamori_core::Kind;
        findings
            .iter()
            .filter(|f| matches!(f.kind, Kind::FileAdded | Kind::FileModified))
            .filter_map(|f| {
                let rel = f.path.as_ref()?;
                let r = rules
                    .iter()
                    .find(|r| f.root.as_deref() == Some(&r.key()[..]))?;
                let abs = r.root.join(rel);
                std::fs::symlink_metadata(&abs)
                    .ok()
                    .filter(|m| m.is_file())
                    .map(|_| (abs, r.key(), rel.clone()))
            })
            .collect()
    }
}

/// One [`ChangeScanner`]'s yara-x scanner and read buffer, reused from scan to scan.
pub struct ChangeWorker<'s> {
    scanner: &'s ChangeScanner,
    worker: mamori_scan::Worker<'s>,
}

impl ChangeWorker<'_> {
    /// Scan the file at `abs` (shown as `rel` under `root`) and add its findings to
    /// `out`; a file that cannot be scanned is a warning, not an error.
    pub fn scan_into(
        &mut self,
        ctx: &Ctx,
        out: &mut Vec<mamori_core::Finding>,
        abs: &Path,
        root: &str,
        rel: &str,
    ) {
        let (host, lang) = (&self.scanner.host, self.scanner.lang);
        match self.worker.scan_file(abs, rel, host, lang) {
            Ok(fs) => out.extend(fs.into_iter().map(|f| f.with_root(root))),
            Err(e) => ctx.warn(&e.localized(lang)),
        }
    }
}
