//! Headless Chromium over the DevTools protocol (chromiumoxide).
//!
//! mamori starts the distribution's `chromium` itself, in its own process group with a
//! fresh profile directory, and kills the whole group when the [`Chromium`] is dropped,
//! so no browser process outlives a check. Every step has a deadline.

use crate::error::{PageError, Result, from_net_error};
use crate::model::{
    Form, Frame, Inventory, Origin, SECURITY_HEADERS, Script, host_of, is_card_input, sha256_hex,
    sri_matches,
};
use chromiumoxide::Page;
use chromiumoxide::browser::Browser;
use chromiumoxide::cdp::browser_protocol::network::{
    EnableParams as NetworkEnable, EventLoadingFailed, EventLoadingFinished,
    EventRequestWillBeSent, EventResponseReceived, GetResponseBodyParams, InitiatorType,
    ResourceType, SetCacheDisabledParams,
};
use chromiumoxide::cdp::browser_protocol::page::{EventLoadEventFired, NavigateParams};
use chromiumoxide::cdp::js_protocol::debugger::{
    DisableParams as DebuggerDisable, EnableParams as DebuggerEnable, EventScriptParsed,
    GetScriptSourceParams,
};
use chromiumoxide::handler::HandlerConfig;
use futures::StreamExt;
use nix::libc;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the browser may take to start and open its DevTools port.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline of one DevTools command after the page has loaded.
const CMD_TIMEOUT: Duration = Duration::from_secs(10);

/// Timing of one page load.
#[derive(Debug, Clone, Copy)]
pub struct LoadTiming {
    /// Navigation and the `load` event must finish within this.
    pub timeout: Duration,
    /// No network or script activity for this long after `load` = settled.
    pub quiet: Duration,
    /// Give up waiting for quiet after this long (recorded with a note).
    pub settle_max: Duration,
}

/// The browser's process group: killed (every member) and reaped when dropped, also
/// when a panic unwinds through the code that started it.
struct Group {
    child: Child,
}

impl Group {
    fn pgid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// Whether any member of the group is still there.
    fn alive(&self) -> bool {
        nix::sys::signal::killpg(self.pgid(), None).is_ok()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(self.pgid(), nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
        // Members whose parent died are reaped by init; wait (bounded) until they are.
        let t0 = Instant::now();
        while self.alive() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A running headless Chromium.
pub struct Chromium {
    group: Group,
    path: PathBuf,
    rt: tokio::runtime::Runtime,
    browser: Option<Browser>,
    handler: Option<tokio::task::JoinHandle<()>>,
    version: String,
    user_agent: Option<String>,
    // Dropped after the process group is killed (field order).
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Chromium {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chromium")
            .field("pid", &self.group.child.id())
            .field("path", &self.path)
            .finish()
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn last_lines(p: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>();
    let start = lines.len().saturating_sub(n);
    lines[start..].join(" | ")
}

impl Chromium {
    /// Start Chromium at `path` (headless, fresh profile, `--no-sandbox` when root).
    pub fn launch(path: &Path, user_agent: Option<&str>) -> Result<Chromium> {
        let meta = std::fs::metadata(path);
        if !matches!(&meta, Ok(m) if m.is_file()) {
            return Err(PageError::BrowserMissing { path: path.into() });
        }
        let start_err = |msg: String| PageError::BrowserStart {
            path: path.into(),
            msg,
        };
        let profile = tempfile::Builder::new()
            .prefix("mamori-chromium-")
            .tempdir()
            .map_err(|e| start_err(format!("cannot create a profile directory: {e}")))?;
        let log = profile.path().join("chromium.log");
        let log_file = std::fs::File::create(&log)
            .map_err(|e| start_err(format!("cannot create {}: {e}", log.display())))?;
        let data = profile.path().join("data");
        let mut cmd = Command::new(path);
        cmd.arg("--headless")
            .arg(format!("--user-data-dir={}", data.display()))
            .args([
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-breakpad",
                "--disable-crash-reporter",
                "--metrics-recording-only",
                "--mute-audio",
                "--password-store=basic",
                "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
            ]);
        if is_root() {
            // Chromium refuses to run as root with its sandbox.
            cmd.arg("--no-sandbox");
        }
        cmd.arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            // Own process group: Drop kills the browser and every helper it started.
            .process_group(0);
        // Drop does not run when mamori itself is killed (SIGKILL, OOM): then the kernel
        // kills the browser as its parent dies, and Chromium's helpers follow it. The
        // signal follows the spawning *thread*: start and use a `Chromium` on a thread
        // that outlives it (the caller's, or the scheduled-check thread in `watch`).
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run in the child
        // between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before the prctl: then nobody would kill us.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                PageError::BrowserMissing { path: path.into() }
            } else {
                start_err(e.to_string())
            }
        })?;
        // From here on, any return or panic kills what was started.
        let mut group = Group { child };
        let port_file = data.join("DevToolsActivePort");
        let t0 = Instant::now();
        let ws = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut it = text.lines();
                if let (Some(port), Some(p)) = (it.next(), it.next())
                    && port.trim().parse::<u16>().is_ok()
                {
                    break format!("ws://127.0.0.1:{}{}", port.trim(), p.trim());
                }
            }
            if let Ok(Some(st)) = group.child.try_wait() {
                let tail = last_lines(&log, 3);
                return Err(start_err(format!("exited ({st}): {tail}")));
            }
            if t0.elapsed() > START_TIMEOUT {
                return Err(start_err(format!(
                    "no DevTools port after {} s: {}",
                    START_TIMEOUT.as_secs(),
                    last_lines(&log, 3)
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => return Err(start_err(e.to_string())),
        };
        let config = HandlerConfig {
            // A security check must see certificate errors, not click through them.
            ignore_https_errors: false,
            cache_enabled: false,
            request_timeout: CMD_TIMEOUT,
            ..HandlerConfig::default()
        };
        let connected = rt.block_on(async {
            tokio::time::timeout(START_TIMEOUT, Browser::connect_with_config(ws, config)).await
        });
        let (browser, mut handler) = match connected {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return Err(start_err(format!("DevTools connection failed: {e}"))),
            Err(_) => return Err(start_err("DevTools connection timed out".into())),
        };
        let handler = rt.spawn(async move { while handler.next().await.is_some() {} });
        let version = rt
            .block_on(async { tokio::time::timeout(CMD_TIMEOUT, browser.version()).await })
            .ok()
            .and_then(|r| r.ok())
            .map(|v| v.product)
            .unwrap_or_default();
        Ok(Chromium {
            group,
            path: path.into(),
            rt,
            browser: Some(browser),
            handler: Some(handler),
            version,
            user_agent: user_agent.map(str::to_string),
            _profile: profile,
        })
    }

    /// `HeadlessChrome/156.…`
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The process id of the browser (the leader of its process group).
    pub fn pid(&self) -> u32 {
        self.group.child.id()
    }

    /// Load `url` and record its inventory.
    pub fn load(&mut self, url: &str, timing: LoadTiming) -> Result<Inventory> {
        let browser = self
            .browser
            .as_ref()
            .ok_or_else(|| PageError::Other("browser closed".into()))?;
        let ua = self.user_agent.clone();
        let version = self.version.clone();
        let res = self.rt.block_on(async {
            let page = tokio::time::timeout(CMD_TIMEOUT, browser.new_page("about:blank"))
                .await
                .map_err(|_| PageError::Browser {
                    url: url.into(),
                    msg: "opening a tab timed out".into(),
                })?
                .map_err(|e| PageError::Browser {
                    url: url.into(),
                    msg: e.to_string(),
                })?;
            let r = load_page(&page, url, timing, ua.as_deref()).await;
            let _ = tokio::time::timeout(CMD_TIMEOUT, page.close()).await;
            r
        });
        res.map(|mut inv| {
            inv.browser = Some(version);
            inv
        })
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // Ask the browser to close: it ends and reaps its own helpers. The process group
        // is killed afterwards anyway (the `group` field, dropped after this).
        if let Some(mut b) = self.browser.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(3), b.close()).await });
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(3) {
                if matches!(self.group.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(h) = self.handler.take() {
            h.abort();
        }
    }
}

fn berr(url: &str) -> impl Fn(chromiumoxide::error::CdpError) -> PageError + '_ {
    move |e| PageError::Browser {
        url: url.to_string(),
        msg: e.to_string(),
    }
}

#[derive(Default, Debug)]
struct Req {
    url: String,
    rtype: Option<ResourceType>,
    initiator_parser: bool,
    initiator_url: Option<String>,
    status: Option<i64>,
    headers: Option<serde_json::Value>,
    finished: bool,
}

#[derive(Debug)]
struct Parsed {
    id: chromiumoxide::cdp::js_protocol::runtime::ScriptId,
    url: String,
    added_by: Option<String>,
}

/// The DOM probe: forms with their inputs, loose inputs, iframes, script elements (for
/// `integrity`), `<meta>` CSP. Runs after the Debugger is disabled, in the page's world.
const PROBE: &str = r#"(() => {
  const abs = (u) => { try { return new URL(u, document.baseURI).href; } catch (e) { return u; } };
  const inp = (e) => ({ name: e.getAttribute('name') || '', id: e.id || '',
    autocomplete: e.getAttribute('autocomplete') || '',
    formaction: e.hasAttribute('formaction') ? abs(e.getAttribute('formaction')) : null });
  const forms = Array.from(document.forms).map((f) => ({
    id: f.getAttribute('id') || '', name: f.getAttribute('name') || '',
    action: f.hasAttribute('action') ? abs(f.getAttribute('action')) : document.URL,
    method: (f.getAttribute('method') || 'get').toLowerCase(),
    inputs: Array.from(f.elements).filter((e) => e.tagName !== 'FIELDSET' && e.tagName !== 'OBJECT' && e.tagName !== 'OUTPUT').map(inp) }));
  const loose = Array.from(document.querySelectorAll('input,select,textarea')).filter((e) => !e.form).map(inp);
  const frames = Array.from(document.querySelectorAll('iframe,frame')).map((f) =>
    f.hasAttribute('src') ? abs(f.getAttribute('src')) : (f.hasAttribute('srcdoc') ? 'about:srcdoc' : ''));
  const scripts = Array.from(document.scripts).filter((s) => s.src).map((s) => ({ src: s.src, integrity: s.getAttribute('integrity') }));
  const metas = Array.from(document.querySelectorAll('meta[http-equiv]'))
    .filter((m) => (m.getAttribute('http-equiv') || '').toLowerCase() === 'content-security-policy')
    .map((m) => m.getAttribute('content') || '');
  return JSON.stringify({ forms, loose, frames, scripts, metas, url: document.URL });
})()"#;

#[derive(serde::Deserialize, Default)]
struct ProbeInput {
    name: String,
    id: String,
    autocomplete: String,
    formaction: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct ProbeForm {
    id: String,
    name: String,
    action: Option<String>,
    method: String,
    inputs: Vec<ProbeInput>,
}

#[derive(serde::Deserialize, Default)]
struct ProbeScript {
    src: String,
    integrity: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct Probe {
    forms: Vec<ProbeForm>,
    loose: Vec<ProbeInput>,
    frames: Vec<String>,
    scripts: Vec<ProbeScript>,
    metas: Vec<String>,
}

pub(crate) fn form_of(
    id: String,
    name: String,
    action: Option<String>,
    method: String,
    inputs: &[(String, String, String, Option<String>)],
    loose: bool,
) -> Form {
    let label = |n: &str, i: &str| {
        if n.is_empty() {
            i.to_string()
        } else {
            n.to_string()
        }
    };
    let mut names: Vec<String> = inputs
        .iter()
        .map(|(n, i, _, _)| label(n, i))
        .filter(|s| !s.is_empty())
        .collect();
    names.sort();
    names.dedup();
    let mut card: Vec<String> = inputs
        .iter()
        .filter(|(n, i, a, _)| is_card_input(n, i, a))
        .map(|(n, i, _, _)| label(n, i))
        .filter(|s| !s.is_empty())
        .collect();
    card.sort();
    card.dedup();
    let mut button_actions: Vec<String> = inputs.iter().filter_map(|x| x.3.clone()).collect();
    button_actions.sort();
    button_actions.dedup();
    Form {
        id: Some(id).filter(|s| !s.is_empty()),
        name: Some(name).filter(|s| !s.is_empty()),
        action,
        method,
        button_actions,
        inputs: names,
        card_inputs: card,
        loose,
    }
}

fn probe_inputs(v: &[ProbeInput]) -> Vec<(String, String, String, Option<String>)> {
    v.iter()
        .map(|i| {
            (
                i.name.clone(),
                i.id.clone(),
                i.autocomplete.clone(),
                i.formaction.clone(),
            )
        })
        .collect()
}

async fn load_page(
    page: &Page,
    url: &str,
    timing: LoadTiming,
    user_agent: Option<&str>,
) -> Result<Inventory> {
    let e = berr(url);
    let deadline = Instant::now() + timing.timeout;
    let timeout_err = || PageError::Timeout {
        url: url.to_string(),
        secs: timing.timeout.as_secs(),
    };
    let mut req_ev = page
        .event_listener::<EventRequestWillBeSent>()
        .await
        .map_err(&e)?;
    let mut resp_ev = page
        .event_listener::<EventResponseReceived>()
        .await
        .map_err(&e)?;
    let mut fin_ev = page
        .event_listener::<EventLoadingFinished>()
        .await
        .map_err(&e)?;
    let mut fail_ev = page
        .event_listener::<EventLoadingFailed>()
        .await
        .map_err(&e)?;
    let mut script_ev = page
        .event_listener::<EventScriptParsed>()
        .await
        .map_err(&e)?;
    let mut load_ev = page
        .event_listener::<EventLoadEventFired>()
        .await
        .map_err(&e)?;
    let setup = async {
        page.execute(NetworkEnable::default()).await?;
        page.execute(SetCacheDisabledParams::new(true)).await?;
        page.execute(DebuggerEnable::default()).await?;
        if let Some(ua) = user_agent {
            page.set_user_agent(ua).await?;
        }
        Ok::<_, chromiumoxide::error::CdpError>(())
    };
    tokio::time::timeout(CMD_TIMEOUT, setup)
        .await
        .map_err(|_| timeout_err())?
        .map_err(&e)?;

    let nav = tokio::time::timeout_at(
        deadline.into(),
        page.execute(NavigateParams::new(url.to_string())),
    )
    .await
    .map_err(|_| timeout_err())?
    .map_err(&e)?;
    if let Some(t) = nav.result.error_text.as_deref().filter(|t| !t.is_empty()) {
        return Err(from_net_error(url, t));
    }
    let main_frame = nav.result.frame_id.clone();
    let main_loader = nav.result.loader_id.clone();

    let mut reqs: HashMap<String, Req> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut parsed: Vec<Parsed> = Vec::new();
    let mut main_req: Option<String> = main_loader.as_ref().map(|l| l.inner().clone());
    let mut loaded = false;
    let mut last_activity = Instant::now();
    let mut settle_deadline: Option<Instant> = None;
    let tick = Duration::from_millis(50);

    loop {
        let now = Instant::now();
        if !loaded && now >= deadline {
            return Err(timeout_err());
        }
        if loaded {
            let open = reqs.values().filter(|r| !r.finished).count();
            if open == 0 && now.duration_since(last_activity) >= timing.quiet {
                break;
            }
            if settle_deadline.is_some_and(|d| now >= d) {
                break;
            }
        }
        tokio::select! {
            Some(ev) = req_ev.next() => {
                last_activity = Instant::now();
                let id = ev.request_id.inner().clone();
                if main_req.is_none()
                    && ev.r#type == Some(ResourceType::Document)
                    && ev.frame_id.as_ref() == Some(&main_frame)
                {
                    main_req = Some(id.clone());
                }
                let (parser, init_url) = initiator(&ev.initiator);
                let r = reqs.entry(id.clone()).or_insert_with(|| { order.push(id.clone()); Req::default() });
                r.url = ev.request.url.clone();
                r.rtype = ev.r#type.clone();
                r.initiator_parser = parser;
                r.initiator_url = init_url;
                r.finished = false;
            }
            Some(ev) = resp_ev.next() => {
                last_activity = Instant::now();
                let id = ev.request_id.inner().clone();
                let r = reqs.entry(id.clone()).or_insert_with(|| { order.push(id.clone()); Req::default() });
                if r.url.is_empty() { r.url = ev.response.url.clone(); }
                r.status = Some(ev.response.status);
                r.headers = Some(ev.response.headers.inner().clone());
                if r.rtype.is_none() { r.rtype = Some(ev.r#type.clone()); }
            }
            Some(ev) = fin_ev.next() => {
                last_activity = Instant::now();
                if let Some(r) = reqs.get_mut(ev.request_id.inner()) { r.finished = true; }
            }
            Some(ev) = fail_ev.next() => {
                last_activity = Instant::now();
                let id = ev.request_id.inner();
                if main_req.as_deref() == Some(id.as_str()) && !loaded {
                    return Err(from_net_error(url, &ev.error_text));
                }
                if let Some(r) = reqs.get_mut(id) { r.finished = true; }
            }
            Some(ev) = script_ev.next() => {
                last_activity = Instant::now();
                let default_world = ev
                    .execution_context_aux_data
                    .as_ref()
                    .and_then(|d| d.get("isDefault"))
                    .and_then(|v| v.as_bool())
                    .unwrap_or(true);
                if default_world {
                    let added_by = ev.stack_trace.as_ref().and_then(|s| s.call_frames.first()).map(|f| f.url.clone()).filter(|u| !u.is_empty());
                    parsed.push(Parsed { id: ev.script_id.clone(), url: ev.url.clone(), added_by });
                }
            }
            Some(ev) = load_ev.next() => {
                let _ = ev;
                last_activity = Instant::now();
                if !loaded {
                    loaded = true;
                    settle_deadline = Some(Instant::now() + timing.settle_max);
                }
            }
            _ = tokio::time::sleep(tick) => {}
        }
    }

    let mut notes = Vec::new();
    let open: Vec<&Req> = reqs.values().filter(|r| !r.finished).collect();
    if !open.is_empty() {
        notes.push(format!(
            "network not quiet after {} s: {} request(s) still open (first: {})",
            timing.settle_max.as_secs(),
            open.len(),
            open[0].url
        ));
    }

    // The main document.
    let main = main_req
        .as_ref()
        .and_then(|id| reqs.get(id))
        .ok_or_else(|| PageError::Browser {
            url: url.into(),
            msg: "no main document response seen".into(),
        })?;
    let status = main.status.unwrap_or(0);
    if status >= 400 {
        return Err(PageError::Status {
            url: url.into(),
            status: status as u16,
        });
    }
    let final_url = main.url.clone();
    let mut headers = BTreeMap::new();
    if let Some(serde_json::Value::Object(h)) = &main.headers {
        for (k, v) in h {
            let k = k.to_ascii_lowercase();
            if SECURITY_HEADERS.contains(&k.as_str())
                && let Some(v) = v.as_str()
            {
                // CDP joins repeated headers with newlines.
                let v = v.lines().map(str::trim).collect::<Vec<_>>().join(", ");
                headers.insert(k, v);
            }
        }
    }

    // Scripts: bodies as received from the network (external), sources from the
    // debugger (inline and eval'd code).
    let mut scripts: BTreeMap<String, Script> = BTreeMap::new();
    let mut script_reqs: HashMap<String, &Req> = HashMap::new();
    let mut script_req_ids: HashMap<String, String> = HashMap::new();
    for id in &order {
        let r = &reqs[id];
        if r.rtype == Some(ResourceType::Script) {
            script_reqs.entry(r.url.clone()).or_insert(r);
            script_req_ids.entry(r.url.clone()).or_insert(id.clone());
        }
    }
    let doc_url = final_url.clone();
    for p in &parsed {
        let src = match tokio::time::timeout(
            CMD_TIMEOUT,
            page.execute(GetScriptSourceParams::new(p.id.clone())),
        )
        .await
        {
            Ok(Ok(r)) => r.result.script_source.clone(),
            _ => continue,
        };
        let external = !p.url.is_empty()
            && p.url != doc_url
            && (p.url.starts_with("http://") || p.url.starts_with("https://"));
        if external {
            // Hashed from the network body below; here only make sure it is listed.
            let r = script_reqs.get(&p.url);
            let origin = match r {
                Some(r) if !r.initiator_parser => Origin::Runtime,
                _ => Origin::Html,
            };
            let added_by = r.and_then(|r| r.initiator_url.clone());
            let sha = sha256_hex(src.as_bytes());
            let e = scripts.entry(p.url.clone()).or_insert_with(|| Script {
                src: Some(p.url.clone()),
                sha256: sha,
                size: src.len() as u64,
                origin,
                added_by: if origin == Origin::Runtime {
                    added_by
                } else {
                    None
                },
                count: 0,
                ..Default::default()
            });
            e.count += 1;
        } else if p.url.is_empty() || p.url == doc_url || p.url == url {
            let origin = if p.url.is_empty() {
                Origin::Runtime
            } else {
                Origin::Html
            };
            let s = Script {
                src: None,
                sha256: sha256_hex(src.as_bytes()),
                size: src.len() as u64,
                origin,
                added_by: if origin == Origin::Runtime {
                    p.added_by.clone()
                } else {
                    None
                },
                count: 0,
                ..Default::default()
            };
            let e = scripts.entry(s.key()).or_insert(s);
            e.count += 1;
            // The same code both in the HTML and added at run time: call it HTML.
            if origin == Origin::Html {
                e.origin = Origin::Html;
                e.added_by = None;
            }
        }
    }
    // External scripts fetched but never run (blocked by SRI or CSP, or failed) are
    // recorded too: they are still on the page.
    for (u, r) in &script_reqs {
        if !scripts.contains_key(u) && (u.starts_with("http://") || u.starts_with("https://")) {
            scripts.insert(
                u.clone(),
                Script {
                    src: Some(u.clone()),
                    origin: if r.initiator_parser {
                        Origin::Html
                    } else {
                        Origin::Runtime
                    },
                    added_by: (!r.initiator_parser)
                        .then(|| r.initiator_url.clone())
                        .flatten(),
                    count: 1,
                    ..Default::default()
                },
            );
        }
    }
    // Network bodies: the hash of what was received (and what SRI is checked against).
    let mut bodies: HashMap<String, Vec<u8>> = HashMap::new();
    for (u, s) in scripts.iter_mut() {
        let Some(id) = script_req_ids.get(u) else {
            continue;
        };
        let body = tokio::time::timeout(
            CMD_TIMEOUT,
            page.execute(GetResponseBodyParams::new(id.clone())),
        )
        .await;
        if let Ok(Ok(b)) = body {
            let bytes = if b.result.base64_encoded {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(b.result.body.as_bytes())
                    .unwrap_or_default()
            } else {
                b.result.body.clone().into_bytes()
            };
            s.sha256 = sha256_hex(&bytes);
            s.size = bytes.len() as u64;
            bodies.insert(u.clone(), bytes);
        }
    }

    let _ = tokio::time::timeout(CMD_TIMEOUT, page.execute(DebuggerDisable::default())).await;

    // The DOM as it stands: forms, inputs, iframes, SRI attributes, meta CSP.
    let probe: Probe =
        match tokio::time::timeout(CMD_TIMEOUT, page.evaluate_expression(PROBE)).await {
            Ok(Ok(r)) => r
                .value()
                .and_then(|v| v.as_str())
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default(),
            Ok(Err(err)) => {
                notes.push(format!("DOM probe failed: {err}"));
                Probe::default()
            }
            Err(_) => {
                notes.push("DOM probe timed out".into());
                Probe::default()
            }
        };
    for ps in &probe.scripts {
        if let Some(s) = scripts.get_mut(&ps.src)
            && let Some(i) = ps.integrity.as_ref().filter(|i| !i.trim().is_empty())
        {
            s.sri = Some(i.clone());
        }
    }
    // Check SRI against the body as received.
    for (u, s) in scripts.iter_mut() {
        if let (Some(sri), Some(body)) = (&s.sri, bodies.get(u)) {
            s.sri_ok = Some(sri_matches(sri, body));
        }
    }
    let mut forms: Vec<Form> = probe
        .forms
        .into_iter()
        .map(|f| {
            let inputs = probe_inputs(&f.inputs);
            form_of(f.id, f.name, f.action, f.method, &inputs, false)
        })
        .collect();
    if !probe.loose.is_empty() {
        let inputs = probe_inputs(&probe.loose);
        let f = form_of(
            String::new(),
            String::new(),
            None,
            String::new(),
            &inputs,
            true,
        );
        if !f.card_inputs.is_empty() || !f.inputs.is_empty() {
            forms.push(f);
        }
    }
    let iframes = probe.frames.into_iter().map(|src| Frame { src }).collect();
    let meta_csp = (!probe.metas.is_empty()).then(|| probe.metas.join(", "));

    let hosts: BTreeSet<String> = order
        .iter()
        .filter_map(|id| host_of(&reqs[id].url))
        .collect();

    Ok(Inventory {
        url: url.to_string(),
        final_url,
        status: status as u16,
        captured_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        mode: crate::config::Mode::Browser,
        browser: None,
        scripts,
        forms,
        iframes,
        request_hosts: Some(hosts.into_iter().collect()),
        headers,
        meta_csp,
        notes,
    })
}

/// (initiated by the HTML parser, URL of the script that initiated it).
fn initiator(
    i: &chromiumoxide::cdp::browser_protocol::network::Initiator,
) -> (bool, Option<String>) {
    let parser = matches!(
        i.r#type,
        InitiatorType::Parser | InitiatorType::Other | InitiatorType::Preload
    );
    let url = i
        .stack
        .as_ref()
        .and_then(|s| {
            let mut st = Some(s);
            while let Some(s) = st {
                if let Some(f) = s.call_frames.iter().find(|f| !f.url.is_empty()) {
                    return Some(f.url.clone());
                }
                st = s.parent.as_deref();
            }
            None
        })
        .or_else(|| i.url.clone());
    (parser, url)
}
