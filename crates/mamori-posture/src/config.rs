//! The `[posture]` section of `mamori.toml`. Every field is optional.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Settings of `mamori audit`, `attest` and sealing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostureConfig {
    /// The shop's own URL for the exposure probes, e.g. `http://127.0.0.1/` (http only;
    /// `--url` overrides it). Absent: the HTTP checks are N/A.
    pub url: Option<String>,
    /// `Host:` header to send with the probes when `url` names an address.
    pub host_header: Option<String>,
    /// SSH key fingerprint (`SHA256:…`, as `ssh-keygen -lf` prints it) → the person or
    /// company it belongs to. Keys not listed here fail `ssh.keys_owned`.
    pub ssh_keys: BTreeMap<String, String>,
    /// Shop document roots whose own config (.env, app/etc/env.php, wp-config.php) gives
    /// database access for `shop.login_email`. The binary adds the `[[root]]` paths.
    pub shop_roots: Vec<PathBuf>,
    /// Explicit shop database access, used instead of what the shop's config says.
    pub shop_db: Vec<ShopDbConfig>,
    /// age recipients (`age1…`) that `seal` and `seal.watch` encrypt to.
    pub recipients: Vec<String>,
    /// More advisories for `shop.version_advisories`, in the shipped snapshot's format
    /// (docs/posture.md), added to it.
    pub advisories_file: Option<PathBuf>,
    /// Where signed attestations are kept (default: `STATE/attestations.jsonl`).
    pub attestations_file: Option<PathBuf>,
    /// Check ids to skip (reported as N/A "skipped by config").
    pub skip: Vec<String>,
    /// Upper bound of each external command and HTTP request, in seconds.
    pub timeout_secs: u64,
    /// ClamAV definitions older than this fail `av.definitions`, in hours.
    pub av_max_age_hours: u64,
    pub seal: SealConfig,
}

impl Default for PostureConfig {
    fn default() -> Self {
        PostureConfig {
            url: None,
            host_header: None,
            ssh_keys: BTreeMap::new(),
            shop_roots: Vec::new(),
            shop_db: Vec::new(),
            recipients: Vec::new(),
            advisories_file: None,
            attestations_file: None,
            skip: Vec::new(),
            timeout_secs: 5,
            av_max_age_hours: 48,
            seal: SealConfig::default(),
        }
    }
}

/// The shop software whose admin table `shop.login_email` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShopKind {
    Eccube,
    Magento,
    Wordpress,
}

impl ShopKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ShopKind::Eccube => "eccube",
            ShopKind::Magento => "magento",
            ShopKind::Wordpress => "wordpress",
        }
    }
}

/// Read-only access to a shop database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopDbConfig {
    pub kind: ShopKind,
    #[serde(default = "default_db_host")]
    pub host: String,
    #[serde(default = "default_db_port")]
    pub port: u16,
    pub user: String,
    #[serde(default)]
    pub password: String,
    pub database: String,
    /// Table prefix (`wp_` for WordPress, empty for EC-CUBE / Magento by default).
    #[serde(default)]
    pub table_prefix: Option<String>,
}

fn default_db_host() -> String {
    "127.0.0.1".to_string()
}
fn default_db_port() -> u16 {
    3306
}

/// `[posture.seal]`: directories whose new plaintext files are sealed and removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SealConfig {
    pub watch: Vec<PathBuf>,
    /// Files modified less than this many seconds ago are left for the next sweep
    /// (they may still be being written).
    pub min_age_secs: u64,
}

impl Default for SealConfig {
    fn default() -> Self {
        SealConfig {
            watch: Vec::new(),
            min_age_secs: 10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_section_and_rejects_unknown() {
        let cfg: PostureConfig = toml::from_str(
            r#"
url = "http://127.0.0.1:8080/"
recipients = ["age1xyz"]
skip = ["http.server_status"]
[ssh_keys]
"SHA256:abc" = "Tanaka (contractor)"
[[shop_db]]
kind = "eccube"
user = "ro"
database = "eccube"
[seal]
watch = ["/var/backups/shop"]
"#,
        )
        .unwrap();
        assert_eq!(cfg.url.as_deref(), Some("http://127.0.0.1:8080/"));
        assert_eq!(cfg.ssh_keys["SHA256:abc"], "Tanaka (contractor)");
        assert_eq!(cfg.shop_db[0].port, 3306);
        assert_eq!(cfg.shop_db[0].kind, ShopKind::Eccube);
        assert_eq!(cfg.seal.min_age_secs, 10);
        assert_eq!(cfg.timeout_secs, 5);
        let bad = toml::from_str::<PostureConfig>("urls = \"x\"");
        assert!(bad.is_err());
        assert_eq!(
            toml::from_str::<PostureConfig>("").unwrap(),
            PostureConfig::default()
        );
    }
}
