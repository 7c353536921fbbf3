//! The `[scan]` section of `mamori.toml`. Every field is optional; with no config at all
//! `mamori scan` uses [`ScanOptions::default`].

use crate::ScanError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Settings of `mamori scan` (and of the content scan in `check` and `watch`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanOptions {
    /// Directories (or single files) of extra `.yar` rules, added to the built-in ones.
    /// Relative paths are resolved against the config file's directory.
    pub rules: Vec<PathBuf>,
    /// Use the built-in rule set (`rules/` of the mamori source). Default true.
    pub builtin_rules: bool,
    /// Files larger than this many bytes are not scanned (counted and named in a note).
    pub max_size: u64,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
    /// gitignore-syntax patterns of paths not to scan (relative to each scanned root).
    pub exclude: Vec<String>,
    /// Run the card-number stash finder (`data.card_stash`). Default true.
    pub card_stash: bool,
    /// Distinct card numbers needed to report a stash when none sits next to an expiry
    /// date or a card keyword.
    pub min_cards: usize,
    /// Per-file time limit of the rules, in seconds.
    pub timeout_secs: u64,
    /// Report image files whose content is text, or that carry text after the image
    /// data (heuristic, medium). Default true.
    pub magic: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            rules: Vec::new(),
            builtin_rules: true,
            max_size: 64 << 20,
            threads: 0,
            exclude: Vec::new(),
            card_stash: true,
            min_cards: 3,
            timeout_secs: 60,
            magic: true,
        }
    }
}

impl ScanOptions {
    /// Parse a `[scan]` table; errors name the key.
    pub fn from_table(t: toml::Table) -> Result<ScanOptions, ScanError> {
        let c: ScanOptions = t.try_into().map_err(|e: toml::de::Error| {
            let msg = e.message().trim().replace('\n', " ");
            let key = msg
                .split('`')
                .nth(1)
                .map(str::to_string)
                .unwrap_or_else(|| "scan".into());
            ScanError::Setting { key, msg }
        })?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<(), ScanError> {
        if self.max_size == 0 {
            return Err(ScanError::Setting {
                key: "max_size".into(),
                msg: "must be more than 0 bytes".into(),
            });
        }
        if self.timeout_secs == 0 {
            return Err(ScanError::Setting {
                key: "timeout_secs".into(),
                msg: "must be at least 1 second".into(),
            });
        }
        if self.min_cards == 0 {
            return Err(ScanError::Setting {
                key: "min_cards".into(),
                msg: "must be at least 1".into(),
            });
        }
        if !self.builtin_rules && self.rules.is_empty() {
            return Err(ScanError::Setting {
                key: "builtin_rules".into(),
                msg: "false with no `rules` directories leaves nothing to scan with".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_is_default() {
        assert_eq!(
            ScanOptions::from_table(toml::Table::new()).unwrap(),
            ScanOptions::default()
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let t: toml::Table = toml::from_str("max_sise = 10").unwrap();
        let e = ScanOptions::from_table(t).unwrap_err();
        assert!(e.to_string().contains("max_sise"), "{e}");
        let t: toml::Table = toml::from_str("max_size = 0").unwrap();
        assert!(matches!(
            ScanOptions::from_table(t),
            Err(ScanError::Setting { key, .. }) if key == "max_size"
        ));
    }
}
