//! mamori-core: what every part of mamori shares.
//!
//! * [`finding`] — the one [`Finding`] type every detector emits (the contract of
//!   `shared/spec/FINDINGS.md`), severities, layers and kinds.
//! * [`i18n`] — the two languages (`ja`, `en`) and the [`tr!`] macro that makes every
//!   message exist in both by construction.
//! * [`config`] — `mamori.toml`: loading with errors that name file, line and key.
//! * [`store`] — the embedded SQLite store: migrations, the signed baseline, the
//!   hash-chained event log.
//! * [`output`] — sinks for findings: JSON Lines and the human report, exit codes.
//! * [`pan`] — card-number (PAN) detection and masking, so no part ever prints one.
//!
//! Architecture invariant: this crate knows nothing about files, logs or networks; parts
//! depend on it, never the other way round.

pub mod config;
pub mod error;
pub mod finding;
pub mod i18n;
pub mod output;
pub mod pan;
pub mod store;

pub use error::{Error, Result};
pub use finding::{Finding, Kind, Layer, Severity};
pub use i18n::Lang;
