//! The rule set: mamori's own rules (the repository's `rules/*.yar`, built into the
//! binary) plus the operator's directories, compiled once with yara-x.
//!
//! Each rule's metadata says what a match means: `kind` (the finding kind), `tier`
//! (`confirmed` → high/critical, `heuristic` → low/medium) and `severity`. Rules without
//! them are heuristic `malware.obfuscated` at medium, so a rule someone copied from the
//! internet never pages anyone at night.

use crate::ScanError;
use mamori_core::{Kind, Severity};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// mamori's own rule files: (name shown in messages, text).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "rules/php_webshell.yar",
        include_str!("../../../rules/php_webshell.yar"),
    ),
    (
        "rules/php_skimmer.yar",
        include_str!("../../../rules/php_skimmer.yar"),
    ),
    (
        "rules/obfuscation.yar",
        include_str!("../../../rules/obfuscation.yar"),
    ),
    (
        "rules/js_skimmer.yar",
        include_str!("../../../rules/js_skimmer.yar"),
    ),
    (
        "rules/server_config.yar",
        include_str!("../../../rules/server_config.yar"),
    ),
];

/// How sure a rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Low or medium: worth a look in the morning.
    Heuristic,
    /// High or critical: nothing honest looks like this.
    Confirmed,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Heuristic => "heuristic",
            Tier::Confirmed => "confirmed",
        }
    }

    /// Keep a severity inside the tier's range (heuristic: low..=medium; confirmed:
    /// high..=critical).
    pub fn clamp(self, s: Severity) -> Severity {
        match self {
            Tier::Heuristic => s.clamp(Severity::Low, Severity::Medium),
            Tier::Confirmed => s.clamp(Severity::High, Severity::Critical),
        }
    }
}

/// What a rule's match means, read from its metadata once at compile time.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    pub name: String,
    /// The file the rule came from (`rules/x.yar` for the built-in ones).
    pub source: String,
    pub kind: Kind,
    pub tier: Tier,
    pub severity: Severity,
    pub description: String,
}

/// Compiled rules and what each one means.
pub struct RuleSet {
    pub(crate) rules: yara_x::Rules,
    /// Keyed by (namespace, rule identifier).
    pub(crate) info: HashMap<(String, String), RuleInfo>,
    pub compile_time: Duration,
    /// The rule files compiled, in order.
    pub files: Vec<String>,
}

impl RuleSet {
    /// Number of rules.
    pub fn len(&self) -> usize {
        self.info.len()
    }

    pub fn is_empty(&self) -> bool {
        self.info.is_empty()
    }

    /// Every rule, sorted by source and name.
    pub fn rules(&self) -> Vec<&RuleInfo> {
        let mut v: Vec<&RuleInfo> = self.info.values().collect();
        v.sort_by(|a, b| (&a.source, &a.name).cmp(&(&b.source, &b.name)));
        v
    }

    pub(crate) fn info(&self, namespace: &str, name: &str) -> Option<&RuleInfo> {
        self.info.get(&(namespace.to_string(), name.to_string()))
    }
}

/// The `.yar`/`.yara` files of `dir` (or `dir` itself if it is a file), sorted.
pub fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, ScanError> {
    let err = |source| ScanError::RulesDir {
        path: dir.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(dir).map_err(err)?;
    if meta.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).map_err(err)? {
        let e = e.map_err(err)?;
        let p = e.path();
        let is_rule = p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| x.eq_ignore_ascii_case("yar") || x.eq_ignore_ascii_case("yara"));
        if is_rule && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(ScanError::NoRules {
            path: dir.to_path_buf(),
        });
    }
    Ok(files)
}

/// 1-based line and column of byte `offset` in `text`.
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

/// The line on which `rule NAME` is declared (for metadata errors).
fn rule_line(text: &str, name: &str) -> usize {
    text.lines()
        .position(|l| {
            let mut w = l.split_whitespace();
            let mut first = w.next();
            while matches!(first, Some("private" | "global")) {
                first = w.next();
            }
            first == Some("rule")
                && w.next()
                    .map(|n| n.trim_end_matches(['{', ':']))
                    .is_some_and(|n| n == name)
        })
        .map(|i| i + 1)
        .unwrap_or(1)
}

/// Compile the built-in rules (unless `builtin` is false) and every rule file in `dirs`.
/// The first error found is returned with its file and line.
pub fn compile(builtin: bool, dirs: &[PathBuf]) -> Result<RuleSet, ScanError> {
    let start = Instant::now();
    let sources = read_sources(builtin, dirs)?;
    let rules = build(&sources)?;
    describe(rules, sources, start)
}

/// [`compile`], as bytes for [`load`]: a long-running process has another one compile
/// its rules, so that the compiler's code (cranelift, ~5 MiB once run) and its working
/// memory never become part of the daemon. The metadata is checked here too, so an
/// error is reported by the compiling process, with its file and line.
pub fn compile_to_bytes(builtin: bool, dirs: &[PathBuf]) -> Result<Vec<u8>, ScanError> {
    let sources = read_sources(builtin, dirs)?;
    let rules = build(&sources)?;
    let bytes = rules.serialize().map_err(|e| ScanError::Engine {
        path: PathBuf::new(),
        msg: format!("serializing the compiled rules: {e}"),
    })?;
    describe(rules, sources, Instant::now())?;
    Ok(bytes)
}

/// Rules compiled by [`compile_to_bytes`] with the same `builtin` and `dirs` (in a process
/// of this same binary: the bytes hold machine code, never load them from anywhere else).
/// The rule files are read again for the names and metadata the findings carry.
pub fn load(builtin: bool, dirs: &[PathBuf], bytes: &[u8]) -> Result<RuleSet, ScanError> {
    let start = Instant::now();
    let sources = read_sources(builtin, dirs)?;
    let rules = yara_x::Rules::deserialize(bytes).map_err(|e| ScanError::Engine {
        path: PathBuf::new(),
        msg: format!("loading the compiled rules: {e}"),
    })?;
    let namespaces = rules
        .iter()
        .map(|r| r.namespace())
        .collect::<std::collections::HashSet<_>>();
    if namespaces.iter().any(|ns| {
        ns.strip_prefix('f')
            .and_then(|n| n.parse::<usize>().ok())
            .is_none_or(|i| i >= sources.len())
    }) {
        // The rule files changed between the two reads.
        return Err(ScanError::Engine {
            path: PathBuf::new(),
            msg: "the rule files changed while the rules were compiled".into(),
        });
    }
    describe(rules, sources, start)
}

/// The built-in rules (unless `builtin` is false) and the rule files of `dirs`, as (name,
/// text), in compile order.
fn read_sources(builtin: bool, dirs: &[PathBuf]) -> Result<Vec<(String, String)>, ScanError> {
    let mut sources: Vec<(String, String)> = Vec::new();
    if builtin {
        for (name, text) in BUILTIN {
            sources.push((name.to_string(), text.to_string()));
        }
    }
    for d in dirs {
        for f in rule_files(d)? {
            let bytes = std::fs::read(&f).map_err(|source| ScanError::RulesDir {
                path: f.clone(),
                source,
            })?;
            let text = String::from_utf8(bytes).map_err(|e| {
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let (line, col) = line_col(&lossy, e.utf8_error().valid_up_to());
                ScanError::RuleSyntax {
                    path: f.clone(),
                    line,
                    col,
                    msg: "not valid UTF-8; save the file as UTF-8".into(),
                }
            })?;
            sources.push((f.display().to_string(), text));
        }
    }
    Ok(sources)
}

/// Compile `sources`, each in its own namespace (`f0`, `f1`, …).
fn build(sources: &[(String, String)]) -> Result<yara_x::Rules, ScanError> {
    let mut compiler = yara_x::Compiler::new();
    compiler.colorize_errors(false);
    // Each file in its own namespace: an operator's rule may reuse one of our names.
    for (i, (name, text)) in sources.iter().enumerate() {
        compiler.new_namespace(&format!("f{i}"));
        let src = yara_x::SourceCode::from(text.as_str()).with_origin(name.as_str());
        if let Err(e) = compiler.add_source(src) {
            let label = e.labels().next();
            let (line, col) = label
                .as_ref()
                .map(|l| line_col(text, l.span().range().start))
                .unwrap_or((1, 1));
            let detail = label
                .map(|l| l.text().trim().to_string())
                .filter(|t| !t.is_empty());
            let msg = match detail {
                Some(d) => format!("{}: {d}", e.title()),
                None => e.title().to_string(),
            };
            return Err(ScanError::RuleSyntax {
                path: PathBuf::from(name),
                line,
                col,
                msg: msg.replace('\n', " "),
            });
        }
    }
    Ok(compiler.build())
}

/// What each compiled rule means, from its metadata; the first bad value is an error
/// with its file and line.
fn describe(
    rules: yara_x::Rules,
    sources: Vec<(String, String)>,
    start: Instant,
) -> Result<RuleSet, ScanError> {
    let mut info = HashMap::new();
    for r in rules.iter() {
        let ns = r.namespace();
        let idx: usize = ns
            .strip_prefix('f')
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let (source, text) = sources
            .get(idx)
            .map(|(s, t)| (s.as_str(), t.as_str()))
            .unwrap_or(("", ""));
        let meta_err = |msg: String| ScanError::RuleMeta {
            path: PathBuf::from(source),
            line: rule_line(text, r.identifier()),
            rule: r.identifier().to_string(),
            msg,
        };
        let mut kind = Kind::MalwareObfuscated;
        let mut tier = Tier::Heuristic;
        let mut severity: Option<Severity> = None;
        let mut description = String::new();
        for (key, value) in r.metadata() {
            let v = match value {
                yara_x::MetaValue::String(v) => std::borrow::Cow::Borrowed(v),
                yara_x::MetaValue::Bytes(b) => String::from_utf8_lossy(b.as_ref()),
                _ => continue,
            };
            let v: &str = &v;
            match key {
                "kind" => {
                    kind = match Kind::parse(v) {
                        Some(
                            k @ (Kind::MalwareWebshell
                            | Kind::MalwareSkimmer
                            | Kind::MalwareObfuscated
                            | Kind::DataCardStash),
                        ) => k,
                        _ => {
                            return Err(meta_err(format!(
                                "kind \"{v}\" is not one of malware.webshell, malware.skimmer, malware.obfuscated, data.card_stash"
                            )));
                        }
                    }
                }
                "tier" => {
                    tier = match v {
                        "confirmed" => Tier::Confirmed,
                        "heuristic" => Tier::Heuristic,
                        _ => {
                            return Err(meta_err(format!(
                                "tier \"{v}\" is not \"confirmed\" or \"heuristic\""
                            )));
                        }
                    }
                }
                "severity" => severity = Some(v.parse::<Severity>().map_err(meta_err)?),
                "description" => description = v.to_string(),
                _ => {}
            }
        }
        let default = match tier {
            Tier::Confirmed => Severity::High,
            Tier::Heuristic => Severity::Medium,
        };
        let severity = tier.clamp(severity.unwrap_or(default));
        info.insert(
            (ns.to_string(), r.identifier().to_string()),
            RuleInfo {
                name: r.identifier().to_string(),
                source: source.to_string(),
                kind,
                tier,
                severity,
                description,
            },
        );
    }
    Ok(RuleSet {
        rules,
        info,
        compile_time: start.elapsed(),
        files: sources.into_iter().map(|(n, _)| n).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_compile_with_meta() {
        let rs = compile(true, &[]).expect("built-in rules compile");
        assert!(rs.len() >= 20, "only {} rules", rs.len());
        for r in rs.rules() {
            assert!(!r.description.is_empty(), "{} has no description", r.name);
            match r.tier {
                Tier::Confirmed => assert!(r.severity >= Severity::High, "{}", r.name),
                Tier::Heuristic => assert!(r.severity <= Severity::Medium, "{}", r.name),
            }
        }
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.yar");
        std::fs::write(
            &f,
            "rule ok { condition: true }\n\nrule broken {\n  strings:\n    $a = \"x\"\n  condition:\n    $a and and\n}\n",
        )
        .unwrap();
        let err = compile(false, &[dir.path().to_path_buf()])
            .err()
            .expect("must fail");
        match &err {
            ScanError::RuleSyntax { path, line, .. } => {
                assert_eq!(path, &f);
                assert_eq!(*line, 7, "{err}");
            }
            other => panic!("unexpected error {other}"),
        }
        let msg = err.localized(mamori_core::Lang::En);
        assert!(!msg.contains('\n'));
        assert!(msg.starts_with(&format!("{}:7:", f.display())), "{msg}");
    }

    #[test]
    fn bad_meta_is_an_error_with_the_rule_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.yar");
        std::fs::write(
            &f,
            "rule a { condition: false }\nrule b {\n  meta:\n    kind = \"file.added\"\n  condition: false\n}\n",
        )
        .unwrap();
        match compile(false, std::slice::from_ref(&f)) {
            Err(ScanError::RuleMeta { line, rule, .. }) => {
                assert_eq!((line, rule.as_str()), (2, "b"));
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("must fail"),
        }
    }

    #[test]
    fn rules_without_meta_are_heuristic_and_tiers_clamp() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("u.yara"),
            "rule plain { condition: true }\nrule loud { meta: tier = \"heuristic\" severity = \"critical\" condition: true }\n",
        )
        .unwrap();
        let rs = compile(false, &[dir.path().to_path_buf()]).unwrap();
        let plain = rs.rules().into_iter().find(|r| r.name == "plain").unwrap();
        assert_eq!(
            (plain.kind, plain.tier, plain.severity),
            (Kind::MalwareObfuscated, Tier::Heuristic, Severity::Medium)
        );
        let loud = rs.rules().into_iter().find(|r| r.name == "loud").unwrap();
        assert_eq!(loud.severity, Severity::Medium);
    }

    #[test]
    fn rules_compiled_to_bytes_load_as_the_same_rules() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("own.yar"),
            "rule own_marker { meta: kind = \"malware.skimmer\" tier = \"confirmed\" description = \"ours\" strings: $a = \"own-marker-77\" condition: $a }\n",
        )
        .unwrap();
        let dirs = [dir.path().to_path_buf()];
        let here = compile(true, &dirs).unwrap();
        let bytes = compile_to_bytes(true, &dirs).unwrap();
        assert!(bytes.starts_with(b"YARA-X"), "yara-x's serialized form");
        let loaded = load(true, &dirs, &bytes).unwrap();
        let view = |rs: &RuleSet| {
            let mut v: Vec<_> = rs
                .rules()
                .iter()
                .map(|r| (r.name.clone(), r.source.clone(), r.kind, r.tier, r.severity))
                .collect();
            v.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
            v
        };
        assert_eq!(view(&loaded), view(&here));
        assert_eq!(loaded.files, here.files);
        // The loaded rules match what the compiled ones match.
        let opts = crate::ScanOptions {
            rules: dirs.to_vec(),
            ..crate::ScanOptions::default()
        };
        let engine = crate::Engine::from_compiled(&opts, &bytes).unwrap();
        let f = engine
            .worker()
            .scan_bytes(
                b"<script>/* own-marker-77 */</script>",
                "x.js",
                None,
                "h",
                mamori_core::Lang::En,
            )
            .unwrap();
        assert!(
            f.iter()
                .any(|f| f.evidence.to_string().contains("own_marker")),
            "{f:?}"
        );
        // Bytes compiled from other rule files are refused, not misread.
        assert!(load(false, &[], &bytes).is_err());
        assert!(load(true, &dirs, b"not rules").is_err());
    }

    #[test]
    fn empty_dir_and_missing_dir_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            compile(false, &[dir.path().to_path_buf()]),
            Err(ScanError::NoRules { .. })
        ));
        assert!(matches!(
            compile(false, &[dir.path().join("nope")]),
            Err(ScanError::RulesDir { .. })
        ));
    }
}
