//! The CSP to deploy, generated from approved inventories: an allow-list of exactly the
//! approved scripts (hosts for external ones, hashes for inline code), the hosts the page
//! talks to, its form targets and frames, reporting to the endpoint. Meant to start as
//! `Content-Security-Policy-Report-Only`, then be enforced once the reports are quiet.

use crate::inventory::Approved;
use crate::model::{Origin, host_of, origin_of};
use std::collections::BTreeSet;

/// The advice for a set of pages.
#[derive(Debug, Clone, PartialEq)]
pub struct CspAdvice {
    /// The policy value.
    pub policy: String,
    /// An nginx snippet: report-only header, reporting endpoint, the proxy to mamori.
    pub nginx: String,
    /// What needs a human decision (eval'd code, runtime inline code…).
    pub notes: Vec<String>,
}

fn origin_source(u: &str, page_origin: Option<&str>) -> Option<String> {
    let o = origin_of(u)?;
    if Some(o.as_str()) == page_origin {
        Some("'self'".into())
    } else {
        Some(o)
    }
}

/// Build the advice. `report_path` is where the shop's nginx forwards reports (e.g.
/// `/csp-report`); `listen` is the endpoint's address.
pub fn csp_advice(pages: &[&Approved], report_path: &str, listen: &str) -> CspAdvice {
    let mut script = BTreeSet::from(["'self'".to_string()]);
    let mut connect = BTreeSet::from(["'self'".to_string()]);
    let mut form = BTreeSet::from(["'self'".to_string()]);
    let mut frame = BTreeSet::new();
    let mut notes = Vec::new();
    for a in pages {
        let inv = &a.inventory;
        let po = origin_of(&inv.final_url);
        for s in inv.scripts.values() {
            match &s.src {
                Some(u) => {
                    if let Some(o) = origin_source(u, po.as_deref()) {
                        script.insert(o);
                    }
                }
                None => {
                    script.insert(format!("'{}'", crate::model::csp_hash_of_hex(&s.sha256)));
                    if s.origin == Origin::Runtime {
                        notes.push(format!(
                            "{}: code run by another script (inline {} or eval); if it is eval, the policy needs 'unsafe-eval' — better to remove the eval",
                            inv.url,
                            crate::model::csp_hash_of_hex(&s.sha256)
                        ));
                    }
                }
            }
        }
        if let Some(hosts) = &inv.request_hosts {
            for h in hosts {
                let page_host = host_of(&inv.final_url);
                if Some(h) != page_host.as_ref() {
                    connect.insert(format!("https://{h}"));
                }
            }
        } else {
            notes.push(format!(
                "{}: approved without a browser; connect-src lists only the page's own origin",
                inv.url
            ));
        }
        for f in &inv.forms {
            for u in f.action.iter().chain(f.button_actions.iter()) {
                if let Some(o) = origin_source(u, po.as_deref()) {
                    form.insert(o);
                }
            }
        }
        for f in &inv.iframes {
            if let Some(o) = origin_source(&f.src, po.as_deref()) {
                frame.insert(o);
            }
        }
    }
    let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(" ");
    let frame_src = if frame.is_empty() {
        "'none'".to_string()
    } else {
        list(&frame)
    };
    let policy = format!(
        "default-src 'self'; script-src {}; connect-src {}; form-action {}; frame-src {}; object-src 'none'; base-uri 'self'; frame-ancestors 'self'; upgrade-insecure-requests; report-uri {report_path}; report-to csp",
        list(&script),
        list(&connect),
        list(&form),
        frame_src
    );
    let nginx = format!(
        "# In the shop's server block (start with Report-Only; enforce once reports are quiet):\n\
         add_header Reporting-Endpoints 'csp=\"{report_path}\"' always;\n\
         add_header Content-Security-Policy-Report-Only \"{policy}\" always;\n\
         # Violation reports go to mamori (`mamori watch` runs the endpoint):\n\
         location = {report_path} {{\n\
         \x20   client_max_body_size 64k;\n\
         \x20   proxy_set_header X-Real-IP $remote_addr;\n\
         \x20   proxy_pass http://{listen};\n\
         }}\n"
    );
    notes.sort();
    notes.dedup();
    CspAdvice {
        policy,
        nginx,
        notes,
    }
}
