//! The audit: checks as data, results, per-checklist-item scores and findings.

use crate::attest::Attestation;
use crate::checks;
use crate::config::PostureConfig;
use crate::error::PostureError;
use crate::sys::Sys;
use chrono::{DateTime, Utc};
use mamori_core::{Finding, Kind, Lang, Severity, tr};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    Warn,
    /// Does not apply here (the service is absent, its config unreadable, …): the reason.
    NotApplicable(String),
    /// The check itself could not run: the reason.
    Error(String),
    /// Not verified by a machine: a signed, unexpired statement of a person.
    Attested,
}

impl Status {
    pub fn label(&self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
            Status::NotApplicable(_) => "N/A",
            Status::Error(_) => "ERROR",
            Status::Attested => "ATTESTED",
        }
    }
}

/// What a check reports when the thing it looks at is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Absent is fine or irrelevant (no sshd → no SSH checks).
    NotApplicable,
    /// Absent is the failure (no antivirus, no attestation).
    Fail,
    /// Absent deserves a look.
    Warn,
}

/// A check, as data.
#[derive(Debug, Clone, Copy)]
pub struct CheckDef {
    /// Stable id (`ssh.2fa`, `http.git_exposed`): findings' `check`, config `skip`.
    pub id: &'static str,
    pub checklist: &'static [&'static str],
    /// Severity of a FAIL (a WARN is `low`).
    pub severity: Severity,
    pub title_en: &'static str,
    pub title_ja: &'static str,
    pub remediation_en: &'static str,
    pub remediation_ja: &'static str,
    pub missing: Missing,
    pub(crate) run: fn(&Ctx) -> Outcome,
}

impl CheckDef {
    pub fn title(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::En => self.title_en,
            Lang::Ja => self.title_ja,
        }
    }
    pub fn remediation(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::En => self.remediation_en,
            Lang::Ja => self.remediation_ja,
        }
    }
}

/// Every check mamori knows, in report order.
pub fn catalog() -> &'static [CheckDef] {
    checks::CATALOG
}

/// What a check function returns; the runner turns it into a [`CheckResult`] (public
/// only so the check modules can be unit-tested from outside).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: OutStatus,
    /// What was seen, in the audit's language.
    pub seen: String,
    /// Where it was read from (`/etc/ssh/sshd_config`, `sshd -T`, `GET /.env`, …).
    pub source: String,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone)]
pub enum OutStatus {
    Is(Status),
    /// The checked thing is absent: mapped through [`CheckDef::missing`].
    Missing,
}

impl Outcome {
    pub fn new(status: Status, seen: String, source: impl Into<String>) -> Outcome {
        Outcome {
            status: OutStatus::Is(status),
            seen,
            source: source.into(),
            details: serde_json::Value::Null,
        }
    }
    pub fn pass(seen: String, source: impl Into<String>) -> Outcome {
        Outcome::new(Status::Pass, seen, source)
    }
    pub fn fail(seen: String, source: impl Into<String>) -> Outcome {
        Outcome::new(Status::Fail, seen, source)
    }
    pub fn warn(seen: String, source: impl Into<String>) -> Outcome {
        Outcome::new(Status::Warn, seen, source)
    }
    pub fn na(reason: String, source: impl Into<String>) -> Outcome {
        Outcome::new(Status::NotApplicable(reason.clone()), reason, source)
    }
    pub fn error(reason: String, source: impl Into<String>) -> Outcome {
        Outcome::new(Status::Error(reason.clone()), reason, source)
    }
    pub fn missing(seen: String, source: impl Into<String>) -> Outcome {
        Outcome {
            status: OutStatus::Missing,
            seen,
            source: source.into(),
            details: serde_json::Value::Null,
        }
    }
    pub fn with_details(mut self, d: serde_json::Value) -> Outcome {
        self.details = d;
        self
    }
}

/// Everything a check may look at.
pub struct Ctx<'a> {
    pub sys: Sys,
    pub cfg: &'a PostureConfig,
    pub lang: Lang,
    pub now: DateTime<Utc>,
    pub url: Option<String>,
    pub attestations: &'a [Attestation],
    pub attest_key: Option<&'a [u8]>,
    pub http: OnceLock<Result<checks::http::Site, String>>,
}

/// How to run an audit.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub config: PostureConfig,
    /// The file system to audit: `/` (default); tests point it at a temp tree.
    pub root: PathBuf,
    /// The shop URL for the HTTP probes (`--url`); overrides `config.url`.
    pub url: Option<String>,
    /// Whether checks may run commands (`sshd -T`, `php -i`, `mariadb`, `apt-get -s`).
    pub commands: bool,
    /// Signed attestations (see [`crate::attest::load_attestations`]).
    pub attestations: Vec<Attestation>,
    /// The key attestations are signed with (the store key's bytes). Without it they are
    /// not trusted.
    pub attest_key: Option<Vec<u8>>,
    /// The clock (tests fix it).
    pub now: DateTime<Utc>,
    /// Only these check ids (empty = all).
    pub only: Vec<String>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            config: PostureConfig::default(),
            root: PathBuf::from("/"),
            url: None,
            commands: true,
            attestations: Vec::new(),
            attest_key: None,
            now: Utc::now(),
            only: Vec::new(),
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub id: String,
    pub checklist: Vec<String>,
    #[serde(flatten)]
    pub status: Status,
    pub severity: Severity,
    pub title: String,
    /// What was seen, in the report's language.
    pub seen: String,
    pub remediation: String,
    pub source: String,
    pub details: serde_json::Value,
}

/// The score of one checklist item.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ItemScore {
    pub item: String,
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub attested: usize,
    pub not_applicable: usize,
    pub error: usize,
    /// `(pass + attested + warn/2) / (pass + attested + warn + fail + error)` in percent;
    /// `None` when nothing applied. ATTESTED is counted apart so a reader sees how much of
    /// the score rests on statements rather than checks.
    pub score: Option<u8>,
}

/// The result of [`audit`].
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub host: String,
    pub lang: Lang,
    pub generated_at: DateTime<Utc>,
    pub results: Vec<CheckResult>,
    pub scores: Vec<ItemScore>,
}

/// Run every check (bounded in time, never panicking out) and score each checklist item.
pub fn audit(opts: &AuditOptions, host: &str, lang: Lang) -> Result<AuditReport, PostureError> {
    if let Some(u) = opts.url.as_ref().or(opts.config.url.as_ref())
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        return Err(PostureError::Setting {
            setting: "posture.url / --url".into(),
            reason: format!("`{u}` is not an http:// URL"),
        });
    }
    for id in opts.config.skip.iter().chain(&opts.only) {
        if !catalog().iter().any(|d| d.id == id) {
            return Err(PostureError::Setting {
                setting: "posture.skip".into(),
                reason: format!("unknown check id `{id}`"),
            });
        }
    }
    let ctx = Ctx {
        sys: Sys {
            root: opts.root.clone(),
            commands: opts.commands,
            timeout: Duration::from_secs(opts.config.timeout_secs.clamp(1, 120)),
        },
        cfg: &opts.config,
        lang,
        now: opts.now,
        url: opts.url.clone().or_else(|| opts.config.url.clone()),
        attestations: &opts.attestations,
        attest_key: opts.attest_key.as_deref(),
        http: OnceLock::new(),
    };
    let mut results = Vec::new();
    for def in catalog() {
        if !opts.only.is_empty() && !opts.only.iter().any(|o| o == def.id) {
            continue;
        }
        let out = if opts.config.skip.iter().any(|s| s == def.id) {
            Outcome::na(
                tr!(lang, "skipped by config", "設定によりスキップ"),
                "posture.skip",
            )
        } else {
            let run = def.run;
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&ctx))) {
                Ok(o) => o,
                Err(_) => Outcome::error(
                    tr!(lang, "the check crashed", "チェックが異常終了しました"),
                    def.id,
                ),
            }
        };
        results.push(finish(def, out, lang));
    }
    let scores = score(&results);
    Ok(AuditReport {
        host: host.to_string(),
        lang,
        generated_at: opts.now,
        results,
        scores,
    })
}

fn finish(def: &CheckDef, out: Outcome, lang: Lang) -> CheckResult {
    let status = match out.status {
        OutStatus::Is(s) => s,
        OutStatus::Missing => match def.missing {
            Missing::NotApplicable => Status::NotApplicable(out.seen.clone()),
            Missing::Fail => Status::Fail,
            Missing::Warn => Status::Warn,
        },
    };
    CheckResult {
        id: def.id.to_string(),
        checklist: def.checklist.iter().map(|s| s.to_string()).collect(),
        severity: match status {
            Status::Fail => def.severity,
            Status::Warn => Severity::Low,
            _ => Severity::Info,
        },
        status,
        title: def.title(lang).to_string(),
        seen: out.seen,
        remediation: def.remediation(lang).to_string(),
        source: out.source,
        details: out.details,
    }
}

/// Per-checklist-item scores, in checklist order (20-1.x first, then other frameworks).
pub fn score(results: &[CheckResult]) -> Vec<ItemScore> {
    let mut map: BTreeMap<String, ItemScore> = BTreeMap::new();
    for r in results {
        for item in &r.checklist {
            let s = map.entry(item.clone()).or_insert_with(|| ItemScore {
                item: item.clone(),
                ..Default::default()
            });
            match r.status {
                Status::Pass => s.pass += 1,
                Status::Fail => s.fail += 1,
                Status::Warn => s.warn += 1,
                Status::Attested => s.attested += 1,
                Status::NotApplicable(_) => s.not_applicable += 1,
                Status::Error(_) => s.error += 1,
            }
        }
    }
    let mut v: Vec<ItemScore> = map
        .into_values()
        .map(|mut s| {
            let denom = s.pass + s.attested + s.warn + s.fail + s.error;
            s.score = (denom > 0).then(|| {
                let num = 2 * (s.pass + s.attested) + s.warn;
                ((num * 100) / (2 * denom)) as u8
            });
            s
        })
        .collect();
    v.sort_by_key(|s| (!s.item.starts_with("20-1"), s.item.clone()));
    v
}

impl AuditReport {
    /// One finding per check: `posture.fail` (FAIL, WARN), `posture.pass` (PASS,
    /// ATTESTED), `posture.unknown` (N/A, ERROR).
    pub fn findings(&self) -> Vec<Finding> {
        let lang = self.lang;
        self.results
            .iter()
            .map(|r| {
                let kind = match r.status {
                    Status::Fail | Status::Warn => Kind::PostureFail,
                    Status::Pass | Status::Attested => Kind::PosturePass,
                    Status::NotApplicable(_) | Status::Error(_) => Kind::PostureUnknown,
                };
                let label = r.status.label();
                let (title, seen) = (&r.title, &r.seen);
                let summary = tr!(lang, "{label} {title}: {seen}", "{label} {title}: {seen}");
                let checklist: Vec<&str> = r.checklist.iter().map(String::as_str).collect();
                let mut f = Finding::new(kind, r.severity, self.generated_at, &self.host, summary)
                    .with_checklist(&checklist)
                    .with_evidence(serde_json::json!({
                        "status": label,
                        "reason": match &r.status {
                            Status::NotApplicable(s) | Status::Error(s) => Some(s),
                            _ => None,
                        },
                        "seen": r.seen,
                        "source": r.source,
                        "remediation": r.remediation,
                        "details": r.details,
                    }));
                f.check = Some(r.id.clone());
                f
            })
            .collect()
    }

    /// The result of one check, by id.
    pub fn get(&self, id: &str) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.id == id)
    }

    /// Whether any check failed.
    pub fn any_fail(&self) -> bool {
        self.results.iter().any(|r| r.status == Status::Fail)
    }
}
