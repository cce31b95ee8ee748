//! A fleet: many hosts' snapshots (collected by an engine the operator already runs — the
//! Ansible role in `contrib/ansible/`) audited into one report: hosts × checks, the worst paths
//! first, and each host's full report one step away. JSON schema `loopwarden.fleet/v1`.
//!
//! Pure: snapshots (already parsed, or the reason they could not be) in, [`Fleet`] out. A
//! snapshot is hostile input like any other; one that cannot be audited is a host whose state is
//! unknown — shown, counted as failing, never taken as clean.

use crate::checks::CheckId;
use crate::facts::HostFacts;
use crate::report::{Attacker, Confidence, Report, Severity, Status};
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};

/// The schema tag of the fleet's JSON.
pub const FLEET_SCHEMA: &str = "loopwarden.fleet/v1";

/// Findings of one host (or one check on one host) by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Open paths.
    pub open: usize,
    /// Paths whose status could not be established.
    pub unknown: usize,
    /// Paths something stops.
    pub blocked: usize,
}

impl Counts {
    fn add(&mut self, status: Status) {
        match status {
            Status::Open => self.open += 1,
            Status::Unknown => self.unknown += 1,
            Status::Blocked => self.blocked += 1,
        }
    }
}

/// One cell of the hosts × checks table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckCell {
    /// The check.
    pub check: CheckId,
    /// Its findings on this host.
    #[serde(flatten)]
    pub counts: Counts,
}

/// The worst finding of a host that is not blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Worst {
    /// Its severity.
    pub severity: Severity,
    /// Open or unknown.
    pub status: Status,
}

/// One host of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetHost {
    /// The host's name in the fleet: its snapshot's file name without `.json` (what the Ansible
    /// role names it: the inventory name), made unique.
    pub name: String,
    /// The snapshot file, as given.
    pub source: String,
    /// Why the snapshot could not be audited (the host's state is then unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its findings by status.
    pub counts: Counts,
    /// Its worst open or unknown finding.
    pub worst: Option<Worst>,
    /// Its findings per check (only checks with findings).
    pub checks: Vec<CheckCell>,
    /// Its whole report (`loopwarden.report/v1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

impl FleetHost {
    /// Audits one host's snapshot (or records why there is none to audit).
    pub fn audit(name: String, source: String, snapshot: Result<HostFacts, String>) -> FleetHost {
        let report = match snapshot {
            Ok(facts) => crate::audit(&facts),
            Err(error) => {
                return FleetHost {
                    name,
                    source,
                    error: Some(error),
                    counts: Counts::default(),
                    worst: None,
                    checks: Vec::new(),
                    report: None,
                }
            }
        };
        let mut counts = Counts::default();
        let mut checks: Vec<CheckCell> = Vec::new();
        for f in &report.findings {
            counts.add(f.status);
            match checks.iter_mut().find(|c| c.check == f.check) {
                Some(cell) => cell.counts.add(f.status),
                None => {
                    let mut cell = CheckCell {
                        check: f.check,
                        counts: Counts::default(),
                    };
                    cell.counts.add(f.status);
                    checks.push(cell);
                }
            }
        }
        checks.sort_by_key(|c| CheckId::ALL.iter().position(|id| *id == c.check));
        let worst = report
            .findings
            .iter()
            .filter(|f| f.status != Status::Blocked)
            .map(|f| (f.status == Status::Open, f.severity, f.status))
            .max()
            .map(|(_, severity, status)| Worst { severity, status });
        FleetHost {
            name,
            source,
            error: None,
            counts,
            worst,
            checks,
            report: Some(report),
        }
    }

    /// Whether the host counts against `threshold`: a finding at or above it that is not
    /// blocked, or no usable snapshot at all.
    pub fn failing(&self, threshold: Severity) -> bool {
        match &self.report {
            None => true,
            Some(r) => r.failing(threshold).next().is_some(),
        }
    }

    /// Ordering key, worst first: no usable snapshot, then open before unknown, then severity.
    fn rank(&self) -> (bool, bool, Option<Severity>, usize) {
        (
            self.error.is_some(),
            self.worst.is_some_and(|w| w.status == Status::Open),
            self.worst.map(|w| w.severity),
            self.counts.open + self.counts.unknown,
        )
    }
}

/// One path of one host, for the fleet's list of the worst.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetPath {
    /// The host's fleet name.
    pub host: String,
    /// The check.
    pub check: CheckId,
    /// The service, `None` when host-wide.
    pub service: Option<String>,
    /// Who.
    pub attacker: Attacker,
    /// How bad.
    pub severity: Severity,
    /// Open or unknown.
    pub status: Status,
    /// How it was established.
    pub confidence: Confidence,
    /// What is wrong.
    pub title: String,
}

/// The whole fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fleet {
    /// Always [`FLEET_SCHEMA`].
    pub schema: String,
    /// The loopwarden that audited the snapshots.
    pub tool_version: String,
    /// The columns of the hosts × checks table: every check with a finding on some host, in
    /// catalogue order.
    pub checks: Vec<CheckId>,
    /// The hosts, worst first.
    pub hosts: Vec<FleetHost>,
    /// Every open or unknown path of every host, worst first (open before unknown, then
    /// severity, then confidence).
    pub worst_paths: Vec<FleetPath>,
}

impl Fleet {
    /// Assembles audited hosts into the fleet report. Host names are made unique (`name (2)`).
    pub fn assemble(mut hosts: Vec<FleetHost>) -> Fleet {
        let mut seen = BTreeSet::new();
        for host in &mut hosts {
            let mut name = host.name.clone();
            let mut n = 1;
            while !seen.insert(name.clone()) {
                n += 1;
                name = format!("{} ({n})", host.name);
            }
            host.name = name;
        }
        hosts.sort_by(|a, b| b.rank().cmp(&a.rank()).then_with(|| a.name.cmp(&b.name)));
        let used: HashSet<CheckId> = hosts.iter().flat_map(|h| h.checks.iter().map(|c| c.check)).collect();
        let checks = CheckId::ALL.iter().copied().filter(|c| used.contains(c)).collect();
        let mut worst_paths: Vec<FleetPath> = hosts
            .iter()
            .filter_map(|h| h.report.as_ref().map(|r| (h, r)))
            .flat_map(|(h, r)| {
                r.findings
                    .iter()
                    .filter(|f| f.status != Status::Blocked)
                    .map(|f| FleetPath {
                        host: h.name.clone(),
                        check: f.check,
                        service: f.service.clone(),
                        attacker: f.attacker,
                        severity: f.severity,
                        status: f.status,
                        confidence: f.confidence,
                        title: f.title.to_string(),
                    })
            })
            .collect();
        worst_paths.sort_by(|a, b| {
            (b.status == Status::Open, b.severity, b.confidence)
                .cmp(&(a.status == Status::Open, a.severity, a.confidence))
                .then_with(|| a.host.cmp(&b.host))
                .then_with(|| a.check.as_str().cmp(b.check.as_str()))
                .then_with(|| a.service.cmp(&b.service))
        });
        Fleet {
            schema: FLEET_SCHEMA.to_string(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            checks,
            hosts,
            worst_paths,
        }
    }

    /// Whether any host counts against `threshold` (see [`FleetHost::failing`]).
    pub fn failing(&self, threshold: Severity) -> bool {
        self.hosts.iter().any(|h| h.failing(threshold))
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<&FleetHost> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::checks::test_facts::{base, inet};
    use crate::facts::Protocol;

    /// A snapshot whose (empty) firewall was read, so that paths are decided, not unknown.
    pub(crate) fn base_read() -> HostFacts {
        let mut facts = base();
        facts.firewall.nft_json = Some(serde_json::json!({"nftables": []}));
        facts
    }

    pub(crate) fn exposed() -> HostFacts {
        let mut facts = base_read();
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.eth0.route_localnet".into(), "1".into());
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 7001));
        facts
    }

    fn wildcard() -> HostFacts {
        let mut facts = base_read();
        facts.inet_sockets.push(inet(Protocol::Tcp, "0.0.0.0", 8080));
        facts
    }

    #[test]
    fn hosts_are_ordered_worst_first_and_each_names_its_own_findings() {
        let fleet = Fleet::assemble(vec![
            FleetHost::audit("quiet".into(), "quiet.json".into(), Ok(base())),
            FleetHost::audit("web".into(), "web.json".into(), Ok(wildcard())),
            FleetHost::audit("kube".into(), "kube.json".into(), Ok(exposed())),
            FleetHost::audit("broken".into(), "broken.json".into(), Err("not JSON".into())),
        ]);
        let names: Vec<&str> = fleet.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names[0], "broken", "an unusable snapshot first: its state is unknown");
        assert_eq!(names[1], "kube", "{names:?}");
        let kube = fleet.host("kube").expect("kube");
        assert!(kube
            .checks
            .iter()
            .any(|c| c.check == CheckId::NetRouteLocalnet && c.counts.open == 1));
        let web = fleet.host("web").expect("web");
        assert!(web.checks.iter().any(|c| c.check == CheckId::BindWildcard));
        assert!(!web.checks.iter().any(|c| c.check == CheckId::NetRouteLocalnet));
        assert!(fleet.checks.contains(&CheckId::NetRouteLocalnet) && fleet.checks.contains(&CheckId::BindWildcard));
        assert_eq!(fleet.worst_paths[0].host, "kube");
        assert!(fleet
            .worst_paths
            .windows(2)
            .all(|w| { (w[0].status == Status::Open, w[0].severity) >= (w[1].status == Status::Open, w[1].severity) }));
        assert!(fleet.failing(Severity::Critical), "the unusable snapshot alone fails");
    }

    #[test]
    fn duplicate_names_are_made_unique() {
        let fleet = Fleet::assemble(vec![
            FleetHost::audit("a".into(), "x/a.json".into(), Ok(base())),
            FleetHost::audit("a".into(), "y/a.json".into(), Ok(base())),
        ]);
        let mut names: Vec<&str> = fleet.hosts.iter().map(|h| h.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["a", "a (2)"]);
    }

    #[test]
    fn the_json_says_its_schema_and_carries_each_report() {
        let fleet = Fleet::assemble(vec![FleetHost::audit("kube".into(), "kube.json".into(), Ok(exposed()))]);
        let json = serde_json::to_value(&fleet).expect("json");
        assert_eq!(json["schema"], FLEET_SCHEMA);
        assert_eq!(json["hosts"][0]["report"]["schema"], crate::report::REPORT_SCHEMA);
        assert!(json["hosts"][0]["checks"]
            .as_array()
            .expect("cells")
            .iter()
            .any(|c| c["check"] == "net.route-localnet" && c["open"] == 1));
    }
}
