//! `mamori check`: the tree against the signed baseline, plus the store's own integrity.

use crate::ctx::Ctx;
use anyhow::Result;
use clap::Args;
use mamori_core::config::Loaded;
use mamori_core::store::{ChainStatus, LoadedBaseline};
use mamori_core::{Finding, Kind, Severity, tr};
use mamori_internal::check::{self, CheckOptions};
use mamori_internal::rules::RootRules;
use serde_json::json;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Re-hash every file, not only those whose metadata changed (catches a clock turned
    /// back; slower).
    #[arg(long)]
    pub full: bool,
    /// Lines of unified diff shown for changed critical text files (0 = none).
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub diff_lines: usize,
}

pub struct Compared {
    pub findings: Vec<Finding>,
}

pub fn root_rules(loaded: &Loaded, lang: mamori_core::Lang) -> Result<Vec<Arc<RootRules>>> {
    loaded
        .roots()
        .iter()
        .map(|rc| {
            RootRules::new(rc, &loaded.path)
                .map(Arc::new)
                .map_err(|e| anyhow::Error::new(super::UserError(e.localized(lang))))
        })
        .collect()
}

fn tampered(ctx: &Ctx, what: &str, reason: &str) -> Finding {
    let lang = ctx.lang;
    let summary = match what {
        "baseline" => tr!(
            lang,
            "the signed baseline failed its integrity check ({reason}): someone edited mamori's store; do not trust it until you have re-checked the shop by other means",
            "署名付きベースラインの完全性検査に失敗しました ({reason})。mamori のストアが書き換えられています。別の手段でショップを確認するまで信用しないでください"
        ),
        _ => tr!(
            lang,
            "the event log failed its hash-chain check ({reason}): findings were altered or removed",
            "イベントログのハッシュチェーン検査に失敗しました ({reason})。検出記録が改ざん・削除されています"
        ),
    };
    Finding::new(
        Kind::BaselineTampered,
        Severity::Critical,
        chrono::Utc::now(),
        &ctx.host(),
        summary,
    )
    .with_checklist(&["20-1.1"])
    .with_evidence(json!({ "what": what, "reason": reason }))
}

/// Compare the tree with `base`, report tampering of the baseline itself first.
pub fn compare(ctx: &Ctx, loaded: &Loaded, base: LoadedBaseline, full: bool) -> Result<Compared> {
    let rules = root_rules(loaded, ctx.lang)?;
    compare_with(ctx, loaded, &rules, Against::Loaded(base, full), 200)
}

/// What the tree is compared with.
enum Against {
    /// A baseline already in memory (`--full`, or a caller that had it anyway).
    Loaded(LoadedBaseline, bool),
    /// The stat walk merged with the baseline as it streamed from the store, and the
    /// signature's verdict.
    Merged(check::Merge, Option<String>),
}

fn compare_with(
    ctx: &Ctx,
    loaded: &Loaded,
    rules: &[Arc<RootRules>],
    against: Against,
    diff_lines: usize,
) -> Result<Compared> {
    let mut findings = Vec::new();
    let (reason, full) = match &against {
        Against::Loaded(b, full) => (b.tampered.as_deref(), *full),
        Against::Merged(_, t) => (t.as_deref(), false),
    };
    if let Some(reason) = reason {
        findings.push(tampered(ctx, "baseline", reason));
    }
    let store = crate::ctx::open_store(&loaded.db_path(), &loaded.key_file())?;
    if let ChainStatus::Broken { reason, .. } = store.verify_events()? {
        findings.push(tampered(ctx, "event_log", &reason));
    }
    let max_copy = loaded.config.baseline.max_copy_size;
    let copy = |root: &str, path: &[u8]| -> Option<Vec<u8>> {
        let (codec, data) = store.baseline_copy(root, path).ok()??;
        check::decode_copy(&codec, &data, max_copy)
    };
    let host = ctx.host();
    let opts = CheckOptions {
        cfg: &loaded.config.baseline,
        full,
        host: &host,
        lang: ctx.lang,
        diff_lines,
    };
    let out = match against {
        Against::Merged(m, _) => m.finish(&copy, &opts),
        Against::Loaded(base, _) => {
            let counter = std::sync::atomic::AtomicU64::new(0);
            let msg = tr!(ctx.lang, "checking", "検査中");
            crate::progress::with_counter(ctx.quiet, &msg, &counter, || {
                check::check(rules, &base.entries, &copy, &opts, &counter)
            })
        }
    };
    super::print_warnings(ctx, &out.warnings);
    findings.extend(out.findings);
    // What is each new or changed file? (rules compiled only when something changed)
    let targets = super::scan::ChangeScanner::targets(rules, &findings);
    if !targets.is_empty() {
        let scanner = super::scan::ChangeScanner::new(ctx)?;
        findings.extend(scanner.scan(ctx, &targets));
    }
    Ok(Compared { findings })
}

pub fn run(ctx: &Ctx, a: &CheckArgs) -> Result<u8> {
    let loaded = ctx.config()?;
    let rules = root_rules(loaded, ctx.lang)?;
    let no_baseline = || mamori_core::Error::NoBaseline {
        state: loaded.state_dir(),
    };
    let against = if a.full {
        let base = ctx.store()?.baseline_load()?.ok_or_else(no_baseline)?;
        Against::Loaded(base, true)
    } else {
        // Without --full: stat every entry, then stream the baseline out of the store
        // against the sorted walk, keeping only the entries of what changed.
        let counter = std::sync::atomic::AtomicU64::new(0);
        let msg = tr!(ctx.lang, "checking", "検査中");
        let walked = crate::progress::with_counter(ctx.quiet, &msg, &counter, || {
            check::walk_roots(&rules, &loaded.config.baseline, &counter)
        });
        let mut merge = check::Merge::new(&rules, walked);
        let (_, tampered) = ctx
            .store()?
            .baseline_each(|e| merge.feed(&e))?
            .ok_or_else(no_baseline)?;
        Against::Merged(merge, tampered)
    };
    let cmp = compare_with(ctx, loaded, &rules, against, a.diff_lines)?;
    // Record first, then print: nothing found is lost if stdout breaks.
    ctx.store()?.append_findings(&cmp.findings)?;
    let code = ctx.emit(&cmp.findings)?;
    ctx.alert_once(&cmp.findings)?;
    Ok(code)
}
