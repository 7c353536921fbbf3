//! Errors of the alert section. Each names the setting that is wrong
//! (`alert.sink[2].url`, 0-based like the core's `root[0].path`) and has a message in
//! both languages through [`AlertError::localized`].

use mamori_core::{Lang, tr};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The TOML itself is malformed, or a key is unknown / of the wrong type.
    #[error("{msg}")]
    Parse { msg: String },

    /// A required value is empty.
    #[error("{key}: must not be empty")]
    Empty { key: String },

    /// Not an `http://` / `https://` URL.
    #[error("{key}: not a valid URL ({detail})")]
    InvalidUrl { key: String, detail: String },

    /// Not an e-mail address / mailbox.
    #[error("{key}: `{value}` is not a valid e-mail address ({detail})")]
    InvalidAddress {
        key: String,
        value: String,
        detail: String,
    },

    /// Not `host:port`.
    #[error("{key}: `{value}` is not host:port")]
    InvalidHostPort { key: String, value: String },

    /// A header name or value that HTTP does not allow.
    #[error("{key}: `{name}` is not a valid HTTP header")]
    InvalidHeader { key: String, name: String },

    /// A number out of its range.
    #[error("{key}: must be {range}")]
    OutOfRange { key: String, range: &'static str },

    /// `username` without `password_file`, or the other way round.
    #[error("{key}: set both `username` and `password_file`, or neither")]
    CredentialsIncomplete { key: String },

    /// `starttls = false` towards a host that is not loopback.
    #[error("{key}: `starttls = false` is only allowed for a loopback host, not `{host}`")]
    InsecureSmtp { key: String, host: String },

    /// A secret file (password, header value) cannot be read.
    #[error("{key}: cannot read {path}: {source}")]
    SecretFile {
        key: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A secret file is empty.
    #[error("{key}: {path} is empty")]
    SecretFileEmpty { key: String, path: PathBuf },

    /// The JSON Lines file cannot be opened for appending.
    #[error("{key}: cannot open {path} for appending: {source}")]
    OpenFile {
        key: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The CA file cannot be read or used.
    #[error("{key}: cannot use {path}: {detail}")]
    CaFile {
        key: String,
        path: PathBuf,
        detail: String,
    },

    /// A worker thread could not be started.
    #[error("cannot start the alert worker for {key}: {source}")]
    Spawn {
        key: String,
        #[source]
        source: std::io::Error,
    },
}

impl AlertError {
    /// The setting at fault (`alert.sink[1].to`), when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            AlertError::Parse { .. } => None,
            AlertError::Empty { key }
            | AlertError::InvalidUrl { key, .. }
            | AlertError::InvalidAddress { key, .. }
            | AlertError::InvalidHostPort { key, .. }
            | AlertError::InvalidHeader { key, .. }
            | AlertError::OutOfRange { key, .. }
            | AlertError::CredentialsIncomplete { key }
            | AlertError::InsecureSmtp { key, .. }
            | AlertError::SecretFile { key, .. }
            | AlertError::SecretFileEmpty { key, .. }
            | AlertError::OpenFile { key, .. }
            | AlertError::CaFile { key, .. }
            | AlertError::Spawn { key, .. } => Some(key),
        }
    }

    /// One line in the user's language: which setting, what is wrong, what to do.
    pub fn localized(&self, lang: Lang) -> String {
        match self {
            AlertError::Parse { msg } => tr!(
                lang,
                "alert settings: {msg}; see docs/alerts.md",
                "アラート設定が不正です: {msg}。docs/alerts.md を参照してください"
            ),
            AlertError::Empty { key } => tr!(
                lang,
                "{key}: must not be empty",
                "{key}: 値を指定してください (空にはできません)"
            ),
            AlertError::InvalidUrl { key, detail } => tr!(
                lang,
                "{key}: not a valid URL ({detail}); use http://… or https://…",
                "{key}: URL として不正です ({detail})。http://… または https://… を指定してください"
            ),
            AlertError::InvalidAddress { key, value, detail } => tr!(
                lang,
                "{key}: `{value}` is not a valid e-mail address ({detail})",
                "{key}: `{value}` はメールアドレスとして不正です ({detail})"
            ),
            AlertError::InvalidHostPort { key, value } => tr!(
                lang,
                "{key}: `{value}` is not host:port (e.g. \"10.0.0.5:514\")",
                "{key}: `{value}` は host:port の形式ではありません (例: \"10.0.0.5:514\")"
            ),
            AlertError::InvalidHeader { key, name } => tr!(
                lang,
                "{key}: `{name}` is not a valid HTTP header name or value",
                "{key}: `{name}` は HTTP ヘッダーの名前または値として不正です"
            ),
            AlertError::OutOfRange { key, range } => tr!(
                lang,
                "{key}: must be {range}",
                "{key}: 値は {range} にしてください"
            ),
            AlertError::CredentialsIncomplete { key } => tr!(
                lang,
                "{key}: set both `username` and `password_file`, or neither",
                "{key}: `username` と `password_file` は両方指定するか、両方省略してください"
            ),
            AlertError::InsecureSmtp { key, host } => tr!(
                lang,
                "{key}: `starttls = false` sends mail unencrypted and is only allowed for a loopback host, not `{host}`; remove it",
                "{key}: `starttls = false` は暗号化せずに送信するため、ループバック以外のホスト (`{host}`) では使えません。削除してください"
            ),
            AlertError::SecretFile { key, path, source } => {
                let p = path.display();
                tr!(
                    lang,
                    "{key}: cannot read {p} ({source}); create it (mode 0600) or fix the path",
                    "{key}: {p} を読み込めません ({source})。ファイルを作成する (権限 0600) か、パスを修正してください"
                )
            }
            AlertError::SecretFileEmpty { key, path } => {
                let p = path.display();
                tr!(
                    lang,
                    "{key}: {p} is empty; put the secret on its first line",
                    "{key}: {p} が空です。1 行目に秘密情報を書いてください"
                )
            }
            AlertError::OpenFile { key, path, source } => {
                let p = path.display();
                tr!(
                    lang,
                    "{key}: cannot open {p} for appending ({source}); check the directory and its permissions",
                    "{key}: {p} を追記用に開けません ({source})。ディレクトリと権限を確認してください"
                )
            }
            AlertError::CaFile { key, path, detail } => {
                let p = path.display();
                tr!(
                    lang,
                    "{key}: cannot use {p} as CA certificate ({detail}); give a PEM file",
                    "{key}: {p} を CA 証明書として使えません ({detail})。PEM ファイルを指定してください"
                )
            }
            AlertError::Spawn { key, source } => tr!(
                lang,
                "cannot start the alert worker for {key} ({source})",
                "{key} のアラート送信スレッドを開始できません ({source})"
            ),
        }
    }
}
