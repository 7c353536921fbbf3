//! Responses to a changed critical file: put the known-good copy back atomically and
//! move the altered file to quarantine; then make PHP serve the good code.

use mamori_core::store::BaselineEntry;
use mamori_core::{Finding, Kind, Lang, Severity, tr};
use serde_json::json;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes through while hashing what was written.
struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub struct Responder {
    pub quarantine: PathBuf,
    /// A command that makes PHP drop its opcode cache (e.g. `systemctl reload php8.2-fpm`).
    pub php_reload: Option<Vec<String>>,
    /// The PHP-FPM pool to ask to drop the restored file's cached code (tried first; the
    /// reload command is the fallback when it fails).
    pub php_fpm: Option<super::fpm::Fpm>,
    pub host: String,
    pub lang: Lang,
}

#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    #[error(
        "no verified known-good copy of {0} in the baseline (only critical text files have one)"
    )]
    NoCopy(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RespondError + '_ {
    move |source| RespondError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A file name for the quarantine: time, then the path with `/` as `%2F`.
fn quarantine_name(rel: &str) -> String {
    let t = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let safe: String = rel
        .chars()
        .map(|c| match c {
            '/' => "%2F".to_string(),
            '%' => "%25".to_string(),
            c if c.is_control() => "_".to_string(),
            c => c.to_string(),
        })
        .collect();
    format!("{t}_{safe}")
}

impl Responder {
    /// Restore `abs` (whose baseline entry is `entry`) from `good`, the verified copy.
    /// Returns the `file.quarantined` and `file.restored` findings.
    pub fn restore(
        &self,
        abs: &Path,
        rel: &str,
        entry: &BaselineEntry,
        good: Option<Vec<u8>>,
    ) -> Result<Vec<Finding>, RespondError> {
        let good = good
            .filter(|g| entry.blake3 == Some(*blake3::hash(g).as_bytes()))
            .ok_or_else(|| RespondError::NoCopy(rel.to_string()))?;
        let lang = self.lang;
        let mut out = Vec::new();
        // 1. Hold the altered file open: after the rename below its inode stays readable
        //    through this descriptor, so the evidence is kept without delaying the restore.
        let altered_fd = std::fs::File::open(abs).ok();
        // 2. Put the known-good copy back: temp file in the same directory, same owner
        //    and mode, rename over (atomic for every reader), then fsync. The rename comes
        //    before anything else because every millisecond the altered code is live a
        //    card may be copied; a crash before the fsync leaves at worst an empty payment
        //    module (the checkout fails closed), never the altered one.
        let dir = abs.parent().unwrap_or(Path::new("/"));
        let tmp = dir.join(format!(
            ".{}.mamori-restore-{}",
            abs.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id()
        ));
        let t = {
            let mut t = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&tmp)
                .map_err(io(&tmp))?;
            t.write_all(&good).map_err(io(&tmp))?;
            let _ = std::os::unix::fs::fchown(&t, Some(entry.uid), Some(entry.gid));
            t.set_permissions(std::fs::Permissions::from_mode(entry.mode & 0o7777))
                .map_err(io(&tmp))?;
            let mtime = std::time::UNIX_EPOCH
                + std::time::Duration::from_nanos(entry.mtime_ns.max(0) as u64);
            let _ = t.set_modified(mtime);
            if let Err(e) = std::fs::rename(&tmp, abs) {
                let _ = std::fs::remove_file(&tmp);
                return Err(RespondError::Io {
                    path: abs.to_path_buf(),
                    source: e,
                });
            }
            t
        };
        // 3. Keep the altered file as evidence (private directory, 0600), streamed from
        //    the descriptor held above, so an attacker's huge file costs no memory.
        mamori_core::store::create_private_dir(&self.quarantine).map_err(|e| RespondError::Io {
            path: self.quarantine.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let _ = std::fs::set_permissions(&self.quarantine, std::fs::Permissions::from_mode(0o700));
        let qpath = self.quarantine.join(quarantine_name(rel));
        let altered = match altered_fd {
            Some(mut src) => {
                let q = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&qpath)
                    .map_err(io(&qpath))?;
                let mut tee = HashingWriter {
                    inner: q,
                    hasher: blake3::Hasher::new(),
                };
                let size = std::io::copy(&mut src, &mut tee).map_err(io(&qpath))?;
                Some((size, *tee.hasher.finalize().as_bytes()))
            }
            None => None,
        };
        if let Some((size, hash)) = &altered {
            let bh = crate::hash::hex(hash);
            let q_s = qpath.display().to_string();
            out.push(
                Finding::new(
                    Kind::FileQuarantined,
                    Severity::Medium,
                    chrono::Utc::now(),
                    &self.host,
                    tr!(
                        lang,
                        "the altered {rel} was kept for investigation in {q_s}",
                        "改ざんされた {rel} を調査用に {q_s} へ保全しました"
                    ),
                )
                .with_path(rel)
                .with_checklist(&["20-1.1"])
                .with_evidence(json!({ "quarantine": q_s, "blake3": bh, "size": size })),
            );
        }
        // Durability after the fact: the good copy and its directory entry.
        let _ = t.sync_all();
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        // 4. PHP must serve the good code: an opcode cache may still hold the altered one.
        let php = self.reload_php(abs);
        out.push(
            Finding::new(
                Kind::FileRestored,
                Severity::High,
                chrono::Utc::now(),
                &self.host,
                tr!(
                    lang,
                    "restored the known-good {rel} from the signed baseline; {php}",
                    "署名付きベースラインから正しい {rel} を復元しました。{php}"
                ),
            )
            .with_path(rel)
            .with_checklist(&["20-1.1"])
            .with_evidence(json!({
                "blake3": crate::hash::hex(&entry.blake3.unwrap_or_default()),
                "quarantine": altered.as_ref().map(|_| qpath.display().to_string()),
                "php": php,
            })),
        );
        Ok(out)
    }

    /// Make PHP serve the good code of `abs`: ask PHP-FPM to drop its cached copy, or
    /// run the reload command (also when the former fails); say what was done.
    pub fn reload_php(&self, abs: &Path) -> String {
        use super::fpm::Outcome;
        let lang = self.lang;
        let mut said = Vec::new();
        if let Some(fpm) = &self.php_fpm {
            let addr = fpm.addr.to_string();
            match fpm.invalidate(&[abs]) {
                Ok(o) => {
                    let msg = match o.first() {
                        Some(Outcome::Invalidated) => tr!(
                            lang,
                            "PHP-FPM ({addr}) dropped its cached code of the file (opcache_invalidate)",
                            "PHP-FPM ({addr}) のキャッシュからこのファイルのコードを破棄しました (opcache_invalidate)"
                        ),
                        Some(Outcome::NoOpcache) => tr!(
                            lang,
                            "PHP-FPM ({addr}) has no OPcache: it reads the restored file",
                            "PHP-FPM ({addr}) に OPcache はありません。復元したファイルが読まれます"
                        ),
                        _ => tr!(
                            lang,
                            "PHP-FPM ({addr}) held no cached code of the file",
                            "PHP-FPM ({addr}) にこのファイルのキャッシュはありませんでした"
                        ),
                    };
                    return msg;
                }
                Err(e) => said.push(tr!(
                    lang,
                    "asking PHP-FPM to drop its cache failed: {e}",
                    "PHP-FPM へのキャッシュ破棄の依頼が失敗しました: {e}"
                )),
            }
        }
        let reload = match &self.php_reload {
            None if self.php_fpm.is_some() => tr!(
                lang,
                "no reload command to fall back on: reload PHP-FPM by hand",
                "代わりの再読み込みコマンドがありません。手動で PHP-FPM を再読み込みしてください"
            ),
            None => tr!(
                lang,
                "no PHP cache handling configured (set response.php_fpm or response.php_reload if PHP-FPM's opcache is on)",
                "PHP のキャッシュ対策は未設定です (PHP-FPM の opcache が有効なら response.php_fpm か response.php_reload を設定してください)"
            ),
            Some(cmd) if cmd.is_empty() => String::new(),
            Some(cmd) => {
                let shown = cmd.join(" ");
                match std::process::Command::new(&cmd[0]).args(&cmd[1..]).status() {
                    Ok(s) if s.success() => tr!(
                        lang,
                        "PHP reloaded with `{shown}`",
                        "`{shown}` で PHP を再読み込みしました"
                    ),
                    Ok(s) => tr!(
                        lang,
                        "PHP reload `{shown}` failed ({s}): reload PHP-FPM by hand",
                        "PHP の再読み込み `{shown}` が失敗しました ({s})。手動で PHP-FPM を再読み込みしてください"
                    ),
                    Err(e) => tr!(
                        lang,
                        "PHP reload `{shown}` could not start ({e}): reload PHP-FPM by hand",
                        "PHP の再読み込み `{shown}` を実行できません ({e})。手動で PHP-FPM を再読み込みしてください"
                    ),
                }
            }
        };
        said.push(reload);
        said.retain(|s| !s.is_empty());
        said.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn restores_atomically_and_quarantines() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pay.php");
        std::fs::write(&f, "good").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let meta = std::fs::metadata(&f).unwrap();
        let mut e = crate::baseline::entry_from_meta("r", b"pay.php".to_vec(), &meta);
        e.blake3 = Some(*blake3::hash(b"good").as_bytes());
        std::fs::write(&f, "skimmer").unwrap();
        let r = Responder {
            quarantine: d.path().join("q"),
            php_reload: None,
            php_fpm: None,
            host: "h".into(),
            lang: Lang::En,
        };
        // A copy that does not match the baseline hash is never written.
        assert!(matches!(
            r.restore(&f, "pay.php", &e, Some(b"evil".to_vec())),
            Err(RespondError::NoCopy(_))
        ));
        let out = r
            .restore(&f, "pay.php", &e, Some(b"good".to_vec()))
            .unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"good");
        let m = std::fs::metadata(&f).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640);
        assert_eq!(m.mtime(), meta.mtime());
        assert_eq!(out[0].kind, Kind::FileQuarantined);
        assert_eq!(out[1].kind, Kind::FileRestored);
        let q = out[0].evidence["quarantine"].as_str().unwrap();
        assert_eq!(std::fs::read(q).unwrap(), b"skimmer");
        let qm = std::fs::metadata(d.path().join("q")).unwrap();
        assert_eq!(qm.mode() & 0o777, 0o700);
    }
}
