//! `mamori.toml`. Every error names the file, the line and the key, and says what would
//! be valid. Relative paths are resolved against the directory of the config file.

use crate::{Error, Lang, Result, Severity};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The shop software a root runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    Eccube,
    Magento,
    Woocommerce,
    #[default]
    Generic,
}

impl Flavor {
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::Eccube => "eccube",
            Flavor::Magento => "magento",
            Flavor::Woocommerce => "woocommerce",
            Flavor::Generic => "generic",
        }
    }
}

/// What `watch` does when a file of this class changes (used from issue 3 on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Response {
    Alert,
    Restore,
    Deny,
}

/// What `watch` does about changes, per path class.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseConfig {
    /// For critical paths: `alert`, `restore` (default) or `deny`.
    pub critical: Response,
    /// For everything else: only `alert` (restoring arbitrary files is not safe).
    pub other: Response,
    /// Where altered files are kept for investigation (default `STATE/quarantine`).
    pub quarantine_dir: Option<PathBuf>,
    /// A command that makes PHP drop its opcode cache after a restore, e.g.
    /// `["systemctl", "reload", "php8.2-fpm"]`.
    pub php_reload: Option<Vec<String>>,
    /// PHP-FPM's FastCGI address (`/run/php/php8.2-fpm.sock` or `127.0.0.1:9000`): after
    /// a restore, the pool is asked to drop the file's cached code (opcache_invalidate),
    /// with `php_reload` as the fallback.
    pub php_fpm: Option<String>,
    /// Where the one-off invalidation script is written (must be readable by the pool's
    /// user; default `/run/mamori-fpm`).
    pub php_fpm_script_dir: Option<PathBuf>,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        ResponseConfig {
            critical: Response::Restore,
            other: Response::Alert,
            quarantine_dir: None,
            php_reload: None,
            php_fpm: None,
            php_fpm_script_dir: None,
        }
    }
}

/// The `watch` daemon.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// A safety sweep against the baseline every this many seconds (and the interval of
    /// polling mode).
    pub sweep_interval: u64,
    /// How much to raise the daemon's scheduling priority (nice -N) when it may (root),
    /// as auditd's `priority_boost` does: on a busy shop server the restore of altered
    /// payment code must not wait behind PHP workers. 0 leaves the priority alone.
    pub priority_boost: u8,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            sweep_interval: 600,
            priority_boost: 4,
        }
    }
}

/// One watched shop root.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RootConfig {
    /// The shop's directory (its web root or application root).
    pub path: PathBuf,
    #[serde(default)]
    pub flavor: Flavor,
    /// gitignore-syntax patterns of payment code, checkout templates and JS, `.htaccess`…
    #[serde(default)]
    pub critical: Vec<String>,
    /// gitignore-syntax patterns never baselined (caches, logs, sessions).
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Directories where uploads land: code appearing there is critical.
    #[serde(default)]
    pub upload_dirs: Vec<String>,
}

/// Tuning of the baseline and `check`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Files larger than this are tracked by metadata only (size, times, inode), in bytes.
    pub max_hash_size: u64,
    /// Text files under critical paths up to this size keep a compressed copy for diffs
    /// and restore, in bytes.
    pub max_copy_size: u64,
    /// Worker threads for walking and hashing; 0 = one per core.
    pub threads: usize,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            max_hash_size: 1 << 30,
            max_copy_size: 2 << 20,
            threads: 0,
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `ja` or `en`; if absent, from `LANG`.
    #[serde(default)]
    pub lang: Option<Lang>,
    /// The host name findings carry; if absent, the system's.
    #[serde(default)]
    pub host: Option<String>,
    /// Where the store and key live. Must be outside every root and every web root.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// The key that signs the baseline and chains the event log (default: `STATE/mamori.key`).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The lowest severity that makes a command exit 1 (default `high`).
    #[serde(default)]
    pub fail_on: Option<Severity>,
    #[serde(default, rename = "root")]
    pub roots: Vec<RootConfig>,
    #[serde(default)]
    pub baseline: BaselineConfig,
    #[serde(default)]
    pub response: ResponseConfig,
    #[serde(default)]
    pub watch: WatchConfig,
    /// Alert sinks (parsed by the alert part; see docs/alerts.md).
    #[serde(default)]
    pub alert: Option<toml::Table>,
    /// The entrance layer's settings (see docs/entrance.md).
    #[serde(default)]
    pub entrance: Option<toml::Table>,
    /// The exit layer's settings (see docs/exit.md).
    #[serde(default)]
    pub exit: Option<toml::Table>,
    /// The posture audit and sealing settings (see docs/posture.md).
    #[serde(default)]
    pub posture: Option<toml::Table>,
    /// The payment page watch (see docs/page.md).
    #[serde(default)]
    pub page: Option<toml::Table>,
    /// Content scanning: `scan`, and the scan of changed files in `check`/`watch` (see
    /// docs/scan.md).
    #[serde(default)]
    pub scan: Option<toml::Table>,
}

/// A loaded config and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub path: PathBuf,
    /// The config file's directory (relative paths are resolved against it).
    pub dir: PathBuf,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|p| offset - p).unwrap_or(offset + 1);
    (line, col)
}

/// The key on a config line, `foo` in `foo = 1` or `[foo]`.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?.trim();
    if let Some(inner) = l.strip_prefix('[') {
        return Some(
            inner
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string(),
        );
    }
    let (k, _) = l.split_once('=')?;
    Some(k.trim().trim_matches('"').to_string())
}

/// The first line at which `key = ` appears, for validation errors.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            t.starts_with(key) && t[key.len()..].trim_start().starts_with('=')
        })
        .map(|i| i + 1)
}

/// Parse config text. `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<Config> {
    let cfg: Config = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        let msg = e.message().trim().replace('\n', " ");
        Error::ConfigSyntax {
            path: path.to_path_buf(),
            line,
            col,
            key: key_on_line(text, line),
            msg,
        }
    })?;
    if cfg.response.other != Response::Alert {
        return Err(Error::ConfigInvalid {
            path: path.to_path_buf(),
            line: line_of_key(text, "other"),
            key: "response.other".into(),
            msg: "only \"alert\" is allowed outside critical paths".into(),
        });
    }
    for (i, r) in cfg.roots.iter().enumerate() {
        if r.path.as_os_str().is_empty() {
            return Err(Error::ConfigInvalid {
                path: path.to_path_buf(),
                line: line_of_key(text, "path"),
                key: format!("root[{i}].path"),
                msg: "empty; give the shop's directory, e.g. path = \"/var/www/shop\"".into(),
            });
        }
    }
    if cfg.watch.priority_boost > 19 {
        return Err(Error::ConfigInvalid {
            path: path.to_path_buf(),
            line: line_of_key(text, "priority_boost"),
            key: "watch.priority_boost".into(),
            msg: "must be 0 to 19 (the nice levels a process can be raised by; 4 is auditd's default)".into(),
        });
    }
    if let Some(h) = &cfg.host
        && (h.is_empty() || h.chars().any(|c| c.is_control()))
    {
        return Err(Error::ConfigInvalid {
            path: path.to_path_buf(),
            line: line_of_key(text, "host"),
            key: "host".into(),
            msg: "must be a non-empty name without control characters".into(),
        });
    }
    Ok(cfg)
}

/// Load and validate the config file at `path`.
pub fn load(path: &Path) -> Result<Loaded> {
    let text = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::ConfigMissing {
                path: path.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(Error::Read {
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    let text = String::from_utf8(text).map_err(|e| Error::ConfigSyntax {
        path: path.to_path_buf(),
        line: line_col(
            &String::from_utf8_lossy(e.as_bytes()),
            e.utf8_error().valid_up_to(),
        )
        .0,
        col: 1,
        key: None,
        msg: "not valid UTF-8; save the file as UTF-8".into(),
    })?;
    let config = parse(&text, path)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    Ok(Loaded {
        config,
        path: path.to_path_buf(),
        dir,
    })
}

/// The default state directory for a config file at `config_path`: `/var/lib/mamori`
/// for a config in `/etc/mamori`, else `.mamori/` beside the config.
pub fn default_state_dir(config_dir: &Path) -> PathBuf {
    if config_dir == Path::new("/etc/mamori") {
        PathBuf::from("/var/lib/mamori")
    } else {
        config_dir.join(".mamori")
    }
}

impl Loaded {
    /// Resolve a path from the config against the config file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        match &self.config.state_dir {
            Some(s) => self.resolve(s),
            None => default_state_dir(&self.dir),
        }
    }

    pub fn key_file(&self) -> PathBuf {
        match &self.config.key_file {
            Some(k) => self.resolve(k),
            None => self.state_dir().join("mamori.key"),
        }
    }

    pub fn quarantine_dir(&self) -> PathBuf {
        match &self.config.response.quarantine_dir {
            Some(q) => self.resolve(q),
            None => self.state_dir().join("quarantine"),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.state_dir().join("mamori.db")
    }

    pub fn host(&self) -> String {
        self.config
            .host
            .clone()
            .unwrap_or_else(crate::finding::local_host_name)
    }

    /// Roots with absolute paths.
    pub fn roots(&self) -> Vec<RootConfig> {
        self.config
            .roots
            .iter()
            .map(|r| RootConfig {
                path: self.resolve(&r.path),
                ..r.clone()
            })
            .collect()
    }
}

fn toml_str(s: &str) -> String {
    // A TOML basic string; serde_json's escaping is a valid subset of TOML's.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn toml_list(items: &[String], indent: &str) -> String {
    if items.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[\n");
    for i in items {
        s.push_str(indent);
        s.push_str("    ");
        s.push_str(&toml_str(i));
        s.push_str(",\n");
    }
    s.push_str(indent);
    s.push(']');
    s
}

/// Render a config as commented TOML, as `mamori init` writes it.
pub fn render(cfg: &Config, lang: Lang) -> String {
    let mut s = String::new();
    s.push_str(match lang {
        Lang::En => "# mamori configuration, written by `mamori init`. All settings: docs/mamori.example.toml\n\n",
        Lang::Ja => "# mamori の設定 (`mamori init` が作成)。全項目の説明: docs/mamori.example.toml\n\n",
    });
    if let Some(l) = cfg.lang {
        s.push_str(&format!("lang = \"{l}\"\n"));
    }
    if let Some(h) = &cfg.host {
        s.push_str(&format!("host = {}\n", toml_str(h)));
    }
    if let Some(d) = &cfg.state_dir {
        s.push_str(&format!("state_dir = {}\n", toml_str(&d.to_string_lossy())));
    }
    if let Some(k) = &cfg.key_file {
        s.push_str(&format!("key_file = {}\n", toml_str(&k.to_string_lossy())));
    }
    if let Some(f) = cfg.fail_on {
        s.push_str(&format!("fail_on = \"{f}\"\n"));
    }
    for r in &cfg.roots {
        s.push_str("\n[[root]]\n");
        s.push_str(&format!("path = {}\n", toml_str(&r.path.to_string_lossy())));
        s.push_str(&format!("flavor = \"{}\"\n", r.flavor.as_str()));
        s.push_str(match lang {
            Lang::En => "# payment code, checkout templates and JS (gitignore syntax)\n",
            Lang::Ja => "# 決済コード・チェックアウトのテンプレートと JS (gitignore 形式)\n",
        });
        s.push_str(&format!("critical = {}\n", toml_list(&r.critical, "")));
        s.push_str(match lang {
            Lang::En => "# never baselined: caches, logs, sessions (gitignore syntax)\n",
            Lang::Ja => "# ベースライン対象外: キャッシュ・ログ・セッション (gitignore 形式)\n",
        });
        s.push_str(&format!("ignore = {}\n", toml_list(&r.ignore, "")));
        s.push_str(&format!(
            "upload_dirs = {}\n",
            toml_list(&r.upload_dirs, "")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_minimal() {
        let c = parse(
            "lang = \"ja\"\n[[root]]\npath = \"/srv/shop\"\nflavor = \"eccube\"\n",
            Path::new("m.toml"),
        )
        .unwrap();
        assert_eq!(c.lang, Some(Lang::Ja));
        assert_eq!(c.roots[0].flavor, Flavor::Eccube);
        assert_eq!(c.baseline, BaselineConfig::default());
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let err = parse(
            "lang = \"en\"\n[[root]]\npath = \"/srv\"\ncritcal = []\n",
            Path::new("m.toml"),
        )
        .unwrap_err();
        match &err {
            Error::ConfigSyntax { line, key, msg, .. } => {
                assert_eq!(*line, 4);
                assert_eq!(key.as_deref(), Some("critcal"));
                assert!(msg.contains("critical"), "{msg}");
            }
            e => panic!("unexpected {e:?}"),
        }
        let text = err.localized(Lang::En);
        assert!(text.starts_with("m.toml:4:"), "{text}");
    }

    #[test]
    fn bad_value_names_key() {
        let err = parse(
            "[[root]]\npath = \"/x\"\nflavor = \"shopify\"\n",
            Path::new("m.toml"),
        )
        .unwrap_err();
        let text = err.localized(Lang::En);
        assert!(text.contains(":3:"), "{text}");
        assert!(text.contains("flavor"), "{text}");
        assert!(text.contains("eccube"), "{text}");
        let ja = err.localized(Lang::Ja);
        assert!(ja.contains("不正"), "{ja}");
    }

    #[test]
    fn render_round_trips() {
        let c = Config {
            lang: Some(Lang::Ja),
            roots: vec![RootConfig {
                path: "/srv/shop \"x\"".into(),
                flavor: Flavor::Magento,
                critical: vec!["app/code/**/Payment/".into()],
                ignore: vec!["var/cache/".into()],
                upload_dirs: vec!["pub/media/".into()],
            }],
            ..Default::default()
        };
        let text = render(&c, Lang::En);
        assert_eq!(parse(&text, Path::new("x")).unwrap(), c);
    }

    #[test]
    fn state_dir_defaults() {
        assert_eq!(
            default_state_dir(Path::new("/etc/mamori")),
            PathBuf::from("/var/lib/mamori")
        );
        assert_eq!(
            default_state_dir(Path::new("/home/op")),
            PathBuf::from("/home/op/.mamori")
        );
    }
}
