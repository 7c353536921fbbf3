//! mamori's content scanner (issue 4): YARA rules run by yara-x (skimmers, webshells,
//! obfuscation, server-config tricks) and a card-number stash finder, turned into
//! `malware.*` and `data.card_stash` findings.
//!
//! Build one [`Engine`] (it compiles the rules once and is `Send + Sync`), then either
//! [`Engine::scan_paths`] for `mamori scan PATH…`, or [`Engine::worker`] /
//! [`Engine::scan_file`] for every new or changed file in `check` and `watch`. A
//! detector here never prints: it returns findings and counts.
//!
//! The rules are the repository's `rules/*.yar`, built into the binary, plus the
//! operator's directories; they are plain YARA and also run with `yara -r`.

pub mod config;
pub mod engine;
pub mod error;
pub mod magic;
pub mod rules;
pub mod stash;
pub mod walk;

pub use config::ScanOptions;
pub use engine::{Engine, Worker};
pub use error::ScanError;
pub use rules::{RuleInfo, RuleSet, Tier};
pub use stash::{StashOptions, StashReport};
pub use walk::{ScanReport, ScanStats, scan_paths};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn engine_is_shareable() {
        assert_send_sync::<Engine>();
    }
}
