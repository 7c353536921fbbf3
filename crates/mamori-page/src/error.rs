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
    /// TLS handshake failure (not a certificate problem: see [`PageError::Certificate`]).
    #[error("{url}: TLS error: {detail}")]
    Tls { url: String, detail: String },
    /// The server's certificate was refused (untrusted issuer, expired, another host…).
    #[error("{url}: TLS certificate refused: {} ({code})", problem.describe(Lang::En))]
    Certificate {
        url: String,
        /// What the browser or TLS library said (`net::ERR_CERT_DATE_INVALID`, …).
        code: String,
        problem: CertProblem,
    },
    /// The page did not finish loading in time.
    #[error("{url}: did not finish loading within {secs} s")]
    Timeout { url: String, secs: u64 },
    /// The page answered with an error status.
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    /// Card inputs on a page of a shop configured with `card_fields = "none"`.
    #[error("{url}: card inputs on the page ({}) but [page] card_fields = \"none\"", inputs.join(", "))]
    CardFieldsNone { url: String, inputs: Vec<String> },
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
            PageError::Certificate { url, code, problem } => {
                let what = problem.describe(lang);
                tr!(
                    lang,
                    "{url}: the server's TLS certificate is refused: {what} ({code}); mamori never clicks through certificate errors: fix the certificate (valid for this host name, from a trusted CA such as Let's Encrypt), or add the private CA that issued it to the trust store of the user running mamori (Chromium: certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n shop-ca -i ca.pem)",
                    "{url}: サーバーの TLS 証明書が受け入れられません: {what} ({code})。mamori は証明書エラーを無視しません。証明書を直す (このホスト名に有効で、Let's Encrypt などの信頼された認証局が発行したもの) か、発行元のプライベート CA を mamori を動かすユーザーの信頼ストアに追加してください (Chromium: certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n shop-ca -i ca.pem)"
                )
            }
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
            PageError::CardFieldsNone { url, inputs } => {
                let list = inputs.join(", ");
                tr!(
                    lang,
                    "{url}: card inputs on the shop's own page ({list}), but [page] card_fields = \"none\" says the card provider's page takes card numbers: not approved; find out where they come from (a fake card form is the usual skimmer), or set card_fields = \"hosted\" if the shop really takes card numbers itself",
                    "{url}: ショップ自身のページにカード入力欄があります ({list})。[page] card_fields = \"none\" (カード番号は決済代行会社のページで入力) の設定なので承認しません。どこから来たか調べてください (偽のカード入力フォームはスキミングの典型です)。ショップ自身でカード番号を受け取るなら card_fields = \"hosted\" にしてください"
                )
            }
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

/// Why a certificate was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertProblem {
    /// Not issued by a CA the browser trusts (self-signed, private CA).
    Untrusted,
    /// Expired or not yet valid.
    Expired,
    /// Issued for another host name.
    WrongHost,
    /// Revoked by its CA.
    Revoked,
    /// A weak key or signature algorithm.
    Weak,
    /// Another certificate error (the code says which).
    Other,
}

impl CertProblem {
    /// Classify a Chromium `net::ERR_CERT_*` code or a rustls certificate error text;
    /// `None` when the text is not about a certificate.
    pub fn from_text(text: &str) -> Option<CertProblem> {
        let t = text.to_ascii_lowercase();
        let p = if t.contains("err_cert_authority_invalid")
            || t.contains("unknownissuer")
            || t.contains("unknown issuer")
            // rustls, for a self-signed certificate that says it is a CA.
            || t.contains("causedasendentity")
            || t.contains("self-signed")
            || t.contains("self signed")
        {
            CertProblem::Untrusted
        } else if t.contains("err_cert_date_invalid")
            || t.contains("expired")
            || t.contains("notvalidyet")
        {
            CertProblem::Expired
        } else if t.contains("err_cert_common_name_invalid")
            || t.contains("notvalidforname")
            || t.contains("not valid for name")
        {
            CertProblem::WrongHost
        } else if t.contains("err_cert_revoked") || t.contains("revoked") {
            CertProblem::Revoked
        } else if t.contains("err_cert_weak") {
            CertProblem::Weak
        } else if t.contains("err_cert_") || t.contains("invalid peer certificate") {
            CertProblem::Other
        } else {
            return None;
        };
        Some(p)
    }

    /// The problem in words.
    pub fn describe(self, lang: Lang) -> String {
        match self {
            CertProblem::Untrusted => tr!(
                lang,
                "not issued by a trusted certificate authority (self-signed or a private CA)",
                "信頼された認証局の発行ではありません (自己署名またはプライベート CA)"
            ),
            CertProblem::Expired => tr!(
                lang,
                "expired or not yet valid",
                "有効期限切れ、またはまだ有効期間前です"
            ),
            CertProblem::WrongHost => tr!(
                lang,
                "issued for another host name",
                "別のホスト名向けに発行されています"
            ),
            CertProblem::Revoked => {
                tr!(lang, "revoked by its issuer", "発行元により失効しています")
            }
            CertProblem::Weak => tr!(
                lang,
                "uses a weak key or signature algorithm",
                "弱い鍵または署名アルゴリズムを使っています"
            ),
            CertProblem::Other => tr!(lang, "invalid", "不正です"),
        }
    }
}

/// A TLS failure text (Chromium or rustls): a certificate problem when it is one, else a
/// handshake error.
pub(crate) fn tls_error(url: &str, detail: String) -> PageError {
    match CertProblem::from_text(&detail) {
        Some(problem) => PageError::Certificate {
            url: url.to_string(),
            code: detail,
            problem,
        },
        None => PageError::Tls {
            url: url.to_string(),
            detail,
        },
    }
}

/// Map a Chromium `net::ERR_*` text (from `Page.navigate`) to an error.
pub(crate) fn from_net_error(url: &str, text: &str) -> PageError {
    let t = text.trim();
    let detail = t.to_string();
    if t.contains("ERR_CERT_") {
        return tls_error(url, detail);
    }
    let url = url.to_string();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_are_named() {
        let cases = [
            ("net::ERR_CERT_AUTHORITY_INVALID", CertProblem::Untrusted),
            ("net::ERR_CERT_DATE_INVALID", CertProblem::Expired),
            ("net::ERR_CERT_COMMON_NAME_INVALID", CertProblem::WrongHost),
            ("net::ERR_CERT_REVOKED", CertProblem::Revoked),
            ("net::ERR_CERT_WEAK_KEY", CertProblem::Weak),
            ("net::ERR_CERT_INVALID", CertProblem::Other),
        ];
        for (code, want) in cases {
            match from_net_error("https://s/", code) {
                PageError::Certificate { problem, .. } => assert_eq!(problem, want, "{code}"),
                e => panic!("{code}: {e:?}"),
            }
        }
        // rustls (plain-HTTP mode) wording.
        for (text, want) in [
            (
                "invalid peer certificate: UnknownIssuer",
                CertProblem::Untrusted,
            ),
            ("invalid peer certificate: Expired", CertProblem::Expired),
            (
                "invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))",
                CertProblem::Untrusted,
            ),
            (
                "invalid peer certificate: NotValidForName",
                CertProblem::WrongHost,
            ),
        ] {
            match tls_error("https://s/", text.into()) {
                PageError::Certificate { problem, .. } => assert_eq!(problem, want, "{text}"),
                e => panic!("{text}: {e:?}"),
            }
        }
        // A handshake failure is not a certificate problem.
        assert!(matches!(
            from_net_error("https://s/", "net::ERR_SSL_PROTOCOL_ERROR"),
            PageError::Tls { .. }
        ));
        let e = from_net_error("https://s/", "net::ERR_CERT_DATE_INVALID");
        let en = e.localized(Lang::En);
        assert!(
            en.contains("expired") && en.contains("fix the certificate"),
            "{en}"
        );
        assert!(e.localized(Lang::Ja).contains("有効期限切れ"));
    }
}
