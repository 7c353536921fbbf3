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

/// The `[alert]` section, with relative paths resolved against the config's directory.
pub fn alert_config(lang: Lang, loaded: &Loaded) -> Result<Option<mamori_alert::AlertConfig>> {
    let Some(table) = loaded.config.alert.clone() else {
        return Ok(None);
    };
    let mut cfg: mamori_alert::AlertConfig = table.try_into().map_err(|e: toml::de::Error| {
        crate::cmd::UserError(tr!(
            lang,
            "{}: [alert]: {}; see docs/alerts.md",
            "{}: [alert] の設定が不正です: {}。docs/alerts.md を参照してください",
            loaded.path.display(),
            e.message().trim()
        ))
    })?;
    use mamori_alert::SinkConfig;
    for s in &mut cfg.sinks {
        match s {
            SinkConfig::Jsonl(j) => j.path = loaded.resolve(&j.path),
            SinkConfig::Email(m) => {
                m.password_file = m.password_file.as_ref().map(|p| loaded.resolve(p));
                m.ca_file = m.ca_file.as_ref().map(|p| loaded.resolve(p));
            }
            SinkConfig::Webhook(w) => {
                for p in w.header_files.values_mut() {
                    *p = loaded.resolve(p);
                }
            }
            SinkConfig::Syslog(_) => {}
        }
    }
    Ok(Some(cfg))
}

/// Start the alert dispatcher of `loaded`, if sinks are configured.
pub fn alerts(lang: Lang, loaded: &Loaded) -> Result<Option<mamori_alert::AlertDispatcher>> {
    let Some(cfg) = alert_config(lang, loaded)? else {
        return Ok(None);
    };
    if cfg.sinks.is_empty() {
        return Ok(None);
    }
    let d = mamori_alert::AlertDispatcher::new(&cfg, &loaded.host(), lang)
        .map_err(|e| crate::cmd::UserError(e.localized(lang)))?;
    Ok(Some(d))
}

impl Ctx {
    /// One-shot commands: send findings to the configured sinks and wait (bounded) for
    /// delivery, so `mamori check` from cron mails what it found.
    pub fn alert_once(&self, findings: &[Finding]) -> Result<()> {
        let Some(l) = self.loaded.as_ref() else {
            return Ok(());
        };
        if findings.is_empty() {
            return Ok(());
        }
        if let Some(d) = alerts(self.lang, l)? {
            for f in findings {
                d.send(f);
            }
            for s in d.shutdown(std::time::Duration::from_secs(20)) {
                if s.failed > 0 {
                    let (k, n, e) = (s.key, s.failed, s.last_error.unwrap_or_default());
                    self.warn(&tr!(
                        self.lang,
                        "alert sink {k}: {n} finding(s) not delivered ({e})",
                        "通知先 {k}: {n} 件を配信できませんでした ({e})"
                    ));
                }
            }
        }
        Ok(())
    }
}
