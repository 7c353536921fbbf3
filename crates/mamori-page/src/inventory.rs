//! Approved inventories: one signed document per page in the store (`page/<url>`), with a
//! written reason per script (PCI DSS 6.4.3 c). A document edited outside mamori fails its
//! signature and is reported as `baseline.tampered`, never used.

use crate::error::{PageError, Result};
use crate::model::Inventory;
use mamori_core::store::{Doc, Store};
use mamori_core::{Finding, Kind, Lang, Severity, tr};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Prefix of the store documents.
pub const DOC_PREFIX: &str = "page/";

/// The store name of a page's approved inventory.
pub fn doc_name(url: &str) -> String {
    format!("{DOC_PREFIX}{url}")
}

/// Why a script is on the payment page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reason {
    /// The business or technical justification (6.4.3 c). Empty = none given yet.
    pub text: String,
    /// When it was first approved (RFC 3339).
    pub since: String,
}

/// An approved inventory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Approved {
    pub version: u32,
    pub url: String,
    pub approved_at: String,
    /// The `--reason` of the last approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub inventory: Inventory,
    /// Script key ([`crate::Script::key`]) → reason.
    pub reasons: BTreeMap<String, Reason>,
}

/// The state of a page's approval in the store.
#[derive(Debug)]
pub enum Stored {
    Missing,
    Valid(Box<Approved>),
    /// The signature does not verify, or the body is not an inventory.
    Tampered,
}

/// Read the approved inventory of `url`.
pub fn load(store: &Store, url: &str) -> Result<Stored> {
    let doc = match store.doc_get(&doc_name(url)) {
        Ok(d) => d,
        // A body rewritten with SQL as text (sqlite3's replace()) no longer reads as a
        // blob: edited outside mamori as much as a bad signature is.
        Err(mamori_core::Error::Store {
            source: rusqlite_err,
            ..
        }) if format!("{rusqlite_err}").contains("Invalid column type") => Doc::Tampered,
        Err(e) => return Err(e.into()),
    };
    Ok(match doc {
        Doc::Missing => Stored::Missing,
        Doc::Tampered => Stored::Tampered,
        Doc::Valid { body, .. } => match serde_json::from_slice::<Approved>(&body) {
            Ok(a) if a.version == 1 && a.url == url => Stored::Valid(Box::new(a)),
            _ => Stored::Tampered,
        },
    })
}

/// Every approved page (url → state), for listing and CSP advice.
pub fn load_all(store: &Store) -> Result<Vec<(String, Stored)>> {
    let mut out = Vec::new();
    for name in store.doc_names(DOC_PREFIX)? {
        let url = name[DOC_PREFIX.len()..].to_string();
        let st = load(store, &url)?;
        out.push((url, st));
    }
    Ok(out)
}

/// What an approval did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ApproveOutcome {
    /// Scripts approved for the first time.
    pub new_scripts: Vec<String>,
    /// Scripts whose earlier reason was kept.
    pub kept_reasons: usize,
    /// Scripts without any reason (6.4.3 wants one for each).
    pub without_reason: Vec<String>,
    /// Scripts no longer on the page (dropped from the inventory).
    pub dropped: Vec<String>,
}

/// Store `inv` as the approved inventory of its URL. Scripts already approved keep their
/// reason; new scripts get `per_script[key]`, else `reason`. Refuses to build on a
/// tampered document (delete it with `reset` after investigating).
pub fn approve(
    store: &Store,
    inv: Inventory,
    reason: Option<&str>,
    per_script: &BTreeMap<String, String>,
    reset: bool,
) -> Result<ApproveOutcome> {
    let url = inv.url.clone();
    let previous = match load(store, &url)? {
        Stored::Valid(a) => Some(*a),
        Stored::Missing => None,
        Stored::Tampered if reset => None,
        Stored::Tampered => {
            return Err(PageError::Other(format!(
                "{url}: the stored inventory fails its signature check (edited outside mamori); investigate, then approve again with --reset"
            )));
        }
    };
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut out = ApproveOutcome::default();
    let mut reasons = BTreeMap::new();
    for key in inv.scripts.keys() {
        let given = per_script
            .get(key)
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty());
        let old = previous.as_ref().and_then(|p| p.reasons.get(key));
        let r = match (given, old) {
            (Some(t), Some(o)) => Reason {
                text: t.to_string(),
                since: o.since.clone(),
            },
            (Some(t), None) => Reason {
                text: t.to_string(),
                since: now.clone(),
            },
            (None, Some(o)) if !o.text.is_empty() => {
                out.kept_reasons += 1;
                o.clone()
            }
            (None, o) => Reason {
                text: reason.unwrap_or("").trim().to_string(),
                since: o.map(|o| o.since.clone()).unwrap_or_else(|| now.clone()),
            },
        };
        if old.is_none() {
            out.new_scripts.push(key.clone());
        }
        if r.text.is_empty() {
            out.without_reason.push(key.clone());
        }
        reasons.insert(key.clone(), r);
    }
    if let Some(p) = &previous {
        out.dropped = p
            .reasons
            .keys()
            .filter(|k| !inv.scripts.contains_key(*k))
            .cloned()
            .collect();
    }
    let doc = Approved {
        version: 1,
        url: url.clone(),
        approved_at: now,
        note: reason.map(str::to_string),
        inventory: inv,
        reasons,
    };
    let body = serde_json::to_vec(&doc).map_err(|e| PageError::Other(e.to_string()))?;
    store.doc_put(&doc_name(&url), &body)?;
    Ok(out)
}

/// The finding for a tampered approved inventory.
pub fn tampered_finding(url: &str, lang: Lang, host: &str) -> Finding {
    let mut f = Finding::new(
        Kind::BaselineTampered,
        Severity::Critical,
        chrono::Utc::now(),
        host,
        tr!(
            lang,
            "the approved inventory of payment page {url} fails its signature check (edited outside mamori)",
            "決済ページ {url} の承認済み一覧の署名が一致しません (mamori 以外で編集されています)"
        ),
    )
    .with_checklist(&["20-1.1", "pci:11.6.1"])
    .with_evidence(serde_json::json!({"document": doc_name(url), "what": "page inventory"}));
    f.url = Some(url.to_string());
    f
}
