//! The whole-host report (`loopwarden audit --all-netns`, JSON schema
//! `loopwarden.host-report/v1`): every network namespace named and audited — each audit an
//! unchanged `loopwarden.report/v1` document — plus the findings only the whole view shows.

use super::{Finding, Report, Severity};
use crate::facts::NamespaceIdentity;
use serde::{Deserialize, Serialize};

/// The schema tag of the whole-host report.
pub const HOST_REPORT_SCHEMA: &str = "loopwarden.host-report/v1";

/// Every namespace's audit and the host-level findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostReport {
    /// Always [`HOST_REPORT_SCHEMA`].
    pub schema: String,
    /// The version of loopwarden that produced the report.
    pub tool_version: String,
    /// The host.
    pub host: HostSummary,
    /// Every namespace, the host's first, each with its own audit.
    pub namespaces: Vec<NamespaceReport>,
    /// Findings across namespaces (`netns.*` checks), most severe first.
    pub findings: Vec<HostFinding>,
}

/// The host as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSummary {
    /// Hostname.
    pub hostname: String,
    /// Kernel release.
    pub kernel: String,
    /// Whether collection was privileged.
    pub privileged: bool,
    /// What could not be seen across namespaces, as `scope: detail` lines.
    pub limits: Vec<String>,
}

/// One namespace: who it is and its audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceReport {
    /// Who the namespace is (container, pod, `ip netns` name, processes).
    pub namespace: NamespaceIdentity,
    /// Its audit, a `loopwarden.report/v1` document.
    pub report: Report,
}

/// A finding of the whole view, about a service or the whole of one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFinding {
    /// The namespace the finding is about (`net:[INODE]`); `service`, when set, is one of its
    /// services.
    pub netns: String,
    /// The finding, as in a namespace's report.
    #[serde(flatten)]
    pub finding: Finding,
}

impl HostReport {
    /// Whether anything — a namespace's finding or a host-level one — is at or above `threshold`
    /// and not blocked (`unknown` counts).
    pub fn fails(&self, threshold: Severity) -> bool {
        self.namespaces
            .iter()
            .any(|n| n.report.failing(threshold).next().is_some())
            || self
                .findings
                .iter()
                .any(|f| f.finding.severity >= threshold && f.finding.status != super::Status::Blocked)
    }

    /// The namespace with id `netns`.
    pub fn namespace(&self, netns: &str) -> Option<&NamespaceReport> {
        self.namespaces.iter().find(|n| n.namespace.id == netns)
    }
}

/// Orders host findings as [`super::sort_findings`] orders a report's, then by namespace.
pub fn sort_host_findings(findings: &mut [HostFinding]) {
    findings.sort_by(|a, b| {
        b.finding
            .severity
            .cmp(&a.finding.severity)
            .then_with(|| a.netns.cmp(&b.netns))
            .then_with(|| a.finding.service.cmp(&b.finding.service))
            .then_with(|| a.finding.check.as_str().cmp(b.finding.check.as_str()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::CheckId;
    use crate::report::{Attacker, Confidence, Status};

    #[test]
    fn a_host_finding_is_a_finding_with_its_namespace() {
        let finding = HostFinding {
            netns: "net:[4026532001]".into(),
            finding: Finding {
                check: CheckId::NetnsUnprotectedLoopback,
                service: None,
                attacker: Attacker::Lan,
                severity: Severity::High,
                status: Status::Open,
                confidence: Confidence::Inspected,
                title: "t".into(),
                evidence: vec![],
                fix: "f".into(),
                subject: None,
                reaches: Vec::new(),
            },
        };
        let json = serde_json::to_value(&finding).expect("serialises");
        assert_eq!(json["netns"], "net:[4026532001]");
        assert_eq!(json["check"], "netns.unprotected-loopback");
        assert_eq!(json["severity"], "high");
        let back: HostFinding = serde_json::from_value(json).expect("parses back");
        assert_eq!(back, finding);
    }
}
