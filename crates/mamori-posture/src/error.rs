//! Errors of the posture layer, each naming the file or setting it is about.

use mamori_core::Lang;
use mamori_core::tr;
use std::path::PathBuf;

/// What went wrong in an audit, an attestation or sealing.
#[derive(Debug, thiserror::Error)]
pub enum PostureError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid setting `{setting}`: {reason}")]
    Setting { setting: String, reason: String },
    #[error("invalid recipient `{recipient}`: {reason}")]
    Recipient { recipient: String, reason: String },
    #[error("invalid identity in {source_name}: {reason}")]
    Identity { source_name: String, reason: String },
    #[error("no recipients given: refusing to seal")]
    NoRecipients,
    #[error("{path}: cannot seal: {reason}")]
    Seal { path: PathBuf, reason: String },
    #[error("{path}: cannot unseal: {reason}")]
    Unseal { path: PathBuf, reason: String },
    #[error("attestation for `{item}`: {reason}")]
    Attestation { item: String, reason: String },
}

impl PostureError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PostureError::Io {
            path: path.into(),
            source,
        }
    }

    /// The message in the user's language.
    pub fn localized(&self, lang: Lang) -> String {
        match self {
            PostureError::Io { path, source } => {
                let p = path.display();
                tr!(lang, "{p}: {source}", "{p}: 読み書きできません: {source}")
            }
            PostureError::Setting { setting, reason } => tr!(
                lang,
                "invalid setting `{setting}`: {reason}",
                "設定 `{setting}` が不正です: {reason}"
            ),
            PostureError::Recipient { recipient, reason } => tr!(
                lang,
                "invalid recipient `{recipient}`: {reason}",
                "受信者 `{recipient}` が不正です: {reason}"
            ),
            PostureError::Identity {
                source_name,
                reason,
            } => tr!(
                lang,
                "invalid identity in {source_name}: {reason}",
                "{source_name} の秘密鍵 (identity) が不正です: {reason}"
            ),
            PostureError::NoRecipients => tr!(
                lang,
                "no recipients given: refusing to seal (set posture.recipients or pass -r)",
                "受信者が指定されていないため暗号化しません (posture.recipients を設定するか -r を指定してください)"
            ),
            PostureError::Seal { path, reason } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: cannot seal: {reason}",
                    "{p}: 暗号化できません: {reason}"
                )
            }
            PostureError::Unseal { path, reason } => {
                let p = path.display();
                tr!(
                    lang,
                    "{p}: cannot unseal (no plaintext was written): {reason}",
                    "{p}: 復号できません (平文は書き出していません): {reason}"
                )
            }
            PostureError::Attestation { item, reason } => tr!(
                lang,
                "attestation for `{item}`: {reason}",
                "`{item}` の自己申告: {reason}"
            ),
        }
    }
}
