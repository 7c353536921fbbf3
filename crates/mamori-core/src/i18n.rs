//! Languages. Every text a user reads is written in Japanese and English at the place it
//! is produced, with [`tr!`], so a message cannot exist in one language only.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A language mamori speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Ja,
}

impl Lang {
    /// Parse `ja`, `en`, or a POSIX locale such as `ja_JP.UTF-8` / `en_US`.
    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        let head = s.split(['_', '.', '-', '@']).next().unwrap_or("");
        match head {
            "ja" | "jp" | "japanese" => Some(Lang::Ja),
            "en" | "english" | "c" | "posix" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language from the environment: `LC_ALL`, then `LC_MESSAGES`, then `LANG`.
    pub fn from_env() -> Option<Lang> {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|v| !v.is_empty())
            .and_then(|v| Lang::parse(&v))
    }

    /// Resolve with the documented precedence: `--lang`, then config `lang`, then the
    /// environment, then English.
    pub fn resolve(flag: Option<Lang>, config: Option<Lang>) -> Lang {
        flag.or(config).or_else(Lang::from_env).unwrap_or_default()
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lang::parse(s).ok_or_else(|| format!("unknown language `{s}`: use `ja` or `en`"))
    }
}

/// A message in both languages: `tr!(lang, "english {x}", "日本語 {x}")`.
/// Both format strings see the same arguments (inline captures or `name = value`).
#[macro_export]
macro_rules! tr {
    ($lang:expr, $en:literal, $ja:literal $(, $($args:tt)*)?) => {
        match $lang {
            $crate::i18n::Lang::En => format!($en $(, $($args)*)?),
            $crate::i18n::Lang::Ja => format!($ja $(, $($args)*)?),
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locales() {
        assert_eq!(Lang::parse("ja_JP.UTF-8"), Some(Lang::Ja));
        assert_eq!(Lang::parse("en_US.utf8"), Some(Lang::En));
        assert_eq!(Lang::parse("C.UTF-8"), Some(Lang::En));
        assert_eq!(Lang::parse("fr_FR"), None);
    }

    #[test]
    fn flag_beats_config() {
        assert_eq!(Lang::resolve(Some(Lang::Ja), Some(Lang::En)), Lang::Ja);
        assert_eq!(Lang::resolve(None, Some(Lang::Ja)), Lang::Ja);
    }

    #[test]
    fn tr_picks_language() {
        let n = 3;
        assert_eq!(tr!(Lang::En, "{n} files", "{n} 件のファイル"), "3 files");
        assert_eq!(
            tr!(Lang::Ja, "{n} files", "{n} 件のファイル"),
            "3 件のファイル"
        );
    }
}
