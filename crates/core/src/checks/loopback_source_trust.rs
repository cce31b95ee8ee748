//! `net.loopback-source-trust`: a wildcard UDP listener that a LAN neighbour reaches with a
//! spoofed loopback source, so that the application sees a loopback peer.
//!
//! Two kernel paths (measured on 6.18, notes §1): IPv6 UDP from `::ffff:127.0.0.1` is delivered
//! to `[::]` sockets — dual-stack and `IPV6_V6ONLY` alike — whatever the sysctls, since the
//! v4-mapped source check moved to TCP only (Linux 5.13); IPv4 UDP from a `127/8` source is
//! delivered when `route_localnet` is on for the interface and `rp_filter` does not reject it
//! (0, or 2 together with `accept_local`). TCP only gets a blind SYN, so it is not flagged.

use super::no_loopback_antispoof::source_half;
use super::{Check, CheckSpec, Context, Stage};
use crate::facts::{HostFacts, Protocol, SocketState};
use crate::firewall::verdict::Decision;
use crate::inventory::{describe_owner, inet_service_id};
use crate::kernel::Ipv4Input;
use crate::report::{Attacker, Confidence, Finding, Severity, Status};
use std::net::IpAddr;

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: "net.loopback-source-trust",
        attackers: &[Attacker::Lan],
        stage: Stage::Inspect,
        summary: "wildcard listener reachable with a spoofed loopback source the application may trust",
        why: "IPv6 UDP from ::ffff:127.0.0.1 reaches [::] sockets (even IPV6_V6ONLY) on Linux 5.13+, and IPv4 \
              127/8 sources reach wildcard sockets when route_localnet is on; an application that trusts \
              loopback peers (ntpd CVE-2014-9298) then obeys a LAN neighbour",
    },
    evaluate: Some(evaluate),
};

/// What the kernel release says about IPv4-mapped sources.
enum MappedPath {
    Delivered(String),
    Unknown(String),
}

fn mapped_path(kernel: &str) -> MappedPath {
    let mut parts = kernel.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty());
    let version = (
        parts.next().and_then(|m| m.parse::<u32>().ok()),
        parts.next().and_then(|m| m.parse::<u32>().ok()),
    );
    match version {
        (Some(major), Some(minor)) if major > 5 || (major == 5 && minor >= 13) => MappedPath::Delivered(format!(
            "kernel {kernel}: IPv6 input no longer drops IPv4-mapped sources (the check was narrowed to TCP in 5.13), \
             so UDP from ::ffff:127.0.0.1 is delivered with any sysctls"
        )),
        _ => MappedPath::Unknown(format!(
            "kernel {kernel:?}: whether IPv6 input drops IPv4-mapped sources depends on the release (5.4–5.12 did); \
             `audit --prove` decides"
        )),
    }
}

/// Rules in the captured firewall that mention loopback-mapped or 127/8 sources: whether they
/// close the path is for the firewall analysis or the lab to decide, not this check.
fn rules_mentioning(facts: &HostFacts, needles: &[&str]) -> Vec<String> {
    let nft = facts.firewall.nft_text.iter().flat_map(|t| t.lines());
    let ipt = facts.firewall.iptables.iter().flat_map(|d| d.text.lines());
    nft.chain(ipt)
        .filter(|l| {
            needles.iter().any(|n| l.contains(n))
                && (l.contains("drop") || l.contains("DROP") || l.contains("reject") || l.contains("REJECT"))
        })
        .map(|l| l.trim().to_string())
        .collect()
}

/// Interfaces (not `lo`) on which an IPv4 127/8 source passes the martian and rp_filter checks.
fn ipv4_open_interfaces(facts: &HostFacts) -> Result<Vec<String>, String> {
    let mut open = Vec::new();
    for ifname in super::sysctl_view::non_loopback_interfaces(facts) {
        let input = Ipv4Input::of(&facts.sysctls, &ifname).map_err(|m| format!("{} not in the snapshot", m.0))?;
        // 127.0.0.2 stands for any 127/8 source that is not a configured address.
        if input.accepts_loopback_source(false) {
            open.push(format!(
                "{ifname}: route_localnet on, rp_filter={} (max of all and {ifname}), accept_local={}",
                input.rp_filter,
                u8::from(input.accept_local)
            ));
        }
    }
    Ok(open)
}

/// What the firewall does to a path the kernel leaves open: the evaluator's answer for the
/// family's loopback sources on every outside interface; where it lets them through, a rule that
/// mentions the source range may still cover this port, which makes it unknown.
fn firewall_verdict(ctx: &Context, v6: bool, rules: &[String], evidence: &mut Vec<String>) -> Status {
    let family = if v6 { "IPv6" } else { "IPv4" };
    match source_half(&ctx.firewall, v6) {
        Decision::Blocked => {
            evidence.push(format!(
                "the firewall drops {family} loopback sources arriving on every outside interface \
                 (see net.no-loopback-antispoof for the rules)"
            ));
            Status::Blocked
        }
        Decision::Unknown => {
            evidence.push(format!(
                "whether the firewall drops {family} loopback sources is unknown"
            ));
            Status::Unknown
        }
        Decision::Open if rules.is_empty() => Status::Open,
        Decision::Open => Status::Unknown,
    }
}

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let facts = ctx.facts;
    let mapped = mapped_path(&facts.host.kernel);
    let v4 = ipv4_open_interfaces(facts);
    let mapped_rules = rules_mentioning(facts, &["::ffff:127", "::ffff:0.0.0.0/96", "::ffff:0:0/96"]);
    let v4_rules = rules_mentioning(facts, &["127.0.0.0/8", "127.0.0.0/"]);
    let mut out: Vec<Finding> = Vec::new();
    let sockets = facts
        .inet_sockets
        .iter()
        .filter(|s| s.protocol == Protocol::Udp && s.state == SocketState::Unconnected && s.address.is_unspecified());
    for socket in sockets {
        let id = inet_service_id(socket);
        if out.iter().any(|f| f.service.as_deref() == Some(id.as_str())) {
            continue;
        }
        let owner = describe_owner(facts, &socket.owners);
        let mut evidence = Vec::new();
        let mut statuses = Vec::new();
        if matches!(socket.address, IpAddr::V6(_)) {
            let v6only = match socket.v6only {
                Some(true) => "IPV6_V6ONLY=1",
                Some(false) => "dual-stack",
                None => "IPV6_V6ONLY unknown",
            };
            evidence.push(format!("UDP [::]:{} ({v6only}) held by {owner}", socket.port));
            match &mapped {
                MappedPath::Delivered(why) => {
                    evidence.push(why.clone());
                    statuses.push(firewall_verdict(ctx, true, &mapped_rules, &mut evidence));
                }
                MappedPath::Unknown(why) => {
                    evidence.push(why.clone());
                    statuses.push(Status::Unknown);
                }
            }
            evidence.extend(
                mapped_rules
                    .iter()
                    .map(|r| format!("a rule mentions mapped loopback sources: {r}")),
            );
        }
        let takes_v4 = socket.address.is_ipv4() || socket.v6only == Some(false);
        if takes_v4 {
            match &v4 {
                Ok(open) if open.is_empty() => {}
                Ok(open) => {
                    evidence.push(format!(
                        "UDP *:{} takes IPv4 from a spoofed 127/8 source arriving on {}",
                        socket.port,
                        open.join("; ")
                    ));
                    statuses.push(firewall_verdict(ctx, false, &v4_rules, &mut evidence));
                    evidence.extend(v4_rules.iter().map(|r| format!("a rule mentions 127.0.0.0/8: {r}")));
                }
                Err(missing) => {
                    evidence.push(format!("IPv4 path undecided: {missing}"));
                    statuses.push(Status::Unknown);
                }
            }
        }
        // `Open` sorts first: one open path makes the finding open.
        let Some(status) = statuses.iter().min().copied() else {
            continue;
        };
        out.push(Finding {
            check: CHECK.spec.id.to_string(),
            service: Some(id),
            attacker: Attacker::Lan,
            severity: Severity::High,
            status,
            confidence: Confidence::Inspected,
            title: "a LAN neighbour can send datagrams that appear to come from this host's loopback".to_string(),
            evidence,
            fix: "drop `ip saddr 127.0.0.0/8` and `ip6 saddr ::ffff:127.0.0.0/104` on iifname != \"lo\" in a \
                  prerouting chain at priority raw; keep route_localnet=0; bind to 127.0.0.1/::1 if only local \
                  clients need it; never grant trust by peer address alone"
                .to_string(),
            subject: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{HostFacts, InetSocket, Interface, Sysctls, FACTS_SCHEMA};
    use std::collections::BTreeMap;

    fn udp(address: &str, v6only: Option<bool>) -> InetSocket {
        InetSocket {
            protocol: Protocol::Udp,
            address: address.parse().unwrap(),
            port: 123,
            v6only,
            state: SocketState::Unconnected,
            peer: None,
            bound_device: None,
            uid: 0,
            inode: 1,
            owners: vec![],
        }
    }

    fn facts(kernel: &str, sockets: Vec<InetSocket>, sysctls: &[(&str, &str)]) -> HostFacts {
        let mut map = BTreeMap::new();
        for (k, v) in sysctls {
            map.insert(k.to_string(), v.to_string());
        }
        let json = serde_json::json!({
            "schema": FACTS_SCHEMA,
            "host": {"hostname": "h", "kernel": kernel, "netns": "n", "privileged": true, "collected_at": 0, "limits": []},
            "inet_sockets": [], "unix_sockets": [], "processes": [], "interfaces": [],
            "sysctls": {}, "names": {"hosts_file": null, "nsswitch_hosts": null},
            "accounts": {"users": [], "groups": []}
        });
        let mut f = HostFacts::from_json(&json.to_string()).unwrap();
        f.inet_sockets = sockets;
        f.sysctls = Sysctls(map);
        // An empty ruleset was captured: no rule drops anything.
        f.firewall.nft_json = Some(serde_json::json!({"nftables": [{"metainfo": {"json_schema_version": 1}}]}));
        f.interfaces.push(Interface {
            name: "eth0".into(),
            index: 2,
            up: true,
            loopback: false,
            kind: None,
            mac: None,
            addresses: vec![],
            master: None,
        });
        f
    }

    fn run(f: &HostFacts) -> Vec<Finding> {
        evaluate(&Context::new(f))
    }

    const DEFAULTS: &[(&str, &str)] = &[
        ("net.ipv4.conf.all.route_localnet", "0"),
        ("net.ipv4.conf.eth0.route_localnet", "0"),
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.eth0.rp_filter", "0"),
        ("net.ipv4.conf.all.accept_local", "0"),
        ("net.ipv4.conf.eth0.accept_local", "0"),
    ];

    #[test]
    fn v6only_udp_wildcard_is_open_on_a_6x_kernel_with_default_sysctls() {
        let f = facts("6.18.44", vec![udp("::", Some(true)), udp("0.0.0.0", None)], DEFAULTS);
        let found = run(&f);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].service.as_deref(), Some("udp:[::]:123"));
        assert_eq!(found[0].status, Status::Open);
        assert!(found[0].evidence.iter().any(|e| e.contains("IPV6_V6ONLY=1")));
    }

    #[test]
    fn an_old_or_unknown_kernel_is_unknown_not_safe() {
        let found = run(&facts("5.10.0", vec![udp("::", Some(false))], DEFAULTS));
        assert_eq!(found[0].status, Status::Unknown);
        assert_eq!(
            run(&facts("", vec![udp("::", Some(true))], DEFAULTS))[0].status,
            Status::Unknown
        );
    }

    #[test]
    fn ipv4_wildcard_is_flagged_only_with_route_localnet_and_permissive_rp_filter() {
        let mut on: Vec<(&str, &str)> = DEFAULTS.to_vec();
        on[1] = ("net.ipv4.conf.eth0.route_localnet", "1");
        let found = run(&facts("6.18.0", vec![udp("0.0.0.0", None)], &on));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].status, Status::Open);
        on[3] = ("net.ipv4.conf.eth0.rp_filter", "2");
        assert!(run(&facts("6.18.0", vec![udp("0.0.0.0", None)], &on)).is_empty());
        on[5] = ("net.ipv4.conf.eth0.accept_local", "1");
        assert_eq!(run(&facts("6.18.0", vec![udp("0.0.0.0", None)], &on)).len(), 1);
        assert!(run(&facts("6.18.0", vec![udp("0.0.0.0", None)], DEFAULTS)).is_empty());
    }

    #[test]
    fn missing_sysctls_make_the_ipv4_path_unknown() {
        let found = run(&facts("6.18.0", vec![udp("0.0.0.0", None)], &[]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].status, Status::Unknown);
    }

    #[test]
    fn no_firewall_capture_is_unknown_and_the_guard_table_blocks() {
        let mut f = facts("6.18.0", vec![udp("::", Some(true))], DEFAULTS);
        f.firewall = Default::default();
        assert_eq!(run(&f)[0].status, Status::Unknown);
        // The complete raw-priority guard table of notes.md §2, captured from a namespace.
        let captured = include_str!("../../../../fixtures/firewall/raw-antispoof-complete/ruleset.json");
        f.firewall.nft_json = Some(serde_json::from_str(captured).unwrap());
        let found = run(&f);
        assert_eq!(found[0].status, Status::Blocked, "{found:#?}");
    }

    #[test]
    fn a_rule_naming_mapped_sources_makes_it_unknown() {
        let mut f = facts("6.18.0", vec![udp("::", Some(true))], DEFAULTS);
        f.firewall.nft_text = Some("iifname != \"lo\" ip6 saddr ::ffff:127.0.0.0/104 drop\n".into());
        assert_eq!(run(&f)[0].status, Status::Unknown);
    }
}
