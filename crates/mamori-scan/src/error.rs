//! Errors of the content scanner, each naming the file (and for rules the line) it is
//! about, in both languages.

use mamori_core::{Lang, tr};
use std::path::PathBuf;

/// What can stop a scan, or the scan of one file.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A rule file does not compile. `line`/`col` are 1-based, in `path`.
    #[error("{path}:{line}:{col}: {msg}")]
    RuleSyntax {
        path: PathBuf,
        line: usize,
        col: usize,
        msg: String,
    },
    /// A rule compiles but its metadata is not usable (unknown kind, tier or severity).
    #[error("{path}:{line}: rule `{rule}`: {msg}")]
    RuleMeta {
        path: PathBuf,
        line: usize,
        rule: String,
        msg: String,
    },
    /// A rules directory (or file) given with --rules or the config cannot be read.
    #[error("{path}: cannot read rules: {source}")]
    RulesDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A rules directory holds no `.yar`/`.yara` file.
    #[error("{path}: no .yar or .yara rule files")]
    NoRules { path: PathBuf },
    /// A path given to scan does not exist.
    #[error("{path}: no such file or directory")]
    NoSuchPath { path: PathBuf },
    /// A file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is larger than `max_size` and was not scanned.
    #[error("{path}: {size} bytes, over the scan limit of {limit} bytes: not scanned")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    /// Not a regular file (FIFO, socket, device, symbolic link): not opened.
    #[error("{path}: not a regular file: not scanned")]
    NotRegular { path: PathBuf },
    /// The rules ran longer than the per-file time limit.
    #[error("{path}: scan timed out after {secs} s")]
    Timeout { path: PathBuf, secs: u64 },
    /// An invalid `[scan]` setting.
    #[error("[scan] `{key}`: {msg}")]
    Setting { key: String, msg: String },
    /// yara-x failed in some other way while scanning.
    #[error("{path}: scan failed: {msg}")]
    Engine { path: PathBuf, msg: String },
}

impl ScanError {
    /// The one error line in the user's language: what, where, and what to do.
    pub fn localized(&self, lang: Lang) -> String {
        match self {
            ScanError::RuleSyntax {
                path,
                line,
                col,
                msg,
            } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}:{line}:{col}: rule error: {msg}; fix the rule (YARA syntax, see docs/scan.md)",
                    "{p}:{line}:{col}: ルールの誤り: {msg}。ルールを修正してください (YARA 構文、docs/scan.md 参照)"
                )
            }
            ScanError::RuleMeta {
                path,
                line,
                rule,
                msg,
            } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}:{line}: rule `{rule}`: {msg}; see docs/scan.md for kind, tier and severity",
                    "{p}:{line}: ルール `{rule}`: {msg}。kind、tier、severity は docs/scan.md を参照してください"
                )
            }
            ScanError::RulesDir { path, source } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: cannot read rules ({source}); check --rules or [scan] rules",
                    "{p}: ルールを読み込めません ({source})。--rules または [scan] rules を確認してください"
                )
            }
            ScanError::NoRules { path } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: no .yar or .yara rule files in it",
                    "{p}: .yar / .yara のルールファイルがありません"
                )
            }
            ScanError::NoSuchPath { path } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: no such file or directory",
                    "{p}: ファイルまたはディレクトリがありません"
                )
            }
            ScanError::Read { path, source } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: cannot read ({source})",
                    "{p}: 読み込めません ({source})"
                )
            }
            ScanError::TooLarge { path, size, limit } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: {size} bytes, over the scan limit of {limit} bytes: not scanned (raise [scan] max_size)",
                    "{p}: {size} バイトで上限 {limit} バイトを超えるため検査していません ([scan] max_size で変更できます)"
                )
            }
            ScanError::NotRegular { path } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: not a regular file: not scanned",
                    "{p}: 通常のファイルではないため検査していません"
                )
            }
            ScanError::Timeout { path, secs } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: the rules ran longer than {secs} s: scan incomplete",
                    "{p}: ルールの実行が {secs} 秒を超えたため検査を打ち切りました"
                )
            }
            ScanError::Setting { key, msg } => tr!(
                lang,
                "[scan] `{key}`: {msg}; see docs/scan.md",
                "[scan] `{key}` の値が不正です: {msg}。docs/scan.md を参照してください"
            ),
            ScanError::Engine { path, msg } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: scan failed: {msg}",
                    "{p}: 検査に失敗しました: {msg}"
                )
            }
        }
    }
}
