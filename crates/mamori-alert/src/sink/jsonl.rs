//! `type = "jsonl"`: one JSON line per finding, appended to a file created 0600.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mamori_core::{Finding, Lang, tr};

use super::{DeliveryError, Sink};
use crate::AlertError;
use crate::config::JsonlConfig;

#[derive(Debug)]
pub(crate) struct JsonlSink {
    path: PathBuf,
    lang: Lang,
}

fn open(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    // A file that existed before with wider permissions is narrowed: findings name
    // files, addresses and hosts an attacker would like to read.
    let meta = file.metadata()?;
    if meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

impl JsonlSink {
    pub(crate) fn new(c: &JsonlConfig, key: &str, lang: Lang) -> Result<Self, AlertError> {
        if c.path.as_os_str().is_empty() {
            return Err(AlertError::Empty {
                key: format!("{key}.path"),
            });
        }
        // Open once now so a wrong path is a startup error, not a silent failure later.
        open(&c.path).map_err(|source| AlertError::OpenFile {
            key: format!("{key}.path"),
            path: c.path.clone(),
            source,
        })?;
        Ok(JsonlSink {
            path: c.path.clone(),
            lang,
        })
    }
}

impl Sink for JsonlSink {
    fn deliver(&mut self, f: &Finding) -> Result<(), DeliveryError> {
        // Reopened per finding (alerts are rare) so log rotation just works.
        let lang = self.lang;
        let p = self.path.display();
        let mut file = open(&self.path).map_err(|e| {
            DeliveryError::retry(tr!(lang, "cannot open {p}: {e}", "{p} を開けません: {e}"))
        })?;
        let mut line = f.to_json_line();
        line.push('\n');
        // One write of the whole line: O_APPEND keeps concurrent writers' lines whole.
        file.write_all(line.as_bytes()).map_err(|e| {
            DeliveryError::retry(tr!(
                lang,
                "cannot write {p}: {e}",
                "{p} に書き込めません: {e}"
            ))
        })
    }
}
