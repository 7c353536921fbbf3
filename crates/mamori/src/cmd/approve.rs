//! `mamori approve PATH…` and `mamori deploy -- CMD`: approved changes, so a release is
//! not an alert storm and an operator's fix is not reverted by `watch`.

use crate::bail_user;
use crate::ctx::Ctx;
use anyhow::Result;
use clap::Args;
use mamori_core::config::Loaded;
use mamori_core::store::BaselineEntry;
use mamori_core::{Finding, Kind, Severity, tr};
use mamori_internal::baseline::{self, describe};
use mamori_internal::rules::RootRules;
use mamori_internal::walk::{Item, path_bytes};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// Files or directories whose current state becomes the known-good one.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Why (recorded with the baseline and in the event log).
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// Why (recorded with the baseline and in the event log).
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// Deploy even though unapproved changes exist from before (they get approved too).
    #[arg(long)]
    pub force: bool,
    /// The deploy command and its arguments (after `--`).
    #[arg(required = true, last = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

/// The baseline of `loaded`, verified, or a clear refusal.
fn verified(ctx: &Ctx, loaded: &Loaded) -> Result<mamori_core::store::LoadedBaseline> {
    let lang = ctx.lang;
    let store = crate::ctx::open_store(&loaded.db_path(), &loaded.key_file())?;
    let Some(base) = store.baseline_load()? else {
        return Err(mamori_core::Error::NoBaseline {
            state: loaded.state_dir(),
        }
        .into());
    };
    if let Some(reason) = &base.tampered {
        bail_user!(
            lang,
            "the baseline failed its integrity check ({reason}); approving would sign whatever is there now. Check the shop by other means, then run `mamori baseline --approve`",
            "ベースラインの完全性検査に失敗しています ({reason})。承認すると現在の内容に署名してしまいます。別の手段でショップを確認してから `mamori baseline --approve` を実行してください"
        );
    }
    Ok(base)
}

fn collect(
    rules: &RootRules,
    abs: &Path,
    cfg: &mamori_core::config::BaselineConfig,
    up: &mut Vec<BaselineEntry>,
    copies: &mut Vec<baseline::Copy>,
) {
    let Ok(meta) = std::fs::symlink_metadata(abs) else {
        return;
    };
    let Ok(rel) = abs.strip_prefix(&rules.root) else {
        return;
    };
    if rules.is_ignored(rel, meta.is_dir()) {
        return;
    }
    let is_dir = meta.is_dir();
    let item = Item { rel, abs, meta };
    let (e, content, _) = describe(rules, &rules.key(), &item, cfg);
    if let Some(e) = e {
        if let Some(c) = content {
            copies.push((
                e.root.clone(),
                e.path.clone(),
                baseline::COPY_CODEC,
                baseline::compress(&c),
            ));
        }
        up.push(e);
    }
    if is_dir && let Ok(rd) = std::fs::read_dir(abs) {
        for ent in rd.flatten() {
            collect(rules, &ent.path(), cfg, up, copies);
        }
    }
}

pub fn approve(ctx: &Ctx, a: &ApproveArgs) -> Result<u8> {
    let lang = ctx.lang;
    let loaded = ctx.config()?;
    let rules: Vec<Arc<RootRules>> = super::check::root_rules(loaded, lang)?;
    let base = verified(ctx, loaded)?;
    let (mut up, mut copies, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    let mut shown = Vec::new();
    for p in &a.paths {
        let abs = mamori_internal::placement::resolve(p);
        let Some(r) = rules.iter().find(|r| abs.starts_with(&r.root)) else {
            let p = p.display();
            bail_user!(
                lang,
                "{p} is not inside any shop root of the config",
                "{p} は設定されたどのショップのルートにも含まれていません"
            );
        };
        let rel = path_bytes(abs.strip_prefix(&r.root).unwrap_or(Path::new("")));
        let key = r.key();
        // Everything under the path that the baseline knows and that is gone now.
        for e in base.entries.iter().filter(|e| {
            e.root == key
                && (e.path == rel
                    || rel.is_empty()
                    || (e.path.starts_with(&rel) && e.path.get(rel.len()) == Some(&b'/')))
        }) {
            let ep = r
                .root
                .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&e.path));
            if std::fs::symlink_metadata(&ep).is_err() {
                removed.push((key.clone(), e.path.clone()));
            }
        }
        collect(r, &abs, &loaded.config.baseline, &mut up, &mut copies);
        shown.push(abs.display().to_string());
    }
    let note = a
        .note
        .clone()
        .unwrap_or_else(|| format!("approve {}", shown.join(" ")));
    let mut store = crate::ctx::open_store(&loaded.db_path(), &loaded.key_file())?;
    let sig = store.baseline_update(&note, &up, &copies, &removed)?;
    let (n_up, n_rm, g) = (up.len(), removed.len(), sig.generation);
    let summary = tr!(
        lang,
        "approved: {n_up} entries updated, {n_rm} removed; baseline {g} signed",
        "承認しました: {n_up} 件を更新、{n_rm} 件を削除。ベースライン {g} に署名しました"
    );
    let f = Finding::new(
        Kind::BaselineApproved,
        Severity::Info,
        chrono::Utc::now(),
        &loaded.host(),
        summary.clone(),
    )
    .with_checklist(&["20-1.1"])
    .with_evidence(
        json!({"generation": g, "note": note, "paths": shown, "updated": n_up, "removed": n_rm}),
    );
    store.append_findings(std::slice::from_ref(&f))?;
    if ctx.json {
        ctx.emit(std::slice::from_ref(&f))?;
    } else {
        println!("{summary}");
    }
    Ok(0)
}

pub fn deploy(ctx: &Ctx, a: &DeployArgs) -> Result<u8> {
    let lang = ctx.lang;
    let loaded = ctx.config()?;
    let base = verified(ctx, loaded)?;
    let before = super::check::compare(ctx, loaded, base, false)?;
    if !before.findings.is_empty() && !a.force {
        ctx.emit(&before.findings)?;
        let n = before.findings.len();
        bail_user!(
            lang,
            "{n} unapproved change(s) exist from before the deploy (shown above); review them, or pass --force to approve them with the deploy",
            "デプロイ前から未承認の変更が {n} 件あります (上記)。確認するか、--force でデプロイと一緒に承認してください"
        );
    }
    let store = crate::ctx::open_store(&loaded.db_path(), &loaded.key_file())?;
    let shown = a.cmd.join(" ");
    // `watch` sees this marker: it holds its responses and reloads the baseline after.
    store.meta_set(
        "deploy",
        json!({"pid": std::process::id(), "cmd": shown, "started": chrono::Utc::now()})
            .to_string()
            .as_bytes(),
    )?;
    ctx.note(&tr!(
        lang,
        "deploy: running `{shown}`",
        "デプロイ: `{shown}` を実行します"
    ));
    let status = std::process::Command::new(&a.cmd[0])
        .args(&a.cmd[1..])
        .status();
    let result = (|| -> Result<u8> {
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                bail_user!(
                    lang,
                    "could not run `{shown}`: {e}",
                    "`{shown}` を実行できません: {e}"
                );
            }
        };
        let base = verified(ctx, loaded)?;
        let changed = super::check::compare(ctx, loaded, base, false)?;
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for f in &changed.findings {
            *counts.entry(f.kind.as_str()).or_default() += 1;
        }
        let list: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let list = if list.is_empty() {
            "-".to_string()
        } else {
            list.join(", ")
        };
        if !status.success() {
            let code = status.code().unwrap_or(-1);
            ctx.emit(&changed.findings)?;
            bail_user!(
                lang,
                "`{shown}` failed (exit {code}); its changes ({list}) were NOT approved; review them with `mamori check`",
                "`{shown}` が失敗しました (終了コード {code})。変更 ({list}) は承認していません。`mamori check` で確認してください"
            );
        }
        let note = a.note.clone().unwrap_or_else(|| format!("deploy: {shown}"));
        ctx.note(&tr!(
            lang,
            "deploy changed: {list}; approving",
            "デプロイによる変更: {list}。承認します"
        ));
        super::baseline::take(ctx, loaded, &note, false)
    })();
    if let Ok(s) = crate::ctx::open_store(&loaded.db_path(), &loaded.key_file()) {
        let _ = s.meta_delete("deploy");
    }
    result
}
