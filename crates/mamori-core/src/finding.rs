//! The finding: the one thing every detector reports (`shared/spec/FINDINGS.md`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The label in the user's language.
    pub fn label(self, lang: crate::Lang) -> &'static str {
        match (lang, self) {
            (crate::Lang::En, s) => match s {
                Severity::Info => "INFO",
                Severity::Low => "LOW",
                Severity::Medium => "MEDIUM",
                Severity::High => "HIGH",
                Severity::Critical => "CRITICAL",
            },
            (crate::Lang::Ja, s) => match s {
                Severity::Info => "情報",
                Severity::Low => "低",
                Severity::Medium => "中",
                Severity::High => "高",
                Severity::Critical => "緊急",
            },
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!(
                "unknown severity `{s}`: use info, low, medium, high or critical"
            )),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The defensive layer a finding belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Entrance,
    Internal,
    Exit,
    Page,
    Posture,
}

macro_rules! kinds {
    ($( $variant:ident = $name:literal, $layer:ident; )*) => {
        /// Stable, dotted finding kinds. Tests and scripts match on the string form.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Kind {
            $( #[serde(rename = $name)] $variant, )*
        }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $( Kind::$variant => $name, )* }
            }

            pub fn layer(self) -> Layer {
                match self { $( Kind::$variant => Layer::$layer, )* }
            }

            pub fn parse(s: &str) -> Option<Kind> {
                match s { $( $name => Some(Kind::$variant), )* _ => None }
            }
        }
    };
}

kinds! {
    FileAdded = "file.added", Internal;
    FileModified = "file.modified", Internal;
    FileDeleted = "file.deleted", Internal;
    FileMeta = "file.meta", Internal;
    FileRestored = "file.restored", Internal;
    FileQuarantined = "file.quarantined", Internal;
    FileDenied = "file.denied", Internal;
    BaselineTampered = "baseline.tampered", Internal;
    BaselineCreated = "baseline.created", Internal;
    BaselineApproved = "baseline.approved", Internal;
    MalwareWebshell = "malware.webshell", Internal;
    MalwareSkimmer = "malware.skimmer", Internal;
    MalwareObfuscated = "malware.obfuscated", Internal;
    DataCardStash = "data.card_stash", Internal;
    DataGrowing = "data.growing", Internal;
    AttackRequest = "attack.request", Entrance;
    AttackBruteforce = "attack.bruteforce", Entrance;
    AttackCredentialStuffing = "attack.credential_stuffing", Entrance;
    AttackPasswordSpraying = "attack.password_spraying", Entrance;
    AttackCardTesting = "attack.card_testing", Entrance;
    AttackCampaign = "attack.campaign", Entrance;
    BlockAdded = "block.added", Entrance;
    BlockRemoved = "block.removed", Entrance;
    EgressNewDestination = "egress.new_destination", Exit;
    EgressBeacon = "egress.beacon", Exit;
    EgressCheckoutCorrelated = "egress.checkout_correlated", Exit;
    EgressVolume = "egress.volume", Exit;
    EgressDnsTunnel = "egress.dns_tunnel", Exit;
    PageScriptAdded = "page.script_added", Page;
    PageScriptChanged = "page.script_changed", Page;
    PageFormChanged = "page.form_changed", Page;
    PageHeaderChanged = "page.header_changed", Page;
    PageRequestAdded = "page.request_added", Page;
    PageCspViolation = "page.csp_violation", Page;
    PostureFail = "posture.fail", Posture;
    PosturePass = "posture.pass", Posture;
    PostureUnknown = "posture.unknown", Posture;
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn ser_time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// One finding, in the wire form of FINDINGS.md. Optional key fields are omitted when
/// empty so each kind carries only what it needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    pub id: String,
    pub kind: Kind,
    pub layer: Layer,
    pub severity: Severity,
    #[serde(serialize_with = "ser_time")]
    pub time: DateTime<Utc>,
    #[serde(serialize_with = "ser_time")]
    pub detected_at: DateTime<Utc>,
    pub host: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub root: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ips: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub check: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub url: Option<String>,
    pub checklist: Vec<String>,
    pub evidence: serde_json::Value,
}

impl Finding {
    /// A new finding of `kind`, happening at `time`, detected now.
    pub fn new(
        kind: Kind,
        severity: Severity,
        time: DateTime<Utc>,
        host: &str,
        summary: String,
    ) -> Finding {
        Finding {
            id: new_id(),
            kind,
            layer: kind.layer(),
            severity,
            time,
            detected_at: Utc::now(),
            host: host.to_string(),
            summary,
            path: None,
            root: None,
            ip: None,
            ips: None,
            dest: None,
            check: None,
            url: None,
            checklist: Vec::new(),
            evidence: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn with_root(mut self, root: impl Into<String>) -> Self {
        self.root = Some(root.into());
        self
    }

    pub fn with_checklist(mut self, ids: &[&str]) -> Self {
        self.checklist = ids.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn with_evidence(mut self, evidence: serde_json::Value) -> Self {
        self.evidence = evidence;
        self
    }

    /// The JSON Lines form: one line, no trailing newline. Every string field has card
    /// numbers masked as a last line of defence.
    pub fn to_json_line(&self) -> String {
        // Serialising a Finding cannot fail: every field is a plain value.
        let line = serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"finding could not be serialised: {e}\"}}"));
        crate::pan::mask_pans(&line).into_owned()
    }
}

/// A unique id, sortable by time (ULID).
pub fn new_id() -> String {
    ulid::Ulid::generate().to_string()
}

/// The host name findings are about: config `host`, else the kernel's node name.
pub fn local_host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_round_trip_and_layers() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(*k));
            let json = serde_json::to_string(k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(Kind::AttackCampaign.layer(), Layer::Entrance);
        assert_eq!(Kind::EgressBeacon.layer(), Layer::Exit);
    }

    #[test]
    fn wire_form_has_contract_fields() {
        let t = DateTime::parse_from_rfc3339("2026-11-24T10:00:00.123Z")
            .unwrap()
            .with_timezone(&Utc);
        let f = Finding::new(
            Kind::FileModified,
            Severity::Critical,
            t,
            "shop-1",
            "changed".into(),
        )
        .with_path("app/x.php")
        .with_checklist(&["20-1"]);
        let v: serde_json::Value = serde_json::from_str(&f.to_json_line()).unwrap();
        for key in [
            "id",
            "kind",
            "layer",
            "severity",
            "time",
            "detected_at",
            "host",
            "summary",
            "checklist",
            "evidence",
            "path",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["time"], "2026-11-24T10:00:00.123Z");
        assert_eq!(v["layer"], "internal");
        assert!(v.get("ip").is_none());
    }

    #[test]
    fn severity_order() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Low > Severity::Info);
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert!("urgent".parse::<Severity>().is_err());
    }
}
