//! `mamori logs FILE…`: the entrance layer in batch (a year of history is fine).

use crate::ctx::Ctx;
use anyhow::Result;
use clap::Args;
use mamori_core::tr;
use mamori_entrance::{BlockBackend, LogsOptions};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Access logs (nginx/Apache combined or common, JSON; gzip'd rotations too).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Ignore lines before this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Force the log format instead of detecting it: combined, common or json.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<mamori_entrance::LogFormat>,
    /// Block what is found (nftables set with timeouts; never allow-listed addresses,
    /// verified search bots or shared carrier addresses).
    #[arg(long)]
    pub block: bool,
    /// With --block: print the nftables script on stderr instead of applying it.
    #[arg(long)]
    pub dry_run: bool,
    /// With --block: write an nginx deny-list include file instead of using nftables.
    #[arg(long, value_name = "FILE")]
    pub nginx_deny: Option<PathBuf>,
}

/// The `[entrance]` section of the config, or the defaults without one.
pub fn entrance_config(ctx: &Ctx) -> Result<mamori_entrance::EntranceConfig> {
    let lang = ctx.lang;
    Ok(
        match ctx.config_opt().and_then(|l| l.config.entrance.clone()) {
            Some(t) => t.try_into().map_err(|e: toml::de::Error| {
                super::UserError(tr!(
                    lang,
                    "{}: [entrance]: {}; see docs/entrance.md",
                    "{}: [entrance] の設定が不正です: {}。docs/entrance.md を参照してください",
                    ctx.config_path.display(),
                    e.message().trim()
                ))
            })?,
            None => Default::default(),
        },
    )
}

pub fn run(ctx: &Ctx, a: &LogsArgs) -> Result<u8> {
    let lang = ctx.lang;
    let config = entrance_config(ctx)?;
    let block = a.block.then(|| match &a.nginx_deny {
        Some(p) => BlockBackend::NginxDeny { path: p.clone() },
        None => BlockBackend::nftables(a.dry_run),
    });
    let opts = LogsOptions {
        files: a.files.clone(),
        since: a.since,
        format: a.format,
        block,
        config,
        ..Default::default()
    };
    let host = ctx.host();
    let pb = crate::progress::bar(ctx.quiet, None, &tr!(lang, "reading logs", "ログを解析中"));
    let rep =
        mamori_entrance::analyze(&opts, &host, lang, &|n| pb.set_position(n)).map_err(|e| {
            super::UserError(tr!(
                lang,
                "cannot analyse the logs: {e}",
                "ログを解析できません: {e}"
            ))
        })?;
    pb.finish_and_clear();
    let s = &rep.stats;
    let (lines, bad) = (s.lines, s.malformed);
    ctx.note(&tr!(
        lang,
        "{lines} lines read, {bad} malformed (skipped)",
        "{lines} 行を読み込み、不正な行 {bad} 行をスキップしました"
    ));
    if let Some(script) = rep.block_script.as_ref().filter(|_| a.dry_run) {
        eprint!("{script}");
    }
    for adv in &rep.advice {
        ctx.note(&format!("{}: {} — {}", adv.ip, adv.reason, adv.advice));
    }
    if let Some(l) = ctx.config_opt()
        && let Ok(mut store) = crate::ctx::open_store(&l.db_path(), &l.key_file())
    {
        store.append_findings(&rep.findings)?;
    }
    ctx.emit(&rep.findings)
}
