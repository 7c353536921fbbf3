//! `mamori events`: the stored findings, newest last.

use crate::ctx::Ctx;
use anyhow::Result;
use clap::Args;
use mamori_core::Finding;

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Only kinds starting with this (e.g. `file.` or `attack.campaign`).
    #[arg(long, value_name = "PREFIX")]
    pub kind: Option<String>,
    /// How many of the newest to show.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

pub fn run(ctx: &Ctx, a: &EventsArgs) -> Result<u8> {
    let store = ctx.store()?;
    let rows = store.events(a.kind.as_deref(), a.limit)?;
    if ctx.json {
        for r in &rows {
            println!("{r}");
        }
        return Ok(0);
    }
    let findings: Vec<Finding> = rows
        .iter()
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect();
    print!(
        "{}",
        mamori_core::output::render_human(&findings, ctx.lang, false)
    );
    Ok(0)
}
