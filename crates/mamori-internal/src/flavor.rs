//! Shop software detection and its presets: critical paths (payment modules, checkout
//! templates and JS, `.htaccess`, `.user.ini`), ignore rules (caches, logs, sessions) and
//! upload directories (where code must never appear). Patterns use gitignore syntax.

use mamori_core::config::{Flavor, RootConfig};
use std::path::Path;

/// Guess the shop software at `root` from files only that software has.
pub fn detect(root: &Path) -> Flavor {
    let has = |p: &str| root.join(p).exists();
    if has("wp-content/plugins/woocommerce") || (has("wp-config.php") && has("wp-content")) {
        Flavor::Woocommerce
    } else if has("bin/magento")
        || has("app/etc/env.php")
        || (has("app/code") && has("pub/static"))
        || has("app/design/frontend")
    {
        Flavor::Magento
    } else if has("src/Eccube")
        || has("html/template/default")
        || (has("app/Plugin") && has("html"))
        || has("app/config/eccube")
    {
        Flavor::Eccube
    } else {
        Flavor::Generic
    }
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Paths that are critical in every flavour.
/// (Server configs that can make PHP run a file before every request.)
const COMMON_CRITICAL: &[&str] = &[".htaccess", ".user.ini", "php.ini"];

/// A root config for `path` with the presets of `flavor`.
pub fn preset(path: &Path, flavor: Flavor) -> RootConfig {
    let (critical, ignore, upload): (&[&str], &[&str], &[&str]) = match flavor {
        Flavor::Eccube => (
            &[
                "app/Plugin/*Pay*/",
                "app/Plugin/**/Payment/",
                "app/template/**/Shopping/",
                "src/Eccube/Resource/template/**/Shopping/",
                "src/Eccube/Controller/ShoppingController.php",
                "src/Eccube/Service/PurchaseFlow/",
                "/shopping/",
                "html/template/**/js/",
                "/index.php",
                "app/config/eccube/packages/",
                "/.env",
            ],
            &["var/cache/", "var/log/", "var/sessions/"],
            &["html/upload/"],
        ),
        Flavor::Magento => (
            &[
                "app/code/**/Payment/",
                "app/design/**/Magento_Checkout/",
                "app/design/**/Magento_Payment/",
                "pub/static/**/Magento_Checkout/",
                "vendor/magento/module-checkout/",
                "vendor/magento/module-payment/",
                "vendor/magento/module-sales/",
                "/checkout/",
                "app/etc/env.php",
                "/index.php",
                "/pub/index.php",
            ],
            &[
                "var/cache/",
                "var/log/",
                "var/session/",
                "var/page_cache/",
                "generated/",
                "pub/static/_cache/",
            ],
            &["pub/media/"],
        ),
        Flavor::Woocommerce => (
            &[
                "wp-content/plugins/woocommerce/",
                "wp-content/plugins/*pay*/",
                "wp-content/plugins/*gateway*/",
                "wp-content/themes/*/woocommerce/",
                "/wp-config.php",
                "/index.php",
                "/wp-includes/",
                "/wp-admin/",
            ],
            &["wp-content/cache/", "wp-content/upgrade/"],
            &["wp-content/uploads/"],
        ),
        Flavor::Generic => (
            &[
                "/lib/Payment/",
                "/templates/checkout*",
                "/assets/js/checkout*",
                "/checkout.php",
                "/index.php",
            ],
            &["cache/", "logs/", "tmp/"],
            &["uploads/", "upload/"],
        ),
    };
    let mut crit = v(critical);
    crit.extend(v(COMMON_CRITICAL));
    RootConfig {
        path: path.to_path_buf(),
        flavor,
        critical: crit,
        ignore: v(ignore),
        upload_dirs: v(upload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_marker_files() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(detect(d.path()), Flavor::Generic);
        std::fs::create_dir_all(d.path().join("src/Eccube")).unwrap();
        assert_eq!(detect(d.path()), Flavor::Eccube);
        let m = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(m.path().join("app/etc")).unwrap();
        std::fs::write(m.path().join("app/etc/env.php"), "<?php").unwrap();
        assert_eq!(detect(m.path()), Flavor::Magento);
        let w = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(w.path().join("wp-content/plugins/woocommerce")).unwrap();
        assert_eq!(detect(w.path()), Flavor::Woocommerce);
    }
}
