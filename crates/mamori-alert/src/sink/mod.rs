//! The four sinks. Each turns one finding into one delivery attempt; retries, queues
//! and counters live in the dispatcher.

use mamori_core::Finding;

pub(crate) mod email;
pub(crate) mod jsonl;
pub(crate) mod syslog;
pub(crate) mod webhook;

/// Why one delivery attempt failed, in the user's language.
#[derive(Debug)]
pub(crate) struct DeliveryError {
    pub msg: String,
    /// Retrying cannot help (e.g. HTTP 400, a rejected recipient).
    pub permanent: bool,
}

impl DeliveryError {
    pub(crate) fn retry(msg: String) -> Self {
        DeliveryError {
            msg,
            permanent: false,
        }
    }
    pub(crate) fn permanent(msg: String) -> Self {
        DeliveryError {
            msg,
            permanent: true,
        }
    }
}

pub(crate) trait Sink: Send + std::fmt::Debug {
    fn deliver(&mut self, f: &Finding) -> Result<(), DeliveryError>;
}

/// Read the first line of a secret file (password, token). Trailing CR/LF are removed.
pub(crate) fn read_secret(
    path: &std::path::Path,
    key: String,
) -> Result<Secret, crate::AlertError> {
    let text = std::fs::read_to_string(path).map_err(|source| crate::AlertError::SecretFile {
        key: key.clone(),
        path: path.to_path_buf(),
        source,
    })?;
    let first = text
        .lines()
        .next()
        .unwrap_or("")
        .trim_end_matches(['\r', '\n']);
    if first.is_empty() {
        return Err(crate::AlertError::SecretFileEmpty {
            key,
            path: path.to_path_buf(),
        });
    }
    Ok(Secret(first.to_string()))
}

/// A secret that never shows in Debug output.
#[derive(Clone)]
pub(crate) struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}
