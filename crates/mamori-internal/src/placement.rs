//! Where mamori may keep its state, key and quarantine: never inside a watched root and
//! never inside anything a web server serves (a served `.mamori/` would hand the baseline,
//! the event log or the key to anyone with a browser).

use std::path::{Path, PathBuf};

/// Document roots and aliases found in the nginx and Apache configs on this host.
pub fn served_dirs() -> Vec<PathBuf> {
    served_dirs_in(&[
        "/etc/nginx",
        "/etc/apache2",
        "/etc/httpd",
        "/usr/local/etc/nginx",
    ])
}

/// Same, reading the config trees under `etc_dirs` (for tests).
pub fn served_dirs_in(etc_dirs: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in etc_dirs {
        let mut stack = vec![PathBuf::from(d)];
        let mut budget = 2000usize; // bounded: config trees are small
        while let Some(p) = stack.pop() {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                break;
            }
            let Ok(meta) = std::fs::metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                if let Ok(rd) = std::fs::read_dir(&p) {
                    stack.extend(rd.flatten().map(|e| e.path()));
                }
            } else if meta.is_file()
                && meta.len() < 4 << 20
                && let Ok(text) = std::fs::read_to_string(&p)
            {
                out.extend(parse_served(&text));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `root /x;`, `alias /x/;` (nginx) and `DocumentRoot "/x"`, `Alias /u /x` (Apache).
pub fn parse_served(text: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.split('#').next().unwrap_or("");
        // nginx puts several statements on a line: `location /i { alias /x/; }`.
        for stmt in l.split([';', '{', '}']) {
            let words: Vec<&str> = stmt.split_whitespace().collect();
            let value = match words.as_slice() {
                [k, v]
                    if ["root", "alias", "documentroot"]
                        .contains(&k.to_ascii_lowercase().as_str()) =>
                {
                    Some(*v)
                }
                // Apache: Alias URL-path directory
                [k, _, v, ..] if k.eq_ignore_ascii_case("alias") => Some(*v),
                _ => None,
            };
            if let Some(v) = value {
                let v = v.trim_matches('"').trim_matches('\'');
                if v.starts_with('/') && !v.contains('$') {
                    out.push(Path::new(v).components().collect());
                }
            }
        }
    }
    out
}

/// Absolute, with symlinks resolved as far as the path exists.
pub fn resolve(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    // Canonicalise the longest existing ancestor, keep the rest as written.
    let mut existing = abs.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(n), Some(parent)) => {
                rest.push(n);
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = std::fs::canonicalize(&existing).unwrap_or(existing);
    for n in rest.into_iter().rev() {
        out.push(n);
    }
    out
}

/// Why `dir` may not hold mamori's private files, if it may not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    InsideRoot(PathBuf),
    Served(PathBuf),
}

pub fn check_private_dir(dir: &Path, roots: &[PathBuf], served: &[PathBuf]) -> Option<Refusal> {
    let d = resolve(dir);
    for r in roots {
        let r = resolve(r);
        if d.starts_with(&r) {
            return Some(Refusal::InsideRoot(r));
        }
    }
    for s in served {
        let s = resolve(s);
        if d.starts_with(&s) {
            return Some(Refusal::Served(s));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nginx_and_apache() {
        let n = "server {\n  root /var/www/shop/html;  # main\n  location /img { alias /srv/img/; }\n  root $document_root;\n}";
        assert_eq!(
            parse_served(n),
            vec![
                PathBuf::from("/var/www/shop/html"),
                PathBuf::from("/srv/img")
            ]
        );
        let a = "<VirtualHost *:80>\n DocumentRoot \"/var/www/ec\"\n Alias /static /srv/static\n</VirtualHost>";
        assert_eq!(
            parse_served(a),
            vec![PathBuf::from("/var/www/ec"), PathBuf::from("/srv/static")]
        );
    }

    #[test]
    fn refuses_inside_root_or_served() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("shop");
        std::fs::create_dir_all(&root).unwrap();
        assert_eq!(
            check_private_dir(&root.join(".mamori"), std::slice::from_ref(&root), &[]),
            Some(Refusal::InsideRoot(std::fs::canonicalize(&root).unwrap()))
        );
        assert!(
            check_private_dir(&d.path().join(".mamori"), std::slice::from_ref(&root), &[])
                .is_none()
        );
        let served = vec![d.path().to_path_buf()];
        assert!(matches!(
            check_private_dir(&d.path().join("x/.mamori"), &[], &served),
            Some(Refusal::Served(_))
        ));
    }
}
