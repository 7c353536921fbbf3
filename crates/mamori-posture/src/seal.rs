//! Sealing files with age (X25519 recipients): streaming in constant memory, and file
//! helpers that write to a temp file in the destination directory and rename only on
//! success, so a wrong identity or a truncated/tampered file leaves no plaintext behind.

use crate::error::PostureError;
use age::secrecy::ExposeSecret;
use age::x25519;
use chrono::Utc;
use mamori_core::{Finding, Kind, Lang, Severity, pan, tr};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most recipient stanzas a header may carry before any X25519 work is done.
pub const MAX_STANZAS: usize = 64;
const MAX_HEADER: usize = 1 << 20;
/// The age payload's chunk size (STREAM, 64 KiB of plaintext per chunk).
const CHUNK: usize = 64 << 10;

/// A new X25519 key pair: (`AGE-SECRET-KEY-1…`, `age1…`).
pub fn keygen() -> (String, String) {
    let id = x25519::Identity::generate();
    let r = id.to_public().to_string();
    (id.to_string().expose_secret().to_string(), r)
}

/// Parse `age1…` recipients.
pub fn parse_recipients(list: &[String]) -> Result<Vec<x25519::Recipient>, PostureError> {
    if list.is_empty() {
        return Err(PostureError::NoRecipients);
    }
    list.iter()
        .map(|s| {
            s.trim()
                .parse::<x25519::Recipient>()
                .map_err(|e| PostureError::Recipient {
                    recipient: s.clone(),
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// Parse `AGE-SECRET-KEY-1…` identities (blank lines and `#` comments skipped, as in
/// identity files). `source_name` names the file or flag in errors.
pub fn parse_identities(
    text: &str,
    source_name: &str,
) -> Result<Vec<x25519::Identity>, PostureError> {
    let ids: Vec<x25519::Identity> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.parse::<x25519::Identity>()
                .map_err(|e| PostureError::Identity {
                    source_name: source_name.to_string(),
                    reason: e.to_string(),
                })
        })
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Err(PostureError::Identity {
            source_name: source_name.to_string(),
            reason: "no AGE-SECRET-KEY-1 line".into(),
        });
    }
    Ok(ids)
}

/// Read an identity file (as `age -i` does).
pub fn read_identity_file(path: &Path) -> Result<Vec<String>, PostureError> {
    let t = crate::sys::read_capped(path).map_err(|e| PostureError::io(path, e))?;
    let name = path.display().to_string();
    parse_identities(&t, &name)?;
    Ok(t.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        .map(str::to_string)
        .collect())
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Encrypt `reader` to `recipients` into `writer`, streaming (64 KiB chunks). Returns
/// the plaintext length.
pub fn seal<R: Read, W: Write>(
    mut reader: R,
    writer: W,
    recipients: &[String],
) -> Result<u64, PostureError> {
    let rs = parse_recipients(recipients)?;
    seal_to(&mut reader, writer, &rs).map_err(|e| PostureError::Seal {
        path: "-".into(),
        reason: e.to_string(),
    })
}

fn seal_to<R: Read, W: Write>(
    reader: &mut R,
    writer: W,
    rs: &[x25519::Recipient],
) -> io::Result<u64> {
    let enc = age::Encryptor::with_recipients(rs.iter().map(|r| r as &dyn age::Recipient))
        .map_err(other)?;
    let mut w = enc.wrap_output(writer)?;
    // Whole 64 KiB payload chunks per read (io::copy's 8 KiB would mean 8× the reads
    // and copies into the stream's chunk buffer).
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0u64;
    loop {
        let got = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..got])?;
        n += got as u64;
    }
    w.finish()?.flush()?;
    Ok(n)
}

/// Read the header (bounded, at most [`MAX_STANZAS`] stanzas) and hand back a reader
/// that replays it, so no hostile header makes us do unbounded work.
fn checked_header<R: Read>(reader: R) -> io::Result<impl BufRead> {
    let mut br = BufReader::with_capacity(64 << 10, reader);
    let mut header = Vec::new();
    let mut stanzas = 0usize;
    loop {
        let mut line = Vec::new();
        let n = (&mut br)
            .take(MAX_HEADER as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        header.extend_from_slice(&line);
        if header.len() == line.len() && !line.starts_with(b"age-encryption.org/") {
            break; // not an age header: let age report it
        }
        if line.starts_with(b"-> ") {
            stanzas += 1;
            if stanzas > MAX_STANZAS {
                return Err(other(format!(
                    "header has more than {MAX_STANZAS} recipient stanzas"
                )));
            }
        }
        if line.starts_with(b"--- ") || header.len() > MAX_HEADER {
            break;
        }
    }
    Ok(BufReader::new(io::Cursor::new(header).chain(br)))
}

fn unseal_to<R: Read, W: Write>(
    reader: R,
    writer: &mut W,
    ids: &[x25519::Identity],
) -> io::Result<u64> {
    let dec = age::Decryptor::new_buffered(checked_header(reader)?).map_err(other)?;
    let mut r = dec
        .decrypt(ids.iter().map(|i| i as &dyn age::Identity))
        .map_err(other)?;
    let n = io::copy(&mut r, writer)?;
    writer.flush()?;
    Ok(n)
}

/// Decrypt `reader` with `identities` into `writer`, streaming. Each 64 KiB chunk is
/// authenticated before it is written, but a stream that fails late has already written
/// the chunks before: use [`unseal_file`] to get nothing at all on failure.
pub fn unseal<R: Read, W: Write>(
    reader: R,
    mut writer: W,
    identities: &[String],
) -> Result<u64, PostureError> {
    let ids = parse_identities(&identities.join("\n"), "identities")?;
    unseal_to(reader, &mut writer, &ids).map_err(|e| PostureError::Unseal {
        path: "-".into(),
        reason: e.to_string(),
    })
}

/// The directory `dest` is (to be) in.
fn dir_of(dest: &Path) -> &Path {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_in(dest: &Path) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".mamori-seal-")
        .suffix(".tmp")
        .tempfile_in(dir_of(dest))
}

fn refuse_existing(out: &Path, input: &Path) -> Result<(), PostureError> {
    if out == input {
        return Err(PostureError::Setting {
            setting: "-o".into(),
            reason: "output is the input".into(),
        });
    }
    if out.symlink_metadata().is_ok() {
        return Err(PostureError::Setting {
            setting: "-o".into(),
            reason: format!(
                "{} already exists; remove it or choose another -o",
                out.display()
            ),
        });
    }
    Ok(())
}

/// Seal `input` into `output` (default `input.age`): temp file in the output's directory
/// (0600), renamed into place only when complete. The plaintext is left in place, so, as
/// `age -o` does, this leaves writing back to the kernel; [`seal_file_durable`] is for a
/// caller that removes the plaintext afterwards.
pub fn seal_file(
    input: &Path,
    output: Option<&Path>,
    recipients: &[String],
) -> Result<PathBuf, PostureError> {
    seal_file_with(input, output, recipients, false)
}

/// [`seal_file`], and the sealed file and its directory entry on disk (fsync of both)
/// before returning: what must hold before the plaintext may be deleted.
pub fn seal_file_durable(
    input: &Path,
    output: Option<&Path>,
    recipients: &[String],
) -> Result<PathBuf, PostureError> {
    seal_file_with(input, output, recipients, true)
}

fn seal_file_with(
    input: &Path,
    output: Option<&Path>,
    recipients: &[String],
    durable: bool,
) -> Result<PathBuf, PostureError> {
    let rs = parse_recipients(recipients)?;
    let out = output.map(Path::to_path_buf).unwrap_or_else(|| {
        let mut s = input.as_os_str().to_owned();
        s.push(".age");
        PathBuf::from(s)
    });
    refuse_existing(&out, input)?;
    let mut f = std::fs::File::open(input).map_err(|e| PostureError::io(input, e))?;
    let err = |e: io::Error| PostureError::Seal {
        path: input.to_path_buf(),
        reason: e.to_string(),
    };
    let tmp = temp_in(&out).map_err(|e| PostureError::io(&out, e))?;
    seal_to(
        &mut f,
        io::BufWriter::with_capacity(64 << 10, tmp.as_file()),
        &rs,
    )
    .map_err(err)?;
    if durable {
        tmp.as_file().sync_all().map_err(err)?;
    }
    tmp.persist_noclobber(&out)
        .map_err(|e| PostureError::io(&out, e.error))?;
    if durable {
        let dir = dir_of(&out);
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| PostureError::io(dir, e))?;
    }
    Ok(out)
}

/// Unseal `input` into `output` (default: `input` without `.age`). The plaintext only
/// appears, by rename, once the whole file has decrypted and authenticated; on any
/// error the temp file is removed and the error names `input`. The sealed file stays,
/// so, as `age -d -o` does, writing back is left to the kernel.
pub fn unseal_file(
    input: &Path,
    output: Option<&Path>,
    identities: &[String],
) -> Result<PathBuf, PostureError> {
    let ids = parse_identities(&identities.join("\n"), "identities")?;
    let out = match output {
        Some(o) => o.to_path_buf(),
        None => {
            let s = input.to_string_lossy();
            match s.strip_suffix(".age") {
                Some(b) if !b.is_empty() => PathBuf::from(b),
                _ => {
                    return Err(PostureError::Setting {
                        setting: "-o".into(),
                        reason: format!("{s} does not end in .age: give -o"),
                    });
                }
            }
        }
    };
    refuse_existing(&out, input)?;
    let f = std::fs::File::open(input).map_err(|e| PostureError::io(input, e))?;
    let tmp = temp_in(&out).map_err(|e| PostureError::io(&out, e))?;
    let err = |e: io::Error| PostureError::Unseal {
        path: input.to_path_buf(),
        reason: e.to_string(),
    };
    {
        let mut w = io::BufWriter::with_capacity(64 << 10, tmp.as_file());
        unseal_to(f, &mut w, &ids).map_err(err)?;
    }
    tmp.persist_noclobber(&out)
        .map_err(|e| PostureError::io(&out, e.error))?;
    Ok(out)
}

/// Personal data in (the first 16 MiB of) a file: e-mail addresses and Luhn-valid card
/// numbers (masked samples).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Pii {
    pub emails: usize,
    pub pans: usize,
    pub samples: Vec<String>,
}

pub fn scan_pii(path: &Path) -> io::Result<Pii> {
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(16 << 20)
        .read_to_end(&mut buf)?;
    Ok(scan_pii_bytes(&buf))
}

pub fn scan_pii_bytes(b: &[u8]) -> Pii {
    let mut p = Pii::default();
    if let Ok(re) = regex::bytes::Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}") {
        p.emails = re.find_iter(b).count();
    }
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let mut digits = Vec::with_capacity(19);
        let mut j = i;
        while j < b.len() && digits.len() <= 19 {
            if b[j].is_ascii_digit() {
                digits.push(b[j]);
                j += 1;
            } else if (b[j] == b' ' || b[j] == b'-') && j + 1 < b.len() && b[j + 1].is_ascii_digit()
            {
                j += 1;
            } else {
                break;
            }
        }
        if (13..=19).contains(&digits.len()) && pan::is_pan(&digits) {
            p.pans += 1;
            if p.samples.len() < 3 {
                p.samples.push(pan::mask(&digits));
            }
        }
        i = j.max(i + 1);
    }
    p
}

/// One pass of `seal.watch` over `dir`: every plaintext regular file (not `*.age`, not
/// our temp files, not modified within `min_age`) is sealed to `recipients` and then
/// removed. Returns a `posture.pass` (`seal.sealed`) per sealed file and a
/// `posture.fail` (`seal.plaintext_pii` high when it holds personal data, else
/// `seal.plaintext`) per plaintext that lingers.
pub fn sweep_seal_dir(
    dir: &Path,
    recipients: &[String],
    min_age: Duration,
    host: &str,
    lang: Lang,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let now = std::time::SystemTime::now();
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            let d = dir.display();
            let mut f = Finding::new(
                Kind::PostureUnknown,
                Severity::Medium,
                Utc::now(),
                host,
                tr!(
                    lang,
                    "seal.watch: cannot read {d}: {e}",
                    "seal.watch: {d} を読めません: {e}"
                ),
            )
            .with_path(d.to_string())
            .with_checklist(&["jca:exposure"]);
            f.check = Some("seal.watch".into());
            return vec![f];
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let Ok(meta) = p.symlink_metadata() else {
            continue;
        };
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !meta.file_type().is_file()
            || name.ends_with(".age")
            || name.starts_with(".mamori-seal-")
        {
            continue;
        }
        if let Ok(m) = meta.modified()
            && now.duration_since(m).unwrap_or_default() < min_age
        {
            continue;
        }
        let shown = p.display().to_string();
        // On disk before the plaintext goes: a crash in between leaves both, never neither.
        let result = seal_file_durable(&p, None, recipients).and_then(|sealed| {
            std::fs::remove_file(&p).map_err(|e| PostureError::io(&p, e))?;
            Ok(sealed)
        });
        match result {
            Ok(sealed) => {
                let s = sealed.display().to_string();
                let mut f = Finding::new(
                    Kind::PosturePass,
                    Severity::Info,
                    Utc::now(),
                    host,
                    tr!(lang, "sealed {shown} into {s} and removed the plaintext", "{shown} を {s} に暗号化し平文を削除しました"),
                )
                .with_path(shown.clone())
                .with_checklist(&["jca:exposure"])
                .with_evidence(serde_json::json!({"sealed": s, "bytes": meta.len(), "recipients": recipients.len()}));
                f.check = Some("seal.sealed".into());
                out.push(f);
            }
            Err(e) => {
                let pii = scan_pii(&p).unwrap_or_default();
                let reason = e.localized(lang);
                let (check, sev, summary) = if pii.emails + pii.pans > 0 {
                    let (m, c) = (pii.emails, pii.pans);
                    (
                        "seal.plaintext_pii",
                        Severity::High,
                        tr!(
                            lang,
                            "personal data left in plaintext: {shown} ({m} e-mail addresses, {c} card numbers): {reason}",
                            "個人情報が平文のまま残っています: {shown} (メールアドレス {m} 件、カード番号 {c} 件): {reason}"
                        ),
                    )
                } else {
                    (
                        "seal.plaintext",
                        Severity::Medium,
                        tr!(
                            lang,
                            "plaintext file not sealed: {shown}: {reason}",
                            "平文のファイルを暗号化できません: {shown}: {reason}"
                        ),
                    )
                };
                let mut f = Finding::new(Kind::PostureFail, sev, Utc::now(), host, summary)
                    .with_path(shown)
                    .with_checklist(&["jca:exposure"])
                    .with_evidence(serde_json::json!({
                        "reason": reason, "emails": pii.emails, "card_numbers": pii.pans, "masked_samples": pii.samples,
                        "remediation": tr!(lang, "set posture.recipients and check the directory's permissions", "posture.recipients を設定し、ディレクトリの権限を確認してください"),
                    }));
                f.check = Some(check.into());
                out.push(f);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pii_scan() {
        let p = scan_pii_bytes(
            b"name,mail,card\nTaro,taro@example.jp,4111 1111 1111 1111\nx,y,1234567890123\n",
        );
        assert_eq!(p.emails, 1);
        assert_eq!(p.pans, 1);
        assert_eq!(p.samples, vec!["411111******1111".to_string()]);
        assert_eq!(scan_pii_bytes(b"order 20261124 total 1200"), Pii::default());
    }

    #[test]
    fn memory_round_trip_and_errors() {
        let (id, r) = keygen();
        assert!(id.starts_with("AGE-SECRET-KEY-1") && r.starts_with("age1"));
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut sealed = Vec::new();
        assert_eq!(
            seal(&data[..], &mut sealed, std::slice::from_ref(&r)).unwrap(),
            data.len() as u64
        );
        let mut back = Vec::new();
        unseal(&sealed[..], &mut back, std::slice::from_ref(&id)).unwrap();
        assert_eq!(back, data);
        let (other_id, _) = keygen();
        assert!(unseal(&sealed[..], &mut Vec::new(), &[other_id]).is_err());
        assert!(matches!(
            seal(&b"x"[..], Vec::new(), &[]),
            Err(PostureError::NoRecipients)
        ));
        assert!(seal(&b"x"[..], Vec::new(), &["age1nope".into()]).is_err());
    }

    #[test]
    fn too_many_stanzas_refused_before_crypto() {
        let mut h = b"age-encryption.org/v1\n".to_vec();
        for _ in 0..(MAX_STANZAS + 1) {
            h.extend_from_slice(b"-> X25519 AAAA\nAAAA\n");
        }
        h.extend_from_slice(b"--- AAAA\n");
        let (id, _) = keygen();
        let e = unseal(&h[..], Vec::new(), &[id]).unwrap_err();
        assert!(e.to_string().contains("stanzas"), "{e}");
    }
}
