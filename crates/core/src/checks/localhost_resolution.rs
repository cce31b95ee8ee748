//! `name.localhost-resolution`: `localhost` must resolve to loopback, from the hosts file, before
//! any DNS lookup.

use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::addr::is_loopback;
use crate::report::{Attacker, Confidence, Finding, Severity, Status};
use std::net::IpAddr;

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

/// glibc's order when nsswitch.conf has no `hosts:` line.
const GLIBC_DEFAULT: &str = "dns [!UNAVAIL=return] files";

/// Sources that answer `localhost` with loopback by themselves.
const SYNTHESISERS: &[&str] = &["myhostname", "resolve"];

/// Addresses the hosts file gives `localhost`, with the line each came from.
fn hosts_entries(text: &str) -> Vec<(Option<IpAddr>, String)> {
    text.lines()
        .filter_map(|line| {
            let content = line.split('#').next().unwrap_or("").trim();
            let mut fields = content.split_whitespace();
            let addr = fields.next()?;
            fields
                .any(|n| n.eq_ignore_ascii_case("localhost"))
                .then(|| (addr.parse().ok(), line.trim().to_string()))
        })
        .collect()
}

fn finding(severity: Severity, status: Status, title: &str, evidence: Vec<String>) -> Finding {
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
    let (order, order_note) = match &names.nsswitch_hosts {
        Some(line) => (line.clone(), format!("/etc/nsswitch.conf hosts: {line}")),
        None => (
            GLIBC_DEFAULT.to_string(),
            format!("/etc/nsswitch.conf has no hosts: line: glibc uses `{GLIBC_DEFAULT}`"),
        ),
    };
    let sources: Vec<&str> = order.split_whitespace().filter(|w| !w.starts_with('[')).collect();
    let position = |name: &str| sources.iter().position(|s| *s == name);
    let entries = names.hosts_file.as_deref().map(hosts_entries);

    match &entries {
        None => out.push(finding(
            Severity::Medium,
            Status::Open,
            "/etc/hosts is missing: `localhost` is left to the other name sources",
            vec![order_note.clone()],
        )),
        Some(entries) => {
            let foreign: Vec<String> = entries
                .iter()
                .filter(|(addr, _)| !addr.is_some_and(is_loopback))
                .map(|(_, line)| format!("/etc/hosts: {line}"))
                .collect();
            if !foreign.is_empty() {
                out.push(finding(
                    Severity::High,
                    Status::Open,
                    "/etc/hosts maps `localhost` to a non-loopback address",
                    foreign,
                ));
            } else if entries.is_empty() {
                let synthesised = sources
                    .iter()
                    .position(|s| SYNTHESISERS.contains(s))
                    .is_some_and(|p| position("dns").is_none_or(|d| p < d));
                if !synthesised {
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
    if let Some(dns) = position("dns") {
        if position("files").is_none_or(|f| f > dns) {
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
