//! `mamori egress`: the exit layer in batch, and the allow-list policy.

use crate::ctx::Ctx;
use anyhow::Result;
use clap::{Args, Subcommand};
use mamori_core::tr;
use mamori_exit::{EgressOptions, ExitConfig};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct EgressArgs {
    #[command(subcommand)]
    pub action: Option<EgressAction>,
    #[command(flatten)]
    pub input: EgressInput,
}

#[derive(Args, Debug, Clone)]
pub struct EgressInput {
    /// Zeek conn.log (TSV or JSON lines).
    #[arg(long, value_name = "FILE", global = true)]
    pub conn_log: Option<PathBuf>,
    /// Zeek dns.log, to name destinations.
    #[arg(long, value_name = "FILE", global = true)]
    pub dns_log: Option<PathBuf>,
    /// Orders (JSON lines with `time`), to correlate sends with checkouts.
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        conflicts_with = "access_log"
    )]
    pub orders: Option<PathBuf>,
    /// An access log whose completed checkouts mark the orders.
    #[arg(long, value_name = "FILE", global = true)]
    pub access_log: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum EgressAction {
    /// Print (or with --apply install) an nftables output policy that lets the web user
    /// reach only learned or declared destinations.
    Policy {
        /// Install it with `nft -f` (as root).
        #[arg(long)]
        apply: bool,
    },
}

/// The `[exit]` section of the config, or the defaults without one.
pub fn exit_config(ctx: &Ctx) -> Result<ExitConfig> {
    let lang = ctx.lang;
    let Some(t) = ctx.config_opt().and_then(|l| l.config.exit.clone()) else {
        return Ok(ExitConfig::default());
    };
    let text = toml::to_string(&t).unwrap_or_default();
    Ok(ExitConfig::from_toml(&text).map_err(|e| {
        super::UserError(tr!(
            lang,
            "{}: [exit]: {e}; see docs/exit.md",
            "{}: [exit] の設定が不正です: {e}。docs/exit.md を参照してください",
            ctx.config_path.display()
        ))
    })?)
}

pub fn run(ctx: &Ctx, a: &EgressArgs) -> Result<u8> {
    let lang = ctx.lang;
    let Some(conn) = a.input.conn_log.clone() else {
        crate::bail_user!(
            lang,
            "no connection log given; pass --conn-log FILE (a Zeek conn.log)",
            "接続ログが指定されていません。--conn-log FILE (Zeek の conn.log) を指定してください"
        );
    };
    let mut o = EgressOptions::new(conn);
    o.dns_log = a.input.dns_log.clone();
    o.orders = a.input.orders.clone();
    o.access_log = a.input.access_log.clone();
    o.config = exit_config(ctx)?;
    let rep = mamori_exit::analyze(&o, &ctx.host(), lang).map_err(|e| {
        super::UserError(tr!(
            lang,
            "cannot analyse egress: {e}",
            "外向き通信を解析できません: {e}"
        ))
    })?;
    match &a.action {
        Some(EgressAction::Policy { apply }) => {
            let script = mamori_exit::policy::render(&rep.policy_input(&o.config));
            if *apply {
                mamori_exit::policy::apply(&script, false).map_err(|e| {
                    super::UserError(tr!(
                        lang,
                        "could not install the egress policy: {e}",
                        "外向き通信ポリシーを適用できません: {e}"
                    ))
                })?;
                ctx.note(&tr!(
                    lang,
                    "egress policy installed",
                    "外向き通信ポリシーを適用しました"
                ));
            } else {
                print!("{script}");
            }
            Ok(0)
        }
        None => {
            if let Some(l) = ctx.config_opt()
                && let Ok(mut store) = crate::ctx::open_store(&l.db_path(), &l.key_file())
            {
                store.append_findings(&rep.findings)?;
            }
            ctx.emit(&rep.findings)
        }
    }
}
