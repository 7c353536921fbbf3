//! The CSP report endpoint over real sockets, and a real Chromium sending it a report.

mod support;

use mamori_core::{Kind, Lang, Severity};
use mamori_page::{CspEndpointConfig, Loader, PageConfig, start_csp_endpoint};
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::{Server, chromium, post};

fn endpoint_cfg() -> CspEndpointConfig {
    CspEndpointConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_body: 4096,
        rate_per_minute: 20,
        dedupe: Duration::from_secs(3600),
        max_connections: 8,
    }
}

const LEGACY: &str = r#"{"csp-report":{"document-uri":"https://shop.example/shopping/checkout","referrer":"","violated-directive":"script-src-elem","effective-directive":"script-src-elem","original-policy":"script-src 'self'; report-uri /csp-report","disposition":"enforce","blocked-uri":"https://cdn-jquery.example.invalid/jquery.min.js","status-code":200,"script-sample":""}}"#;

const REPORTING_API: &str = r#"[{"type":"csp-violation","age":10,"url":"https://shop.example/shopping/checkout","user_agent":"Mozilla/5.0","body":{"documentURL":"https://shop.example/shopping/checkout","referrer":"","blockedURL":"wss://exfil.example.invalid/s","effectiveDirective":"connect-src","originalPolicy":"connect-src 'self'","sourceFile":"https://shop.example/js/app.js","sample":"","disposition":"enforce","statusCode":200,"lineNumber":3,"columnNumber":7}}]"#;

#[test]
fn endpoint_accepts_both_formats_bounds_and_folds() {
    let (tx, rx) = std::sync::mpsc::channel();
    let ep = start_csp_endpoint(endpoint_cfg(), "shop-1", Lang::En, move |f| {
        let _ = tx.send(f);
    })
    .unwrap();
    let addr = ep.local_addr();

    assert_eq!(
        post(addr, "application/csp-report", LEGACY.as_bytes(), ""),
        204
    );
    let f = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(f.kind, Kind::PageCspViolation);
    assert_eq!(f.severity, Severity::High);
    assert_eq!(
        f.url.as_deref(),
        Some("https://shop.example/shopping/checkout")
    );
    assert_eq!(f.dest.as_deref(), Some("cdn-jquery.example.invalid"));
    assert_eq!(f.evidence["directive"], "script-src-elem");

    assert_eq!(
        post(
            addr,
            "application/reports+json",
            REPORTING_API.as_bytes(),
            ""
        ),
        204
    );
    let f = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(f.evidence["directive"], "connect-src");
    assert_eq!(f.dest.as_deref(), Some("exfil.example.invalid"));

    // The same violation again: folded into the first finding of the window.
    assert_eq!(
        post(addr, "application/csp-report", LEGACY.as_bytes(), ""),
        204
    );
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
    assert_eq!(ep.stats().folded.load(Ordering::Relaxed), 1);

    // Browser extensions are not the shop's problem.
    let ext = LEGACY.replace(
        "https://cdn-jquery.example.invalid/jquery.min.js",
        "chrome-extension://abcdef/inject.js",
    );
    assert_eq!(
        post(addr, "application/csp-report", ext.as_bytes(), ""),
        204
    );
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());

    // Bounded and strict.
    let big = vec![b' '; 5000];
    assert_eq!(post(addr, "application/csp-report", &big, ""), 413);
    assert_eq!(post(addr, "application/csp-report", b"{not json", ""), 400);
    assert_eq!(post(addr, "text/plain", LEGACY.as_bytes(), ""), 415);

    // Rate per client address (the forwarded one behind the reverse proxy).
    let mut codes = Vec::new();
    for _ in 0..25 {
        codes.push(post(
            addr,
            "application/csp-report",
            LEGACY.as_bytes(),
            "X-Real-IP: 198.51.100.7\r\n",
        ));
    }
    assert!(codes.contains(&429), "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 204).count(), 20, "{codes:?}");
    // Another client is not affected.
    assert_eq!(
        post(
            addr,
            "application/csp-report",
            LEGACY.as_bytes(),
            "X-Real-IP: 198.51.100.8\r\n"
        ),
        204
    );
    ep.stop();
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err());
}

#[test]
fn listen_error_is_clear() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = endpoint_cfg();
    c.listen = taken.local_addr().unwrap();
    let e = match start_csp_endpoint(c, "h", Lang::En, |_| {}) {
        Err(e) => e,
        Ok(_) => panic!("bound a taken port"),
    };
    assert!(e.localized(Lang::En).contains("cannot listen"), "{e}");
}

#[test]
fn a_real_browser_reports_a_blocked_script() {
    let Some(chrome) = chromium() else { return };
    let (tx, rx) = std::sync::mpsc::channel();
    let ep = start_csp_endpoint(endpoint_cfg(), "shop-1", Lang::En, move |f| {
        let _ = tx.send(f);
    })
    .unwrap();
    let site = Server::start();
    let report = format!("http://{}/csp-report", ep.local_addr());
    // The enforced policy does not allow localhost: the PSP script is blocked.
    site.set(|s| {
        s.csp = Some(format!(
            "default-src 'self'; script-src 'self' 'unsafe-inline'; report-uri {report}"
        ))
    });
    let cfg = PageConfig {
        browser_flag: Some(chrome),
        timeout: 20,
        ..PageConfig::default()
    };
    let mut loader = Loader::new(&cfg, false).unwrap();
    loader.load(&site.checkout()).unwrap();
    let f = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("a CSP report from Chromium");
    assert_eq!(f.kind, Kind::PageCspViolation);
    assert_eq!(f.url.as_deref(), Some(site.checkout().as_str()));
    assert!(
        f.evidence["directive"]
            .as_str()
            .unwrap()
            .starts_with("script-src")
    );
    assert_eq!(
        f.dest.as_deref(),
        Some(format!("localhost:{}", site.addr.port()).as_str())
    );
}
