//! Signed attestations for what no machine can check (education, contracts, test
//! environments, pentests). Each is MAC'd with HMAC-SHA-256 under the store key, shown as
//! ATTESTED (never PASS) until it expires, then FAIL.

use crate::audit::{Ctx, Outcome, Status};
use crate::error::PostureError;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use mamori_core::tr;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::io::Write;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

/// Checklist items that are attested, with their check id.
pub const ATTESTABLE: &[(&str, &str)] = &[
    ("20-1.2", "attest.threat_intel"),
    ("20-1.4", "attest.mail_training"),
    ("20-1.5", "attest.pc_antivirus"),
    ("20-1.8", "attest.test_env"),
    ("20-1.9", "attest.contractors"),
    ("jca:webapp", "attest.pentest"),
    ("jca:card_testing", "attest.card_testing"),
];

/// A signed statement of a person about one checklist item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// The attestation check id (`attest.mail_training`).
    pub item: String,
    pub statement: String,
    pub signer: String,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    /// Hex HMAC-SHA-256 over the fields above.
    pub mac: String,
}

/// The check id for `item`, given as a checklist id (`20-1.4`) or a check id.
pub fn resolve_item(item: &str) -> Option<&'static str> {
    ATTESTABLE
        .iter()
        .find(|(c, id)| *c == item || *id == item)
        .map(|(_, id)| *id)
}

fn mac_of(a: &Attestation, key: &[u8]) -> Option<HmacSha256> {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).ok()?;
    m.update(b"mamori-attest-v1\0");
    for f in [a.item.as_str(), a.statement.as_str(), a.signer.as_str()] {
        m.update(&(f.len() as u64).to_be_bytes());
        m.update(f.as_bytes());
    }
    m.update(&a.created.timestamp_millis().to_be_bytes());
    m.update(&a.expires.timestamp_millis().to_be_bytes());
    Some(m)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Attestation {
    /// Whether the MAC matches under `key` (constant-time comparison).
    pub fn verify(&self, key: &[u8]) -> bool {
        match (mac_of(self, key), unhex(&self.mac)) {
            (Some(m), Some(tag)) => m.verify_slice(&tag).is_ok(),
            _ => false,
        }
    }
}

/// Sign a statement about `item` (`20-1.4` or `attest.mail_training`), valid until
/// `expires`, as the invoking user (`SUDO_USER`, else `USER`).
pub fn attest(
    item: &str,
    statement: &str,
    expires: DateTime<Utc>,
    key: &[u8],
) -> Result<Attestation, PostureError> {
    let signer = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    attest_as(item, statement, expires, &signer, Utc::now(), key)
}

/// [`attest`] with an explicit signer and clock.
pub fn attest_as(
    item: &str,
    statement: &str,
    expires: DateTime<Utc>,
    signer: &str,
    now: DateTime<Utc>,
    key: &[u8],
) -> Result<Attestation, PostureError> {
    let err = |reason: String| PostureError::Attestation {
        item: item.to_string(),
        reason,
    };
    let id = resolve_item(item).ok_or_else(|| {
        err(format!(
            "not an attestable item; use one of {}",
            ATTESTABLE
                .iter()
                .map(|(c, _)| *c)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let statement = statement.trim();
    if statement.is_empty() || statement.chars().count() > 4000 {
        return Err(err("the statement must be 1 to 4000 characters".into()));
    }
    if expires <= now {
        return Err(err(format!(
            "--expires {} is not in the future",
            expires.format("%Y-%m-%d")
        )));
    }
    if expires > now + Duration::days(3 * 366) {
        return Err(err("--expires is more than 3 years ahead".into()));
    }
    if key.is_empty() {
        return Err(err("empty signing key".into()));
    }
    let mut a = Attestation {
        item: id.to_string(),
        statement: statement.to_string(),
        signer: signer.to_string(),
        created: now,
        expires,
        mac: String::new(),
    };
    let m = mac_of(&a, key).ok_or_else(|| err("bad key".into()))?;
    a.mac = hex(&m.finalize().into_bytes());
    Ok(a)
}

/// Attestations in a JSON Lines file; a missing file is an empty list.
pub fn load_attestations(path: &Path) -> Result<Vec<Attestation>, PostureError> {
    let text = match crate::sys::read_capped(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PostureError::io(path, e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| PostureError::Setting {
                setting: format!("{}:{}", path.display(), i + 1),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Append one attestation (creating the file 0600).
pub fn append_attestation(path: &Path, a: &Attestation) -> Result<(), PostureError> {
    use std::os::unix::fs::OpenOptionsExt;
    let line = serde_json::to_string(a).map_err(|e| PostureError::Setting {
        setting: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| PostureError::io(path, e))?;
    writeln!(f, "{line}").map_err(|e| PostureError::io(path, e))
}

/// The check of one attestable item.
pub(crate) fn check(ctx: &Ctx, id: &str) -> Outcome {
    let lang = ctx.lang;
    let mine: Vec<&Attestation> = ctx.attestations.iter().filter(|a| a.item == id).collect();
    let item = ATTESTABLE
        .iter()
        .find(|(_, i)| *i == id)
        .map(|(c, _)| *c)
        .unwrap_or(id);
    if mine.is_empty() {
        return Outcome::missing(
            tr!(
                lang,
                "no attestation recorded (mamori attest {item} --statement … --expires …)",
                "自己申告が記録されていません (mamori attest {item} --statement … --expires …)"
            ),
            "attestations",
        );
    }
    let Some(key) = ctx.attest_key else {
        return Outcome::error(
            tr!(
                lang,
                "no key to verify attestations with",
                "自己申告を検証する鍵がありません"
            ),
            "attestations",
        );
    };
    let valid: Vec<&&Attestation> = mine.iter().filter(|a| a.verify(key)).collect();
    let Some(latest) = valid.iter().max_by_key(|a| a.expires) else {
        let n = mine.len();
        return Outcome::fail(
            tr!(
                lang,
                "{n} attestation(s) with an invalid signature (edited or signed with another key)",
                "署名が無効な自己申告が {n} 件あります (改ざんまたは別の鍵で署名)"
            ),
            "attestations",
        );
    };
    let (who, stmt) = (&latest.signer, &latest.statement);
    let until = latest.expires.format("%Y-%m-%d").to_string();
    let created = latest.created.format("%Y-%m-%d").to_string();
    let details = serde_json::json!({"signer": who, "statement": stmt, "created": latest.created.to_rfc3339(), "expires": latest.expires.to_rfc3339()});
    if latest.expires <= ctx.now {
        return Outcome::fail(
            tr!(
                lang,
                "attestation expired on {until} ({who}, {created}: \"{stmt}\")",
                "自己申告の期限が {until} に切れています ({who}、{created}: 「{stmt}」)"
            ),
            "attestations",
        )
        .with_details(details);
    }
    Outcome::new(
        Status::Attested,
        tr!(
            lang,
            "attested by {who} on {created}, valid until {until}: \"{stmt}\"",
            "{who} が {created} に申告、{until} まで有効: 「{stmt}」"
        ),
        "attestations",
    )
    .with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_tamper() {
        let now = Utc::now();
        let a = attest_as(
            "20-1.4",
            "phishing training 2026-10, 5 staff",
            now + Duration::days(300),
            "tanaka",
            now,
            b"k1",
        )
        .unwrap();
        assert_eq!(a.item, "attest.mail_training");
        assert!(a.verify(b"k1"));
        assert!(!a.verify(b"k2"));
        let mut t = a.clone();
        t.expires += Duration::days(1000);
        assert!(!t.verify(b"k1"));
        assert!(attest_as("20-1.3", "x", now + Duration::days(1), "t", now, b"k").is_err());
        assert!(attest_as("20-1.4", "x", now - Duration::days(1), "t", now, b"k").is_err());
        assert!(attest_as("20-1.4", "  ", now + Duration::days(1), "t", now, b"k").is_err());
    }

    #[test]
    fn file_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("att.jsonl");
        assert!(load_attestations(&p).unwrap().is_empty());
        let now = Utc::now();
        let a = attest_as(
            "20-1.8",
            "staging behind basic auth",
            now + Duration::days(10),
            "t",
            now,
            b"k",
        )
        .unwrap();
        append_attestation(&p, &a).unwrap();
        append_attestation(&p, &a).unwrap();
        let v = load_attestations(&p).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0], a);
        std::fs::write(&p, "{bad\n").unwrap();
        assert!(
            load_attestations(&p)
                .unwrap_err()
                .to_string()
                .contains("att.jsonl:1")
        );
    }
}
