//! `mamori baseline [--approve]`: (re)build the signed baseline.

use crate::bail_user;
use crate::ctx::Ctx;
use anyhow::Result;
use clap::Args;
use mamori_core::config::Loaded;
use mamori_core::{Finding, Kind, Severity, tr};
use mamori_internal::baseline;
use serde_json::json;

#[derive(Args, Debug)]
pub struct BaselineArgs {
    /// Accept the changes found since the last baseline (an approved change).
    #[arg(long)]
    pub approve: bool,
    /// A note recorded with the baseline (who approved what, ticket number…).
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

pub fn run(ctx: &Ctx, a: &BaselineArgs) -> Result<u8> {
    let loaded = ctx.config()?;
    let lang = ctx.lang;
    // With --approve the changes are accepted as they are: the old baseline is not read.
    if !a.approve {
        let store = ctx.store()?;
        if let Some(existing) = store.baseline_load()? {
            drop(store);
            // Never silently bless a tampered tree: show what would be accepted.
            let out = super::check::compare(ctx, loaded, existing, false)?;
            if !out.findings.is_empty() {
                ctx.emit(&out.findings)?;
                let n = out.findings.len();
                bail_user!(
                    lang,
                    "{n} change(s) since the last baseline (shown above); review them, then run `mamori baseline --approve` to accept",
                    "前回のベースライン以降に {n} 件の変更があります (上記)。確認してから `mamori baseline --approve` で承認してください"
                );
            }
        }
    }
    let note = a.note.clone().unwrap_or_else(|| {
        if a.approve {
            "approved".into()
        } else {
            "rebuilt".into()
        }
    });
    take(ctx, loaded, &note, false)
}

/// Build and store a new baseline; record it in the event log. Returns the exit code.
pub fn take(ctx: &Ctx, loaded: &Loaded, note: &str, first: bool) -> Result<u8> {
    let lang = ctx.lang;
    let rules = super::check::root_rules(loaded, lang)?;
    let counter = std::sync::atomic::AtomicU64::new(0);
    let t0 = std::time::Instant::now();
    let msg = tr!(lang, "baselining", "ベースライン作成中");
    let built = crate::progress::with_counter(ctx.quiet, &msg, &counter, || {
        baseline::build(&rules, &loaded.config.baseline, &counter)
    });
    super::print_warnings(ctx, &built.warnings);
    let mut store = crate::ctx::open_store(&loaded.db_path(), &loaded.key_file())?;
    let sig = store.baseline_replace(note, &built.entries, &built.copies)?;
    let files = built
        .entries
        .iter()
        .filter(|e| e.ftype == mamori_core::store::FileType::File)
        .count();
    let crit = built
        .entries
        .iter()
        .filter(|e| e.is_critical() && e.ftype == mamori_core::store::FileType::File)
        .count();
    let mib = built.bytes_hashed as f64 / (1024.0 * 1024.0);
    let secs = t0.elapsed().as_secs_f64();
    let gen_ = sig.generation;
    let summary = tr!(
        lang,
        "baseline {gen_} taken: {files} files ({mib:.1} MiB, {crit} critical) in {secs:.1} s, signed",
        "ベースライン {gen_} を作成しました: {files} ファイル ({mib:.1} MiB、重要 {crit}) {secs:.1} 秒、署名済み"
    );
    let kind = if first {
        Kind::BaselineCreated
    } else {
        Kind::BaselineApproved
    };
    let f = Finding::new(
        kind,
        Severity::Info,
        chrono::Utc::now(),
        &ctx.host(),
        summary.clone(),
    )
    .with_checklist(&["20-1.1"])
    .with_evidence(json!({
        "generation": sig.generation,
        "note": note,
        "entries": built.entries.len(),
        "files": files,
        "critical": crit,
        "copies": built.copies.len(),
        "bytes_hashed": built.bytes_hashed,
        "warnings": built.warnings.len(),
        "roots": rules.iter().map(|r| r.key()).collect::<Vec<_>>(),
    }));
    store.append_findings(std::slice::from_ref(&f))?;
    if ctx.json {
        ctx.emit(std::slice::from_ref(&f))?;
    } else {
        println!("{summary}");
    }
    Ok(0)
}
