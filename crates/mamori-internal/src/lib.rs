//! mamori-internal: the inside of the server.
//!
//! * [`flavor`] — recognise the shop software and its critical paths and ignore presets.
//! * [`rules`] — a root's compiled path classes (critical, ignored, upload dirs).
//! * [`walk`] — the parallel, never-following, never-blocking file walk.
//! * [`hash`] — BLAKE3 (and SHA-256 for critical files) of one file, safely opened.
//! * [`baseline`] — build the signed baseline of every root.
//! * [`check`] — compare the tree with the baseline and produce `file.*` findings.
//! * [`diff`] — unified diffs against the stored known-good copies.
//!
//! Data flow: roots → walk → (hash) → observations → compare with baseline → findings.
//! Invariants: nothing here writes to the shop's files; a single unreadable, vanished or
//! odd file (FIFO, socket, huge, non-UTF-8 name) is a warning, never an abort.

pub mod baseline;
pub mod check;
pub mod diff;
pub mod error;
pub mod flavor;
pub mod hash;
pub mod placement;
pub mod rules;
pub mod walk;
pub mod watch;

pub use error::{InternalError, Warning};
