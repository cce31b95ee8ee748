//! `name.localhost-resolution`: `localhost` must resolve to loopback, from the hosts file, before
//! any DNS lookup.

use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::addr::is_loopback;
use crate::readers::hosts::{HostsEntry, HostsFile};
use crate::readers::nsswitch::{HostsLookup, HostsSource};
use crate::report::{Attacker, Confidence, Finding, Severity, Status};

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: CheckId::NameLocalhostResolution,
        attackers: &[Attacker::LocalUser, Attacker::Browser],
        stage: Stage::Inspect,
        summary: "`localhost` not pinned to loopback (/etc/hosts, nsswitch.conf)",
        why: "clients that connect to `localhost` go wherever the name resolves: a hosts file without \
              it, or DNS consulted first, lets a resolver or search domain send them off the host \
              (RFC 6761 §6.3)",
    },
    evaluate: Some(evaluate),
};

fn finding(severity: Severity, status: Status, title: &'static str, evidence: Vec<String>) -> Finding {
    Finding {
        check: CHECK.spec.id,
        service: None,
        attacker: Attacker::LocalUser,
        severity,
        status,
        confidence: Confidence::Inspected,
        title: title.into(),
        evidence,
        fix: "keep `127.0.0.1 localhost` and `::1 localhost` (and no other address for it) in \
              /etc/hosts, and list `files` before `dns` on the `hosts:` line of /etc/nsswitch.conf"
            .into(),
        subject: None,
        reaches: Vec::new(),
    }
}

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let names = &ctx.facts.names;
    if !names.unreadable.is_empty() {
        // What an unreadable file says is unknown: nothing below may guess it.
        return vec![finding(
            Severity::Medium,
            Status::Unknown,
            "where `localhost` resolves is unknown: a name resolution file could not be read",
            names
                .unreadable
                .iter()
                .map(|p| format!("{p} exists but could not be read"))
                .collect(),
        )];
    }
    let mut out = Vec::new();
    let lookup = HostsLookup::parse(names.nsswitch_hosts.as_deref());
    let order_note = if lookup.defaulted {
        format!("/etc/nsswitch.conf has no hosts: line: glibc uses `{}`", lookup.line)
    } else {
        format!("/etc/nsswitch.conf hosts: {}", lookup.line)
    };
    let dns_at = lookup.position(&HostsSource::Dns);
    let hosts = names.hosts_file.as_deref().map(HostsFile::parse);

    match &hosts {
        None => out.push(finding(
            Severity::Medium,
            Status::Open,
            "/etc/hosts is missing: `localhost` is left to the other name sources",
            vec![order_note.clone()],
        )),
        Some(hosts) => {
            let entries: Vec<&HostsEntry> = hosts.entries_for("localhost").collect();
            let foreign: Vec<String> = entries
                .iter()
                .filter(|e| !e.address.is_some_and(is_loopback))
                .map(|e| format!("/etc/hosts: {}", e.line))
                .collect();
            if !foreign.is_empty() {
                out.push(finding(
                    Severity::High,
                    Status::Open,
                    "/etc/hosts maps `localhost` to a non-loopback address",
                    foreign,
                ));
            } else if entries.is_empty() {
                let pinned = lookup
                    .sources
                    .iter()
                    .position(HostsSource::pins_localhost)
                    .is_some_and(|p| dns_at.is_none_or(|d| p < d));
                if !pinned {
                    out.push(finding(
                        Severity::Medium,
                        Status::Open,
                        "`localhost` is not in /etc/hosts and falls through to DNS",
                        vec!["/etc/hosts has no line for localhost".into(), order_note.clone()],
                    ));
                }
            }
        }
    }
    if let Some(dns) = dns_at {
        if lookup.position(&HostsSource::Files).is_none_or(|f| f > dns) {
            out.push(finding(
                Severity::Medium,
                Status::Open,
                "DNS is consulted before /etc/hosts",
                vec![
                    order_note,
                    "`files` must come before `dns` for the hosts file to pin localhost".into(),
                ],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_facts::{base, run};

    #[test]
    fn an_unreadable_file_is_unknown_not_missing() {
        let mut facts = base();
        facts.names.hosts_file = None;
        facts.names.unreadable = vec!["/etc/hosts".into()];
        let found = run(&CHECK, &facts);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].status, Status::Unknown);
        assert_eq!(found[0].evidence, vec!["/etc/hosts exists but could not be read"]);
    }

    #[test]
    fn debian_defaults_are_clean() {
        let mut facts = base();
        facts.names.nsswitch_hosts = Some("files mdns4_minimal [NOTFOUND=return] dns myhostname".into());
        assert!(run(&CHECK, &facts).is_empty());
    }

    #[test]
    fn non_loopback_mapping_is_high() {
        let mut facts = base();
        facts.names.hosts_file = Some("127.0.0.1 localhost\n192.0.2.7 localhost # oops\n".into());
        let found = run(&CHECK, &facts);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::High);
        assert_eq!(found[0].evidence, vec!["/etc/hosts: 192.0.2.7 localhost # oops"]);
    }

    #[test]
    fn missing_entry_falls_to_dns_unless_synthesised_first() {
        let mut facts = base();
        facts.names.hosts_file = Some("192.0.2.1 router\n".into());
        facts.names.nsswitch_hosts = Some("files dns myhostname".into());
        assert_eq!(
            run(&CHECK, &facts)[0].title,
            "`localhost` is not in /etc/hosts and falls through to DNS"
        );
        facts.names.nsswitch_hosts = Some("files myhostname dns".into());
        assert!(run(&CHECK, &facts).is_empty());
    }

    #[test]
    fn dns_first_and_missing_hosts_line_are_flagged() {
        let mut facts = base();
        facts.names.nsswitch_hosts = Some("dns files".into());
        assert_eq!(run(&CHECK, &facts)[0].title, "DNS is consulted before /etc/hosts");
        facts.names.nsswitch_hosts = None;
        let found = run(&CHECK, &facts);
        assert!(found[0].evidence[0].contains("glibc uses"), "{:?}", found[0].evidence);
    }
}
