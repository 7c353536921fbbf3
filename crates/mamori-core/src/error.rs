//! Errors of the core, each with a message in both languages that says what went wrong,
//! where, and what to do. The binary prints [`Error::localized`] as its one error line.

use crate::Lang;
use crate::tr;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: config file not found")]
    ConfigMissing { path: PathBuf },

    #[error("{path}:{line}:{col}: {msg}")]
    ConfigSyntax {
        path: PathBuf,
        line: usize,
        col: usize,
        key: Option<String>,
        msg: String,
    },

    #[error("{path}: `{key}`: {msg}")]
    ConfigInvalid {
        path: PathBuf,
        line: Option<usize>,
        key: String,
        msg: String,
    },

    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: store error: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error(
        "{path}: the store was written by a newer mamori (schema {found}, this one knows {known})"
    )]
    StoreTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    #[error("{path}: key file problem: {msg}")]
    Key { path: PathBuf, msg: String },

    #[error("no baseline in {state}: run `mamori init` or `mamori baseline` first")]
    NoBaseline { state: PathBuf },

    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The one error line in the user's language: what, where, and what to do.
    pub fn localized(&self, lang: Lang) -> String {
        match self {
            Error::ConfigMissing { path } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: config file not found; run `mamori init --root DIR` to create it, or pass --config FILE",
                    "{p}: 設定ファイルがありません。`mamori init --root DIR` で作成するか、--config FILE で指定してください"
                )
            }
            Error::ConfigSyntax {
                path,
                line,
                col,
                key,
                msg,
            } => {
                let p = path.display();
                let k = key
                    .as_deref()
                    .map(|k| format!(" `{k}`"))
                    .unwrap_or_default();
                tr!(
                    lang,
                    "{p}:{line}:{col}: invalid setting{k}: {msg}; fix it (see docs/mamori.example.toml)",
                    "{p}:{line}:{col}: 設定{k}が不正です: {msg}。修正してください (docs/mamori.example.toml 参照)"
                )
            }
            Error::ConfigInvalid {
                path,
                line,
                key,
                msg,
            } => {
                let p = path.display();
                let l = line.map(|l| format!(":{l}")).unwrap_or_default();
                tr!(
                    lang,
                    "{p}{l}: `{key}`: {msg}",
                    "{p}{l}: `{key}` の値が不正です: {msg}"
                )
            }
            Error::Read { path, source } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: cannot read ({source}); check that it exists and that mamori may read it",
                    "{p}: 読み込めません ({source})。存在するか、mamori に読み取り権限があるか確認してください"
                )
            }
            Error::Write { path, source } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: cannot write ({source}); check the directory and its permissions",
                    "{p}: 書き込めません ({source})。ディレクトリと権限を確認してください"
                )
            }
            Error::Store { path, source } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: store error ({source}); check disk space and permissions of the state directory",
                    "{p}: ストアのエラー ({source})。状態ディレクトリの空き容量と権限を確認してください"
                )
            }
            Error::StoreTooNew { path, found, known } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: written by a newer mamori (schema {found}, this binary knows {known}); upgrade mamori",
                    "{p}: より新しい mamori で作成されています (スキーマ {found}、この版は {known} まで)。mamori を更新してください"
                )
            }
            Error::Key { path, msg } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: key file problem: {msg}",
                    "{p}: 鍵ファイルの問題: {msg}"
                )
            }
            Error::NoBaseline { state } => {
                let s = state.display();
                tr!(
                    lang,
                    "no baseline in {s}; run `mamori init --root DIR` or `mamori baseline` first",
                    "{s} にベースラインがありません。先に `mamori init --root DIR` か `mamori baseline` を実行してください"
                )
            }
            Error::Other(m) => m.clone(),
        }
    }
}
