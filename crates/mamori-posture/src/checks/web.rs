//! The web server's virtual hosts, from `nginx -T` / `apachectl -S` (or, when they cannot
//! run, the config files they would read), for 20-1.8 (test and staging sites reachable
//! by anyone) and for the TLS settings.

use crate::audit::{Ctx, Outcome};
use mamori_core::tr;
use std::path::Path;

/// One virtual host as the web server is configured to serve it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vhost {
    /// `nginx` or `apache`.
    pub server: &'static str,
    /// The config file it was read from (when known).
    pub file: String,
    pub names: Vec<String>,
    /// `listen` arguments (nginx) or `<VirtualHost …>` addresses (Apache).
    pub listens: Vec<String>,
    pub root: Option<String>,
    /// allow/deny, basic auth or `Require ip/host/valid-user` on the site (or on `/`).
    pub restricted: bool,
    /// `ssl_protocols` / `SSLProtocol` words.
    pub tls_protocols: Vec<String>,
    pub certificates: Vec<String>,
}

// ---- nginx ------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct Directive {
    name: String,
    args: Vec<String>,
    block: Option<Vec<Directive>>,
    file: String,
}

/// Tokens of nginx config text: words (quotes removed), `{`, `}`, `;`, and the file
/// markers `nginx -T` prints (`# configuration file /etc/nginx/nginx.conf:`).
fn nginx_tokens(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut file = String::new();
    let mut chars = text.chars().peekable();
    let mut word = String::new();
    let flush = |w: &mut String, out: &mut Vec<(String, String)>, file: &str| {
        if !w.is_empty() {
            out.push((std::mem::take(w), file.to_string()));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' if word.is_empty() => {
                let mut line = String::new();
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                    line.push(c);
                }
                if let Some(f) = line.trim().strip_prefix("configuration file ") {
                    file = f.trim_end_matches(':').to_string();
                }
            }
            '"' | '\'' => {
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                    word.push(d);
                }
                // An empty quoted word ("") is still a word.
                if word.is_empty() {
                    out.push((String::new(), file.clone()));
                }
            }
            '{' | '}' | ';' => {
                flush(&mut word, &mut out, &file);
                out.push((c.to_string(), file.clone()));
            }
            c if c.is_whitespace() => flush(&mut word, &mut out, &file),
            '\\' => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out, &file);
    out
}

fn nginx_block(toks: &[(String, String)], i: &mut usize) -> Vec<Directive> {
    let mut v = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut file = String::new();
    while *i < toks.len() {
        let (t, f) = &toks[*i];
        *i += 1;
        match t.as_str() {
            ";" => {
                if !cur.is_empty() {
                    let name = cur.remove(0);
                    v.push(Directive {
                        name,
                        args: std::mem::take(&mut cur),
                        block: None,
                        file: file.clone(),
                    });
                }
            }
            "{" => {
                let inner = nginx_block(toks, i);
                let name = if cur.is_empty() {
                    String::new()
                } else {
                    cur.remove(0)
                };
                v.push(Directive {
                    name,
                    args: std::mem::take(&mut cur),
                    block: Some(inner),
                    file: file.clone(),
                });
            }
            "}" => return v,
            _ => {
                if cur.is_empty() {
                    file = f.clone();
                }
                cur.push(t.clone());
            }
        }
    }
    v
}

fn restricts(ds: &[Directive]) -> bool {
    let deny_all = ds
        .iter()
        .any(|d| d.name == "deny" && d.args.first().is_some_and(|a| a == "all"));
    let auth = ds.iter().any(|d| {
        d.name == "auth_basic" && d.args.first().is_some_and(|a| a != "off")
            || d.name == "auth_request" && d.args.first().is_some_and(|a| a != "off")
    });
    deny_all || auth
}

fn collect_servers(ds: &[Directive], http_protocols: &[String], out: &mut Vec<Vhost>) {
    let protocols: Vec<String> = ds
        .iter()
        .rfind(|d| d.name == "ssl_protocols")
        .map(|d| d.args.clone())
        .unwrap_or_else(|| http_protocols.to_vec());
    for d in ds {
        let Some(b) = &d.block else { continue };
        if d.name == "server" {
            let all = |n: &str| -> Vec<String> {
                b.iter()
                    .filter(|x| x.name == n)
                    .flat_map(|x| x.args.clone())
                    .collect()
            };
            let root_loc = b.iter().find(|x| {
                x.name == "location"
                    && matches!(x.args.as_slice(), [p] if p == "/")
                    && x.block.is_some()
            });
            let restricted = restricts(b)
                || root_loc.is_some_and(|l| restricts(l.block.as_deref().unwrap_or(&[])));
            let own_protocols = b
                .iter()
                .rfind(|x| x.name == "ssl_protocols")
                .map(|x| x.args.clone());
            out.push(Vhost {
                server: "nginx",
                file: d.file.clone(),
                names: all("server_name")
                    .into_iter()
                    .filter(|n| n != "_" && !n.is_empty())
                    .collect(),
                listens: b
                    .iter()
                    .filter(|x| x.name == "listen")
                    .filter_map(|x| x.args.first().cloned())
                    .collect(),
                root: b
                    .iter()
                    .rfind(|x| x.name == "root")
                    .and_then(|x| x.args.first().cloned()),
                restricted,
                tls_protocols: own_protocols.unwrap_or_else(|| protocols.clone()),
                certificates: all("ssl_certificate"),
            });
        } else if d.name != "location" {
            collect_servers(b, &protocols, out);
        }
    }
}

/// The `server { }` blocks of nginx config text (`nginx -T` output or the files).
pub fn parse_nginx(text: &str) -> Vec<Vhost> {
    let toks = nginx_tokens(text);
    let mut i = 0;
    let tree = nginx_block(&toks, &mut i);
    // `nginx -T` prints included files after the main one, so servers of
    // `include sites-enabled/*` sit outside `http { }`: they inherit its settings.
    let http_protocols: Vec<String> = tree
        .iter()
        .filter(|d| d.name == "http")
        .filter_map(|d| d.block.as_ref())
        .flat_map(|b| b.iter().filter(|x| x.name == "ssl_protocols"))
        .next_back()
        .map(|d| d.args.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    collect_servers(&tree, &http_protocols, &mut out);
    out
}

// ---- Apache -----------------------------------------------------------------------

/// The config files `apachectl -S` names for its virtual hosts.
pub fn parse_apachectl_s(text: &str) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    for l in text.lines() {
        if let Some(open) = l.rfind('(')
            && let Some(inner) = l[open + 1..].strip_suffix(')')
            && let Some((file, line)) = inner.rsplit_once(':')
            && line.chars().all(|c| c.is_ascii_digit())
            && file.starts_with('/')
            && !files.iter().any(|f| f == file)
        {
            files.push(file.to_string());
        }
    }
    files
}

/// `<VirtualHost>` sections of Apache config text.
pub fn parse_apache(text: &str, file: &str) -> Vec<Vhost> {
    let mut out = Vec::new();
    let mut cur: Option<Vhost> = None;
    let mut global_protocols: Vec<String> = Vec::new();
    for raw in text.lines() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("<virtualhost") {
            let addrs = l[l.len() - rest.len()..]
                .trim_end_matches('>')
                .split_whitespace()
                .map(str::to_string)
                .collect();
            cur = Some(Vhost {
                server: "apache",
                file: file.to_string(),
                listens: addrs,
                tls_protocols: global_protocols.clone(),
                ..Default::default()
            });
            continue;
        }
        if lower.starts_with("</virtualhost") {
            if let Some(v) = cur.take() {
                out.push(v);
            }
            continue;
        }
        let mut words = l.split_whitespace();
        let key = words.next().unwrap_or("").to_ascii_lowercase();
        let args: Vec<String> = words.map(|w| w.trim_matches('"').to_string()).collect();
        let Some(v) = cur.as_mut() else {
            if key == "sslprotocol" {
                global_protocols = args;
            }
            continue;
        };
        let first = args.first().map(|a| a.to_ascii_lowercase());
        match key.as_str() {
            "servername" | "serveralias" => v.names.extend(args),
            "documentroot" => v.root = args.into_iter().next(),
            "sslprotocol" => v.tls_protocols = args,
            "sslcertificatefile" => v.certificates.extend(args),
            "authtype" => v.restricted = true,
            "require"
                if matches!(
                    first.as_deref(),
                    Some("ip" | "host" | "valid-user" | "user" | "group" | "local")
                ) =>
            {
                v.restricted = true
            }
            "allow" if args.len() >= 2 && !args[1].eq_ignore_ascii_case("all") => {
                v.restricted = true
            }
            _ => {}
        }
    }
    out
}

// ---- discovery ----------------------------------------------------------------------

/// Every vhost of nginx and Apache, and where they were read from. `Err` when a web
/// server is installed but its config could not be read.
pub fn vhosts(ctx: &Ctx) -> Result<(Vec<Vhost>, Vec<String>), String> {
    let mut found = Vec::new();
    let mut sources = Vec::new();
    let mut problems = Vec::new();
    // nginx
    let mut nginx_done = false;
    if let Some(o) = ctx.sys.run("nginx", &["-T", "-q"]) {
        if o.status == Some(0) && !o.stdout.trim().is_empty() {
            found.extend(parse_nginx(&o.stdout));
            sources.push("nginx -T".to_string());
            nginx_done = true;
        } else {
            let why = o.stderr.trim().lines().last().unwrap_or("").to_string();
            problems.push(format!("nginx -T: {why}"));
        }
    }
    if !nginx_done && ctx.sys.exists("/etc/nginx") {
        let mut text = String::new();
        let mut files = vec![std::path::PathBuf::from("/etc/nginx/nginx.conf")];
        for dir in ["/etc/nginx/conf.d", "/etc/nginx/sites-enabled"] {
            for p in ctx.sys.list(dir) {
                if let Ok(rel) = p.strip_prefix(&ctx.sys.root) {
                    files.push(Path::new("/").join(rel));
                }
            }
        }
        for f in &files {
            let abs = f.to_string_lossy();
            if let Ok(t) = ctx.sys.read(&abs) {
                text.push_str(&format!("\n# configuration file {abs}:\n{t}\n"));
            } else if f.ends_with("nginx.conf") {
                problems.push(format!("{abs}: unreadable"));
            }
        }
        if !text.is_empty() {
            found.extend(parse_nginx(&text));
            sources.push("/etc/nginx/{nginx.conf,conf.d,sites-enabled}".into());
            problems.retain(|p| !p.starts_with("nginx -T"));
        }
    }
    // Apache
    let mut apache_files: Vec<String> = Vec::new();
    for prog in ["apachectl", "apache2ctl", "httpd"] {
        if let Some(o) = ctx.sys.run(prog, &["-S"]) {
            if o.status == Some(0) {
                apache_files = parse_apachectl_s(&o.stdout);
                sources.push(format!("{prog} -S"));
            } else {
                let why = o.stderr.trim().lines().last().unwrap_or("").to_string();
                problems.push(format!("{prog} -S: {why}"));
            }
            break;
        }
    }
    if apache_files.is_empty() {
        for dir in ["/etc/apache2/sites-enabled", "/etc/httpd/conf.d"] {
            for p in ctx.sys.list(dir) {
                if let Ok(rel) = p.strip_prefix(&ctx.sys.root) {
                    apache_files.push(Path::new("/").join(rel).to_string_lossy().into_owned());
                }
            }
        }
        if !apache_files.is_empty() {
            sources.push("/etc/apache2/sites-enabled, /etc/httpd/conf.d".into());
        }
    }
    for f in &apache_files {
        match ctx.sys.read(f) {
            Ok(t) => found.extend(parse_apache(&t, f)),
            Err(e) => problems.push(format!("{f}: {e}")),
        }
    }
    if found.is_empty() && !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok((found, sources))
}

const STAGING_WORDS: &[&str] = &[
    "staging",
    "stg",
    "stage",
    "test",
    "testing",
    "dev",
    "develop",
    "development",
    "demo",
    "preview",
    "sandbox",
    "qa",
    "uat",
];

/// Whether a host name or path names a test/staging copy (`stg.shop.jp`, `shop-dev.jp`,
/// `/var/www/staging`), word by word, so `devices.example.jp` is not one.
pub fn staging_word(s: &str) -> Option<String> {
    s.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| STAGING_WORDS.contains(w))
        .map(str::to_string)
}

fn loopback_only(v: &Vhost) -> bool {
    !v.listens.is_empty()
        && v.listens.iter().all(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("127.") || l.starts_with("[::1]") || l.starts_with("localhost")
        })
}

/// A shop's files at `root` (EC-CUBE 4, Magento 2, WordPress), on the audited system.
fn holds_shop(ctx: &Ctx, root: &str) -> bool {
    let r = root.trim_end_matches('/');
    [
        "/.env",
        "/../.env",
        "/app/etc/env.php",
        "/../app/etc/env.php",
        "/wp-config.php",
        "/src/Eccube",
        "/../src/Eccube",
    ]
    .iter()
    .any(|m| ctx.sys.exists(&format!("{r}{m}")))
}

fn related(a: &str, b: &str) -> bool {
    let (a, b) = (Path::new(a), Path::new(b));
    a.starts_with(b) || b.starts_with(a) || a.parent() == Some(b) || b.parent() == Some(a)
}

pub fn staging(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let (hosts, sources) = match vhosts(ctx) {
        Ok(x) => x,
        Err(why) => {
            return Outcome::na(
                tr!(
                    lang,
                    "web server config unreadable: {why}",
                    "Web サーバーの設定を読めません: {why}"
                ),
                "nginx -T / apachectl -S",
            );
        }
    };
    if hosts.is_empty() {
        return Outcome::missing(
            tr!(
                lang,
                "no nginx or Apache virtual host found",
                "nginx / Apache のバーチャルホストがありません"
            ),
            "nginx -T / apachectl -S",
        );
    }
    let source = sources.join(", ");
    let shop_roots: Vec<String> = ctx
        .cfg
        .shop_roots
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut open = Vec::new();
    let mut guarded = Vec::new();
    for v in &hosts {
        let label = v
            .names
            .first()
            .cloned()
            .or_else(|| v.root.clone())
            .unwrap_or_else(|| v.file.clone());
        let by_name = v
            .names
            .iter()
            .chain(v.root.iter())
            .find_map(|n| staging_word(n));
        let copy = v.root.as_deref().is_some_and(|r| {
            !shop_roots.is_empty()
                && !shop_roots.iter().any(|s| related(r, s))
                && holds_shop(ctx, r)
        });
        let why = match (by_name, copy) {
            (Some(w), _) => format!("`{w}`"),
            (None, true) => tr!(lang, "a copy of the shop", "店舗のコピー"),
            (None, false) => continue,
        };
        let entry = format!("{} {label} ({why})", v.server);
        if v.restricted || loopback_only(v) {
            guarded.push(entry);
        } else {
            open.push(entry);
        }
    }
    let details = serde_json::json!({
        "vhosts": hosts.len(),
        "unrestricted_test_sites": open,
        "restricted_test_sites": guarded,
    });
    if !open.is_empty() {
        let l = open.join(", ");
        return Outcome::fail(
            tr!(
                lang,
                "test/staging sites served to anyone (no IP limit, no login): {l}",
                "テスト/ステージング環境が誰でも閲覧できます (IP 制限・認証なし): {l}"
            ),
            source,
        )
        .with_details(details);
    }
    let n = hosts.len();
    if guarded.is_empty() {
        Outcome::pass(
            tr!(
                lang,
                "{n} virtual hosts, none is a test/staging site",
                "バーチャルホスト {n} 件にテスト/ステージング環境はありません"
            ),
            source,
        )
        .with_details(details)
    } else {
        let l = guarded.join(", ");
        Outcome::pass(
            tr!(
                lang,
                "test/staging sites are restricted: {l}",
                "テスト/ステージング環境は制限されています: {l}"
            ),
            source,
        )
        .with_details(details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like `nginx -T` on Debian 12: the main file, then each included file.
    const NGINX_T: &str = r#"nginx: the configuration file /etc/nginx/nginx.conf syntax is ok
# configuration file /etc/nginx/nginx.conf:
user www-data;
worker_processes auto;
events { worker_connections 768; }
http {
	sendfile on;
	ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; # Dropping SSLv3, ref: POODLE
	include /etc/nginx/conf.d/*.conf;
	include /etc/nginx/sites-enabled/*;
}

# configuration file /etc/nginx/sites-enabled/shop:
server {
    listen 443 ssl http2;
    listen [::]:443 ssl http2;
    server_name shop.example.jp www.shop.example.jp;
    root /var/www/eccube;
    ssl_certificate /etc/letsencrypt/live/shop.example.jp/fullchain.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { try_files $uri /index.php$is_args$args; }
    location ~ /\. { deny all; }
    location ^~ /admin { allow 203.0.113.5; deny all; }
}

# configuration file /etc/nginx/sites-enabled/staging:
server {
    listen 80;
    server_name stg.shop.example.jp;
    root "/var/www/eccube-staging";
    location / { index index.php; }
}

# configuration file /etc/nginx/sites-enabled/dev:
server {
    listen 80;
    server_name dev.shop.example.jp;
    root /var/www/dev;
    auth_basic "staff only";
    auth_basic_user_file /etc/nginx/.htpasswd;
}
server {
    listen 127.0.0.1:8080;
    server_name test.local;
    root /srv/test;
}
"#;

    #[test]
    fn nginx_t_servers() {
        let v = parse_nginx(NGINX_T);
        assert_eq!(v.len(), 4, "{v:#?}");
        assert_eq!(v[0].names, ["shop.example.jp", "www.shop.example.jp"]);
        assert_eq!(v[0].listens, ["443", "[::]:443"]);
        assert_eq!(v[0].root.as_deref(), Some("/var/www/eccube"));
        assert_eq!(v[0].tls_protocols, ["TLSv1.2", "TLSv1.3"]);
        assert_eq!(v[0].file, "/etc/nginx/sites-enabled/shop");
        assert!(
            !v[0].restricted,
            "a deny on /admin is not the whole site: {v:?}"
        );
        assert_eq!(v[1].root.as_deref(), Some("/var/www/eccube-staging"));
        assert!(!v[1].restricted);
        assert_eq!(
            v[1].tls_protocols,
            ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
        );
        assert!(v[2].restricted);
        assert!(loopback_only(&v[3]));
        assert!(!loopback_only(&v[1]));
    }

    #[test]
    fn apache_vhosts() {
        let s = "VirtualHost configuration:\n*:80                   is a NameVirtualHost\n         default server shop.example.jp (/etc/apache2/sites-enabled/000-default.conf:1)\n         port 80 namevhost shop.example.jp (/etc/apache2/sites-enabled/000-default.conf:1)\n         port 80 namevhost staging.example.jp (/etc/apache2/sites-enabled/staging.conf:1)\n                 alias stg.example.jp\n*:443                  shop.example.jp (/etc/apache2/sites-enabled/default-ssl.conf:2)\nServerRoot: \"/etc/apache2\"\nMain DocumentRoot: \"/var/www/html\"\n";
        assert_eq!(
            parse_apachectl_s(s),
            [
                "/etc/apache2/sites-enabled/000-default.conf",
                "/etc/apache2/sites-enabled/staging.conf",
                "/etc/apache2/sites-enabled/default-ssl.conf"
            ]
        );
        let conf = "<VirtualHost *:80>\n\tServerName staging.example.jp\n\tServerAlias stg.example.jp\n\tDocumentRoot /var/www/staging\n\t<Directory /var/www/staging>\n\t\tAllowOverride All\n\t\tRequire all granted\n\t</Directory>\n</VirtualHost>\n<VirtualHost 127.0.0.1:8081>\n  ServerName dev.local\n  DocumentRoot /var/www/dev\n</VirtualHost>\n<IfModule mod_ssl.c>\n<VirtualHost _default_:443>\n  ServerName shop.example.jp\n  SSLProtocol all -SSLv3\n  SSLCertificateFile /etc/ssl/certs/shop.pem\n  <Location />\n    AuthType Basic\n    Require valid-user\n  </Location>\n</VirtualHost>\n</IfModule>\n";
        let v = parse_apache(conf, "/etc/apache2/sites-enabled/staging.conf");
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].names, ["staging.example.jp", "stg.example.jp"]);
        assert!(!v[0].restricted, "Require all granted is no limit");
        assert!(loopback_only(&v[1]));
        assert!(v[2].restricted);
        assert_eq!(v[2].tls_protocols, ["all", "-SSLv3"]);
        assert_eq!(v[2].certificates, ["/etc/ssl/certs/shop.pem"]);
    }

    #[test]
    fn staging_words() {
        assert_eq!(staging_word("stg.shop.example.jp").as_deref(), Some("stg"));
        assert_eq!(staging_word("shop-dev.example.jp").as_deref(), Some("dev"));
        assert_eq!(
            staging_word("/var/www/eccube-staging").as_deref(),
            Some("staging")
        );
        assert_eq!(staging_word("devices.example.jp"), None);
        assert_eq!(staging_word("contest.example.jp"), None);
    }
}
