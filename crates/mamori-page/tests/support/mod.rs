//! A small checkout site for the tests: a real HTTP/1.1 server on 127.0.0.1 (std threads)
//! whose pages change when a test flips a switch. Shared by the crate tests and the CLI
//! tests (`crates/mamori/tests/page.rs` includes this file).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the site serves; tests change it between loads.
#[derive(Debug, Clone)]
pub struct Site {
    /// (a) one more external script tag in the checkout template.
    pub extra_script: bool,
    /// (b) the tag loader (app.js, unchanged) is told to add one more script at run time.
    pub runtime_script: bool,
    /// (c) where the payment form posts.
    pub form_action: String,
    /// (d) the CSP header (None = not sent).
    pub csp: Option<String>,
    /// A fake card form added to the page (no card inputs on the approved page).
    pub fake_form: bool,
    /// Body of the tag `late.js`.
    pub late_body: String,
    /// Extra raw HTML appended to the body.
    pub extra_html: String,
    /// The payment form has the card inputs (false: a redirect provider's shop, the form
    /// only hands over to the provider's page).
    pub card_form: bool,
    /// Answer the checkout with `302 Location:` this URL instead.
    pub redirect: Option<String>,
}

impl Site {
    pub fn new() -> Site {
        Site {
            extra_script: false,
            runtime_script: false,
            form_action: "/shopping/pay".into(),
            csp: Some(String::new()), // filled with the port in `start`
            fake_form: false,
            late_body: "window.tagLoaded = (window.tagLoaded || 0) + 1;".into(),
            extra_html: String::new(),
            card_form: true,
            redirect: None,
        }
    }
}

impl Default for Site {
    fn default() -> Self {
        Site::new()
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub site: Arc<Mutex<Site>>,
    initial: Site,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Start on a free loopback port.
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test server");
        let addr = listener.local_addr().unwrap();
        let mut site = Site::new();
        site.csp = Some(default_csp(addr.port()));
        let initial = site.clone();
        let site = Arc::new(Mutex::new(site));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (site.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for c in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(c) = c else { continue };
                let (s, st) = (s.clone(), st.clone());
                std::thread::spawn(move || serve(c, &s, &st, addr.port()));
            }
        });
        Server {
            addr,
            site,
            initial,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn checkout(&self) -> String {
        self.url("/shopping/checkout")
    }

    /// Change what is served.
    pub fn set(&self, f: impl FnOnce(&mut Site)) {
        f(&mut self.site.lock().unwrap());
    }

    /// Back to the approved state.
    pub fn reset(&self) {
        *self.site.lock().unwrap() = self.initial.clone();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn default_csp(port: u16) -> String {
    format!(
        "default-src 'self'; script-src 'self' http://localhost:{port} 'unsafe-inline'; connect-src 'self'; form-action 'self'; frame-ancestors 'self'; object-src 'none'"
    )
}

const INLINE: &str = "window.shopConfig = { currency: 'JPY', step: 'payment' };";

/// The tag loader: reads /tags.json and adds each script (like a tag manager).
const APP_JS: &str = r#"(function () {
  var card = document.getElementById('card_number');
  if (card) { card.addEventListener('input', function () { card.value = card.value.replace(/[^0-9 ]/g, ''); }); }
  window.addEventListener('load', function () {
    fetch('/tags.json').then(function (r) { return r.json(); }).then(function (tags) {
      tags.forEach(function (src) { var s = document.createElement('script'); s.src = src; document.head.appendChild(s); });
    });
  });
})();
"#;

fn checkout(site: &Site, port: u16) -> String {
    let extra = if site.extra_script {
        format!("<script src=\"http://localhost:{port}/js/extra.js\"></script>\n")
    } else {
        String::new()
    };
    let fake = if site.fake_form {
        "<form id=\"verify\" action=\"/shopping/verify\" method=\"post\"><input name=\"cc_number\" autocomplete=\"cc-number\"><input name=\"cvc\"></form>"
    } else {
        ""
    };
    let inputs = if site.card_form {
        r#"<input name="card_name" autocomplete="cc-name">
  <input name="card_number" id="card_number" autocomplete="cc-number">
  <input name="card_exp" autocomplete="cc-exp">
  <input name="card_cvv" autocomplete="cc-csc">"#
    } else {
        r#"<input type="hidden" name="provider" value="psp-hosted">"#
    };
    format!(
        r#"<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>お支払い</title>
<script src="/js/app.js"></script>
<script src="http://localhost:{port}/vendor/psp.js"></script>
{extra}<script>{INLINE}</script>
</head><body>
<h1>お支払い情報の入力</h1>
<form id="payment" action="{action}" method="post">
  {inputs}
  <input type="hidden" name="product_id" value="12">
  <button type="submit">注文する</button>
</form>
{fake}
{html}
</body></html>
"#,
        action = site.form_action,
        html = site.extra_html,
    )
}

fn serve(mut c: TcpStream, site: &Mutex<Site>, stop: &AtomicBool, port: u16) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        // Not HTTP (e.g. a TLS ClientHello): answer 400 and close, as web servers do.
        if !buf[0].is_ascii_uppercase() {
            let _ = c.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
        if buf.len() > 65536 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    let site = site.lock().unwrap().clone();
    let js = "application/javascript";
    let (status, ctype, body, headers): (u16, &str, String, Vec<(String, String)>) = match path
        .as_str()
    {
        "/shopping/checkout" if site.redirect.is_some() => (
            302,
            "text/plain",
            String::new(),
            vec![("Location".into(), site.redirect.clone().unwrap_or_default())],
        ),
        "/shopping/checkout" => {
            let mut h = vec![
                ("X-Frame-Options".to_string(), "SAMEORIGIN".to_string()),
                (
                    "Referrer-Policy".to_string(),
                    "strict-origin-when-cross-origin".to_string(),
                ),
            ];
            if let Some(csp) = &site.csp {
                h.push(("Content-Security-Policy".into(), csp.clone()));
            }
            (200, "text/html; charset=utf-8", checkout(&site, port), h)
        }
        "/js/app.js" => (200, js, APP_JS.into(), vec![]),
        "/vendor/psp.js" => (
            200,
            js,
            "window.PSP = { tokenize: function (n) { return 'tok_' + n.length; } };".into(),
            vec![],
        ),
        "/js/extra.js" => (200, js, "window.extra = 1;".into(), vec![]),
        "/js/late.js" => (200, js, site.late_body.clone(), vec![]),
        "/tags.json" => {
            let tags = if site.runtime_script {
                format!("[\"http://localhost:{port}/js/late.js\"]")
            } else {
                "[]".into()
            };
            (200, "application/json", tags, vec![])
        }
        "/hang" => {
            // Headers and half a page, then nothing: `load` never fires.
            let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n<!doctype html><html><body><p>loading",
                );
            let t0 = Instant::now();
            while !stop.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(100));
            }
            return;
        }
        "/missing" => (404, "text/plain", "not found".into(), vec![]),
        _ => (404, "text/plain", "not found".into(), vec![]),
    };
    let mut resp = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        resp.push_str(&format!("{k}: {v}\r\n"));
    }
    resp.push_str("\r\n");
    resp.push_str(&body);
    let _ = c.write_all(resp.as_bytes());
    let _ = c.flush();
}

/// A loopback port with nothing listening.
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The Chromium the tests use, or None with a one-line reason (a failure under CI).
pub fn chromium() -> Option<std::path::PathBuf> {
    let p = std::env::var_os("MAMORI_CHROMIUM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/usr/bin/chromium"));
    if p.is_file() {
        return Some(p);
    }
    let what = format!(
        "headless Chromium is needed at {} (apt-get install chromium)",
        p.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("CI must run this test, but {what}");
    }
    eprintln!("skipped: {what}");
    None
}

/// Whether a process group still has members.
pub fn group_alive(pgid: u32) -> bool {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid as i32), None).is_ok()
}

/// POST a body to `addr` and return the status code.
pub fn post(addr: SocketAddr, ctype: &str, body: &[u8], extra: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /csp-report HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
