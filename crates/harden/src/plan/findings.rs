//! For every open (or unknown) finding of the audit: closed by which rule or setting, restricted
//! to which users, or left open and why. Whether a finding closes is not assumed: it is the
//! audit of the planned state (the snapshot with the table added and the sysctls changed) that
//! says so.

use super::keep::Keeper;
use super::sysctls::SysctlChange;
use super::table::Table;
use loopwarden_core::checks::CheckId;
use loopwarden_core::report::{Finding, Report, Severity, Status};
use loopwarden_core::spoof_drops::Guard;
use serde::Serialize;

/// What the plan does about one finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Outcome {
    /// The audit of the planned state reports it blocked (or no longer at all).
    Closed {
        /// The rules and settings of the plan that close it.
        by: Vec<String>,
    },
    /// Restricted to the users `--allow` names (plus root and the owner): the audit keeps
    /// listing them, since it cannot know they are intended.
    Restricted {
        /// Who may still connect.
        to: Vec<String>,
    },
    /// Not closed by the plan.
    LeftOpen {
        /// Why, and what would close it.
        why: String,
    },
}

/// A finding in the audit of the planned state (the snapshot with the table added and the
/// sysctls changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum After {
    /// Still reported open.
    Open,
    /// Reported blocked.
    Blocked,
    /// Reported, and the audit cannot decide: never read as closed.
    Unknown,
    /// No longer reported at all: what it needs is gone (a sysctl turned off, a rule no longer
    /// reaching the service).
    Gone,
}

impl After {
    fn of(status: Option<Status>) -> After {
        match status {
            Some(Status::Open) => After::Open,
            Some(Status::Blocked) => After::Blocked,
            Some(Status::Unknown) => After::Unknown,
            None => After::Gone,
        }
    }
}

/// One finding of the audit and what the plan does about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disposition {
    /// The check.
    pub check: CheckId,
    /// The service, or `None` for host-wide findings.
    pub service: Option<String>,
    /// The finding's subject (`ipv4`, `ipv6`), when it has one.
    pub subject: Option<String>,
    /// Its severity.
    pub severity: Severity,
    /// Its title.
    pub title: String,
    /// Its status now.
    pub before: Status,
    /// What the audit of the planned state says about it.
    pub after: After,
    /// What the plan does.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The dispositions of every finding of `before` that is not already blocked.
pub fn dispose(
    before: &Report,
    after: &Report,
    table: &Table,
    sysctls: &[SysctlChange],
    kept: &[Keeper],
) -> Vec<Disposition> {
    before
        .findings
        .iter()
        .filter(|f| f.status != Status::Blocked)
        .map(|f| {
            let later = counterpart(f, after);
            let after_status = later.map(|l| l.status);
            let outcome = match (after_status, restricted_to(f, table)) {
                (_, Some(to)) => Outcome::Restricted { to },
                (None | Some(Status::Blocked), None) => Outcome::Closed {
                    by: closers(f, table, sysctls),
                },
                (Some(_), None) => Outcome::LeftOpen {
                    why: why_open(f, later, kept),
                },
            };
            Disposition {
                check: f.check,
                service: f.service.clone(),
                subject: f.subject.clone(),
                severity: f.severity,
                title: f.title.to_string(),
                before: f.status,
                after: After::of(after_status),
                outcome,
            }
        })
        .collect()
}

/// The same finding in the audit of the planned state: same check, service and subject; among
/// several, the one with the same first evidence line (the NAT rule) or title.
fn counterpart<'a>(f: &Finding, after: &'a Report) -> Option<&'a Finding> {
    let same: Vec<&Finding> = after
        .findings
        .iter()
        .filter(|a| a.check == f.check && a.service == f.service && a.subject == f.subject)
        .collect();
    match same.as_slice() {
        [] => None,
        [one] => Some(one),
        many => many
            .iter()
            .find(|a| a.evidence.first() == f.evidence.first())
            .or_else(|| many.iter().find(|a| a.title == f.title))
            .copied(),
    }
}

/// For `local.tcp-any-uid` on a port the plan restricts: who may still connect.
fn restricted_to(f: &Finding, table: &Table) -> Option<Vec<String>> {
    if f.check != CheckId::LocalTcpAnyUid {
        return None;
    }
    let service = f.service.as_deref()?;
    let (proto, rest) = service.split_once(':')?;
    let port: u16 = rest.rsplit(':').next()?.parse().ok()?;
    let rule = table
        .allows
        .iter()
        .find(|r| r.proto.as_str() == proto && r.port == port)?;
    Some(rule.uids.iter().map(|a| a.label()).collect())
}

/// The plan's rules and settings that bear on a finding of `check`.
fn closers(f: &Finding, table: &Table, sysctls: &[SysctlChange]) -> Vec<String> {
    let guards: Vec<Guard> = match (f.check, f.subject.as_deref()) {
        (CheckId::NetNoLoopbackAntispoof, Some("ipv4")) => vec![Guard::Ipv4Source, Guard::Ipv4Destination],
        (CheckId::NetNoLoopbackAntispoof, _) => vec![
            Guard::Ipv6Source,
            Guard::Ipv6Destination,
            Guard::MappedSource,
            Guard::MappedDestination,
        ],
        (CheckId::NetRouteLocalnet, _) => vec![Guard::Ipv4Destination],
        (CheckId::NetDnatLoopback, _) => vec![Guard::Ipv4Destination, Guard::Ipv6Destination],
        (CheckId::ProtoUdpLoopback, _) => vec![Guard::Ipv4Destination, Guard::Ipv4Source],
        (CheckId::NetLoopbackSourceTrust, _) => vec![Guard::Ipv4Source, Guard::MappedSource],
        _ => vec![],
    };
    let mut by: Vec<String> = table
        .guards
        .iter()
        .filter(|g| guards.contains(&g.guard))
        .map(|g| format!("rule {} (iifname != \"lo\" {} drop)", g.guard.counter(), g.matches()))
        .collect();
    // The sysctls decide what reaches the kernel's routing, not what the firewall drops.
    let routed = matches!(
        f.check,
        CheckId::NetRouteLocalnet
            | CheckId::NetDnatLoopback
            | CheckId::ProtoUdpLoopback
            | CheckId::NetLoopbackSourceTrust
    );
    by.extend(
        sysctls
            .iter()
            .filter(|_| routed)
            .map(|c| format!("sysctl {} = {}", c.key, c.to)),
    );
    by
}

/// Why a finding stays open, and what would close it.
fn why_open(f: &Finding, after: Option<&Finding>, kept: &[Keeper]) -> String {
    match f.check {
        CheckId::RelayHttpProxy
        | CheckId::RelaySocksProxy
        | CheckId::RelaySshForwarding
        | CheckId::RelayReverseProxy
        | CheckId::RelayForwarder => "a relay turns a remote client into a local one, which no packet filter on \
                                      loopback can tell apart: change the relay's configuration (see the \
                                      finding's fix) or put `loopwarden guard` in front of the service"
            .into(),
        CheckId::WebDnsRebinding
        | CheckId::WebCorsPermissive
        | CheckId::WebPrivateNetworkAccess
        | CheckId::WebWebsocketOrigin
        | CheckId::WebZeroAddress => "the service itself must refuse foreign Host and Origin headers: change \
                                      its configuration (see the finding's fix) or put `loopwarden guard` in \
                                      front of it"
            .into(),
        CheckId::LocalTcpAnyUid => "no --allow for this port: `loopwarden harden --allow PORT=USER` restricts \
                                    it to the users you name (or use `loopwarden guard`)"
            .into(),
        CheckId::LocalPortSquat => "a configuration change: listen on both 127.0.0.1 and [::1] (see the \
                                    finding's fix); a packet filter cannot reserve a port"
            .into(),
        CheckId::LocalUnixWorld | CheckId::LocalUnixAbstract => "Unix sockets are outside the packet filter: \
                                                                 change the socket's mode or directory (see \
                                                                 the finding's fix) or use `loopwarden guard`"
            .into(),
        CheckId::NameLocalhostResolution => {
            "name resolution, not a packet path: pin localhost in /etc/hosts (see the finding's fix)".into()
        }
        CheckId::BindWildcard => "bound beyond loopback: a firewall rule would cut off the clients it may be \
                                  meant for; bind it to 127.0.0.1/::1 if only local clients need it"
            .into(),
        CheckId::NetDnatLoopback if !kept.is_empty() => {
            let mut names: Vec<&str> = kept.iter().map(|k| k.component.name()).collect();
            names.dedup();
            format!(
                "route_localnet is kept for {}: restrict the DNAT rule to the interfaces and sources that need it",
                names.join(", ")
            )
        }
        _ => match after {
            Some(a) => format!(
                "the audit of the planned state still reports it {}: {}",
                a.status.as_str(),
                a.evidence.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
            ),
            None => "not closed by the plan".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loopwarden_core::report::{Attacker, Confidence, ReportHost};

    fn finding(check: CheckId, service: Option<&str>, status: Status) -> Finding {
        Finding {
            check,
            service: service.map(str::to_string),
            attacker: Attacker::Lan,
            severity: Severity::High,
            status,
            confidence: Confidence::Inspected,
            title: format!("{check} title").into(),
            evidence: vec!["first".into()],
            fix: "".into(),
            subject: None,
        }
    }

    fn report(findings: Vec<Finding>) -> Report {
        Report {
            schema: String::new(),
            tool_version: String::new(),
            host: ReportHost {
                hostname: String::new(),
                kernel: String::new(),
                netns: String::new(),
                privileged: true,
                limits: vec![],
            },
            services: vec![],
            findings,
            activity: vec![],
        }
    }

    #[test]
    fn the_planned_audit_decides_closed_or_left_open() {
        let before = report(vec![
            finding(CheckId::NetRouteLocalnet, None, Status::Open),
            finding(CheckId::RelayForwarder, Some("tcp:127.0.0.1:8000"), Status::Open),
            finding(CheckId::BindWildcard, Some("udp:[::]:53"), Status::Blocked),
        ]);
        let after = report(vec![finding(
            CheckId::RelayForwarder,
            Some("tcp:127.0.0.1:8000"),
            Status::Open,
        )]);
        let table = Table::new(false, vec![]);
        let found = dispose(&before, &after, &table, &[], &[]);
        assert_eq!(found.len(), 2, "already blocked findings are not listed");
        match &found[0].outcome {
            Outcome::Closed { by } => assert_eq!(
                by,
                &["rule ipv4-destination (iifname != \"lo\" ip daddr 127.0.0.0/8 drop)"]
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(found[0].after, After::Gone);
        assert_eq!(
            serde_json::to_value(&found[0]).expect("json")["after"],
            serde_json::json!("gone")
        );
        assert!(matches!(&found[1].outcome, Outcome::LeftOpen { why } if why.contains("loopwarden guard")));
    }
}
