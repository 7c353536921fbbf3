//! What every command gets: language, output mode, the config (loaded on demand) and the
//! one place findings are printed and stored.

use crate::Cli;
use anyhow::Result;
use mamori_core::config::{self, Loaded};
use mamori_core::store::{Key, Store};
use mamori_core::{Finding, Lang, Severity, output, tr};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub struct Ctx {
    pub lang: Lang,
    pub json: bool,
    pub quiet: bool,
    fail_on_flag: Option<Severity>,
    /// The config path asked for (flag/env) or the default `./mamori.toml`.
    pub config_path: PathBuf,
    loaded: Option<Loaded>,
}

impl Ctx {
    pub fn new(cli: &Cli) -> Result<Ctx> {
        let config_path = cli
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from("mamori.toml"));
        // Load the config early only if it exists, so its `lang` applies to every message;
        // commands that need it call `config()` and get the clear error then.
        let loaded = match config::load(&config_path) {
            Ok(l) => Some(l),
            Err(mamori_core::Error::ConfigMissing { .. }) => None,
            Err(e) => {
                // A broken config: still honour --lang for the error.
                return Err(e.into());
            }
        };
        let lang = Lang::resolve(cli.lang, loaded.as_ref().and_then(|l| l.config.lang));
        Ok(Ctx {
            lang,
            json: cli.json,
            quiet: cli.quiet,
            fail_on_flag: cli.fail_on,
            config_path,
            loaded,
        })
    }

    /// The loaded config, or the clear "not found" error.
    pub fn config(&self) -> Result<&Loaded> {
        self.loaded.as_ref().ok_or_else(|| {
            mamori_core::Error::ConfigMissing {
                path: self.config_path.clone(),
            }
            .into()
        })
    }

    /// The config if there is one (commands that work without).
    #[allow(dead_code)] // for the log and egress commands
    pub fn config_opt(&self) -> Option<&Loaded> {
        self.loaded.as_ref()
    }

    pub fn fail_on(&self) -> Severity {
        self.fail_on_flag
            .or_else(|| self.loaded.as_ref().and_then(|l| l.config.fail_on))
            .unwrap_or(Severity::High)
    }

    pub fn host(&self) -> String {
        self.loaded
            .as_ref()
            .map(|l| l.host())
            .unwrap_or_else(mamori_core::finding::local_host_name)
    }

    /// Open the store of the loaded config.
    pub fn store(&self) -> Result<Store> {
        let l = self.config()?;
        open_store(&l.db_path(), &l.key_file())
    }

    /// Print findings (JSON Lines or the human report) and return the exit code.
    pub fn emit(&self, findings: &[Finding]) -> Result<u8> {
        if self.json {
            let mut out = std::io::stdout().lock();
            output::write_json_lines(&mut out, findings)?;
        } else {
            let color =
                anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never;
            let text = output::render_human(findings, self.lang, color);
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
        Ok(output::exit_code(findings, self.fail_on()) as u8)
    }

    /// A note for the operator on stderr (not with --quiet).
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "{msg}");
        }
    }

    /// A warning on stderr (always).
    pub fn warn(&self, msg: &str) {
        let w = tr!(self.lang, "warning", "警告");
        let _ = writeln!(anstream::stderr(), "mamori: {w}: {msg}");
    }
}

pub fn open_store(db: &Path, key: &Path) -> Result<Store> {
    let key = Key::load_or_create(key)?;
    Ok(Store::open(db, key)?)
}

/// Print the one error line and return exit code 2. Broken pipes exit quietly.
pub fn report_error(lang: Lang, e: &anyhow::Error) -> ExitCode {
    if let Some(io) = e.downcast_ref::<std::io::Error>()
        && io.kind() == std::io::ErrorKind::BrokenPipe
    {
        return ExitCode::from(0);
    }
    let msg = if let Some(core) = e.downcast_ref::<mamori_core::Error>() {
        core.localized(lang)
    } else if let Some(m) = e.downcast_ref::<crate::cmd::UserError>() {
        m.0.clone()
    } else {
        // anyhow context chain on one line: "context: cause: cause".
        format!("{e:#}")
    };
    let label = tr!(lang, "error", "エラー");
    let _ = writeln!(
        anstream::stderr(),
        "mamori: {label}: {}",
        msg.replace('\n', " ")
    );
    ExitCode::from(2)
}
