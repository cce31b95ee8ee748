//! The report schema `loopwarden.report/v1` (see `shared/design.md`): services and findings.

use crate::checks::CheckId;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// The schema tag of every JSON report.
pub const REPORT_SCHEMA: &str = "loopwarden.report/v1";

/// Who is attacking the boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attacker {
    /// A neighbour on a directly attached network segment.
    Lan,
    /// Any client that can reach one of the host's non-loopback listeners.
    Remote,
    /// Another user (uid) on this host.
    LocalUser,
    /// A web page in a browser running on this host.
    Browser,
}

impl Attacker {
    /// The schema's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Attacker::Lan => "lan",
            Attacker::Remote => "remote",
            Attacker::LocalUser => "local-user",
            Attacker::Browser => "browser",
        }
    }
}

/// How bad a finding is, from `info` to `critical`. Ordered: `Info < Low < … < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, nothing to fix on its own.
    Info,
    /// A weakness that needs another flaw to matter.
    Low,
    /// Reachable by an unintended party under common conditions.
    Medium,
    /// Reachable by an unintended party now.
    High,
    /// Reachable from the network by anyone on the segment, now.
    Critical,
}

impl Severity {
    /// The schema's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not one of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: expected one of info, low, medium, high, critical")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownSeverity(s.to_string()))
    }
}

/// Whether the path a finding describes is usable now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The path exists.
    Open,
    /// The path exists in principle but something (a rule, a sysctl, the lab's outcome) stops it.
    Blocked,
    /// Could not be decided from what was seen. Never to be read as safe.
    Unknown,
}

impl Status {
    /// The schema's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Blocked => "blocked",
            Status::Unknown => "unknown",
        }
    }

    /// The status of a path that is usable when any of `parts` is: open when one is open, else
    /// unknown when one is unknown, blocked only when every part is blocked; `None` without
    /// parts. (The derived order sorts for display — Open, Blocked, Unknown — and its minimum
    /// would read an unknown part as blocked.)
    pub fn worst(parts: impl IntoIterator<Item = Status>) -> Option<Status> {
        parts.into_iter().fold(None, |acc, s| {
            Some(match (acc, s) {
                (Some(Status::Open), _) | (_, Status::Open) => Status::Open,
                (Some(Status::Unknown), _) | (_, Status::Unknown) => Status::Unknown,
                _ => Status::Blocked,
            })
        })
    }
}

/// How the status was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Read from configuration and kernel state.
    Inspected,
    /// Confirmed by asking the service itself (`audit --probe`).
    Probed,
    /// Confirmed by replaying the attack in the lab (`audit --prove`).
    Proven,
}

impl Confidence {
    /// The schema's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Inspected => "inspected",
            Confidence::Probed => "probed",
            Confidence::Proven => "proven",
        }
    }
}

/// How a service is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// `127.0.0.0/8`, `::1` or `::ffff:127.0.0.0/104`.
    Loopback,
    /// `0.0.0.0` or `::`.
    Wildcard,
    /// A specific non-loopback address.
    Address,
    /// A Unix socket with a filesystem path.
    UnixPath,
    /// An abstract Unix socket.
    UnixAbstract,
}

impl Scope {
    /// The schema's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Loopback => "loopback",
            Scope::Wildcard => "wildcard",
            Scope::Address => "address",
            Scope::UnixPath => "unix-path",
            Scope::UnixAbstract => "unix-abstract",
        }
    }
}

/// The process behind a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceProcess {
    /// Process id.
    pub pid: u32,
    /// Short name (`comm`).
    pub name: String,
    /// Executable path, when readable.
    pub exe: Option<String>,
    /// Real uid.
    pub uid: u32,
}

/// One local service: a listening TCP socket, a bound UDP socket or a named Unix socket, as the
/// report names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Stable id: `tcp:127.0.0.1:7001`, `udp:[::1]:53`, `unix:/run/x.sock`, `unix:@abstract`.
    pub id: String,
    /// `tcp`, `udp` or `unix`.
    pub proto: String,
    /// The bound address (inet services).
    pub address: Option<String>,
    /// The bound port (inet services).
    pub port: Option<u16>,
    /// The socket path or `@name` (Unix services).
    pub path: Option<String>,
    /// How it is bound.
    pub scope: Scope,
    /// The owning process, when known.
    pub process: Option<ServiceProcess>,
}

/// One way the boundary of a service (or of the whole host) breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The check id (`net.route-localnet` …).
    pub check: CheckId,
    /// The service id, or `None` for host-wide findings.
    pub service: Option<String>,
    /// Who can use the path.
    pub attacker: Attacker,
    /// How bad it is.
    pub severity: Severity,
    /// Whether the path is usable now.
    pub status: Status,
    /// How the status was established.
    pub confidence: Confidence,
    /// One line saying what is wrong. Most titles are fixed texts, shared by every finding
    /// that uses them rather than copied into each.
    pub title: Cow<'static, str>,
    /// The facts, rules, requests or packets that show it.
    pub evidence: Vec<String>,
    /// What to change to close it (a fixed text, shared, for most checks).
    pub fix: Cow<'static, str>,
    /// What within the service (or the host) the finding is about, when one check reports
    /// several findings there — `ipv4` and `ipv6` for the per-family anti-spoof findings. Part of
    /// a finding's identity for [`Report::merge_active`]; omitted from JSON when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// Identity of the audited host, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportHost {
    /// Hostname.
    pub hostname: String,
    /// Kernel release.
    pub kernel: String,
    /// Network namespace.
    pub netns: String,
    /// Whether every socket owner could be seen.
    pub privileged: bool,
    /// What could not be seen, as `scope: detail` lines.
    pub limits: Vec<String>,
}

/// A whole audit: host, services and findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`REPORT_SCHEMA`].
    pub schema: String,
    /// The version of loopwarden that produced the report.
    pub tool_version: String,
    /// The audited host.
    pub host: ReportHost,
    /// Every local service seen.
    pub services: Vec<Service>,
    /// Every finding, most severe first.
    pub findings: Vec<Finding>,
    /// What the active stages did — what `--probe` asked and `--prove` fired, what they left
    /// alone and why — so that a run that found nothing still says what it tried. Omitted from
    /// JSON when empty (a plain audit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activity: Vec<String>,
}

impl Report {
    /// Findings that count against `threshold`: at or above it and not `blocked`. `unknown`
    /// counts — an unknown is never taken as safe.
    pub fn failing(&self, threshold: Severity) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(move |f| f.severity >= threshold && f.status != Status::Blocked)
    }

    /// Merges findings from an active stage (probe or lab) into the report. For a finding of the
    /// same check, service and subject, an established answer (open or blocked) from the active
    /// stage replaces the status, title and confidence — the attack outranks the reading — while
    /// an active `unknown` establishes nothing: the old status and confidence stay (an inspected
    /// `open` is not weakened, and `unknown · proven` would be a contradiction). Either way the
    /// new evidence is added; a path proven open takes the higher severity. Any other finding is
    /// added.
    pub fn merge_active(&mut self, active: Vec<Finding>) {
        // The first finding with a key is the one merged into, as a scan would find it.
        let mut index: HashMap<(CheckId, Option<String>, Option<String>), usize> = HashMap::new();
        for (i, f) in self.findings.iter().enumerate() {
            index
                .entry((f.check, f.service.clone(), f.subject.clone()))
                .or_insert(i);
        }
        for new in active {
            let key = (new.check, new.service.clone(), new.subject.clone());
            match index.get(&key).and_then(|&i| self.findings.get_mut(i)) {
                Some(old) => {
                    if new.status != Status::Unknown {
                        old.status = new.status;
                        old.title = new.title;
                        old.confidence = old.confidence.max(new.confidence);
                    }
                    // A path proven open is at least as severe as the active stage rates it; a
                    // refutation or an inconclusive attempt leaves the rating alone.
                    if new.status == Status::Open {
                        old.severity = old.severity.max(new.severity);
                    }
                    old.evidence.extend(new.evidence);
                }
                None => {
                    index.insert(key, self.findings.len());
                    self.findings.push(new);
                }
            }
        }
        sort_findings(&mut self.findings);
    }
}

/// Orders findings most severe first, then by service and check id (as spelled), so reports are
/// stable.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.service.cmp(&b.service))
            .then_with(|| a.check.as_str().cmp(b.check.as_str()))
            .then_with(|| a.evidence.cmp(&b.evidence))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_is_open_then_unknown_then_blocked() {
        use Status::*;
        assert_eq!(Status::worst([]), None);
        assert_eq!(Status::worst([Blocked, Unknown]), Some(Unknown));
        assert_eq!(Status::worst([Unknown, Blocked]), Some(Unknown));
        assert_eq!(Status::worst([Blocked, Open, Unknown]), Some(Open));
        assert_eq!(Status::worst([Blocked, Blocked]), Some(Blocked));
    }

    #[test]
    fn severity_parses_case_insensitively_and_rejects_others() {
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert_eq!(
            "severe".parse::<Severity>().unwrap_err().to_string(),
            "unknown severity \"severe\": expected one of info, low, medium, high, critical"
        );
    }

    fn report_of(findings: Vec<Finding>) -> Report {
        Report {
            schema: REPORT_SCHEMA.into(),
            tool_version: "0".into(),
            host: ReportHost {
                hostname: "h".into(),
                kernel: "k".into(),
                netns: "n".into(),
                privileged: true,
                limits: vec![],
            },
            services: vec![],
            findings,
            activity: vec![],
        }
    }

    #[test]
    fn merge_matches_check_service_and_subject() {
        let finding = |subject: &str, status, confidence| Finding {
            check: CheckId::NetNoLoopbackAntispoof,
            service: None,
            attacker: Attacker::Lan,
            severity: Severity::Medium,
            status,
            confidence,
            title: subject.to_string().into(),
            evidence: vec![format!("{subject} {confidence:?}")],
            fix: Default::default(),
            subject: Some(subject.into()),
        };
        let mut report = report_of(vec![
            finding("ipv4", Status::Open, Confidence::Inspected),
            finding("ipv6", Status::Open, Confidence::Inspected),
        ]);
        report.merge_active(vec![finding("ipv4", Status::Blocked, Confidence::Proven)]);
        assert_eq!(report.findings.len(), 2);
        let v4 = report.findings.iter().find(|f| f.title == "ipv4").expect("ipv4");
        let v6 = report.findings.iter().find(|f| f.title == "ipv6").expect("ipv6");
        assert_eq!(
            (v4.status, v4.confidence, v4.evidence.len()),
            (Status::Blocked, Confidence::Proven, 2)
        );
        assert_eq!((v6.status, v6.confidence), (Status::Open, Confidence::Inspected));
    }

    #[test]
    fn an_active_unknown_never_weakens_an_established_answer() {
        let finding = |status, confidence, title: &str| Finding {
            check: crate::checks::CheckId::ProtoUdpLoopback,
            service: Some("udp:127.0.0.1:53".into()),
            attacker: Attacker::Lan,
            severity: Severity::Medium,
            status,
            confidence,
            title: title.to_string().into(),
            evidence: vec![title.into()],
            fix: Default::default(),
            subject: None,
        };
        let mut report = report_of(vec![finding(Status::Open, Confidence::Inspected, "inspected")]);
        report.merge_active(vec![finding(Status::Unknown, Confidence::Proven, "lab could not tell")]);
        let f = &report.findings[0];
        assert_eq!(
            (f.status, f.confidence, &*f.title),
            (Status::Open, Confidence::Inspected, "inspected")
        );
        assert_eq!(f.evidence, vec!["inspected", "lab could not tell"]);
        report.merge_active(vec![finding(Status::Blocked, Confidence::Proven, "refuted")]);
        let f = &report.findings[0];
        assert_eq!(
            (f.status, f.confidence, &*f.title),
            (Status::Blocked, Confidence::Proven, "refuted")
        );
    }

    #[test]
    fn blocked_findings_do_not_fail_but_unknown_ones_do() {
        let finding = |status| Finding {
            check: CheckId::NetRouteLocalnet,
            service: None,
            attacker: Attacker::Lan,
            severity: Severity::High,
            status,
            confidence: Confidence::Inspected,
            title: Default::default(),
            evidence: vec![],
            fix: Default::default(),
            subject: None,
        };
        let report = report_of(vec![finding(Status::Blocked), finding(Status::Unknown)]);
        assert_eq!(report.failing(Severity::Low).count(), 1);
        assert_eq!(report.failing(Severity::Critical).count(), 0);
    }
}
