//! The approved inventory against what the page serves now: `page.*` findings.

use crate::csp::Policy;
use crate::inventory::Approved;
use crate::model::{Form, Inventory, Script, host_of, origin_of};
use chrono::Utc;
use mamori_core::{Finding, Kind, Lang, Severity, tr};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const CHECKLIST_SCRIPT: &[&str] = &["20-1.1", "pci:6.4.3", "pci:11.6.1"];
const CHECKLIST_PAGE: &[&str] = &["20-1.1", "pci:11.6.1"];

fn finding(
    kind: Kind,
    sev: Severity,
    host: &str,
    url: &str,
    summary: String,
    evidence: serde_json::Value,
) -> Finding {
    let checklist = if matches!(kind, Kind::PageScriptAdded | Kind::PageScriptChanged) {
        CHECKLIST_SCRIPT
    } else {
        CHECKLIST_PAGE
    };
    let mut f = Finding::new(kind, sev, Utc::now(), host, summary)
        .with_checklist(checklist)
        .with_evidence(evidence);
    f.url = Some(url.to_string());
    f
}

fn script_label(s: &Script) -> String {
    match &s.src {
        Some(u) => u.clone(),
        None => format!("inline {}", &s.key()["inline:".len()..]),
    }
}

fn script_evidence(s: &Script) -> serde_json::Value {
    json!({
        "src": s.src,
        "inline": s.src.is_none(),
        "sha256": s.sha256,
        "size": s.size,
        "origin": s.origin,
        "added_by": s.added_by,
        "sri": s.sri,
        "sri_ok": s.sri_ok,
    })
}

/// Compare. `host` is the finding host (the machine mamori runs for).
pub fn compare(approved: &Approved, now: &Inventory, lang: Lang, host: &str) -> Vec<Finding> {
    let before = &approved.inventory;
    let url = now.url.as_str();
    // Inventories made in different modes: the plain-HTTP one cannot see runtime scripts,
    // requests or JS-built forms, so absences are not reported.
    let mixed = before.mode != now.mode;
    let mut out = Vec::new();
    scripts(before, now, mixed, lang, host, url, &mut out);
    forms(before, now, mixed, lang, host, url, &mut out);
    frames(before, now, mixed, lang, host, url, &mut out);
    headers(before, now, lang, host, url, &mut out);
    if !mixed && let (Some(a), Some(b)) = (&before.request_hosts, &now.request_hosts) {
        let known: BTreeSet<&String> = a.iter().collect();
        for h in b.iter().filter(|h| !known.contains(h)) {
            out.push(finding(
                Kind::PageRequestAdded,
                Severity::Medium,
                host,
                url,
                tr!(
                    lang,
                    "payment page now makes requests to a new host: {h}",
                    "決済ページが新しいホストへ通信しています: {h}"
                ),
                json!({"dest_host": h, "approved_hosts": a}),
            ));
        }
    }
    out
}

/// With `[page] card_fields = "none"`: one critical finding per form (or loose inputs)
/// with card inputs on the shop's own page, approved or not.
pub fn card_fields_findings(now: &Inventory, lang: Lang, host: &str) -> Vec<Finding> {
    let url = now.url.as_str();
    form_key(&now.forms)
        .into_iter()
        .filter(|(_, f)| !f.card_inputs.is_empty())
        .map(|(id, f)| {
            let list = f.card_inputs.join(", ");
            finding(
                Kind::PageFormChanged,
                Severity::Critical,
                host,
                url,
                tr!(
                    lang,
                    "card inputs on the shop's own payment page, where none should be (card_fields = \"none\"): {id} ({list}); a fake card form is the usual skimmer",
                    "カード入力欄が無いはずのショップの決済ページにカード入力欄があります (card_fields = \"none\"): {id} ({list})。偽のカード入力フォームはスキミングの典型です"
                ),
                json!({"form": id, "change": "card_fields", "card_fields": "none",
                       "card_inputs": f.card_inputs, "action": f.action, "loose": f.loose,
                       "inputs": f.inputs}),
            )
        })
        .collect()
}

/// A comparison finding about card inputs appearing (added to a form, or a new form with
/// some): what [`card_fields_findings`] reports instead under `card_fields = "none"`.
pub fn is_card_input_finding(f: &Finding) -> bool {
    let ev = &f.evidence;
    match ev.get("change").and_then(|c| c.as_str()) {
        Some("card_inputs") => true,
        Some("added") => ev
            .get("card_inputs")
            .and_then(|c| c.as_array())
            .is_some_and(|c| !c.is_empty()),
        _ => false,
    }
}

fn scripts(
    before: &Inventory,
    now: &Inventory,
    mixed: bool,
    lang: Lang,
    host: &str,
    url: &str,
    out: &mut Vec<Finding>,
) {
    let known_hosts: BTreeSet<String> = before
        .scripts
        .values()
        .filter_map(Script::host)
        .chain(host_of(&before.final_url))
        .collect();
    let mut added_inline: Vec<&Script> = Vec::new();
    for (k, s) in &now.scripts {
        match before.scripts.get(k) {
            Some(old) => {
                if !s.sha256.is_empty() && !old.sha256.is_empty() && s.sha256 != old.sha256 {
                    let label = script_label(s);
                    let blocked = s.sri_ok == Some(false);
                    let sev = if blocked {
                        Severity::Medium
                    } else {
                        Severity::High
                    };
                    let summary = if blocked {
                        tr!(
                            lang,
                            "payment page script changed (its SRI blocks the new content): {label}",
                            "決済ページのスクリプトが変更されました (SRI により新しい内容は実行されません): {label}"
                        )
                    } else {
                        tr!(
                            lang,
                            "payment page script changed: {label}",
                            "決済ページのスクリプトが変更されました: {label}"
                        )
                    };
                    out.push(finding(
                        Kind::PageScriptChanged,
                        sev,
                        host,
                        url,
                        summary,
                        json!({"script": label, "before": script_evidence(old), "after": script_evidence(s)}),
                    ));
                }
            }
            None if s.src.is_none() => added_inline.push(s),
            None => {
                let label = script_label(s);
                let new_host = s.host().is_some_and(|h| !known_hosts.contains(&h));
                let sev = if new_host {
                    Severity::Critical
                } else {
                    Severity::High
                };
                let summary = match (s.origin, new_host) {
                    (crate::model::Origin::Runtime, _) => tr!(
                        lang,
                        "script not in the approved inventory, added at run time by another script: {label}",
                        "承認済み一覧にないスクリプトが実行時に別のスクリプトから追加されました: {label}"
                    ),
                    (_, true) => tr!(
                        lang,
                        "script from a new host on the payment page: {label}",
                        "決済ページに新しいホストのスクリプトがあります: {label}"
                    ),
                    _ => tr!(
                        lang,
                        "script not in the approved inventory on the payment page: {label}",
                        "決済ページに承認済み一覧にないスクリプトがあります: {label}"
                    ),
                };
                out.push(finding(
                    Kind::PageScriptAdded,
                    sev,
                    host,
                    url,
                    summary,
                    json!({"script": label, "new_host": new_host, "after": script_evidence(s)}),
                ));
            }
        }
    }
    // Inline code: a new hash where an approved one disappeared is an edit of it.
    let mut removed_inline: Vec<&Script> = before
        .scripts
        .iter()
        .filter(|(k, s)| s.src.is_none() && !now.scripts.contains_key(*k))
        .map(|(_, s)| s)
        .collect();
    for s in added_inline {
        let label = script_label(s);
        let pair = removed_inline
            .iter()
            .position(|o| o.origin == s.origin)
            .map(|i| removed_inline.remove(i));
        match pair {
            Some(old) => out.push(finding(
                Kind::PageScriptChanged,
                Severity::High,
                host,
                url,
                tr!(
                    lang,
                    "inline script on the payment page changed: {label}",
                    "決済ページのインラインスクリプトが変更されました: {label}"
                ),
                json!({"script": label, "before": script_evidence(old), "after": script_evidence(s)}),
            )),
            None => {
                let summary = match s.origin {
                    crate::model::Origin::Runtime => tr!(
                        lang,
                        "code not in the approved inventory, run by another script (eval or injected inline): {label}",
                        "承認済み一覧にないコードが別のスクリプトから実行されました (eval や挿入されたインライン): {label}"
                    ),
                    crate::model::Origin::Html => tr!(
                        lang,
                        "inline script not in the approved inventory on the payment page: {label}",
                        "決済ページに承認済み一覧にないインラインスクリプトがあります: {label}"
                    ),
                };
                out.push(finding(
                    Kind::PageScriptAdded,
                    Severity::High,
                    host,
                    url,
                    summary,
                    json!({"script": label, "after": script_evidence(s)}),
                ))
            }
        }
    }
    if mixed {
        return;
    }
    for (k, old) in &before.scripts {
        if now.scripts.contains_key(k) {
            continue;
        }
        if old.src.is_none() && !removed_inline.iter().any(|r| r.key() == *k) {
            continue; // paired above as a change
        }
        let label = script_label(old);
        out.push(finding(
            Kind::PageScriptChanged,
            Severity::Low,
            host,
            url,
            tr!(
                lang,
                "approved script no longer on the payment page: {label}",
                "承認済みのスクリプトが決済ページから無くなりました: {label}"
            ),
            json!({"script": label, "removed": true, "before": script_evidence(old)}),
        ));
    }
}

fn form_key(forms: &[Form]) -> BTreeMap<String, &Form> {
    forms
        .iter()
        .enumerate()
        .map(|(i, f)| (f.ident(i), f))
        .collect()
}

fn same_origin(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => origin_of(a) == origin_of(b),
        (None, None) => true,
        _ => false,
    }
}

fn forms(
    before: &Inventory,
    now: &Inventory,
    mixed: bool,
    lang: Lang,
    host: &str,
    url: &str,
    out: &mut Vec<Finding>,
) {
    let a = form_key(&before.forms);
    let b = form_key(&now.forms);
    let page_origin = origin_of(&now.final_url);
    for (id, f) in &b {
        match a.get(id) {
            Some(old) => {
                if f.action != old.action {
                    let elsewhere = !same_origin(f.action.as_deref(), old.action.as_deref());
                    let to = f.action.clone().unwrap_or_default();
                    let sev = if elsewhere || !f.card_inputs.is_empty() {
                        Severity::Critical
                    } else {
                        Severity::High
                    };
                    let summary = if elsewhere {
                        tr!(
                            lang,
                            "payment form {id} now submits to another site: {to}",
                            "決済フォーム {id} の送信先が別のサイトになりました: {to}"
                        )
                    } else {
                        tr!(
                            lang,
                            "payment form {id} now submits elsewhere: {to}",
                            "決済フォーム {id} の送信先が変わりました: {to}"
                        )
                    };
                    out.push(finding(
                        Kind::PageFormChanged,
                        sev,
                        host,
                        url,
                        summary,
                        json!({"form": id, "change": "action", "before": old.action, "after": f.action,
                               "other_origin": elsewhere, "card_inputs": f.card_inputs}),
                    ));
                }
                let new_card: Vec<&String> = f
                    .card_inputs
                    .iter()
                    .filter(|c| !old.card_inputs.contains(c))
                    .collect();
                if !new_card.is_empty() {
                    let sev = if old.card_inputs.is_empty() {
                        Severity::Critical
                    } else {
                        Severity::High
                    };
                    let list = new_card
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    out.push(finding(
                        Kind::PageFormChanged,
                        sev,
                        host,
                        url,
                        tr!(
                            lang,
                            "card inputs added to form {id}: {list}",
                            "フォーム {id} にカード入力欄が追加されました: {list}"
                        ),
                        json!({"form": id, "change": "card_inputs", "added": new_card,
                               "before": old.card_inputs, "after": f.card_inputs}),
                    ));
                }
                let new_btn: Vec<&String> = f
                    .button_actions
                    .iter()
                    .filter(|u| !old.button_actions.contains(u))
                    .collect();
                if !new_btn.is_empty() {
                    out.push(finding(
                        Kind::PageFormChanged,
                        Severity::High,
                        host,
                        url,
                        tr!(
                            lang,
                            "a button of form {id} now submits elsewhere (formaction): {}",
                            "フォーム {id} のボタンの送信先 (formaction) が変わりました: {}",
                            new_btn[0]
                        ),
                        json!({"form": id, "change": "formaction", "added": new_btn}),
                    ));
                }
                if f.method != old.method && !f.loose {
                    out.push(finding(
                        Kind::PageFormChanged,
                        Severity::Medium,
                        host,
                        url,
                        tr!(
                            lang,
                            "form {id} method changed from {} to {}",
                            "フォーム {id} のメソッドが {} から {} に変わりました",
                            old.method,
                            f.method
                        ),
                        json!({"form": id, "change": "method", "before": old.method, "after": f.method}),
                    ));
                }
            }
            None => {
                let elsewhere =
                    f.action.as_deref().and_then(origin_of) != page_origin && f.action.is_some();
                let card = !f.card_inputs.is_empty();
                let sev = match (card, elsewhere) {
                    (true, _) => Severity::Critical,
                    (false, true) => Severity::High,
                    _ => Severity::Low,
                };
                let list = f.card_inputs.join(", ");
                let summary = if card {
                    tr!(
                        lang,
                        "new form with card inputs on the payment page: {id} ({list})",
                        "決済ページにカード入力欄のある新しいフォームがあります: {id} ({list})"
                    )
                } else {
                    tr!(
                        lang,
                        "new form on the payment page: {id}",
                        "決済ページに新しいフォームがあります: {id}"
                    )
                };
                out.push(finding(
                    Kind::PageFormChanged,
                    sev,
                    host,
                    url,
                    summary,
                    json!({"form": id, "change": "added", "action": f.action, "other_origin": elsewhere,
                           "card_inputs": f.card_inputs, "inputs": f.inputs}),
                ));
            }
        }
    }
    if mixed {
        return;
    }
    for (id, old) in &a {
        if !b.contains_key(id) {
            out.push(finding(
                Kind::PageFormChanged,
                Severity::Low,
                host,
                url,
                tr!(
                    lang,
                    "approved form no longer on the payment page: {id}",
                    "承認済みのフォームが決済ページから無くなりました: {id}"
                ),
                json!({"form": id, "change": "removed", "before": old.action}),
            ));
        }
    }
}

fn frame_origin(src: &str) -> String {
    origin_of(src).unwrap_or_else(|| src.to_string())
}

fn frames(
    before: &Inventory,
    now: &Inventory,
    mixed: bool,
    lang: Lang,
    host: &str,
    url: &str,
    out: &mut Vec<Finding>,
) {
    let a: BTreeSet<String> = before
        .iframes
        .iter()
        .map(|f| frame_origin(&f.src))
        .collect();
    let b: BTreeSet<String> = now.iframes.iter().map(|f| frame_origin(&f.src)).collect();
    for o in b.difference(&a) {
        let src = now
            .iframes
            .iter()
            .find(|f| frame_origin(&f.src) == *o)
            .map(|f| f.src.clone())
            .unwrap_or_default();
        out.push(finding(
            Kind::PageFormChanged,
            Severity::High,
            host,
            url,
            tr!(
                lang,
                "new iframe on the payment page: {src}",
                "決済ページに新しい iframe があります: {src}"
            ),
            json!({"change": "iframe_added", "src": src, "approved_frames": a}),
        ));
    }
    if mixed {
        return;
    }
    for o in a.difference(&b) {
        out.push(finding(
            Kind::PageFormChanged,
            Severity::Low,
            host,
            url,
            tr!(
                lang,
                "approved iframe no longer on the payment page: {o}",
                "承認済みの iframe が決済ページから無くなりました: {o}"
            ),
            json!({"change": "iframe_removed", "src": o}),
        ));
    }
}

/// `values`: (before, after); `at`: (finding host, page url).
fn header_finding(
    sev: Severity,
    name: &str,
    summary: String,
    values: (Option<&String>, Option<&String>),
    why: serde_json::Value,
    at: (&str, &str),
) -> Finding {
    let ((before, after), (host, url)) = (values, at);
    finding(
        Kind::PageHeaderChanged,
        sev,
        host,
        url,
        summary,
        json!({"header": name, "before": before, "after": after, "why": why}),
    )
}

fn headers(
    before: &Inventory,
    now: &Inventory,
    lang: Lang,
    host: &str,
    url: &str,
    out: &mut Vec<Finding>,
) {
    let mut a = before.headers.clone();
    let mut b = now.headers.clone();
    if let Some(m) = &before.meta_csp {
        a.insert("meta content-security-policy".into(), m.clone());
    }
    if let Some(m) = &now.meta_csp {
        b.insert("meta content-security-policy".into(), m.clone());
    }
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for name in names {
        let (old, new) = (a.get(name), b.get(name));
        if old == new {
            continue;
        }
        let n = name.as_str();
        match n {
            "content-security-policy" | "meta content-security-policy" => {
                let enforced_elsewhere = |m: &BTreeMap<String, String>| {
                    m.keys()
                        .any(|k| k.ends_with("content-security-policy") && k != name)
                };
                match (old, new) {
                    (Some(_), None) => {
                        let sev = if enforced_elsewhere(&b) {
                            Severity::Medium
                        } else {
                            Severity::High
                        };
                        out.push(header_finding(
                            sev,
                            n,
                            tr!(
                                lang,
                                "Content-Security-Policy removed from the payment page ({n})",
                                "決済ページから Content-Security-Policy が削除されました ({n})"
                            ),
                            (old, new),
                            json!(["removed"]),
                            (host, url),
                        ))
                    }
                    (None, Some(_)) => out.push(header_finding(
                        Severity::Low,
                        n,
                        tr!(
                            lang,
                            "Content-Security-Policy added to the payment page ({n})",
                            "決済ページに Content-Security-Policy が追加されました ({n})"
                        ),
                        (old, new),
                        json!(["added"]),
                        (host, url),
                    )),
                    (Some(o), Some(nw)) => {
                        let weaker = Policy::parse(o).weakenings(&Policy::parse(nw));
                        let (sev, summary) = if weaker.is_empty() {
                            (
                                Severity::Low,
                                tr!(
                                    lang,
                                    "Content-Security-Policy of the payment page changed (not weaker)",
                                    "決済ページの Content-Security-Policy が変わりました (緩和ではありません)"
                                ),
                            )
                        } else {
                            let w = weaker.join("; ");
                            (
                                Severity::High,
                                tr!(
                                    lang,
                                    "Content-Security-Policy of the payment page weakened: {w}",
                                    "決済ページの Content-Security-Policy が緩和されました: {w}"
                                ),
                            )
                        };
                        out.push(header_finding(
                            sev,
                            n,
                            summary,
                            (old, new),
                            json!(weaker),
                            (host, url),
                        ));
                    }
                    (None, None) => {}
                }
            }
            "strict-transport-security" => {
                let age = |v: Option<&String>| -> u64 {
                    v.and_then(|v| {
                        v.split(';').find_map(|p| {
                            let p = p.trim().to_ascii_lowercase();
                            p.strip_prefix("max-age=")
                                .and_then(|x| x.trim_matches('"').parse().ok())
                        })
                    })
                    .unwrap_or(0)
                };
                let (sev, why) = if new.is_none() {
                    (Severity::High, "removed")
                } else if age(new) < age(old) {
                    (Severity::Medium, "max-age lowered")
                } else {
                    (Severity::Low, "changed")
                };
                out.push(header_finding(
                    sev,
                    n,
                    tr!(
                        lang,
                        "Strict-Transport-Security of the payment page {why}",
                        "決済ページの Strict-Transport-Security が変わりました ({why})"
                    ),
                    (old, new),
                    json!([why]),
                    (host, url),
                ));
            }
            _ => {
                let why = match (old, new) {
                    (Some(_), None) => "removed",
                    (None, Some(_)) => "added",
                    _ => "changed",
                };
                let sev = match (n, why) {
                    ("x-frame-options", "removed") => Severity::Medium,
                    ("content-security-policy-report-only", "removed") => Severity::Medium,
                    _ => Severity::Low,
                };
                out.push(header_finding(
                    sev,
                    n,
                    tr!(
                        lang,
                        "security header {n} of the payment page {why}",
                        "決済ページのセキュリティヘッダー {n} が変わりました ({why})"
                    ),
                    (old, new),
                    json!([why]),
                    (host, url),
                ));
            }
        }
    }
    // Where the page ends up.
    if before.final_url != now.final_url {
        let elsewhere = origin_of(&before.final_url) != origin_of(&now.final_url);
        let to = &now.final_url;
        out.push(finding(
            Kind::PageHeaderChanged,
            if elsewhere {
                Severity::High
            } else {
                Severity::Medium
            },
            host,
            url,
            tr!(
                lang,
                "payment page now ends up at {to}",
                "決済ページの遷移先が変わりました: {to}"
            ),
            json!({"header": "location", "before": before.final_url, "after": to, "other_origin": elsewhere}),
        ));
    }
}
