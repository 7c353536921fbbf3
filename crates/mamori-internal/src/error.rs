//! Errors (the run cannot continue) and warnings (one file could not be handled).

use mamori_core::{Lang, tr};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error("{path}: shop root does not exist or is not a directory")]
    RootMissing { path: PathBuf },
    #[error("{config}: `{key}`: invalid pattern `{pattern}`: {msg}")]
    BadPattern {
        config: PathBuf,
        key: String,
        pattern: String,
        msg: String,
    },
    #[error(transparent)]
    Core(#[from] mamori_core::Error),
}

impl InternalError {
    pub fn localized(&self, lang: Lang) -> String {
        match self {
            InternalError::RootMissing { path } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: shop root does not exist or is not a directory; check `path` of the [[root]] in the config or --root",
                    "{p}: ショップのルートが存在しないか、ディレクトリではありません。設定の [[root]] の `path` か --root を確認してください"
                )
            }
            InternalError::BadPattern {
                config,
                key,
                pattern,
                msg,
            } => {
                let c = config.display();
                tr!(
                    lang,
                    "{c}: `{key}`: invalid pattern `{pattern}` ({msg}); use gitignore syntax, e.g. \"var/cache/\" or \"**/*.php\"",
                    "{c}: `{key}`: パターン `{pattern}` が不正です ({msg})。gitignore 形式で書いてください (例 \"var/cache/\"、\"**/*.php\")"
                )
            }
            InternalError::Core(e) => e.localized(lang),
        }
    }
}

/// What went wrong with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarnKind {
    /// Could not be read (permissions, I/O error): metadata only.
    Unreadable(String),
    /// Larger than `max_hash_size`: metadata only.
    TooLarge(u64),
    /// Disappeared between listing and reading.
    Vanished,
    /// A directory could not be listed.
    WalkError(String),
}

/// A per-file problem: reported on stderr, never fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub path: String,
    pub kind: WarnKind,
}

impl Warning {
    pub fn localized(&self, lang: Lang) -> String {
        let p = &self.path;
        match &self.kind {
            WarnKind::Unreadable(e) => tr!(
                lang,
                "{p}: cannot read ({e}); tracked by metadata only",
                "{p}: 読み込めません ({e})。メタデータのみで監視します"
            ),
            WarnKind::TooLarge(n) => tr!(
                lang,
                "{p}: {n} bytes is above baseline.max_hash_size; tracked by size, times and inode only",
                "{p}: {n} バイトは baseline.max_hash_size を超えます。サイズ・時刻・inode のみで監視します"
            ),
            WarnKind::Vanished => tr!(
                lang,
                "{p}: disappeared while being scanned",
                "{p}: 走査中に消えました"
            ),
            WarnKind::WalkError(e) => tr!(
                lang,
                "{p}: cannot list directory ({e}); its contents are not checked",
                "{p}: ディレクトリを一覧できません ({e})。中身は検査されません"
            ),
        }
    }
}
