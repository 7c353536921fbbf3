//! `mamori page check|approve|show|csp|reports`: the payment page as customers' browsers
//! receive it (PCI DSS 6.4.3 / 11.6.1). See docs/page.md.

use crate::ctx::Ctx;
use anyhow::Result;
use clap::{Args, Subcommand};
use mamori_core::{Finding, Lang, tr};
use mamori_page::{CheckOutcome, Loader, Mode, PageConfig, Stored, inventory};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PageArgs {
    #[command(subcommand)]
    pub cmd: PageCmd,
}

#[derive(Subcommand, Debug)]
pub enum PageCmd {
    /// Load the payment pages and report what differs from their approved inventories.
    Check(CheckArgs),
    /// Record the payment pages as they are now as approved (a reason per script, 6.4.3).
    Approve(ApproveArgs),
    /// Print the approved inventories (every script with its reason).
    Show(ShowArgs),
    /// Print the Content-Security-Policy to deploy, from the approved inventories.
    Csp(CspArgs),
    /// Run the CSP violation report endpoint in the foreground (`watch` runs it too).
    Reports(ReportsArgs),
}

#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Payment page URLs (default: [page] urls in the config).
    #[arg(long = "url", value_name = "URL", num_args = 1..)]
    pub urls: Vec<String>,
    /// Plain HTTP, no browser: sees no scripts added at run time and no requests.
    #[arg(long)]
    pub no_browser: bool,
    /// Use plain HTTP when the browser is missing or does not start.
    #[arg(long)]
    pub fallback_http: bool,
    /// The Chromium binary (default: env MAMORI_CHROMIUM, [page] browser, chromium on PATH).
    #[arg(long, value_name = "PATH")]
    pub browser: Option<PathBuf>,
    /// Seconds a page may take to load (default: [page] timeout, else 30).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Args, Debug)]
pub struct ApproveArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Why the new scripts are on the page (kept per script; earlier reasons are kept).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// The reason for one script: `URL=TEXT` or `inline:sha256-…=TEXT` (repeatable).
    #[arg(long = "script-reason", value_name = "SCRIPT=TEXT")]
    pub script_reasons: Vec<String>,
    /// Replace an inventory that fails its signature check (after investigating it).
    #[arg(long)]
    pub reset: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Only these pages (default: every approved page).
    #[arg(long = "url", value_name = "URL", num_args = 1..)]
    pub urls: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CspArgs {
    /// The path on the shop where nginx forwards reports to mamori.
    #[arg(long, value_name = "PATH", default_value = "/csp-report")]
    pub report_path: String,
}

#[derive(Args, Debug)]
pub struct ReportsArgs {
    /// Listen address (default: [page] csp_listen, else 127.0.0.1:8931).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

pub fn run(ctx: &Ctx, a: &PageArgs) -> Result<u8> {
    match &a.cmd {
        PageCmd::Check(c) => check(ctx, c),
        PageCmd::Approve(c) => approve(ctx, c),
        PageCmd::Show(c) => show(ctx, c),
        PageCmd::Csp(c) => csp(ctx, c),
        PageCmd::Reports(c) => reports(ctx, c),
    }
}

/// `[page]` of the config (defaults without one).
pub fn page_config(ctx: &Ctx) -> Result<PageConfig> {
    let table = ctx.config_opt().and_then(|l| l.config.page.clone());
    PageConfig::from_table(table).map_err(|e| {
        super::UserError(format!(
            "{}: {}",
            ctx.config_path.display(),
            e.localized(ctx.lang)
        ))
        .into()
    })
}

fn user(lang: Lang, e: mamori_page::PageError) -> anyhow::Error {
    super::UserError(e.localized(lang)).into()
}

fn prepare(ctx: &Ctx, l: &LoadArgs) -> Result<(PageConfig, Vec<String>)> {
    let lang = ctx.lang;
    let mut cfg = page_config(ctx)?;
    if let Some(t) = l.timeout {
        if t == 0 || t > 600 {
            crate::bail_user!(
                lang,
                "--timeout must be 1..=600 seconds",
                "--timeout は 1〜600 秒で指定してください"
            );
        }
        cfg.timeout = t;
    }
    if let Some(b) = &l.browser {
        cfg.browser_flag = Some(b.clone());
    }
    if l.fallback_http {
        cfg.fallback_http = true;
    }
    let urls = if l.urls.is_empty() {
        cfg.urls.clone()
    } else {
        l.urls.clone()
    };
    if urls.is_empty() {
        crate::bail_user!(
            lang,
            "no payment page given: pass --url URL or set [page] urls in the config (see docs/page.md)",
            "決済ページが指定されていません。--url URL を付けるか、設定の [page] urls に書いてください (docs/page.md 参照)"
        );
    }
    for u in &urls {
        if let Err(msg) = mamori_page::parse_page_url(u) {
            return Err(user(
                lang,
                mamori_page::PageError::BadUrl {
                    url: u.clone(),
                    msg,
                },
            ));
        }
    }
    Ok((cfg, urls))
}

fn start_loader(ctx: &Ctx, cfg: &PageConfig, l: &LoadArgs) -> Result<Loader> {
    let loader = Loader::new(cfg, l.no_browser).map_err(|e| user(ctx.lang, e))?;
    if let Some(why) = &loader.fallback {
        ctx.warn(&tr!(
            ctx.lang,
            "browser unavailable ({why}); using plain HTTP, which cannot see scripts added at run time or requests",
            "ブラウザが使えません ({why})。HTTP のみで取得します (実行時に追加されるスクリプトや通信は見えません)"
        ));
    } else if loader.mode() == Mode::Http {
        ctx.note(&tr!(
            ctx.lang,
            "plain-HTTP mode: scripts added at run time, eval'd code and requests made by the page are not seen",
            "HTTP モード: 実行時に追加されるスクリプト、eval されるコード、ページの通信は見えません"
        ));
    }
    Ok(loader)
}

fn check(ctx: &Ctx, a: &CheckArgs) -> Result<u8> {
    let lang = ctx.lang;
    let (cfg, urls) = prepare(ctx, &a.load)?;
    let mut store = ctx.store()?;
    let host = ctx.host();
    let mut loader = start_loader(ctx, &cfg, &a.load)?;
    let mut findings: Vec<Finding> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for url in &urls {
        ctx.note(&tr!(lang, "checking {url}", "確認中: {url}"));
        match mamori_page::check_url(&mut loader, &store, url, lang, &host) {
            Ok(CheckOutcome::Checked {
                findings: f,
                inventory,
                approved_mode,
            }) => {
                for n in &inventory.notes {
                    ctx.note(&format!("{url}: {n}"));
                }
                if approved_mode != inventory.mode {
                    ctx.warn(&tr!(
                        lang,
                        "{url} was approved in {} mode and checked in {} mode: what only one of them sees is not compared; approve again in the mode you check with",
                        "{url} は {} モードで承認され {} モードで確認しました: 片方でしか見えないものは比較していません。確認と同じモードで承認し直してください",
                        approved_mode.as_str(),
                        inventory.mode.as_str()
                    ));
                }
                findings.extend(f);
            }
            Ok(CheckOutcome::Tampered { findings: f }) => findings.extend(f),
            Ok(CheckOutcome::NotApproved) => {
                errors.push(mamori_page::not_approved_message(url, lang))
            }
            Err(e) => errors.push(e.localized(lang)),
        }
    }
    drop(loader);
    store.append_findings(&findings)?;
    ctx.alert_once(&findings)?;
    // A run that could not check a page prints only what it found, then the error.
    let code = if errors.is_empty() || !findings.is_empty() {
        ctx.emit(&findings)?
    } else {
        0
    };
    match errors.len() {
        0 => Ok(code),
        1 => Err(super::UserError(errors.remove(0)).into()),
        n => {
            let first = errors.remove(0);
            let more = n - 1;
            Err(super::UserError(tr!(
                lang,
                "{first} (and {more} more page(s) could not be checked)",
                "{first} (ほか {more} ページを確認できませんでした)"
            ))
            .into())
        }
    }
}

fn approve(ctx: &Ctx, a: &ApproveArgs) -> Result<u8> {
    let lang = ctx.lang;
    let (cfg, urls) = prepare(ctx, &a.load)?;
    let store = ctx.store()?;
    let mut loader = start_loader(ctx, &cfg, &a.load)?;
    let mut inventories = Vec::new();
    // Load every page first: nothing is approved if one of them cannot be loaded.
    for url in &urls {
        ctx.note(&tr!(lang, "loading {url}", "読み込み中: {url}"));
        let inv = loader.load(url).map_err(|e| user(lang, e))?;
        mamori_page::check_card_fields(&cfg, &inv).map_err(|e| user(lang, e))?;
        for n in &inv.notes {
            ctx.note(&format!("{url}: {n}"));
        }
        inventories.push(inv);
    }
    drop(loader);
    let keys: Vec<&String> = inventories.iter().flat_map(|i| i.scripts.keys()).collect();
    let mut per_script = BTreeMap::new();
    for s in &a.script_reasons {
        let Some((k, v)) = split_reason(s, &keys) else {
            crate::bail_user!(
                lang,
                "--script-reason `{s}`: use SCRIPT=TEXT where SCRIPT is a script of these pages as `mamori page show` lists it (a URL or inline:sha256-…)",
                "--script-reason `{s}`: SCRIPT=理由 の形で、SCRIPT には `mamori page show` に出るこのページのスクリプト (URL か inline:sha256-…) を指定してください"
            );
        };
        per_script.insert(k.to_string(), v.trim().to_string());
    }
    for inv in inventories {
        let url = inv.url.clone();
        let (s, f, fr) = (inv.scripts.len(), inv.forms.len(), inv.iframes.len());
        let card: usize = inv.forms.iter().map(|f| f.card_inputs.len()).sum();
        let out = inventory::approve(&store, inv, a.reason.as_deref(), &per_script, a.reset)
            .map_err(|e| user(lang, e))?;
        let (new, kept) = (out.new_scripts.len(), out.kept_reasons);
        ctx.note(&tr!(
            lang,
            "{url}: approved {s} script(s) ({new} new, {kept} earlier reason(s) kept), {f} form(s) with {card} card input(s), {fr} iframe(s)",
            "{url}: スクリプト {s} 件 (新規 {new} 件、既存の理由 {kept} 件を保持)、フォーム {f} 件 (カード入力欄 {card} 件)、iframe {fr} 件を承認しました"
        ));
        if !out.without_reason.is_empty() {
            let n = out.without_reason.len();
            let list = out.without_reason.join(", ");
            ctx.warn(&tr!(
                lang,
                "{url}: {n} script(s) have no written reason (PCI DSS 6.4.3 asks for one): {list}; add --reason or --script-reason SCRIPT=TEXT",
                "{url}: 理由の書かれていないスクリプトが {n} 件あります (PCI DSS 6.4.3 では必要): {list}。--reason か --script-reason SCRIPT=理由 を付けてください"
            ));
        }
        if !out.dropped.is_empty() {
            let list = out.dropped.join(", ");
            ctx.note(&tr!(
                lang,
                "{url}: no longer on the page, removed from the inventory: {list}",
                "{url}: ページから無くなったため一覧から外しました: {list}"
            ));
        }
    }
    Ok(0)
}

/// Split `SCRIPT=TEXT` where SCRIPT is one of `keys` (URLs and hashes contain '=').
fn split_reason<'a>(s: &'a str, keys: &[&String]) -> Option<(&'a str, &'a str)> {
    s.match_indices('=')
        .map(|(i, _)| (&s[..i], &s[i + 1..]))
        .find(|(k, v)| !v.trim().is_empty() && keys.iter().any(|x| x.as_str() == *k))
}

fn show(ctx: &Ctx, a: &ShowArgs) -> Result<u8> {
    let lang = ctx.lang;
    let store = ctx.store()?;
    let all = inventory::load_all(&store).map_err(|e| user(lang, e))?;
    let mut shown = 0;
    let mut out = String::new();
    for (url, st) in all {
        if !a.urls.is_empty() && !a.urls.contains(&url) {
            continue;
        }
        shown += 1;
        match st {
            Stored::Valid(ap) => {
                if ctx.json {
                    out.push_str(&serde_json::to_string(&ap)?);
                    out.push('\n');
                    continue;
                }
                render(&mut out, &ap, lang);
            }
            Stored::Tampered | Stored::Missing => {
                let msg = tr!(
                    lang,
                    "{url}: the approved inventory fails its signature check (edited outside mamori)",
                    "{url}: 承認済み一覧の署名が一致しません (mamori 以外で編集されています)"
                );
                if ctx.json {
                    out.push_str(&serde_json::json!({"url": url, "tampered": true}).to_string());
                    out.push('\n');
                } else {
                    out.push_str(&format!("{msg}\n\n"));
                }
            }
        }
    }
    if shown == 0 {
        crate::bail_user!(
            lang,
            "no approved payment page; run `mamori page approve --url URL --reason TEXT` first",
            "承認済みの決済ページがありません。先に `mamori page approve --url URL --reason 理由` を実行してください"
        );
    }
    print!("{out}");
    Ok(0)
}

fn render(out: &mut String, ap: &mamori_page::Approved, lang: Lang) {
    let inv = &ap.inventory;
    let none = tr!(lang, "(no reason given)", "(理由なし)");
    out.push_str(&format!(
        "{}\n  {} {} ({}), {} {}\n",
        ap.url,
        tr!(lang, "approved", "承認"),
        ap.approved_at,
        inv.mode.as_str(),
        tr!(lang, "final URL", "最終 URL"),
        inv.final_url
    ));
    out.push_str(&format!("  {}:\n", tr!(lang, "scripts", "スクリプト")));
    for (k, s) in &inv.scripts {
        let reason = ap
            .reasons
            .get(k)
            .map(|r| r.text.clone())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| none.clone());
        let origin = match s.origin {
            mamori_page::Origin::Html => "html",
            mamori_page::Origin::Runtime => "runtime",
        };
        let sri = match (&s.sri, s.sri_ok) {
            (Some(_), Some(true)) => " SRI ok",
            (Some(_), Some(false)) => " SRI MISMATCH",
            (Some(_), None) => " SRI",
            _ => "",
        };
        out.push_str(&format!(
            "    {k}\n      {origin}, sha256 {}, {} B{sri} — {reason}\n",
            s.sha256, s.size
        ));
    }
    for (i, f) in inv.forms.iter().enumerate() {
        out.push_str(&format!(
            "  {} {} → {} [{}] {}: {}\n",
            tr!(lang, "form", "フォーム"),
            f.ident(i),
            f.action.as_deref().unwrap_or("-"),
            f.method,
            tr!(lang, "card inputs", "カード入力欄"),
            if f.card_inputs.is_empty() {
                "-".to_string()
            } else {
                f.card_inputs.join(", ")
            }
        ));
    }
    for fr in &inv.iframes {
        out.push_str(&format!("  iframe {}\n", fr.src));
    }
    if let Some(h) = &inv.request_hosts {
        out.push_str(&format!(
            "  {}: {}\n",
            tr!(lang, "hosts contacted", "通信先ホスト"),
            h.join(", ")
        ));
    }
    for (k, v) in &inv.headers {
        out.push_str(&format!("  {k}: {v}\n"));
    }
    out.push('\n');
}

fn csp(ctx: &Ctx, a: &CspArgs) -> Result<u8> {
    let lang = ctx.lang;
    let cfg = page_config(ctx)?;
    let store = ctx.store()?;
    let all = inventory::load_all(&store).map_err(|e| user(lang, e))?;
    let approved: Vec<mamori_page::Approved> = all
        .into_iter()
        .filter_map(|(_, s)| match s {
            Stored::Valid(a) => Some(*a),
            _ => None,
        })
        .collect();
    if approved.is_empty() {
        crate::bail_user!(
            lang,
            "no approved payment page to build a policy from; run `mamori page approve --url URL` first",
            "ポリシーの元になる承認済み決済ページがありません。先に `mamori page approve --url URL` を実行してください"
        );
    }
    let refs: Vec<&mamori_page::Approved> = approved.iter().collect();
    let adv = mamori_page::csp_advice(&refs, &a.report_path, &cfg.csp_listen);
    println!("Content-Security-Policy-Report-Only: {}", adv.policy);
    println!();
    print!("{}", adv.nginx);
    for n in &adv.notes {
        ctx.note(n);
    }
    Ok(0)
}

fn reports(ctx: &Ctx, a: &ReportsArgs) -> Result<u8> {
    let lang = ctx.lang;
    let mut cfg = page_config(ctx)?;
    if let Some(l) = &a.listen {
        cfg.csp_listen = l.clone();
    }
    let ecfg = mamori_page::CspEndpointConfig::from_page(&cfg).map_err(|e| user(lang, e))?;
    let host = ctx.host();
    let (tx, rx) = crossbeam_channel::bounded::<Finding>(1024);
    let ep = mamori_page::start_csp_endpoint(ecfg, &host, lang, move |f| {
        let _ = tx.try_send(f);
    })
    .map_err(|e| user(lang, e))?;
    let addr = ep.local_addr();
    ctx.note(&tr!(
        lang,
        "CSP report endpoint listening on http://{addr}/ (Ctrl-C to stop)",
        "CSP レポート受信を http://{addr}/ で待ち受けています (Ctrl-C で終了)"
    ));
    let term = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, term.clone());
    }
    let mut store = ctx.config_opt().and_then(|_| ctx.store().ok());
    let mut worst = 0u8;
    while !term.load(std::sync::atomic::Ordering::SeqCst) {
        if let Ok(f) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            if let Some(s) = store.as_mut() {
                s.append_findings(std::slice::from_ref(&f))?;
            }
            ctx.alert_once(std::slice::from_ref(&f))?;
            worst = worst.max(ctx.emit(std::slice::from_ref(&f))?);
        }
    }
    ep.stop();
    Ok(worst)
}

/// For `watch`: the scheduled page check (when `[page] urls` are set) and the CSP report
/// endpoint (when there is a `[page]` section). Their findings and errors arrive on `tx`;
/// both stop when the returned guards are dropped. A port already in use is a warning,
/// not a reason to stop watching files.
pub fn start_for_watch(
    ctx: &Ctx,
    loaded: &mamori_core::config::Loaded,
    tx: crossbeam_channel::Sender<mamori_page::PageEvent>,
) -> Result<(
    Option<mamori_page::ScheduledCheck>,
    Option<mamori_page::CspEndpoint>,
)> {
    let lang = ctx.lang;
    if loaded.config.page.is_none() {
        return Ok((None, None));
    }
    let cfg = page_config(ctx)?;
    let host = loaded.host();
    let sched = mamori_page::start_scheduled_checks(
        cfg.clone(),
        mamori_page::StorePaths {
            db: loaded.db_path(),
            key: loaded.key_file(),
        },
        &host,
        lang,
        // The first round soon after start, so the operator knows at once where the
        // pages stand; then every `interval`.
        std::time::Duration::from_secs(5),
        {
            let tx = tx.clone();
            move |ev| {
                let _ = tx.try_send(ev);
            }
        },
    );
    if sched.is_some() {
        let (n, every) = (cfg.urls.len(), cfg.interval);
        ctx.note(&tr!(
            lang,
            "payment pages: {n} checked every {every} s in headless Chromium",
            "決済ページ: {n} ページを {every} 秒ごとにヘッドレス Chromium で確認します"
        ));
    }
    let ecfg = mamori_page::CspEndpointConfig::from_page(&cfg).map_err(|e| user(lang, e))?;
    let ep = match mamori_page::start_csp_endpoint(ecfg, &host, lang, move |f| {
        let _ = tx.try_send(mamori_page::PageEvent::Finding(Box::new(f)));
    }) {
        Ok(ep) => {
            let addr = ep.local_addr();
            ctx.note(&tr!(
                lang,
                "CSP reports: listening on http://{addr}/",
                "CSP レポート: http://{addr}/ で受信します"
            ));
            Some(ep)
        }
        Err(e) => {
            ctx.warn(&e.localized(lang));
            None
        }
    };
    Ok((sched, ep))
}
