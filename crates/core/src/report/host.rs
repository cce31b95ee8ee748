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
    /// The whole host as one report, for a reader of one report per host (the fleet): the
    /// host's namespace's report (or the first namespace's), with every other namespace's
    /// findings and the whole-host ones added — each titled and evidenced with the namespace it
    /// is about, its service id unchanged — and every limit. The other namespaces' services are
    /// not listed (their ids would repeat the host's); their findings still name them.
    pub fn flattened(&self) -> Report {
        let base = self.namespaces.iter().position(|n| n.namespace.host).unwrap_or(0);
        let Some(first) = self.namespaces.get(base) else {
            return Report {
                schema: super::REPORT_SCHEMA.to_string(),
                tool_version: self.tool_version.clone(),
                host: super::ReportHost {
                    hostname: self.host.hostname.clone(),
                    kernel: self.host.kernel.clone(),
                    netns: String::new(),
                    privileged: self.host.privileged,
                    limits: self.host.limits.clone(),
                },
                services: Vec::new(),
                findings: Vec::new(),
                activity: Vec::new(),
            };
        };
        let mut report = first.report.clone();
        report.host.limits.extend(self.host.limits.iter().cloned());
        let in_namespace = |mut f: Finding, n: &NamespaceIdentity| {
            let label = super::shown::line(&n.label()).into_owned();
            f.title = format!("in {label}: {}", f.title).into();
            f.evidence.insert(0, format!("network namespace {} ({label})", n.id));
            f
        };
        report.host.privileged &= self.host.privileged;
        for (_, n) in self.namespaces.iter().enumerate().filter(|(i, _)| *i != base) {
            report
                .findings
                .extend(n.report.findings.iter().cloned().map(|f| in_namespace(f, &n.namespace)));
            report
                .host
                .limits
                .extend(n.report.host.limits.iter().map(|l| format!("{}: {l}", n.namespace.id)));
        }
        for f in &self.findings {
            let finding = match self.namespace(&f.netns) {
                Some(n) if !n.namespace.host => in_namespace(f.finding.clone(), &n.namespace),
                _ => f.finding.clone(),
            };
            report.findings.push(finding);
        }
        super::sort_findings(&mut report.findings);
        report
    }

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
    fn flattened_the_host_keeps_its_findings_and_names_every_other_namespace() {
        use crate::checks::host::testing::{namespace, set};
        let host = namespace(1, true);
        let mut container = namespace(2, false);
        container.namespace.ip_netns = vec!["web".into()];
        container
            .facts
            .sysctls
            .0
            .insert("net.ipv4.conf.all.route_localnet".into(), "1".into());
        let report = crate::audit_host::audit_host(&set(vec![host, container]));
        let flat = report.flattened();
        let own = report.namespaces[0].report.findings.len();
        let theirs = report.namespaces[1].report.findings.len();
        assert_eq!(flat.findings.len(), own + theirs + report.findings.len());
        let route = flat
            .findings
            .iter()
            .find(|f| f.check == CheckId::NetRouteLocalnet)
            .expect("the container's route_localnet finding");
        assert!(route.title.starts_with("in ip netns web: "), "{}", route.title);
        assert_eq!(route.evidence[0], "network namespace net:[2] (ip netns web)");
        assert_eq!(flat.host.netns, report.namespaces[0].report.host.netns);
        assert!(
            flat.findings.iter().filter(|f| !f.title.starts_with("in ")).count() >= own,
            "the host's own findings keep their titles"
        );
    }

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
