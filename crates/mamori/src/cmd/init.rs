//! `mamori init`: detect the shop, write mamori.toml, take the first signed baseline.

use crate::bail_user;
use crate::ctx::Ctx;
use anyhow::Result;
use clap::{Args, ValueEnum};
use mamori_core::config::{self, Config, Flavor};
use mamori_core::{Lang, tr};
use mamori_internal::{flavor, placement};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FlavorArg {
    Auto,
    Eccube,
    Magento,
    Woocommerce,
    Generic,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The shop's directory (repeat for several shops on one server).
    #[arg(long, required = true, value_name = "DIR")]
    pub root: Vec<PathBuf>,
    /// The shop software; `auto` detects it from the files.
    #[arg(long, value_enum, default_value = "auto")]
    pub flavor: FlavorArg,
    /// State directory (store and key). Default: .mamori/ beside the config,
    /// /var/lib/mamori for /etc/mamori.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Overwrite an existing config file.
    #[arg(long)]
    pub force: bool,
}

pub fn run(ctx: &Ctx, a: &InitArgs) -> Result<u8> {
    init_at(ctx, &ctx.config_path, a)
}

/// `init` writing the config at `cfg_path`.
pub fn init_at(ctx: &Ctx, cfg_path: &std::path::Path, a: &InitArgs) -> Result<u8> {
    let lang = ctx.lang;
    let cfg_path = &cfg_path.to_path_buf();
    if cfg_path.exists() && !a.force {
        let p = cfg_path.display();
        bail_user!(
            lang,
            "{p} already exists; edit it and run `mamori baseline`, or pass --force to replace it",
            "{p} は既に存在します。編集して `mamori baseline` を実行するか、--force で置き換えてください"
        );
    }
    let mut roots = Vec::new();
    for r in &a.root {
        if !r.is_dir() {
            let p = r.display();
            bail_user!(
                lang,
                "{p}: shop root does not exist or is not a directory; pass the shop's directory with --root",
                "{p}: ショップのルートが存在しないか、ディレクトリではありません。--root にショップのディレクトリを指定してください"
            );
        }
        let abs = std::fs::canonicalize(r)?;
        let fl = match a.flavor {
            FlavorArg::Auto => flavor::detect(&abs),
            FlavorArg::Eccube => Flavor::Eccube,
            FlavorArg::Magento => Flavor::Magento,
            FlavorArg::Woocommerce => Flavor::Woocommerce,
            FlavorArg::Generic => Flavor::Generic,
        };
        roots.push(flavor::preset(&abs, fl));
    }
    let cfg_dir = placement::resolve(
        cfg_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new(".")),
    );
    let state = match &a.state {
        Some(s) => placement::resolve(s),
        None => config::default_state_dir(&cfg_dir),
    };
    refuse_placement(
        lang,
        &state,
        &roots.iter().map(|r| r.path.clone()).collect::<Vec<_>>(),
    )?;

    let cfg = Config {
        lang: None,
        state_dir: a.state.as_ref().map(|_| state.clone()),
        roots: roots.clone(),
        ..Default::default()
    };
    let text = config::render(&cfg, lang);
    if let Some(dir) = cfg_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| mamori_core::Error::Write {
            path: dir.to_path_buf(),
            source: e,
        })?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(cfg_path)
        .map_err(|e| mamori_core::Error::Write {
            path: cfg_path.clone(),
            source: e,
        })?;
    f.write_all(text.as_bytes())?;
    for r in &roots {
        let (p, fl) = (r.path.display(), r.flavor.as_str());
        ctx.note(&tr!(lang, "shop at {p}: {fl}", "{p} のショップ: {fl}"));
    }
    let cp = cfg_path.display();
    ctx.note(&tr!(lang, "wrote {cp}", "{cp} を作成しました"));
    let loaded = config::load(cfg_path)?;
    super::baseline::take(ctx, &loaded, "init", true)
}

/// Refuse a state directory inside a shop root or a web server's document root.
pub fn refuse_placement(lang: Lang, state: &std::path::Path, roots: &[PathBuf]) -> Result<()> {
    let served = placement::served_dirs();
    match placement::check_private_dir(state, roots, &served) {
        Some(placement::Refusal::InsideRoot(r)) => {
            let (s, r) = (state.display(), r.display());
            bail_user!(
                lang,
                "state directory {s} is inside the shop root {r}: anyone who can reach the shop could read or alter the baseline; pass --state with a directory outside it (e.g. /var/lib/mamori)",
                "状態ディレクトリ {s} がショップのルート {r} の中にあります。ベースラインを読まれたり改ざんされたりします。外の場所を --state で指定してください (例 /var/lib/mamori)"
            )
        }
        Some(placement::Refusal::Served(r)) => {
            let (s, r) = (state.display(), r.display());
            bail_user!(
                lang,
                "state directory {s} is inside {r}, which the web server serves; pass --state with a directory outside every document root (e.g. /var/lib/mamori)",
                "状態ディレクトリ {s} は Web サーバーが公開している {r} の中にあります。公開ディレクトリの外を --state で指定してください (例 /var/lib/mamori)"
            )
        }
        None => Ok(()),
    }
}
