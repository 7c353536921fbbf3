//! Errors of the exit layer. Each names the file and, where it applies, the line.

use std::path::PathBuf;

/// Why egress analysis could not run.
#[derive(Debug, thiserror::Error)]
pub enum ExitError {
    /// A file could not be opened or read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file's structure is wrong (bad header, missing required field, ...).
    #[error("{}:{line}: {msg}", path.display())]
    Format {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    /// The configuration is invalid.
    #[error("egress config: {0}")]
    Config(String),
    /// Saved detector state could not be (de)serialised.
    #[error("egress state: {0}")]
    State(String),
    /// The live sampler could not read /proc.
    #[error("live sampler: {0}")]
    Live(String),
    /// The conntrack event source cannot be used or failed.
    #[error("conntrack: {0}")]
    Conntrack(String),
    /// Running `nft` failed.
    #[error("nft: {0}")]
    Nft(String),
}

impl ExitError {
    pub(crate) fn format(path: &std::path::Path, line: usize, msg: impl Into<String>) -> Self {
        ExitError::Format {
            path: path.to_path_buf(),
            line,
            msg: msg.into(),
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        ExitError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
