//! A root's path classes, compiled once: ignored, critical, upload dir. Matching costs a
//! glob-set lookup per path; ignored directories are pruned from the walk entirely.

use crate::InternalError;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use mamori_core::config::RootConfig;
use std::path::{Path, PathBuf};

/// File extensions that are code a web server may execute or a browser may run.
const CODE_EXT: &[&str] = &[
    "php", "phtml", "php3", "php4", "php5", "php7", "php8", "phar", "pht", "phps", "inc", "js",
    "mjs", "twig", "tpl", "html", "htm", "shtml", "cgi", "pl", "py", "sh", "asp", "aspx", "jsp",
    "svg",
];

#[derive(Debug, Clone)]
pub struct RootRules {
    /// Absolute (canonical) root path.
    pub root: PathBuf,
    ignore: Gitignore,
    critical: Gitignore,
    upload: Gitignore,
}

fn build(
    root: &Path,
    patterns: &[String],
    key: &str,
    config: &Path,
    dir_only: bool,
) -> Result<Gitignore, InternalError> {
    let mut b = GitignoreBuilder::new(root);
    for p in patterns {
        let line = if dir_only && !p.ends_with('/') {
            format!("{p}/")
        } else {
            p.clone()
        };
        b.add_line(None, &line)
            .map_err(|e| InternalError::BadPattern {
                config: config.to_path_buf(),
                key: key.to_string(),
                pattern: p.clone(),
                msg: e.to_string(),
            })?;
    }
    b.build().map_err(|e| InternalError::BadPattern {
        config: config.to_path_buf(),
        key: key.to_string(),
        pattern: patterns.join(", "),
        msg: e.to_string(),
    })
}

impl RootRules {
    /// Compile a root's patterns; `config` names the file in errors. The root must exist.
    pub fn new(rc: &RootConfig, config: &Path) -> Result<RootRules, InternalError> {
        let root = std::fs::canonicalize(&rc.path)
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| InternalError::RootMissing {
                path: rc.path.clone(),
            })?;
        Ok(RootRules {
            ignore: build(&root, &rc.ignore, "ignore", config, false)?,
            critical: build(&root, &rc.critical, "critical", config, false)?,
            upload: build(&root, &rc.upload_dirs, "upload_dirs", config, true)?,
            root,
        })
    }

    /// The root as a string key for the store.
    pub fn key(&self) -> String {
        self.root.to_string_lossy().into_owned()
    }

    /// Whether `rel` (relative to the root) is ignored.
    pub fn is_ignored(&self, rel: &Path, is_dir: bool) -> bool {
        !rel.as_os_str().is_empty()
            && self
                .ignore
                .matched_path_or_any_parents(rel, is_dir)
                .is_ignore()
    }

    /// [`RootRules::is_ignored`] for an entry whose parent directories are known not to
    /// be ignored (the walk prunes ignored directories before descending): the path's
    /// own match only, without re-matching every parent (which was the walk's largest
    /// user-space cost).
    pub fn is_ignored_child(&self, rel: &Path, is_dir: bool) -> bool {
        !rel.as_os_str().is_empty() && self.ignore.matched(rel, is_dir).is_ignore()
    }

    pub fn is_critical(&self, rel: &Path, is_dir: bool) -> bool {
        !rel.as_os_str().is_empty()
            && self
                .critical
                .matched_path_or_any_parents(rel, is_dir)
                .is_ignore()
    }

    pub fn in_upload_dir(&self, rel: &Path) -> bool {
        !rel.as_os_str().is_empty()
            && self
                .upload
                .matched_path_or_any_parents(rel, false)
                .is_ignore()
    }
}

/// Whether a file name is code (by extension, or a server config file).
pub fn is_code(rel: &Path) -> bool {
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name == ".htaccess" || name == ".user.ini" || name == "php.ini" {
        return true;
    }
    // `shell.php.jpg` is not code for the server, `x.php` and `x.PHP5` are.
    rel.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| CODE_EXT.contains(&e.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_core::config::Flavor;

    fn rules(d: &Path) -> RootRules {
        let rc = crate::flavor::preset(d, Flavor::Eccube);
        RootRules::new(&rc, Path::new("m.toml")).unwrap()
    }

    #[test]
    fn classes() {
        let d = tempfile::tempdir().unwrap();
        let r = rules(d.path());
        assert!(r.is_ignored(Path::new("var/cache/prod/x.php"), false));
        assert!(r.is_ignored(Path::new("var/cache"), true));
        assert!(!r.is_ignored(Path::new("var/config.php"), false));
        // The walk's cheaper form agrees wherever the parent is not itself ignored.
        for (p, d) in [
            ("var/cache", true),
            ("var/config.php", false),
            ("var", true),
            ("app/Plugin/Payment/CardPayment.php", false),
            ("html/upload/save_image/a.php", false),
        ] {
            assert_eq!(
                r.is_ignored_child(Path::new(p), d),
                r.is_ignored(Path::new(p), d),
                "{p}"
            );
        }
        assert!(r.is_critical(Path::new("app/Plugin/Payment/CardPayment.php"), false));
        assert!(r.is_critical(Path::new("app/template/default/Shopping/index.twig"), false));
        assert!(r.is_critical(
            Path::new("html/template/default/assets/js/checkout.js"),
            false
        ));
        assert!(r.is_critical(Path::new("html/.htaccess"), false));
        assert!(!r.is_critical(Path::new("vendor/psr/log/Logger.php"), false));
        assert!(r.in_upload_dir(Path::new("html/upload/save_image/a.php")));
        assert!(!r.in_upload_dir(Path::new("html/template/a.php")));
    }

    #[test]
    fn bad_pattern_names_key() {
        let d = tempfile::tempdir().unwrap();
        let mut rc = crate::flavor::preset(d.path(), Flavor::Generic);
        rc.critical.push("a/{b".into());
        let e = RootRules::new(&rc, Path::new("m.toml")).unwrap_err();
        let msg = e.localized(mamori_core::Lang::En);
        assert!(msg.contains("`critical`") && msg.contains("a/{b"), "{msg}");
    }

    #[test]
    fn missing_root() {
        let rc = crate::flavor::preset(Path::new("/nonexistent/shop"), Flavor::Generic);
        assert!(matches!(
            RootRules::new(&rc, Path::new("m.toml")),
            Err(InternalError::RootMissing { .. })
        ));
    }

    #[test]
    fn code_extensions() {
        assert!(is_code(Path::new("a/b.php")));
        assert!(is_code(Path::new("a/B.PHTML")));
        assert!(is_code(Path::new("a/.htaccess")));
        assert!(!is_code(Path::new("a/b.jpg")));
        assert!(!is_code(Path::new("a/b.php.jpg")));
    }
}
