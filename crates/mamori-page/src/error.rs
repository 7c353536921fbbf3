//! Errors of the page watch, each one line in both languages: what, where, what to do.

use mamori_core::{Lang, tr};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No browser at the configured or default path.
    #[error("chromium not found at {path}")]
    BrowserMissing { path: PathBuf },
    /// The browser is there but did not start or its DevTools connection failed.
    #[error("chromium ({path}) did not start: {msg}")]
    BrowserStart { path: PathBuf, msg: String },
    /// The DevTools protocol failed during a page load.
    #[error("{url}: browser error: {msg}")]
    Browser { url: String, msg: String },
    /// Not a URL mamori can load.
    #[error("{url}: not an http(s) URL: {msg}")]
    BadUrl { url: String, msg: String },
    /// Connection refused, name not resolved, network unreachable…
    #[error("{url}: unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    /// TLS handshake or certificate failure.
    #[error("{url}: TLS error: {detail}")]
    Tls { url: String, detail: String },
    /// The page did not finish loading in time.
    #[error("{url}: did not finish loading within {secs} s")]
    Timeout { url: String, secs: u64 },
    /// The page answered with an error status.
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    /// The CSP report endpoint could not listen.
    #[error("{addr}: cannot listen: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// Bad `[page]` settings.
    #[error("[page]: {0}")]
    Config(String),
    /// The store (approved inventories).
    #[error(transparent)]
    Core(#[from] mamori_core::Error),
    #[error("{0}")]
    Other(String),
}

impl PageError {
    /// The one error line in the user's language.
    pub fn localized(&self, lang: Lang) -> String {
        match self {
            PageError::BrowserMissing { path } => {
                let p = path.display();
                tr!(
                    lang,
                    "headless Chromium not found at {p}: install the Debian package `chromium` (apt-get install chromium), or point MAMORI_CHROMIUM / [page] browser at it, or use --no-browser (sees less)",
                    "ヘッドレス Chromium が {p} にありません。Debian パッケージ `chromium` を入れてください (apt-get install chromium)。別の場所なら MAMORI_CHROMIUM か [page] browser で指定、またはブラウザなしの --no-browser (見える範囲が狭くなります)"
                )
            }
            PageError::BrowserStart { path, msg } => {
                let p = path.display();
                tr!(
                    lang,
                    "chromium ({p}) did not start: {msg}; check that it runs (`{p} --headless --version`) and that /tmp is writable",
                    "chromium ({p}) を起動できません: {msg}。`{p} --headless --version` で動くか、/tmp に書き込めるか確認してください"
                )
            }
            PageError::Browser { url, msg } => tr!(
                lang,
                "{url}: the browser failed while loading the page: {msg}",
                "{url}: ページ読み込み中にブラウザでエラー: {msg}"
            ),
            PageError::BadUrl { url, msg } => tr!(
                lang,
                "`{url}` is not an http(s) URL ({msg}); give the full address, e.g. https://shop.example/checkout",
                "`{url}` は http(s) の URL ではありません ({msg})。https://shop.example/checkout のように完全な形で指定してください"
            ),
            PageError::Unreachable { url, detail } => tr!(
                lang,
                "{url}: unreachable ({detail}); check the address and that the shop is up",
                "{url}: 接続できません ({detail})。アドレスとショップが動いているか確認してください"
            ),
            PageError::Tls { url, detail } => tr!(
                lang,
                "{url}: TLS error ({detail}); check the certificate and that the port speaks HTTPS",
                "{url}: TLS エラー ({detail})。証明書と、そのポートが HTTPS か確認してください"
            ),
            PageError::Timeout { url, secs } => tr!(
                lang,
                "{url}: the page did not finish loading within {secs} s; check the shop, or raise [page] timeout / --timeout",
                "{url}: {secs} 秒以内にページの読み込みが終わりませんでした。ショップを確認するか、[page] timeout / --timeout を延ばしてください"
            ),
            PageError::Status { url, status } => tr!(
                lang,
                "{url}: the server answered HTTP {status}; a payment page must load (check the URL, or log-in/redirect rules)",
                "{url}: サーバーの応答が HTTP {status} です。決済ページが表示できる URL か確認してください (ログインやリダイレクトの設定も)"
            ),
            PageError::Listen { addr, source } => tr!(
                lang,
                "CSP report endpoint: cannot listen on {addr} ({source}); pick a free address in [page] csp_listen",
                "CSP レポート受信: {addr} で待ち受けできません ({source})。[page] csp_listen で空いているアドレスを指定してください"
            ),
            PageError::Config(m) => tr!(
                lang,
                "[page]: {m}; see docs/page.md",
                "[page] の設定が不正です: {m}。docs/page.md を参照してください"
            ),
            PageError::Core(e) => e.localized(lang),
            PageError::Other(m) => m.clone(),
        }
    }
}

pub type Result<T, E = PageError> = std::result::Result<T, E>;

/// Map a Chromium `net::ERR_*` text (from `Page.navigate`) to an error.
pub(crate) fn from_net_error(url: &str, text: &str) -> PageError {
    let t = text.trim();
    let url = url.to_string();
    let detail = t.to_string();
    if t.contains("ERR_SSL")
        || t.contains("ERR_CERT")
        || t.contains("ERR_BAD_SSL")
        || t.contains("ERR_TLS")
    {
        PageError::Tls { url, detail }
    } else {
        PageError::Unreachable { url, detail }
    }
}
