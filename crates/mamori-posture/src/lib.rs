//! mamori's posture layer: the server audit against checklist item 20-1 (20-1.1 …
//! 20-1.9) and the card-security guideline's EC-merchant measures, signed attestations
//! for what no machine can check, and sealing files with age.
//!
//! A detector here never prints: [`audit`] returns an [`AuditReport`] whose
//! [`AuditReport::findings`] the binary sends on; [`render_table`] is the human view.

pub mod attest;
pub mod audit;
pub mod checks;
pub mod config;
pub mod error;
pub mod render;
pub mod seal;
pub mod sys;

pub use attest::{Attestation, append_attestation, attest, load_attestations};
pub use audit::{
    AuditOptions, AuditReport, CheckDef, CheckResult, ItemScore, Missing, Status, audit, catalog,
};
pub use config::{PostureConfig, SealConfig, ShopDbConfig, ShopKind};
pub use error::PostureError;
pub use render::render_table;
pub use seal::{keygen, seal, seal_file, sweep_seal_dir, unseal, unseal_file};
